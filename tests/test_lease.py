"""The job runner as a cluster runs it: the lake's write lease, started rows and abandoned runs,
exit codes, log lines (text and JSON), Spark job descriptions, no silent sample data, the
report's location."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import threading
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import generate as generate_job
from jobs import report as report_job
from jobs import run as run_job
from seglake import runlog, tables
from seglake.config import load_config
from seglake.errors import StageFailedError, UserError, exit_status
from seglake.job import Job, StageResult, job_log, one_line
from seglake.job import run_job as run_a_job
from seglake.lake import Lake


def all_runs(spark: SparkSession, lake: Path) -> list:
    return spark.read.format("delta").load(f"{lake}/ops/runs").orderBy("started_at", "ended_at").collect()


def writes_truth(lake: Lake, *, as_of) -> StageResult:
    frame = lake.spark.createDataFrame(
        [("k1", "zero_amount", "zero_amount")], "row_key string, defect string, expected_outcome string"
    )
    return StageResult(rows_out=lake.write(frame, "bronze/_generator_truth", mode="append"))


def foreign_started_row(spark: SparkSession, lake: Path, *, driver: str, started_at: dt.datetime) -> str:
    """A started row of another driver's run (the row its runner would have written), its run id."""
    other = Lake(spark, load_config(None, [f"lake.root={lake}"]), job="features")
    runlog.record(
        other,
        as_of=dt.date(2024, 12, 31),
        started_at=started_at,
        rows_in=None,
        rows_out=None,
        details={"driver": driver},
        status=runlog.STARTED,
        error=None,
    )
    return other.run_id


def dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_second_run_while_one_holds_the_lake_writes_nothing_and_names_the_holder(
    spark: SparkSession, lake: Path, capsys
) -> None:
    argv = ["--set", f"lake.root={lake}", "--as-of", "2024-12-31"]
    inside, leave = threading.Event(), threading.Event()

    def holds(lake_: Lake, *, as_of) -> StageResult:
        inside.set()
        assert leave.wait(120)
        return writes_truth(lake_, as_of=as_of)

    statuses: list[int] = []
    first = threading.Thread(
        target=lambda: statuses.append(run_a_job(Job("unit-holder", "", holds, "receipts"), argv, spark=spark))
    )
    first.start()
    assert inside.wait(120)
    capsys.readouterr()
    second = run_a_job(Job("unit-second", "", writes_truth, "receipts"), argv, spark=spark)
    err = capsys.readouterr().err.strip().splitlines()
    leave.set()
    first.join(120)

    assert second == 2 and statuses == [0]
    holder = next(r for r in all_runs(spark, lake) if r["job"] == "unit-holder")
    held_by = f"the lake {lake} is held by run {holder['run_id']} (unit-holder, as of 2024-12-31, started "
    assert err[-1].startswith(f"seglake unit-second: error: {held_by}")
    assert err[-1].endswith(
        f"on {socket.gethostname()}:{os.getpid()}): this run wrote nothing; run it again once that run has ended"
    )
    rows = {(r["job"], r["status"]) for r in all_runs(spark, lake)}
    assert rows == {
        ("unit-holder", "started"),
        ("unit-holder", "succeeded"),
        ("unit-second", "started"),
        ("unit-second", "failed"),
    }
    refused = next(r for r in all_runs(spark, lake) if r["job"] == "unit-second" and r["status"] == "failed")
    assert refused["tables_written"] == {} and "is held by run" in refused["error"]
    # only the holder wrote: one commit, one row
    assert spark.read.format("delta").load(f"{lake}/bronze/_generator_truth").count() == 1
    # the lease ended with the holder's last row: the next run goes on
    assert run_a_job(Job("unit-third", "", writes_truth, "receipts"), argv, spark=spark) == 0


