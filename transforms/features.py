"""Customer features: receipts -> customer x month rollup -> customer profile as of D.

Definitions (as-of date ``D``, window ``W`` days, ``k`` last purchases): a purchase is
a receipt with amount > 0, a return one with amount < 0; receipts after ``D`` are
ignored. The window is ``(D-W, D]``, i.e. the days ``S = D-W+1`` .. ``D``.

``to_customer_month`` (grain customer x calendar month of the receipt date) holds
additive values: orders, purchase/return/net amounts, first/last purchase time, and
the count, sum and sum of squares of the whole days between consecutive purchase
dates. Gaps run over the customer's whole purchase history (each purchase against
the customer's previous purchase, in any earlier month); a gap that crosses into a
month counts in the later month and the first purchase ever has none. It also keeps
the month's last ``k`` purchase dates (descending) and the monthly 360° values
(``transforms.profile.month_360_aggregates``).

How it runs: one shuffle (by customer, of the columns read only; date and month are
derived after it), one sort (customer, month), then an aggregation per customer-month
over rows that already arrive grouped, so it streams
(``spark.sql.execution.replaceHashWithSortAgg``, set by the session factory). With a
partition count the rollup stays hash-partitioned by customer: the features job persists
it while Delta writes it and aggregates the profile from the same partitions, shuffling
only the cut months' rows to join them (no second shuffle of the rollup). No window
runs over the receipts: the month keeps its purchase dates sorted, which give the
gaps inside the month and the last ``k`` dates; the gap that crosses into the month
comes from one window over the aggregated months (the latest purchase date of the
customer's earlier months), which arrive already partitioned and sorted for it.

``to_customer_profile`` derives every profile column exactly from that rollup in one
aggregation per customer, except where a month is cut:

* lifetime values (orders, net amount, first/last purchase, gaps, last ``k`` dates)
  add up the whole months up to ``D``. When ``D`` is not the last day of its month,
  that month is read from the receipts instead (only receipts dated <= ``D``), its
  gaps computed within the month, plus the gap from the last purchase of the earlier
  months to its first purchase. Months after ``D`` never contribute.
* window values (frequency, monetary, purchase amount, the window's 360° values) add
  up the months that lie wholly inside ``[S, D]``; the (at most two) months cut by
  ``S`` and by ``D`` are read from the receipts, filtered to ``S <= date <= D``.

The cut months are rolled up with the same monthly values, grouped also by two flags
(``is_lifetime``, ``is_window``); as a flag can split a month, their gaps and last ``k``
dates come from two windows over the (few) receipts instead of per-group date lists:
the previous counted purchase, and the counted purchases later in the month. They are
stacked under the rollup's whole months,
each row flagged with the spans it counts in. So a profile run reads the rollup plus
the receipts of at most two months (filtered on the ``receipt_month`` partition, so
Spark scans only those and their neighbours: :func:`receipts_of_months`).

Late or removed receipts change their own month and, for a purchase, the first gap of
the customer's next month with a purchase: ``to_changed_months`` names those months and
``to_customer_month_update`` rebuilds just them (each month not rebuilt stands in for
the previous purchase with its ``last_purchase_ts``), so the rollup can be kept up to
date without reading all receipts.

The lifetime values of the whole months also merge exactly per customer: the
``silver/customer_lifetime`` state (:func:`to_customer_lifetime` over
:func:`to_lifetime_rows`) sums, mins and maxes them up to a month, and
:func:`to_customer_profile` given that state reads from the rollup only the months after
it and those of the window and the spend trend, so a profile's cost follows the
customers, not the months of history.

Periodicity is ``stddev_samp`` of the gaps, from count ``n``, sum ``s`` and sum of
squares ``q``: ``sqrt((n*q - s*s) / (n*(n-1)))``, null for ``n < 2`` (fewer than three
purchases).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.calendar import ProfilePeriod, month_of, receipts_of_months, trend_months
from transforms.offers import positive_categories
from transforms.profile import (
    AMOUNT,
    MONTH_360_COLUMNS,
    PROFILE_SOURCE_COLUMNS,
    SpanFlags,
    month_360_aggregates,
    profile_360_aggregates,
    profile_360_columns,
    sum_amount,
    sum_long,
)

CUSTOMER_MONTH_COLUMNS = (
    "customer_id",
    "month",
    "orders",
    "purchase_amount",
    "returns",
    "return_amount",
    "net_amount",
    "first_purchase_ts",
    "last_purchase_ts",
    "gap_count",
    "gap_sum_days",
    "gap_sumsq_days",
    "last_purchase_dates",
    *MONTH_360_COLUMNS,
)


def _needed(receipts: DataFrame) -> DataFrame:
    """The receipt columns the rollup needs."""
    return receipts.select("customer_id", "receipt_id", "receipt_ts", "amount", *PROFILE_SOURCE_COLUMNS)


def _with_calendar(receipts: DataFrame) -> DataFrame:
    """Add the receipt date and month (session time zone)."""
    return receipts.withColumns(
        {"receipt_date": F.to_date("receipt_ts"), "month": month_of("receipt_ts")},
    )


def _dated(receipts: DataFrame) -> DataFrame:
    """The receipt columns the rollup needs, with the receipt date and month."""
    return _with_calendar(_needed(receipts))


def month_values() -> list[Column]:
    """Per customer-month (or a cut part of one): the values that only add up its receipts."""
    is_purchase = F.col("amount") > 0
    is_return = F.col("amount") < 0
    return [
        F.count(F.when(is_purchase, 1)).alias("orders"),
        sum_amount(F.when(is_purchase, F.col("amount"))).alias("purchase_amount"),
        F.count(F.when(is_return, 1)).alias("returns"),
        sum_amount(F.when(is_return, F.col("amount"))).alias("return_amount"),
        F.sum("amount").cast(AMOUNT).alias("net_amount"),
        F.min(F.when(is_purchase, F.col("receipt_ts"))).alias("first_purchase_ts"),
        F.max(F.when(is_purchase, F.col("receipt_ts"))).alias("last_purchase_ts"),
    ]


def _with_purchase_order(dated: DataFrame, is_counted: Column) -> DataFrame:
    """Add ``gap_days`` and ``later_in_month`` for the purchases that ``is_counted`` selects.

    ``gap_days``: whole days from the previous counted purchase of the customer (any
    earlier month) to this one; null for the first and for rows not counted.
    ``later_in_month``: counted purchases after this row in the same customer-month.
    Both windows are ordered by (month, time, receipt id) within the customer, the
    same order as time (the month follows from the time), so they share one sort;
    the previous counted date is the latest counted date among all earlier rows.
    """
    by_customer = Window.partitionBy("customer_id").orderBy("month", "receipt_ts", "receipt_id")
    by_month = Window.partitionBy("customer_id", "month").orderBy("receipt_ts", "receipt_id")
    previous_date = F.max(F.when(is_counted, F.col("receipt_date"))).over(
        by_customer.rowsBetween(Window.unboundedPreceding, -1)
    )
    later = F.count(F.when(is_counted, 1)).over(by_month.rowsBetween(1, Window.unboundedFollowing))
    return dated.withColumns(
        {
            "gap_days": F.when(is_counted, F.datediff("receipt_date", previous_date)),
            "later_in_month": F.when(is_counted, later),
        }
    )


def _month_rollup(with_order: DataFrame, last_k: int, *, keys: tuple[str, ...] = ()) -> DataFrame:
    """Receipts with ``gap_days`` and ``later_in_month`` -> customer x month x ``keys``.

    For the cut months only: there a month splits into parts by span flag, and its
    counted purchases (hence gaps and last dates) run across the parts.
    """
    last_dates = F.array(
        *[F.max(F.when(F.col("later_in_month") == j, F.col("receipt_date"))) for j in range(last_k)]
    )  # the j-th latest counted purchase date of the month in slot j (null when fewer)
    return (
        with_order.groupBy("customer_id", "month", *keys)
        .agg(
            *month_values(),
            F.count("gap_days").alias("gap_count"),
            sum_long(F.col("gap_days")).alias("gap_sum_days"),
            sum_long(F.col("gap_days") * F.col("gap_days")).alias("gap_sumsq_days"),
            F.filter(last_dates, lambda day: day.isNotNull()).alias("last_purchase_dates"),
            *month_360_aggregates(),
        )
        .select(*CUSTOMER_MONTH_COLUMNS, *keys)
    )


def _whole_months(receipts: DataFrame, partitions: int | None = None) -> DataFrame:
    """Receipts -> customer x month with the month's purchase dates, ascending
    (``purchase_dates``), hash-partitioned by customer (into ``partitions``, default
    ``spark.sql.shuffle.partitions``) and sorted by (customer, month).

    The shuffle moves only the columns read (:func:`_needed`); date and month are derived
    after it, on the receiving side.
    """
    needed = _needed(receipts)
    shuffled = needed.repartition(partitions, "customer_id") if partitions else needed.repartition("customer_id")
    return (
        _with_calendar(shuffled)
        .sortWithinPartitions("customer_id", "month")
        .groupBy("customer_id", "month")
        .agg(
            *month_values(),
            F.array_sort(F.collect_list(F.when(F.col("amount") > 0, F.col("receipt_date")))).alias("purchase_dates"),
            *month_360_aggregates(),
        )
    )


def _with_month_gaps(months: DataFrame, last_k: int) -> DataFrame:
    """Add the gap columns and ``last_purchase_dates`` to :func:`_whole_months` rows.

    Inside the month the gaps are the steps between its sorted purchase dates; the gap
    into the month runs from the latest purchase date of the customer's earlier months
    (a window over months, not receipts) to the month's first purchase date.
    """
    dates = F.col("purchase_dates")
    steps = F.transform(F.slice(dates, 2, F.size(dates)), lambda day, i: F.datediff(day, F.element_at(dates, i + 1)))
    earlier = Window.partitionBy("customer_id").orderBy("month").rowsBetween(Window.unboundedPreceding, -1)
    crossing = F.datediff(F.to_date("first_purchase_ts"), F.max(F.to_date("last_purchase_ts")).over(earlier))
    with_crossing = months.withColumn("crossing_gap", crossing)
    crossing_gap = F.col("crossing_gap")
    return with_crossing.withColumns(
        {
            "gap_count": (F.size(steps) + F.when(crossing_gap.isNotNull(), 1).otherwise(0)).cast("long"),
            "gap_sum_days": (
                F.aggregate(steps, F.lit(0).cast("long"), lambda total, gap: total + gap)
                + F.coalesce(crossing_gap, F.lit(0))
            ).cast("long"),
            "gap_sumsq_days": (
                F.aggregate(steps, F.lit(0).cast("long"), lambda total, gap: total + gap * gap)
                + F.coalesce(crossing_gap * crossing_gap, F.lit(0))
            ).cast("long"),
            "last_purchase_dates": F.slice(F.reverse(dates), 1, last_k),
        }
    )


def to_customer_month(receipts: DataFrame, *, last_k: int, partitions: int | None = None) -> DataFrame:
    """Grain: customer x calendar month of the receipt date. Needs the whole history.

    Needs customer_id, receipt_id, receipt_ts, amount and the 360° source columns. The rows
    come out hash-partitioned by customer_id into ``partitions`` (when given) and sorted by
    (customer, month): persisted, they feed :func:`to_customer_profile` without a shuffle.
    """
    return _with_month_gaps(_whole_months(receipts, partitions), last_k).select(*CUSTOMER_MONTH_COLUMNS)


def to_changed_months(changed_receipts: DataFrame, customer_month: DataFrame) -> DataFrame:
    """The months whose rollup rows the added or removed receipts change (column ``month``).

    A receipt changes its own month; a purchase also changes the gap of the customer's
    next purchase after it, i.e. the next month (in ``customer_month`` or among the
    changed receipts) in which the customer has a purchase.
    """
    own = changed_receipts.select(month_of("receipt_ts").alias("month"))
    changed_purchases = (
        changed_receipts.where(F.col("amount") > 0)
        .select("customer_id", month_of("receipt_ts").alias("changed_month"))
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

    ``receipts`` are read only for ``months`` (:func:`receipts_of_months`).
    The gap into a month's first purchase needs the purchase before it, which may lie
    in a month not rebuilt: each such month stands in with its ``last_purchase_ts`` from
    ``customer_month`` (an anchor row), and anchors are dropped after the gaps.
    """
    rebuilt = _whole_months(receipts_of_months(receipts, months)).withColumn("is_anchor", F.lit(False))
    anchors = customer_month.where(~F.col("month").isin(months) & (F.col("orders") > 0)).select(
        "customer_id", "month", "last_purchase_ts", F.lit(True).alias("is_anchor")
    )
    with_gaps = _with_month_gaps(rebuilt.unionByName(anchors, allowMissingColumns=True), last_k)
    return with_gaps.where(~F.col("is_anchor")).select(*CUSTOMER_MONTH_COLUMNS)


