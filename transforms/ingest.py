"""Any receipt source -> ``bronze/receipts`` (and ``bronze/customers``), by a column mapping.

The source arrives with every column as text (plus ``_corrupt_record`` for rows the
reader could not split, and ``_source_file``). Each canonical column is taken from a
source column, a Spark SQL expression or a constant, then parsed with ``try_*``
functions: nothing raises and no row is dropped. A value that is present but does not
parse becomes null and its canonical column name goes into ``parse_errors``; the row
keeps its source text in ``raw_record`` so cleansing can quarantine it.

Line-grain sources are rolled up to one receipt per (source file, receipt id):

* amount, item_count (quantities) and discount_amount are sums over the lines;
  coupon_used is true if any line used one; receipt_ts is the earliest line time;
  customer, store, region, channel and currency are the smallest non-null value.
* category is the category with the largest absolute amount on the receipt, ties to
  the alphabetically first; lines without a category lose to any named one.
* A bad line does not drop or split its receipt: the receipt is rolled up from what
  parsed, carries the union of the lines' ``parse_errors`` and the bad lines' text
  (newline-separated, sorted) in ``raw_record``, so cleansing quarantines it whole.
  Lines that disagree on the customer add ``customer_id`` to ``parse_errors``.
* Lines matching the mapping's ``exclude_lines`` are left out of their receipt (a
  malformed line is never excluded) and counted; a receipt made only of excluded
  lines is not written, and counted too.

Row keys (lineage, idempotent re-ingest): ``<mapping>:<file name>:<receipt id>`` for
rolled-up receipts; ``<mapping>:<file name>:<hash of row text and occurrence>`` for
receipt-grain rows and customers, so identical source rows still get distinct keys.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from transforms.calendar import month_of

W = Window
# canonical receipt columns a source may fill (bronze/receipts minus lineage), in order
RECEIPT_COLUMNS = (
    "receipt_id",
    "customer_id",
    "receipt_ts",
    "amount",
    "currency",
    "channel",
    "store_id",
    "region",
    "category",
    "item_count",
    "discount_amount",
    "coupon_used",
)
CORRUPT_COLUMN = "_corrupt_record"  # the reader's column for rows it could not split
SOURCE_FILE = "_source_file"
RAW_TEXT = "_raw_text"
STRING_COLUMNS = ("receipt_id", "customer_id", "currency", "channel", "store_id", "region", "category")
WIDE_DECIMAL = "decimal(38,6)"  # line values before the rollup rounds to cents
NO_RECEIPT_ID = "~no-receipt-id"
BRONZE_RECEIPT_COLUMNS = (
    *RECEIPT_COLUMNS,
    "source_file",
    "row_key",
    "ingested_at",
    "raw_record",
    "parse_errors",
    "receipt_month",
)
ACCOUNTING_COLUMNS = ("lines_in", "lines_excluded", "lines_malformed", "is_written")

Constant = str | int | float | bool


@dataclass(frozen=True, eq=False)
class SourceColumns:
    """Where each canonical value comes from: a source column or Spark SQL expression
    (``values``), else a constant; ``used`` names the source columns taken by name."""

    values: Mapping[str, Column]
    constants: Mapping[str, Constant] = field(default_factory=dict)
    used: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SourceTime:
    """How receipt_ts text reads: a Spark datetime pattern (None: ISO-8601 forms), the zone of
    the source's local times, and whether the pattern parses an offset itself."""

    format: str | None
    time_zone: str = "UTC"
    has_zone: bool = False


@dataclass(frozen=True, eq=False)
class ReceiptSource:
    """What the receipt transforms need of a column mapping (built from it by the ingest job)."""

    name: str
    columns: SourceColumns
    time: SourceTime
    line_grain: bool = False
    exclude_lines: str | None = None


@dataclass(frozen=True, eq=False)
class CustomerSource:
    """What :func:`to_bronze_customers` needs of a mapping's ``customers`` section."""

    columns: SourceColumns
    attributes: tuple[str, ...] | None = None
    date_format: str = "yyyy-MM-dd"


# --- column functions -------------------------------------------------------------


def is_blank(text: Column) -> Column:
    return text.isNull() | (F.trim(text) == "")


def decimal_value(text: Column) -> Column:
    """Text -> decimal(38,6); null when it does not parse."""
    return F.trim(text).try_cast(WIDE_DECIMAL)


