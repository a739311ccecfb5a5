"""The run job: generates a lake when there is none, runs the stages, records each."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import run as run_job
from seglake import catalog, tables
from tests.conftest import (
    PIPELINE_EARLIER_DAYS,
    assert_same_rows,
    comparable,
    first_run_log,
    pipeline_argv,
    versions_before_earlier_run,
)


@pytest.mark.slow  # the pipeline lake: every stage on a generated lake
def test_run_generates_then_cleanses_and_records_each_stage(spark: SparkSession, pipeline_lake: Path) -> None:
    # the pipeline lake's first run (conftest.py) started from an empty lake: it generated the sample lake
    lake = pipeline_lake
    runs = spark.read.format("delta").load(f"{lake}/ops/runs").where("status <> 'started'").orderBy("started_at")
    first = {}
    for row in runs.collect():  # the first run of each job: the pipeline lake's first run
        first.setdefault(row["job"], row)
    assert first["generate"]["status"] == "succeeded" and first["generate"]["as_of_date"] is None
    assert first["run"]["status"] == "succeeded" and first["cleanse"]["status"] == "succeeded"
    assert first["cohorts"]["status"] == "succeeded" and first["cohorts"]["as_of_date"] is not None
    assert first["value"]["status"] == "succeeded" and first["value"]["as_of_date"] == first["cohorts"]["as_of_date"]
    assert first["features"]["started_at"] < first["value"]["started_at"] < first["cohorts"]["started_at"]
    assert first["generate"]["started_at"] < first["cleanse"]["started_at"]
    assert spark.read.format("delta").load(f"{lake}/gold/cohort_retention").count() > 0
    profile = spark.read.format("delta").load(f"{lake}/gold/customer_profile")
    expected_tier = (
        "CASE WHEN tenure_days < 365 AND recency_days < 90 THEN 'New Active' "
        "WHEN tenure_days < 365 THEN 'New Lapsing' WHEN recency_days < 90 THEN 'Loyal Active' "
        "ELSE 'Loyal Lapsing' END"
    )
    assert profile.count() > 0
    assert profile.where(f"value_tier IS NULL OR value_tier != {expected_tier}").count() == 0
    bronze_version = first["cleanse"]["tables_read"]["bronze/receipts"]
    bronze = spark.read.format("delta").option("versionAsOf", bronze_version).load(f"{lake}/bronze/receipts")
    written = first["cleanse"]["tables_written"]
    silver = (
        spark.read.format("delta").option("versionAsOf", written["silver/receipts"]).load(f"{lake}/silver/receipts")
    )
    quarantined = (
        spark.read.format("delta")
        .option("versionAsOf", written["silver/receipts_quarantine"])
        .load(f"{lake}/silver/receipts_quarantine")
    )
    assert first["cleanse"]["rows_in"] == bronze.count() == silver.count() + quarantined.count()
    err = first_run_log(lake)
    assert "generating the sample lake first" in err
    assert re.search(rf"silver/receipts +{silver.count():,} +last commit\n", err)  # the summary table
    assert re.search(r"cleanse: done in [0-9.]+s: [0-9,]+ rows in", err)  # one line per stage


def test_unknown_stage_is_one_line(spark: SparkSession, lake: Path, capsys) -> None:
    argv = ["--set", f"lake.root={lake}", "--set", "generate.customers=10", "--set", "generate.receipts=50"]
    assert run_job.main([*argv, "--stages", "cleanse,segmentize"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"seglake run: error: --stages: unknown stage segmentize; choose from {', '.join(run_job.STAGES)}"
    )


# --- the pipeline lake (tests/conftest.py: pipeline_lake): reruns, history, failure -------------


def _gold_snapshot(spark: SparkSession, lake: Path) -> dict[str, tuple[int, DataFrame]]:
    """Every gold table that exists, pinned at its current version."""
    pinned = {}
    for table in catalog.CATALOG:
        path = f"{lake}/{table}"
        if table.startswith("gold/") and tables.table_exists(spark, path):
            version = tables.table_version(spark, path)
            pinned[table] = (version, spark.read.format("delta").option("versionAsOf", version).load(path))
    return pinned


def _latest_as_of(spark: SparkSession, lake: Path) -> dt.date:
    return spark.read.format("delta").load(f"{lake}/gold/customer_profile").agg(F.max("as_of_date")).first()[0]


@pytest.mark.slow  # the pipeline lake: every stage on a generated lake
def test_the_same_as_of_twice_leaves_gold_identical(spark: SparkSession, pipeline_lake: Path, capsys) -> None:
    as_of = _latest_as_of(spark, pipeline_lake)
    before = _gold_snapshot(spark, pipeline_lake)
    assert {"gold/customer_profile", "gold/cohort_retention"} <= set(before)
    capsys.readouterr()
    assert run_job.main(pipeline_argv(pipeline_lake, "--as-of", str(as_of))) == 0
    after = _gold_snapshot(spark, pipeline_lake)
    assert set(after) == set(before)
    for table, (version, rows) in after.items():
        # every partition with rows is rewritten; an empty one (a first migration) may stay as it was
        assert version > before[table][0] or rows.count() == 0, f"{table} was not rewritten"
        assert_same_rows(before[table][1], rows, table)
        assert rows.count() == comparable(rows).distinct().count(), f"{table}: duplicate rows"
    profile = after["gold/customer_profile"][1]
    assert profile.groupBy("as_of_date", "customer_id").count().where("count > 1").count() == 0
    err = capsys.readouterr().err
    customers = profile.where(F.col("as_of_date") == as_of).count()
    assert f"summary (as of {as_of}" in err
    assert re.search(rf"gold/customer_profile +{customers:,} +as-of partition\n", err)
    assert f"report: {pipeline_lake.parent / 'reports'}/segmentation_{as_of}.html" in err
    assert re.search(r"quarantined this run: 0\n", err)  # nothing new in bronze
    assert "generating" not in err  # the lake has receipts


HISTORY_TABLES = (
    "gold/customer_profile",
    "gold/customer_value",
    "gold/cohort_retention",
    "gold/cohort_retention_by_channel",
    "gold/rfm_segments",
    "gold/rule_segments",
    "gold/campaign_audiences",
    "gold/rfm_thresholds",
)


@pytest.mark.slow  # the pipeline lake: every stage on a generated lake
def test_an_older_as_of_adds_history_and_keeps_newer_dates(spark: SparkSession, pipeline_lake: Path) -> None:
    # the pipeline lake's second run (conftest.py) was for an earlier as-of date than its first
    before = versions_before_earlier_run(pipeline_lake)
    latest = _latest_as_of(spark, pipeline_lake)
    older = latest - dt.timedelta(days=PIPELINE_EARLIER_DAYS)
    after = _gold_snapshot(spark, pipeline_lake)
    for table in HISTORY_TABLES:
        path = f"{pipeline_lake}/{table}"
        old_rows = spark.read.format("delta").option("versionAsOf", before[table]).load(path)
        new_rows = after[table][1]
        assert old_rows.where(F.col("as_of_date") == older).count() == 0
        assert new_rows.where(F.col("as_of_date") == older).count() > 0, table
        assert_same_rows(old_rows, new_rows.where(F.col("as_of_date") != older), table)
    # the later date's migration now starts from the older date (a run out of order)
    migration = after["gold/segment_migration"][1].where(F.col("as_of_date") == latest)
    assert {r["previous_as_of_date"] for r in migration.select("previous_as_of_date").distinct().collect()} == {older}
    # the older profile ignores later receipts: nobody's last purchase is after it
    older_profile = after["gold/customer_profile"][1].where(F.col("as_of_date") == older)
    assert older_profile.where(F.col("last_purchase_date") > older).count() == 0


@pytest.mark.slow  # the pipeline lake: every stage on a generated lake
def test_a_failing_stage_restores_its_tables_and_marks_the_run_failed(
    spark: SparkSession, pipeline_lake: Path, capsys, monkeypatch
) -> None:
    as_of = _latest_as_of(spark, pipeline_lake)
    before = _gold_snapshot(spark, pipeline_lake)
    real_replace = tables.replace_as_of

    def failing_replace(frame, config, table, day):  # cohorts writes gold/cohort_retention first, then fails
        if table == "gold/cohort_retention_by_channel":
            raise RuntimeError("disk full (injected)")
        return real_replace(frame, config, table, day)

    monkeypatch.setattr(tables, "replace_as_of", failing_replace)
    capsys.readouterr()
    # cleanse (nothing new in bronze) succeeds first and keeps its commits; cohorts fails; report never runs.
    # Not a user error: exit 1, with the traceback in the log.
    assert run_job.main(pipeline_argv(pipeline_lake, "--as-of", str(as_of), "--stages", "cleanse,cohorts,report")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "seglake run: error: stage cohorts failed: RuntimeError: disk full (injected)"
    assert err.count("Traceback (most recent call last):") == 1  # logged once, by the stage
    after = _gold_snapshot(spark, pipeline_lake)
    for table, (_, rows) in after.items():  # cohorts was undone
        assert_same_rows(before[table][1], rows, table)
    assert after["gold/cohort_retention_by_channel"][0] == before["gold/cohort_retention_by_channel"][0]
    runs = spark.read.format("delta").load(f"{pipeline_lake}/ops/runs").where("status <> 'started'")
    last = {r["job"]: r for r in runs.orderBy("started_at").collect()}
    assert last["run"]["status"] == "failed" and "stage cohorts failed" in last["run"]["error"]
    assert last["cohorts"]["status"] == "failed" and "disk full (injected)" in last["cohorts"]["error"]
    assert last["cleanse"]["status"] == "succeeded"
    assert last["report"]["started_at"] < last["cohorts"]["started_at"]  # the report did not run

    monkeypatch.undo()
    assert run_job.main(pipeline_argv(pipeline_lake, "--as-of", str(as_of), "--stages", "cohorts")) == 0
    runs = spark.read.format("delta").load(f"{pipeline_lake}/ops/runs").where("status <> 'started'")
    assert runs.orderBy(F.col("started_at").desc()).where("job = 'run'").first()["status"] == "succeeded"


@pytest.mark.slow  # the pipeline lake: every stage on a generated lake
def test_the_sample_lake_puts_every_customer_in_a_named_segment(spark: SparkSession, pipeline_lake: Path) -> None:
    """#24's target on the generator's sample lake: <= 2% unassigned, every segment of the default map filled."""
    from seglake.segment_maps import OTHER, load_segment_map

    segments = spark.read.format("delta").load(f"{pipeline_lake}/gold/rfm_segments")
    latest = segments.where(F.col("as_of_date") == _latest_as_of(spark, pipeline_lake))
    sizes = {r["category"]: r["count"] for r in latest.groupBy("category").count().collect()}
    customers = sum(sizes.values())
    assert sizes.get(OTHER, 0) <= 0.02 * customers, sizes
    named = load_segment_map("default", 4).category_names()
    assert len(named) == 11 and all(sizes.get(name, 0) > 0 for name in named), sizes
    # every campaign row passed its channel's consent: no e-mail to a customer without the opt-in
    audiences = spark.read.format("delta").load(f"{pipeline_lake}/gold/campaign_audiences")
    profile = spark.read.format("delta").load(f"{pipeline_lake}/gold/customer_profile")
    emailed = audiences.where("channel = 'email'").join(profile, ["as_of_date", "customer_id"])
    assert emailed.count() > 0
    assert emailed.where("has_email_opt_in IS NOT TRUE").count() == 0
    # next-best-offer: up to 3 per customer, never a category the customer bought (by the as-of month end),
    # and the audiences carry each customer's first offer
    as_of = _latest_as_of(spark, pipeline_lake)
    offers = (
        spark.read.format("delta").load(f"{pipeline_lake}/gold/next_best_offer").where(F.col("as_of_date") == as_of)
    )
    assert offers.count() > 0 and {r[0] for r in offers.select("rank").distinct().collect()} <= {1, 2, 3}
    receipts = spark.read.format("delta").load(f"{pipeline_lake}/silver/receipts")
    # bought = a positive net amount of the category in a month; months up to the last whole one at the as-of
    last_whole = as_of.replace(day=1) if (as_of + dt.timedelta(days=1)).day != 1 else as_of + dt.timedelta(days=1)
    bought = (
        receipts.where(F.to_date("receipt_ts") < last_whole)
        .groupBy("customer_id", F.date_trunc("month", "receipt_ts"), F.col("category").alias("offer_category"))
        .agg(F.sum("amount").alias("net"))
        .where("net > 0")
    )
    assert offers.join(bought, ["customer_id", "offer_category"], "left_semi").count() == 0
    first = offers.where("rank = 1").select("customer_id", F.col("offer_category").alias("first_offer"))
    carried = audiences.where(F.col("as_of_date") == as_of).join(first, "customer_id", "left")
    assert carried.where(~F.col("offer_category").eqNullSafe(F.col("first_offer"))).count() == 0


