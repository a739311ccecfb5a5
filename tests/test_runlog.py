"""ops/runs: one row per job run, succeeded or failed, with versions read and written."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from seglake import tables
from seglake.cli import job_parser, run_job
from seglake.errors import UserError
from seglake.runlog import Run


def runs_of(spark: SparkSession, lake: Path):
    return {r["job"]: r for r in spark.read.format("delta").load(f"{lake}/ops/runs").collect()}


def test_succeeded_and_failed_runs_are_recorded(spark: SparkSession, lake: Path, capsys) -> None:
    def writes_a_table(session: SparkSession, run: Run, _args) -> None:
        frame = session.createDataFrame(
            [("k1", "zero_amount", "zero_amount")],
            "row_key string, defect string, expected_outcome string",
        )
        tables.write_table(frame, run.config, "bronze/_generator_truth", mode="overwrite")
        run.wrote(session, "bronze/_generator_truth")
        run.read(session, "bronze/_generator_truth")
        run.rows_out = 1

    def stops_on_missing_table(session: SparkSession, run: Run, _args) -> None:
        run.read(session, "silver/receipts", hint="run `seglake cleanse` first")

    argv = ["--set", f"lake.root={lake}", "--as-of", "2024-12-31"]
    ok = run_job("unit-ok", job_parser("unit-ok", ""), argv, writes_a_table, spark=spark)
    failed = run_job("unit-fail", job_parser("unit-fail", ""), argv, stops_on_missing_table, spark=spark)

    assert (ok, failed) == (0, 2)
    err = capsys.readouterr().err.strip().splitlines()
    missing = f"table silver/receipts not found at {lake}/silver/receipts"
    assert err == [f"seglake unit-fail: error: {missing} (run `seglake cleanse` first)"]
    runs = runs_of(spark, lake)
    assert runs["unit-ok"]["status"] == "succeeded"
    assert runs["unit-ok"]["error"] is None
    assert runs["unit-ok"]["tables_written"] == {"bronze/_generator_truth": 0}
    assert runs["unit-ok"]["tables_read"] == {"bronze/_generator_truth": 0}
    assert runs["unit-ok"]["rows_out"] == 1
    assert str(runs["unit-ok"]["as_of_date"]) == "2024-12-31"
    assert runs["unit-ok"]["ended_at"] >= runs["unit-ok"]["started_at"]
    assert len(runs["unit-ok"]["config_hash"]) == 16
    assert runs["unit-fail"]["status"] == "failed"
    assert runs["unit-fail"]["error"].startswith("table silver/receipts not found")


def test_a_bug_is_recorded_as_failed_with_its_type(spark: SparkSession, lake: Path) -> None:
    def crashes(_session: SparkSession, _run: Run, _args) -> None:
        raise ZeroDivisionError("division by zero")

    code = run_job("unit-bug", job_parser("unit-bug", ""), ["--set", f"lake.root={lake}"], crashes, spark=spark)
    assert code == 2
    assert runs_of(spark, lake)["unit-bug"]["error"] == "ZeroDivisionError: division by zero"


def test_user_error_is_a_user_error() -> None:
    assert issubclass(UserError, Exception)
