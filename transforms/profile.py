"""The 360° part of the customer profile: channels, products, promotions, basket, time,
returns, geography and demographics, derived from the ``customer_month`` rollup.

``month_360_aggregates`` are the monthly values ``silver/customer_month`` keeps for this
(purchases only: receipts with amount > 0). All of them merge exactly across months:
counts and amounts add, maxima take the max, ``first_purchase_channel`` follows the
earliest ``first_purchase_ts``, and the per-key maps (orders per region and store;
purchase amount per category) add key by key. Channels are the canonical three
(store, online, app), so they are three counts rather than a map.

``profile_360_aggregates`` merges them per customer over two spans, cut exactly like
the core profile (see ``transforms/features.py``, which runs both in one aggregation):
*lifetime* = every receipt dated <= D, and the *window* ``(D-W, D]``. Whole months come
from the rollup; the (at most two) months that the window start or D cut are rolled
up again from their receipts, filtered to the span. Hours, weekdays and calendar
months are read in the session time zone (``spark.timezone``), like every date in the
lake.

Window shares and rates are null when the customer has no purchase in the window
(frequency 0); counts are 0 then. Ties for a "main" or "top" key go to the smallest key
in text order; ties for the peak month to the earliest month of the year; ties for the
part of day to the earlier part (night, morning, afternoon, evening).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.calendar import trend_months
from transforms.cleanse import normalised_customer_id

AMOUNT = "decimal(18,2)"
CHANNELS = ("store", "online", "app")
# part of the day -> [first hour, end hour) in the session time zone, in day order
PARTS_OF_DAY = {"night": (0, 6), "morning": (6, 12), "afternoon": (12, 18), "evening": (18, 24)}

# Source columns the 360° values need besides customer_id, receipt_id, receipt_ts, amount.
PROFILE_SOURCE_COLUMNS = {
    "channel": "string",
    "store_id": "string",
    "region": "string",
    "category": "string",
    "item_count": "int",
    "discount_amount": AMOUNT,
    "coupon_used": "boolean",
}

# customer_month columns added by month_360_aggregates, in order
MONTH_360_COLUMNS = (
    "first_purchase_channel",
    "max_receipt_amount",
    "coupon_orders",
    "discount_amount",
    "items",
    "weekend_orders",
    *(f"{part}_orders" for part in PARTS_OF_DAY),
    *(f"{channel}_channel_orders" for channel in CHANNELS),
    "category_amounts",
    "region_orders",
    "store_orders",
)


def _key_counts(keys: Column) -> Column:
    """Array of keys -> map key -> occurrences (nulls dropped)."""
    present = F.filter(keys, lambda key: key.isNotNull())

    def occurrences(key: Column) -> Column:
        return F.struct(key, F.size(F.filter(present, lambda x: x == key)).cast("long"))

    return F.map_from_entries(F.transform(F.array_distinct(present), occurrences))


def _key_amounts(pairs: Column) -> Column:
    """Array of (key, amount) structs -> map key -> summed amount (null keys dropped)."""
    keys = F.array_distinct(F.filter(F.transform(pairs, lambda p: p["key"]), lambda key: key.isNotNull()))
    return F.map_from_entries(
        F.transform(
            keys,
            lambda key: F.struct(
                key,
                F.aggregate(
                    F.filter(pairs, lambda p: p["key"] == key),
                    F.lit(0).cast(AMOUNT),
                    lambda total, p: (total + p["amount"]).cast(AMOUNT),
                ),
            ),
        )
    )


def month_360_aggregates() -> list[Column]:
    """Aggregates of one customer's receipts (one month, or a cut part of one) for the 360° values.

    Needs receipt_ts, receipt_id, amount and :data:`PROFILE_SOURCE_COLUMNS`.
    """
    is_purchase = F.col("amount") > 0

    def purchases(column: Column) -> Column:
        return F.when(is_purchase, column)

    hour = F.hour("receipt_ts")
    part_counts = [
        F.count(F.when(is_purchase & (hour >= start) & (hour < end), 1)).alias(f"{part}_orders")
        for part, (start, end) in PARTS_OF_DAY.items()
    ]
    return [
        F.min_by("channel", purchases(F.struct("receipt_ts", "receipt_id"))).alias("first_purchase_channel"),
        F.max(purchases(F.col("amount"))).cast(AMOUNT).alias("max_receipt_amount"),
        F.count(F.when(is_purchase & F.col("coupon_used"), 1)).alias("coupon_orders"),
        sum_amount(purchases(F.col("discount_amount"))).alias("discount_amount"),
        sum_long(purchases(F.col("item_count"))).alias("items"),
        F.count(F.when(is_purchase & F.dayofweek("receipt_ts").isin(1, 7), 1)).alias("weekend_orders"),
        *part_counts,
        *[F.count(F.when(is_purchase & (F.col("channel") == c), 1)).alias(f"{c}_channel_orders") for c in CHANNELS],
        _key_amounts(
            F.collect_list(purchases(F.struct(F.col("category").alias("key"), F.col("amount").alias("amount"))))
        ).alias("category_amounts"),
        _key_counts(F.collect_list(purchases(F.col("region")))).alias("region_orders"),
        _key_counts(F.collect_list(purchases(F.col("store_id")))).alias("store_orders"),
    ]


def _merged_map(column: str, when: Column, value_type: str) -> Column:
    """Key-by-key sum of the map ``column`` over the group's rows where ``when`` holds."""
    empty = F.create_map().cast(f"map<string,{value_type}>")
    zero = F.lit(0).cast(value_type)
    return F.aggregate(
        F.collect_list(F.when(when, F.col(column))),
        empty,
        lambda acc, m: F.map_zip_with(
            acc, m, lambda _key, left, right: (F.coalesce(left, zero) + F.coalesce(right, zero)).cast(value_type)
        ),
    )


