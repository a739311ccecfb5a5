"""Synthetic receipts and customers, Spark-native and deterministic.

The generative model (every random draw is a hash of ``seed``, the row's ids and a
salt, so the same seed gives the same data on any cluster and partitioning):

* **Acquisition.** Customer ``c`` makes a first purchase at a time ``join_c`` in the
  date range. Acquisition grows over time (offset ``= span * u^0.8``) and is
  seasonal: 30% of customers are pulled into November-December of their join year,
  so monthly cohorts differ clearly in size.
* **Dropout (Pareto/NBD-like).** Each customer stays alive for an exponential lifetime
  (mean ``mean_lifetime_days``); purchases stop at dropout or at the end of the range.
* **Purchase rates.** While alive, repeat purchases follow a Poisson process with rate
  ``lambda_c = theta * w_c * g_c``: ``w_c`` lognormal (sigma 0.6) and ``g_c`` an
  exponential (a gamma of shape 1), so rates vary over orders of magnitude. Mixing
  the Poisson count over the exponential gives a geometric count in closed form,
  ``k = floor(ln u / ln(m / (1 + m)))`` with mean ``m = theta * w_c * active_days``,
  drawn without loops. ``theta`` is calibrated by the job so the expected number of
  receipts equals the target. Customers who join late or drop out early often buy
  once: the single-purchase share is typically 30-40% (bounds tested: 25-45%).
* **Timing.** Repeat purchases are uniform over the active span (Poisson process
  given its count); 8% of customers are seasonal shoppers whose repeat purchases fall
  in one two-month season (Mar-Apr, Jun-Jul or Nov-Dec) of the year drawn. Time of
  day is skewed to the evening.
* **Spend.** Customer spend level lognormal (median 35, sigma 0.7); each receipt
  adds lognormal noise (sigma 0.35). 3% of repeat receipts are returns: a negative
  amount of 20-100% of a typical receipt, always after the customer's first purchase.
* **Context.** Preferred channel (store 55%, online 30%, app 15%; 80% of receipts
  use it), home region and store, favourite category (half the receipts), item
  counts growing with amount, discounts on 25% of purchases, coupon propensity per
  customer, 8% of receipts in USD and 4% in GBP (converted at the configured rates).

Defects (the dirty rate) are injected per receipt, each kind on its own, at the
configured rates; ``to_generator_truth`` lists every defective row and what
cleansing must do with it.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.calendar import month_of
from transforms.ingest import RECEIPT_COLUMNS

CHANNELS = ("store", "online", "app")
REGIONS = ("North", "South", "East", "West", "Central", "Capital")
CATEGORIES = (
    "grocery",
    "fresh",
    "bakery",
    "dairy",
    "beverages",
    "household",
    "personal_care",
    "baby",
    "pet",
    "home",
    "electronics",
    "apparel",
)
MAX_REPEAT_PURCHASES = 20_000
UNKNOWN_CURRENCY = "ZZZ"
UNKNOWN_CHANNEL = "fax"

# defect kind -> what cleansing must do with the row (its reject reason code)
DEFECT_OUTCOMES = {
    "null_customer": "missing_customer",
    "customer_id_variant": "normalised",
    "duplicate_row": "duplicate_row",
    "reused_receipt_id": "receipt_id_conflict",
    "future_timestamp": "future_timestamp",
    "before_business_start": "before_business_start",
    "zero_amount": "zero_amount",
    "outlier_amount": "outlier_amount",
    "unknown_currency": "unknown_currency",
    "unknown_channel": "unknown_channel",
}
# defects that add a copy of a row instead of changing it
COPY_DEFECTS = ("duplicate_row", "reused_receipt_id")


@dataclass(frozen=True)
class GeneratorParams:
    start_date: dt.date
    end_date: dt.date
    seed: int = 42
    mean_lifetime_days: float = 540.0
    defect_rates: dict[str, float] = field(default_factory=dict)
    currency_rates: dict[str, float] = field(default_factory=lambda: {"EUR": 1.0})
    base_currency: str = "EUR"

    @property
    def span_days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def ingested_at(self) -> dt.datetime:
        """Deterministic delivery time: the day after the range."""
        return dt.datetime.combine(self.end_date + dt.timedelta(days=1), dt.time())


def uniform(seed: int, salt: str, *ids: Column | str) -> Column:
    """Deterministic U(0, 1) from a 64-bit hash of seed, salt and ids (never 0 or 1).

    Seed and salt fold into one long literal: hashing a string per row costs 3x more.
    """
    stream = (seed << 32) ^ zlib.crc32(salt.encode())
    hashed = F.xxhash64(F.lit(stream), *[F.col(i) if isinstance(i, str) else i for i in ids])
    return (F.pmod(hashed, F.lit(1 << 52)).cast("double") + 0.5) / float(1 << 52)


def normal(seed: int, salt: str, *ids: Column | str) -> Column:
    """Deterministic N(0, 1) by Box-Muller on two hash uniforms."""
    u1 = uniform(seed, salt + ".1", *ids)
    u2 = uniform(seed, salt + ".2", *ids)
    return F.sqrt(-2.0 * F.log(u1)) * F.cos(2.0 * math.pi * u2)


def _pick(u: Column, values: tuple[str, ...], weights: tuple[float, ...] | None = None) -> Column:
    """values[i] with probability weights[i] (uniform when no weights)."""
    weights = weights or tuple(1.0 / len(values) for _ in values)
    total, cumulative = sum(weights), 0.0
    choice = F.when(F.lit(False), F.lit(None))
    for value, weight in zip(values[:-1], weights[:-1], strict=True):
        cumulative += weight / total
        choice = choice.when(u < cumulative, F.lit(value))
    return choice.otherwise(F.lit(values[-1]))


def to_customers(customer_ids: DataFrame, params: GeneratorParams) -> DataFrame:
    """One row per customer with its latent traits. Needs ``id`` (spark.range)."""
    seed, span = params.seed, params.span_days

    def u(salt: str) -> Column:
        return uniform(seed, salt, "id")

    start = F.lit(params.start_date)
    offset = F.floor(F.pow(u("join"), 0.8) * span).cast("int")
    natural_join = F.date_add(start, offset)
    holiday_join = F.date_add(
        F.make_date(F.year(natural_join), F.lit(11), F.lit(1)), F.floor(u("holiday") * 61).cast("int")
    )
    join_date = F.when(
        (u("is_holiday") < 0.3) & (holiday_join <= F.lit(params.end_date)) & (holiday_join >= start), holiday_join
    ).otherwise(natural_join)
    lifetime_days = -F.log(u("lifetime")) * params.mean_lifetime_days
    region_index = F.floor(u("region") * len(REGIONS)).cast("int")
    return customer_ids.select(
        "id",
        F.format_string("C%09d", "id").alias("customer_id"),
        join_date.alias("join_date"),
        lifetime_days.alias("lifetime_days"),
        (F.exp(0.6 * normal(seed, "rate", "id")) * -F.log(u("gamma"))).alias("rate_weight"),
        (F.log(F.lit(35.0)) + 0.7 * normal(seed, "spend", "id")).alias("log_spend"),
        _pick(u("channel"), CHANNELS, (0.55, 0.30, 0.15)).alias("preferred_channel"),
        F.element_at(F.array(*[F.lit(r) for r in REGIONS]), region_index + 1).alias("region"),
        F.format_string("S%03d", region_index * 10 + F.floor(u("store") * 10).cast("int")).alias("home_store_id"),
        F.format_string("W%02d", region_index).alias("web_store_id"),
        _pick(u("category"), CATEGORIES).alias("favourite_category"),
        (F.pow(u("coupon"), 3.0) * 0.6).alias("coupon_propensity"),
        F.when(
            u("seasonal") < 0.08,
            F.element_at(F.array(F.lit(3), F.lit(6), F.lit(11)), F.floor(u("season") * 3).cast("int") + 1),
        ).alias("season_start_month"),
        (1940 + F.floor(u("birth") * 67)).cast("int").alias("birth_year"),
        _pick(u("gender"), ("F", "M", "X", "unknown"), (0.50, 0.46, 0.02, 0.02)).alias("gender"),
        (u("loyalty") < 0.35).alias("is_loyalty_member"),
        (u("optin") < 0.55).alias("has_email_opt_in"),
    ).withColumn(
        "active_days", F.least(F.col("lifetime_days"), F.datediff(F.lit(params.end_date), "join_date").cast("double"))
    )


def rate_exposure(customers: DataFrame) -> DataFrame:
    """Sum over customers of rate_weight x active_days: calibrates ``theta``."""
    return customers.agg(F.sum(F.col("rate_weight") * F.col("active_days")).alias("exposure"))


def calibrate_theta(target_receipts: int, customers: int, exposure: float) -> float:
    """Rate scale so that expected receipts = customers + theta * exposure = target."""
    if exposure <= 0:
        return 0.0
    return max(target_receipts - customers, 0) / exposure


def to_customer_dimension(customers: DataFrame, params: GeneratorParams) -> DataFrame:
    """``bronze/customers`` rows (lineage included)."""
    signup = F.date_sub("join_date", F.floor(uniform(params.seed, "signup", "id") * 30).cast("int"))
    age = params.end_date.year - F.col("birth_year")
    age_band = (
        F.when(age < 25, "19-24")
        .when(age < 35, "25-34")
        .when(age < 45, "35-44")
        .when(age < 55, "45-54")
        .when(age < 65, "55-64")
        .otherwise("65+")
    )
    return customers.select(
        "customer_id",
        signup.alias("signup_date"),
        "birth_year",
        age_band.alias("age_band"),
        F.when(F.col("gender") != "unknown", F.col("gender")).alias("gender"),
        "region",
        "is_loyalty_member",
        "has_email_opt_in",
        F.create_map().cast("map<string,string>").alias("attributes"),
        F.lit(f"generate:seed={params.seed}").alias("source_file"),
        F.format_string("gen-c-%d", "id").alias("row_key"),
        F.lit(params.ingested_at).alias("ingested_at"),
    )


def to_receipts(customers: DataFrame, params: GeneratorParams, theta: float) -> DataFrame:
    """Clean receipts, one per purchase, plus the ``_defect`` draw. Grain: receipt.

    Built as a few narrow selects so each random draw and derived value is computed
    once per row (Spark keeps projections apart when collapsing would repeat work).
    """
    seed = params.seed
    mean_repeats = F.lit(theta) * F.col("rate_weight") * F.col("active_days")
    repeats = (
        F.when(
            mean_repeats > 1e-9,
            F.least(
                F.floor(F.log(uniform(seed, "count", "id")) / F.log(mean_repeats / (mean_repeats + 1))),
                F.lit(MAX_REPEAT_PURCHASES),
            ),
        )
        .otherwise(0)
        .cast("int")
    )
    exploded = customers.select("*", F.explode(F.sequence(F.lit(0), repeats)).alias("k"))

    def u(salt: str) -> Column:
        return uniform(seed, salt, "id", "k")

    draws = exploded.select(
        "*",
        *[
            u(name).alias(f"u_{name}")
            for name in (
                "when",
                "season_month",
                "season_day",
                "hour",
                "return",
                "return_share",
                "currency",
                "channel_keep",
                "channel",
                "category_keep",
                "category",
                "items",
                "discount",
                "discount_share",
                "coupon",
                "defect",
            )
        ],
        normal(seed, "amount", "id", "k").alias("z_amount"),
    )

    is_repeat = F.col("k") > 0
    day_offset = F.when(is_repeat, F.floor(F.col("u_when") * F.col("active_days")).cast("int"))
    natural_date = F.date_add("join_date", F.coalesce(day_offset, F.lit(0)))
    season_month = F.col("season_start_month") + F.floor(F.col("u_season_month") * 2).cast("int")
    seasonal_date = F.make_date(
        F.year(natural_date), season_month, (1 + F.floor(F.col("u_season_day") * 28)).cast("int")
    )
    is_seasonal = (
        is_repeat
        & F.col("season_start_month").isNotNull()
        & seasonal_date.between(F.col("join_date"), F.lit(params.end_date))
    )
    receipt_date = F.when(is_seasonal, seasonal_date).otherwise(natural_date)
    seconds_of_day = F.floor((7 + 15 * F.pow(F.col("u_hour"), 0.7)) * 3600).cast("long")
    base_amount = F.greatest(F.exp(F.col("log_spend") + 0.35 * F.col("z_amount")), F.lit(0.5))
    channel = F.when(F.col("u_channel_keep") < 0.8, F.col("preferred_channel")).otherwise(
        _pick(F.col("u_channel"), CHANNELS)
    )
    derived = draws.select(
        "*",
        receipt_date.alias("receipt_date"),
        base_amount.alias("base_amount"),
        # a return comes on a later day than the first purchase
        (is_repeat & (F.col("u_return") < 0.03) & (receipt_date > F.col("join_date"))).alias("is_return"),
        _pick(F.col("u_currency"), (params.base_currency, "USD", "GBP"), (0.88, 0.08, 0.04)).alias("currency"),
        channel.alias("channel"),
    )

    is_return = F.col("is_return")
    receipt_ts = (F.unix_timestamp(F.col("receipt_date").cast("timestamp")) + seconds_of_day).cast("timestamp")
    amount_base = F.when(is_return, -F.col("base_amount") * (0.2 + 0.8 * F.col("u_return_share"))).otherwise(
        F.col("base_amount")
    )
    rates = F.create_map(*[x for c, r in params.currency_rates.items() for x in (F.lit(c), F.lit(r))])
    amount = F.round(amount_base / F.coalesce(rates[F.col("currency")], F.lit(1.0)), 2)
    category = F.when(F.col("u_category_keep") < 0.5, F.col("favourite_category")).otherwise(
        _pick(F.col("u_category"), CATEGORIES)
    )
    item_count = 1 + F.floor(-F.log(F.col("u_items")) * F.col("base_amount") / 12.0)
    discount = F.when(
        ~is_return & (F.col("u_discount") < 0.25), F.round(F.abs(amount) * (0.05 + 0.15 * F.col("u_discount_share")), 2)
    ).otherwise(0)
    id_text, k_text = F.col("id").cast("string"), F.col("k").cast("string")
    return derived.select(
        F.concat(F.lit("R"), id_text, F.lit("-"), k_text).alias("receipt_id"),
        "customer_id",
        receipt_ts.alias("receipt_ts"),
        amount.cast("decimal(18,2)").alias("amount"),
        "currency",
        "channel",
        F.when(F.col("channel") == "store", F.col("home_store_id")).otherwise(F.col("web_store_id")).alias("store_id"),
        "region",
        category.alias("category"),
        item_count.cast("int").alias("item_count"),
        discount.cast("decimal(18,2)").alias("discount_amount"),
        (~is_return & (F.col("u_coupon") < F.col("coupon_propensity"))).alias("coupon_used"),
        F.lit(f"generate:seed={seed}").alias("source_file"),
        F.concat(F.lit("gen-"), id_text, F.lit("-"), k_text).alias("row_key"),
        F.lit(params.ingested_at).alias("ingested_at"),
        _defect_draw(F.col("u_defect"), params.defect_rates).alias("_defect"),
    )


def _defect_draw(u: Column, rates: dict[str, float]) -> Column:
    """The row's defect kind (or null): disjoint intervals of one uniform."""
    draw, low = F.when(F.lit(False), F.lit(None).cast("string")), 0.0
    for kind in DEFECT_OUTCOMES:
        rate = rates.get(kind, 0.0)
        if rate > 0:
            draw = draw.when((u >= low) & (u < low + rate), F.lit(kind))
            low += rate
    return draw


