"""Benchmarks 4, 5 and 7: what the provider costs next to the API limit.

4. Extract + map + validate of a CSV (``iter_csv`` -> ``body_from_dotted`` -> ``prepare``
   into staging and rejects files) against per-row ``jsonschema.validate`` and a bare
   compiled ``Draft202012Validator`` reused across already-mapped bodies.
5. Peak RSS of one process running extract (file snapshot) + validate + create dry run,
   minus that of a 30-row run; 100k vs 1M rows.
7. Parse time of each example DAG file vs a trivial DAG file (fresh interpreters, Airflow
   imported first), and ``import billbee_provider`` beyond Airflow's own import.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.common import REPO, SandboxProcess, median, report, sandbox, target, write_csv


def validate_ours(csv_path: Path, out: Path) -> tuple[float, int]:
    from billbee_provider.customers.mapping import body_from_dotted
    from billbee_provider.imports.extract_csv import iter_csv
    from billbee_provider.imports.validate import prepare

    start = time.perf_counter()
    summary = prepare(
        iter_csv(csv_path),
        lambda row: body_from_dotted(row.fields),
        staging=out / "staging.jsonl",
        rejects=out / "rejects.csv",
    )
    return time.perf_counter() - start, summary.valid


def bench_validate(tmp: Path, *, smoke: bool = False) -> dict[str, Any]:
    """Benchmark 4."""
    import jsonschema
    from jsonschema import Draft202012Validator

    from billbee_provider.customers.mapping import body_from_dotted
    from billbee_provider.customers.schema import _format_checker, load_schema
    from billbee_provider.imports.extract_csv import iter_csv

    rows, naive_rows, reps = (300, 20, 1) if smoke else (100_000, 1_000, 3)
    csv_path = write_csv(tmp / "validate.csv", rows)
    bodies = [body_from_dotted(r.fields)[0] for r in iter_csv(csv_path)]
    schema = load_schema()
    bare = Draft202012Validator(schema, format_checker=_format_checker())
    ours, bare_s = [], []
    for rep in range(reps):  # interleaved: the same machine load for both
        out = tmp / f"validate-{rep}"
        out.mkdir()
        seconds, valid = validate_ours(csv_path, out)
        assert valid == rows, valid
        ours.append(rows / seconds)
        start = time.perf_counter()
        assert all(bare.is_valid(b) for b in bodies)
        bare_s.append(rows / (time.perf_counter() - start))
        shutil.rmtree(out)
    start = time.perf_counter()
    for b in bodies[:naive_rows]:
        jsonschema.validate(b, schema, format_checker=_format_checker())
    naive = naive_rows / (time.perf_counter() - start)
    ours_rate, bare_rate = median(ours), median(bare_s)
    table = [
        ["ours: CSV -> extract -> map -> validate -> staging/rejects files", rows, reps, round(ours_rate)],
        [
            "bare compiled Draft202012Validator.is_valid on mapped bodies (no I/O)",
            rows,
            reps,
            round(bare_rate),
        ],
        ["naive per-row jsonschema.validate(row, schema)", naive_rows, 1, round(naive, 1)],
    ]
    return report(
        "4-validate",
        "4. Extract + map + validate",
        ["pipeline", "rows", "reps", "rows/s (median)"],
        table,
        [
            target(">= 10,000 rows/s on one core", round(ours_rate), ours_rate >= 10_000),
            target(">= the bare compiled validator", f"{ours_rate / bare_rate:.2f}x", ours_rate >= bare_rate),
            target("(context) vs naive per-row validate", f"{ours_rate / naive:.0f}x", True),
        ],
        {"rows": rows, "naive_rows": naive_rows, "reps": reps},
        smoke,
    )


def memory_worker(csv_path: str, out: str, base_url: str) -> None:
    """One task process: extract (snapshot copy) + validate + create dry run; print peak RSS."""
    from billbee_provider.api.client import BillbeeClient
    from billbee_provider.customers.mapping import body_from_dotted
    from billbee_provider.imports.create import import_customers
    from billbee_provider.imports.extract_csv import iter_csv
    from billbee_provider.imports.ledger import Ledger
    from billbee_provider.imports.storage import open_read, replace
    from billbee_provider.imports.validate import prepare

    workdir = Path(out)
    snapshot = workdir / "source.csv"
    with open_read(Path(csv_path)) as src, replace(snapshot) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    prepare(
        iter_csv(snapshot),
        lambda row: body_from_dotted(row.fields),
        staging=workdir / "staging.jsonl",
        rejects=workdir / "rejects.csv",
    )
    server = SandboxProcess.__new__(SandboxProcess)
    server.base_url, server.user = base_url, "sandbox@example.com"
    with BillbeeClient(server.client_config()) as client, Ledger(workdir / "ledger.jsonl") as ledger:
        summary = import_customers(
            workdir / "staging.jsonl",
            client=client,
            ledger=ledger,
            results_path=workdir / "results.csv",
            rejects_path=workdir / "rejects.csv",
            dry_run=True,
            lock_dir=workdir,
            progress_every=60,
        )
    # VmHWM: this process's own peak. ru_maxrss would not do: Linux keeps, across exec, the
    # peak of the process it was forked from (the benchmark runner, hundreds of MB).
    status = Path("/proc/self/status").read_text()
    peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({"peak_mb": peak_kb / 1024, "would_create": summary.counts["would_create"]}))


def bench_memory(tmp: Path, *, smoke: bool = False) -> dict[str, Any]:
    """Benchmark 5."""
    sizes = (30, 300, 3_000) if smoke else (30, 100_000, 1_000_000)
    results = {}
    with sandbox(tmp / "memory.sqlite") as server:
        for rows in sizes:
            csv_path = write_csv(tmp / f"memory-{rows}.csv", rows)
            out = tmp / f"memory-{rows}"
            out.mkdir()
            start = time.monotonic()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.benchmarks.bench_local",
                    "memory-worker",
                    str(csv_path),
                    str(out),
                    server.base_url,
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=1800,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            assert result["would_create"] == rows, result
            results[rows] = (result["peak_mb"], time.monotonic() - start)
            shutil.rmtree(out)
            csv_path.unlink()
    base = results[sizes[0]][0]
    table = [
        [
            rows,
            round(peak, 1),
            round(peak - base, 1),
            round((peak - base) * 1024 * 1024 / rows) if rows > 30 else 0,
            round(secs, 1),
        ]
        for rows, (peak, secs) in results.items()
    ]
    big, mid = results[sizes[-1]][0] - base, results[sizes[1]][0] - base
    return report(
        "5-memory",
        "5. Memory: extract + validate + create (dry run) in one process",
        ["rows", "peak RSS MB", "minus 30-row run MB", "bytes/row", "seconds"],
        table,
        [
            target(f"< 50 MB extra at {sizes[-1]:,} rows", f"{big:.1f} MB", big < 50),
            target(f"flat: {sizes[1]:,} vs {sizes[-1]:,} rows", f"{mid:.1f} vs {big:.1f} MB", big - mid < 10),
        ],
        {"sizes": sizes},
        smoke,
        notes=[
            "Peak RSS (VmHWM) of a fresh Python process that copies the CSV into its run folder, "
            "validates it into staging/rejects and runs import_customers(dry_run=True) against an "
            "empty sandbox (scan included). Airflow itself is not loaded in this process."
        ],
    )


TRIVIAL_DAG = """from airflow.sdk import dag, task


