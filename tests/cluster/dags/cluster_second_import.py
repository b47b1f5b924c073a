"""A second import DAG of the same Billbee account, for the test that two imports are serialised.

Test DAG of ``make test-cluster`` (tests/cluster): extract -> validate -> create -> report
as ``billbee_import_customers``, under another DAG id, so that a run of each can be
triggered at once. Both create tasks are in the pool ``billbee_api`` (one slot), so
they run one after the other even on two workers.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from billbee_provider.operators.import_group import OUTPUT_DIR_PARAM, customer_import_group, import_params
from billbee_provider.operators.imports import BillbeeExtractCustomersOperator


@dag(
    dag_id="cluster_second_import",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params=import_params(source=Param("", type="string")),
    tags=["billbee", "test"],
    doc_md=__doc__,
)
def cluster_second_import() -> None:
    """extract -> validate -> create -> report."""
    extract = BillbeeExtractCustomersOperator(
        task_id="extract", source="{{ params.source }}", output_dir=OUTPUT_DIR_PARAM
    )
    customer_import_group(extract.output, if_exists="{{ params.if_exists }}", output_dir=OUTPUT_DIR_PARAM)


cluster_second_import()
