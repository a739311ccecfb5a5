"""Features: customer_month rollup and the customer profile, worked out by hand and by DuckDB."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from jobs import cleanse as cleanse_job
from jobs import features as features_job
from jobs import generate as generate_job
from tests.conftest import assert_same_rows
from transforms.calendar import ProfilePeriod, neighbour_months, shift_month, trend_months
from transforms.features import (
    to_customer_lifetime,
    to_customer_month,
    to_customer_month_update,
    to_customer_profile,
    to_lifetime_rows,
)

RECEIPTS = "receipt_id string, customer_id string, receipt_ts timestamp, amount decimal(18,2)"


def ts(text: str) -> dt.datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM``."""
    return dt.datetime.fromisoformat(text)


def receipts_of(spark: SparkSession, rows: list[tuple[str, str, str, str]]) -> DataFrame:
    """(receipt_id, customer_id, 'YYYY-MM-DD[ HH:MM]', 'amount') -> silver-like receipts."""
    typed = [(rid, cid, ts(when), Decimal(amount)) for rid, cid, when, amount in rows]
    frame = spark.createDataFrame(typed, RECEIPTS)
    return frame.withColumns(
        {
            "receipt_month": F.date_format("receipt_ts", "yyyy-MM"),
            **{name: F.lit(value).cast(kind) for name, (kind, value) in SOURCE_DEFAULTS.items()},
        }
    )


# the 360° source columns, constant in the core tests
SOURCE_DEFAULTS = {
    "channel": ("string", "store"),
    "store_id": ("string", "S1"),
    "region": ("string", "North"),
    "category": ("string", "food"),
    "item_count": ("int", 1),
    "discount_amount": ("decimal(18,2)", 0),
    "coupon_used": ("boolean", False),
}


def months_of(spark: SparkSession, rows: list[tuple[str, str, str, str]], last_k: int = 5) -> dict[str, Row]:
    customer_month = to_customer_month(receipts_of(spark, rows), last_k=last_k)
    return {f"{r['customer_id']} {r['month']}": r for r in customer_month.collect()}


def profile_of(
    spark: SparkSession,
    rows: list[tuple[str, str, str, str]],
    as_of: str,
    *,
    window_days: int = 365,
    last_k: int = 5,
    every_path: bool = True,
) -> dict[str, Row]:
    """The profile as of ``as_of``, computed every way the job does: from the stored rollup
    (shuffled by customer), from the rollup kept partitioned by customer (a full rewrite) and
    from a lifetime state (an incremental run); they must agree row for row. ``every_path``
    False computes the first only (data inside one or two months, where the other paths have
    nothing of their own to show: it keeps `make test` short)."""
    receipts = receipts_of(spark, rows)
    period = {"as_of": dt.date.fromisoformat(as_of), "window_days": window_days, "last_k": last_k}
    stored = to_customer_profile(to_customer_month(receipts, last_k=last_k), receipts, **period)
    profile = {r["customer_id"]: r for r in stored.collect()}
    if not every_path:
        return profile
    kept = to_customer_month(receipts, last_k=last_k, partitions=3).persist()
    try:
        kept.count()
        from_kept = {r["customer_id"]: r for r in to_customer_profile(kept, receipts, partitions=3, **period).collect()}
    finally:
        kept.unpersist()
    assert from_kept == profile
    # from a lifetime state ending two months before D's last whole month: the months after
    # it come from the rollup (tests/test_profile.py: a state through the last whole month)
    rollup = to_customer_month(receipts, last_k=last_k)
    through = shift_month(ProfilePeriod(period["as_of"], window_days).last_whole_month, -2)
    state = to_customer_lifetime(
        to_lifetime_rows(rollup.where(F.col("month") <= through)), through_month=through, last_k=last_k
    )
    from_state = to_customer_profile(rollup, receipts, lifetime=state, lifetime_through=through, **period)
    assert {r["customer_id"]: r for r in from_state.collect()} == profile, f"lifetime state through {through}"
    return profile


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# ---------------------------------------------------------------- periods


def test_period_names_the_months_the_window_start_and_as_of_cut() -> None:
    # D = 2024-03-01, W = 365: D - W = 2023-03-02 (the year holds 2024-02-29), so S = 2023-03-03
    period = ProfilePeriod(d("2024-03-01"), 365)
    assert period.window_start == d("2023-03-03")
    assert period.cut_months == ["2023-03", "2024-03"]
    assert (period.first_whole_window_month, period.last_whole_month) == ("2023-04", "2024-02")
    # D = 2024-06-30 (month end), W = 30: S = 2024-06-01 (month start): nothing is cut
    whole = ProfilePeriod(d("2024-06-30"), 30)
    assert whole.cut_months == []
    assert (whole.first_whole_window_month, whole.last_whole_month) == ("2024-06", "2024-06")


# ---------------------------------------------------------------- customer_month


