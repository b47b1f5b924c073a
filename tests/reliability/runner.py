"""One import in a child process, for the SIGKILL tests, the two-imports run and the soak.

``python -m tests.reliability.runner '<spec JSON>'`` with the spec keys ``config``
(:class:`~billbee_provider.api.config.BillbeeConfig` fields), ``staging``, ``ledger``,
``results``, ``rejects``, ``lock_dir`` and optionally ``max_in_flight``, ``seed`` (of
the backoff jitter) or ``jitter`` (a fixed jitter factor in [0, 1), e.g. 0.05 for short
backoff waits; it wins over ``seed``). Prints the summary as one JSON line on stdout; warnings go to
stderr. Exit status 0 after a completed import, 1 after an error. It imports neither
Airflow nor the test fixtures, so that it starts fast.
"""

from __future__ import annotations

import json
import logging
import random
import sys
from collections.abc import Callable
from typing import Any

from billbee_provider.api.client import BillbeeClient
from billbee_provider.api.config import BillbeeConfig
from billbee_provider.imports.create import import_customers
from billbee_provider.imports.ledger import Ledger


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the import the spec describes and return its summary."""
    rng: Callable[[], float]
    if "jitter" in spec:
        factor = float(spec["jitter"])
        rng = lambda: factor  # noqa: E731
    else:
        rng = random.Random(spec.get("seed")).random  # backoff jitter, not security
    with (
        BillbeeClient(BillbeeConfig(**spec["config"]), rng=rng) as client,
        Ledger(spec["ledger"]) as ledger,
    ):
        summary = import_customers(
            spec["staging"],
            client=client,
            ledger=ledger,
            results_path=spec["results"],
            rejects_path=spec["rejects"],
            lock_dir=spec["lock_dir"],
            max_in_flight=int(spec.get("max_in_flight", 8)),
            progress_every=60.0,
        )
    return summary.as_dict()


def main(argv: list[str]) -> int:
    """Entry point: ``argv[1]`` is the spec as JSON."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
    print(json.dumps(run(json.loads(argv[1]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