def test_a_run_whose_driver_died_is_reported_abandoned_once(spark: SparkSession, lake: Path, capsys) -> None:
    argv = ["--set", f"lake.root={lake}", "--as-of", "2024-12-31"]
    started = runlog.utc_now() - dt.timedelta(seconds=5)  # its lease has not lapsed; its process is gone
    gone = foreign_started_row(spark, lake, driver=f"{socket.gethostname()}:{dead_pid()}", started_at=started)
    capsys.readouterr()

    assert run_a_job(Job("unit-next", "", writes_truth, "receipts"), argv, spark=spark) == 0
    err = capsys.readouterr().err
    assert f"warning: run {gone} (features, as of 2024-12-31, started " in err
    assert "was abandoned: it started and never ended (recorded as abandoned)" in err
    rows = [r for r in all_runs(spark, lake) if r["run_id"] == gone]
    assert [r["status"] for r in rows] == ["started", "abandoned"]
    assert rows[1]["ended_at"] is not None and rows[1]["started_at"] == rows[0]["started_at"]
    assert rows[1]["error"].startswith("abandoned: its driver ")

    assert run_a_job(Job("unit-after", "", writes_truth, "receipts"), argv, spark=spark) == 0
    assert "abandoned" not in capsys.readouterr().err  # reported once


def test_another_hosts_run_holds_the_lake_until_its_lease_lapses(spark: SparkSession, lake: Path) -> None:
    argv = ["--set", f"lake.root={lake}", "--set", "ops.lease_seconds=600", "--as-of", "2024-12-31"]
    job = Job("unit-local", "", writes_truth, "receipts")
    now = runlog.utc_now()
    fresh = foreign_started_row(spark, lake, driver="other-host:4242", started_at=now - dt.timedelta(seconds=60))
    assert run_a_job(job, argv, spark=spark) == 2  # 60 s into a 600 s lease: held
    # a heartbeat 30 s ago renews a run started two hours ago: still held
    old = now - dt.timedelta(hours=2)
    spark.createDataFrame(
        [(fresh, "features", now - dt.timedelta(seconds=30), now + dt.timedelta(seconds=570), "other-host:4242")],
        "run_id string, job string, renewed_at timestamp, expires_at timestamp, driver string",
    ).write.format("delta").mode("append").save(f"{lake}/ops/leases")
    spark.sql(
        f"UPDATE delta.`{lake}/ops/runs` SET started_at = TIMESTAMP'{old:%Y-%m-%d %H:%M:%S}' WHERE run_id = '{fresh}'"
    )
    assert run_a_job(job, argv, spark=spark) == 2
    # its heartbeats stopped 20 minutes ago: the lease lapsed, the run was abandoned
    spark.sql(
        f"UPDATE delta.`{lake}/ops/leases` SET expires_at = expires_at - INTERVAL 20 MINUTES WHERE run_id = '{fresh}'"
    )
    assert run_a_job(job, argv, spark=spark) == 0
    statuses = [r["status"] for r in all_runs(spark, lake) if r["run_id"] == fresh]
    assert statuses == ["started", "abandoned"]


def test_a_long_run_renews_its_lease(spark: SparkSession, lake: Path) -> None:
    argv = ["--set", f"lake.root={lake}", "--set", "ops.lease_seconds=10", "--set", "ops.heartbeat_seconds=1"]
    seen: list[str] = []

    def slow(lake_: Lake) -> StageResult:
        leases = f"{lake}/ops/leases"
        for _ in range(60):  # until the first heartbeat is committed
            if tables.table_exists(lake_.spark, leases) and lake_.spark.read.format("delta").load(leases).count():
                break
            threading.Event().wait(0.5)
        seen.append(lake_.run_id)
        return StageResult()

    assert run_a_job(Job("unit-slow", "", slow, "none"), argv, spark=spark) == 0
    beats = spark.read.format("delta").load(f"{lake}/ops/leases").collect()
    assert beats and {b["run_id"] for b in beats} == set(seen)
    beat = beats[0]
    assert (beat["expires_at"] - beat["renewed_at"]) == dt.timedelta(seconds=10)
    assert beat["driver"] == f"{socket.gethostname()}:{os.getpid()}"


