"""The built package outside the checkout, and a Spark standalone cluster on 127.0.0.1 (``make test-cluster``).

:class:`Install` is ``dist/`` (the wheel, ``seglake-pyfiles.zip``, ``seglake_submit.py``) with the
wheel and its ``[spark]`` extra installed in a fresh virtualenv outside the checkout.
:class:`StandaloneCluster` starts a master and workers with that virtualenv's pyspark
(``spark-class org.apache.spark.deploy.master.Master`` / ``...worker.Worker``; spark-class execs
java, so each pid started is the daemon JVM's), each in its own process group, and stops
them by those process groups only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DIST = PROJECT_ROOT / "dist"
LOCAL_IP = "127.0.0.1"

# what the parent process may carry that would point a child at the checkout or at another Spark
_INHERITED = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "SPARK_HOME",
    "SPARK_CONF_DIR",
    "PYSPARK_PYTHON",
    "PYSPARK_DRIVER_PYTHON",
    "PYSPARK_GATEWAY_PORT",
    "PYSPARK_GATEWAY_SECRET",
    "PYSPARK_SUBMIT_ARGS",
    "PYTEST_CURRENT_TEST",
)


def free_port() -> int:
    """A TCP port nothing listens on now (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCAL_IP, 0))
        return int(probe.getsockname()[1])


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


def wheel_file() -> Path:
    wheels = sorted(DIST.glob("seglake-*-py3-none-any.whl"))
    if len(wheels) != 1 or not (DIST / "seglake-pyfiles.zip").is_file() or not (DIST / "seglake_submit.py").is_file():
        raise FileNotFoundError(
            f"{DIST}: expected one seglake wheel, seglake-pyfiles.zip and seglake_submit.py; run `make package`"
        )
    return wheels[0]