def test_customer_month_adds_up_purchases_and_returns(spark: SparkSession) -> None:
    months = months_of(
        spark,
        [
            ("r1", "A", "2024-01-10 09:00", "10.00"),
            ("r2", "A", "2024-01-20 10:00", "-3.00"),
            ("r3", "A", "2024-01-20 11:00", "5.50"),
            ("r4", "A", "2024-02-01 08:00", "7.00"),
        ],
    )
    jan, feb = months["A 2024-01"], months["A 2024-02"]
    # January: purchases 10.00 + 5.50 = 15.50 (2 orders), one return -3.00, net 12.50
    assert (jan["orders"], jan["purchase_amount"], jan["returns"], jan["return_amount"], jan["net_amount"]) == (
        2,
        Decimal("15.50"),
        1,
        Decimal("-3.00"),
        Decimal("12.50"),
    )
    assert (jan["first_purchase_ts"], jan["last_purchase_ts"]) == (ts("2024-01-10 09:00"), ts("2024-01-20 11:00"))
    # February: one purchase, no return (0.00, not null)
    assert (feb["orders"], feb["returns"], feb["return_amount"], feb["net_amount"]) == (
        1,
        0,
        Decimal("0.00"),
        Decimal("7.00"),
    )


def test_gap_crossing_the_year_counts_in_the_later_month(spark: SparkSession) -> None:
    months = months_of(
        spark,
        [
            ("r1", "A", "2023-12-31 23:00", "10.00"),  # first purchase ever: no gap
            ("r2", "A", "2024-01-01 00:30", "10.00"),  # gap 1 day, counted in January
            ("r3", "A", "2024-03-01 12:00", "10.00"),  # 2024-01-01 -> 2024-03-01: 30 + 29 (leap Feb) + 1 = 60
        ],
    )
    gaps = {key: (r["gap_count"], r["gap_sum_days"], r["gap_sumsq_days"]) for key, r in months.items()}
    assert gaps == {"A 2023-12": (0, 0, 0), "A 2024-01": (1, 1, 1), "A 2024-03": (1, 60, 3600)}


def test_same_day_purchases_give_gap_zero_and_returns_give_no_gap(spark: SparkSession) -> None:
    months = months_of(
        spark,
        [
            ("r1", "A", "2024-02-29 10:00", "4.00"),
            ("r2", "A", "2024-02-29 11:00", "-4.00"),  # a return: not a purchase, no gap
            ("r3", "A", "2024-02-29 12:00", "6.00"),
            ("r4", "A", "2024-02-29 12:00", "8.00"),  # same time as r3 (a tie)
        ],
        last_k=2,
    )
    feb = months["A 2024-02"]
    # purchases r1, r3, r4 on one day: gaps 0 and 0
    assert (feb["orders"], feb["gap_count"], feb["gap_sum_days"], feb["gap_sumsq_days"]) == (3, 2, 0, 0)
    assert feb["last_purchase_dates"] == [d("2024-02-29"), d("2024-02-29")]


def test_last_purchase_dates_keep_the_latest_k_descending(spark: SparkSession) -> None:
    months = months_of(
        spark,
        [
            ("r1", "A", "2024-05-03", "1.00"),
            ("r2", "A", "2024-05-10", "1.00"),
            ("r3", "A", "2024-05-07", "1.00"),
            ("r4", "A", "2024-05-20", "1.00"),
            ("r5", "A", "2024-05-25", "-1.00"),  # a return is not a purchase date
        ],
        last_k=3,
    )
    assert months["A 2024-05"]["last_purchase_dates"] == [d("2024-05-20"), d("2024-05-10"), d("2024-05-07")]


# ---------------------------------------------------------------- profile


def test_population_is_customers_with_a_purchase_up_to_as_of(spark: SparkSession) -> None:
    profile = profile_of(
        spark,
        [
            ("r1", "A", "2024-06-15 23:59", "5.00"),  # bought on D
            ("r2", "LATE", "2024-06-16 00:00", "5.00"),  # only purchase after D, same month
            ("r3", "LATER", "2024-07-01", "5.00"),  # only purchase in a month after D
            ("r4", "RET", "2024-06-01", "-5.00"),  # only a return
        ],
        "2024-06-15",
        every_path=False,
    )
    assert set(profile) == {"A"}
    assert profile["A"]["recency_days"] == 0


def test_purchases_after_as_of_are_ignored(spark: SparkSession) -> None:
    profile = profile_of(
        spark,
        [
            ("r1", "A", "2024-06-01", "10.00"),
            ("r2", "A", "2024-06-10", "20.00"),
            ("r3", "A", "2024-06-20", "40.00"),  # after D, in D's month
            ("r4", "A", "2024-07-05", "80.00"),  # after D, a later month
        ],
        "2024-06-15",
    )
    a = profile["A"]
    # up to D: 06-01 and 06-10. recency 15 - 10 = 5; length 9; one gap (9) -> periodicity null
    assert (a["orders_lifetime"], a["net_amount_lifetime"], a["frequency"], a["monetary_amount"]) == (
        2,
        Decimal("30.00"),
        2,
        Decimal("30.00"),
    )
    assert (a["last_purchase_date"], a["recency_days"], a["length_days"], a["periodicity_days"]) == (
        d("2024-06-10"),
        5,
        9,
        None,
    )


def test_dates_across_a_year_boundary(spark: SparkSession) -> None:
    profile = profile_of(
        spark, [("r1", "A", "2023-12-31 23:59", "3.00"), ("r2", "A", "2024-01-01 00:00", "4.00")], "2024-01-10"
    )
    a = profile["A"]
    # first 2023-12-31, last 2024-01-01: recency 9, tenure 10, length 1, cohort of the first purchase
    assert (a["first_purchase_date"], a["last_purchase_date"], a["recency_days"], a["tenure_days"]) == (
        d("2023-12-31"),
        d("2024-01-01"),
        9,
        10,
    )
    assert (a["length_days"], a["cohort"], a["frequency"], a["as_of_date"]) == (1, "2023-12", 2, d("2024-01-10"))


