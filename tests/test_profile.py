"""The 360° profile columns, worked out by hand (transforms/profile.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from transforms.calendar import last_whole_month, trend_months
from transforms.features import to_customer_lifetime, to_customer_month, to_customer_profile, to_lifetime_rows
from transforms.profile import with_demographics

SOURCE = (
    "receipt_id string, customer_id string, receipt_ts string, amount decimal(18,2), channel string, "
    "store_id string, region string, category string, item_count int, discount_amount decimal(18,2), "
    "coupon_used boolean"
)

# D = 2024-06-15 (a Saturday), W = 365: window 2023-06-17..2024-06-15; it cuts June 2023 and June 2024.
# Trend months: last 3 = 2024-05, -04, -03; previous 3 = 2024-02, -01, 2023-12.
A_AND_B = [
    # A: lifetime purchases a1 a2 a3 a5 a6; a1 lies before the window, a7 after D.
    ("a1", "A", "2023-06-10T10:00:00Z", "100.00", "store", "S1", "North", "food", 2, "0.00", False),
    ("a2", "A", "2023-06-20T19:00:00Z", "50.00", "online", "W1", "North", "toys", 1, "5.00", True),  # Tuesday
    ("a3", "A", "2024-03-02T03:00:00Z", "30.00", "app", "W1", "North", "food", 3, "0.00", False),  # Saturday
    ("a4", "A", "2024-03-02T14:00:00Z", "-10.00", "store", "S1", "North", "food", 1, "0.00", False),  # return
    ("a5", "A", "2024-01-13T12:30:00Z", "20.00", "store", "S2", "South", "food", 4, "2.00", True),  # Saturday
    ("a6", "A", "2024-06-15T23:59:00Z", "40.00", "store", "S1", "North", "toys", 2, "0.00", False),  # D, Saturday
    ("a7", "A", "2024-06-16T09:00:00Z", "1000.00", "online", "W9", "East", "tech", 9, "0.00", True),  # after D
    # B bought only before the window.
    ("b1", "B", "2022-12-01T10:00:00Z", "25.00", "store", "S1", "North", "food", 1, "0.00", False),
    # C: two purchases tied on every "top" key (Friday morning, Saturday evening).
    ("c1", "C", "2024-05-10T08:00:00Z", "10.00", "online", "W2", "West", "b", 1, "0.00", False),
    ("c2", "C", "2024-05-11T20:00:00Z", "10.00", "store", "S3", "East", "a", 1, "0.00", False),
]


def receipts_of(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    """Receipts with ISO instants (``Z``), so the session time zone decides day, hour and month."""
    typed = [(*row[:3], Decimal(row[3]), *row[4:9], Decimal(row[9]), row[10]) for row in rows]
    frame = spark.createDataFrame(typed, SOURCE).withColumn("receipt_ts", F.to_timestamp("receipt_ts"))
    return frame.withColumn("receipt_month", F.date_format("receipt_ts", "yyyy-MM"))


def profile_of(spark: SparkSession, rows: list[tuple], as_of: str, window_days: int = 365) -> dict[str, Row]:
    receipts = receipts_of(spark, rows)
    day = dt.date.fromisoformat(as_of)
    customer_month = to_customer_month(receipts, last_k=5)
    profile = to_customer_profile(customer_month, receipts, as_of=day, window_days=window_days, last_k=5)
    rows = {r["customer_id"]: r for r in profile.collect()}
    # the same from the lifetime state through D's last whole month (what an incremental run reads)
    through = last_whole_month(day)
    state = to_customer_lifetime(
        to_lifetime_rows(customer_month.where(F.col("month") <= through)), through_month=through, last_k=5
    )
    from_state = to_customer_profile(
        customer_month, receipts, as_of=day, window_days=window_days, last_k=5, lifetime=state, lifetime_through=through
    )
    assert {r["customer_id"]: r for r in from_state.collect()} == rows
    return rows


@pytest.fixture(scope="module")
def profile(spark: SparkSession) -> dict[str, Row]:
    return profile_of(spark, A_AND_B, "2024-06-15")


def test_trend_months_cross_the_year() -> None:
    assert trend_months("2024-02") == (["2024-02", "2024-01", "2023-12"], ["2023-11", "2023-10", "2023-09"])


def test_relationship_and_spend(profile: dict[str, Row]) -> None:
    a = profile["A"]
    assert a["frequency"] == 4  # a2 a3 a5 a6
    assert a["first_channel"] == "store"  # a1
    assert (a["months_active_lifetime"], a["months_active_window"]) == (4, 4)  # 2023-06, 2024-01, -03, -06
    assert a["gross_spend_lifetime"] == Decimal("240.00")  # 100 + 50 + 30 + 20 + 40
    assert a["gross_spend_window"] == Decimal("140.00")  # 50 + 30 + 20 + 40
    assert (a["max_receipt_amount_lifetime"], a["max_receipt_amount_window"]) == (Decimal("100.00"), Decimal("50.00"))
    assert a["spend_last_3_months"] == Decimal("20.00")  # March: 30 - 10
    assert a["spend_previous_3_months"] == Decimal("20.00")  # January: 20
    assert a["spend_trend_ratio"] == pytest.approx(1.0)
    assert a["mean_gap_days"] == pytest.approx(371 / 4)  # 2023-06-10 .. 2024-06-15 over 4 gaps (leap year)


def test_products_channels_promotions_basket(profile: dict[str, Row]) -> None:
    a = profile["A"]
    assert (a["categories_window"], a["top_category"]) == (2, "toys")  # toys 50 + 40 = 90, food 30 + 20 = 50
    assert a["top_category_share"] == pytest.approx(90 / 140)
    assert (a["store_order_share"], a["online_order_share"], a["app_order_share"]) == pytest.approx((0.5, 0.25, 0.25))
    assert (a["channels_used_window"], a["is_omnichannel"], a["main_channel"]) == (3, True, "store")
    assert (a["coupon_orders_window"], a["coupon_order_share"]) == (2, pytest.approx(0.5))  # a2, a5
    assert a["discount_amount_window"] == Decimal("7.00")
    assert a["discount_share"] == pytest.approx(7 / 147)
    assert (a["items_window"], a["avg_items_per_order"], a["avg_item_amount"]) == (10, 2.5, pytest.approx(14.0))


def test_time_returns_geography(profile: dict[str, Row]) -> None:
    a = profile["A"]
    assert a["weekend_order_share"] == pytest.approx(0.75)  # a3, a5, a6 on Saturdays; a2 on a Tuesday
    shares = (a["night_order_share"], a["morning_order_share"], a["afternoon_order_share"], a["evening_order_share"])
    assert shares == pytest.approx((0.25, 0.0, 0.25, 0.5))  # a3 03:00; a5 12:30; a2 19:00, a6 23:59
    assert a["preferred_part_of_day"] == "evening"
    assert (a["peak_month_of_year"], a["peak_month_share"]) == (6, pytest.approx(0.5))  # June 2023 and June 2024
    assert (a["returns_window"], a["return_amount_window"]) == (1, Decimal("10.00"))
    assert (a["return_rate_count"], a["return_rate_amount"]) == pytest.approx((0.25, 10 / 140))
    assert (a["main_region"], a["main_region_share"], a["regions_used_window"]) == ("North", 0.75, 2)
    assert (a["main_store"], a["stores_used_window"]) == ("W1", 3)  # W1 twice (a2, a3), S1 once, S2 once


def test_customer_without_window_purchases_has_counts_zero_and_shares_null(profile: dict[str, Row]) -> None:
    b = profile["B"]
    assert (b["frequency"], b["first_channel"], b["months_active_lifetime"], b["months_active_window"]) == (
        0,
        "store",
        1,
        0,
    )
    assert (b["gross_spend_lifetime"], b["gross_spend_window"]) == (Decimal("25.00"), Decimal("0.00"))
    assert (b["items_window"], b["coupon_orders_window"], b["returns_window"], b["categories_window"]) == (0, 0, 0, 0)
    for column in (
        "store_order_share",
        "coupon_order_share",
        "avg_items_per_order",
        "weekend_order_share",
        "is_omnichannel",
        "main_channel",
        "top_category",
        "preferred_part_of_day",
        "peak_month_of_year",
        "return_rate_count",
        "main_region",
        "spend_trend_ratio",
        "max_receipt_amount_window",
    ):
        assert b[column] is None, column


def test_ties_go_to_the_first_key_and_the_earlier_part_of_day(profile: dict[str, Row]) -> None:
    c = profile["C"]
    assert (c["top_category"], c["top_category_share"]) == ("a", 0.5)  # a and b both 10.00
    assert (c["main_channel"], c["main_region"], c["main_store"]) == ("online", "East", "S3")
    assert c["preferred_part_of_day"] == "morning"  # one morning, one evening
    assert (c["peak_month_of_year"], c["peak_month_share"]) == (5, 1.0)
    assert (c["spend_last_3_months"], c["spend_previous_3_months"], c["spend_trend_ratio"]) == (
        Decimal("20.00"),
        Decimal("0.00"),
        None,
    )


@pytest.fixture
def new_york(spark: SparkSession) -> Iterator[None]:
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    yield
    spark.conf.set("spark.sql.session.timeZone", before)


EDGES = [
    # 2024-03-02 03:00 UTC is Friday 2024-03-01 22:00 in New York (UTC-5)
    ("x1", "X", "2024-03-02T03:00:00Z", "10.00", "store", "S1", "North", "food", 1, "0.00", False),
    # 2024-04-01 02:00 UTC is Sunday 2024-03-31 22:00 in New York (UTC-4 after the DST change)
    ("x2", "X", "2024-04-01T02:00:00Z", "10.00", "app", "W1", "North", "food", 1, "0.00", False),
]


def test_keys_missing_on_a_purchase_count_in_no_map(spark: SparkSession) -> None:
    """A purchase without a region, store or category counts in the orders but in no map;
    a key bought twice in a month counts twice (the maps are folded per month, then merged)."""
    rows = [
        ("d1", "D", "2024-05-10T10:00:00Z", "10.00", "store", None, None, None, 1, "0.00", False),
        ("d2", "D", "2024-05-11T10:00:00Z", "20.00", "store", "S1", "North", "food", 1, "0.00", False),
        ("d3", "D", "2024-05-12T10:00:00Z", "30.00", "store", "S1", "North", "food", 1, "0.00", False),
        ("d4", "D", "2024-06-01T10:00:00Z", "40.00", "online", "W1", None, "toys", 1, "0.00", False),
    ]
    d = profile_of(spark, rows, "2024-06-15")["D"]
    assert d["frequency"] == 4
    assert (d["main_region"], d["main_region_share"], d["regions_used_window"]) == ("North", 0.5, 1)  # 2 of 4
    assert (d["main_store"], d["stores_used_window"]) == ("S1", 2)  # S1 twice, W1 once
    assert (d["top_category"], d["categories_window"]) == ("food", 2)  # food 20 + 30 = 50, toys 40
    assert d["top_category_share"] == pytest.approx(50 / 90)  # of the amounts with a category


def test_time_zone_moves_receipts_across_the_weekend_the_day_and_the_month(spark: SparkSession, new_york: None) -> None:
    x = profile_of(spark, EDGES, "2024-03-31")["X"]
    assert x["frequency"] == 2  # x2 is on 2024-03-31 in New York, so not after D
    assert x["weekend_order_share"] == pytest.approx(0.5)  # Friday evening and Sunday evening
    assert (x["evening_order_share"], x["preferred_part_of_day"]) == (1.0, "evening")
    assert (x["peak_month_of_year"], x["peak_month_share"], x["months_active_window"]) == (3, 1.0, 1)
    assert x["spend_last_3_months"] == Decimal("20.00")  # D is the last day of March: Jan..Mar


def test_the_same_receipts_in_utc(spark: SparkSession) -> None:
    x = profile_of(spark, EDGES, "2024-03-31")["X"]
    assert x["frequency"] == 1  # x2 falls on 2024-04-01, after D
    assert (x["weekend_order_share"], x["night_order_share"]) == (1.0, 1.0)  # Saturday 03:00


CUSTOMERS_DDL = (
    "customer_id string, age_band string, gender string, is_loyalty_member boolean, has_email_opt_in boolean, "
    "region string, ingested_at timestamp, row_key string"
)


def test_demographics_come_from_the_latest_customer_row_with_normalised_ids(spark: SparkSession) -> None:
    customers = spark.createDataFrame(
        [
            (" a", "25-34", "F", True, False, "North", dt.datetime(2024, 1, 1), "k1"),
            ("A", "35-44", "F", True, True, "South", dt.datetime(2024, 2, 1), "k2"),  # later: wins
            ("b ", None, "M", False, False, "East", dt.datetime(2024, 1, 1), "k3"),
            ("", "18-24", "X", False, False, "West", dt.datetime(2024, 1, 1), "k4"),  # no id: dropped
        ],
        CUSTOMERS_DDL,
    )
    profile = spark.createDataFrame([("A",), ("B",), ("C",)], "customer_id string")
    rows = {r["customer_id"]: r for r in with_demographics(profile, customers, customer_id_case="upper").collect()}
    assert tuple(rows["A"])[1:] == ("35-44", "F", True, True, "South")
    assert tuple(rows["B"])[1:] == (None, "M", False, False, "East")
    assert tuple(rows["C"])[1:] == (None, None, None, None, None)
    without = with_demographics(profile, None, customer_id_case="upper")
    assert without.columns == [
        "customer_id",
        "age_band",
        "gender",
        "is_loyalty_member",
        "has_email_opt_in",
        "home_region",
    ]


def test_demographics_tie_on_ingestion_goes_to_the_larger_row_key(spark: SparkSession) -> None:
    same_time = dt.datetime(2024, 3, 1)
    customers = spark.createDataFrame(
        [
            ("D", "25-34", "F", True, False, "North", same_time, "k9"),  # larger row_key: wins the tie
            ("d", "35-44", "M", False, True, "South", same_time, "k10"),  # "k10" < "k9" in text order
            ("E", "55-64", "F", False, False, "West", dt.datetime(2024, 1, 1), "k1"),
        ],
        CUSTOMERS_DDL,
    )
    profile = spark.createDataFrame([("D", 1), ("E", 2), ("F", 3)], "customer_id string, orders long")
    rows = {r["customer_id"]: r for r in with_demographics(profile, customers, customer_id_case="upper").collect()}
    assert (rows["D"]["age_band"], rows["D"]["gender"], rows["D"]["home_region"]) == ("25-34", "F", "North")
    assert (rows["E"]["age_band"], rows["E"]["orders"]) == ("55-64", 2)
    assert rows["F"]["age_band"] is None and rows["F"]["orders"] == 3
