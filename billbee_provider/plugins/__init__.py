"""Airflow plugins shipped with the provider."""
