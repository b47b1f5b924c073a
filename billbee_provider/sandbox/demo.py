"""``make demo``: the provider end to end against the local Billbee sandbox.

Starts the sandbox, points ``billbee_default`` at it (as ``AIRFLOW_CONN_BILLBEE_DEFAULT``),
runs the example DAGs with ``airflow dags test``: ``billbee_create_customer`` (prints
the created customer's Id) and ``billbee_import_customers`` on the shipped sample CSV
(prints the summary and where the rejects and results files are), then stops the
sandbox. Expects ``AIRFLOW_HOME`` with a migrated metadata DB, the ``billbee_api``
pool, and ``AIRFLOW__CORE__DAGS_FOLDER`` pointing at ``dags/`` (the Makefile does all).

This module does not import Airflow; it runs the Airflow CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from billbee_provider.api.client import BillbeeClient
from billbee_provider.api.config import BillbeeConfig
from billbee_provider.imports.report import format_table
from billbee_provider.sandbox import SandboxConfig
from billbee_provider.sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765, help="sandbox port (0: any free port)")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    sandbox = SandboxConfig(port=args.port, db_path=home / "demo-sandbox.sqlite", reset=True)
    with SandboxServer(sandbox) as server:
        print(f"Billbee sandbox running at {server.base_url}")
        if not _run_dag(server, "billbee_create_customer", {}, home / "demo-create-customer.log"):
            return 1
        ids = [c["Id"] for c in _customers(server)]
        if len(ids) != 1:
            print(f"Expected 1 customer in the sandbox, found {len(ids)}", file=sys.stderr)
            return 1
        print(f"Created Billbee customer Id={ids[0]} in the sandbox")
        out = home / "demo-import"
        # The sandbox starts empty on every demo: so must the import's folder. Its ledger
        # from the last demo would carry "created" over for customers this sandbox never
        # had (a real output folder keeps its ledger: that is what prevents duplicates).
        shutil.rmtree(out, ignore_errors=True)
        if not _run_dag(
            server, "billbee_import_customers", {"output_dir": str(out)}, home / "demo-import.log"
        ):
            return 1
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        print(f"billbee_import_customers on the sample CSV:\n{format_table(summary)}")
        print(f"Customers now in the sandbox: {len(_customers(server))}")
    return 0


def _connection(server: SandboxServer) -> str:
    cfg = server.config
    return json.dumps(
        {
            "conn_type": "billbee",
            "host": server.base_url,
            "login": cfg.user,
            "password": cfg.api_password,
            "extra": {"api_key": cfg.api_key},
        }
    )


def _run_dag(server: SandboxServer, dag_id: str, conf: dict[str, str], log: Path) -> bool:
    """``airflow dags test`` one DAG with the sandbox as ``billbee_default``; True on success."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {**os.environ, "AIRFLOW_CONN_BILLBEE_DEFAULT": _connection(server)}
    print(f"Running: airflow dags test {dag_id}  (output: {log})")
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [airflow, "dags", "test", dag_id, "-c", json.dumps(conf)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode == 0 and "state=success" in log.read_text(encoding="utf-8"):
        return True
    print(f"airflow dags test {dag_id} failed; its output is in {log}", file=sys.stderr)
    return False


def _customers(server: SandboxServer) -> list[dict[str, object]]:
    cfg = server.config
    config = BillbeeConfig(
        base_url=server.base_url, api_key=cfg.api_key, user=cfg.user, password=cfg.api_password
    )
    with BillbeeClient(config) as client:
        return list(client.iter_customers())


if __name__ == "__main__":
    raise SystemExit(main())
