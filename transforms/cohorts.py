"""Cohort retention: customers grouped by the period of their first purchase.

As-of date ``D``: receipts dated after ``D`` are ignored. A purchase is a receipt with
a positive amount; a customer is *active* in a period when it made a purchase in it
(a return alone does not make it active). The cohort is the period of the first
purchase; offset 0 is the cohort's own period. Every period from the cohort's to
``D``'s is present (a period without activity has 0 active customers, it is not
left out); periods after ``D`` are absent, never 0. The period that holds ``D`` is
flagged ``is_partial_period`` unless ``D`` is its last day. Activity of a cohort's
customers before their cohort period (returns dated before the first purchase) is not
dropped: it is summed in one row at ``period_offset`` -1 (:data:`BEFORE_COHORT`),
present only where there is such activity. Dates are calendar dates
in the session time zone. Periods: ``day``, ``week`` (Monday to Sunday), ``month``
(default, label ``YYYY-MM``) and ``year``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.calendar import as_of_cuts_month, last_whole_month, month_label, receipts_of_months
from transforms.features import month_values

PERIODS = ("day", "week", "month", "year")
BEFORE_COHORT = -1  # period_offset of the row that sums a cohort's activity before its own period
# periods made of whole calendar months: silver/customer_month can give them
MONTH_PERIODS = ("month", "year")


def period_start(day: Column, period: str) -> Column:
    """First day of the period holding ``day``."""
    return F.to_date(F.date_trunc(period, day.cast("timestamp")))


def period_offset(start: Column, later: Column, period: str) -> Column:
    """Whole periods from the period starting ``start`` to the one starting ``later``."""
    if period == "day":
        return F.datediff(later, start)
    if period == "week":
        return (F.datediff(later, start) / 7).cast("int")
    months = F.months_between(later, start).cast("int")
    return months if period == "month" else (months / 12).cast("int")


def period_label(start: Column, period: str) -> Column:
    """``YYYY-MM`` for months, ``YYYY`` for years, the first day for days and weeks."""
    pattern = {"month": "yyyy-MM", "year": "yyyy"}.get(period, "yyyy-MM-dd")
    return F.date_format(start, pattern)


def _period_end(start: Column, period: str) -> Column:
    if period == "day":
        return start
    if period == "week":
        return F.date_add(start, 6)
    return F.date_sub(F.add_months(start, 1 if period == "month" else 12), 1)


CUSTOMER_PERIOD_COLUMNS = (
    "customer_id",
    "cohort_start_date",
    "first_channel",
    "period_start_date",
    "orders",
    "purchase_amount",
    "net_amount",
)


def to_customer_periods(receipts: DataFrame, as_of: dt.date, period: str) -> DataFrame:
    """Grain customer x period with activity, up to ``as_of``; plus the customer's cohort
    period and first channel. Needs customer_id, receipt_id, receipt_ts, amount, channel."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    dated = receipts.select(
        "customer_id",
        "receipt_id",
        "receipt_ts",
        "amount",
        "channel",
        period_start(F.to_date("receipt_ts"), period).alias("period_start_date"),
    ).where(F.to_date("receipt_ts") <= F.lit(as_of))
    is_purchase = F.col("amount") > 0
    per_period = dated.groupBy("customer_id", "period_start_date").agg(
        F.count_if(is_purchase).alias("orders"),
        F.sum(F.when(is_purchase, F.col("amount"))).alias("purchase_amount"),
        F.sum("amount").alias("net_amount"),
    )
    first = (
        dated.where(is_purchase)
        .groupBy("customer_id")
        .agg(
            F.min("period_start_date").alias("cohort_start_date"),
            # first purchase by time; ties on time broken by receipt id
            F.min_by("channel", F.struct("receipt_ts", "receipt_id")).alias("first_channel"),
        )
    )
    return per_period.join(first, "customer_id", "inner").select(*CUSTOMER_PERIOD_COLUMNS)


def to_customer_periods_from_months(
    customer_month: DataFrame, receipts: DataFrame, as_of: dt.date, period: str
) -> DataFrame:
    """:func:`to_customer_periods` for month and year periods, from the rollup instead of
    every receipt: the whole months of ``silver/customer_month`` up to ``as_of``, plus
    ``as_of``'s own month rolled up from its receipts dated <= ``as_of`` when ``as_of``
    cuts it (the rollup's row for that month also holds the days after ``as_of``).

    The same rows and values as :func:`to_customer_periods` on the receipts the rollup
    was built from, in the same time zone: the rollup keeps each customer-month's
    orders, purchase and net amounts, first purchase time and its channel (ties on time
    broken by receipt id), and a customer's months never share a first purchase time.
    ``receipts`` need ``receipt_month`` (only ``as_of``'s month is read:
    :func:`transforms.features.receipts_of_months`).
    """
    if period not in MONTH_PERIODS:
        raise ValueError(f"period must be one of {', '.join(MONTH_PERIODS)} to come from silver/customer_month")
    values = ("orders", "purchase_amount", "net_amount", "first_purchase_ts", "first_purchase_channel")
    months = customer_month.where(F.col("month") <= last_whole_month(as_of)).select("customer_id", "month", *values)
    if as_of_cuts_month(as_of):
        label = month_label(as_of)
        is_purchase = F.col("amount") > 0
        cut = (
            receipts_of_months(receipts, [label])
            .where(F.to_date("receipt_ts") <= F.lit(as_of))
            .groupBy("customer_id")
            .agg(  # the rollup's own monthly values, over the month's receipts up to as_of
                *month_values(),
                F.min_by("channel", F.when(is_purchase, F.struct("receipt_ts", "receipt_id"))).alias(
                    "first_purchase_channel"
                ),
            )
            .select("customer_id", F.lit(label).alias("month"), *values)
        )
        months = months.unionByName(cut)
    has_orders = F.col("orders") > 0
    by_customer = Window.partitionBy("customer_id")  # the customer's rows, in any order
    rows = months.select(
        "customer_id",
        period_start(F.to_date(F.concat("month", F.lit("-01"))), period).alias("period_start_date"),
        "orders",
        F.when(has_orders, F.col("purchase_amount")).alias("purchase_amount"),  # null without purchases
        "net_amount",
        F.min(F.when(has_orders, F.col("month"))).over(by_customer).alias("cohort_month"),
        F.min_by("first_purchase_channel", F.when(has_orders, F.col("first_purchase_ts")))
        .over(by_customer)
        .alias("first_channel"),
    ).where(F.col("cohort_month").isNotNull())  # a customer with returns only has no cohort
    cohort_start = period_start(F.to_date(F.concat("cohort_month", F.lit("-01"))), period).alias("cohort_start_date")
    # a month is its own period (one rollup row per customer-month); a year sums its months, and
    # grouping also by the customer's window values keeps the window's partitioning (no shuffle)
    per_period = rows.groupBy("customer_id", "cohort_month", "first_channel", "period_start_date").agg(
        F.sum("orders").alias("orders"),
        F.sum("purchase_amount").alias("purchase_amount"),
        F.sum("net_amount").alias("net_amount"),
    )
    return per_period.select(*[cohort_start if c == "cohort_start_date" else c for c in CUSTOMER_PERIOD_COLUMNS])


