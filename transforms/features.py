"""Customer features: receipts -> customer x month rollup -> customer profile as of D.

Definitions (as-of date ``D``, window ``W`` days, ``k`` last purchases): a purchase is
a receipt with amount > 0, a return one with amount < 0; receipts after ``D`` are
ignored. The window is ``(D-W, D]``, i.e. the days ``S = D-W+1`` .. ``D``.

``to_customer_month`` (grain customer x calendar month of the receipt date) holds
additive values: orders, purchase/return/net amounts, first/last purchase time, and
the count, sum and sum of squares of the whole days between consecutive purchase
dates. Gaps are computed over the customer's whole purchase history (window by
customer, ordered by time, frame = the previous purchase); a gap that crosses into a
month counts in the later month and the first purchase ever has none. It also keeps
the month's last ``k`` purchase dates (descending).

``to_customer_profile`` derives every profile column exactly from that rollup, except
where a month is cut:

* lifetime values (orders, net amount, first/last purchase, gaps, last ``k`` dates)
  add up the whole months up to ``D``. When ``D`` is not the last day of its month,
  that month is read from the receipts instead (only receipts dated <= ``D``), its
  gaps computed within the month, plus the gap from the last purchase of the earlier
  months to its first purchase. Months after ``D`` never contribute.
* window values (frequency, monetary, purchase amount) add up the months that lie
  wholly inside ``[S, D]``; the (at most two) months cut by ``S`` and by ``D`` are read
  from the receipts, filtered to ``S <= date <= D``.

Late or removed receipts change their own month and, for a purchase, the first gap of
the customer's next month with a purchase: ``to_changed_months`` names those months and
``to_customer_month_update`` rebuilds just them (each month not rebuilt stands in for
the previous purchase with its ``last_purchase_ts``), so the rollup can be kept up to
date without reading all receipts.

So a profile run reads the rollup plus the receipts of at most two months (the receipts are
filtered on the ``receipt_month`` partition, so Spark scans only those).
Periodicity is ``stddev_samp`` of the gaps, from count ``n``, sum ``s`` and sum of
squares ``q``: ``sqrt((n*q - s*s) / (n*(n-1)))``, null for ``n < 2`` (fewer than three
purchases).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.profile import (
    AMOUNT,
    MONTH_360_COLUMNS,
    PROFILE_SOURCE_COLUMNS,
    month_360_aggregates,
    sum_amount,
    sum_long,
    to_profile_360,
)


def _zero_amount() -> Column:
    return F.lit(0).cast(AMOUNT)


def month_label(day: dt.date) -> str:
    """``YYYY-MM`` of ``day``."""
    return f"{day:%Y-%m}"


@dataclass(frozen=True)
class ProfilePeriod:
    """Which months an as-of date ``D`` and a window of ``W`` days cut, as ``YYYY-MM`` labels."""

    as_of: dt.date
    window_days: int

    @property
    def window_start(self) -> dt.date:
        """First day inside the window ``(D-W, D]``."""
        return self.as_of - dt.timedelta(days=self.window_days - 1)

    @property
    def as_of_cuts_month(self) -> bool:
        return (self.as_of + dt.timedelta(days=1)).day != 1

    @property
    def last_whole_month(self) -> str:
        """Latest month that ends on or before ``D``."""
        if not self.as_of_cuts_month:
            return month_label(self.as_of)
        return month_label(self.as_of.replace(day=1) - dt.timedelta(days=1))

    @property
    def first_whole_window_month(self) -> str:
        """Earliest month that starts on or after the window start."""
        start = self.window_start
        if start.day == 1:
            return month_label(start)
        return month_label((start.replace(day=28) + dt.timedelta(days=4)).replace(day=1))

    @property
    def as_of_month(self) -> str | None:
        """``D``'s month when ``D`` cuts it (read from receipts), else None."""
        return month_label(self.as_of) if self.as_of_cuts_month else None

    @property
    def cut_months(self) -> list[str]:
        """The months read from the receipts: the ones the window start and ``D`` cut."""
        months = [month_label(self.window_start)] if self.window_start.day != 1 else []
        if self.as_of_month is not None:
            months.append(self.as_of_month)
        return sorted(set(months))


def _gap_days(is_counted: Column) -> Column:
    """Whole days from the previous counted receipt's date (same customer) to this one's.

    Needs ``customer_id``, ``receipt_ts``, ``receipt_id``, ``receipt_date``. The window is
    partitioned by customer only, so the rollup's ``groupBy(customer_id, month)`` that
    follows needs no second shuffle: the previous counted date is the latest counted
    date among all earlier rows (dates rise with ``receipt_ts``).
    """
    earlier = (
        Window.partitionBy("customer_id").orderBy("receipt_ts", "receipt_id").rowsBetween(Window.unboundedPreceding, -1)
    )
    previous_date = F.max(F.when(is_counted, F.col("receipt_date"))).over(earlier)
    return F.when(is_counted, F.datediff("receipt_date", previous_date))