# gold tables that compare with the lake's earlier run (which only the incremental lake has)
EARLIER_RUN_TABLES = ("gold/segment_migration", "gold/clusters", "gold/cluster_profiles")


@pytest.mark.slow  # three pipeline runs on two small generated lakes
def test_an_incremental_run_after_a_new_month_equals_a_full_rebuild(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """History (Jan-Dec 2024) run in full, January 2025 appended to bronze, then the default
    run is incremental; `run --full` on a lake with the same receipts gives the same gold."""
    from seglake.config import load_config

    source, ours = tmp_path / "source", tmp_path / "ours"
    settings = ["--set", "clusters.k_max=4", "--set", f"report.root={tmp_path / 'reports'}"]
    generate = ["--customers=300", "--receipts=3000", "--start=2024-01-01", "--end=2025-01-31"]
    from jobs import generate as generate_job

    assert generate_job.main([f"--set=lake.root={source}", *generate]) == 0
    bronze = spark.read.format("delta").load(f"{source}/bronze/receipts")
    config = load_config(None, [f"lake.root={ours}"])
    is_new = F.col("receipt_month") == "2025-01"
    tables.write_table(bronze.where(~is_new), config, "bronze/receipts", mode="overwrite")
    customers = spark.read.format("delta").load(f"{source}/bronze/customers")
    tables.write_table(customers, config, "bronze/customers", mode="overwrite")
    assert run_job.main([f"--set=lake.root={ours}", *settings, "--as-of=2024-12-31"]) == 0
    tables.write_table(bronze.where(is_new), config, "bronze/receipts", mode="append")
    capsys.readouterr()
    assert run_job.main([f"--set=lake.root={ours}", *settings, "--as-of=2025-01-31"]) == 0
    log = capsys.readouterr().err
    new_rows = bronze.where(is_new).count()
    assert "incremental run: features updates the rollup and the lifetime state" in log
    assert f"{new_rows:,} rows appended to bronze/receipts since v0" in log
    assert "month(s) rebuilt: 2025-01;" in log  # no generated receipt is late: only the new month
    assert "silver/customer_lifetime:" in log and "months 2025-01..2025-01 added" in log
    assert run_job.main([f"--set=lake.root={source}", *settings, "--as-of=2025-01-31", "--full"]) == 0

    compared = []
    for name, table in catalog.CATALOG.items():
        if not table.is_as_of_partitioned or name in EARLIER_RUN_TABLES:
            continue
        if not tables.table_exists(spark, f"{source}/{name}"):
            continue
        rows = [
            spark.read.format("delta").load(f"{lake}/{name}").where("as_of_date = DATE'2025-01-31'")
            for lake in (ours, source)
        ]
        assert rows[1].count() > 0, name
        assert_same_rows(rows[0], rows[1], name)
        compared.append(name)
    assert "gold/customer_profile" in compared and "gold/rfm_segments" in compared and len(compared) >= 8
    for name in ("silver/customer_month", "silver/customer_lifetime"):
        assert_same_rows(
            spark.read.format("delta").load(f"{ours}/{name}"), spark.read.format("delta").load(f"{source}/{name}"), name
        )