def _top_key(counts: Column) -> Column:
    """The key with the largest value (smallest key on ties); null for an empty map."""
    top = F.array_max(F.map_values(counts))
    return F.array_min(F.filter(F.map_keys(counts), lambda key: F.element_at(counts, key) == top))


def _share(part: Column, whole: Column) -> Column:
    """part / whole as a double; null when whole is 0 or null."""
    return F.when(whole > 0, part.cast("double") / whole.cast("double"))


def sum_long(column: Column) -> Column:
    """Sum as a long, 0 for no rows."""
    return F.coalesce(F.sum(column), F.lit(0)).cast("long")


def sum_amount(column: Column) -> Column:
    """Sum as an amount (decimal(18,2)), 0.00 for no rows."""
    return F.coalesce(F.sum(column), F.lit(0).cast(AMOUNT)).cast(AMOUNT)


@dataclass(frozen=True)
class SpanFlags:
    """Boolean columns of a rollup-shaped row: counts in the lifetime (dated <= D), counts
    in the window (D-W, D], comes from the rollup (a whole month) rather than a cut month."""

    lifetime: Column
    window: Column
    rollup: Column


MONTHS_OF_YEAR = range(1, 13)


def profile_360_aggregates(flags: SpanFlags, last_whole_month: str, cut_months: list[str]) -> list[Column]:
    """Per-customer aggregates over rollup-shaped rows flagged with :class:`SpanFlags`.

    Rollup rows are one per month (``active_months`` 1 with a purchase), or one lifetime
    state row per customer standing for many (its ``active_months``, no ``month``); a cut
    month can give two rows (inside and before the window), so months are counted once
    each: rollup rows by ``active_months``, cut months by name. The spend trend compares
    whole calendar months only (rollup rows of those months, whether or not the state
    already counts them for the lifetime).
    """
    lifetime, window, rollup = flags.lifetime, flags.window, flags.rollup
    has_orders = F.col("orders") > 0
    last_3, previous_3 = trend_months(last_whole_month)
    in_trend = rollup  # whole months (a lifetime state row has no month)
    month_of_year = F.substring("month", 6, 2).cast("int")

    def cut_months_with_orders(span: Column) -> Column:
        """How many of the cut months have a purchase in ``span`` (each month once)."""
        present = [F.max(F.when(~rollup & span & has_orders & (F.col("month") == m), 1)) for m in cut_months]
        return sum((F.coalesce(month, F.lit(0)) for month in present), F.lit(0))

    return [
        # lifetime
        F.min_by("first_purchase_channel", F.when(lifetime & has_orders, F.col("first_purchase_ts"))).alias(
            "first_channel"
        ),
        (sum_long(F.when(lifetime & rollup, F.col("active_months"))) + cut_months_with_orders(lifetime)).alias(
            "months_active_lifetime"
        ),
        sum_amount(F.when(lifetime, F.col("purchase_amount"))).alias("gross_spend_lifetime"),
        F.max(F.when(lifetime, F.col("max_receipt_amount"))).alias("max_receipt_amount_lifetime"),
        sum_amount(F.when(in_trend & F.col("month").isin(last_3), F.col("net_amount"))).alias("spend_last_3_months"),
        sum_amount(F.when(in_trend & F.col("month").isin(previous_3), F.col("net_amount"))).alias(
            "spend_previous_3_months"
        ),
        # window
        sum_long(F.when(window, F.col("orders"))).alias("orders_window"),
        (F.count(F.when(rollup & window & has_orders, 1)) + cut_months_with_orders(window)).alias(
            "months_active_window"
        ),
        sum_amount(F.when(window, F.col("purchase_amount"))).alias("gross_spend_window"),
        F.max(F.when(window, F.col("max_receipt_amount"))).alias("max_receipt_amount_window"),
        sum_long(F.when(window, F.col("coupon_orders"))).alias("coupon_orders_window"),
        sum_amount(F.when(window, F.col("discount_amount"))).alias("discount_amount_window"),
        sum_long(F.when(window, F.col("items"))).alias("items_window"),
        sum_long(F.when(window, F.col("weekend_orders"))).alias("weekend_orders_window"),
        *[sum_long(F.when(window, F.col(f"{part}_orders"))).alias(f"{part}_orders_window") for part in PARTS_OF_DAY],
        *[sum_long(F.when(window, F.col(f"{c}_channel_orders"))).alias(f"{c}_orders_window") for c in CHANNELS],
        *[
            sum_long(F.when(window & (month_of_year == m), F.col("orders"))).alias(f"month_{m}_orders_window")
            for m in MONTHS_OF_YEAR
        ],
        sum_long(F.when(window, F.col("returns"))).alias("returns_window"),
        (-sum_amount(F.when(window, F.col("return_amount")))).cast(AMOUNT).alias("return_amount_window"),
        _merged_map("category_amounts", window, AMOUNT).alias("categories"),
        _merged_map("region_orders", window, "bigint").alias("regions"),
        _merged_map("store_orders", window, "bigint").alias("stores"),
    ]


