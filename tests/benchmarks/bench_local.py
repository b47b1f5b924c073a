"""Benchmarks 4, 5 and 7: what the provider costs next to the API limit.

4. Extract + map + validate of a CSV (``iter_csv`` -> ``body_from_dotted`` -> ``prepare``
   into staging and rejects files) against per-row ``jsonschema.validate`` and a bare
   compiled ``Draft202012Validator`` reused across already-mapped bodies.
5. Peak RSS of one process running extract (file snapshot) + validate + create dry run,
   minus that of a 30-row run; 100k vs 1M rows.
7. Parse time of each example DAG file vs a trivial DAG file (fresh interpreters, Airflow
   imported first) and which heavy modules a DAG file loads at parse; ``import
   billbee_provider`` beyond Airflow's own import, and the hook + operator modules split
   into what the HTTP provider's ``HttpHook`` module costs (aiohttp most of it) and ours.
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

from tests.benchmarks.common import (
    REPO,
    import_in,
    median,
    memory_table,
    peak_rss_mb,
    report,
    run_worker,
    sandbox,
    sandbox_client_config,
    target,
    write_csv,
)


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
    from billbee_provider.customers.mapping import body_from_dotted
    from billbee_provider.imports.extract_csv import iter_csv
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
    summary = import_in(workdir, sandbox_client_config(base_url), dry_run=True)
    print(json.dumps({"peak_mb": peak_rss_mb(), "would_create": summary.counts["would_create"]}))


def bench_memory(tmp: Path, *, smoke: bool = False) -> dict[str, Any]:
    """Benchmark 5."""
    sizes = (30, 300, 3_000) if smoke else (30, 100_000, 1_000_000)
    peaks: dict[int, float] = {}
    seconds: dict[int, float] = {}
    with sandbox(tmp / "memory.sqlite") as server:
        for rows in sizes:
            csv_path = write_csv(tmp / f"memory-{rows}.csv", rows)
            out = tmp / f"memory-{rows}"
            out.mkdir()
            start = time.monotonic()
            args = [
                "-m",
                "tests.benchmarks.bench_local",
                "memory-worker",
                str(csv_path),
                str(out),
                server.base_url,
            ]
            result = run_worker(args)
            assert result["would_create"] == rows, result
            peaks[rows], seconds[rows] = result["peak_mb"], time.monotonic() - start
            shutil.rmtree(out)
            csv_path.unlink()
    table, targets = memory_table(sizes, peaks)
    return report(
        "5-memory",
        "5. Memory: extract + validate + create (dry run) in one process",
        ["rows", "peak RSS MB", "minus 30-row run MB", "bytes/row", "seconds"],
        [
            [*line, round(line[2] * 2**20 / line[0]) if line[0] > sizes[0] else 0, round(seconds[line[0]], 1)]
            for line in table
        ],
        targets,
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

# Modules a DAG file should leave to ``execute``: the HTTP provider's hook module (and
# aiohttp, which it imports at its top for HttpAsyncHook), our hook, jsonschema.
HEAVY = ("airflow.providers.http.hooks.http", "aiohttp", "billbee_provider.hooks.billbee", "jsonschema")

PARSE = """
import importlib.util, json, sys, time
sys.path[:0] = [{dags!r}, {repo!r}]
import airflow.sdk  # Airflow first: what every DAG file pays anyway
before = [m for m in {heavy!r} if m in sys.modules]
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("dagfile", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
ms = (time.perf_counter() - start) * 1000
print(json.dumps({{"ms": ms, "before": before, "after": [m for m in {heavy!r} if m in sys.modules]}}))
"""

# Run only when a DAG file loads a heavy module: which imports led to it (the modules whose
# top level was running, outermost first) and the line that imported it. Not timed.
TRACE = """
import importlib.util, json, sys
sys.path[:0] = [{dags!r}, {repo!r}]
import airflow.sdk
found = {{}}

class Tracer:
    def find_spec(self, name, path=None, target=None):
        if name in {heavy!r} and name not in sys.modules and name not in found:
            chain, line, frame = [], None, sys._getframe(1)
            while frame is not None:
                code = frame.f_code
                if line is None and not code.co_filename.startswith("<frozen"):
                    line = f"{{code.co_filename}}:{{frame.f_lineno}}"
                if code.co_name == "<module>" and frame.f_globals.get("__name__") != "__main__":
                    chain.append(frame.f_globals.get("__name__", "?"))
                frame = frame.f_back
            found[name] = {{"chain": chain[::-1], "line": line}}
        return None

sys.meta_path.insert(0, Tracer())
spec = importlib.util.spec_from_file_location("dagfile", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(found))
"""

# Each statement of ``steps`` is timed on its own, in order, after Airflow's import.
IMPORT = """
import sys, time
sys.path.insert(0, {repo!r})
marks = [time.perf_counter()]
import airflow, airflow.sdk
marks.append(time.perf_counter())
for statement in {steps!r}:
    exec(statement)
    marks.append(time.perf_counter())
print(*((b - a) * 1000 for a, b in zip(marks, marks[1:])))
"""

HTTP_HOOK = "import airflow.providers.http.hooks.http"


def _ours() -> str:
    """``import`` of the package, the hook and every operator module (as found on disk)."""
    operators = sorted(
        p.stem for p in (REPO / "billbee_provider" / "operators").glob("*.py") if not p.name.startswith("_")
    )
    modules = ["billbee_provider", "billbee_provider.hooks.billbee"]
    return "import " + ", ".join(modules + [f"billbee_provider.operators.{m}" for m in operators])


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()
    )
    return done.stdout


def _ms(code: str) -> list[float]:
    return [float(x) for x in _run(code).split()]


def _imports(*steps: str) -> list[float]:
    """[Airflow's import, then each step's] in ms, in one fresh interpreter."""
    return _ms(IMPORT.format(repo=str(REPO), steps=list(steps)))


def bench_parse(tmp: Path, *, smoke: bool = False) -> dict[str, Any]:
    """Benchmark 7."""
    reps = 1 if smoke else 7
    trivial = tmp / "trivial_dag.py"
    trivial.write_text(TRIVIAL_DAG)
    files = [trivial, *sorted(p for p in (REPO / "dags").glob("billbee_*.py"))][: 2 if smoke else None]
    dags = str(REPO / "dags")
    times: dict[str, list[float]] = {f.name: [] for f in files}
    loaded: dict[str, set[str]] = {f.name: set() for f in files}  # heavy modules the file loaded
    by_airflow: set[str] = set()  # heavy modules already there before any DAG file
    for _ in range(reps):  # interleaved
        for f in files:
            got = json.loads(_run(PARSE.format(dags=dags, repo=str(REPO), path=str(f), heavy=HEAVY)))
            times[f.name].append(got["ms"])
            loaded[f.name] |= set(got["after"]) - set(got["before"])
            by_airflow |= set(got["before"])
    base = median(times[trivial.name])
    table: list[list[Any]] = []
    targets, notes = [], []
    for f in files:
        ms = median(times[f.name])
        heavy = ", ".join(m for m in HEAVY if m in loaded[f.name]) or "none"
        table.append([f.name, reps, round(ms, 1), round(ms - base, 1), heavy])
        if f is not trivial:
            targets.append(
                target(f"{f.name}: <= 50 ms over the trivial DAG", f"{ms - base:+.1f} ms", ms - base <= 50)
            )
        if loaded[f.name]:
            found = json.loads(_run(TRACE.format(dags=dags, repo=str(REPO), path=str(f), heavy=HEAVY)))
            for name in HEAVY:
                if name in found:
                    via = " -> ".join(found[name]["chain"])
                    notes.append(f"{f.name} loads {name} at parse via {via} (at {found[name]['line']}).")
    dag_files = [f.name for f in files if f is not trivial]
    loaded_any = sorted({m for name in dag_files for m in loaded[name]}, key=HEAVY.index)
    targets.append(
        target(
            "example DAG files load none of " + ", ".join(HEAVY) + " at parse",
            ", ".join(loaded_any) or "none",
            not loaded_any,
        )
    )
    if by_airflow:
        notes.append(
            "Already in sys.modules after `import airflow.sdk`, before any DAG file runs (so a DAG "
            "file cannot be the one to load them): " + ", ".join(m for m in HEAVY if m in by_airflow) + "."
        )

    # Each list: one figure per rep, every rep in fresh interpreters after `import airflow, airflow.sdk`.
    ours = _ours()
    rows: dict[str, list[float]] = {}

    def add(label: str, value: float) -> None:
        rows.setdefault(label, []).append(value)

    for _ in range(reps):
        cold, package, requests_ms = _imports("import billbee_provider", "import requests")
        aiohttp_ms, http_rest = _imports("import aiohttp", HTTP_HOOK)[1:]
        http_ms, beyond_http = _imports(HTTP_HOOK, ours)[1:]
        total = _imports(ours)[1]
        add("import airflow + airflow.sdk (cold)", cold)
        add("then import billbee_provider", package)
        add("then import requests (alone)", requests_ms)
        add(f"then {HTTP_HOOK} (what any HttpHook subclass pays)", http_ms)
        add("of it: import aiohttp alone (only for HttpAsyncHook)", aiohttp_ms)
        add(f"of it: the rest, {HTTP_HOOK} after import aiohttp", http_rest)
        add("then hook + every operator module, the http hook module imported first (ours)", beyond_http)
        add("then billbee_provider + hook + every operator module (total)", total)
    for label, values in rows.items():
        table.append([label, reps, round(median(values), 1), "-", "-"])
    ours_ms = median(rows["then hook + every operator module, the http hook module imported first (ours)"])
    total_ms = median(rows["then billbee_provider + hook + every operator module (total)"])
    targets.append(
        target(
            "import billbee_provider < 100 ms beyond Airflow's",
            f"{median(rows['then import billbee_provider']):.1f} ms",
            median(rows["then import billbee_provider"]) < 100,
        )
    )
    targets.append(
        target(
            "hook + operators < 100 ms beyond Airflow + the HTTP provider's HttpHook module",
            f"{ours_ms:.1f} ms (total beyond Airflow's: {total_ms:.1f} ms)",
            ours_ms < 100,
        )
    )
    notes.append(
        "Import rows: median of the reps, each in a fresh interpreter, timed after `import airflow, "
        "airflow.sdk` (the first row is that import itself). Rows of one interpreter: billbee_provider "
        "then requests; aiohttp then the http hook module; the http hook module then ours; the total "
        f"alone. Ours: {ours.removeprefix('import ')}."
    )
    return report(
        "7-dag-parse",
        "7. DAG parse time (fresh interpreter, Airflow imported first)",
        ["file", "reps", "ms (median)", "ms over trivial", "heavy modules loaded at parse"],
        table,
        targets,
        {"reps": reps, "heavy": list(HEAVY)},
        smoke,
        notes,
    )


if __name__ == "__main__":
    if sys.argv[1] == "memory-worker":
        memory_worker(*sys.argv[2:5])
    else:
        with tempfile.TemporaryDirectory(prefix="billbee-bench-") as tmpdir:
            {"4": bench_validate, "5": bench_memory, "7": bench_parse}[sys.argv[1]](
                Path(tmpdir), smoke="--smoke" in sys.argv
            )