# silver/customer_lifetime: per customer, the lifetime values of the rollup's whole months up
# to ``through_month``, merged (the columns of CUSTOMER_MONTH_COLUMNS that add up over a
# lifetime, plus the months with a purchase).
LIFETIME_VALUE_COLUMNS = (
    "orders",
    "purchase_amount",
    "net_amount",
    "first_purchase_ts",
    "last_purchase_ts",
    "gap_count",
    "gap_sum_days",
    "gap_sumsq_days",
    "last_purchase_dates",
    "first_purchase_channel",
    "max_receipt_amount",
    "active_months",
    "categories_bought",
)
CUSTOMER_LIFETIME_COLUMNS = ("customer_id", "through_month", *LIFETIME_VALUE_COLUMNS)


def to_lifetime_rows(customer_month: DataFrame) -> DataFrame:
    """Rollup rows -> rows shaped like silver/customer_lifetime's values (one month each:
    ``active_months`` is 1 for a month with a purchase; ``categories_bought`` the month's
    categories with a positive purchase amount)."""
    return customer_month.select(
        "customer_id",
        *[c for c in LIFETIME_VALUE_COLUMNS if c not in ("active_months", "categories_bought")],
        F.when(F.col("orders") > 0, 1).otherwise(0).cast("long").alias("active_months"),
        positive_categories(F.col("category_amounts")).alias("categories_bought"),
    )


