"""The example DAGs import cleanly and lightly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

DAGS = REPO / "dags"


@pytest.mark.airflow
def test_dagbag_has_no_import_errors() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    dag = bag.dags.get("billbee_create_customer")
    assert dag is not None
    assert [t.task_id for t in dag.topological_sort()] == ["validate", "create"]
    assert set(dag.params.keys()) == {"customer", "dry_run", "if_exists"}


@pytest.mark.airflow
def test_import_dags_share_the_xcom_wired_validate_create_report_group() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    for dag_id, first in (("billbee_import_customers", []), ("billbee_sync_customers_sql", ["setup"])):
        dag = bag.dags[dag_id]
        order = [t.task_id for t in dag.topological_sort()]
        assert [t for t in order if t != "write_back"] == [*first, "extract", "validate", "create", "report"]
        # The edges come from the data: create reads validate's staging, report both summaries.
        assert dag.get_task("create").upstream_task_ids == {"validate"}
        assert dag.get_task("report").upstream_task_ids == {"validate", "create"}
        names = set(dag.params.keys())
        assert {"output_dir", "dry_run", "if_exists"} <= names
        assert all(dag.params.get_param(name).schema.get("title") for name in names)


@pytest.mark.airflow
def test_only_create_retries_with_a_delay_and_fail_exceptions_are_not_retried() -> None:
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from billbee_provider.operators.create import BillbeeCreateCustomersOperator

    bag = DagBag(dag_folder=str(DAGS))
    for dag_id in ("billbee_import_customers", "billbee_sync_customers_sql"):
        dag = bag.dags[dag_id]
        create = dag.get_task("create")
        assert create.retries == 3 and create.retry_delay == timedelta(seconds=30)
        assert create.retry_exponential_backoff == 2.0 and create.max_retry_delay == timedelta(minutes=5)
        assert create.pool == "billbee_api"
        assert {t.task_id: t.retries for t in dag.tasks if t.task_id != "create"} == dict.fromkeys(
            [t.task_id for t in dag.tasks if t.task_id != "create"], 0
        )
    # What a retry cannot fix is raised as AirflowFailException, which Airflow never retries.
    assert issubclass(AirflowFailException, AirflowException)
    source = (REPO / "billbee_provider" / "operators" / "create.py").read_text(encoding="utf-8")
    assert (
        "except (ExistingCustomersError, BillbeeAuthError, BillbeeConfigError, ValueError) as exc:" in source
    )
    assert "raise AirflowFailException(str(exc)) from None" in source
    assert BillbeeCreateCustomersOperator(task_id="c", staging="s").retries == 0  # only the group sets them


def test_example_customer_is_valid() -> None:
    from billbee_provider.customers.schema import get_validator

    sys.path.insert(0, str(DAGS))
    try:
        from billbee_create_customer import EXAMPLE_CUSTOMER
    finally:
        sys.path.remove(str(DAGS))
    assert get_validator().problems(EXAMPLE_CUSTOMER) == []


@pytest.mark.airflow
@pytest.mark.slow
def test_dag_files_import_no_heavy_modules() -> None:
    """Beyond what ``airflow.sdk`` itself loads, a DAG file must not pull in HTTP or schema code."""
    probe = f"""
import json, sys, runpy
import airflow.sdk
sys.path.append({json.dumps(str(DAGS))})  # as Airflow does for the DAG folder
before = set(sys.modules)
for path in {json.dumps(sorted(str(p) for p in DAGS.glob("*.py")))}:
    runpy.run_path(path)
print(json.dumps(sorted(set(sys.modules) - before)))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    added = set(json.loads(out.stdout.strip().splitlines()[-1]))
    heavy = {
        "requests",
        "urllib3",
        "billbee_provider.hooks.billbee",
        "billbee_provider.api.client",
        "billbee_provider.customers.schema",
    }
    assert not added & heavy, sorted(added & heavy)
