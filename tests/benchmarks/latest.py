"""Print the latest full (non-smoke) table of each benchmark in results.jsonl, as Markdown.

``python -m tests.benchmarks.latest`` is what docs/performance.md's tables are pasted from.
"""

from __future__ import annotations

import json
import sys

from tests.benchmarks.common import RESULTS


def main() -> int:
    latest: dict[str, dict[str, str]] = {}
    for line in RESULTS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        name = record["benchmark"]
        if not record["smoke"] and (name not in latest or record["time"] >= latest[name]["time"]):
            latest[name] = record
    for name in sorted(latest):
        record = latest[name]
        machine: dict[str, str] = record["machine"]  # type: ignore[assignment]
        print(f"{record['table']}\n\n(run {record['time']} on {machine['cpu']}, {machine['cores']} cores)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
