"""A multi-worker Airflow on loopback: PostgreSQL, Redis, moto S3, the sandbox, two Celery workers.

What ``make test-cluster`` runs against, started from packages only (``tests/cluster/setup.sh``
installs them):

* PostgreSQL 15 (``initdb`` refuses root, so it runs as a system user made with ``useradd``);
* ``redis-server`` as the Celery broker;
* ``moto_server`` as S3 (from ``.venv``, the ``[test]`` extra);
* the Billbee sandbox at Billbee's real limits (2 requests/s per endpoint);
* Airflow's api-server, scheduler and dag-processor with the CeleryExecutor;
* two Celery workers, each in a mount and UTS namespace of its own (``unshare -m -u``): both
  see the same ``AIRFLOW_HOME`` and ``TMPDIR`` paths, backed by different folders, and
  have their own host name, as two machines without a shared disk would.

Every process runs in a session of its own and is stopped by its process group (a worker
also by its mount namespace), never by name. Logs go to ``<base>/logs/<name>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
CLUSTER_VENV = REPO / ".venv-cluster"
#: moto's S3 server, from the dev venv (the [test] extra).
MOTO_SERVER = REPO / ".venv" / "bin" / "moto_server"
#: The system user PostgreSQL runs as (initdb refuses root).
PG_USER = "billbee-cluster-pg"
#: The AWS connection of the moto S3 server, and the bucket of the tests.
AWS_CONN_ID = "aws_cluster"
BUCKET = "billbee-cluster"
WORKERS = ("w1", "w2")
#: Seconds after which the scheduler fails a task whose worker stopped heartbeating
#: (300 by default); low so that the kill test's retry comes soon, high enough that a
#: busy 2-core machine does not time out live tasks.
HEARTBEAT_TIMEOUT = 20


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file, or a note that it is missing."""
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, requests.RequestException, ValueError) as exc:
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s (last error: {last_error})")