def boolean_value(text: Column) -> Column:
    """true/t/yes/y/false/f/no/n (any case), or a number: non-zero is true."""
    word = F.lower(F.trim(text))
    return (
        F.when(word.isin("true", "t", "yes", "y"), F.lit(True))
        .when(word.isin("false", "f", "no", "n"), F.lit(False))
        .otherwise(decimal_value(text) != 0)
    )


def utc_timestamp(text: Column, spec: SourceTime) -> Column:
    """Local time text in ``spec.time_zone`` -> the instant (UTC), whatever the session zone.

    The text is first read as if it were UTC (the appended zone makes this independent
    of the session time zone), then ``to_utc_timestamp`` shifts it from the source zone.
    """
    if spec.has_zone:
        return F.try_to_timestamp(text, F.lit(spec.format))
    if spec.format:
        as_utc = F.try_to_timestamp(F.concat(text, F.lit(" UTC")), F.lit(f"{spec.format} VV"))
    else:
        as_utc = F.concat(F.trim(text), F.lit("Z")).try_cast("timestamp")
    return F.to_utc_timestamp(as_utc, spec.time_zone)


def file_name(path: Column) -> Column:
    return F.element_at(F.split(path, "/"), -1)


# --- lines ------------------------------------------------------------------------


def with_raw_text(source: DataFrame, *, text_format: str) -> DataFrame:
    """Add ``_raw_text``: the reader's raw line for malformed rows, else the row re-encoded
    (CSV for CSV sources, JSON otherwise). Computed before lookups join in."""
    columns = [c for c in source.columns if c not in (CORRUPT_COLUMN, SOURCE_FILE)]
    record = F.struct(*[F.col(f"`{c}`") for c in columns])
    encoded = F.to_csv(record) if text_format == "csv" else F.to_json(record)
    return source.withColumn(RAW_TEXT, F.coalesce(F.col(CORRUPT_COLUMN), encoded))


def with_lookup(lines: DataFrame, lookup: DataFrame, *, key: str, columns: list[str]) -> DataFrame:
    """Left join lookup ``columns`` on ``key``; a key listed twice keeps its smallest values."""
    one_per_key = lookup.groupBy(key).agg(*[F.min(f"`{c}`").alias(c) for c in columns])
    return lines.join(one_per_key, on=key, how="left")


def _mapped(name: str, columns: SourceColumns) -> Column | None:
    if name in columns.values:
        return columns.values[name]
    if name in columns.constants:
        value = columns.constants[name]
        return F.lit(str(value).lower() if isinstance(value, bool) else str(value))
    return None