def _first_top(names: list[str], values: list[Column]) -> Column:
    """The first name whose value is the largest (null when all are null)."""
    top = F.greatest(*values)
    chosen: Column = F.lit(None).cast("string")
    for name, value in reversed(list(zip(names, values, strict=True))):
        chosen = F.when(value == top, F.lit(name)).otherwise(chosen)
    return chosen


def profile_360_columns() -> list[Column]:
    """The 360° columns from :func:`profile_360_aggregates`' output, in section order."""
    orders = F.col("orders_window")
    gross = F.col("gross_spend_window")
    spend_previous = F.col("spend_previous_3_months")
    category_total = F.aggregate(F.map_values("categories"), F.lit(0).cast(AMOUNT), lambda t, v: (t + v).cast(AMOUNT))
    top_category = _top_key(F.col("categories"))
    main_region = _top_key(F.col("regions"))
    month_orders = [F.col(f"month_{m}_orders_window") for m in MONTHS_OF_YEAR]
    peak_orders = F.greatest(*month_orders)
    parts = list(PARTS_OF_DAY)
    channel_orders = [F.col(f"{c}_orders_window") for c in CHANNELS]
    channels_used = sum((F.when(c > 0, 1).otherwise(0) for c in channel_orders), F.lit(0)).cast("long")
    return [
        # relationship
        F.col("first_channel"),
        F.col("months_active_lifetime"),
        F.col("months_active_window"),
        # spend
        F.col("gross_spend_lifetime"),
        F.col("gross_spend_window"),
        F.col("max_receipt_amount_lifetime").cast(AMOUNT).alias("max_receipt_amount_lifetime"),
        F.col("max_receipt_amount_window").cast(AMOUNT).alias("max_receipt_amount_window"),
        F.col("spend_last_3_months"),
        F.col("spend_previous_3_months"),
        F.when(spend_previous > 0, F.col("spend_last_3_months").cast("double") / spend_previous.cast("double")).alias(
            "spend_trend_ratio"
        ),
        # products
        F.size(F.map_keys("categories")).cast("long").alias("categories_window"),
        top_category.alias("top_category"),
        _share(F.element_at("categories", top_category), category_total).alias("top_category_share"),
        # channels
        *[_share(F.col(f"{c}_orders_window"), orders).alias(f"{c}_order_share") for c in CHANNELS],
        channels_used.alias("channels_used_window"),
        F.when(orders > 0, channels_used >= 2).alias("is_omnichannel"),
        F.when(orders > 0, _first_top(sorted(CHANNELS), [F.col(f"{c}_orders_window") for c in sorted(CHANNELS)])).alias(
            "main_channel"
        ),
        # promotions
        F.col("coupon_orders_window"),
        _share(F.col("coupon_orders_window"), orders).alias("coupon_order_share"),
        F.col("discount_amount_window"),
        _share(F.col("discount_amount_window"), gross + F.col("discount_amount_window")).alias("discount_share"),
        # basket
        F.col("items_window"),
        _share(F.col("items_window"), orders).alias("avg_items_per_order"),
        _share(gross, F.col("items_window")).alias("avg_item_amount"),
        # time
        _share(F.col("weekend_orders_window"), orders).alias("weekend_order_share"),
        *[_share(F.col(f"{part}_orders_window"), orders).alias(f"{part}_order_share") for part in parts],
        F.when(orders > 0, _first_top(parts, [F.col(f"{part}_orders_window") for part in parts])).alias(
            "preferred_part_of_day"
        ),
        F.when(orders > 0, _first_top([str(m) for m in MONTHS_OF_YEAR], month_orders).cast("int")).alias(
            "peak_month_of_year"
        ),
        _share(peak_orders, orders).alias("peak_month_share"),
        # returns
        F.col("returns_window"),
        F.col("return_amount_window"),
        _share(F.col("returns_window"), orders).alias("return_rate_count"),
        _share(F.col("return_amount_window"), gross).alias("return_rate_amount"),
        # geography
        main_region.alias("main_region"),
        _share(F.element_at("regions", main_region), orders).alias("main_region_share"),
        F.size(F.map_keys("regions")).cast("long").alias("regions_used_window"),
        _top_key(F.col("stores")).alias("main_store"),
        F.size(F.map_keys("stores")).cast("long").alias("stores_used_window"),
    ]