def _last_dates(dates: Column, last_k: int) -> Column:
    """The ``last_k`` latest dates of an array, descending."""
    return F.slice(F.sort_array(dates, asc=False), 1, last_k)


CUSTOMER_MONTH_COLUMNS = (
    "customer_id", "month", "orders", "purchase_amount", "returns", "return_amount", "net_amount",
    "first_purchase_ts", "last_purchase_ts", "gap_count", "gap_sum_days", "gap_sumsq_days", "last_purchase_dates",
    *MONTH_360_COLUMNS,
)  # fmt: skip


def _dated(receipts: DataFrame) -> DataFrame:
    return receipts.select(
        "customer_id",
        "receipt_id",
        "receipt_ts",
        "amount",
        F.to_date("receipt_ts").alias("receipt_date"),
        (F.col("amount") > 0).alias("is_counted"),
        *PROFILE_SOURCE_COLUMNS,
    )


def _month_rollup(with_gap: DataFrame, last_k: int) -> DataFrame:
    """Receipts with ``receipt_date`` and ``gap_days`` -> customer x month."""
    is_purchase = F.col("amount") > 0
    is_return = F.col("amount") < 0
    return (
        with_gap.groupBy("customer_id", F.date_format("receipt_date", "yyyy-MM").alias("month"))
        .agg(
            F.count(F.when(is_purchase, 1)).alias("orders"),
            sum_amount(F.when(is_purchase, F.col("amount"))).alias("purchase_amount"),
            F.count(F.when(is_return, 1)).alias("returns"),
            sum_amount(F.when(is_return, F.col("amount"))).alias("return_amount"),
            F.sum("amount").cast(AMOUNT).alias("net_amount"),
            F.min(F.when(is_purchase, F.col("receipt_ts"))).alias("first_purchase_ts"),
            F.max(F.when(is_purchase, F.col("receipt_ts"))).alias("last_purchase_ts"),
            F.count("gap_days").alias("gap_count"),
            sum_long(F.col("gap_days")).alias("gap_sum_days"),
            sum_long(F.col("gap_days") * F.col("gap_days")).alias("gap_sumsq_days"),
            _last_dates(F.collect_list(F.when(is_purchase, F.col("receipt_date"))), last_k).alias(
                "last_purchase_dates"
            ),
            *month_360_aggregates(),
        )
        .select(*CUSTOMER_MONTH_COLUMNS)
    )


def to_customer_month(receipts: DataFrame, *, last_k: int) -> DataFrame:
    """Grain: customer x calendar month of the receipt date. Needs the whole history.

    Needs customer_id, receipt_id, receipt_ts, amount.
    """
    dated = _dated(receipts)
    return _month_rollup(dated.withColumn("gap_days", _gap_days(F.col("is_counted"))), last_k)


def to_changed_months(changed_receipts: DataFrame, customer_month: DataFrame) -> DataFrame:
    """The months whose rollup rows the added or removed receipts change (column ``month``).

    A receipt changes its own month; a purchase also changes the gap of the customer's
    next purchase after it, i.e. the next month (in ``customer_month`` or among the
    changed receipts) in which the customer has a purchase.
    """
    own = changed_receipts.select(F.date_format("receipt_ts", "yyyy-MM").alias("month"))
    changed_purchases = (
        changed_receipts.where(F.col("amount") > 0)
        .select("customer_id", F.date_format("receipt_ts", "yyyy-MM").alias("changed_month"))
        .distinct()
    )
    purchase_months = (
        customer_month.where(F.col("orders") > 0)
        .select("customer_id", "month")
        .unionByName(changed_purchases.select("customer_id", F.col("changed_month").alias("month")))
    )
    later = changed_purchases.join(purchase_months, "customer_id", how="inner").where(
        F.col("month") > F.col("changed_month")
    )
    next_months = later.groupBy("customer_id", "changed_month").agg(F.min("month").alias("month")).select("month")
    return own.unionByName(next_months).distinct()


