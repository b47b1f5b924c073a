"""Tests of the import core: sources, mapping, template, prepare (no Airflow needed)."""
