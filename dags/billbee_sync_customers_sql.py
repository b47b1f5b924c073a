"""Send new customers from a shop database to Billbee, and write their Billbee Ids back.

Reads ``shop_customers`` rows that have no ``billbee_id`` yet through any Airflow
database connection (``params.conn_id``; the example is an SQLite file), maps the
table's own columns to Billbee's fields with a body template, validates, creates at
Billbee's rate limit, and stores each new customer's Billbee Id in the row, so the
next run sends only rows added since. ``setup`` creates the example table with a few
customers if it is missing.

Example connection: ``AIRFLOW_CONN_BILLBEE_EXAMPLE_SHOP='{"conn_type": "sqlite",
"host": "/path/to/billbee-example-shop.sqlite"}'`` (the Makefile sets one up).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import Param, dag, task
from example_dag_args import IMPORT_DAG_ARGS

from billbee_provider.operators.import_group import OUTPUT_DIR_PARAM, customer_import_group, import_params
from billbee_provider.operators.imports import BillbeeExtractCustomersSqlOperator

QUERY = """
SELECT id, first_name, last_name, company, email, phone, street, house_no, zip, city, country
FROM shop_customers WHERE billbee_id IS NULL ORDER BY id
"""
# Leaves are Jinja over the table row; a leaf that is one expression keeps its type.
BODY_TEMPLATE: dict[str, Any] = {
    "Name": "{{ row.company or (row.first_name ~ ' ' ~ row.last_name) }}",
    "Email": "{{ row.email | trim | lower }}",
    "Tel1": "{{ row.phone }}",
    "Type": "{{ 1 if row.company else 0 }}",
    "Address": {
        "Company": "{{ row.company }}",
        "FirstName": "{{ row.first_name }}",
        "LastName": "{{ row.last_name }}",
        "Street": "{{ row.street }}",
        "Housenumber": "{{ row.house_no }}",
        "Zip": "{{ row.zip }}",
        "City": "{{ row.city }}",
        "CountryCode": "{{ row.country | upper }}",
        "AddressType": 1,
    },
}
CONN_ID = "{{ params.conn_id }}"


@dag(
    dag_id="billbee_sync_customers_sql",
    **IMPORT_DAG_ARGS,
    params=import_params(
        conn_id=Param(
            "billbee_example_shop",
            type="string",
            title="Shop database connection",
            description="The Airflow connection of the shop database that holds the shop_customers table.",
        ),
    ),
    doc_md=__doc__,
)
def billbee_sync_customers_sql() -> None:
    """setup -> extract -> validate -> create -> report, and write_back after create."""
    extract = BillbeeExtractCustomersSqlOperator(
        task_id="extract", conn_id=CONN_ID, sql=QUERY, output_dir=OUTPUT_DIR_PARAM
    )
    tasks = customer_import_group(
        extract.output,
        template=BODY_TEMPLATE,
        if_exists="{{ params.if_exists }}",
        dry_run="{{ params.dry_run }}",
        output_dir=OUTPUT_DIR_PARAM,
    )
    setup(conn_id=CONN_ID) >> extract
    write_back(extract.output, tasks.create.output, conn_id=CONN_ID)  # type: ignore[arg-type]  # XComArgs resolve to dicts


@task
def setup(conn_id: str) -> int:
    """Create the example table with sample customers if it does not exist."""
    from contextlib import closing

    from example_shop import ensure_example_table

    from billbee_provider.operators.imports import db_hook

    hook = db_hook(conn_id)
    with closing(hook.get_conn()) as conn:
        return ensure_example_table(conn, hook.placeholder)


@task
def write_back(extracted: dict[str, Any], created: dict[str, Any], conn_id: str) -> int:
    """Store the Billbee Id of every created or already existing customer in its row."""
    from contextlib import closing

    from example_shop import write_billbee_ids

    from billbee_provider.imports.report import key_id_pairs
    from billbee_provider.operators.imports import db_hook, to_location

    if created.get("dry_run"):
        return 0
    pairs = key_id_pairs(to_location(extracted["path"]), to_location(created["results_path"]), "id")
    hook = db_hook(conn_id)
    with closing(hook.get_conn()) as conn:
        written = write_billbee_ids(conn, pairs, hook.placeholder)
    logging.getLogger("airflow.task").info("Wrote %d Billbee Id(s) back to the shop table", written)
    return written


billbee_sync_customers_sql()