def test_exit_status_is_2_for_user_errors_and_1_for_anything_else() -> None:
    assert exit_status(UserError("bad key")) == 2
    assert exit_status(StageFailedError("stage cohorts failed: x", user_error=True)) == 2
    assert exit_status(StageFailedError("stage cohorts failed: RuntimeError: x", user_error=False)) == 1
    assert exit_status(RuntimeError("x")) == 1


def test_json_log_lines_carry_the_run_stage_and_date_and_spark_jobs_are_described(
    spark: SparkSession, lake: Path, capsys
) -> None:
    described: list[str | None] = []

    def logs_a_line(lake_: Lake, *, as_of) -> StageResult:
        described.append(lake_.spark.sparkContext.getLocalProperty("spark.job.description"))
        job_log("unit-json").info("halfway")
        raise ZeroDivisionError("division by zero")

    argv = ["--set", f"lake.root={lake}", "--as-of", "2024-12-31", "--log-format", "json"]
    assert run_a_job(Job("unit-json", "", logs_a_line, "receipts"), argv, spark=spark) == 1
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    run_id = next(r["run_id"] for r in all_runs(spark, lake) if r["job"] == "unit-json")
    halfway, bug, final = lines[-3:]
    assert {k: halfway[k] for k in ("level", "run_id", "as_of", "stage", "message")} == {
        "level": "INFO",
        "run_id": run_id,
        "as_of": "2024-12-31",
        "stage": "unit-json",
        "message": "halfway",
    }
    assert dt.datetime.fromisoformat(halfway["time"]).tzinfo is not None
    assert bug["level"] == "ERROR" and "ZeroDivisionError: division by zero" in bug["traceback"]
    assert final["message"] == "ZeroDivisionError: division by zero" and final["level"] == "ERROR"
    assert described == [f"seglake unit-json as of 2024-12-31 (run {run_id})"]
    assert spark.sparkContext.getLocalProperty("spark.job.description") is None  # reset after the stage

    assert run_a_job(Job("unit-text", "", writes_truth, "receipts"), ["--set", f"lake.root={lake}"], spark=spark) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (  # back to text: the final line as ever
        f"seglake unit-text: error: table silver/receipts not found at {lake}/silver/receipts "
        "(run `seglake cleanse` first)"
    )


