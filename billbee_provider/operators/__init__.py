"""Airflow operators of the Billbee provider."""