@dag(dag_id="trivial", schedule=None)
def trivial():
    @task
    def hello():
        return 1

    hello()


trivial()
"""

PARSE = """
import importlib.util, sys, time
sys.path[:0] = [{dags!r}, {repo!r}]
import airflow.sdk  # Airflow first: what every DAG file pays anyway
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("dagfile", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print((time.perf_counter() - start) * 1000)
"""

IMPORT = """
import sys, time
sys.path.insert(0, {repo!r})
start = time.perf_counter()
import airflow, airflow.sdk
mid = time.perf_counter()
{extra}
print((mid - start) * 1000, (time.perf_counter() - mid) * 1000)
"""


FULL_IMPORT = (
    "import billbee_provider, billbee_provider.hooks.billbee, billbee_provider.operators.customers, "
    "billbee_provider.operators.imports"
)


def _ms(code: str) -> list[float]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()
    )
    return [float(x) for x in done.stdout.split()]


def bench_parse(tmp: Path, *, smoke: bool = False) -> dict[str, Any]:
    """Benchmark 7."""
    reps = 1 if smoke else 7
    trivial = tmp / "trivial_dag.py"
    trivial.write_text(TRIVIAL_DAG)
    files = [trivial, *sorted(p for p in (REPO / "dags").glob("billbee_*.py"))][: 2 if smoke else None]
    times: dict[str, list[float]] = {f.name: [] for f in files}
    for _ in range(reps):  # interleaved
        for f in files:
            times[f.name].append(_ms(PARSE.format(dags=str(REPO / "dags"), repo=str(REPO), path=str(f)))[0])
    base = median(times[trivial.name])
    table, targets = [], []
    for f in files:
        ms = median(times[f.name])
        table.append([f.name, reps, round(ms, 1), round(ms - base, 1)])
        if f is not trivial:
            targets.append(
                target(f"{f.name}: <= 50 ms over the trivial DAG", f"{ms - base:+.1f} ms", ms - base <= 50)
            )
    airflow_ms, alone_ms, ours_ms = [], [], []
    for _ in range(reps):
        a, b = _ms(IMPORT.format(repo=str(REPO), extra="import billbee_provider"))
        airflow_ms.append(a)
        alone_ms.append(b)
        ours_ms.append(_ms(IMPORT.format(repo=str(REPO), extra=FULL_IMPORT))[1])
    table.append(["import airflow + airflow.sdk (cold)", reps, round(median(airflow_ms), 1), "-"])
    table.append(["then import billbee_provider", reps, round(median(alone_ms), 1), "-"])
    table.append(
        ["then billbee_provider + hook + every operator module", reps, round(median(ours_ms), 1), "-"]
    )
    targets.append(
        target(
            "import billbee_provider < 100 ms beyond Airflow's",
            f"{median(alone_ms):.1f} ms",
            median(alone_ms) < 100,
        )
    )
    targets.append(
        target(
            "(also) + hook and operators < 100 ms beyond Airflow's",
            f"{median(ours_ms):.1f} ms",
            median(ours_ms) < 100,
        )
    )
    return report(
        "7-dag-parse",
        "7. DAG parse time (fresh interpreter, Airflow imported first)",
        ["file", "reps", "ms (median)", "ms over trivial"],
        table,
        targets,
        {"reps": reps},
        smoke,
    )


if __name__ == "__main__":
    if sys.argv[1] == "memory-worker":
        memory_worker(*sys.argv[2:5])
    else:
        with tempfile.TemporaryDirectory(prefix="billbee-bench-") as tmpdir:
            {"4": bench_validate, "5": bench_memory, "7": bench_parse}[sys.argv[1]](
                Path(tmpdir), smoke="--smoke" in sys.argv
            )