def to_customer_month_update(
    receipts: DataFrame, customer_month: DataFrame, *, months: list[str], last_k: int
) -> DataFrame:
    """The rollup rows of ``months`` rebuilt from their receipts.

    ``receipts`` are read only for ``months`` (partition filter on ``receipt_month``).
    The gap of a month's first purchase needs the purchase before it, which may lie in
    a month not rebuilt: each such month stands in with one row at its
    ``last_purchase_ts`` from ``customer_month``. Those rows only serve as the previous
    purchase and are dropped before the rollup.
    """
    real = _dated(receipts.where(F.col("receipt_month").isin(months))).withColumn("is_anchor", F.lit(False))
    anchors = customer_month.where(~F.col("month").isin(months) & (F.col("orders") > 0)).select(
        "customer_id",
        F.lit(None).cast("string").alias("receipt_id"),
        F.col("last_purchase_ts").alias("receipt_ts"),
        F.lit(None).cast(AMOUNT).alias("amount"),
        F.to_date("last_purchase_ts").alias("receipt_date"),
        F.lit(True).alias("is_counted"),
        F.lit(True).alias("is_anchor"),
        *[F.lit(None).cast(kind).alias(name) for name, kind in PROFILE_SOURCE_COLUMNS.items()],
    )
    with_gap = real.unionByName(anchors).withColumn("gap_days", _gap_days(F.col("is_counted")))
    return _month_rollup(with_gap.where(~F.col("is_anchor")), last_k)


def _whole_months(customer_month: DataFrame, period: ProfilePeriod, last_k: int) -> DataFrame:
    """Per customer: lifetime values over the months that end by D; window values over
    the months wholly inside the window."""
    in_window = (F.col("month") >= period.first_whole_window_month) & (F.col("month") <= period.last_whole_month)
    return (
        customer_month.where(F.col("month") <= period.last_whole_month)
        .groupBy("customer_id")
        .agg(
            sum_long(F.col("orders")).alias("whole_orders"),
            sum_amount(F.col("net_amount")).alias("whole_net_amount"),
            F.to_date(F.min("first_purchase_ts")).alias("whole_first_date"),
            F.to_date(F.max("last_purchase_ts")).alias("whole_last_date"),
            sum_long(F.col("gap_count")).alias("whole_gap_count"),
            sum_long(F.col("gap_sum_days")).alias("whole_gap_sum"),
            sum_long(F.col("gap_sumsq_days")).alias("whole_gap_sumsq"),
            _last_dates(F.flatten(F.collect_list("last_purchase_dates")), last_k).alias("whole_last_dates"),
            sum_long(F.when(in_window, F.col("orders"))).alias("whole_window_orders"),
            sum_amount(F.when(in_window, F.col("net_amount"))).alias("whole_window_net"),
            sum_amount(F.when(in_window, F.col("purchase_amount"))).alias("whole_window_purchase"),
        )
    )


def _cut_months(receipts: DataFrame, period: ProfilePeriod, last_k: int) -> DataFrame:
    """Per customer: the receipts of the months D and the window start cut, dated <= D."""
    as_of_month = period.as_of_month or ""
    dated = (
        receipts.where(F.col("receipt_month").isin(period.cut_months))
        .select("customer_id", "receipt_id", "receipt_ts", "amount", F.to_date("receipt_ts").alias("receipt_date"))
        .where(F.col("receipt_date") <= F.lit(period.as_of))
    )
    is_purchase = F.col("amount") > 0
    in_as_of_month = F.date_format("receipt_date", "yyyy-MM") == F.lit(as_of_month)
    in_window = F.col("receipt_date") >= F.lit(period.window_start)
    counted = dated.withColumn("is_counted", in_as_of_month & is_purchase)
    with_gap = counted.withColumn("gap_days", _gap_days(F.col("is_counted")))
    is_counted = F.col("is_counted")
    return with_gap.groupBy("customer_id").agg(
        F.count(F.when(is_counted, 1)).alias("cut_orders"),
        sum_amount(F.when(in_as_of_month, F.col("amount"))).alias("cut_net_amount"),
        F.min(F.when(is_counted, F.col("receipt_date"))).alias("cut_first_date"),
        F.max(F.when(is_counted, F.col("receipt_date"))).alias("cut_last_date"),
        F.count("gap_days").alias("cut_gap_count"),
        sum_long(F.col("gap_days")).alias("cut_gap_sum"),
        sum_long(F.col("gap_days") * F.col("gap_days")).alias("cut_gap_sumsq"),
        _last_dates(F.collect_list(F.when(is_counted, F.col("receipt_date"))), last_k).alias("cut_last_dates"),
        F.count(F.when(in_window & is_purchase, 1)).alias("cut_window_orders"),
        sum_amount(F.when(in_window, F.col("amount"))).alias("cut_window_net"),
        sum_amount(F.when(in_window & is_purchase, F.col("amount"))).alias("cut_window_purchase"),
    )