def to_customer_lifetime(lifetime_rows: DataFrame, *, through_month: str, last_k: int) -> DataFrame:
    """Grain: customer. Merges rows shaped by :func:`to_lifetime_rows` (months, or earlier
    lifetime rows of disjoint months) into one row per customer covering them all.

    Every value merges exactly: counts and sums add, first/last take min/max, the last ``k``
    dates are the latest ``k`` of all, the first channel follows the earliest purchase.
    The caller says which months the rows cover: all whole months up to ``through_month``.
    """
    has_orders = F.col("orders") > 0
    return lifetime_rows.groupBy("customer_id").agg(
        F.lit(through_month).alias("through_month"),
        sum_long(F.col("orders")).alias("orders"),
        sum_amount(F.col("purchase_amount")).alias("purchase_amount"),
        sum_amount(F.col("net_amount")).alias("net_amount"),
        F.min("first_purchase_ts").alias("first_purchase_ts"),
        F.max("last_purchase_ts").alias("last_purchase_ts"),
        sum_long(F.col("gap_count")).alias("gap_count"),
        sum_long(F.col("gap_sum_days")).alias("gap_sum_days"),
        sum_long(F.col("gap_sumsq_days")).alias("gap_sumsq_days"),
        _last_dates(F.flatten(F.collect_list("last_purchase_dates")), last_k).alias("last_purchase_dates"),
        F.min_by("first_purchase_channel", F.when(has_orders, F.col("first_purchase_ts"))).alias(
            "first_purchase_channel"
        ),
        F.max("max_receipt_amount").cast(AMOUNT).alias("max_receipt_amount"),
        sum_long(F.col("active_months")).alias("active_months"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("categories_bought")))).alias("categories_bought"),
    )


