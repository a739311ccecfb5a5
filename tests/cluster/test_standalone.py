"""spark-submit of the packaged pipeline (dist/seglake-pyfiles.zip + dist/seglake_submit.py, the Python
of the fresh virtualenv, no checkout) to a real Spark standalone master with two one-core workers on
127.0.0.1, in client mode: its gold tables equal, row for row, those of the local[*] run of the same
bronze lake; a worker killed while a stage runs costs task retries, not results (``make test-cluster``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import seglake
from seglake import catalog, tables
from tests.cluster.conftest import RUN_TIMEOUT, Run, copy_lake
from tests.cluster.spark_cluster import (
    LOCAL_IP,
    Install,
    StandaloneCluster,
    command_line,
    descendants,
    event_log,
    event_log_conf,
    executor_process,
    free_port,
    get_json,
    gold_differences,
    gold_tables,
    spark_submit,
    stop_group,
    table_differences,
    task_ends,
    wait,
)

pytestmark = pytest.mark.cluster

Submit = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def submit(install: Install, run_config: Path) -> Iterator[Submit]:
    """``submit(cluster, cwd, conf)``: spark-submit ``run --config <test config>`` in ``cwd``; every
    spark-submit it started (driver JVM and its Python) is stopped by its process group at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(cluster: StandaloneCluster, cwd: Path, conf: dict[str, str]) -> subprocess.Popen[bytes]:
        process = spark_submit(
            install, cluster.url, ["run", "--config", str(run_config)], cwd=cwd, log=cwd / "seglake.log", conf=conf
        )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            stop_group(process, grace=5.0)


def assert_same_gold(spark: SparkSession, local: Run, lake: Path) -> None:
    assert local.status == 0, f"the local[*] reference run failed:\n{local.log[-3000:]}"
    compared, problems = gold_differences(spark, local.lake, lake)
    assert compared == gold_tables()
    assert problems == {}


def assert_not_from_a_checkout(spark: SparkSession, lake: Path) -> None:
    """ops/runs.code_version carries a git commit only when seglake runs from a checkout."""
    versions = {
        r[0] for r in spark.read.format("delta").load(str(lake / "ops" / "runs")).select("code_version").collect()
    }
    assert versions == {seglake.__version__}


def test_spark_submit_to_a_standalone_master_writes_the_gold_of_a_local_run(
    start_cluster: Callable[..., StandaloneCluster],
    submit: Submit,
    bronze_lake: Path,
    local_run: Run,
    spark: SparkSession,
    tmp_path: Path,
) -> None:
    cluster = start_cluster(workers=2, cores=1)
    cwd = copy_lake(bronze_lake, tmp_path / "run")
    events = tmp_path / "events"
    status = wait(submit(cluster, cwd, event_log_conf(events)), RUN_TIMEOUT)
    log = (cwd / "seglake.log").read_text(errors="replace")
    assert status == 0, log[-4000:]
    # the work ran on both workers' executors, every task succeeded the first time
    ends = task_ends(event_log(events))
    assert {executor for executor, _ in ends} == {"0", "1"}
    assert {reason for _, reason in ends} == {"Success"}
    assert_not_from_a_checkout(spark, cwd / "lake")
    assert_same_gold(spark, local_run, cwd / "lake")


