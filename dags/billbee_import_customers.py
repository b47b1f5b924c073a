"""Import a customer list into Billbee: extract -> validate -> create -> report.

The source is a CSV (header: Billbee's dotted field paths, e.g. ``Address.City``;
``,``, ``;`` or tab; UTF-8 with or without BOM or UTF-16 with BOM by default, ``cp1252``
for Excel's "CSV (Trennzeichen-getrennt)": params ``encoding`` and ``delimiter``) or a
JSONL file of Billbee bodies, as a path or object-storage URL. Invalid rows land in
``rejects.csv`` and are never sent; above ``max_rejects`` nothing is sent at all.
``create`` runs at Billbee's limit (2 creates/s), skips customers whose e-mail already
exists (``if_exists``), and keeps a ledger so that a retry or re-run never creates a
customer twice. ``report`` writes ``summary.json``.
All files go to ``output_dir`` (default: ``$AIRFLOW_HOME/billbee-imports/<dag>/<run>``).

The create task runs in the pool ``billbee_api``: create it with one slot per Billbee
account (``airflow pools set billbee_api 1 "Billbee API"``).
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param, dag
from example_dag_args import IMPORT_DAG_ARGS

from billbee_provider.operators.import_group import (
    OUTPUT_DIR_PARAM,
    customer_import_group,
    import_params,
    source_file_params,
)
from billbee_provider.operators.imports import BillbeeExtractCustomersOperator

SAMPLE = str(Path(__file__).parent / "data" / "customers_sample.csv")


@dag(
    dag_id="billbee_import_customers",
    **IMPORT_DAG_ARGS,
    params=import_params(
        source=Param(
            SAMPLE,
            type="string",
            title="Customer file",
            description=(
                "The customer file (the sample file by default): a path on the Airflow machine or an "
                "object-storage URL (s3://bucket/customers.csv, gs://, file://). A CSV whose header "
                "names Billbee's fields (Name, Email, Address.City, ...), or a JSONL file with one "
                "customer per line. Web addresses (https://) are not read: download the file first."
            ),
        ),
        **source_file_params(),
        max_rejects=Param(
            0.2,
            type=["number", "null"],
            title="Most rows that may be invalid",
            description=(
                "If more rows than this are invalid, nothing at all is sent, so that a wrong file "
                "does not half-arrive. A count (e.g. 5) or a share of the rows (e.g. 0.2 = 20 %). "
                "Empty: no limit."
            ),
        ),
    ),
    doc_md=__doc__,
)
def billbee_import_customers() -> None:
    """Extract, validate and create the customers of ``params.source``, then report."""
    extract = BillbeeExtractCustomersOperator(
        task_id="extract", source="{{ params.source }}", output_dir=OUTPUT_DIR_PARAM
    )
    customer_import_group(
        extract.output,
        max_rejects="{{ params.max_rejects }}",
        encoding="{{ params.encoding }}",
        delimiter="{{ params.delimiter }}",
        if_exists="{{ params.if_exists }}",
        dry_run="{{ params.dry_run }}",
        output_dir=OUTPUT_DIR_PARAM,
    )


billbee_import_customers()