@dataclass
class Install:
    """The packaged seglake in a virtualenv outside the checkout, and the artefacts spark-submit needs."""

    venv: Path
    jars_dir: Path  # the resolved Delta jars (SEGLAKE_JARS_DIR layout: <root>/<package>/*.jar)
    jars: list[Path]
    scratch: Path  # an empty SPARK_CONF_DIR and other odds, outside the checkout

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def seglake(self) -> Path:
        return self.venv / "bin" / "seglake"

    @property
    def site_packages(self) -> Path:
        found = sorted(self.venv.glob("lib/python*/site-packages"))
        return found[0]

    @property
    def spark_home(self) -> Path:
        return self.site_packages / "pyspark"

    @property
    def pyfiles(self) -> Path:
        return DIST / "seglake-pyfiles.zip"

    @property
    def submit_script(self) -> Path:
        return DIST / "seglake_submit.py"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process of the installed package: the venv's python and pyspark, 127.0.0.1."""
        env = clean_env()
        conf_dir = self.scratch / "spark-conf"  # empty: no spark-defaults.conf from anywhere
        conf_dir.mkdir(parents=True, exist_ok=True)
        env.update(
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            VIRTUAL_ENV=str(self.venv),
            SPARK_HOME=str(self.spark_home),
            SPARK_CONF_DIR=str(conf_dir),
            SPARK_LOCAL_IP=LOCAL_IP,
            PYSPARK_PYTHON=str(self.python),
            PYSPARK_DRIVER_PYTHON=str(self.python),
            SEGLAKE_JARS_DIR=str(self.jars_dir),
        )
        env.update(extra)
        return env

    @classmethod
    def create(cls, venv: Path, *, jars_dir: Path, jars: list[Path], fresh: bool = True) -> Install:
        """``venv``: a new virtualenv with the wheel and its ``[spark]`` extra (pip's cache makes it quick).

        ``fresh=False`` reuses an existing virtualenv and only reinstalls the wheel (no deps),
        for iterating on these tests (``SEGLAKE_CLUSTER_VENV``).
        """
        wheel = wheel_file()
        install = cls(venv=venv, jars_dir=jars_dir, jars=jars, scratch=venv.parent / f"{venv.name}-scratch")
        env = clean_env()
        if fresh or not install.python.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys_python(), "-m", "venv", str(venv)], check=True, env=env, timeout=300)
            command = [str(install.python), "-m", "pip", "install", "--quiet", f"{wheel}[spark]"]
        else:
            command = [
                str(install.python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--force-reinstall",
                str(wheel),
            ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"pip install of {wheel.name} failed:\n{done.stderr[-3000:]}")
        return install


def clean_env() -> dict[str, str]:
    """This process's environment without what would point a child at the checkout or another Spark."""
    return {k: v for k, v in os.environ.items() if k not in _INHERITED}


def sys_python() -> str:
    """The interpreter to make virtualenvs with: the one running the tests (its base, not a venv's)."""
    import sys

    return getattr(sys, "_base_executable", sys.executable)


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first), from /proc/<pid>/task/*/children."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop(0)
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in children.read_text().split():
                    if int(child) not in found:
                        found.append(int(child))
                        queue.append(int(child))
    return found


def executor_process(cluster: StandaloneCluster, executor_id: str) -> tuple[Daemon, int] | None:
    """(worker, pid) of the executor JVM ``executor_id`` of a running application: a child of that worker."""
    for worker in cluster.worker_daemons():
        for pid in descendants(worker.process.pid):
            command = command_line(pid)
            if "--executor-id" in command and command[command.index("--executor-id") + 1 :][:1] == [executor_id]:
                return worker, pid
    return None


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (field 5 of /proc/<pid>/stat)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def stop_group(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process group that ``process`` leads (it was started in a new session), then SIGKILL
    what is left of it. Nothing is signalled once the group is empty (its id is no longer ours)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None and not group_members(process.pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (process.poll() is None or group_members(process.pid)):
            time.sleep(0.2)


@dataclass
class Daemon:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    webui_port: int


@dataclass
class StandaloneCluster:
    """A master and ``workers`` workers (``cores`` cores, ``memory`` each) on 127.0.0.1."""

    install: Install
    root: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    master_port: int = 0
    daemons: list[Daemon] = field(default_factory=list)

    @property
    def master(self) -> Daemon:
        return self.daemons[0]

    @property
    def url(self) -> str:
        return f"spark://{LOCAL_IP}:{self.master_port}"

    def state(self) -> dict[str, Any]:
        """The master's JSON (workers, their state, applications)."""
        return dict(get_json(f"http://{LOCAL_IP}:{self.master.webui_port}/json"))

    def alive_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.state().get("workers", []) if w.get("state") == "ALIVE"]

    def _start(self, name: str, arguments: Sequence[str], webui_port: int) -> Daemon:
        log = self.root / f"{name}.log"
        env = self.install.env(SPARK_DAEMON_MEMORY="512m")
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(self.install.spark_home / "bin" / "spark-class"), *arguments],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped by that group, nothing else
            )
        daemon = Daemon(name, process, log, webui_port)
        self.daemons.append(daemon)
        return daemon

    def start(self, timeout: float = 180.0) -> StandaloneCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self.master_port = free_port()
        webui = free_port()
        self._start(
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                LOCAL_IP,
                "--port",
                str(self.master_port),
                "--webui-port",
                str(webui),
            ],
            webui,
        )
        self._wait(lambda: self.state().get("status") == "ALIVE", timeout, "the master to be ALIVE")
        for index in range(1, self.workers + 1):
            self.start_worker(index)
        self._wait(lambda: len(self.alive_workers()) == self.workers, timeout, f"{self.workers} workers to register")
        return self

    def start_worker(self, index: int) -> Daemon:
        webui = free_port()
        work = self.root / f"work-{index}"
        work.mkdir(exist_ok=True)
        return self._start(
            f"worker-{index}",
            [
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                LOCAL_IP,
                "--port",
                str(free_port()),
                "--webui-port",
                str(webui),
                "--cores",
                str(self.cores),
                "--memory",
                self.memory,
                "--work-dir",
                str(work),
                self.url,
            ],
            webui,
        )

    def worker_daemons(self) -> list[Daemon]:
        return [d for d in self.daemons if d.name.startswith("worker-")]

    def _wait(self, ready: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [d.name for d in self.daemons if d.process.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited while waiting for {what}:\n{self.logs()}")
            with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
                if ready():
                    return
            time.sleep(1.0)
        raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s:\n{self.logs()}")

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(
            f"--- {d.name} ({d.log})\n{d.log.read_text(errors='replace')[-tail:]}"
            for d in self.daemons
            if d.log.is_file()
        )

    def stop(self) -> None:
        """Stop every daemon this cluster started (workers first), by its process group."""
        for daemon in reversed(self.daemons):
            stop_group(daemon.process)


@contextlib.contextmanager
def standalone_cluster(install: Install, root: Path, **options: Any) -> Iterator[StandaloneCluster]:
    cluster = StandaloneCluster(install, root, **options)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def spark_submit(
    install: Install,
    master: str,
    job_args: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    conf: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``spark-submit`` the packaged entry script (zip + ``dist/seglake_submit.py``) in client mode,
    in its own process group, output to ``log``."""
    settings = {
        "spark.driver.host": LOCAL_IP,
        "spark.driver.bindAddress": LOCAL_IP,
        "spark.executor.memory": "1g",
        **(conf or {}),
    }
    command = [
        str(install.spark_home / "bin" / "spark-submit"),
        "--master",
        master,
        "--deploy-mode",
        "client",
        "--driver-memory",
        "1g",
        "--jars",
        ",".join(str(j) for j in install.jars),
        "--py-files",
        str(install.pyfiles),
    ]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    command += [str(install.submit_script), *job_args]
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=install.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    """The exit status of ``process``; on timeout its process group is stopped and TimeoutError raised."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(process, grace=5.0)
        raise TimeoutError(f"pid {process.pid} ran longer than {timeout:.0f}s and was stopped") from None


def comparable(frame: DataFrame) -> DataFrame:
    """``frame`` with map columns as sorted arrays of entries (set operations refuse maps)."""
    columns = []
    for column in frame.schema.fields:
        if isinstance(column.dataType, T.MapType):
            columns.append(F.array_sort(F.map_entries(F.col(column.name))).alias(column.name))
        else:
            columns.append(F.col(column.name))
    return frame.select(*columns)


def gold_tables() -> list[str]:
    from seglake import catalog

    return sorted(name for name in catalog.CATALOG if name.startswith("gold/"))


def table_differences(expected: DataFrame, actual: DataFrame) -> str | None:
    """None when the two frames hold the same rows (as multisets, EXCEPT ALL both ways), else what differs."""
    expected, actual = comparable(expected), comparable(actual)
    if expected.columns != actual.columns:
        return f"columns differ: {expected.columns} != {actual.columns}"
    differing = (  # one job: the rows of each side the other lacks
        expected.exceptAll(actual)
        .withColumn("__in", F.lit("expected only"))
        .unionByName(actual.exceptAll(expected).withColumn("__in", F.lit("actual only")))
        .limit(4)
        .collect()
    )
    return f"rows in one only (first {len(differing)}): {[r.asDict() for r in differing]}" if differing else None


def gold_differences(spark: SparkSession, expected_lake: Path, actual_lake: Path) -> tuple[list[str], dict[str, str]]:
    """(gold tables compared, table -> how ``actual_lake``'s differs from ``expected_lake``'s); every
    partition, so the as-of partition too. A table in one lake only is a difference."""
    from seglake import tables

    compared: list[str] = []
    problems: dict[str, str] = {}
    for name in gold_tables():
        paths = [str(lake / name) for lake in (expected_lake, actual_lake)]
        present = [tables.table_exists(spark, p) for p in paths]
        if not any(present):
            continue
        compared.append(name)
        if not all(present):
            problems[name] = f"exists only in the {'expected' if present[0] else 'actual'} lake"
            continue
        expected, actual = (spark.read.format("delta").load(p) for p in paths)
        difference = table_differences(expected, actual)
        if difference:
            problems[name] = difference
    return compared, problems


def event_log(directory: Path) -> list[dict[str, Any]]:
    """The events of the one application that logged to ``directory`` (``spark.eventLog.dir``)."""
    logs = [p for p in directory.iterdir() if p.is_file()]
    assert len(logs) == 1, f"expected one event log in {directory}, found {[p.name for p in logs]}"
    return [json.loads(line) for line in logs[0].read_text().splitlines() if line.strip()]


def task_ends(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(executor id, end reason) of every task the application ran."""
    return [
        (str(e["Task Info"]["Executor ID"]), str(e["Task End Reason"]["Reason"]))
        for e in events
        if e["Event"] == "SparkListenerTaskEnd"
    ]


def event_log_conf(directory: Path) -> dict[str, str]:
    """spark-submit settings for an uncompressed event log in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": directory.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
    }