def wait_for_log(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in (path.read_text(errors="replace") if path.is_file() else ""):
        assert process.poll() is None, f"the run ended before {text!r}:\n{path.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, f"no {text!r} after {timeout:.0f}s"
        time.sleep(0.5)


def busy_executor(
    api: str, cluster: StandaloneCluster, process: subprocess.Popen[bytes], timeout: float
) -> tuple[str, int, int, str]:
    """(executor id, worker pid, executor pid, stage) of an executor running a task of an active stage,
    polled from the driver's REST API while the run goes on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before an executor was seen running a task"
        try:
            app = get_json(api)[0]["id"]
            stages = get_json(f"{api}/{app}/stages?status=active")
            executors = get_json(f"{api}/{app}/executors")
        except (OSError, urllib.error.URLError, IndexError, ValueError):
            time.sleep(0.2)  # the driver's UI is busy or not up yet
            continue
        busy = [e["id"] for e in executors if e["id"] != "driver" and e["activeTasks"] > 0]
        for executor_id in busy if stages else []:
            found = executor_process(cluster, executor_id)
            if found is not None:
                worker, pid = found
                return executor_id, worker.process.pid, pid, str(stages[0]["name"])
        time.sleep(0.05)
    raise AssertionError(f"no executor ran a task of an active stage for {timeout:.0f}s")


def versions_before(spark: SparkSession, table_path: str, started: object) -> int | None:
    """The table's last version committed before ``started`` (None: it had none)."""
    history = spark.sql(f"DESCRIBE HISTORY delta.`{table_path}`").where(F.col("timestamp") < F.lit(started))
    row = history.agg(F.max("version")).first()
    return None if row is None or row[0] is None else int(row[0])


def test_a_worker_killed_mid_stage_completes_through_retries_or_fails_cleanly(
    start_cluster: Callable[..., StandaloneCluster],
    submit: Submit,
    bronze_lake: Path,
    local_run: Run,
    spark: SparkSession,
    tmp_path: Path,
) -> None:
    """Issue #23: the job completes through task retry, or fails with one clear line and leaves every
    table at its version from before the stage."""
    cluster = start_cluster(workers=2, cores=1)
    cwd = copy_lake(bronze_lake, tmp_path / "run")
    events, ui = tmp_path / "events", free_port()
    process = submit(cluster, cwd, {**event_log_conf(events), "spark.ui.port": str(ui)})
    log_path = cwd / "seglake.log"
    # mid-pipeline: cleanse has committed silver; kill while features has a task running
    wait_for_log(log_path, " features: started", process, RUN_TIMEOUT)
    api = f"http://{LOCAL_IP}:{ui}/api/v1/applications"
    executor_id, worker_pid, executor_pid, stage = busy_executor(api, cluster, process, timeout=120)
    assert "org.apache.spark.deploy.worker.Worker" in command_line(worker_pid)  # spark-class exec'd the JVM
    victims = [worker_pid, *descendants(worker_pid)]  # the worker JVM, its executor JVM and what that started
    assert executor_pid in victims
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    status = wait(process, RUN_TIMEOUT)
    log = log_path.read_text(errors="replace")
    events_seen = event_log(events)
    removed = {str(e["Executor ID"]) for e in events_seen if e["Event"] == "SparkListenerExecutorRemoved"}
    assert executor_id in removed, f"the driver never lost executor {executor_id} (killed during {stage!r})"
    lake = cwd / "lake"
    if status == 0:
        # completed through task retry: the same gold as the local run
        assert_same_gold(spark, local_run, lake)
        return
    # or failed: one clear line, and every table as it was before the failed stage
    errors = [line for line in log.splitlines() if line.startswith("seglake run: error:")]
    assert len(errors) == 1, log[-4000:]
    assert errors[0].startswith("seglake run: error: stage "), errors[0]  # names the stage that failed
    runs = spark.read.format("delta").load(str(lake / "ops" / "runs"))
    failed = runs.where((F.col("status") == "failed") & (F.col("job") != "run")).collect()
    assert len(failed) == 1, [r.asDict() for r in failed]
    for table in catalog.restorable_tables_of(failed[0]["job"]):
        path = str(lake / table.name)
        if not tables.table_exists(spark, path):
            continue  # never committed (an empty _delta_log folder of a first write that failed is no table)
        before = versions_before(spark, path, failed[0]["started_at"])
        assert before is not None, f"{table.name} did not exist before the failed stage, and does now"
        now = spark.read.format("delta").load(path)
        then = spark.read.format("delta").option("versionAsOf", before).load(path)
        assert table_differences(then, now) is None, f"{table.name} is not at v{before}, its version before the stage"
