"""What a user would write instead of the importer: Airflow's HttpOperator mapped over bodies.

Benchmark 1 (a) runs it with ``airflow dags test``. The bodies come from the JSON file
named by ``BILLBEE_BENCH_BODIES``; the connection ``bench_billbee_http`` (an ``http``
connection set by environment) points at the sandbox. One mapped task per customer, no
pacing, Airflow's default of no retries: a 429 fails its task.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from airflow.providers.http.operators.http import HttpOperator
from airflow.sdk import dag

BODIES = os.environ.get("BILLBEE_BENCH_BODIES", "")
HEADERS = {
    "X-Billbee-Api-Key": os.environ.get("BILLBEE_BENCH_API_KEY", ""),
    "Content-Type": "application/json",
}


@dag(dag_id="bench_http_operator", schedule=None, catchup=False)
def bench_http_operator() -> None:
    bodies = json.loads(Path(BODIES).read_text(encoding="utf-8")) if BODIES else []
    HttpOperator.partial(
        task_id="create",
        http_conn_id="bench_billbee_http",
        endpoint="/api/v1/customers",
        method="POST",
        headers=HEADERS,
    ).expand(data=[json.dumps(b) for b in bodies])


bench_http_operator()
