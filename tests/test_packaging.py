"""The distribution as users get it: sdist and wheel build, the wheel installs cleanly.

The slow tests build the sdist and, from it, the wheel (``python -m build``), install the
wheel with ``pip install -c constraints.txt`` (no extras) into a fresh virtualenv and
check there, away from this source tree, that Airflow finds the provider and the
``billbee`` connection type, that the non-sandbox modules import with the declared
dependencies alone, and that ``billbee-sandbox`` answers ``--help`` and names the
``[sandbox]`` extra when its server dependencies are missing. pip's cache is reused;
packages come from the package index on the first run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTION = "airflow-provider-billbee"
VERSION = "0.1.0"
SCHEMA = "billbee_provider/customers/create_customer.schema.json"
INSTALL_HINT = "pip install 'airflow-provider-billbee[sandbox]'"
# What a source checkout may hold that is no part of the project's source.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    ".airflow",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "*.sqlite",
)
# The modules the provider's users import; none of them may need the [sandbox] extra.
PROVIDER_MODULES = (
    "billbee_provider.hooks.billbee",
    "billbee_provider.operators.customers",
    "billbee_provider.operators.imports",
)


def _run(command: list[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the sdist, then the wheel from it, from a copy of the source tree."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    # A copy: building writes *.egg-info into the tree, and must not see local leftovers.
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    out = root / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], timeout=600, cwd=root)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "root": root}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_and_sdist_hold_the_package_and_nothing_else(dists: dict[str, Path]) -> None:
    wheel, sdist = dists["wheel"], dists["sdist"]
    assert wheel.name == f"airflow_provider_billbee-{VERSION}-py3-none-any.whl"
    assert sdist.name == f"airflow_provider_billbee-{VERSION}.tar.gz"

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = f"airflow_provider_billbee-{VERSION}.dist-info"
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert SCHEMA in names
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {"billbee_provider", dist_info}, top_level
    assert not [name for name in names if "/tests/" in name or "/dags/" in name or "conftest" in name]
    assert "provider_info = billbee_provider.get_provider_info:get_provider_info" in entry_points
    assert "billbee-sandbox = billbee_provider.sandbox.__main__:main" in entry_points
    requires = [
        line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: ")
    ]
    required = {r.split(">", 1)[0].split("[", 1)[0].split(";", 1)[0].strip().lower() for r in requires}
    for needed in ("apache-airflow", "requests", "urllib3", "jinja2", "fsspec", "jsonschema"):
        assert needed in required, f"{needed} is not declared: {requires}"
    sandbox_extra = [r for r in requires if 'extra == "sandbox"' in r]
    assert {r.split(">", 1)[0] for r in sandbox_extra} == {"fastapi", "starlette", "uvicorn"}, requires

    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", SCHEMA, "docs/architecture.md"} <= members
    assert not [name for name in members if name.startswith("tests/")], "a partial test suite"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_installs_into_a_fresh_venv(dists: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    bin_dir = venv / "bin"
    # A clean environment: nothing of this checkout, this venv or the tests' Airflow set-up.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    # cwd outside the checkout, so that `python -c` cannot import billbee_provider from it.
    run = {"env": env, "cwd": tmp_path}
    pip = [str(bin_dir / "python"), "-m", "pip"]
    _run([*pip, "install", "-c", str(REPO / "constraints.txt"), str(dists["wheel"])], timeout=900, **run)

    # Airflow finds the provider and its version (from the distribution's metadata).
    listed = _run(["airflow", "providers", "list", "-o", "json"], timeout=300, **run)
    providers = {p["package_name"]: p for p in json.loads(listed.stdout)}
    assert providers[DISTRIBUTION]["version"] == VERSION, providers.get(DISTRIBUTION)

    # ... and the connection type, with its form.
    hooks = _run(["airflow", "providers", "hooks", "-o", "json"], timeout=300, **run)
    billbee = [hook for hook in json.loads(hooks.stdout) if hook["connection_type"] == "billbee"]
    assert billbee == [
        {
            "connection_type": "billbee",
            "class": "billbee_provider.hooks.billbee.BillbeeHook",
            "conn_id_attribute_name": "billbee_conn_id",
            "package_name": DISTRIBUTION,
            "hook_name": "Billbee",
        }
    ]
    form = _run(
        [
            "python",
            "-c",
            "import json; from airflow.providers_manager import ProvidersManager as P; p = P(); "
            "print(json.dumps({'behaviour': p.field_behaviours.get('billbee'), "
            "'fields': sorted(k for k in p.connection_form_widgets if k.startswith('extra__billbee__'))}))",
        ],
        timeout=300,
        **run,
    )
    shown = json.loads(form.stdout.strip().splitlines()[-1])
    assert shown["behaviour"]["hidden_fields"] == ["port", "schema"]
    assert "extra__billbee__api_key" in shown["fields"]

    # The non-sandbox code imports with the declared dependencies alone, from the venv.
    imported = _run(
        [
            "python",
            "-c",
            f"import {', '.join(PROVIDER_MODULES)}; import billbee_provider as b; print(b.__file__)",
        ],
        timeout=300,
        **run,
    )
    assert imported.stdout.strip().startswith(str(venv)), imported.stdout

    assert "usage: billbee-sandbox" in _run(["billbee-sandbox", "--help"], timeout=60, **run).stdout

    # Without its server dependencies the sandbox says which extra to install (uvicorn
    # comes with Airflow's API server, so it is removed here by hand).
    _run([*pip, "uninstall", "--yes", "uvicorn"], timeout=300, **run)
    assert "usage: billbee-sandbox" in _run(["billbee-sandbox", "--help"], timeout=60, **run).stdout
    missing = subprocess.run(
        ["billbee-sandbox", "--db", ":memory:"], capture_output=True, text=True, timeout=60, **run
    )
    assert missing.returncode == 2, missing.stderr
    assert INSTALL_HINT in missing.stderr
    assert "Traceback" not in missing.stderr


# Run the command line as if fastapi, starlette and uvicorn were not installed.
_BLOCK_SERVER = (
    "import sys; sys.modules.update(dict.fromkeys(['fastapi', 'starlette', 'uvicorn'])); "
    "from billbee_provider.sandbox.__main__ import main"
)


def test_sandbox_help_needs_no_server_dependencies() -> None:
    code = f"{_BLOCK_SERVER}; sys.exit(main(['--help']))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: billbee-sandbox" in result.stdout


def test_missing_server_dependencies_name_the_extra() -> None:
    code = f"{_BLOCK_SERVER}; sys.exit(main(['--db', ':memory:']))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert INSTALL_HINT in lines[0]
    assert "uvicorn" in lines[0]