def with_defects(receipts: DataFrame, params: GeneratorParams) -> DataFrame:
    """Apply each row's ``_defect`` in one pass.

    Copy defects emit a second row (row key ``<row_key>~dup`` or ``~reuse``) that carries
    the defect; the original stays clean. A reused receipt id copy differs in amount
    and time, so it is a conflict, not an exact duplicate.
    """
    seed = params.seed
    defect = F.col("_defect")
    copies = receipts.select(
        "*",
        F.explode(F.when(defect.isin(*COPY_DEFECTS), F.array(F.lit(0), F.lit(1))).otherwise(F.array(F.lit(0)))).alias(
            "_copy"
        ),
    )
    is_copy = F.col("_copy") == 1
    kind = F.when(is_copy | ~defect.isin(*COPY_DEFECTS), defect)

    def u(salt: str) -> Column:
        return uniform(seed, salt, "row_key")

    blank_or_null = F.element_at(F.array(F.lit(None), F.lit(""), F.lit("   ")), F.floor(u("blank") * 3).cast("int") + 1)
    variant_id = F.when(u("variant") < 0.5, F.lower("customer_id")).otherwise(
        F.concat(F.lit("  "), F.col("customer_id"), F.lit(" "))
    )
    future_ts = (F.unix_timestamp(F.lit(params.ingested_at)) + F.floor(1 + u("future") * 400 * 86400)).cast("timestamp")
    ancient_ts = F.make_timestamp(
        1990 + F.floor(u("ancient") * 9).cast("int"), F.lit(6), F.lit(15), F.lit(12), F.lit(0), F.lit(0)
    )
    outlier = F.round(10_000_000 + u("outlier") * 90_000_000, 2).cast("decimal(18,2)")
    is_reuse = kind == "reused_receipt_id"
    copy_suffix = F.when(is_reuse, F.lit("~reuse")).otherwise(F.lit("~dup"))

    def changed(kinds: dict[str, Column], column: str) -> Column:
        expression = F.when(F.lit(False), F.col(column))
        for name, value in kinds.items():
            expression = expression.when(kind == name, value)
        return expression.otherwise(F.col(column)).alias(column)

    return copies.select(
        "receipt_id",
        changed({"null_customer": blank_or_null, "customer_id_variant": variant_id}, "customer_id"),
        changed(
            {
                "future_timestamp": future_ts,
                "before_business_start": ancient_ts,
                "reused_receipt_id": F.col("receipt_ts") + F.expr("INTERVAL 1 HOUR"),
            },
            "receipt_ts",
        ),
        changed(
            {
                "zero_amount": F.lit(0).cast("decimal(18,2)"),
                "outlier_amount": outlier,
                "reused_receipt_id": (F.col("amount") * 1.5 + 1).cast("decimal(18,2)"),
            },
            "amount",
        ),
        changed({"unknown_currency": F.lit(UNKNOWN_CURRENCY)}, "currency"),
        changed({"unknown_channel": F.lit(UNKNOWN_CHANNEL)}, "channel"),
        "store_id",
        "region",
        "category",
        "item_count",
        "discount_amount",
        "coupon_used",
        "source_file",
        F.when(is_copy, F.concat("row_key", copy_suffix)).otherwise(F.col("row_key")).alias("row_key"),
        "ingested_at",
        kind.alias("_defect"),
    )


def to_bronze_receipts(receipts: DataFrame) -> DataFrame:
    """The ``bronze/receipts`` columns, partition column last."""
    return receipts.select(
        *RECEIPT_COLUMNS,
        "source_file",
        "row_key",
        "ingested_at",
        F.lit(None).cast("string").alias("raw_record"),
        F.lit(None).cast("string").alias("parse_errors"),
        F.coalesce(month_of("receipt_ts"), F.lit("unknown")).alias("receipt_month"),
    )


def to_generator_truth(receipts: DataFrame) -> DataFrame:
    """One row per defective row: row_key, defect, expected_outcome."""
    outcomes = F.create_map(*[F.lit(x) for pair in DEFECT_OUTCOMES.items() for x in pair])
    return receipts.where(F.col("_defect").isNotNull()).select(
        "row_key", F.col("_defect").alias("defect"), outcomes[F.col("_defect")].alias("expected_outcome")
    )