def test_window_start_cuts_a_month_across_a_leap_day(spark: SparkSession) -> None:
    # D = 2024-03-01, W = 365: window (2023-03-02, 2024-03-01] because it holds 2024-02-29
    profile = profile_of(
        spark,
        [
            ("r1", "A", "2023-03-02 12:00", "20.00"),  # D - W: outside
            ("r2", "A", "2023-03-03 00:00", "30.00"),  # first day inside (March 2023 is cut)
            ("r3", "A", "2024-02-29 08:00", "10.00"),
        ],
        "2024-03-01",
    )
    a = profile["A"]
    # frequency 2, monetary 30 + 10 = 40.00, mean receipt 20.00; recency 1
    assert (a["frequency"], a["monetary_amount"], a["avg_receipt_amount"], a["recency_days"]) == (
        2,
        Decimal("40.00"),
        Decimal("20.00"),
        1,
    )
    # tenure 2023-03-02 -> 2024-03-01 = 365; length 2023-03-02 -> 2024-02-29 = 364; lifetime 60.00 in 3 orders
    assert (a["tenure_days"], a["length_days"], a["orders_lifetime"], a["net_amount_lifetime"]) == (
        365,
        364,
        3,
        Decimal("60.00"),
    )


def test_returns_count_in_monetary_only_inside_the_window(spark: SparkSession) -> None:
    # D = 2024-06-30 (a month end), W = 20: window (2024-06-10, 2024-06-30], June is cut by the start
    profile = profile_of(
        spark,
        [
            ("r1", "A", "2024-04-10", "30.00"),  # April: a whole month before the window
            ("r2", "A", "2024-04-20", "-30.00"),
            ("r3", "A", "2024-06-05", "100.00"),  # June, before the window start
            ("r4", "A", "2024-06-08", "-40.00"),  # return before the window start: not in monetary
            ("r5", "A", "2024-06-15", "50.00"),
            ("r6", "A", "2024-06-20", "-5.00"),  # return inside the window
            ("r7", "A", "2024-07-01", "-7.00"),  # return after D
        ],
        "2024-06-30",
        window_days=20,
    )
    a = profile["A"]
    # window: 50.00 - 5.00 = 45.00 in 1 purchase (mean 50.00)
    # lifetime: 30 - 30 + 100 - 40 + 50 - 5 = 105.00 in 3 purchases
    assert (a["frequency"], a["monetary_amount"], a["avg_receipt_amount"]) == (1, Decimal("45.00"), Decimal("50.00"))
    assert (a["orders_lifetime"], a["net_amount_lifetime"]) == (3, Decimal("105.00"))


def test_window_inside_one_month_reads_that_month_from_the_receipts(spark: SparkSession) -> None:
    # D = 2024-06-15, W = 10: window (2024-06-05, 2024-06-15]; June is cut at both ends
    profile = profile_of(
        spark,
        [
            ("r1", "A", "2024-06-05 23:59", "1.00"),  # D - W: outside
            ("r2", "A", "2024-06-06 00:00", "2.00"),  # first day inside
            ("r3", "A", "2024-06-15 12:00", "-0.50"),  # a return on D: inside
            ("r4", "A", "2024-06-16 00:00", "4.00"),  # after D
        ],
        "2024-06-15",
        window_days=10,
    )
    a = profile["A"]
    # window: 1 purchase, 2.00 - 0.50 = 1.50; lifetime: 2 purchases, 1.00 + 2.00 - 0.50 = 2.50
    assert (a["frequency"], a["monetary_amount"], a["orders_lifetime"], a["net_amount_lifetime"]) == (
        1,
        Decimal("1.50"),
        2,
        Decimal("2.50"),
    )


def ancestors(plan: str, line_number: int) -> list[str]:
    """The operators above line ``line_number`` of a physical plan tree printed by Spark."""
    lines = plan.splitlines()

    def depth(line: str) -> int:
        return len(line) - len(line.lstrip(" :+-"))

    above, level = [], depth(lines[line_number])
    for line in reversed(lines[:line_number]):
        if line.strip() and depth(line) < level:
            above.append(line.strip(" :+-"))
            level = depth(line)
    return above