def _cut_rollup(receipts: DataFrame, period: ProfilePeriod, last_k: int) -> DataFrame:
    """The cut months rolled up from their receipts dated <= D, by (customer, month,
    is_lifetime, is_window): ``is_lifetime`` for D's month (when D cuts it), ``is_window``
    for days from the window start on. Gaps and last dates count lifetime purchases only:
    within D's month; the gap from the earlier months is added by the profile."""
    as_of_month = period.as_of_month or ""
    cut = receipts_of_months(receipts, period.cut_months)
    flagged = (
        _dated(cut.where(F.to_date("receipt_ts") <= F.lit(period.as_of)))
        .withColumns(
            {
                "is_lifetime": F.col("month") == F.lit(as_of_month),
                "is_window": F.col("receipt_date") >= F.lit(period.window_start),
            }
        )
        .where(F.col("is_lifetime") | F.col("is_window"))
    )
    with_order = _with_purchase_order(flagged, F.col("is_lifetime") & (F.col("amount") > 0))
    return _month_rollup(with_order, last_k, keys=("is_lifetime", "is_window"))


def to_span_rows(
    customer_month: DataFrame,
    receipts: DataFrame,
    period: ProfilePeriod,
    last_k: int,
    *,
    partitions: int | None = None,
    lifetime: DataFrame | None = None,
    lifetime_through: str | None = None,
) -> DataFrame:
    """Rollup-shaped rows flagged ``is_lifetime`` / ``is_window`` / ``is_rollup``, with
    ``active_months`` (months with a purchase the row stands for; cut months count by name).

    Without ``lifetime``: the whole months up to D from the rollup (all lifetime; window when
    wholly inside it). With ``lifetime`` (silver/customer_lifetime through the month
    ``lifetime_through``, at most D's last whole month): one row per customer for those
    months, plus from the rollup only the months after it (lifetime) and the window's and
    the spend trend's months (not lifetime when the state covers them). Then the cut months
    from the receipts (:func:`_cut_rollup`), hash-partitioned by customer into ``partitions``
    when given (to line up with a rollup partitioned so)."""
    month = F.col("month")
    active = F.when(F.col("orders") > 0, 1).otherwise(0).cast("long").alias("active_months")
    in_window = (month >= period.first_whole_window_month).alias("is_window")
    whole_months = customer_month.where(month <= period.last_whole_month)
    if lifetime is None:
        whole = whole_months.select(
            *CUSTOMER_MONTH_COLUMNS, active, F.lit(True).alias("is_lifetime"), in_window, F.lit(True).alias("is_rollup")
        )
    else:
        if lifetime_through is None or lifetime_through > period.last_whole_month:
            raise ValueError(
                f"a lifetime state through {lifetime_through} cannot serve as of {period.as_of} "
                f"(last whole month {period.last_whole_month})"
            )
        last_3, previous_3 = trend_months(period.last_whole_month)
        needed = (
            (month > lifetime_through) | (month >= period.first_whole_window_month) | month.isin(*last_3, *previous_3)
        )
        months = whole_months.where(needed).select(
            *CUSTOMER_MONTH_COLUMNS,
            active,
            (month > lifetime_through).alias("is_lifetime"),
            in_window,
            F.lit(True).alias("is_rollup"),
        )
        state = lifetime.select(
            "customer_id",
            F.lit(None).cast("string").alias("month"),
            *LIFETIME_VALUE_COLUMNS,
            F.lit(True).alias("is_lifetime"),
            F.lit(False).alias("is_window"),
            F.lit(True).alias("is_rollup"),
        )
        whole = state.unionByName(months, allowMissingColumns=True)
    if not period.cut_months:
        return whole
    cut = _cut_rollup(receipts, period, last_k).withColumns(
        {"active_months": F.lit(0).cast("long"), "is_rollup": F.lit(False)}
    )
    if partitions:
        cut = cut.repartition(partitions, "customer_id")
    return whole.unionByName(cut, allowMissingColumns=True)


