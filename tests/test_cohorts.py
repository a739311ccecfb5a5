"""Cohort retention, worked out by hand: month/year edges, a leap day, returns, after-D data.

Month and year cohorts are checked twice: from the receipts and from the customer_month
rollup (plus the receipts of the month D cuts), which must give the same rows."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import cleanse as cleanse_job
from jobs import cohorts as cohorts_job
from jobs import features as features_job
from jobs import generate as generate_job
from transforms.cohorts import (
    to_cohort_activity,
    to_cohort_retention,
    to_customer_periods,
    to_customer_periods_from_months,
)
from transforms.features import to_customer_month

SCHEMA = "customer_id string, receipt_id string, receipt_ts timestamp, amount decimal(18,2), channel string"
T = dt.datetime
D = dt.date(2024, 3, 15)  # a Friday in the middle of March
ROWS = [
    ("A", "a1", T(2024, 1, 5, 10), Decimal("10.00"), "store"),
    ("A", "a2", T(2024, 1, 20, 12), Decimal("20.00"), "online"),
    ("A", "a3", T(2024, 2, 10, 9), Decimal("-5.00"), "store"),  # a return: Feb not active, revenue -5
    ("A", "a4", T(2024, 3, 2, 15), Decimal("30.00"), "app"),
    ("B", "b1", T(2023, 12, 31, 23, 59, 59), Decimal("7.00"), "online"),  # year edge
    ("B", "b2", T(2024, 1, 1, 0, 0, 0), Decimal("3.00"), "store"),
    ("C", "c1", T(2024, 2, 29, 12), Decimal("11.00"), "app"),  # leap day
    ("C", "c2", T(2024, 3, 20, 12), Decimal("50.00"), "app"),  # after D: ignored
    ("D", "d1", T(2024, 3, 16, 8), Decimal("9.00"), "store"),  # only purchase after D: absent
    ("E", "e1", T(2024, 1, 10, 8), Decimal("-3.00"), "store"),  # a return only: no cohort
    ("F", "f1", T(2024, 1, 31, 9), Decimal("10.00"), "app"),  # two purchases on one day
    ("F", "f2", T(2024, 1, 31, 18), Decimal("20.00"), "store"),
    ("G", "g1", T(2024, 3, 10, 14), Decimal("12.00"), "online"),  # first purchase in the month D cuts
    ("G", "g2", T(2024, 3, 14, 9), Decimal("-2.00"), "online"),  # a return before D
    ("G", "g3", T(2024, 3, 15, 23, 30), Decimal("5.00"), "store"),  # late on D itself: counts
    ("G", "g4", T(2024, 3, 16, 0, 10), Decimal("7.00"), "store"),  # after D, same month: the rollup has it
]
SOURCES = ("receipts", "rollup")


def profile_source_defaults() -> dict[str, Column]:
    """The 360° source columns the rollup needs besides channel, constant here."""
    return {
        "store_id": F.lit("S1"),
        "region": F.lit("North"),
        "category": F.lit("fresh"),
        "item_count": F.lit(1),
        "discount_amount": F.lit(0).cast("decimal(18,2)"),
        "coupon_used": F.lit(False),
    }


def customer_periods(receipts: DataFrame, as_of: dt.date, period: str, source: str) -> DataFrame:
    if source == "receipts":
        return to_customer_periods(receipts, as_of, period)
    # the rollup as features builds it (every receipt, any date), and silver's month partition column
    month = F.date_format("receipt_ts", "yyyy-MM")
    silver = receipts.withColumns({**profile_source_defaults(), "receipt_month": month})
    return to_customer_periods_from_months(to_customer_month(silver, last_k=5), silver, as_of, period)


def retention(
    spark: SparkSession, period: str, as_of: dt.date = D, by: tuple[str, ...] = (), source: str = "receipts"
) -> DataFrame:
    receipts = spark.createDataFrame(ROWS, SCHEMA)
    activity = to_cohort_activity(customer_periods(receipts, as_of, period, source), period)
    return to_cohort_retention(activity, as_of, period, by=by)


def table(frame: DataFrame, *extra: str) -> list[tuple]:
    columns = [
        "cohort",
        *extra,
        "period_offset",
        "cohort_size",
        "active_customers",
        "orders",
        "revenue_amount",
        "avg_receipt_amount",
        "is_partial_period",
    ]
    return sorted(tuple(r) for r in frame.select(*columns).collect())


@pytest.mark.parametrize("source", SOURCES)
def test_monthly_matrix_by_hand(spark: SparkSession, source: str) -> None:
    n = None
    assert table(retention(spark, "month", source=source)) == [
        # cohort, offset, size, active, orders, revenue, avg receipt, partial
        ("2023-12", 0, 1, 1, 1, Decimal("7.00"), Decimal("7.00"), False),
        ("2023-12", 1, 1, 1, 1, Decimal("3.00"), Decimal("3.00"), False),
        ("2023-12", 2, 1, 0, 0, Decimal("0.00"), n, False),  # no activity: present as 0
        ("2023-12", 3, 1, 0, 0, Decimal("0.00"), n, True),  # March is cut by D
        ("2024-01", 0, 2, 2, 4, Decimal("60.00"), Decimal("15.00"), False),  # A 10+20, F 10+20
        ("2024-01", 1, 2, 0, 0, Decimal("-5.00"), n, False),  # A's return only
        ("2024-01", 2, 2, 1, 1, Decimal("30.00"), Decimal("30.00"), True),
        ("2024-02", 0, 1, 1, 1, Decimal("11.00"), Decimal("11.00"), False),
        ("2024-02", 1, 1, 0, 0, Decimal("0.00"), n, True),  # C's March purchase is after D
        ("2024-03", 0, 1, 1, 2, Decimal("15.00"), Decimal("8.50"), True),  # G: 12 - 2 + 5; (12 + 5) / 2
    ]


def test_retention_rate_and_period_dates(spark: SparkSession) -> None:
    rows = {(r["cohort"], r["period_offset"]): r for r in retention(spark, "month").collect()}
    assert rows[("2024-01", 2)]["retention_rate"] == 0.5
    assert rows[("2024-01", 2)]["period_start_date"] == dt.date(2024, 3, 1)
    assert rows[("2023-12", 1)]["period_start_date"] == dt.date(2024, 1, 1)
    assert rows[("2023-12", 0)]["cohort_start_date"] == dt.date(2023, 12, 1)
    assert {r["as_of_date"] for r in rows.values()} == {D}


@pytest.mark.parametrize("source", SOURCES)
def test_split_by_first_channel(spark: SparkSession, source: str) -> None:
    n = None
    by_channel = retention(spark, "month", by=("first_channel",), source=source).where("cohort >= '2024-01'")
    assert table(by_channel, "first_channel") == [
        ("2024-01", "app", 0, 1, 1, 2, Decimal("30.00"), Decimal("15.00"), False),  # F: app at 09:00 first
        ("2024-01", "app", 1, 1, 0, 0, Decimal("0.00"), n, False),
        ("2024-01", "app", 2, 1, 0, 0, Decimal("0.00"), n, True),
        ("2024-01", "store", 0, 1, 1, 2, Decimal("30.00"), Decimal("15.00"), False),  # A: store first
        ("2024-01", "store", 1, 1, 0, 0, Decimal("-5.00"), n, False),
        ("2024-01", "store", 2, 1, 1, 1, Decimal("30.00"), Decimal("30.00"), True),
        ("2024-02", "app", 0, 1, 1, 1, Decimal("11.00"), Decimal("11.00"), False),
        ("2024-02", "app", 1, 1, 0, 0, Decimal("0.00"), n, True),
        ("2024-03", "online", 0, 1, 1, 2, Decimal("15.00"), Decimal("8.50"), True),  # G: online at g1 first
    ]


def test_weekly_cohorts_start_on_monday(spark: SparkSession) -> None:
    c = retention(spark, "week").where("cohort_start_date = DATE'2024-02-26'")  # C: Thursday 29 Feb
    assert table(c) == [
        ("2024-02-26", 0, 1, 1, 1, Decimal("11.00"), Decimal("11.00"), False),
        ("2024-02-26", 1, 1, 0, 0, Decimal("0.00"), None, False),
        ("2024-02-26", 2, 1, 0, 0, Decimal("0.00"), None, True),  # week of 11 March holds D
    ]


@pytest.mark.parametrize("source", SOURCES)
def test_yearly_cohorts(spark: SparkSession, source: str) -> None:
    assert [r[:6] for r in table(retention(spark, "year", source=source))] == [
        ("2023", 0, 1, 1, 1, Decimal("7.00")),
        ("2023", 1, 1, 1, 1, Decimal("3.00")),
        ("2024", 0, 4, 4, 8, Decimal("111.00")),  # A 10+20-5+30 = 55, C 11, F 10+20 = 30, G 12-2+5 = 15
    ]


@pytest.mark.parametrize("source", SOURCES)
def test_as_of_on_new_years_eve_holds_the_last_second_of_the_year(spark: SparkSession, source: str) -> None:
    rows = table(retention(spark, "year", as_of=dt.date(2023, 12, 31), source=source))
    assert rows == [("2023", 0, 1, 1, 1, Decimal("7.00"), Decimal("7.00"), False)]  # B at 23:59:59 only


@pytest.mark.parametrize("source", SOURCES)
def test_as_of_on_the_last_day_of_a_leap_february_is_not_partial(spark: SparkSession, source: str) -> None:
    rows = retention(spark, "month", as_of=dt.date(2024, 2, 29), source=source).where("cohort = '2024-02'").collect()
    assert [(r["period_offset"], r["active_customers"], r["is_partial_period"]) for r in rows] == [(0, 1, False)]


def test_unknown_period_is_refused(spark: SparkSession) -> None:
    with pytest.raises(ValueError, match="period must be one of"):
        to_customer_periods(spark.createDataFrame(ROWS, SCHEMA), D, "quarter")
    with pytest.raises(ValueError, match="period must be one of month, year to come from silver/customer_month"):
        customer_periods(spark.createDataFrame(ROWS, SCHEMA), D, "week", "rollup")


@pytest.fixture(scope="module")
def cohort_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("cohorts") / "lake"
    assert generate_job.main([f"--set=lake.root={lake}", "--customers=400", "--receipts=4000", "--seed=5"]) == 0
    assert cleanse_job.main([f"--set=lake.root={lake}", "--no-profile"]) == 0
    return lake


def gold_rows(spark: SparkSession, lake: Path, table: str, as_of: dt.date) -> list[tuple]:
    frame = spark.read.format("delta").load(f"{lake}/{table}").where(f"as_of_date = DATE'{as_of}'")
    return sorted(tuple(r) for r in frame.collect())


def duckdb_matrix(spark: SparkSession, lake: Path, as_of: dt.date) -> list[tuple]:
    """Monthly matrix straight from the silver Parquet files, by DuckDB: cohort, offset, size,
    active customers, orders, revenue."""
    import duckdb

    silver = spark.read.format("delta").load(f"{lake}/silver/receipts")
    files = [f.removeprefix("file:") for f in silver.inputFiles()]
    expected = duckdb.execute(
        """
        WITH r AS (SELECT customer_id, CAST(receipt_ts AS DATE) AS day, amount
                   FROM read_parquet($files) WHERE CAST(receipt_ts AS DATE) <= $as_of),
        c AS (SELECT customer_id, min(date_trunc('month', day)) AS cohort FROM r WHERE amount > 0 GROUP BY 1),
        sizes AS (SELECT cohort, count(*) AS size FROM c GROUP BY 1),
        act AS (SELECT c.cohort, date_diff('month', c.cohort, date_trunc('month', r.day)) AS off,
                       count(DISTINCT r.customer_id) FILTER (WHERE r.amount > 0) AS active,
                       count(*) FILTER (WHERE r.amount > 0) AS orders, sum(r.amount) AS revenue
                FROM r JOIN c USING (customer_id) GROUP BY 1, 2),
        grid AS (SELECT cohort, size, unnest(range(0, date_diff('month', cohort, date_trunc('month', $as_of)) + 1))
                 AS off FROM sizes)
        SELECT strftime(grid.cohort, '%Y-%m'), grid.off, grid.size, coalesce(active, 0), coalesce(orders, 0),
               coalesce(revenue, 0)
        FROM grid LEFT JOIN act ON grid.cohort = act.cohort AND grid.off = act.off
        """,
        {"files": files, "as_of": as_of},
    ).fetchall()
    return sorted((c, o, s, a, n, Decimal(str(v)).quantize(Decimal("0.01"))) for c, o, s, a, n, v in expected)


def matrix(spark: SparkSession, lake: Path, as_of: dt.date) -> list[tuple]:
    got = (
        spark.read.format("delta")
        .load(f"{lake}/gold/cohort_retention")
        .where(f"as_of_date = DATE'{as_of}'")
        .select("cohort", "period_offset", "cohort_size", "active_customers", "orders", "revenue_amount")
    )
    return sorted(tuple(r) for r in got.collect())


@pytest.mark.slow  # a generated lake through cleanse and features, then DuckDB: `make test-slow`
def test_matrix_equals_duckdb_on_a_generated_lake_from_the_receipts_and_from_the_rollup(
    spark: SparkSession, cohort_lake: Path, capsys
) -> None:
    as_of = dt.date(2024, 6, 17)  # cuts June: June comes from its receipts up to the 17th
    argv = [f"--set=lake.root={cohort_lake}", f"--as-of={as_of}"]
    expected = duckdb_matrix(spark, cohort_lake, as_of)
    assert len(expected) > 50

    capsys.readouterr()
    assert cohorts_job.main(argv) == 0
    assert "month cohorts from silver/receipts: no silver/customer_month yet" in capsys.readouterr().err
    assert matrix(spark, cohort_lake, as_of) == expected
    tables = ("gold/cohort_retention", "gold/cohort_retention_by_channel")
    from_receipts = {table: gold_rows(spark, cohort_lake, table, as_of) for table in tables}

    assert features_job.main(argv) == 0
    capsys.readouterr()
    assert cohorts_job.main(argv) == 0
    assert re.search(
        r"month cohorts from silver/customer_month v\d+ \(built from silver/receipts v\d+\)", capsys.readouterr().err
    )
    assert matrix(spark, cohort_lake, as_of) == expected
    # every column of both tables, the same as from the receipts
    for table, rows in from_receipts.items():
        assert gold_rows(spark, cohort_lake, table, as_of) == rows, table
    runs = (
        spark.read.format("delta").load(f"{cohort_lake}/ops/runs").where("status <> 'started'").where("job = 'cohorts'")
    )
    last = runs.orderBy(F.col("started_at").desc()).first()
    assert "silver/customer_month" in last["tables_read"] and '"source": "silver/customer_month"' in last["details"]


@pytest.mark.slow  # several job runs over a lake: `make test-slow`
def test_a_stale_rollup_or_another_time_zone_falls_back_to_the_receipts(
    spark: SparkSession, cohort_lake: Path, tmp_path: Path, capsys
) -> None:
    from delta.tables import DeltaTable

    lake = tmp_path / "lake"
    shutil.copytree(cohort_lake, lake)
    as_of = dt.date(2024, 6, 30)
    argv = [f"--set=lake.root={lake}", f"--as-of={as_of}"]
    assert features_job.main(argv) == 0
    capsys.readouterr()

    # the rollup's months are UTC months; New York's differ at the month edges
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        assert cohorts_job.main(argv) == 0
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert "from silver/receipts: spark.timezone changed (UTC -> America/New_York)" in (capsys.readouterr().err)

    # silver changes after the rollup was built: one customer's receipts are deleted
    silver = DeltaTable.forPath(spark, f"{lake}/silver/receipts")
    gone = silver.toDF().where("amount > 0").orderBy("receipt_ts").first()["customer_id"]
    before = silver.history(1).first()["version"]
    silver.delete(F.col("customer_id") == gone)
    assert cohorts_job.main(argv) == 0
    assert (
        f"month cohorts from silver/receipts: silver/customer_month was built from silver/receipts v{before}, "
        f"this run reads v{before + 1}" in capsys.readouterr().err
    )
    assert matrix(spark, lake, as_of) == duckdb_matrix(spark, lake, as_of)  # without the deleted customer


@pytest.mark.slow  # several job runs over a lake: `make test-slow`
def test_rerun_replaces_its_date_and_keeps_other_dates(spark: SparkSession, cohort_lake: Path) -> None:
    argv = [f"--set=lake.root={cohort_lake}"]
    assert cohorts_job.main([*argv, "--as-of=2024-06-30"]) == 0
    assert cohorts_job.main([*argv, "--as-of=2023-12-31"]) == 0
    path = f"{cohort_lake}/gold/cohort_retention"
    before = spark.read.format("delta").load(path).where("as_of_date = DATE'2024-06-30'").collect()
    assert cohorts_job.main([*argv, "--as-of=2024-06-30"]) == 0
    table_now = spark.read.format("delta").load(path)
    assert sorted(table_now.where("as_of_date = DATE'2024-06-30'").collect()) == sorted(before)
    assert table_now.where("as_of_date = DATE'2023-12-31'").count() > 0
    assert table_now.where("as_of_date = DATE'2023-12-31' AND period_start_date > as_of_date").count() == 0
    by_channel = spark.read.format("delta").load(f"{cohort_lake}/gold/cohort_retention_by_channel")
    totals = by_channel.where("as_of_date = DATE'2024-06-30' AND period_offset = 0").groupBy().sum("cohort_size")
    overall = table_now.where("as_of_date = DATE'2024-06-30' AND period_offset = 0").groupBy().sum("cohort_size")
    assert totals.first()[0] == overall.first()[0]
    # ops/runs: rows in = the silver receipts read, rows out = the as-of partition written
    last = (
        spark.read.format("delta")
        .load(f"{cohort_lake}/ops/runs")
        .where("status <> 'started'")
        .orderBy(F.col("started_at").desc())
        .first()
    )
    silver = spark.read.format("delta").load(f"{cohort_lake}/silver/receipts").count()
    assert (last["job"], last["rows_in"], last["rows_out"]) == ("cohorts", silver, len(before))


@pytest.mark.parametrize("source", SOURCES)
def test_calendar_dates_follow_the_session_time_zone(spark: SparkSession, source: str) -> None:
    # 2024-01-01 03:00 UTC is 2023-12-31 22:00 in New York: a December cohort there
    receipts = spark.createDataFrame([("Z", "z1", T(2024, 1, 1, 3), Decimal("5.00"), "online")], SCHEMA)
    zone = spark.conf.get("spark.sql.session.timeZone")
    try:
        cohorts_by_zone = {}
        for name in ("UTC", "America/New_York"):
            spark.conf.set("spark.sql.session.timeZone", name)
            activity = to_cohort_activity(customer_periods(receipts, D, "month", source), "month")
            frame = to_cohort_retention(activity, D, "month")
            cohorts_by_zone[name] = frame.where("period_offset = 0").first()["cohort"]
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert cohorts_by_zone == {"UTC": "2024-01", "America/New_York": "2023-12"}


def test_the_cut_month_reads_receipts_that_silver_filed_under_a_neighbouring_month(spark: SparkSession) -> None:
    # silver cleansed in UTC: receipt_month is the UTC month, kept as data
    receipts = spark.createDataFrame(
        [
            ("T", "t1", T(2024, 1, 10, 12), Decimal("10.00"), "store"),  # Tokyo 2024-01-10 21:00
            ("T", "t2", T(2024, 2, 29, 20), Decimal("20.00"), "online"),  # Tokyo 2024-03-01 05:00
        ],
        SCHEMA,
    )
    silver = spark.createDataFrame(
        [(*row, f"{row['receipt_ts']:%Y-%m}") for row in receipts.collect()], f"{SCHEMA}, receipt_month string"
    )
    assert [r["receipt_month"] for r in silver.collect()] == ["2024-01", "2024-02"]
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Asia/Tokyo")
    try:
        rollup = to_customer_month(silver.withColumns(profile_source_defaults()), last_k=5)
        periods = to_customer_periods_from_months(rollup, silver, D, "month").collect()  # D = 2024-03-15 cuts March
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert sorted((str(r["period_start_date"]), r["orders"], r["purchase_amount"]) for r in periods) == [
        ("2024-01-01", 1, Decimal("10.00")),
        ("2024-03-01", 1, Decimal("20.00")),  # from the receipts of the cut month, filed under 2024-02
    ]


PRE_COHORT_ROWS = [
    ("H", "h1", T(2023, 11, 20, 10), Decimal("-1.50"), "store"),  # a return before the first purchase, last year
    ("H", "h2", T(2024, 1, 8, 10), Decimal("-4.00"), "store"),  # another one, the month before the cohort
    ("H", "h3", T(2024, 2, 12, 10), Decimal("25.00"), "online"),  # first purchase: cohort 2024-02
    ("K", "k1", T(2024, 2, 3, 10), Decimal("10.00"), "store"),  # same cohort, nothing before
]


def pre_cohort_retention(spark: SparkSession, period: str, source: str) -> DataFrame:
    receipts = spark.createDataFrame(PRE_COHORT_ROWS, SCHEMA)
    return to_cohort_retention(to_cohort_activity(customer_periods(receipts, D, period, source), period), D, period)


@pytest.mark.parametrize("source", SOURCES)
def test_returns_before_the_first_purchase_are_counted_at_offset_minus_one(spark: SparkSession, source: str) -> None:
    n = None
    assert table(pre_cohort_retention(spark, "month", source)) == [
        # cohort, offset, size, active, orders, revenue, avg receipt, partial
        ("2024-02", -1, 2, 0, 0, Decimal("-5.50"), n, False),  # H's two returns: -1.50 - 4.00
        ("2024-02", 0, 2, 2, 2, Decimal("35.00"), Decimal("17.50"), False),  # 25 + 10
        ("2024-02", 1, 2, 0, 0, Decimal("0.00"), n, True),  # March, cut by D
    ]
    before = pre_cohort_retention(spark, "month", source).where("period_offset = -1").first()
    assert (before["retention_rate"], before["period_start_date"]) == (None, None)


@pytest.mark.parametrize("source", SOURCES)
def test_a_return_in_the_cohort_period_stays_at_offset_zero(spark: SparkSession, source: str) -> None:
    n = None
    assert table(pre_cohort_retention(spark, "year", source)) == [
        ("2024", -1, 2, 0, 0, Decimal("-1.50"), n, False),  # only the 2023 return is before the 2024 cohort
        ("2024", 0, 2, 2, 2, Decimal("31.00"), Decimal("17.50"), True),  # 25 + 10 - 4; (25 + 10) / 2; D cuts 2024
    ]
