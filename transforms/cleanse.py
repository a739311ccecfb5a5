"""Cleansing: bronze receipts -> valid canonical receipts, or quarantine with a reason.

Every row gets exactly one outcome. Rules are checked in the order of ``REASONS``
and the first that matches names the reason; rows that pass every rule are then
de-duplicated per receipt id against each other and against receipts already in
silver. The winner of a receipt id is the receipt already in silver, else the row
ingested first (ties: the smallest ``row_key``). Another row with the same content
(after normalising) is a ``duplicate_row``; one with different content is a
``receipt_id_conflict``. Returns (negative amounts) are valid receipts.

Money stays decimal: an amount (``decimal(18,2)``) times its currency's rate
(``decimal(19,12)``) is exact in ``decimal(38,14)`` and is rounded once, half away from
zero (HALF_UP), to cents in the base currency. ``zero_amount`` judges that converted
amount, so a tiny amount in a low-value currency that rounds to 0.00 is quarantined.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.calendar import month_of

# reason code -> what it means (also the ops/data_quality check names), in rule order
REASONS: dict[str, str] = {
    "malformed_row": "the source row did not parse: wrong column count, or a bad value other than "
    "the timestamp and amounts (checked first for a wrong column count, last otherwise)",
    "unparseable_timestamp": "the source timestamp did not parse",
    "unparseable_amount": "the source amount or discount did not parse",
    "missing_receipt_id": "no receipt id",
    "missing_customer": "no customer id (null, empty or blank)",
    "excluded_account": "customer id on the configured exclusion list (test/staff)",
    "missing_timestamp": "no timestamp",
    "missing_amount": "no amount",
    "future_timestamp": "timestamp later than the row's ingestion (plus tolerance)",
    "before_business_start": "timestamp before the configured business start",
    "unknown_currency": "currency without a configured rate",
    "zero_amount": "amount is zero in base currency (0.00 after conversion and rounding to cents)",
    "outlier_amount": "|amount| in base currency above the configured bound",
    "unknown_channel": "channel not in the configured vocabulary",
    "duplicate_row": "same receipt id and content as a receipt kept",
    "receipt_id_conflict": "receipt id already kept with different content",
}

AMOUNT_TYPE = "decimal(18,2)"
# 7 integer digits and 12 decimals: decimal(18,2) x decimal(19,12) is exact in decimal(38,14)
RATE_TYPE = "decimal(19,12)"  # seglake's config refuses a rate that does not fit (RATE_MAX, RATE_MAX_DECIMALS)


@dataclass(frozen=True)
class CleanseRules:
    business_start: dt.date
    future_tolerance_hours: float
    outlier_amount: float
    currency_rates: dict[str, Decimal]  # floats are read as their shortest text (0.92 -> Decimal("0.92"))
    channels: dict[str, list[str]]
    excluded_customers: tuple[str, ...] = ()
    customer_id_case: str = "upper"
    extra: dict[str, str] = field(default_factory=dict)


def normalised_customer_id(column: Column, case: str) -> Column:
    """Trimmed, case-folded id; empty becomes null."""
    trimmed = F.trim(column)
    folded = F.upper(trimmed) if case == "upper" else F.lower(trimmed)
    return F.when(trimmed != "", folded)


def rate_literal(rate: Decimal | float) -> Column:
    """A currency rate as a ``decimal(19,12)`` literal (a float through its text, never its binary value)."""
    return F.lit(Decimal(str(rate))).cast(RATE_TYPE)


def base_amount(amount: Column, rate: Column) -> Column:
    """``amount`` (cents) x ``rate``, exact, rounded once half away from zero to cents.

    The result is ``decimal(27,2)`` so that an absurd amount is an outlier rather than an
    overflow; silver casts the amounts it keeps to ``decimal(18,2)``.
    """
    return F.round(amount.cast(AMOUNT_TYPE) * rate, 2)


def _has_parse_error(column: str) -> Column:
    return F.array_contains(F.split(F.coalesce("parse_errors", F.lit("")), ","), column)


def with_normalised_values(bronze: DataFrame, rules: CleanseRules) -> DataFrame:
    """Add the normalised values the rules and silver use (``_``-prefixed)."""
    channel_words = {
        word.strip().lower(): canonical for canonical, words in rules.channels.items() for word in [canonical, *words]
    }
    channel_map = F.create_map(*[F.lit(x) for pair in channel_words.items() for x in pair])
    rates = rules.currency_rates.items()
    rate_map = F.create_map(*[c for code, rate in rates for c in (F.lit(code), rate_literal(rate))])
    currency = F.upper(F.trim("currency"))
    rate = rate_map[currency]
    return bronze.withColumns(
        {
            "_customer_id": normalised_customer_id(F.col("customer_id"), rules.customer_id_case),
            "_currency": currency,
            "_channel": channel_map[F.lower(F.trim("channel"))],
            "_rate": rate,
            "_amount": base_amount(F.col("amount"), rate),
            "_discount": base_amount(F.coalesce("discount_amount", F.lit(Decimal("0.00"))), rate),
        }
    )


def with_reject_reason(normalised: DataFrame, rules: CleanseRules) -> DataFrame:
    """Add ``reject_reason`` (first failing rule, null when clean) and ``reject_detail``."""
    ts, amount = F.col("receipt_ts"), F.col("amount")
    latest = F.col("ingested_at") + F.expr(f"INTERVAL {round(rules.future_tolerance_hours * 3600)} SECONDS")
    excluded = [
        e.strip().upper() if rules.customer_id_case == "upper" else e.strip().lower() for e in rules.excluded_customers
    ]
    text = F.coalesce  # short alias for details

    malformed = F.concat(F.lit("did not parse: "), F.col("parse_errors"), F.lit(" in "), text("raw_record", F.lit("?")))
    checks: list[tuple[str, Column, Column]] = [
        # ingest lists receipt_id (a text column) only when the row had the wrong column count
        ("malformed_row", _has_parse_error("receipt_id"), malformed),
        (
            "unparseable_timestamp",
            _has_parse_error("receipt_ts"),
            F.concat(F.lit("receipt_ts did not parse: "), text("raw_record", F.lit("?"))),
        ),
        (
            "unparseable_amount",
            _has_parse_error("amount") | _has_parse_error("discount_amount"),
            F.concat(F.lit("amount did not parse: "), text("raw_record", F.lit("?"))),
        ),
        ("malformed_row", F.col("parse_errors").isNotNull(), malformed),
        ("missing_receipt_id", F.trim(text("receipt_id", F.lit(""))) == "", F.lit("receipt_id is empty")),
        ("missing_customer", F.col("_customer_id").isNull(), F.lit("customer_id is null or blank")),
        (
            "excluded_account",
            F.col("_customer_id").isin(*excluded) if excluded else F.lit(False),
            F.concat(F.lit("customer "), F.col("_customer_id"), F.lit(" is excluded")),
        ),
        ("missing_timestamp", ts.isNull(), F.lit("receipt_ts is null")),
        ("missing_amount", amount.isNull(), F.lit("amount is null")),
        (
            "future_timestamp",
            ts > latest,
            F.concat(
                F.lit("receipt_ts "),
                ts.cast("string"),
                F.lit(" after ingested_at "),
                F.col("ingested_at").cast("string"),
            ),
        ),
        (
            "before_business_start",
            ts < F.lit(rules.business_start),
            F.concat(F.lit("receipt_ts "), ts.cast("string"), F.lit(f" before business start {rules.business_start}")),
        ),
        (
            "unknown_currency",
            F.col("_rate").isNull(),
            F.concat(F.lit("currency "), text("currency", F.lit("null")), F.lit(" has no rate")),
        ),
        (
            "zero_amount",
            F.col("_amount") == 0,
            F.concat(
                F.lit("amount "),
                amount.cast("string"),
                F.lit(" "),
                F.col("_currency"),
                F.lit(" is 0.00 in base currency"),
            ),
        ),
        (
            "outlier_amount",
            F.abs("_amount") > F.lit(Decimal(str(rules.outlier_amount))),
            F.concat(F.lit("amount "), F.col("_amount").cast("string"), F.lit(f" beyond +-{rules.outlier_amount:g}")),
        ),
        (
            "unknown_channel",
            F.col("_channel").isNull(),
            F.concat(F.lit("channel "), text("channel", F.lit("null")), F.lit(" is not mapped")),
        ),
    ]
    reason: Column = F.lit(None).cast("string")
    detail: Column = F.lit(None).cast("string")
    for code, failed, why in reversed(checks):
        reason = F.when(failed, F.lit(code)).otherwise(reason)
        detail = F.when(failed, why).otherwise(detail)
    return normalised.withColumns({"reject_reason": reason, "reject_detail": detail})


# What makes two rows of one receipt id the same receipt: each receipt column of silver but
# the id, from the checked row's column (its value as compared: :func:`_as_compared`), and the
# silver column that supplies it for the rows already kept.
CONTENT_OF_CHECKED: dict[str, str] = {
    "_customer_id": "customer_id",
    "receipt_ts": "receipt_ts",
    "_amount": "amount",
    "_currency": "currency",
    "_channel": "channel",
    "store_id": "store_id",
    "region": "region",
    "category": "category",
    "item_count": "item_count",
    "_discount": "discount_amount",
    "coupon_used": "coupon_used",
}


def _as_compared(name: str) -> Column:
    """A content value as silver would hold it (amounts in cents; a missing coupon flag is false)."""
    if name in ("_amount", "_discount"):
        return F.col(name).cast(AMOUNT_TYPE)
    if name == "coupon_used":
        return F.coalesce(F.col(name), F.lit(False))
    return F.col(name)


def with_duplicate_reasons(
    checked: DataFrame, kept: DataFrame | None, *, few: bool = False, partitions: int | None = None
) -> DataFrame:
    """Mark duplicates and receipt id conflicts among rows that passed the rules.

    ``kept`` is silver (canonical columns) for the receipt ids at stake; its rows win.
    One shuffle: a window partitioned by receipt id (into ``partitions`` when given, else
    ``spark.sql.shuffle.partitions``). ``few``: the rows checked are few against ``kept``
    (an incremental run's new rows), so their receipt ids are broadcast to pick silver's
    rows at stake while it is scanned, rather than shuffling all of silver.
    """
    candidates = checked.where(F.col("reject_reason").isNull()).withColumn("_is_kept", F.lit(False))
    if kept is not None:
        ids = candidates.select("receipt_id").distinct()
        existing = kept.join(F.broadcast(ids) if few else ids, "receipt_id", "left_semi")
        types = dict(candidates.dtypes)
        candidates = candidates.unionByName(
            existing.select(
                "receipt_id",
                "ingested_at",
                "row_key",
                F.lit(True).alias("_is_kept"),
                *[F.col(source).cast(types[name]).alias(name) for name, source in CONTENT_OF_CHECKED.items()],
            ),
            allowMissingColumns=True,
        )
    # The content struct is built after the exchange: the shuffle carries each row's columns once.
    shuffled = candidates.repartition(partitions, "receipt_id") if partitions else candidates.repartition("receipt_id")
    with_content = shuffled.withColumn(
        "_content", F.struct(*[_as_compared(name).alias(name) for name in CONTENT_OF_CHECKED])
    )
    by_receipt = (
        Window.partitionBy("receipt_id")
        .orderBy(F.desc("_is_kept"), "ingested_at", "row_key")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    ranked = with_content.withColumns(
        {
            "_rank": F.row_number().over(by_receipt),
            "_winner": F.first("_content").over(by_receipt),
            "_winner_key": F.first("row_key").over(by_receipt),
        }
    ).where(~F.col("_is_kept"))
    same_content = F.col("_content") == F.col("_winner")  # field by field, a null equal to a null
    is_duplicate = (F.col("_rank") > 1) & same_content
    is_conflict = (F.col("_rank") > 1) & ~same_content
    deduplicated = ranked.withColumns(
        {
            "reject_reason": F.when(is_duplicate, F.lit("duplicate_row")).when(
                is_conflict, F.lit("receipt_id_conflict")
            ),
            "reject_detail": F.when(
                F.col("_rank") > 1,
                F.concat(F.lit("receipt_id "), F.col("receipt_id"), F.lit(" kept as row "), F.col("_winner_key")),
            ),
        }
    ).drop("_is_kept", "_content", "_rank", "_winner", "_winner_key")
    rejected = checked.where(F.col("reject_reason").isNotNull())
    return rejected.unionByName(deduplicated)


def to_silver_receipts(classified: DataFrame, run_id: str) -> DataFrame:
    """Canonical receipts (amounts in base currency) from the rows without a reason."""
    return classified.where(F.col("reject_reason").isNull()).select(
        "receipt_id",
        F.col("_customer_id").alias("customer_id"),
        "receipt_ts",
        F.col("_amount").cast(AMOUNT_TYPE).alias("amount"),
        F.col("_currency").alias("currency"),
        F.col("_channel").alias("channel"),
        F.trim("store_id").alias("store_id"),
        F.trim("region").alias("region"),
        F.trim("category").alias("category"),
        "item_count",
        F.col("_discount").cast(AMOUNT_TYPE).alias("discount_amount"),
        F.coalesce("coupon_used", F.lit(False)).alias("coupon_used"),
        "source_file",
        "row_key",
        "ingested_at",
        F.lit(run_id).alias("cleanse_run_id"),
        month_of("receipt_ts").alias("receipt_month"),
    )


def to_quarantine(classified: DataFrame, bronze_columns: list[str], run_id: str, at: dt.datetime) -> DataFrame:
    """Every rejected row with all its source columns, the reason and the run."""
    return classified.where(F.col("reject_reason").isNotNull()).select(
        *bronze_columns,
        "reject_reason",
        "reject_detail",
        F.lit(run_id).alias("cleanse_run_id"),
        F.lit(at).alias("quarantined_at"),
    )


def to_reason_counts(classified: DataFrame) -> DataFrame:
    """Rows per outcome: ``reject_reason`` null is the clean count."""
    return classified.groupBy("reject_reason").agg(F.count("*").alias("rows"))
