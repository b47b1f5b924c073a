"""Airflow hooks of the Billbee provider."""