def test_the_profile_from_a_kept_rollup_shuffles_only_the_cut_months(spark: SparkSession) -> None:
    rows = [
        ("r1", "A", "2024-01-10", "5.00"),
        ("r2", "A", "2024-03-20", "7.00"),  # March is cut by D
        ("r3", "B", "2023-12-31 23:00", "3.00"),
        ("r4", "B", "2024-03-02", "-1.00"),
    ]
    receipts = receipts_of(spark, rows)
    kept = to_customer_month(receipts, last_k=3, partitions=4).persist()
    try:
        # materialised, as the job's Delta write of it does: only then does the cache report
        # its partitioning to the plans that read it
        kept.count()
        profile = to_customer_profile(kept, receipts, as_of=d("2024-03-25"), window_days=60, last_k=3, partitions=4)
        plan = profile._jdf.queryExecution().executedPlan().toString()
        scans = [i for i, line in enumerate(plan.splitlines()) if "InMemoryTableScan" in line]
        exchanges = [line for line in plan.splitlines() if "Exchange" in line]
        assert scans, plan
        for scan in scans:  # the kept rollup reaches the aggregation with no shuffle above it
            assert not [op for op in ancestors(plan, scan) if "Exchange" in op], plan
        assert exchanges, plan  # the cut month's receipts are shuffled
        assert {r["customer_id"]: r["frequency"] for r in profile.collect()} == {"A": 1, "B": 0}
        # the full run's way: the lifetime state aggregated from the kept rollup (no shuffle
        # either), kept too, then the profile from both
        through = "2024-02"
        lifetime = to_customer_lifetime(
            to_lifetime_rows(kept.where(F.col("month") <= through)), through_month=through, last_k=3
        ).persist()
        try:
            lifetime.count()
            from_state = to_customer_profile(
                kept,
                receipts,
                as_of=d("2024-03-25"),
                window_days=60,
                last_k=3,
                partitions=4,
                lifetime=lifetime,
                lifetime_through=through,
            )
            plan = from_state._jdf.queryExecution().executedPlan().toString()
            scans = [i for i, line in enumerate(plan.splitlines()) if "InMemoryTableScan" in line]
            assert len(scans) >= 2, plan
            for scan in scans:
                assert not [op for op in ancestors(plan, scan) if "Exchange" in op], plan
            assert {r["customer_id"]: r["frequency"] for r in from_state.collect()} == {"A": 1, "B": 0}
        finally:
            lifetime.unpersist()
    finally:
        kept.unpersist()


def test_neighbour_months_cross_the_year() -> None:
    assert neighbour_months(["2024-01"]) == ["2023-12", "2024-01", "2024-02"]
    assert neighbour_months(["2024-12", "2025-01"]) == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert neighbour_months([]) == []


def silver_cleansed_in_utc(spark: SparkSession, rows: list[tuple[str, str, str, str]]) -> DataFrame:
    """Receipts as a UTC run would have cleansed them (``receipt_month`` is the UTC month),
    ``YYYY-MM-DD HH:MM`` read as UTC; the month is kept as data, not recomputed later."""
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        frame = receipts_of(spark, rows)
        return spark.createDataFrame(frame.collect(), frame.schema)
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)


def profile_in_zone(spark: SparkSession, silver: DataFrame, zone: str, as_of: str, window_days: int) -> dict[str, Row]:
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        customer_month = to_customer_month(silver, last_k=5)
        profile = to_customer_profile(customer_month, silver, as_of=d(as_of), window_days=window_days, last_k=5)
        return {r["customer_id"]: r for r in profile.collect()}
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)


def test_cut_months_read_receipts_that_silver_filed_under_a_neighbouring_month(spark: SparkSession) -> None:
    silver = silver_cleansed_in_utc(
        spark,
        [
            ("t1", "T", "2024-01-10 12:00", "10.00"),  # Tokyo 2024-01-10 21:00
            ("t2", "T", "2024-02-29 20:00", "20.00"),  # Tokyo 2024-03-01 05:00, filed under 2024-02
            ("n1", "N", "2024-01-05 12:00", "5.00"),  # New York 2024-01-05 07:00
            ("n2", "N", "2024-03-01 03:00", "15.00"),  # New York 2024-02-29 22:00, filed under 2024-03
            ("n3", "N", "2024-03-20 15:00", "7.00"),  # New York 2024-03-20 11:00
        ],
    )
    # Tokyo, D = 2024-03-15 cuts March, which is read from the receipts: t2 is in it
    t = profile_in_zone(spark, silver, "Asia/Tokyo", "2024-03-15", 365)["T"]
    assert (t["frequency"], t["monetary_amount"], t["orders_lifetime"]) == (2, Decimal("30.00"), 2)
    # last purchase 2024-03-01: recency 14; gap 2024-01-10 -> 2024-03-01 = 21 + 29 + 1 = 51 days
    assert (t["last_purchase_date"], t["recency_days"], t["mean_gap_days"]) == (d("2024-03-01"), 14, 51.0)
    assert (t["tenure_days"], t["recency_last_k_days"]) == (65, (65 + 14) / 2)
    # New York, D = 2024-03-31, W = 40: S = 2024-02-21 cuts February, read from the receipts: n2 is in
    # the window (2024-02-29) with n3; lifetime gaps 55 (01-05 -> 02-29) and 20 (02-29 -> 03-20)
    n = profile_in_zone(spark, silver, "America/New_York", "2024-03-31", 40)["N"]
    assert (n["frequency"], n["monetary_amount"], n["orders_lifetime"]) == (2, Decimal("22.00"), 3)
    assert (n["mean_gap_days"], n["recency_days"]) == (37.5, 11)
    assert n["periodicity_days"] == pytest.approx(35 / math.sqrt(2))


def test_incremental_month_rebuild_reads_receipts_filed_under_a_neighbouring_month(spark: SparkSession) -> None:
    silver = silver_cleansed_in_utc(
        spark,
        [
            ("t1", "T", "2024-01-10 12:00", "10.00"),  # Tokyo 2024-01-10
            ("t2", "T", "2024-02-29 20:00", "20.00"),  # Tokyo 2024-03-01, filed under 2024-02
            ("t3", "T", "2024-03-31 16:00", "40.00"),  # Tokyo 2024-04-01, filed under 2024-03
        ],
    )
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Asia/Tokyo")
    try:
        full = to_customer_month(silver, last_k=5)
        update = to_customer_month_update(silver, full, months=["2024-03"], last_k=5).collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    # only March (Tokyo): t2 alone, its gap from t1 = 51 days; t3 is April's, not March's
    assert [(r["month"], r["orders"], r["purchase_amount"], r["gap_sum_days"]) for r in update] == [
        ("2024-03", 1, Decimal("20.00"), 51)
    ]


