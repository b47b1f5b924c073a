"""One import in a child process, for the SIGKILL test.

``python -m tests.importer.runner '<spec JSON>'`` with the spec keys ``config``
(BillbeeConfig fields), ``staging``, ``ledger``, ``results``, ``rejects``; prints the
summary as JSON. It imports neither Airflow nor the test fixtures.
"""

from __future__ import annotations

import json
import sys

from billbee_provider.api.client import BillbeeClient
from billbee_provider.api.config import BillbeeConfig
from billbee_provider.imports.create import import_customers
from billbee_provider.imports.ledger import Ledger


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    with (
        BillbeeClient(BillbeeConfig(**spec["config"]), rng=lambda: 0.05) as client,
        Ledger(spec["ledger"]) as ledger,
    ):
        summary = import_customers(
            spec["staging"],
            client=client,
            ledger=ledger,
            results_path=spec["results"],
            rejects_path=spec["rejects"],
        )
    print(json.dumps(summary.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
