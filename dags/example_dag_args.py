"""The ``@dag`` arguments the example DAGs share (ignored by the DAG processor: no DAG here).

Examples run when triggered (no schedule, no catch-up); an import DAG also runs one
run at a time, since two runs of one account would compete for the same rate limit.

The import DAGs' ``create`` task retries (3 times, 30 s, 60 s, 120 s apart): it gets
:data:`~billbee_provider.operators.import_group.CREATE_RETRY_ARGS` from
``customer_import_group()``. Retries are safe there because of the ledger; the other
tasks do not retry (what fails them is a file or a setting a retry cannot fix).
"""

from __future__ import annotations

from typing import Any

import pendulum

#: Arguments of every example DAG.
EXAMPLE_DAG_ARGS: dict[str, Any] = {
    "schedule": None,
    "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
    "catchup": False,
    "tags": ["billbee", "example"],
}
#: Arguments of the example import DAGs.
IMPORT_DAG_ARGS: dict[str, Any] = {**EXAMPLE_DAG_ARGS, "max_active_runs": 1}