def test_customer_who_bought_only_before_the_window_has_frequency_zero(spark: SparkSession) -> None:
    profile = profile_of(spark, [("r1", "OLD", "2023-01-10", "25.00")], "2024-06-15")
    old = profile["OLD"]
    # 2023-01-10 -> 2024-06-15: 356 + 166 = 522 days (2024 is a leap year)
    assert (old["frequency"], old["monetary_amount"], old["avg_receipt_amount"]) == (0, Decimal("0.00"), None)
    assert (old["recency_days"], old["orders_lifetime"], old["cohort"]) == (522, 1, "2023-01")


def test_periodicity_is_null_with_two_purchases(spark: SparkSession) -> None:
    profile = profile_of(
        spark, [("r1", "A", "2024-01-01", "1.00"), ("r2", "A", "2024-01-11", "1.00")], "2024-01-31", every_path=False
    )
    assert profile["A"]["periodicity_days"] is None


def test_recency_last_k_with_fewer_than_k_purchases_averages_those_there_are(spark: SparkSession) -> None:
    profile = profile_of(
        spark, [("r1", "A", "2024-01-01", "1.00"), ("r2", "A", "2024-01-11", "1.00")], "2024-01-31", every_path=False
    )
    # k = 5, two purchases: (30 + 20) / 2 = 25
    assert profile["A"]["recency_last_k_days"] == pytest.approx(25.0)


FOUR_PURCHASES = [
    ("r1", "A", "2024-01-30 10:00", "1.00"),
    ("r2", "A", "2024-02-02 09:00", "1.00"),  # gap 3, crossing into February
    ("r3", "A", "2024-02-02 18:00", "1.00"),  # gap 0, same day
    ("r4", "A", "2024-03-04 07:00", "1.00"),  # gap 2024-02-02 -> 2024-03-04 = 31 (leap February), in D's month
    ("r5", "A", "2024-03-12 07:00", "1.00"),  # after D: no gap 8
]


def test_periodicity_of_four_purchases_is_the_sample_stddev_of_the_gaps(spark: SparkSession) -> None:
    profile = profile_of(spark, FOUR_PURCHASES, "2024-03-10", every_path=False)  # every path: the test below (k = 3)
    # gaps 3, 0, 31: mean 34/3; squares 9 + 0 + 961 = 970
    # sample variance = (3 * 970 - 34^2) / (3 * 2) = (2910 - 1156) / 6 = 292.333...; sd = 17.0978...
    assert profile["A"]["periodicity_days"] == pytest.approx(math.sqrt(1754 / 6))
    assert profile["A"]["orders_lifetime"] == 4


def test_recency_last_k_uses_the_latest_k_purchases(spark: SparkSession) -> None:
    profile = profile_of(spark, FOUR_PURCHASES, "2024-03-10", last_k=3)
    # last 3 up to D: 03-04, 02-02, 02-02 -> 6, 37, 37 days to D: 80 / 3
    assert profile["A"]["recency_last_k_days"] == pytest.approx(80 / 3)


# ---------------------------------------------------------------- the job vs DuckDB


COLUMNS = (
    "customer_id",
    "recency_days",
    "frequency",
    "monetary_amount",
    "avg_receipt_amount",
    "first_purchase_date",
    "last_purchase_date",
    "tenure_days",
    "length_days",
    "recency_last_k_days",
    "periodicity_days",
    "cohort",
    "orders_lifetime",
    "net_amount_lifetime",
)


@pytest.fixture(scope="module")
def generated_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("features") / "lake"
    root = f"--set=lake.root={lake}"
    assert (
        generate_job.main([root, "--customers=500", "--receipts=5000", "--start=2023-01-01", "--end=2024-06-30"]) == 0
    )
    assert cleanse_job.main([root, "--no-profile"]) == 0
    return lake


def _close(ours: Any, reference: Any) -> bool:
    if ours is None or reference is None:
        return ours is None and reference is None
    if isinstance(ours, float | Decimal) or isinstance(reference, float):
        return abs(float(ours) - float(reference)) <= 0.0051  # avg_receipt_amount is rounded to cents
    return bool(ours == reference)


