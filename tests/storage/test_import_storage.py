"""Where a run's files go: ``[billbee] import_storage``, ``output_dir``, and the executor check."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.get_provider_info import get_provider_info
from billbee_provider.operators.extract import (
    BillbeeExtractCustomersOperator,
    BillbeeExtractCustomersSqlOperator,
)
from billbee_provider.operators.run_files import (
    STORAGE_ENV,
    check_shared_storage,
    multi_machine_executors,
    output_location,
)

CELERY = "CeleryExecutor"


@pytest.mark.parametrize(
    ("executor", "multi"),
    [
        ("", []),
        ("LocalExecutor", []),
        ("SequentialExecutor", []),
        ("airflow.executors.local_executor.LocalExecutor", []),
        ("CeleryExecutor", ["CeleryExecutor"]),
        ("KubernetesExecutor", ["KubernetesExecutor"]),
        ("LocalExecutor, CeleryExecutor", ["CeleryExecutor"]),
        (
            "LocalExecutor,my_k8s:airflow.providers.cncf.kubernetes.KubernetesExecutor",
            ["my_k8s:airflow.providers.cncf.kubernetes.KubernetesExecutor"],
        ),
        ("fast:airflow.executors.local_executor.LocalExecutor", []),
        (
            "airflow.providers.edge3.executors.EdgeExecutor",
            ["airflow.providers.edge3.executors.EdgeExecutor"],
        ),
        ("my_company.MyExecutor", ["my_company.MyExecutor"]),
    ],
)
def test_which_executors_can_use_several_machines(executor: str, multi: list[str]) -> None:
    assert multi_machine_executors(executor) == multi


@pytest.mark.parametrize(
    ("output_dir", "storage", "executor", "verdict"),
    [
        # One machine: anything goes, the default included.
        (None, "", "LocalExecutor", "ok"),
        ("", "", "", "ok"),
        ("/data/run", "", "LocalExecutor", "ok"),
        # Several machines: the default is refused ...
        (None, "", CELERY, "refuse"),
        ("", "", "LocalExecutor,CeleryExecutor", "refuse"),
        # ... object storage is fine, from either setting ...
        (None, "s3://aws_default@bucket/imports", CELERY, "ok"),
        ("gs://gcp@bucket/run", "", "KubernetesExecutor", "ok"),
        ("s3://aws@bucket/run", "/local/ignored", CELERY, "ok"),
        # ... and a local folder someone chose on purpose is accepted with a warning.
        (None, "/shared/nfs/imports", CELERY, "warn"),
        (None, "file:///shared/nfs/imports", CELERY, "warn"),
        ("/shared/run1", "", CELERY, "warn"),
        ("/shared/run1", "s3://aws@bucket/x", CELERY, "warn"),
    ],
)
def test_the_storage_decision(output_dir: str | None, storage: str, executor: str, verdict: str) -> None:
    assert check_shared_storage(output_dir, storage, executor) == verdict


def context(run_id: str = "manual__2026-01-01T00:00:00+00:00") -> Any:
    return {"run_id": run_id, "dag": SimpleNamespace(dag_id="billbee_import_customers"), "ti": None}


def test_output_location_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    default = output_location(None, context())
    assert (
        default
        == f"{tmp_path}/home/billbee-imports/billbee_import_customers/manual__2026-01-01T00_00_00_00_00"
    )
    assert Path(default).is_dir()
    monkeypatch.setenv(STORAGE_ENV, "s3://aws_default@bucket/imports/")
    assert output_location("", context()) == (
        "s3://aws_default@bucket/imports/billbee_import_customers/manual__2026-01-01T00_00_00_00_00"
    )
    assert output_location(str(tmp_path / "given"), context()) == str(tmp_path / "given")
    monkeypatch.setenv(STORAGE_ENV, (tmp_path / "shared").as_uri())
    local = output_location(None, context("r1"))
    assert local == f"{(tmp_path / 'shared').as_uri()}/billbee_import_customers/r1"
    assert (tmp_path / "shared" / "billbee_import_customers" / "r1").is_dir()


def test_the_option_is_declared_next_to_allow_test_requests() -> None:
    options = get_provider_info()["config"]["billbee"]["options"]
    assert list(options) == ["allow_test_requests", "import_storage"]
    assert options["import_storage"]["type"] == "string" and options["import_storage"]["default"] == ""


# -- the extract operators, with the settings as environment variables ---------------------


class TI:
    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


@pytest.fixture
def celery(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(STORAGE_ENV, raising=False)


@pytest.mark.airflow
def test_extract_refuses_the_default_under_celery_before_reading(celery: None, tmp_path: Path) -> None:
    source = tmp_path / "missing.csv"  # never opened: the refusal comes first
    ti = TI()
    with pytest.raises(AirflowFailException) as refused:
        BillbeeExtractCustomersOperator(task_id="extract", source=str(source), output_dir="").execute(
            {**context(), "ti": ti}
        )
    message = str(refused.value)
    assert "[billbee] import_storage" in message and STORAGE_ENV in message
    assert "output_dir" in message and "s3://aws_default@my-bucket/billbee-imports" in message
    assert "CeleryExecutor" in message
    assert ti.xcoms == {}  # nothing pushed, no folder made
    assert not (tmp_path / "home").exists()


@pytest.mark.airflow
def test_sql_extract_refuses_the_default_under_celery_before_the_query(celery: None) -> None:
    operator = BillbeeExtractCustomersSqlOperator(task_id="extract", conn_id="no_such_conn", sql="SELECT 1")
    with pytest.raises(AirflowFailException, match=r"\[billbee\] import_storage"):
        operator.execute(context())


@pytest.mark.airflow
def test_an_explicit_local_folder_under_celery_runs_with_a_warning(
    celery: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "c.csv"
    source.write_text("Name;Email\nA;a@example.de\n", encoding="utf-8")
    operator = BillbeeExtractCustomersOperator(
        task_id="extract", source=str(source), output_dir=str(tmp_path / "o")
    )
    capsys.readouterr()
    result = operator.execute({**context(), "ti": TI()})  # the task logger writes to stdout
    assert Path(result["path"]).read_bytes() == source.read_bytes()
    logged = capsys.readouterr().out
    assert "warning" in logged and "shared mount" in logged and "(output_dir)" in logged

    monkeypatch.setenv(STORAGE_ENV, str(tmp_path / "nfs"))
    result = BillbeeExtractCustomersOperator(task_id="extract", source=str(source)).execute(
        {**context("r2"), "ti": TI()}
    )
    assert result["path"] == f"{tmp_path}/nfs/billbee_import_customers/r2/source.csv"
    assert "([billbee] import_storage)" in capsys.readouterr().out


@pytest.mark.airflow
def test_the_default_under_the_local_executor_is_fine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    source = tmp_path / "c.csv"
    source.write_text("Name;Email\nA;a@example.de\n", encoding="utf-8")
    result = BillbeeExtractCustomersOperator(task_id="extract", source=str(source)).execute(
        {**context("r3"), "ti": TI()}
    )
    assert result["path"].startswith(f"{tmp_path}/home/billbee-imports/billbee_import_customers/r3/")
