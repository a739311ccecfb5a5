"""The synthetic lake: deterministic, defects at their rates and really defective, sane shape."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import generate as generate_job
from transforms.generate import (
    CHANNELS,
    DEFECT_OUTCOMES,
    GeneratorParams,
    calibrate_theta,
    rate_exposure,
    to_bronze_receipts,
    to_customers,
    to_generator_truth,
    to_receipts,
    with_defects,
)

RATES = {kind: 0.01 for kind in DEFECT_OUTCOMES}  # 10% in all: ~1,000 rows per kind
CURRENCY_RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}
START, END = dt.date(2022, 1, 1), dt.date(2024, 12, 31)


def make_receipts(
    spark: SparkSession,
    customers: int,
    receipts: int,
    *,
    seed: int = 7,
    partitions: int = 2,
    rates: dict[str, float] | None = None,
) -> DataFrame:
    params = GeneratorParams(
        start_date=START, end_date=END, seed=seed, defect_rates=rates or {}, currency_rates=CURRENCY_RATES
    )
    people = to_customers(spark.range(0, customers, numPartitions=partitions), params)
    theta = calibrate_theta(receipts, customers, rate_exposure(people).first()[0])
    clean = to_receipts(people, params, theta)
    return with_defects(clean, params) if rates else clean


@pytest.fixture(scope="module")
def dirty(spark: SparkSession) -> DataFrame:
    frame = make_receipts(spark, 10_000, 100_000, rates=RATES).cache()
    yield frame
    frame.unpersist()


def test_same_seed_same_rows_whatever_the_partitioning(spark: SparkSession) -> None:
    first = make_receipts(spark, 500, 5_000, seed=11, partitions=2, rates=RATES)
    second = make_receipts(spark, 500, 5_000, seed=11, partitions=3, rates=RATES)
    assert first.count() == second.count() > 4_000
    assert first.exceptAll(second).count() == 0
    assert second.exceptAll(first).count() == 0


def test_another_seed_gives_other_rows(spark: SparkSession) -> None:
    first = make_receipts(spark, 500, 5_000, seed=11)
    second = make_receipts(spark, 500, 5_000, seed=12)
    assert first.select("receipt_ts", "amount").exceptAll(second.select("receipt_ts", "amount")).count() > 4_000


def test_receipt_count_meets_the_target_in_expectation(dirty: DataFrame) -> None:
    clean_rows = dirty.where(~F.col("row_key").contains("~")).count()
    assert abs(clean_rows - 100_000) / 100_000 < 0.05


def test_each_defect_rate_is_within_20_percent_of_configured(dirty: DataFrame) -> None:
    clean_rows = dirty.where(~F.col("row_key").contains("~")).count()
    counts = {r["defect"]: r["count"] for r in to_generator_truth(dirty).groupBy("defect").count().collect()}
    assert set(counts) == set(DEFECT_OUTCOMES)
    for kind, rate in RATES.items():
        measured = counts[kind] / clean_rows
        assert abs(measured - rate) <= 0.2 * rate, f"{kind}: {measured:.4%} vs {rate:.2%}"


def test_default_rates_add_up_to_about_two_percent(spark: SparkSession) -> None:
    from seglake.config import DefectRates

    rates = DefectRates().model_dump()
    frame = make_receipts(spark, 10_000, 100_000, rates=rates)
    share = to_generator_truth(frame).count() / frame.where(~F.col("row_key").contains("~")).count()
    assert abs(share - sum(rates.values())) <= 0.2 * sum(rates.values())
    assert 0.015 <= sum(rates.values()) <= 0.025


def test_every_recorded_defect_is_visible_in_its_row(dirty: DataFrame) -> None:
    defective = dirty.where(F.col("_defect").isNotNull())
    content = [c for c in dirty.columns if c not in ("row_key", "_defect")]
    same_content = dirty.groupBy(*content).count().where("count > 1")
    ids_with_variants = (
        dirty.groupBy("receipt_id").agg(F.countDistinct(*content).alias("versions")).where("versions > 1")
    )
    checks = {
        "null_customer": F.trim(F.coalesce("customer_id", F.lit(""))) == "",
        "customer_id_variant": (F.col("customer_id") != F.upper(F.trim("customer_id")))
        & F.upper(F.trim("customer_id")).rlike(r"^C\d{9}$"),
        "future_timestamp": F.col("receipt_ts") > F.col("ingested_at"),
        "before_business_start": F.year("receipt_ts") < 2000,
        "zero_amount": F.col("amount") == 0,
        "outlier_amount": F.col("amount") >= 10_000_000,
        "unknown_currency": ~F.col("currency").isin(*CURRENCY_RATES),
        "unknown_channel": ~F.col("channel").isin(*CHANNELS),
    }
    for kind, visible in checks.items():
        rows = defective.where(F.col("_defect") == kind)
        assert rows.count() > 0 and rows.where(~visible).count() == 0, kind
    dup_rows = defective.where(F.col("_defect") == "duplicate_row")
    assert dup_rows.join(same_content, content, "left_anti").count() == 0
    reuse_rows = defective.where(F.col("_defect") == "reused_receipt_id")
    assert reuse_rows.join(ids_with_variants, "receipt_id", "left_anti").count() == 0


def test_rows_without_defect_are_clean(dirty: DataFrame) -> None:
    clean = dirty.where(F.col("_defect").isNull())
    in_range = F.col("receipt_ts").between(F.lit(START), F.lit(END + dt.timedelta(days=1)))
    bad = clean.where(
        ~F.col("customer_id").rlike(r"^C\d{9}$")
        | ~in_range
        | (F.col("amount") == 0)
        | (F.abs("amount") > 100_000)
        | ~F.col("currency").isin(*CURRENCY_RATES)
        | ~F.col("channel").isin(*CHANNELS)
        | (F.col("discount_amount") < 0)
        | (F.col("item_count") < 1)
    )
    assert bad.count() == 0
    assert clean.groupBy("receipt_id").count().where("count > 1").count() == 0


def test_shape_single_purchasers_returns_and_seasonal_cohorts(spark: SparkSession) -> None:
    receipts = make_receipts(spark, 20_000, 200_000).cache()
    per_customer = receipts.groupBy("customer_id").agg(F.count("*").alias("receipts"))
    single = per_customer.where("receipts = 1").count() / per_customer.count()
    returns = receipts.where("amount < 0").count() / receipts.count()
    # documented bounds (transforms/generate.py): single-purchase share 25-45%, returns 2-4%
    assert 0.25 <= single <= 0.45, single
    assert 0.02 <= returns <= 0.04, returns
    # returns never come first: every customer's first receipt is a purchase
    first = receipts.groupBy("customer_id").agg(F.min_by("amount", "receipt_ts").alias("first_amount"))
    assert first.where("first_amount < 0").count() == 0
    # seasonal acquisition: Nov-Dec cohorts are clearly bigger than the other months
    cohorts = receipts.groupBy("customer_id").agg(F.month(F.min("receipt_ts")).alias("month"))
    sizes = {r["month"]: r["count"] for r in cohorts.groupBy("month").count().collect()}
    holiday = (sizes[11] + sizes[12]) / 2
    other = sum(v for m, v in sizes.items() if m not in (11, 12)) / 10
    assert holiday > 1.5 * other
    # purchase rates vary widely: the top 10% of customers make > 30% of receipts
    top = per_customer.orderBy(F.desc("receipts")).limit(per_customer.count() // 10)
    assert top.agg(F.sum("receipts")).first()[0] / receipts.count() > 0.30
    receipts.unpersist()


def test_generate_job_writes_bronze_truth_customers_and_a_run(spark: SparkSession, lake: Path) -> None:
    code = generate_job.main(
        ["--set", f"lake.root={lake}", "--customers", "1000", "--receipts", "10000", "--seed", "3"]
    )
    assert code == 0
    bronze = spark.read.format("delta").load(f"{lake}/bronze/receipts")
    truth = spark.read.format("delta").load(f"{lake}/bronze/_generator_truth")
    customers = spark.read.format("delta").load(f"{lake}/bronze/customers")
    assert customers.count() == 1000
    assert customers.select("customer_id").distinct().count() == 1000
    assert bronze.columns[-1] == "receipt_month"
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{lake}/bronze/receipts`").first()["properties"]
    assert properties["delta.dataSkippingStatsColumns"] == "receipt_ts,customer_id,amount,row_key"
    assert bronze.where(F.col("receipt_month") != F.date_format("receipt_ts", "yyyy-MM")).count() == 0
    assert truth.join(bronze, "row_key", "left_anti").count() == 0
    assert set(truth.columns) == {"row_key", "defect", "expected_outcome"}
    run = (
        spark.read.format("delta")
        .load(f"{lake}/ops/runs")
        .where("status <> 'started'")
        .where("job = 'generate'")
        .first()
    )
    assert run["status"] == "succeeded"
    assert run["rows_out"] == bronze.count()
    assert set(run["tables_written"]) == {"bronze/receipts", "bronze/customers", "bronze/_generator_truth"}
    # every clean receipt belongs to a customer of the dimension
    clean = bronze.join(truth, "row_key", "left_anti")
    assert clean.join(customers, "customer_id", "left_anti").count() == 0


def test_bronze_columns_match_the_catalog(spark: SparkSession) -> None:
    from seglake.catalog import table

    frame = to_bronze_receipts(make_receipts(spark, 10, 100))
    assert frame.columns == table("bronze/receipts").column_names