@dataclass
class Process:
    """One started component: its Popen, log file, and (workers) its mount namespace."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    mount_ns: str | None = None

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Cluster:
    """The components, their ports and folders; :meth:`start` / :meth:`stop`."""

    base: Path
    pg_bin: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    # -- layout -----------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    @property
    def home(self) -> Path:
        """AIRFLOW_HOME as every process sees it (a worker sees its own folder there)."""
        return self.base / "home"

    @property
    def tmp(self) -> Path:
        """TMPDIR as every process sees it (a worker sees its own folder there)."""
        return self.base / "tmp"

    @property
    def dags(self) -> Path:
        return self.base / "dags"

    def worker_home(self, worker: str) -> Path:
        """The folder behind ``AIRFLOW_HOME`` inside ``worker``'s namespace."""
        return self.base / worker / "home"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['moto']}"

    def db_url(self, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://airflow@127.0.0.1:{self.ports['pg']}/airflow"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment every Airflow process shares."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV"))}
        env.update(
            PATH=f"{CLUSTER_VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
            AIRFLOW_HOME=str(self.home),
            TMPDIR=str(self.tmp),
            AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            # A worker's host name is its UTS namespace's (ti.hostname tells the workers apart).
            AIRFLOW__CORE__HOSTNAME_CALLABLE="socket.gethostname",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.api_url}/execution/",
            AIRFLOW__API__BASE_URL=self.api_url,
            AIRFLOW__API_AUTH__JWT_SECRET=self.jwt_secret,
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.db_url(),
            AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:{self.ports['redis']}/0",
            AIRFLOW__CELERY__RESULT_BACKEND=f"db+{self.db_url('postgresql')}",
            AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER="1",
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=str(HEARTBEAT_TIMEOUT),
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="3",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
            AIRFLOW_CONN_BILLBEE_DEFAULT=json.dumps(
                {
                    "conn_type": "billbee",
                    "host": self.sandbox_url,
                    "login": "sandbox@example.com",
                    "password": "sandbox-api-password",
                    "extra": {"api_key": "sandbox-api-key"},
                }
            ),
            **{
                f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps(
                    {
                        "conn_type": "aws",
                        "login": "testing",
                        "password": "testing",
                        "extra": {"endpoint_url": self.s3_url, "region_name": "us-east-1"},
                    }
                )
            },
        )
        env.update(extra)
        return env

    # -- start ------------------------------------------------------------------------

    def start(self) -> None:
        """Start every component; raise (with the logs) if one does not come up."""
        self.jwt_secret = secrets.token_hex(16)
        for name in ("pg", "redis", "moto", "sandbox", "api", *(f"log_{w}" for w in WORKERS)):
            self.ports[name] = free_port()
        for folder in (self.logs, self.home, self.tmp, self.dags, *(self.base / w for w in WORKERS)):
            folder.mkdir(parents=True, exist_ok=True)
        for worker in WORKERS:
            (self.base / worker / "home").mkdir(exist_ok=True)
            (self.base / worker / "tmp").mkdir(exist_ok=True)
        self._link_dags()
        with self._timed("postgres"):
            self._start_postgres()
        with self._timed("redis, moto, sandbox"):
            self._spawn(
                "redis",
                [
                    "redis-server",
                    "--port",
                    str(self.ports["redis"]),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
            )
            self._spawn(
                "moto",
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.ports["moto"])],
            )
            self._spawn(
                "sandbox",
                [
                    str(CLUSTER_VENV / "bin" / "billbee-sandbox"),
                    "--port",
                    str(self.ports["sandbox"]),
                    "--db",
                    str(self.base / "sandbox.sqlite"),
                    "--reset",
                ],
            )
            wait_for("moto", lambda: requests.get(self.s3_url, timeout=2).ok, 30)
            wait_for("sandbox", lambda: requests.get(f"{self.sandbox_url}/_sandbox/health", timeout=2).ok, 30)
            wait_for("redis", lambda: _tcp_open(self.ports["redis"]), 30)
            requests.put(f"{self.s3_url}/{BUCKET}", timeout=10).raise_for_status()
        with self._timed("airflow db migrate"):
            self._airflow("db", "migrate")
            self._airflow("pools", "set", "billbee_api", "1", "Billbee API: one slot per account")
        with self._timed("airflow components"):
            self._spawn(
                "api-server",
                ["airflow", "api-server", "-H", "127.0.0.1", "-p", str(self.ports["api"]), "-w", "1"],
                env=self.env(),
            )
            self._spawn("scheduler", ["airflow", "scheduler"], env=self.env())
            self._spawn("dag-processor", ["airflow", "dag-processor"], env=self.env())
            for worker in WORKERS:
                self.start_worker(worker)
            wait_for("api-server", lambda: requests.get(f"{self.api_url}/api/v2/version", timeout=2).ok, 120)
            for worker in WORKERS:
                self.wait_worker(worker)

    def wait_dags(self, *dag_ids: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has stored every one of ``dag_ids``."""
        for dag_id in dag_ids:
            wait_for(f"DAG {dag_id}", lambda d=dag_id: self.api("GET", f"/dags/{d}").ok, timeout)

    def _link_dags(self) -> None:
        """The DAGs folder: the repo's example DAGs (with their data) and the cluster test DAGs."""
        for path in [*(REPO / "dags").glob("*.py"), *(REPO / "tests" / "cluster" / "dags").glob("*.py")]:
            (self.dags / path.name).symlink_to(path)
        (self.dags / "data").symlink_to(REPO / "dags" / "data")

    def _start_postgres(self) -> None:
        data = self.base / "pg"
        data.mkdir()
        user = _pg_user()
        if user is not None:
            os.chown(data, user.pw_uid, user.pw_gid)
        as_user: dict[str, Any] = {"user": user.pw_uid, "group": user.pw_gid} if user else {}
        with (self.logs / "initdb.log").open("wb") as log:
            subprocess.run(
                [
                    str(self.pg_bin / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "airflow",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--no-instructions",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                cwd=data,
                **as_user,
            )
        self._spawn(
            "postgres",
            [
                str(self.pg_bin / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.ports["pg"]),
                "-k",
                "",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            cwd=data,
            **as_user,
        )
        wait_for(
            "postgres",
            lambda: (
                subprocess.run(
                    [str(self.pg_bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.ports["pg"])],
                    capture_output=True,
                ).returncode
                == 0
            ),
            60,
        )
        subprocess.run(
            [
                str(self.pg_bin / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.ports["pg"]),
                "-U",
                "airflow",
                "airflow",
            ],
            check=True,
            capture_output=True,
        )

    def start_worker(self, worker: str) -> None:
        """Start ``worker`` in its own mount and UTS namespace (its own disk and host name)."""
        script = (
            f"hostname cluster-{worker}"
            f" && mount --bind {self.base / worker / 'home'} {self.home}"
            f" && mount --bind {self.base / worker / 'tmp'} {self.tmp}"
            f" && exec airflow celery worker -H {worker} --concurrency 4 --without-mingle --without-gossip"
        )
        process = self._spawn(
            worker,
            ["unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", script],
            env=self.env(AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(self.ports[f"log_{worker}"])),
        )
        process.mount_ns = wait_for(
            f"{worker}'s mount namespace", lambda: _mount_ns_if_unshared(process.popen.pid), 10, 0.1
        )

    def wait_worker(self, worker: str, timeout: float = 120) -> None:
        """Wait for Celery's ``ready`` line of ``worker`` (since its last start)."""
        process = self.processes[worker]

        def ready() -> bool:
            if not process.alive():
                raise RuntimeError(f"worker {worker} exited with {process.popen.returncode}")
            return (
                f"celery@{worker} ready" in process.log.read_text(errors="replace").split("--- start ---")[-1]
            )

        wait_for(f"worker {worker}", ready, timeout)

    def ensure_workers(self) -> None:
        """Start again any worker a test killed."""
        for worker in WORKERS:
            if not self.processes[worker].alive():
                self.start_worker(worker)
                self.wait_worker(worker)

    # -- the REST API ---------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to Airflow's public REST API (``/api/v2``); all users are admins here."""
        kwargs.setdefault("timeout", 30)
        return requests.request(method, f"{self.api_url}/api/v2{path}", **kwargs)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a manual run of ``dag_id``; return its run id."""
        answer = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        assert answer.status_code == 200, answer.text
        run_id: str = answer.json()["dag_run_id"]
        return run_id

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
        """Wait until the run is finished; return it."""
        return wait_for(  # type: ignore[no-any-return]
            f"run {run_id} of {dag_id}",
            lambda: (run := self.run(dag_id, run_id))["state"] in ("success", "failed") and run,
            timeout,
            1.0,
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})
        answer.raise_for_status()
        tis: list[dict[str, Any]] = answer.json()["task_instances"]
        return tis

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (``hostname``, ``state``, ``try_number``)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        path += f"/{map_index}/tries" if map_index >= 0 else "/tries"
        answer = self.api("GET", path)
        answer.raise_for_status()
        tries: list[dict[str, Any]] = answer.json()["task_instances"]
        return tries

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log file of one try, read from whichever worker's disk holds it."""
        found = []
        for worker in WORKERS:
            folder = self.worker_home(worker) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
            found += [
                p.read_text(errors="replace")
                for p in folder.glob(f"task_id={task_id}/**/attempt={try_number}.log")
            ]
        return "\n".join(found)

    # -- S3 (moto) --------------------------------------------------------------------

    def s3_url_of(self, key: str) -> str:
        """The ``ObjectStoragePath`` URL of ``key`` in the test bucket, through the AWS connection."""
        return f"s3://{AWS_CONN_ID}@{BUCKET}/{key}"

    def s3_put(self, key: str, data: bytes) -> None:
        requests.put(f"{self.s3_url}/{BUCKET}/{key}", data=data, timeout=30).raise_for_status()

    def s3_get(self, key: str) -> bytes:
        answer = requests.get(f"{self.s3_url}/{BUCKET}/{key}", timeout=30)
        answer.raise_for_status()
        return answer.content

    def s3_keys(self, prefix: str) -> list[str]:
        answer = requests.get(
            f"{self.s3_url}/{BUCKET}", params={"list-type": "2", "prefix": prefix}, timeout=30
        )
        answer.raise_for_status()
        import re

        return re.findall(r"<Key>([^<]*)</Key>", answer.text)

    # -- kill and stop ---------------------------------------------------------------

    def kill_worker(self, worker: str) -> list[int]:
        """SIGKILL ``worker``: its process group and every process in its mount namespace."""
        process = self.processes[worker]
        pids = _pids_in_mount_ns(process.mount_ns) if process.mount_ns else []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.popen.wait(timeout=10)
        wait_for(
            f"{worker}'s processes to die",
            lambda: not (process.mount_ns and _pids_in_mount_ns(process.mount_ns)),
            10,
            0.1,
        )
        return pids

    def stop(self) -> None:
        """Stop everything this cluster started, newest first, by process group; SIGKILL stragglers."""
        for process in reversed(list(self.processes.values())):
            pids = _pids_in_mount_ns(process.mount_ns) if process.mount_ns else []
            if process.alive():
                sig = signal.SIGINT if process.name == "postgres" else signal.SIGTERM  # SIGINT: fast shutdown
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=10)

    def diagnostics(self, lines: int = 40) -> str:
        """The tail of every component's log, for a failed test."""
        parts = []
        for process in self.processes.values():
            state = "running" if process.alive() else f"exited {process.popen.returncode}"
            parts.append(f"===== {process.name} ({state}): {process.log} =====\n{tail(process.log, lines)}")
        return "\n".join(parts)

    # -- helpers --------------------------------------------------------------------

    @contextlib.contextmanager
    def _timed(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.timings[what] = time.monotonic() - started

    def _spawn(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None, **kwargs: Any
    ) -> Process:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            out.write(b"--- start ---\n")
            out.flush()
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env if env is not None else self.env(),
                start_new_session=True,
                **kwargs,
            )
        process = Process(name, popen, log)
        self.processes[name] = process
        return process

    def _airflow(self, *args: str, timeout: float = 300) -> None:
        log = self.logs / f"airflow-{args[0]}.log"
        with log.open("ab") as out:
            done = subprocess.run(
                ["airflow", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(),
                timeout=timeout,
                check=False,
                start_new_session=True,
            )
        if done.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{tail(log)}")


def _tcp_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pg_user() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as: ``PG_USER`` (made with useradd) when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(PG_USER)


def _mount_ns(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/mnt")


def _mount_ns_if_unshared(pid: int) -> str | None:
    """``pid``'s mount namespace once it differs from ours (``unshare`` has run)."""
    ns = _mount_ns(pid)
    return ns if ns != _mount_ns(os.getpid()) else None


def _pids_in_mount_ns(ns: str) -> list[int]:
    """Every process in the mount namespace ``ns``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "mnt") == ns:
                    pids.append(int(entry.name))
    return pids


def remove_tree(path: Path) -> None:
    """Remove the cluster's folder (PostgreSQL's files belong to its user)."""
    shutil.rmtree(path, ignore_errors=True)