def test_text_log_lines_carry_date_time_run_and_stage(spark: SparkSession, lake: Path, capsys) -> None:
    def logs_a_line(lake_: Lake) -> StageResult:
        job_log("unit-text").info("hello")
        return StageResult()

    assert run_a_job(Job("unit-text", "", logs_a_line, "none"), ["--set", f"lake.root={lake}"], spark=spark) == 0
    run_id = next(r["run_id"] for r in all_runs(spark, lake) if r["job"] == "unit-text")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    stamp, rest = line[:19], line[20:]
    assert abs(dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S") - runlog.utc_now()) < dt.timedelta(minutes=5)
    assert rest == f"run={run_id} unit-text: hello"


def test_run_on_a_lake_without_receipts_is_an_error_unless_sample(spark: SparkSession, lake: Path, capsys) -> None:
    assert run_job.main(["--set", f"lake.root={lake}"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"seglake run: error: no bronze/receipts at {lake}/bronze/receipts: load receipts with `seglake ingest` "
        "(or check lake.root), or pass --sample to generate the synthetic sample lake there"
    )
    assert not (lake / "bronze").exists()
    assert run_job.is_default_local_lake(load_config(None, []))
    assert not run_job.is_default_local_lake(load_config(None, [f"lake.root={lake}"]))


def test_generate_refuses_to_replace_bronze_without_overwrite(spark: SparkSession, lake: Path, capsys) -> None:
    argv = [f"--set=lake.root={lake}", "--customers=20", "--receipts=100"]
    assert generate_job.main(argv) == 0
    version = tables.table_version(spark, f"{lake}/bronze/receipts")
    capsys.readouterr()
    assert generate_job.main([*argv, "--seed=7"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"seglake generate: error: bronze/receipts already exists at {lake}/bronze/receipts: generate replaces it "
        "with synthetic receipts only with --overwrite"
    )
    assert tables.table_version(spark, f"{lake}/bronze/receipts") == version
    assert generate_job.main([*argv, "--seed=7", "--overwrite"]) == 0
    assert tables.table_version(spark, f"{lake}/bronze/receipts") == version + 1


def test_the_report_goes_under_the_lake_or_to_a_hadoop_uri(spark: SparkSession, tmp_path: Path) -> None:
    day = dt.date(2024, 12, 31)
    config = load_config(None, [f"lake.root={tmp_path / 'lake'}"])
    assert report_job.report_path(config, day) == f"{tmp_path}/lake/reports/segmentation_2024-12-31.html"
    on_s3 = load_config(None, ["lake.root=s3a://bucket/lake"])
    assert report_job.report_path(on_s3, day) == "s3a://bucket/lake/reports/segmentation_2024-12-31.html"
    elsewhere = load_config(None, ["report.root=abfss://c@acct.dfs.core.windows.net/r/"])
    assert (
        report_job.report_path(elsewhere, day) == "abfss://c@acct.dfs.core.windows.net/r/segmentation_2024-12-31.html"
    )

    # a file: URI goes through Hadoop's file system, a plain path through Python; both replace an old report
    for location, written in (
        (f"file://{tmp_path}/hadoop/out/r.html", tmp_path / "hadoop" / "out" / "r.html"),
        (str(tmp_path / "plain" / "r.html"), tmp_path / "plain" / "r.html"),
    ):
        report_job.write_report(spark, "<html>first</html>", location)
        report_job.write_report(spark, "<html>second é</html>", location)
        assert written.read_text(encoding="utf-8") == "<html>second é</html>"
        # no temporary file left (Hadoop's local file system keeps a .crc beside what it writes)
        assert [p.name for p in written.parent.iterdir() if not p.name.endswith(".crc")] == ["r.html"]


def test_a_started_row_is_written_before_the_job_runs(spark: SparkSession, lake: Path) -> None:
    seen: list[list[str]] = []

    def looks_at_ops_runs(lake_: Lake) -> StageResult:
        rows = lake_.spark.read.format("delta").load(f"{lake}/ops/runs").where(F.col("run_id") == lake_.run_id)
        seen.append([r["status"] for r in rows.collect()])
        return StageResult()

    assert (
        run_a_job(Job("unit-started", "", looks_at_ops_runs, "none"), ["--set", f"lake.root={lake}"], spark=spark) == 0
    )
    assert seen == [["started"]]
    rows = [r for r in all_runs(spark, lake) if r["job"] == "unit-started"]
    assert [r["status"] for r in rows] == ["started", "succeeded"]
    assert rows[0]["ended_at"] is None and rows[1]["ended_at"] >= rows[1]["started_at"]
    assert json.loads(rows[0]["details"])["driver"] == f"{socket.gethostname()}:{os.getpid()}"


def test_a_jvm_error_is_named_by_the_java_exception_not_the_py4j_call() -> None:
    class Py4JJavaError(Exception):  # its text as Py4J formats it: the call, then the Java exception
        pass

    error = Py4JJavaError(
        "An error occurred while calling o3125.save.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 3.0 failed 4 times\n"
        "\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2898)"
    )
    assert one_line(error) == (
        "Py4JJavaError: An error occurred while calling o3125.save. org.apache.spark.SparkException: Job aborted "
        "due to stage failure: Task 0 in stage 3.0 failed 4 times"
    )
    assert one_line(ZeroDivisionError("division by zero")) == "ZeroDivisionError: division by zero"
    assert one_line(UserError("bad key\nmore")) == "bad key"
