"""The tab reads only files that look like the import's own, whatever its XCom names."""

from __future__ import annotations

from pathlib import Path

import pytest

from billbee_provider.imports.files import REJECT_COLUMNS, RESULTS_COLUMNS
from billbee_provider.ui.panel_data import _has_header, _named_right

pytestmark = pytest.mark.airflow  # panel_data is the Airflow side of the tab


@pytest.mark.parametrize(
    ("kind", "location", "ok"),
    [
        ("results", "/runs/1/results.csv", True),
        ("results", "/etc/passwd", False),
        ("results", "/runs/1/results.csv.bak", False),
        ("progress", "s3://aws@bucket/runs/1/progress.json", True),
        ("progress", "/root/.aws/credentials", False),
        ("summary", "/runs/1/summary.json", True),
        ("summary", "/runs/1/airflow.cfg", False),
        ("rejects", "/runs/1/my-rejects.csv", True),  # a DAG may name its rejects file
        ("rejects", "/home/airflow/airflow.cfg", False),
        ("output_dir", "/runs/1", True),  # shown, never read
    ],
)
def test_only_the_import_files_names_are_taken(kind: str, location: str, ok: bool) -> None:
    assert _named_right(kind, location) is ok


def test_a_csv_is_served_only_with_the_import_files_header(tmp_path: Path) -> None:
    results = tmp_path / "results.csv"
    results.write_text("\ufeff" + ",".join(RESULTS_COLUMNS) + "\r\n1,a@b.de,5,created\r\n", encoding="utf-8")
    other = tmp_path / "other.csv"
    other.write_text("user,password\nadmin,secret\n", encoding="utf-8")
    assert _has_header(str(results), RESULTS_COLUMNS)
    assert not _has_header(str(results), REJECT_COLUMNS)
    assert not _has_header(str(other), RESULTS_COLUMNS)
    assert not _has_header(str(tmp_path / "missing.csv"), RESULTS_COLUMNS)
