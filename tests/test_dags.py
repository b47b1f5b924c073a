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