def _last_dates(dates: Column, last_k: int) -> Column:
    """The ``last_k`` latest dates of an array, descending."""
    return F.slice(F.sort_array(dates, asc=False), 1, last_k)


def _core_aggregates(flags: SpanFlags, last_k: int) -> list[Column]:
    lifetime, window, rollup = flags.lifetime, flags.window, flags.rollup
    cut_lifetime = lifetime & ~rollup
    return [
        sum_long(F.when(lifetime, F.col("orders"))).alias("orders_lifetime"),
        sum_amount(F.when(lifetime, F.col("net_amount"))).alias("net_amount_lifetime"),
        F.min(F.when(lifetime, F.col("first_purchase_ts"))).alias("first_purchase_ts"),
        F.max(F.when(lifetime, F.col("last_purchase_ts"))).alias("last_purchase_ts"),
        F.max(F.when(rollup, F.col("last_purchase_ts"))).alias("whole_last_purchase_ts"),
        F.min(F.when(cut_lifetime, F.col("first_purchase_ts"))).alias("cut_first_purchase_ts"),
        sum_long(F.when(lifetime, F.col("gap_count"))).alias("month_gap_count"),
        sum_long(F.when(lifetime, F.col("gap_sum_days"))).alias("month_gap_sum"),
        sum_long(F.when(lifetime, F.col("gap_sumsq_days"))).alias("month_gap_sumsq"),
        _last_dates(F.flatten(F.collect_list(F.when(lifetime, F.col("last_purchase_dates")))), last_k).alias(
            "last_dates"
        ),
        sum_long(F.when(window, F.col("orders"))).alias("frequency"),
        sum_amount(F.when(window, F.col("net_amount"))).alias("monetary_amount"),
        sum_amount(F.when(window, F.col("purchase_amount"))).alias("window_purchase_amount"),
    ]


