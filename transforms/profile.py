"""The 360° part of the customer profile: channels, products, promotions, basket, time,
returns, geography and demographics, derived from the ``customer_month`` rollup.

``month_360_aggregates`` are the monthly values ``silver/customer_month`` keeps for this
(purchases only: receipts with amount > 0). All of them merge exactly across months:
counts and amounts add, maxima take the max, ``first_purchase_channel`` follows the
earliest ``first_purchase_ts``, and the per-key maps (orders per channel, region and
store; purchase amount per category) add key by key.

``to_profile_360`` merges them per customer over two spans, cut exactly like the core
profile (see ``transforms/features.py``): *lifetime* = every receipt dated <= D, and the
*window* ``(D-W, D]``. Whole months come from the rollup; the (at most two) months that
the window start or D cut are rolled up again from their receipts, filtered to the
span. Hours, weekdays and calendar months are read in the session time zone
(``spark.timezone``), like every date in the lake.

Window shares and rates are null when the customer has no purchase in the window
(frequency 0); counts are 0 then. Ties for a "main" or "top" key go to the smallest key
in text order; ties for the peak month to the earliest month of the year; ties for the
part of day to the earlier part (night, morning, afternoon, evening).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

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
    "first_purchase_channel", "max_receipt_amount", "coupon_orders", "discount_amount", "items",
    "weekend_orders", *(f"{part}_orders" for part in PARTS_OF_DAY),
    "channel_orders", "category_amounts", "region_orders", "store_orders",
)  # fmt: skip


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
        F.coalesce(F.sum(purchases(F.col("discount_amount"))), F.lit(0).cast(AMOUNT))
        .cast(AMOUNT)
        .alias("discount_amount"),
        F.coalesce(F.sum(purchases(F.col("item_count"))), F.lit(0)).cast("long").alias("items"),
        F.count(F.when(is_purchase & F.dayofweek("receipt_ts").isin(1, 7), 1)).alias("weekend_orders"),
        *part_counts,
        _key_counts(F.collect_list(purchases(F.col("channel")))).alias("channel_orders"),
        _key_amounts(
            F.collect_list(purchases(F.struct(F.col("category").alias("key"), F.col("amount").alias("amount"))))
        ).alias("category_amounts"),
        _key_counts(F.collect_list(purchases(F.col("region")))).alias("region_orders"),
        _key_counts(F.collect_list(purchases(F.col("store_id")))).alias("store_orders"),
    ]


def trend_months(last_whole_month: str) -> tuple[list[str], list[str]]:
    """The 3 calendar months ending with ``last_whole_month`` (``YYYY-MM``) and the 3 before."""
    year, month = (int(part) for part in last_whole_month.split("-"))
    labels = []
    for back in range(6):
        index = year * 12 + (month - 1) - back
        labels.append(f"{index // 12:04d}-{index % 12 + 1:02d}")
    return labels[:3], labels[3:]


def _merged_map(column: str, when: Column, value_type: str, *, key_type: str = "string") -> Column:
    """Key-by-key sum of the map ``column`` over the group's rows where ``when`` holds."""
    empty = F.create_map().cast(f"map<{key_type},{value_type}>")
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


def _span_rows(
    customer_month: DataFrame,
    receipts: DataFrame,
    *,
    window_start: dt.date,
    as_of: dt.date,
    last_whole_month: str,
    first_whole_window_month: str,
    cut_months: list[str],
) -> DataFrame:
    """Monthly rows, each flagged ``is_lifetime`` / ``is_window`` / ``is_rollup``.

    Rollup months up to the last whole month count for the lifetime, those wholly inside
    the window for the window too. The cut months are rolled up from their receipts in
    parts: dated <= D and in D's month (lifetime), and inside [window start, D] (window).
    """
    as_of_month = f"{as_of:%Y-%m}"
    month_values = ("orders", "returns", "purchase_amount", "return_amount", "net_amount", "first_purchase_ts")
    whole = customer_month.where(F.col("month") <= last_whole_month).select(
        "customer_id",
        "month",
        F.lit(True).alias("is_lifetime"),
        (F.col("month") >= first_whole_window_month).alias("is_window"),
        F.lit(True).alias("is_rollup"),
        *month_values,
        *MONTH_360_COLUMNS,
    )
    receipt_date = F.to_date("receipt_ts")
    cut = (
        receipts.where(F.col("receipt_month").isin(cut_months))
        .where(receipt_date <= F.lit(as_of))
        .withColumns(
            {
                "month": F.date_format(receipt_date, "yyyy-MM"),
                "is_lifetime": F.date_format(receipt_date, "yyyy-MM") == F.lit(as_of_month)
                if as_of_month > last_whole_month
                else F.lit(False),
                "is_window": receipt_date >= F.lit(window_start),
            }
        )
        .where(F.col("is_lifetime") | F.col("is_window"))
    )
    is_purchase, is_return = F.col("amount") > 0, F.col("amount") < 0
    cut_rows = cut.groupBy("customer_id", "month", "is_lifetime", "is_window").agg(
        F.lit(False).alias("is_rollup"),
        F.count(F.when(is_purchase, 1)).alias("orders"),
        F.count(F.when(is_return, 1)).alias("returns"),
        sum_amount(F.when(is_purchase, F.col("amount"))).alias("purchase_amount"),
        sum_amount(F.when(is_return, F.col("amount"))).alias("return_amount"),
        F.sum("amount").cast(AMOUNT).alias("net_amount"),
        F.min(F.when(is_purchase, F.col("receipt_ts"))).alias("first_purchase_ts"),
        *month_360_aggregates(),
    )
    return whole.unionByName(cut_rows)


