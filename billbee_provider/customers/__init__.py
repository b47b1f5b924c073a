"""What a customer body is, without Airflow: schema, dotted-column mapping, body template."""
