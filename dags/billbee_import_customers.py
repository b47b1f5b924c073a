"""Import a customer list into Billbee: extract -> validate -> create -> report.

The source is a CSV (header: Billbee's dotted field paths, e.g. ``Address.City``;
``,`` or ``;``, UTF-8 with or without BOM) or a JSONL file of Billbee bodies, as a path
or URL. Invalid rows land in ``rejects.csv`` and are never sent; above ``max_rejects``
nothing is sent at all. ``create`` runs at Billbee's limit (2 creates/s), skips
customers whose e-mail already exists (``if_exists``), and keeps a ledger so that a
retry or re-run never creates a customer twice. ``report`` writes ``summary.json``.
All files go to ``output_dir`` (default: ``$AIRFLOW_HOME/billbee-imports/<dag>/<run>``).

The create task runs in the pool ``billbee_api``: create it with one slot per Billbee
account (``airflow pools set billbee_api 1 "Billbee API"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from billbee_provider.operators.imports import (
    BillbeeCreateCustomersOperator,
    BillbeeExtractCustomersOperator,
    BillbeeValidateCustomersOperator,
)

SAMPLE = str(Path(__file__).parent / "data" / "customers_sample.csv")
OUTPUT_DIR = "{{ params.output_dir }}"


@dag(
    dag_id="billbee_import_customers",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["billbee", "example"],
    params={
        "source": Param(SAMPLE, type="string", title="Source", description="CSV or JSONL path or URL."),
        "output_dir": Param(
            "", type="string", title="Output directory", description="Empty: under AIRFLOW_HOME."
        ),
        "dry_run": Param(
            False, type="boolean", title="Dry run", description="Validate and decide, send nothing."
        ),
        "if_exists": Param("skip", enum=["skip", "create", "fail"], title="If the e-mail exists"),
        "max_rejects": Param(
            0.2, type=["number", "null"], title="Max rejects", description="Count or fraction."
        ),
    },
    doc_md=__doc__,
)
def billbee_import_customers() -> None:
    """Extract, validate and create the customers of ``params.source``."""
    extract = BillbeeExtractCustomersOperator(
        task_id="extract", source="{{ params.source }}", output_dir=OUTPUT_DIR
    )
    validate = BillbeeValidateCustomersOperator(
        task_id="validate",
        source="{{ ti.xcom_pull(task_ids='extract')['path'] }}",
        required_fields=["Email"],
        max_rejects="{{ params.max_rejects }}",
        output_dir=OUTPUT_DIR,
    )
    create = BillbeeCreateCustomersOperator(
        task_id="create",
        staging="{{ ti.xcom_pull(task_ids='validate')['staging'] }}",
        rejects="{{ ti.xcom_pull(task_ids='validate')['rejects'] }}",
        if_exists="{{ params.if_exists }}",
        dry_run="{{ params.dry_run }}",
        output_dir=OUTPUT_DIR,
    )
    extract >> validate >> create >> report(validate.output, create.output)  # type: ignore[arg-type]


@task
def report(validated: dict[str, Any], created: dict[str, Any]) -> dict[str, Any]:
    """Log a summary table and write ``summary.json`` next to the results."""
    from billbee_provider.imports.report import build_summary, format_table, write_summary
    from billbee_provider.operators.imports import to_location

    summary = build_summary(validated, created)
    target = created["results_path"].rsplit("/", 1)[0] + "/summary.json"
    write_summary(to_location(target), summary)
    print(f"Billbee import summary ({target}):\n{format_table(summary)}")
    return {"summary": target, "counts": summary["counts"]}


billbee_import_customers()