def to_cohort_activity(customer_periods: DataFrame, period: str) -> DataFrame:
    """Grain cohort x first channel x period offset (only offsets with rows): active
    customers, orders, purchase and net amounts, from :func:`to_customer_periods` rows.
    Every period before the cohort's own is counted at offset :data:`BEFORE_COHORT`.

    Small (cohorts x channels x offsets), and additive over channels: both retention
    tables derive from it, so the customer periods are aggregated once.
    """
    offset = period_offset(F.col("cohort_start_date"), F.col("period_start_date"), period)
    return (
        customer_periods.withColumn("period_offset", F.greatest(offset, F.lit(BEFORE_COHORT)))
        .groupBy("cohort_start_date", "first_channel", "period_offset")
        .agg(
            F.count_if(F.col("orders") > 0).alias("active_customers"),
            F.sum("orders").alias("orders"),
            F.sum("purchase_amount").alias("purchase_amount"),
            F.sum("net_amount").alias("revenue_amount"),
        )
    )


def to_cohort_retention(activity: DataFrame, as_of: dt.date, period: str, *, by: tuple[str, ...] = ()) -> DataFrame:
    """Grain cohort (x ``by`` columns, e.g. first_channel) x period offset, from offset 0 to
    ``as_of``'s period: size, active customers, retention rate, orders, revenue; from
    :func:`to_cohort_activity` rows. A cohort with activity before its own period also has
    a row at offset :data:`BEFORE_COHORT` (no period dates, no retention rate)."""
    last_start = period_start(F.lit(as_of), period)
    keys = ["cohort_start_date", *by]
    active = activity.groupBy(*keys, "period_offset").agg(
        F.sum("active_customers").alias("active_customers"),
        F.sum("orders").alias("orders"),
        F.sum("purchase_amount").alias("purchase_amount"),
        F.sum("revenue_amount").alias("revenue_amount"),
    )
    # every cohort member bought in the cohort's own period: the size is offset 0's active customers
    sizes = active.where(F.col("period_offset") == 0).select(*keys, F.col("active_customers").alias("cohort_size"))
    offsets = sizes.select(
        "*",
        F.explode(F.sequence(F.lit(0), period_offset(F.col("cohort_start_date"), last_start, period))).alias(
            "period_offset"
        ),
    )
    before = active.where(F.col("period_offset") == BEFORE_COHORT).join(sizes, keys, how="inner")
    grid = offsets.join(active, [*keys, "period_offset"], how="left").unionByName(before)
    is_before = F.col("period_offset") == BEFORE_COHORT
    start = F.when(~is_before, _offset_start(F.col("cohort_start_date"), F.col("period_offset"), period))
    return grid.select(
        F.lit(as_of).alias("as_of_date"),
        F.lit(period).alias("period_unit"),
        period_label(F.col("cohort_start_date"), period).alias("cohort"),
        "cohort_start_date",
        *by,
        "period_offset",
        start.alias("period_start_date"),
        "cohort_size",
        F.coalesce("active_customers", F.lit(0)).cast("long").alias("active_customers"),
        F.when(~is_before, F.coalesce("active_customers", F.lit(0)) / F.col("cohort_size")).alias("retention_rate"),
        F.coalesce("orders", F.lit(0)).cast("long").alias("orders"),
        F.coalesce("revenue_amount", F.lit(0)).cast("decimal(18,2)").alias("revenue_amount"),
        F.when(F.col("orders") > 0, F.col("purchase_amount") / F.col("orders"))
        .cast("decimal(18,2)")
        .alias("avg_receipt_amount"),
        F.coalesce(_period_end(start, period) > F.lit(as_of), F.lit(False)).alias("is_partial_period"),
    )


def _offset_start(cohort_start: Column, offset: Column, period: str) -> Column:
    if period == "day":
        return F.date_add(cohort_start, offset)
    if period == "week":
        return F.date_add(cohort_start, offset * 7)
    return F.add_months(cohort_start, offset if period == "month" else offset * 12)