def _plus(left: str, right: str) -> Column:
    return F.coalesce(F.col(left), F.lit(0)) + F.coalesce(F.col(right), F.lit(0))


def _plus_amount(left: str, right: str) -> Column:
    return (F.coalesce(F.col(left), _zero_amount()) + F.coalesce(F.col(right), _zero_amount())).cast(AMOUNT)


def to_customer_profile(
    customer_month: DataFrame,
    receipts: DataFrame,
    *,
    as_of: dt.date,
    window_days: int,
    last_k: int,
) -> DataFrame:
    """Grain: customer (with a purchase on or before ``as_of``). Core RFM / LRFMP columns.

    ``customer_month`` is :func:`to_customer_month`'s output; ``receipts`` are silver
    receipts (with ``receipt_month``), of which only the cut months are read.
    """
    period = ProfilePeriod(as_of, window_days)
    whole = _whole_months(customer_month, period, last_k)
    cut = _cut_months(receipts, period, last_k)
    both_sides = F.col("whole_last_date").isNotNull() & F.col("cut_first_date").isNotNull()
    crossing_gap = F.when(both_sides, F.datediff("cut_first_date", "whole_last_date"))
    combined = whole.join(cut, "customer_id", how="full").select(
        "customer_id",
        _plus("whole_orders", "cut_orders").cast("long").alias("orders_lifetime"),
        _plus_amount("whole_net_amount", "cut_net_amount").alias("net_amount_lifetime"),
        F.coalesce("whole_first_date", "cut_first_date").alias("first_purchase_date"),
        F.coalesce("cut_last_date", "whole_last_date").alias("last_purchase_date"),
        (_plus("whole_gap_count", "cut_gap_count") + F.when(both_sides, 1).otherwise(0))
        .cast("long")
        .alias("gap_count"),
        (_plus("whole_gap_sum", "cut_gap_sum") + F.coalesce(crossing_gap, F.lit(0))).cast("long").alias("gap_sum"),
        (_plus("whole_gap_sumsq", "cut_gap_sumsq") + F.coalesce(crossing_gap * crossing_gap, F.lit(0)))
        .cast("long")
        .alias("gap_sumsq"),
        _last_dates(
            F.concat(
                F.coalesce("cut_last_dates", F.array().cast("array<date>")),
                F.coalesce("whole_last_dates", F.array().cast("array<date>")),
            ),
            last_k,
        ).alias("last_dates"),
        _plus("whole_window_orders", "cut_window_orders").cast("long").alias("frequency"),
        _plus_amount("whole_window_net", "cut_window_net").alias("monetary_amount"),
        _plus_amount("whole_window_purchase", "cut_window_purchase").alias("window_purchase_amount"),
    )
    as_of_date = F.lit(as_of)
    n, s, q = F.col("gap_count"), F.col("gap_sum"), F.col("gap_sumsq")
    variance = (n * q - s * s).cast("double") / (n * (n - 1)).cast("double")
    days_to_as_of = F.aggregate("last_dates", F.lit(0).cast("long"), lambda acc, day: acc + F.datediff(as_of_date, day))
    return combined.where(F.col("orders_lifetime") > 0).select(
        "customer_id",
        as_of_date.alias("as_of_date"),
        F.datediff(as_of_date, "last_purchase_date").alias("recency_days"),
        "frequency",
        "monetary_amount",
        F.when(F.col("frequency") > 0, F.col("window_purchase_amount") / F.col("frequency"))
        .cast(AMOUNT)
        .alias("avg_receipt_amount"),
        "first_purchase_date",
        "last_purchase_date",
        F.datediff(as_of_date, "first_purchase_date").alias("tenure_days"),
        F.datediff("last_purchase_date", "first_purchase_date").alias("length_days"),
        (days_to_as_of / F.size("last_dates")).alias("recency_last_k_days"),
        F.when(n >= 2, F.sqrt(F.greatest(variance, F.lit(0.0)))).alias("periodicity_days"),
        F.when(n >= 1, s.cast("double") / n.cast("double")).alias("mean_gap_days"),
        F.date_format("first_purchase_date", "yyyy-MM").alias("cohort"),
        "orders_lifetime",
        "net_amount_lifetime",
    )


def to_customer_profile_360(customer_month: DataFrame, receipts: DataFrame, period: ProfilePeriod) -> DataFrame:
    """The 360° columns (``transforms.profile.to_profile_360``) cut like the core profile for ``period``."""
    return to_profile_360(
        customer_month,
        receipts,
        as_of=period.as_of,
        window_start=period.window_start,
        last_whole_month=period.last_whole_month,
        first_whole_window_month=period.first_whole_window_month,
        cut_months=period.cut_months,
    )
