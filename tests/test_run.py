"""The run job: generates a lake when there is none, runs the stages, records each."""

from __future__ import annotations

import re
from pathlib import Path

from pyspark.sql import SparkSession

from jobs import run as run_job


def test_run_generates_then_cleanses_and_records_every_stage(spark: SparkSession, lake: Path, capsys) -> None:
    argv = ["--set", f"lake.root={lake}", "--set", "generate.customers=300", "--set", "generate.receipts=3000"]
    assert run_job.main(argv) == 0
    runs = {r["job"]: r for r in spark.read.format("delta").load(f"{lake}/ops/runs").collect()}
    assert runs["run"]["status"] == "succeeded" and runs["cleanse"]["status"] == "succeeded"
    assert runs["cohorts"]["status"] == "succeeded" and runs["cohorts"]["as_of_date"] is not None
    assert spark.read.format("delta").load(f"{lake}/gold/cohort_retention").count() > 0
    profile = spark.read.format("delta").load(f"{lake}/gold/customer_profile")
    expected_tier = (
        "CASE WHEN tenure_days < 365 AND recency_days < 90 THEN 'New Active' "
        "WHEN tenure_days < 365 THEN 'New Lapsing' WHEN recency_days < 90 THEN 'Loyal Active' "
        "ELSE 'Loyal Lapsing' END"
    )
    assert profile.count() > 0
    assert profile.where(f"value_tier IS NULL OR value_tier != {expected_tier}").count() == 0
    bronze = spark.read.format("delta").load(f"{lake}/bronze/receipts").count()
    silver = spark.read.format("delta").load(f"{lake}/silver/receipts").count()
    quarantined = spark.read.format("delta").load(f"{lake}/silver/receipts_quarantine").count()
    assert runs["cleanse"]["rows_in"] == bronze == silver + quarantined
    err = capsys.readouterr().err
    assert "generating the sample lake first" in err
    assert re.search(rf"silver/receipts +{lake}/silver/receipts\n", err)
    # a second run generates nothing and cleanses nothing new
    assert run_job.main(argv) == 0
    assert spark.read.format("delta").load(f"{lake}/silver/receipts").count() == silver
    assert "generating" not in capsys.readouterr().err


def test_unknown_stage_is_one_line(spark: SparkSession, lake: Path, capsys) -> None:
    argv = ["--set", f"lake.root={lake}", "--set", "generate.customers=10", "--set", "generate.receipts=50"]
    assert run_job.main([*argv, "--stages", "cleanse,segmentize"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"seglake run: error: --stages: unknown stage segmentize; choose from {', '.join(run_job.STAGES)}"
    )