def to_profile_360(
    customer_month: DataFrame,
    receipts: DataFrame,
    *,
    as_of: dt.date,
    window_start: dt.date,
    last_whole_month: str,
    first_whole_window_month: str,
    cut_months: list[str],
) -> DataFrame:
    """Grain: customer (with any receipt up to D). The 360° columns; see the module docstring.

    Takes the period as plain values (``transforms.features.ProfilePeriod`` has them).
    """
    rows = _span_rows(
        customer_month,
        receipts,
        window_start=window_start,
        as_of=as_of,
        last_whole_month=last_whole_month,
        first_whole_window_month=first_whole_window_month,
        cut_months=cut_months,
    ).withColumn("month_orders", F.create_map(F.substring("month", 6, 2).cast("int"), F.col("orders")))
    lifetime, window = F.col("is_lifetime"), F.col("is_window")
    has_orders = F.col("orders") > 0
    last_3, previous_3 = trend_months(last_whole_month)
    in_trend = lifetime & F.col("is_rollup")
    merged = rows.groupBy("customer_id").agg(
        # lifetime
        F.min_by("first_purchase_channel", F.when(lifetime & has_orders, F.col("first_purchase_ts"))).alias(
            "first_channel"
        ),
        F.size(F.collect_set(F.when(lifetime & has_orders, F.col("month"))))
        .cast("long")
        .alias("months_active_lifetime"),
        sum_amount(F.when(lifetime, F.col("purchase_amount"))).alias("gross_spend_lifetime"),
        F.max(F.when(lifetime, F.col("max_receipt_amount"))).alias("max_receipt_amount_lifetime"),
        sum_amount(F.when(in_trend & F.col("month").isin(last_3), F.col("net_amount"))).alias("spend_last_3_months"),
        sum_amount(F.when(in_trend & F.col("month").isin(previous_3), F.col("net_amount"))).alias(
            "spend_previous_3_months"
        ),
        # window
        sum_long(F.when(window, F.col("orders"))).alias("orders_window"),
        F.size(F.collect_set(F.when(window & has_orders, F.col("month")))).cast("long").alias("months_active_window"),
        sum_amount(F.when(window, F.col("purchase_amount"))).alias("gross_spend_window"),
        F.max(F.when(window, F.col("max_receipt_amount"))).alias("max_receipt_amount_window"),
        sum_long(F.when(window, F.col("coupon_orders"))).alias("coupon_orders_window"),
        sum_amount(F.when(window, F.col("discount_amount"))).alias("discount_amount_window"),
        sum_long(F.when(window, F.col("items"))).alias("items_window"),
        sum_long(F.when(window, F.col("weekend_orders"))).alias("weekend_orders_window"),
        *[sum_long(F.when(window, F.col(f"{part}_orders"))).alias(f"{part}_orders_window") for part in PARTS_OF_DAY],
        sum_long(F.when(window, F.col("returns"))).alias("returns_window"),
        (-sum_amount(F.when(window, F.col("return_amount")))).cast(AMOUNT).alias("return_amount_window"),
        _merged_map("channel_orders", window, "bigint").alias("channels"),
        _merged_map("category_amounts", window, AMOUNT).alias("categories"),
        _merged_map("region_orders", window, "bigint").alias("regions"),
        _merged_map("store_orders", window, "bigint").alias("stores"),
        _merged_map("month_orders", window & has_orders, "bigint", key_type="int").alias("months_of_year"),
    )
    orders = F.col("orders_window")
    gross = F.col("gross_spend_window")
    spend_previous = F.col("spend_previous_3_months")
    category_total = F.aggregate(F.map_values("categories"), F.lit(0).cast(AMOUNT), lambda t, v: (t + v).cast(AMOUNT))
    top_category = _top_key(F.col("categories"))
    main_region = _top_key(F.col("regions"))
    peak_orders = F.array_max(F.map_values("months_of_year"))
    parts = list(PARTS_OF_DAY)
    part_top = F.greatest(*[F.col(f"{part}_orders_window") for part in parts])
    preferred_part: Column = F.lit(None).cast("string")
    for part in reversed(parts):  # the earliest part with the most orders
        preferred_part = F.when(F.col(f"{part}_orders_window") == part_top, F.lit(part)).otherwise(preferred_part)
    channels_used = F.size(F.map_keys("channels")).cast("long")
    return merged.select(
        "customer_id",
        # relationship
        "first_channel",
        "months_active_lifetime",
        "months_active_window",
        # spend
        "gross_spend_lifetime",
        "gross_spend_window",
        F.col("max_receipt_amount_lifetime").cast(AMOUNT).alias("max_receipt_amount_lifetime"),
        F.col("max_receipt_amount_window").cast(AMOUNT).alias("max_receipt_amount_window"),
        "spend_last_3_months",
        "spend_previous_3_months",
        F.when(spend_previous > 0, F.col("spend_last_3_months").cast("double") / spend_previous.cast("double")).alias(
            "spend_trend_ratio"
        ),
        # products
        F.size(F.map_keys("categories")).cast("long").alias("categories_window"),
        top_category.alias("top_category"),
        _share(F.element_at("categories", top_category), category_total).alias("top_category_share"),
        # channels
        *[
            F.when(orders > 0, _share(F.coalesce(F.element_at("channels", F.lit(c)), F.lit(0)), orders)).alias(
                f"{c}_order_share"
            )
            for c in CHANNELS
        ],
        channels_used.alias("channels_used_window"),
        F.when(orders > 0, channels_used >= 2).alias("is_omnichannel"),
        _top_key(F.col("channels")).alias("main_channel"),
        # promotions
        "coupon_orders_window",
        _share(F.col("coupon_orders_window"), orders).alias("coupon_order_share"),
        "discount_amount_window",
        _share(F.col("discount_amount_window"), gross + F.col("discount_amount_window")).alias("discount_share"),
        # basket
        "items_window",
        _share(F.col("items_window"), orders).alias("avg_items_per_order"),
        _share(gross, F.col("items_window")).alias("avg_item_amount"),
        # time
        _share(F.col("weekend_orders_window"), orders).alias("weekend_order_share"),
        *[_share(F.col(f"{part}_orders_window"), orders).alias(f"{part}_order_share") for part in parts],
        F.when(orders > 0, preferred_part).alias("preferred_part_of_day"),
        F.array_min(
            F.filter(F.map_keys("months_of_year"), lambda m: F.element_at("months_of_year", m) == peak_orders)
        ).alias("peak_month_of_year"),
        _share(peak_orders, orders).alias("peak_month_share"),
        # returns
        "returns_window",
        "return_amount_window",
        _share(F.col("returns_window"), orders).alias("return_rate_count"),
        _share(F.col("return_amount_window"), gross).alias("return_rate_amount"),
        # geography
        main_region.alias("main_region"),
        _share(F.element_at("regions", main_region), orders).alias("main_region_share"),
        F.size(F.map_keys("regions")).cast("long").alias("regions_used_window"),
        _top_key(F.col("stores")).alias("main_store"),
        F.size(F.map_keys("stores")).cast("long").alias("stores_used_window"),
    )


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
                "age_band",
                "gender",
                "is_loyalty_member",
                "has_email_opt_in",
                F.col("region").alias("home_region"),
            ).alias("attributes"),
            F.struct("ingested_at", "row_key").alias("version"),
        )
        .where(F.col("customer_id").isNotNull())
        .groupBy("customer_id")
        .agg(F.max_by("attributes", "version").alias("attributes"))
        .select("customer_id", *[F.col(f"attributes.{name}").alias(name) for name in DEMOGRAPHIC_COLUMNS])
    )
    return profile.join(latest, "customer_id", how="left")