def _as_text(frame: DataFrame, value: Column) -> Column:
    """The value as text; timestamps and dates as ISO text (no zone)."""
    data_type = frame.select(value.alias("v")).schema[0].dataType
    if isinstance(data_type, T.StringType):
        return value
    if isinstance(data_type, T.TimestampNTZType | T.DateType | T.TimestampType):
        return F.date_format(value, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
    return value.cast("string")


def to_parsed_lines(lines: DataFrame, source: ReceiptSource) -> DataFrame:
    """Grain: source row. Canonical values parsed (wide decimals, quantity not rounded),
    ``_errors`` (canonical names in canonical order), ``_is_malformed``, ``_is_excluded``."""
    cols, consts = source.columns.values, source.columns.constants

    def text_of(name: str) -> Column | None:
        value = _mapped(name, source.columns)
        return None if value is None else _as_text(lines, value)

    texts = {name: text_of(name) for name in (*RECEIPT_COLUMNS, "quantity", "unit_price")}
    values: dict[str, Column] = {}
    failed: dict[str, Column] = {}  # canonical column -> its source value did not parse

    def parse(name: str, parsed: Column) -> None:
        text = texts[name]
        values[name] = parsed
        failed[name] = ~is_blank(text) & parsed.isNull()  # type: ignore[arg-type]

    for name in STRING_COLUMNS:
        text = texts[name]
        values[name] = F.lit(None).cast("string") if text is None else text
    ts_value, ts_text = _mapped("receipt_ts", source.columns), texts["receipt_ts"]
    if ts_value is None or ts_text is None:
        raise ValueError(f"{source.name}: a receipt source must map receipt_ts")
    ts_type = lines.select(ts_value.alias("v")).schema[0].dataType
    if isinstance(ts_type, T.TimestampType):  # an instant already
        values["receipt_ts"], failed["receipt_ts"] = ts_value, F.lit(False)
    else:
        iso = isinstance(ts_type, T.TimestampNTZType | T.DateType)
        spec = SourceTime(format=None, time_zone=source.time.time_zone) if iso else source.time
        parse("receipt_ts", utc_timestamp(ts_text, spec))
    for name in ("amount", "item_count", "discount_amount", "quantity", "unit_price"):
        text = texts[name]
        if text is not None:
            parse(name, decimal_value(text))
    coupon_text = texts["coupon_used"]
    if coupon_text is not None:
        parse("coupon_used", boolean_value(coupon_text))

    # line grain: amount = quantity x unit price, item_count = quantity, unless mapped
    if "quantity" in values:
        if "item_count" not in values:
            values["item_count"], failed["item_count"] = values["quantity"], failed["quantity"]
        if "amount" not in values and "unit_price" in values:
            values["amount"] = (values["quantity"] * values["unit_price"]).try_cast(WIDE_DECIMAL)
            failed["amount"] = failed["quantity"] | failed["unit_price"]
    if "discount_amount" in values:
        values["discount_amount"] = F.abs(values["discount_amount"])

    is_malformed = F.col(CORRUPT_COLUMN).isNotNull()
    from_source = [n for n in RECEIPT_COLUMNS if n in cols or (n in failed and n not in consts)]
    errors = F.array_compact(
        F.array(
            *[
                F.when(is_malformed | failed.get(n, F.lit(False)), F.lit(n))
                if n in from_source
                else F.lit(None).cast("string")
                for n in RECEIPT_COLUMNS
            ]
        )
    )
    excluded = F.lit(False)
    if source.exclude_lines:
        excluded = F.coalesce(F.expr(source.exclude_lines), F.lit(False)) & ~is_malformed
    typed = {
        "amount": WIDE_DECIMAL,
        "item_count": WIDE_DECIMAL,
        "discount_amount": WIDE_DECIMAL,
        "coupon_used": "boolean",
        "receipt_ts": "timestamp",
    }
    return lines.select(
        *[values.get(n, F.lit(None)).cast(typed.get(n, "string")).alias(n) for n in RECEIPT_COLUMNS],
        F.col(SOURCE_FILE),
        F.col(RAW_TEXT),
        errors.alias("_errors"),
        is_malformed.alias("_is_malformed"),
        excluded.alias("_is_excluded"),
    )


# --- receipts ---------------------------------------------------------------------


def _in_canonical_order(names: Column) -> Column:
    return F.filter(F.array(*[F.lit(n) for n in RECEIPT_COLUMNS]), lambda n: F.array_contains(names, n))


def to_receipts_from_lines(lines: DataFrame, *, mapping_name: str) -> DataFrame:
    """Grain: (source file, receipt id). Bronze columns (not yet rounded) plus accounting:
    ``lines_in``, ``lines_excluded``, ``lines_malformed``, ``is_written``."""
    included = ~F.col("_is_excluded")

    def kept(value: Column | str) -> Column:
        return F.when(included, F.col(value) if isinstance(value, str) else value)

    is_bad = F.size("_errors") > 0
    by_category = lines.groupBy(SOURCE_FILE, "receipt_id", "category").agg(
        F.sum(kept("amount")).alias("amount"),
        F.sum(kept("item_count")).alias("item_count"),
        F.sum(kept("discount_amount")).alias("discount_amount"),
        F.bool_or(kept("coupon_used")).alias("coupon_used"),
        F.min(kept("receipt_ts")).alias("receipt_ts"),
        F.min(kept("customer_id")).alias("customer_min"),
        F.max(kept("customer_id")).alias("customer_max"),
        F.count(kept("customer_id")).alias("customer_lines"),
        *[F.min(kept(c)).alias(c) for c in ("currency", "channel", "store_id", "region")],
        F.flatten(F.collect_list(kept("_errors"))).alias("errors"),
        F.collect_list(F.when(included & is_bad, F.col(RAW_TEXT))).alias("bad_lines"),
        F.sum(included.cast("int")).alias("lines_in"),
        F.sum((~included).cast("int")).alias("lines_excluded"),
        F.sum(F.col("_is_malformed").cast("int")).alias("lines_malformed"),
    )
    # largest absolute amount first; named before unnamed; ties to the first name
    category_rank = F.struct(
        (F.col("lines_in") == 0).alias("empty"),
        F.col("category").isNull().alias("unnamed"),
        (-F.abs(F.coalesce("amount", F.lit(0)))).alias("size"),
        F.col("category").alias("name"),
    )
    receipts = by_category.groupBy(SOURCE_FILE, "receipt_id").agg(
        F.min_by("category", category_rank).alias("category"),
        F.sum("amount").alias("amount"),
        F.sum("item_count").alias("item_count"),
        F.sum("discount_amount").alias("discount_amount"),
        F.bool_or("coupon_used").alias("coupon_used"),
        F.min("receipt_ts").alias("receipt_ts"),
        F.min("customer_min").alias("customer_id"),
        F.max("customer_max").alias("customer_max"),
        F.sum("customer_lines").alias("customer_lines"),
        *[F.min(c).alias(c) for c in ("currency", "channel", "store_id", "region")],
        F.array_distinct(F.flatten(F.collect_list("errors"))).alias("errors"),
        F.array_sort(F.flatten(F.collect_list("bad_lines"))).alias("bad_lines"),
        F.sum("lines_in").alias("lines_in"),
        F.sum("lines_excluded").alias("lines_excluded"),
        F.sum("lines_malformed").alias("lines_malformed"),
    )
    customer_conflict = (F.col("customer_id") != F.col("customer_max")) | (
        (F.col("customer_lines") > 0) & (F.col("customer_lines") < F.col("lines_in"))
    )
    errors = F.when(customer_conflict, F.array_union("errors", F.array(F.lit("customer_id")))).otherwise(
        F.col("errors")
    )
    row_key = F.concat_ws(
        ":", F.lit(mapping_name), file_name(F.col(SOURCE_FILE)), F.coalesce("receipt_id", F.lit(NO_RECEIPT_ID))
    )
    return receipts.select(
        *[c for c in RECEIPT_COLUMNS],
        F.col(SOURCE_FILE).alias("source_file"),
        row_key.alias("row_key"),
        F.when(F.size("bad_lines") > 0, F.array_join("bad_lines", "\n")).alias("raw_record"),
        _in_canonical_order(errors).alias("errors"),
        "lines_in",
        "lines_excluded",
        "lines_malformed",
        (F.col("lines_in") > 0).alias("is_written"),
    )


def source_row_key(mapping_name: str, partition_columns: list[str]) -> Column:
    """``<mapping>:<file>:<hash>`` of the row text and its occurrence number among
    identical rows of the same file (needs ``_source_file`` and ``_raw_text``)."""
    same_rows = W.partitionBy(*partition_columns).orderBy(RAW_TEXT)
    occurrence = F.row_number().over(same_rows)
    digest = F.sha2(F.concat_ws("\u0001", F.col(RAW_TEXT), occurrence.cast("string")), 256)
    return F.concat_ws(":", F.lit(mapping_name), file_name(F.col(SOURCE_FILE)), F.substring(digest, 1, 32))


def to_receipts_from_rows(lines: DataFrame, *, mapping_name: str) -> DataFrame:
    """Grain: source row (receipt-grain source). Same columns as the line rollup."""
    included = ~F.col("_is_excluded")
    return lines.select(
        *RECEIPT_COLUMNS,
        F.col(SOURCE_FILE).alias("source_file"),
        source_row_key(mapping_name, [SOURCE_FILE, RAW_TEXT]).alias("row_key"),
        F.when(F.size("_errors") > 0, F.col(RAW_TEXT)).alias("raw_record"),
        F.col("_errors").alias("errors"),
        included.cast("long").alias("lines_in"),
        (~included).cast("long").alias("lines_excluded"),
        F.col("_is_malformed").cast("long").alias("lines_malformed"),
        included.alias("is_written"),
    )


def to_receipts(lines: DataFrame, source: ReceiptSource) -> DataFrame:
    """Parsed lines -> receipts of the mapping's grain, with accounting columns."""
    if source.line_grain:
        return to_receipts_from_lines(lines, mapping_name=source.name)
    return to_receipts_from_rows(lines, mapping_name=source.name)


def to_bronze_receipts(receipts: DataFrame, *, ingested_at: dt.datetime) -> DataFrame:
    """The ``bronze/receipts`` columns (rounded to cents, whole items), partition last.
    Drops receipts made only of excluded lines."""
    return receipts.where("is_written").select(
        *STRING_COLUMNS[:2],
        "receipt_ts",
        F.col("amount").try_cast("decimal(18,2)").alias("amount"),
        *STRING_COLUMNS[2:7],
        F.round("item_count").try_cast("int").alias("item_count"),
        F.col("discount_amount").try_cast("decimal(18,2)").alias("discount_amount"),
        "coupon_used",
        "source_file",
        "row_key",
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        "raw_record",
        F.when(F.size("errors") > 0, F.array_join("errors", ",")).alias("parse_errors"),
        F.coalesce(month_of("receipt_ts"), F.lit("unknown")).alias("receipt_month"),
    )


def filter_new(rows: DataFrame, existing_keys: DataFrame) -> DataFrame:
    """Rows whose ``row_key`` is not in ``existing_keys`` (idempotent re-ingest)."""
    return rows.join(existing_keys.select("row_key"), on="row_key", how="left_anti")


def row_key_prefix(row_key: str | Column = "row_key") -> Column:
    """``<mapping>:<file>`` of a row key: its text before the second colon (all of it without one).

    Row keys start with the mapping and the source file's name, so the keys of one source
    file share this prefix (a name holding a colon only makes it shorter: still a prefix).
    """
    return F.substring_index(F.col(row_key) if isinstance(row_key, str) else row_key, ":", 2)


def _after_every_string_starting_with(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (its last character
    raised by one code point; UTF-8 keeps code point order), or None when there is none."""
    point = ord(prefix[-1]) + 1
    point = 0xE000 if 0xD800 <= point <= 0xDFFF else point  # surrogates are not characters
    return None if point > 0x10FFFF else prefix[:-1] + chr(point)


def with_key_prefixes(prefixes: list[str], row_key: str = "row_key") -> Column:
    """True for the row keys that start with one of ``prefixes`` (and some more, never fewer).

    Written as ranges, ``prefix <= key < the prefix with its last character raised``, which
    Delta's data skipping answers from the per-file min/max of ``row_key``: files of other
    source files are not read. An empty list selects nothing; an empty prefix everything.
    """
    key = F.col(row_key)
    ranges = []
    for prefix in sorted(set(prefixes)):
        if not prefix:
            return F.lit(True)
        after = _after_every_string_starting_with(prefix)
        ranges.append((key >= F.lit(prefix)) & (key < F.lit(after)) if after is not None else key >= F.lit(prefix))
    return functools.reduce(lambda either, other: either | other, ranges, F.lit(False))


def ingest_summary(receipts: DataFrame) -> DataFrame:
    """One row: what happened to every source line (accounting columns summed)."""
    written = F.col("is_written")
    return receipts.agg(
        F.sum(F.col("lines_in") + F.col("lines_excluded")).alias("lines_read"),
        F.sum("lines_excluded").alias("lines_excluded"),
        F.sum(F.when(written, F.col("lines_in"))).alias("lines_rolled_up"),
        F.sum("lines_malformed").alias("lines_malformed"),
        F.count(F.when(written, True)).alias("receipts_built"),
        F.count(F.when(~written, True)).alias("receipts_only_excluded"),
        F.count(F.when(written & (F.size("errors") > 0), True)).alias("receipts_with_errors"),
        F.count_distinct(F.when(written, F.col("customer_id"))).alias("customers"),
    )


# --- customers --------------------------------------------------------------------


def to_bronze_customers(
    customers: DataFrame, spec: CustomerSource, *, mapping_name: str, ingested_at: dt.datetime
) -> DataFrame:
    """``bronze/customers`` from a customer source (needs ``_source_file``, ``_raw_text``).
    Values that do not parse are null; unmapped source columns go into ``attributes``."""

    def text_of(name: str) -> Column:
        value = _mapped(name, spec.columns)
        return F.lit(None).cast("string") if value is None else _as_text(customers, value)

    internal = (CORRUPT_COLUMN, SOURCE_FILE, RAW_TEXT)
    names = (
        list(spec.attributes)
        if spec.attributes is not None
        else [c for c in customers.columns if c not in spec.columns.used and c not in internal]
    )
    attributes = F.map_filter(
        F.map_from_arrays(
            F.array(*[F.lit(n) for n in names]).cast("array<string>"),
            F.array(*[F.col(f"`{n}`").cast("string") for n in names]).cast("array<string>"),
        ),
        lambda _, v: v.isNotNull(),
    )
    return customers.select(
        text_of("customer_id").alias("customer_id"),
        F.to_date(F.try_to_timestamp(text_of("signup_date"), F.lit(spec.date_format))).alias("signup_date"),
        F.round(decimal_value(text_of("birth_year"))).try_cast("int").alias("birth_year"),
        text_of("age_band").alias("age_band"),
        text_of("gender").alias("gender"),
        text_of("region").alias("region"),
        boolean_value(text_of("is_loyalty_member")).alias("is_loyalty_member"),
        boolean_value(text_of("has_email_opt_in")).alias("has_email_opt_in"),
        attributes.alias("attributes"),
        F.col(SOURCE_FILE).alias("source_file"),
        source_row_key(f"{mapping_name}.customers", [SOURCE_FILE, RAW_TEXT]).alias("row_key"),
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
    )
