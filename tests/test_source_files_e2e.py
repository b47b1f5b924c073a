"""Source files as Excel and shops write them, through `airflow dags test billbee_import_customers`.

The DAG's form params ``encoding`` and ``delimiter`` reach the validate task; a source
inside the output folder is never damaged; a web address is refused before any request.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.sandbox_client import Sandbox

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

SAMPLE = REPO / "dags" / "data" / "customers_sample.csv"
HEADER = [
    "Name",
    "Email",
    "Type",
    "Address.Street",
    "Address.City",
    "Address.CountryCode",
    "Address.AddressType",
]


def _rows(tag: str) -> list[list[str]]:
    return [
        ["Sabine Müller", f"sabine.{tag}@example.de", "0", "Straße des 17. Juni", "Köln", "DE", "1"],
        ["Jürgen Weiß", f"juergen.{tag}@example.de", "0", "Königsallee", "Düsseldorf", "DE", "1"],
    ]


def _file_text(rows: list[list[str]], delimiter: str) -> str:
    return "".join(delimiter.join(cells) + "\r\n" for cells in [HEADER, *rows])


def _bodies(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    posts = sandbox.journal("/api/v1/customers", "POST")
    bodies = [json.loads(post["body"]) for post in posts]
    return {body["Email"]: body for body in bodies}


def _output(done: Any) -> str:
    return str(done.stdout + done.stderr)


def test_cp1252_and_excel_unicode_text_arrive_exactly(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, tmp_path: Path
) -> None:
    cp1252_rows, utf16_rows = _rows("cp"), _rows("utf16")
    # Excel's "CSV (Trennzeichen-getrennt)": cp1252, `;`; chosen in the form.
    cp1252 = tmp_path / "kunden.csv"
    cp1252.write_bytes(_file_text(cp1252_rows, ";").encode("cp1252"))
    # Excel's "Unicode-Text": UTF-16LE with a byte order mark, tab-separated; `auto` detects both.
    utf16 = tmp_path / "kunden.txt"
    utf16.write_bytes("\ufeff".encode("utf-16-le") + _file_text(utf16_rows, "\t").encode("utf-16-le"))
    runs = [(cp1252, {"encoding": "cp1252"}), (utf16, {"encoding": "auto", "delimiter": "auto"})]
    for number, (source, settings) in enumerate(runs):
        conf = {"source": str(source), "output_dir": str(tmp_path / f"run{number}"), **settings}
        done = run_airflow("dags", "test", "billbee_import_customers", "-c", json.dumps(conf))
        assert done.returncode == 0 and "state=success" in _output(done), _output(done)[-3000:]
    bodies = _bodies(secret_sandbox)
    for name, email, _, street, city, *_rest in cp1252_rows + utf16_rows:
        assert bodies[email]["Name"] == name
        assert bodies[email]["Address"]["Street"] == street and bodies[email]["Address"]["City"] == city
    assert len(bodies) == 4


def test_cp1252_chosen_for_a_utf8_file_is_refused_before_anything_is_sent(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, tmp_path: Path
) -> None:
    conf = {"source": str(SAMPLE), "output_dir": str(tmp_path), "encoding": "cp1252"}
    done = run_airflow("dags", "test", "billbee_import_customers", "-c", json.dumps(conf))
    assert done.returncode != 0 or "state=failed" in _output(done)
    assert "the file is UTF-8, but encoding 'cp1252' was chosen" in _output(done)
    assert secret_sandbox.journal(method="POST") == []


def test_a_source_inside_the_output_folder_is_never_damaged(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, tmp_path: Path
) -> None:
    """The extract task would write its snapshot over the source: it refuses, before opening anything."""
    out = tmp_path / "run"
    out.mkdir()
    source = out / "source.csv"
    source.write_bytes(SAMPLE.read_bytes())
    conf = {"source": str(source), "output_dir": str(out)}
    done = run_airflow("dags", "test", "billbee_import_customers", "-c", json.dumps(conf))
    assert source.read_bytes() == SAMPLE.read_bytes()  # byte-identical
    assert done.returncode != 0 or "state=failed" in _output(done)
    assert f"the source {source} is the file this task writes ({source}): it would be overwritten" in _output(
        done
    )
    assert "choose another output folder (param 'output_dir'" in _output(done)
    assert secret_sandbox.journal(method="POST") == []
    assert sorted(p.name for p in out.iterdir()) == ["source.csv"]


def test_a_web_address_is_refused_before_any_request(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, tmp_path: Path
) -> None:
    """A loopback server that never answers: the run ends in seconds, and nobody connected."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/customers.csv"
        started = time.monotonic()
        conf = {"source": url, "output_dir": str(tmp_path)}
        done = run_airflow("dags", "test", "billbee_import_customers", "-c", json.dumps(conf))
        elapsed = time.monotonic() - started
        assert select.select([server], [], [], 0.2)[0] == []  # no connection was ever made
    print(f"http source refused, whole DAG run: {elapsed:.1f} s")
    assert done.returncode != 0 or "state=failed" in _output(done)
    assert f"{url}: web addresses (http://) are not supported as import files" in _output(done)
    assert "No filesystem registered" not in _output(done)
    assert secret_sandbox.journal(method="POST") == []
