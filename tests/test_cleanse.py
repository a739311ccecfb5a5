"""Cleansing: one outcome per row, the right reason, normalised silver, books that balance."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import cleanse as cleanse_job
from jobs import generate as generate_job
from seglake import tables
from seglake.config import load_config
from seglake.errors import ConfigError
from seglake.lake import CLEANSE_PAIR, Lake
from tests.conftest import PROJECT_ROOT
from transforms.cleanse import (
    CONTENT_OF_CHECKED,
    REASONS,
    CleanseRules,
    to_silver_receipts,
    with_duplicate_reasons,
    with_normalised_values,
    with_reject_reason,
)
from transforms.ingest import RECEIPT_COLUMNS
from transforms.quality import Check, quarantine_rate_checks, row_drop_check

BRONZE = (
    "receipt_id string, customer_id string, receipt_ts timestamp, amount decimal(18,2), "
    "currency string, channel string, store_id string, region string, category string, "
    "item_count int, discount_amount decimal(18,2), coupon_used boolean, source_file string, "
    "row_key string, ingested_at timestamp, raw_record string, parse_errors string, "
    "receipt_month string"
)
RULES = CleanseRules(
    business_start=dt.date(2000, 1, 1),
    future_tolerance_hours=24,
    outlier_amount=1_000_000,
    currency_rates={"EUR": 1.0, "USD": 0.92, "GBP": 1.17},
    channels={"store": ["shop"], "online": ["web"], "app": ["mobile"]},
    excluded_customers=("staff-1",),
)
INGESTED = dt.datetime(2024, 3, 1, 6, 0)


def receipt(row_key: str, **values: object) -> tuple:
    """A valid bronze row, changed by ``values``."""
    row = {
        "receipt_id": f"R-{row_key}",
        "customer_id": "C1",
        "receipt_ts": dt.datetime(2024, 2, 29, 23, 30),
        "amount": Decimal("10.00"),
        "currency": "EUR",
        "channel": "store",
        "store_id": "S1",
        "region": "North",
        "category": "fresh",
        "item_count": 2,
        "discount_amount": Decimal("0.00"),
        "coupon_used": False,
        "source_file": "test.csv",
        "row_key": row_key,
        "ingested_at": INGESTED,
        "raw_record": None,
        "parse_errors": None,
        "receipt_month": "2024-02",
    }
    row.update(values)
    return tuple(row.values())


def classify(spark: SparkSession, rows: list[tuple], kept: DataFrame | None = None) -> dict[str, str | None]:
    bronze = spark.createDataFrame(rows, BRONZE)
    checked = with_reject_reason(with_normalised_values(bronze, RULES), RULES)
    classified = with_duplicate_reasons(checked, kept)
    return {r["row_key"]: r["reject_reason"] for r in classified.collect()}


def test_each_rule_names_its_reason_and_valid_rows_pass(spark: SparkSession) -> None:
    rows = [
        receipt("ok"),
        receipt("return", amount=Decimal("-4.50")),  # a return is a valid receipt
        receipt("padded", customer_id="  c1 ", channel=" Web"),
        receipt("bad-ts", receipt_ts=None, parse_errors="receipt_ts", raw_record="R,C1,31/02/2024,1"),
        receipt("bad-amount", amount=None, parse_errors="amount", raw_record="R,C1,2024-01-01,ten"),
        receipt("bad-count", parse_errors="item_count", raw_record="R,C1,2024-01-01,1,x"),
        receipt("bad-discount", parse_errors="discount_amount", raw_record="R,C1,2024-01-01,1,1,x"),
        receipt(
            "short-row",
            receipt_ts=None,
            amount=None,
            parse_errors="receipt_id,customer_id,receipt_ts,amount",
            raw_record="R,C1",
        ),
        receipt("no-id", receipt_id="  "),
        receipt("null-customer", customer_id=None),
        receipt("blank-customer", customer_id="   "),
        receipt("staff", customer_id=" Staff-1"),
        receipt("no-ts", receipt_ts=None),
        receipt("no-amount", amount=None),
        receipt("future", receipt_ts=INGESTED + dt.timedelta(hours=24, seconds=1)),
        receipt("future-within-tolerance", receipt_ts=INGESTED + dt.timedelta(hours=24)),
        receipt("ancient", receipt_ts=dt.datetime(1999, 12, 31, 23, 59, 59)),
        receipt("first-day", receipt_ts=dt.datetime(2000, 1, 1)),
        receipt("currency", currency="ZZZ"),
        receipt("currency-lower", currency=" usd "),
        receipt("zero", amount=Decimal("0.00")),
        receipt("outlier", amount=Decimal("1000000.01")),
        receipt("at-bound", amount=Decimal("1000000.00")),
        receipt("outlier-after-conversion", amount=Decimal("900000.00"), currency="GBP"),
        receipt("channel", channel="fax"),
        receipt("channel-null", channel=None),
        receipt("two-defects", customer_id=None, amount=Decimal("0")),  # first rule wins
    ]
    assert classify(spark, rows) == {
        "ok": None,
        "return": None,
        "padded": None,
        "bad-ts": "unparseable_timestamp",
        "bad-amount": "unparseable_amount",
        "bad-count": "malformed_row",
        "bad-discount": "unparseable_amount",
        "short-row": "malformed_row",
        "no-id": "missing_receipt_id",
        "null-customer": "missing_customer",
        "blank-customer": "missing_customer",
        "staff": "excluded_account",
        "no-ts": "missing_timestamp",
        "no-amount": "missing_amount",
        "future": "future_timestamp",
        "future-within-tolerance": None,
        "ancient": "before_business_start",
        "first-day": None,
        "currency": "unknown_currency",
        "currency-lower": None,
        "zero": "zero_amount",
        "outlier": "outlier_amount",
        "at-bound": None,
        "outlier-after-conversion": "outlier_amount",
        "channel": "unknown_channel",
        "channel-null": "unknown_channel",
        "two-defects": "missing_customer",
    }


def test_silver_values_are_normalised_and_converted(spark: SparkSession) -> None:
    rows = [
        receipt(
            "usd",
            customer_id="  c1 ",
            channel=" Web",
            currency="usd",
            amount=Decimal("10.00"),
            discount_amount=Decimal("1.05"),
            coupon_used=None,
            store_id=" S9 ",
        ),
        receipt("gbp-return", channel="MOBILE", currency="GBP", amount=Decimal("-3.33"), discount_amount=None),
    ]
    bronze = spark.createDataFrame(rows, BRONZE)
    checked = with_reject_reason(with_normalised_values(bronze, RULES), RULES)
    silver = {r["row_key"]: r for r in to_silver_receipts(with_duplicate_reasons(checked, None), "run-1").collect()}
    usd, gbp = silver["usd"], silver["gbp-return"]
    # 10.00 USD x 0.92 = 9.20 EUR; 1.05 x 0.92 = 0.966 -> 0.97; -3.33 GBP x 1.17 = -3.8961 -> -3.90
    assert (usd["customer_id"], usd["channel"], usd["currency"]) == ("C1", "online", "USD")
    assert (usd["amount"], usd["discount_amount"], usd["coupon_used"], usd["store_id"]) == (
        Decimal("9.20"),
        Decimal("0.97"),
        False,
        "S9",
    )
    assert (gbp["channel"], gbp["amount"], gbp["discount_amount"]) == ("app", Decimal("-3.90"), Decimal("0.00"))
    assert usd["receipt_month"] == "2024-02" and usd["cleanse_run_id"] == "run-1"


# a rate with many decimals (yen), and the pound's rate as configured
EXACT_RULES = dataclasses.replace(
    RULES, currency_rates={"EUR": Decimal("1"), "GBP": Decimal("1.17"), "JPY": Decimal("0.006123456789")}
)


def silver_amounts(spark: SparkSession, rows: list[tuple], rules: CleanseRules) -> dict[str, tuple]:
    bronze = spark.createDataFrame(rows, BRONZE)
    classified = with_duplicate_reasons(with_reject_reason(with_normalised_values(bronze, rules), rules), None)
    silver = to_silver_receipts(classified, "run-1").collect()
    return {r["row_key"]: (r["amount"], r["discount_amount"]) for r in silver}


def test_amounts_convert_exactly_and_round_half_up_once_to_cents(spark: SparkSession) -> None:
    rows = [
        receipt("jpy", currency="JPY", amount=Decimal("1234.56")),
        receipt("half-cent", currency="GBP", amount=Decimal("6.50"), discount_amount=Decimal("0.50")),
        receipt("half-cent-return", currency="GBP", amount=Decimal("-6.50")),
    ]
    assert silver_amounts(spark, rows, EXACT_RULES) == {
        # 1234.56 x 0.006123456789 = 7.55977481342784 -> 7.56
        "jpy": (Decimal("7.56"), Decimal("0.00")),
        # 6.50 x 1.17 = 7.605 exactly -> 7.61 (in binary floating point 7.6049999999999995 -> 7.60);
        # discount 0.50 x 1.17 = 0.585 -> 0.59
        "half-cent": (Decimal("7.61"), Decimal("0.59")),
        # -6.50 x 1.17 = -7.605 -> -7.61: half away from zero
        "half-cent-return": (Decimal("-7.61"), Decimal("0.00")),
    }


def test_an_amount_that_rounds_to_zero_cents_is_a_zero_amount(spark: SparkSession) -> None:
    rows = [
        receipt("tiny", currency="JPY", amount=Decimal("0.81")),
        receipt("tiny-return", currency="JPY", amount=Decimal("-0.81")),
        receipt("one-cent", currency="JPY", amount=Decimal("0.82")),
    ]
    bronze = spark.createDataFrame(rows, BRONZE)
    checked = with_reject_reason(with_normalised_values(bronze, EXACT_RULES), EXACT_RULES)
    details = {r["row_key"]: (r["reject_reason"], r["reject_detail"]) for r in checked.collect()}
    # 0.81 x 0.006123456789 = 0.00495999999909 -> 0.00; 0.82 x 0.006123456789 = 0.00502123456698 -> 0.01
    assert details == {
        "tiny": ("zero_amount", "amount 0.81 JPY is 0.00 in base currency"),
        "tiny-return": ("zero_amount", "amount -0.81 JPY is 0.00 in base currency"),
        "one-cent": (None, None),
    }
    assert silver_amounts(spark, rows, EXACT_RULES) == {"one-cent": (Decimal("0.01"), Decimal("0.00"))}


def test_a_rate_finer_than_twelve_decimals_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(None, ["currency.rates={EUR: 1, JPY: 0.0061234567891}"])  # 13 decimal places
    assert str(error.value) == (
        "--set currency.rates: the rate of JPY must be below 10,000,000 with at most 12 decimal places "
        "(got 0.0061234567891)"
    )


def test_duplicates_and_conflicts_keep_the_first_ingested_row(spark: SparkSession) -> None:
    later = INGESTED + dt.timedelta(days=1)
    rows = [
        receipt("b-dup", receipt_id="R1"),  # same ingested_at as a-orig: the smaller row_key wins
        receipt("a-orig", receipt_id="R1"),
        receipt("c-conflict", receipt_id="R1", amount=Decimal("11.00")),
        receipt("d-case", receipt_id="R1", customer_id=" c1"),  # same receipt after normalising
        receipt("z-first", receipt_id="R2", ingested_at=INGESTED),
        receipt("a-late", receipt_id="R2", amount=Decimal("12.00"), ingested_at=later),
        receipt("x-invalid-first", receipt_id="R3", amount=Decimal("0")),  # rejected: not a winner
        receipt("y-valid", receipt_id="R3", amount=Decimal("5.00")),
    ]
    assert classify(spark, rows) == {
        "a-orig": None,
        "b-dup": "duplicate_row",
        "c-conflict": "receipt_id_conflict",
        "d-case": "duplicate_row",
        "z-first": None,
        "a-late": "receipt_id_conflict",
        "x-invalid-first": "zero_amount",
        "y-valid": None,
    }


def test_receipts_already_in_silver_win(spark: SparkSession) -> None:
    bronze = spark.createDataFrame([receipt("kept", receipt_id="R1", ingested_at=INGESTED)], BRONZE)
    checked = with_reject_reason(with_normalised_values(bronze, RULES), RULES)
    silver = to_silver_receipts(with_duplicate_reasons(checked, None), "run-0")
    rows = [
        receipt("a-again", receipt_id="R1", ingested_at=INGESTED - dt.timedelta(days=1)),
        receipt("a-other", receipt_id="R1", amount=Decimal("99.00"), ingested_at=INGESTED - dt.timedelta(days=1)),
    ]
    assert classify(spark, rows, kept=silver) == {"a-again": "duplicate_row", "a-other": "receipt_id_conflict"}


def test_receipts_compare_every_receipt_column_but_the_id() -> None:
    # a column added to the receipts must take part in telling a duplicate from a conflict
    assert tuple(CONTENT_OF_CHECKED.values()) == tuple(c for c in RECEIPT_COLUMNS if c != "receipt_id")


def test_missing_values_compare_equal_to_missing_values_only(spark: SparkSession) -> None:
    rows = [
        receipt("a-first", receipt_id="R1", region=None, coupon_used=None),
        receipt("b-same", receipt_id="R1", region=None, coupon_used=False),  # silver holds a missing flag as false
        receipt("c-region", receipt_id="R1", region="North", coupon_used=None),  # null against a value
        receipt("d-first", receipt_id="R2", store_id="S1"),
        receipt("e-no-store", receipt_id="R2", store_id=None),  # a value against null
    ]
    expected = {
        "a-first": None,
        "b-same": "duplicate_row",
        "c-region": "receipt_id_conflict",
        "d-first": None,
        "e-no-store": "receipt_id_conflict",
    }
    assert classify(spark, rows) == expected
    # the same with silver's row as the one kept: its canonical columns stand for the content
    bronze = spark.createDataFrame([receipt("k", receipt_id="R1", region=None, coupon_used=None)], BRONZE)
    silver = to_silver_receipts(
        with_duplicate_reasons(with_reject_reason(with_normalised_values(bronze, RULES), RULES), None), "r0"
    )
    assert classify(spark, [rows[1], rows[2]], kept=silver) == {
        "b-same": "duplicate_row",
        "c-region": "receipt_id_conflict",
    }


def test_the_receipt_id_shuffle_takes_the_partition_count_given(spark: SparkSession) -> None:
    rows = [receipt("a", receipt_id="R1"), receipt("b", receipt_id="R1"), receipt("c", receipt_id="R2")]
    checked = with_reject_reason(with_normalised_values(spark.createDataFrame(rows, BRONZE), RULES), RULES)
    classified = with_duplicate_reasons(checked, None, partitions=7)
    plan = classified._jdf.queryExecution().executedPlan().toString()
    assert re.search(r"hashpartitioning\(receipt_id#\d+, 7\)", plan), plan
    # the content struct is made after the exchange (above it in the plan): it is not shuffled
    lines = plan.splitlines()
    exchange = next(i for i, line in enumerate(lines) if "Exchange hashpartitioning(receipt_id" in line)
    struct = next(i for i, line in enumerate(lines) if " AS _content#" in line)
    assert struct < exchange, plan
    assert {r["row_key"]: r["reject_reason"] for r in classified.collect()} == {
        "a": None,
        "b": "duplicate_row",
        "c": None,
    }


@pytest.fixture(scope="module")
def generated_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("cleanse") / "lake"
    rates = [
        f"--set=generate.defect_rates.{kind}=0.01"
        for kind in (
            "null_customer",
            "customer_id_variant",
            "duplicate_row",
            "reused_receipt_id",
            "future_timestamp",
            "before_business_start",
            "zero_amount",
            "outlier_amount",
            "unknown_currency",
            "unknown_channel",
        )
    ]
    assert generate_job.main([f"--set=lake.root={lake}", "--customers=1000", "--receipts=10000", *rates]) == 0
    assert cleanse_job.main([f"--set=lake.root={lake}"]) == 0
    return lake


def load(spark: SparkSession, lake: Path, table: str) -> DataFrame:
    return spark.read.format("delta").load(f"{lake}/{table}")


def last_cleanse_run(spark: SparkSession, lake: Path):
    """The ending row (succeeded or failed) of the latest cleanse run in ``ops/runs``."""
    runs = load(spark, lake, "ops/runs").where("status <> 'started' AND job = 'cleanse'")
    return runs.orderBy(F.desc("started_at")).first()


def test_every_generated_defect_is_caught_with_its_reason(spark: SparkSession, generated_lake: Path) -> None:
    truth = load(spark, generated_lake, "bronze/_generator_truth")
    quarantine = load(spark, generated_lake, "silver/receipts_quarantine")
    silver = load(spark, generated_lake, "silver/receipts")
    rejected = truth.where("expected_outcome != 'normalised'")
    outcome = rejected.join(quarantine.select("row_key", "reject_reason"), "row_key", "left")
    wrong = outcome.where(F.col("reject_reason").isNull() | (F.col("reject_reason") != F.col("expected_outcome")))
    assert rejected.count() > 500
    assert wrong.count() == 0, wrong.limit(5).collect()
    # nothing else is quarantined
    assert quarantine.join(truth, "row_key", "left_anti").count() == 0
    # case/whitespace variants are kept, normalised
    variants = truth.where("expected_outcome = 'normalised'").join(silver, "row_key")
    assert variants.count() > 50
    assert variants.where(~F.col("customer_id").rlike(r"^C\d{9}$")).count() == 0


def test_outcomes_equal_an_independent_duckdb_implementation(spark: SparkSession, generated_lake: Path) -> None:
    from bench.reference import cleanse_classification_sql, connect

    files = [f.removeprefix("file:") for f in load(spark, generated_lake, "bronze/receipts").inputFiles()]
    rules = cleanse_job.rules_from(load_config(None, [f"lake.root={generated_lake}"]))
    expected = dict(connect().execute(cleanse_classification_sql("$files", rules), {"files": files}).fetchall())
    kept = {r["row_key"]: None for r in load(spark, generated_lake, "silver/receipts").select("row_key").collect()}
    rejected = {
        r["row_key"]: r["reject_reason"]
        for r in load(spark, generated_lake, "silver/receipts_quarantine").select("row_key", "reject_reason").collect()
    }
    assert len(expected) > 10_000
    assert {**kept, **rejected} == expected


def test_books_balance_and_are_recorded(spark: SparkSession, generated_lake: Path) -> None:
    bronze = load(spark, generated_lake, "bronze/receipts").count()
    silver = load(spark, generated_lake, "silver/receipts")
    quarantine = load(spark, generated_lake, "silver/receipts_quarantine")
    assert silver.count() + quarantine.count() == bronze
    assert silver.select("receipt_id").distinct().count() == silver.count()
    quality = {r["check_name"]: r for r in load(spark, generated_lake, "ops/data_quality").collect()}
    assert quality["books_balance"]["passed"] is True
    assert quality["books_balance"]["rows_checked"] == bronze
    by_reason = {r["reject_reason"]: r["count"] for r in quarantine.groupBy("reject_reason").count().collect()}
    for reason, count in by_reason.items():
        assert quality[reason]["rows_flagged"] == count
    assert quality["missing_timestamp"]["rows_flagged"] == 0


def test_profile_describes_each_source_column(spark: SparkSession, generated_lake: Path) -> None:
    profile = {r["column_name"]: r for r in load(spark, generated_lake, "ops/profile").collect()}
    bronze = load(spark, generated_lake, "bronze/receipts")
    assert set(profile) == set(bronze.columns) - {"row_key", "raw_record"}
    nulls = bronze.where(F.col("customer_id").isNull()).count()
    assert profile["customer_id"]["null_count"] == nulls
    assert profile["channel"]["top_values"][0]["value"] == "store"
    assert profile["amount"]["p25"] is not None and profile["category"]["p25"] is None


@pytest.mark.slow  # two cleanse runs over a generated lake: `make test-slow`
def test_rerun_adds_nothing_and_new_bronze_rows_are_processed(spark: SparkSession, generated_lake: Path) -> None:
    config = load_config(None, [f"lake.root={generated_lake}"])
    before = load(spark, generated_lake, "silver/receipts").count()
    assert cleanse_job.main([f"--set=lake.root={generated_lake}"]) == 0
    assert load(spark, generated_lake, "silver/receipts").count() == before
    existing = load(spark, generated_lake, "silver/receipts").orderBy("row_key").first()
    late = spark.createDataFrame(
        [
            receipt("late-new", receipt_id="R-late", ingested_at=dt.datetime(2025, 2, 1)),
            receipt(
                "late-dup",
                receipt_id=existing["receipt_id"],
                customer_id=existing["customer_id"],
                receipt_ts=existing["receipt_ts"],
                amount=existing["amount"],
                currency="EUR",
                channel=existing["channel"],
                store_id=existing["store_id"],
                region=existing["region"],
                category=existing["category"],
                item_count=existing["item_count"],
                discount_amount=existing["discount_amount"],
                coupon_used=existing["coupon_used"],
                ingested_at=dt.datetime(2025, 2, 1),
            ),
            receipt(
                "late-conflict",
                receipt_id=existing["receipt_id"],
                amount=Decimal("1.00"),
                ingested_at=dt.datetime(2025, 2, 1),
            ),
        ],
        BRONZE,
    )
    tables.write_table(late, config, "bronze/receipts", mode="append")
    assert cleanse_job.main([f"--set=lake.root={generated_lake}"]) == 0
    silver = load(spark, generated_lake, "silver/receipts")
    quarantine = load(spark, generated_lake, "silver/receipts_quarantine")
    assert silver.count() == before + 1
    late_reasons = {r["row_key"]: r["reject_reason"] for r in quarantine.where("row_key like 'late-%'").collect()}
    assert late_reasons == {"late-dup": "duplicate_row", "late-conflict": "receipt_id_conflict"}
    last = last_cleanse_run(spark, generated_lake)
    assert (last["rows_in"], last["rows_out"]) == (3, 1)


def test_books_that_do_not_balance_write_nothing(
    spark: SparkSession, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert generate_job.main([f"--set=lake.root={lake}", "--customers=50", "--receipts=500"]) == 0

    def loses_a_row(
        checked: DataFrame, kept: DataFrame | None, *, few: bool = False, partitions: int | None = None
    ) -> DataFrame:
        return with_duplicate_reasons(checked, kept, few=few, partitions=partitions).orderBy("row_key").offset(1)

    monkeypatch.setattr(cleanse_job, "with_duplicate_reasons", loses_a_row)
    assert cleanse_job.main([f"--set=lake.root={lake}"]) == 1  # a broken invariant: not a user error
    assert not tables.table_exists(spark, f"{lake}/silver/receipts")
    assert not tables.table_exists(spark, f"{lake}/silver/receipts_quarantine")
    books = load(spark, lake, "ops/data_quality").where("check_name = 'books_balance'").first()
    assert (books["passed"], books["rows_flagged"]) == (False, 1)
    run = load(spark, lake, "ops/runs").where("status <> 'started'").where("job = 'cleanse'").first()
    assert run["status"] == "failed" and run["error"].startswith("UnbalancedBooksError: books do not balance")


def test_ingested_bad_rows_reach_quarantine_with_their_reason(spark: SparkSession, lake: Path, tmp_path: Path) -> None:
    from jobs import ingest as ingest_job

    source = tmp_path / "pos.csv"
    source.write_text(
        "bon,kunde,zeit,betrag\n"
        "B1,k1,2024-03-01 10:00:00,12.50\n"
        "B2,k2,2024-03-31 23:59:59,-2.00\n"  # a return
        "B3,k3,not a date,5.00\n"
        "B4,k4,2024-03-02 09:00:00,five\n"
        "B5,k5\n"  # too few fields
        "B6,,2024-03-02 09:00:00,1.00\n"
    )
    mapping = tmp_path / "pos.yaml"
    mapping.write_text(
        "source: {format: csv, path: " + str(source) + "}\n"
        "grain: receipt\n"
        "timestamp: {format: 'yyyy-MM-dd HH:mm:ss', time_zone: UTC}\n"
        "columns: {receipt_id: bon, customer_id: kunde, receipt_ts: zeit, amount: betrag}\n"
        "constants: {currency: EUR, channel: store}\n"
    )
    assert ingest_job.main([f"--set=lake.root={lake}", "--mapping", str(mapping)]) == 0
    assert cleanse_job.main([f"--set=lake.root={lake}"]) == 0
    silver = {r["receipt_id"]: r["amount"] for r in load(spark, lake, "silver/receipts").collect()}
    quarantine = {
        r["receipt_id"]: r["reject_reason"] for r in load(spark, lake, "silver/receipts_quarantine").collect()
    }
    assert silver == {"B1": Decimal("12.50"), "B2": Decimal("-2.00")}
    assert quarantine == {
        "B3": "unparseable_timestamp",
        "B4": "unparseable_amount",
        "B5": "malformed_row",
        "B6": "missing_customer",
    }


@pytest.mark.slow  # the killed run is a second JVM
def test_a_run_killed_between_its_commits_is_not_read_and_the_next_run_repairs_it(
    spark: SparkSession, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [f"--set=lake.root={lake}", "--no-profile"]
    config = load_config(None, [f"lake.root={lake}"])

    def add_bronze(rows: list[tuple]) -> None:
        bronze = spark.createDataFrame(rows, BRONZE)
        tables.write_table(bronze, config, "bronze/receipts")

    add_bronze([receipt("a"), receipt("b", amount=Decimal("-3.00")), receipt("c", customer_id=None)])
    assert cleanse_job.main(argv) == 0
    pair = {table: tables.table_version(spark, f"{lake}/{table}") for table in CLEANSE_PAIR}
    add_bronze([receipt("late-ok"), receipt("late-zero", amount=Decimal("0.00"))])

    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.cleanse",
            *argv,
            "--set=spark.master=local[2]",
            "--set=spark.conf.spark.driver.memory=1g",
            "--set=spark.conf.spark.sql.shuffle.partitions=2",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SEGLAKE_FAULT": "cleanse-between-commits", "PYSPARK_PYTHON": sys.executable},
    )
    assert killed.returncode == cleanse_job.FAULT_EXIT_STATUS, killed.stderr
    quarantine_now = load(spark, lake, "silver/receipts_quarantine")
    # the quarantine got the killed run's commit (late-zero), silver did not
    assert [r["row_key"] for r in quarantine_now.where("row_key LIKE 'late-%'").collect()] == ["late-zero"]
    assert tables.table_version(spark, f"{lake}/silver/receipts") == pair["silver/receipts"]

    reader = Lake(spark, config, job="features")
    silver = reader.read("silver/receipts")
    quarantine = reader.read("silver/receipts_quarantine")
    # both at the last complete pair, the orphan commit left out
    assert {table: reader.tables_read[table] for table in CLEANSE_PAIR} == pair
    assert quarantine.where("row_key LIKE 'late-%'").count() == 0
    bronze_keys = [r["row_key"] for r in load(spark, lake, "bronze/receipts").collect()]
    # readers see every bronze row but the two late ones exactly once
    read_keys = [r["row_key"] for r in silver.select("row_key").union(quarantine.select("row_key")).collect()]
    assert sorted(read_keys) == sorted(k for k in bronze_keys if not k.startswith("late-"))

    capsys.readouterr()
    assert cleanse_job.main(argv) == 0
    repaired = [line for line in capsys.readouterr().err.splitlines() if "repaired" in line]
    orphan = pair["silver/receipts_quarantine"] + 1
    assert len(repaired) == 1 and re.search(
        rf"repaired cleanse run [0-9a-f]{{16}}, which committed without completing: silver/receipts_quarantine "
        rf"v{orphan} restored to v{orphan - 1}; its bronze rows are cleansed again$",
        repaired[0],
    ), repaired
    silver, quarantine = load(spark, lake, "silver/receipts"), load(spark, lake, "silver/receipts_quarantine")
    kept = [r["row_key"] for r in silver.select("row_key").collect()]
    rejected = {r["row_key"]: r["reject_reason"] for r in quarantine.collect()}
    assert sorted(kept + list(rejected)) == sorted(bronze_keys)  # no row lost, none doubled
    assert "late-ok" in kept and rejected["late-zero"] == "zero_amount"
    last = last_cleanse_run(spark, lake)
    assert (last["status"], last["rows_in"], last["rows_out"]) == ("succeeded", 2, 1)  # the two late rows


def add_bronze(spark: SparkSession, lake: Path, rows: list[tuple]) -> None:
    config = load_config(None, [f"lake.root={lake}"])
    tables.write_table(spark.createDataFrame(rows, BRONZE), config, "bronze/receipts")


def keys(spark: SparkSession, lake: Path, table: str) -> list[str]:
    return sorted(r["row_key"] for r in load(spark, lake, table).select("row_key").collect())


@pytest.mark.slow  # several job runs over a lake: `make test-slow`
def test_books_are_counted_in_the_committed_tables_and_a_run_that_does_not_balance_there_is_undone(
    spark: SparkSession, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [f"--set=lake.root={lake}", "--no-profile"]
    add_bronze(spark, lake, [receipt("a"), receipt("b", amount=Decimal("-3.00")), receipt("c", customer_id=None)])
    assert cleanse_job.main(argv) == 0
    books = load(spark, lake, "ops/data_quality").where("check_name = 'books_balance'").first()
    # a and b clean, c missing_customer: both tables at v0, their first commit
    assert (books["passed"], books["detail"]) == (
        True,
        "in=3 clean=2 quarantined=1: this run's rows in silver/receipts v0 and silver/receipts_quarantine v0",
    )

    add_bronze(spark, lake, [receipt("d"), receipt("e"), receipt("f", amount=Decimal("0.00"))])
    real = cleanse_job.to_silver_receipts

    def loses_d(classified: DataFrame, run_id: str) -> DataFrame:
        return real(classified, run_id).where("row_key != 'd'")

    monkeypatch.setattr(cleanse_job, "to_silver_receipts", loses_d)
    assert cleanse_job.main(argv) == 1  # a broken invariant: not a user error
    run = load(spark, lake, "ops/runs").where("status <> 'started'").orderBy(F.desc("started_at")).first()
    # counted before writing: 3 in = 2 clean (d, e) + 1 quarantined (f); committed: e and f only
    assert run["error"] == (
        "UnbalancedBooksError: books do not balance in the committed tables: 3 rows in, 1 clean + 1 quarantined "
        "in silver/receipts v1 and silver/receipts_quarantine v1; restored silver/receipts_quarantine v0, "
        "silver/receipts v0"
    )
    books = load(spark, lake, "ops/data_quality").where(f"run_id = '{run['run_id']}' AND check_name = 'books_balance'")
    assert [(r["passed"], r["rows_flagged"]) for r in books.collect()] == [(False, 1)]
    assert keys(spark, lake, "silver/receipts") == ["a", "b"]  # the v0 rows, restored
    assert keys(spark, lake, "silver/receipts_quarantine") == ["c"]

    monkeypatch.undo()
    assert cleanse_job.main(argv) == 0  # the undone run's rows are cleansed again: none lost
    assert keys(spark, lake, "silver/receipts") == ["a", "b", "d", "e"]
    assert keys(spark, lake, "silver/receipts_quarantine") == ["c", "f"]


def test_quarantine_rates_pass_up_to_their_threshold_and_fail_above() -> None:
    counts = {"missing_customer": 400, "zero_amount": 201}
    limits = {"min_rows": 1000, "max_quarantine_rate": 0.25, "max_reason_rate": 0.2,
              "reason_rates": {"zero_amount": 0.1}}  # fmt: skip
    checks = {c.name: c for c in quarantine_rate_checks(2000, counts, REASONS, **limits)}
    assert set(checks) == {*REASONS, "quarantine_rate"}
    # 400 / 2000 = 20.00%, equal to max_reason_rate: passes
    assert checks["missing_customer"] == Check(
        "missing_customer", 2000, 400, True,
        f"{REASONS['missing_customer']}; 400 of 2,000 rows (20.00%); threshold cleanse.thresholds.max_reason_rate = "
        "20.00%",
    )  # fmt: skip
    # 201 / 2000 = 10.05%, above zero_amount's own 10%
    assert checks["zero_amount"].passed is False
    assert checks["zero_amount"].failure == (
        "zero_amount: 201 of 2,000 rows (10.05%) quarantined, above cleanse.thresholds.reason_rates.zero_amount "
        "= 10.00%"
    )
    # (400 + 201) / 2000 = 30.05% of all rows, above 25%
    assert (checks["quarantine_rate"].rows_flagged, checks["quarantine_rate"].passed) == (601, False)
    assert [name for name, c in checks.items() if not c.passed] == ["zero_amount", "quarantine_rate"]


def test_quarantine_rates_below_min_rows_are_recorded_not_judged() -> None:
    limits = {"min_rows": 1000, "max_quarantine_rate": 0.25, "max_reason_rate": 0.2, "reason_rates": {}}
    checks = {c.name: c for c in quarantine_rate_checks(999, {"missing_customer": 999}, REASONS, **limits)}
    assert all(c.passed for c in checks.values())
    # 999 of 999 rows = 100.00%, but 999 rows read is below min_rows 1000
    assert checks["missing_customer"].detail == (
        f"{REASONS['missing_customer']}; 999 of 999 rows (100.00%); not judged below cleanse.thresholds.min_rows = "
        "1,000 rows read"
    )


def test_row_count_drop_against_the_last_run_of_the_same_kind() -> None:
    # 1000 -> 600 rows is a drop of 400 / 1000 = 40.00%: at max_row_drop 0.4 it passes, one row fewer fails
    assert row_drop_check(600, ("r1", 1000), "incremental", 0.4) == Check(
        "row_count_drop", 600, 400, True,
        "600 rows read, 1,000 by the last succeeded incremental run r1: a drop of 40.00%; threshold "
        "cleanse.thresholds.max_row_drop = 40.00%",
    )  # fmt: skip
    dropped = row_drop_check(599, ("r1", 1000), "incremental", 0.4)  # 401 / 1000 = 40.10%
    assert (dropped.passed, dropped.rows_flagged) == (False, 401)
    assert dropped.failure == (
        "row_count_drop: 599 rows read, 1,000 by the last succeeded incremental run r1: a drop of 40.10%, above "
        "cleanse.thresholds.max_row_drop = 40.00%"
    )
    assert row_drop_check(0, ("r1", 1000), "full", None).passed is True  # no threshold: recorded only
    assert row_drop_check(5, None, "full", 0.0).passed is True  # nothing to compare with
    assert row_drop_check(2000, ("r1", 1000), "full", 0.0).rows_flagged == 0  # more rows is no drop


def test_a_failed_threshold_writes_nothing_and_stops_in_one_line(
    spark: SparkSession, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_bronze(spark, lake, [receipt("a"), receipt("b"), receipt("c", customer_id=None)])
    argv = [f"--set=lake.root={lake}", "--no-profile", "--set=cleanse.thresholds.min_rows=0",
            "--set=cleanse.thresholds.reason_rates={missing_customer: 0.3}"]  # fmt: skip
    capsys.readouterr()
    assert cleanse_job.main(argv) == 2
    err = capsys.readouterr().err
    # 1 of 3 rows = 33.33% missing_customer (above its 30%) and quarantined in all (above the default 25%)
    message = (
        "data quality threshold failed: missing_customer: 1 of 3 rows (33.33%) quarantined, above "
        "cleanse.thresholds.reason_rates.missing_customer = 30.00%; nothing written (and 1 more failed check in "
        "ops/data_quality)"
    )
    assert [line for line in err.splitlines() if "error" in line] == [f"seglake cleanse: error: {message}"]
    assert "Traceback" not in err
    assert not tables.table_exists(spark, f"{lake}/silver/receipts")
    assert not tables.table_exists(spark, f"{lake}/silver/receipts_quarantine")
    passed = {r["check_name"]: r["passed"] for r in load(spark, lake, "ops/data_quality").collect()}
    assert [name for name, ok in passed.items() if not ok] == ["missing_customer", "quarantine_rate"]
    assert passed["books_balance"] is True and passed["zero_amount"] is True
    run = load(spark, lake, "ops/runs").where("status <> 'started'").first()
    assert (run["status"], run["error"]) == ("failed", message)


@pytest.mark.slow  # several job runs over a lake: `make test-slow`
def test_an_incremental_run_reads_the_rows_appended_to_bronze_and_compares_keys_after_a_rewrite(
    spark: SparkSession, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [f"--set=lake.root={lake}", "--no-profile"]
    config = load_config(None, [f"lake.root={lake}"])
    add_bronze(spark, lake, [receipt("a"), receipt("b")])  # bronze v0
    assert cleanse_job.main(argv) == 0  # the first run is a full one
    add_bronze(spark, lake, [receipt("c")])  # v1
    capsys.readouterr()
    assert cleanse_job.main(argv) == 0
    assert "1 row appended to bronze/receipts since v0 (its change data feed)" in capsys.readouterr().err
    assert keys(spark, lake, "silver/receipts") == ["a", "b", "c"]
    assert last_cleanse_run(spark, lake)["rows_in"] == 1
    # bronze replaced (v2, an overwrite holding a, b, c again and d): the feed cannot say what is new
    rewritten = spark.createDataFrame([receipt(k) for k in ("a", "b", "c", "d")], BRONZE)
    tables.write_table(rewritten, config, "bronze/receipts", mode="overwrite")
    assert cleanse_job.main(argv) == 0
    assert (
        "new bronze rows found by comparing row keys with silver and the quarantine: bronze/receipts v2 is a "
        "WRITE (Overwrite) since v1: history was rewritten" in capsys.readouterr().err
    )
    assert keys(spark, lake, "silver/receipts") == ["a", "b", "c", "d"]  # each once
    # nothing new: an empty feed, nothing processed
    assert cleanse_job.main(argv) == 0
    assert "0 rows appended to bronze/receipts since v2" in capsys.readouterr().err
    assert last_cleanse_run(spark, lake)["rows_in"] == 0