DEMOGRAPHIC_COLUMNS = {
    "age_band": "string",
    "gender": "string",
    "is_loyalty_member": "boolean",
    "has_email_opt_in": "boolean",
    "home_region": "string",
}


def with_demographics(profile: DataFrame, customers: DataFrame | None, *, customer_id_case: str) -> DataFrame:
    """Add :data:`DEMOGRAPHIC_COLUMNS` from ``bronze/customers`` (all null without it).

    Customer ids are normalised as cleanse normalises receipts; when a customer was
    delivered more than once, the row ingested last wins (then the largest row_key).
    """
    if customers is None:
        return profile.withColumns({name: F.lit(None).cast(kind) for name, kind in DEMOGRAPHIC_COLUMNS.items()})
    latest = (
        customers.select(
            normalised_customer_id(F.col("customer_id"), customer_id_case).alias("customer_id"),
            F.struct(
                "age_band", "gender", "is_loyalty_member", "has_email_opt_in", F.col("region").alias("home_region")
            ).alias("attributes"),
            F.struct("ingested_at", "row_key").alias("version"),
        )
        .where(F.col("customer_id").isNotNull())
        .groupBy("customer_id")
        .agg(F.max_by("attributes", "version").alias("attributes"))
        .select("customer_id", *[F.col(f"attributes.{name}").alias(name) for name in DEMOGRAPHIC_COLUMNS])
    )
    return profile.join(latest, "customer_id", how="left")
