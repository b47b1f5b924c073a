"""The Billbee API client, without Airflow: config, errors, envelope, throttle, client."""
