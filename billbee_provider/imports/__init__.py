"""The bulk customer import pipeline, without Airflow: extract -> validate -> create -> report."""
