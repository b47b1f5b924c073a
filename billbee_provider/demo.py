"""``make demo``: the provider end to end against the local Billbee sandbox.

Starts the sandbox, points ``billbee_default`` at it (as ``AIRFLOW_CONN_BILLBEE_DEFAULT``),
runs the example DAG ``billbee_create_customer`` with ``airflow dags test``, prints the
created customer's Id and stops the sandbox. Expects ``AIRFLOW_HOME`` with a migrated
metadata DB and ``AIRFLOW__CORE__DAGS_FOLDER`` pointing at ``dags/`` (the Makefile
sets both).

This module does not import Airflow; it runs the Airflow CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from billbee_provider.client import BillbeeClient
from billbee_provider.config import BillbeeConfig
from billbee_provider.sandbox import SandboxConfig
from billbee_provider.sandbox.server import SandboxServer

DAG_ID = "billbee_create_customer"


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
        log = home / "demo-dags-test.log"
        if not _run_dag(server, log):
            print(f"airflow dags test {DAG_ID} failed; its output is in {log}", file=sys.stderr)
            return 1
        return _report(server, log)


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


def _run_dag(server: SandboxServer, log: Path) -> bool:
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = {**os.environ, "AIRFLOW_CONN_BILLBEE_DEFAULT": _connection(server)}
    print(f"Running: airflow dags test {DAG_ID}  (output: {log})")
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [airflow, "dags", "test", DAG_ID], env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    return done.returncode == 0 and "state=success" in log.read_text(encoding="utf-8")


def _report(server: SandboxServer, log: Path) -> int:
    cfg = server.config
    config = BillbeeConfig(
        base_url=server.base_url, api_key=cfg.api_key, user=cfg.user, password=cfg.api_password
    )
    with BillbeeClient(config) as client:
        customers = list(client.iter_customers())
    if len(customers) != 1:
        print(f"Expected 1 customer in the sandbox, found {len(customers)}; see {log}", file=sys.stderr)
        return 1
    print(f"Created Billbee customer Id={customers[0]['Id']} in the sandbox (DAG {DAG_ID}, run log {log})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