@pytest.mark.parametrize("as_of", ["2024-03-15", None])  # mid-month; the default (last day with receipts)
def test_profile_through_customer_month_equals_duckdb_on_the_receipts(
    spark: SparkSession, generated_lake: Path, tmp_path: Path, as_of: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.reference import PROFILE_360_COLUMNS, PROFILE_360_SQL, PROFILE_SQL, connect

    silver = spark.read.format("delta").load(f"{generated_lake}/silver/receipts")
    files = str(tmp_path / "receipts")
    silver.select(
        "customer_id",
        "receipt_id",
        "receipt_ts",
        "amount",
        "channel",
        "store_id",
        "region",
        "category",
        "item_count",
        "discount_amount",
        "coupon_used",
    ).write.parquet(files)
    duck = connect(threads=2)
    day = as_of or str(
        duck.execute(f"SELECT max(CAST(receipt_ts AS DATE)) FROM read_parquet('{files}/*.parquet')").fetchone()[0]
    )
    params = {"files": f"{files}/*.parquet", "as_of": d(day), "w": 365, "k": 5}
    expected = {row[0]: row for row in duck.execute(PROFILE_SQL, params).fetchall()}

    argv = [f"--set=lake.root={generated_lake}"] + ([f"--as-of={as_of}"] if as_of else [])
    assert features_job.main(argv) == 0
    assert f"as of {day}" in capsys.readouterr().err
    profile = spark.read.format("delta").load(f"{generated_lake}/gold/customer_profile")
    ours = {r["customer_id"]: r for r in profile.where(F.col("as_of_date") == d(day)).select(*COLUMNS).collect()}

    assert len(expected) > 300
    assert set(ours) == set(expected)
    wrong = [
        (customer, column, ours[customer][i], expected[customer][i])
        for customer in expected
        for i, column in enumerate(COLUMNS)
        if not _close(ours[customer][i], expected[customer][i])
    ]
    assert wrong == [], wrong[:5]
    assert sum(1 for r in ours.values() if r["frequency"] == 0) > 0  # customers who lapsed are in

    # the 360° columns, from the rollup, against DuckDB straight from the receipts
    last_3, previous_3 = trend_months(ProfilePeriod(d(day), 365).last_whole_month)
    params_360 = {"files": params["files"], "as_of": d(day), "w": 365, "last_3": last_3, "previous_3": previous_3}
    expected_360 = {row[0]: row for row in duck.execute(PROFILE_360_SQL, params_360).fetchall()}
    ours_360 = {
        r["customer_id"]: r for r in profile.where(F.col("as_of_date") == d(day)).select(*PROFILE_360_COLUMNS).collect()
    }
    assert set(ours_360) == set(expected_360)
    wrong_360 = [
        (customer, column, ours_360[customer][i], expected_360[customer][i])
        for customer in expected_360
        for i, column in enumerate(PROFILE_360_COLUMNS)
        if not _close_360(ours_360[customer][i], expected_360[customer][i])
    ]
    assert wrong_360 == [], wrong_360[:5]
    assert len({r["main_channel"] for r in ours_360.values()}) == 4  # store, online, app and None (lapsed)


def test_bench_spark_360_sql_equals_duckdb_and_its_check_catches_a_difference(
    spark: SparkSession, generated_lake: Path, tmp_path: Path
) -> None:
    """make bench times PROFILE_360_SQL in Spark's dialect against DuckDB: both must give the
    same rows (the bench checks it each run), and the check must notice one changed value."""
    from bench.reference import PROFILE_360_SQL, connect
    from bench.run import check_spark_360, plain_spark_360

    as_of = d("2024-03-15")
    last_3, previous_3 = trend_months(ProfilePeriod(as_of, 365).last_whole_month)
    files = [
        f.removeprefix("file:")
        for f in spark.read.format("delta").load(f"{generated_lake}/silver/receipts").inputFiles()
    ]
    duck = connect(threads=2)
    params = {"files": files, "as_of": as_of, "w": 365, "last_3": last_3, "previous_3": previous_3}
    duck.execute(f"COPY ({PROFILE_360_SQL}) TO '{tmp_path}/duckdb-360.parquet' (FORMAT parquet)", params)
    out = tmp_path / "spark-360.parquet"
    plain_spark_360(
        spark, generated_lake, out, as_of=as_of, window_days=params["w"], last_3=last_3, previous_3=previous_3
    )
    spark_rows = spark.read.parquet(str(out))
    assert spark_rows.count() > 300
    check_spark_360(duck, tmp_path, out)

    changed = tmp_path / "changed.parquet"
    first = spark_rows.agg(F.min("customer_id")).first()[0]
    share = F.when(F.col("customer_id") == first, F.col("weekend_order_share") + 0.001)
    spark_rows.withColumn("weekend_order_share", share.otherwise(F.col("weekend_order_share"))).write.parquet(
        str(changed)
    )
    with pytest.raises(SystemExit, match="differs from DuckDB's 360° values in 2 rows"):
        check_spark_360(duck, tmp_path, changed)


def _close_360(ours: Any, reference: Any) -> bool:
    if isinstance(ours, float) and reference is not None:
        return abs(ours - float(reference)) <= 1e-9
    return ours == reference


# ---------------------------------------------------------------- incremental rollup

SILVER = (
    "receipt_id string, customer_id string, receipt_ts timestamp, amount decimal(18,2), currency string, "
    "channel string, store_id string, region string, category string, item_count int, "
    "discount_amount decimal(18,2), coupon_used boolean, source_file string, row_key string, "
    "ingested_at timestamp, cleanse_run_id string, receipt_month string"
)
FIRST_BATCH = [
    ("a1", "A", "2024-01-10", "10.00"),
    ("a2", "A", "2024-03-05", "10.00"),
    ("a3", "A", "2024-05-20", "10.00"),
    ("b1", "B", "2024-02-01", "5.00"),
    ("b2", "B", "2024-02-15", "5.00"),
    ("c1", "C", "2024-04-01", "8.00"),
    ("c2", "C", "2024-04-03", "-8.00"),
]
LATE_BATCH = [
    ("a4", "A", "2024-02-20", "10.00"),  # changes February and A's March gap (was 55 days, now 14)
    ("b3", "B", "2024-06-02", "5.00"),  # a new month
]


def append_silver(spark: SparkSession, lake: Path, rows: list[tuple[str, str, str, str]]) -> None:
    from seglake import tables
    from seglake.config import load_config

    full = [
        (
            rid,
            cid,
            ts(when),
            Decimal(amount),
            "EUR",
            "store",
            "S1",
            "North",
            "fresh",
            1,
            Decimal("0.00"),
            False,
            "test",
            rid,
            dt.datetime(2024, 7, 1),
            "run-0",
            when[:7],
        )
        for rid, cid, when, amount in rows
    ]
    config = load_config(None, [f"lake.root={lake}"])
    tables.write_table(spark.createDataFrame(full, SILVER), config, "silver/receipts")


def comparable(frame: DataFrame) -> DataFrame:
    """Map columns as sorted entry arrays (maps can be neither sorted nor hashed)."""
    maps = [f.name for f in frame.schema.fields if f.dataType.typeName() == "map"]
    return frame.withColumns({name: F.array_sort(F.map_entries(name)) for name in maps})


def assert_rollup_is_a_full_rebuild(spark: SparkSession, lake: Path) -> None:
    """silver/customer_month equals the rollup rebuilt from all of silver (session time zone)."""
    from chispa import assert_df_equality

    customer_month = spark.read.format("delta").load(f"{lake}/silver/customer_month")
    full = to_customer_month(spark.read.format("delta").load(f"{lake}/silver/receipts"), last_k=5)
    assert_df_equality(
        comparable(customer_month.select(*full.columns)),
        comparable(full),
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_metadata=True,
    )


def last_features_run(spark: SparkSession, lake: Path) -> Row:
    runs = spark.read.format("delta").load(f"{lake}/ops/runs").where("status <> 'started'").where("job = 'features'")
    return runs.orderBy(F.desc("started_at")).first()


def test_partitions_rise_with_the_table_bytes_and_never_fall_below_the_configured() -> None:
    from seglake.lake import partitions_for_bytes

    assert partitions_for_bytes(16, 0, 128) == 16
    assert partitions_for_bytes(16, 16 * 128, 128) == 16  # exactly one partition's bytes each
    assert partitions_for_bytes(16, 16 * 128 + 1, 128) == 17  # one byte more: one more partition
    assert partitions_for_bytes(16, 8_300_000_000, 128 * 2**20) == 62  # 250M receipts' silver
    assert partitions_for_bytes(16, 10**12, None) == 16  # null: the configured count as is


def test_the_features_job_takes_its_partition_count_from_silver_bytes_on_disk(spark: SparkSession, lake: Path) -> None:
    from seglake.config import load_config
    from seglake.lake import Lake

    append_silver(spark, lake, FIRST_BATCH)
    append_silver(spark, lake, LATE_BATCH)  # two commits: the latest version's files, both
    silver = lake / "silver" / "receipts"
    on_disk = sum(f.stat().st_size for f in silver.rglob("*.parquet") if "_delta_log" not in f.parts)
    assert on_disk > 2000
    config = load_config(None, [f"lake.root={lake}", "features.partition_bytes=1000"])
    assert features_job.partitions_by_customer(Lake(spark, config, "features")) == math.ceil(on_disk / 1000)
    default = load_config(None, [f"lake.root={lake}"])
    assert features_job.partitions_by_customer(Lake(spark, default, "features")) == 2  # the suite's shuffle partitions


@pytest.mark.slow  # several job runs over a lake: `make test-slow`
def test_incremental_rollup_rebuilds_only_changed_months_and_nothing_when_nothing_changed(
    spark: SparkSession, lake: Path
) -> None:
    root = f"--set=lake.root={lake}"
    append_silver(spark, lake, FIRST_BATCH)
    assert features_job.main([root, "--as-of=2024-05-31"]) == 0
    append_silver(spark, lake, LATE_BATCH)
    assert features_job.main([root, "--as-of=2024-06-30", "--incremental"]) == 0

    # February (a4), March (A's next purchase month after a4: its first gap changes), June (b3)
    details = json.loads(last_features_run(spark, lake)["details"])
    assert details["rebuilt_months"] == ["2024-02", "2024-03", "2024-06"]
    customer_month = spark.read.format("delta").load(f"{lake}/silver/customer_month")
    a_march = customer_month.where("customer_id = 'A' and month = '2024-03'").first()
    assert (a_march["gap_count"], a_march["gap_sum_days"], a_march["gap_sumsq_days"]) == (1, 14, 196)
    assert_rollup_is_a_full_rebuild(spark, lake)
    # a rerun without new receipts rebuilds no month and commits nothing to the rollup
    assert features_job.main([root, "--as-of=2024-06-30", "--incremental"]) == 0
    rerun = last_features_run(spark, lake)
    assert json.loads(rerun["details"])["rebuilt_months"] == []
    assert "silver/customer_month" not in rerun["tables_written"]


@pytest.mark.slow  # several job runs over a lake: `make test-slow`
def test_incremental_rollup_of_another_version_or_time_zone_is_rewritten_whole(
    spark: SparkSession, lake: Path, monkeypatch, capsys
) -> None:
    root = f"--set=lake.root={lake}"
    append_silver(spark, lake, FIRST_BATCH)
    assert features_job.main([root, "--as-of=2024-05-31"]) == 0
    # as if the rollup had been written by a seglake version with other rollup columns
    monkeypatch.setattr(
        features_job, "CUSTOMER_MONTH_COLUMNS", (*features_job.CUSTOMER_MONTH_COLUMNS, "channel_orders")
    )
    capsys.readouterr()
    assert features_job.main([root, "--as-of=2024-05-31", "--incremental"]) == 0
    assert "full rewrite: silver/customer_month has other columns than this version's rollup" in capsys.readouterr().err
    assert "rebuilt_months" not in last_features_run(spark, lake)["details"]
    monkeypatch.undo()
    # the rollup's months are calendar months in the zone it was built in (UTC here)
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        assert features_job.main([root, "--as-of=2024-05-31", "--incremental"]) == 0
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert "full rewrite: spark.timezone changed (UTC -> America/New_York)" in capsys.readouterr().err
    assert json.loads(last_features_run(spark, lake)["details"])["rollup"]["timezone"] == "America/New_York"


@pytest.mark.slow  # several job runs over a lake: `make test-slow`
def test_incremental_rollup_in_another_zone_than_cleanse_reads_the_neighbouring_partitions(
    spark: SparkSession, lake: Path
) -> None:
    # silver cleansed in UTC (receipt_month = the UTC month, "YYYY-MM-DD HH:MM" read as UTC);
    # features run in Tokyo (UTC+9) (the jobs reuse the suite's session, so its zone is set here)
    root = f"--set=lake.root={lake}"
    append_silver(spark, lake, [*FIRST_BATCH, ("t1", "T", "2024-03-31 16:00", "7.00")])  # Tokyo 2024-04-01 01:00
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Asia/Tokyo")
    try:
        assert features_job.main([root, "--as-of=2024-05-31"]) == 0
        append_silver(spark, lake, [("t0", "T", "2024-02-29 20:00", "20.00")])  # Tokyo 2024-03-01 05:00, filed 2024-02
        assert features_job.main([root, "--as-of=2024-05-31", "--incremental"]) == 0
        # t0 is a Tokyo March purchase; T's next purchase month (t1's, Tokyo April) gets its first gap
        details = json.loads(last_features_run(spark, lake)["details"])
        assert details["rebuilt_months"] == ["2024-03", "2024-04"]
        customer_month = spark.read.format("delta").load(f"{lake}/silver/customer_month")
        t_months = customer_month.where("customer_id = 'T'").orderBy("month").collect()
        assert_rollup_is_a_full_rebuild(spark, lake)
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    # Tokyo 2024-03-01 -> 2024-04-01: a 31-day gap in April
    assert [(r["month"], r["orders"], r["gap_sum_days"]) for r in t_months] == [("2024-03", 1, 0), ("2024-04", 1, 31)]


def read_table(spark: SparkSession, lake: Path, table: str) -> DataFrame:
    return spark.read.format("delta").load(f"{lake}/{table}")


@pytest.mark.slow  # several job runs over a lake: `make test-slow`
def test_incremental_runs_equal_a_full_rebuild_of_the_same_receipts(
    spark: SparkSession, lake: Path, tmp_path: Path, capsys
) -> None:
    """Three runs on lake A: full as of April 30 (state through April), then two incremental
    runs after appends: late receipts in months the state covers plus a cut June, then July.
    Lake B gets all receipts at once and full runs as of the same dates: every table equal."""
    june = [
        ("n1", "N", "2024-05-03", "12.00"),  # a new customer in May: the state must gain May
        ("n2", "N", "2024-06-10", "4.00"),  # June, cut by D = June 15
        ("c3", "C", "2024-06-14 23:30", "-2.00"),  # a return only
    ]
    july = [("a5", "A", "2024-07-01", "10.00"), ("n3", "N", "2024-07-31 23:59", "1.00")]
    root = f"--set=lake.root={lake}"
    append_silver(spark, lake, FIRST_BATCH)
    assert features_job.main([root, "--as-of=2024-04-30"]) == 0
    append_silver(spark, lake, LATE_BATCH + june)
    capsys.readouterr()
    assert features_job.main([root, "--as-of=2024-06-15", "--incremental"]) == 0
    log = capsys.readouterr().err
    assert "5 receipts appended to silver/receipts since v0 (its change data feed)" in log
    # a4 (February) and its next month (March) lie in the state's months: A is recomputed
    assert "late receipts in 2024-02, 2024-03: their customers recomputed" in log
    assert "months 2024-05..2024-05 added" in log
    append_silver(spark, lake, july)
    assert features_job.main([root, "--as-of=2024-07-31", "--incremental"]) == 0
    log = capsys.readouterr().err
    assert "months 2024-06..2024-07 added" in log
    details = json.loads(last_features_run(spark, lake)["details"])
    assert details["rebuilt_months"] == ["2024-07"]
    assert details["rollup"]["lifetime"]["through_month"] == "2024-07"

    full_lake = tmp_path / "full"
    full_lake.mkdir()
    append_silver(spark, full_lake, FIRST_BATCH + LATE_BATCH + june + july)
    for day in ("2024-06-15", "2024-07-31"):
        assert features_job.main([f"--set=lake.root={full_lake}", f"--as-of={day}"]) == 0
    for table in ("silver/customer_month", "silver/customer_lifetime", "gold/customer_profile"):
        ours = read_table(spark, lake, table)
        if table == "gold/customer_profile":
            ours = ours.where("as_of_date <> DATE'2024-04-30'")
        assert_same_rows(ours, read_table(spark, full_lake, table).select(*ours.columns), table)
    a = read_table(spark, lake, "silver/customer_lifetime").where("customer_id = 'A'").first()
    # A: 01-10, 02-20, 03-05, 05-20, 07-01: gaps 41, 14, 76, 42
    assert (a["orders"], a["gap_count"], a["gap_sum_days"], a["active_months"]) == (5, 4, 173, 5)
