"""A driver killed (SIGKILL) in the middle of a pipeline run, and a second run started while it runs.

The killed run leaves every Delta table at a committed version and its ``started`` row in
``ops/runs`` with no end; the second run, started while it held the lake, wrote nothing
and named it; the rerun reports the abandoned run and gives the gold of an uninterrupted
run of the same lake, row for row.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import generate as generate_job
from jobs import run as run_job
from seglake import catalog, tables
from tests.conftest import PROJECT_ROOT, assert_same_rows

pytestmark = pytest.mark.slow  # a second JVM and three pipeline runs

SETTINGS = ["--set", "clusters.k_max=5"]


def argv(lake: Path) -> list[str]:
    return ["--set", f"lake.root={lake}", "--set", f"report.root={lake.parent / 'reports'}", *SETTINGS]


def wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended (status {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def descendants(pid: int) -> list[int]:
    """Child processes of ``pid`` and theirs (from /proc), deepest last."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def test_a_killed_driver_leaves_committed_tables_and_the_rerun_matches_an_uninterrupted_run(
    spark: SparkSession, tmp_path: Path, capsys
) -> None:
    killed, uninterrupted = tmp_path / "killed" / "lake", tmp_path / "uninterrupted" / "lake"
    small = ["--customers=300", "--receipts=3000", "--seed=3"]
    assert generate_job.main([f"--set=lake.root={killed}", *small]) == 0
    shutil.copytree(killed, uninterrupted)  # the same bronze, ingested_at and all

    log = tmp_path / "killed.log"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    with log.open("w") as stderr:
        driver = subprocess.Popen(
            [sys.executable, "-m", "jobs.run", *argv(killed)], cwd=PROJECT_ROOT, stderr=stderr, env=env
        )
    try:
        wait_for(lambda: "cleanse: started" in log.read_text(), "cleanse started", driver)
        holder = (
            spark.read.format("delta")
            .load(f"{killed}/ops/runs")
            .where("job = 'run' AND status = 'started'")
            .first()["run_id"]
        )
        # a second run for the same lake while the first holds it: refused, naming the holder
        capsys.readouterr()
        assert run_job.main(argv(killed)) == 2
        refused = capsys.readouterr().err.strip().splitlines()[-1]
        assert refused.startswith(f"seglake run: error: the lake {killed} is held by run {holder} (run, started ")
        first_rollup = killed / "silver" / "customer_month" / "_delta_log" / f"{0:020d}.json"
        wait_for(first_rollup.exists, "the features stage's first commit", driver)
        processes = [driver.pid, *descendants(driver.pid)]  # the Python driver and its JVM
        for pid in processes:
            with contextlib.suppress(ProcessLookupError):  # a short-lived child may have ended since listed
                os.kill(pid, signal.SIGKILL)
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.wait(60)
    assert driver.returncode == -signal.SIGKILL

    # every table reads at a committed version
    for table in catalog.CATALOG:
        path = f"{killed}/{table}"
        if tables.table_exists(spark, path):
            spark.read.format("delta").load(path).count()
    runs = spark.read.format("delta").load(f"{killed}/ops/runs")
    assert [r["status"] for r in runs.where(F.col("run_id") == holder).collect()] == ["started"]
    assert not tables.table_exists(spark, f"{killed}/gold/rfm_segments")  # it died before segmenting

    capsys.readouterr()
    assert run_job.main(argv(killed)) == 0
    err = capsys.readouterr().err
    assert f"warning: run {holder} (run, started " in err and "was abandoned" in err
    statuses = [r["status"] for r in runs.where(F.col("run_id") == holder).orderBy("ended_at").collect()]
    assert statuses == ["started", "abandoned"]

    assert run_job.main(argv(uninterrupted)) == 0
    compared = 0
    for table in catalog.CATALOG:
        if table.startswith("gold/") and tables.table_exists(spark, f"{uninterrupted}/{table}"):
            expected = spark.read.format("delta").load(f"{uninterrupted}/{table}")
            actual = spark.read.format("delta").load(f"{killed}/{table}")
            assert expected.count() > 0 or table == "gold/segment_migration", table
            assert_same_rows(expected, actual, table)
            compared += 1
    assert compared >= 8