PROFILE_CORE_COLUMNS = (
    "customer_id",
    "as_of_date",
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
    "mean_gap_days",
    "cohort",
    "orders_lifetime",
    "net_amount_lifetime",
)


def _core_columns(as_of: dt.date) -> list[Column]:
    as_of_date = F.lit(as_of)
    first_date, last_date = F.to_date("first_purchase_ts"), F.to_date("last_purchase_ts")
    # the gap from the last purchase of the whole months into D's (cut) month
    crossing = F.datediff(F.to_date("cut_first_purchase_ts"), F.to_date("whole_last_purchase_ts"))
    n = F.col("month_gap_count") + F.when(crossing.isNotNull(), 1).otherwise(0)
    s = F.col("month_gap_sum") + F.coalesce(crossing, F.lit(0))
    q = F.col("month_gap_sumsq") + F.coalesce(crossing * crossing, F.lit(0))
    variance = (n * q - s * s).cast("double") / (n * (n - 1)).cast("double")
    days_to_as_of = F.aggregate("last_dates", F.lit(0).cast("long"), lambda acc, day: acc + F.datediff(as_of_date, day))
    return [
        F.col("customer_id"),
        as_of_date.alias("as_of_date"),
        F.datediff(as_of_date, last_date).alias("recency_days"),
        F.col("frequency"),
        F.col("monetary_amount"),
        F.when(F.col("frequency") > 0, F.col("window_purchase_amount") / F.col("frequency"))
        .cast(AMOUNT)
        .alias("avg_receipt_amount"),
        first_date.alias("first_purchase_date"),
        last_date.alias("last_purchase_date"),
        F.datediff(as_of_date, first_date).alias("tenure_days"),
        F.datediff(last_date, first_date).alias("length_days"),
        (days_to_as_of / F.size("last_dates")).alias("recency_last_k_days"),
        F.when(n >= 2, F.sqrt(F.greatest(variance, F.lit(0.0)))).alias("periodicity_days"),
        F.when(n >= 1, s.cast("double") / n.cast("double")).alias("mean_gap_days"),
        F.date_format(first_date, "yyyy-MM").alias("cohort"),
        F.col("orders_lifetime"),
        F.col("net_amount_lifetime"),
    ]


def to_customer_profile(
    customer_month: DataFrame,
    receipts: DataFrame,
    *,
    as_of: dt.date,
    window_days: int,
    last_k: int,
    partitions: int | None = None,
    lifetime: DataFrame | None = None,
    lifetime_through: str | None = None,
) -> DataFrame:
    """Grain: customer (with a purchase on or before ``as_of``). The core RFM / LRFMP
    columns (:data:`PROFILE_CORE_COLUMNS`) and the 360° columns, in one aggregation.

    ``customer_month`` is :func:`to_customer_month`'s output; ``receipts`` are silver
    receipts (with ``receipt_month``), of which only the cut months are read. With
    ``partitions``, ``customer_month`` is taken to be hash-partitioned by customer into that
    many partitions (``to_customer_month(..., partitions=)``, persisted): only the cut
    months' rows are shuffled to join it, and the rollup is not shuffled again.
    With ``lifetime`` (silver/customer_lifetime through ``lifetime_through``) the lifetime
    values come from it and only the window's months are read from the rollup
    (:func:`to_span_rows`): the cost follows the customers, not the months of history.
    """
    period = ProfilePeriod(as_of, window_days)
    rows = to_span_rows(
        customer_month,
        receipts,
        period,
        last_k,
        partitions=partitions,
        lifetime=lifetime,
        lifetime_through=lifetime_through,
    )
    flags = SpanFlags(F.col("is_lifetime"), F.col("is_window"), F.col("is_rollup"))
    # Clustered and sorted by customer first, the aggregation streams in one pass per
    # partition; left to itself Spark would aggregate partially before the shuffle,
    # which on ~10 rows per customer costs a sort and saves nothing.
    clustered = rows if partitions else rows.repartition("customer_id")
    by_customer = clustered.sortWithinPartitions("customer_id")
    merged = by_customer.groupBy("customer_id").agg(
        *_core_aggregates(flags, last_k), *profile_360_aggregates(flags, period.last_whole_month, period.cut_months)
    )
    return merged.where(F.col("orders_lifetime") > 0).select(*_core_columns(as_of), *profile_360_columns())
