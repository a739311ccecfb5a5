"""ops/runs: one row per job run, succeeded or failed, with versions read and written."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from seglake.errors import UserError
from seglake.job import Job, StageResult, run_job
from seglake.lake import Lake


def runs_of(spark: SparkSession, lake: Path):
    return {
        r["job"]: r for r in spark.read.format("delta").load(f"{lake}/ops/runs").where("status <> 'started'").collect()
    }


def writes_a_table(lake: Lake, *, as_of) -> StageResult:
    frame = lake.spark.createDataFrame(
        [("k1", "zero_amount", "zero_amount")], "row_key string, defect string, expected_outcome string"
    )
    written = lake.write(frame, "bronze/_generator_truth", mode="overwrite")
    lake.read("bronze/_generator_truth")
    return StageResult(rows_out=written, details={"as_of_seen": str(as_of)})


def stops_on_missing_table(lake: Lake, *, as_of) -> StageResult:
    lake.read("silver/receipts", hint="run `seglake cleanse` first")
    return StageResult()


def test_succeeded_and_failed_runs_are_recorded(spark: SparkSession, lake: Path, capsys) -> None:
    argv = ["--set", f"lake.root={lake}", "--as-of", "2024-12-31"]
    ok = run_job(Job("unit-ok", "", writes_a_table, as_of_from="receipts"), argv, spark=spark)
    failed = run_job(Job("unit-fail", "", stops_on_missing_table, as_of_from="receipts"), argv, spark=spark)

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
    assert runs["unit-ok"]["details"] == '{"as_of_seen": "2024-12-31"}'  # the job got the given date
    assert str(runs["unit-ok"]["as_of_date"]) == "2024-12-31"
    assert runs["unit-ok"]["ended_at"] >= runs["unit-ok"]["started_at"]
    assert len(runs["unit-ok"]["config_hash"]) == 16
    assert runs["unit-fail"]["status"] == "failed"
    assert runs["unit-fail"]["error"].startswith("table silver/receipts not found")


def test_a_bug_is_recorded_as_failed_with_its_type(spark: SparkSession, lake: Path) -> None:
    def crashes(_lake: Lake) -> StageResult:
        raise ZeroDivisionError("division by zero")

    code = run_job(Job("unit-bug", "", crashes, as_of_from="none"), ["--set", f"lake.root={lake}"], spark=spark)
    assert code == 1  # a bug, not a user error
    assert runs_of(spark, lake)["unit-bug"]["error"] == "ZeroDivisionError: division by zero"


def test_without_as_of_a_receipts_job_gets_the_last_complete_day(spark: SparkSession, lake: Path, capsys) -> None:
    rows = [("r1", "2024-03-30 10:00:00", "2024-04-02 01:00:00"), ("r2", "2024-04-01 09:00:00", "2024-04-02 01:00:00")]
    receipts = spark.createDataFrame(rows, "receipt_id string, receipt_ts string, ingested_at string").selectExpr(
        "receipt_id", "CAST(receipt_ts AS TIMESTAMP) AS receipt_ts", "CAST(ingested_at AS TIMESTAMP) AS ingested_at"
    )
    receipts.write.format("delta").save(f"{lake}/silver/receipts")
    seen: list = []

    def records_its_date(_lake: Lake, *, as_of) -> StageResult:
        seen.append(as_of)
        return StageResult()

    assert (
        run_job(
            Job("unit-date", "", records_its_date, as_of_from="receipts"), ["--set", f"lake.root={lake}"], spark=spark
        )
        == 0
    )
    # last receipt day 2024-04-01, ingested on 04-02: complete, so it is the as-of date
    assert [str(day) for day in seen] == ["2024-04-01"]
    assert "--as-of not given: using the last complete day in the receipts, 2024-04-01" in capsys.readouterr().err
    assert str(runs_of(spark, lake)["unit-date"]["as_of_date"]) == "2024-04-01"


def test_user_error_is_a_user_error() -> None:
    assert issubclass(UserError, Exception)
