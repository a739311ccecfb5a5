"""The lake's tables: one typed record each, the single source of table facts.

A :class:`Table` holds what a table is — name, layer, grain, the jobs that write it,
how a run updates it, its partition columns, its Delta table properties and its
schema with a comment on every column. The writers (:mod:`seglake.tables`), the
failed-stage restore (``jobs/run.py``), the run summary and the README's table
reference (``make docs``) all read these records; nothing parses documentation to
decide behaviour.

A new table: add a :class:`Table` to ``TABLES`` below (columns in the physical order,
each with its Spark SQL type and the comment BI tools show), then write it with
:func:`seglake.tables.write_table` from its job and run ``make docs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from pyspark.sql import types as T

Layer = Literal["bronze", "silver", "gold", "ops"]
LAYERS: tuple[Layer, ...] = ("bronze", "silver", "gold", "ops")

# How a run changes the table:
# append             rows are only added (a full rebuild overwrites);
# overwrite          each write replaces the whole table;
# replace_partitions a run replaces the partitions it computed (replaceWhere), keeping the others.
WriteMode = Literal["append", "overwrite", "replace_partitions"]

EVERY_JOB = "*"  # written_by entry of a table every job writes (ops/runs)

# Per-file statistics on every column cost about a quarter of a receipts write;
# readers skip files on time, customer and amount (and cleanse, counting the rows it
# committed, on its run id in silver; ingest, looking for a new file's row keys, on
# row_key in bronze).
RECEIPT_STATS = "receipt_ts,customer_id,amount"
BRONZE_RECEIPT_STATS = f"{RECEIPT_STATS},row_key"
# The rollup and the profile are read by partition (month, as_of_date: no statistics
# needed) and looked up by customer; statistics on their ~40 other columns cost write time.
CUSTOMER_STATS = "customer_id"
# Incremental runs read the rows appended since the last run from the Change Data Feed
# (Delta writer feature, protocol writer version 4; readers need nothing new).
CHANGE_DATA_FEED = {"delta.enableChangeDataFeed": "true"}


_SIMPLE_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "boolean": T.BooleanType(),
    "int": T.IntegerType(),
    "bigint": T.LongType(),
    "double": T.DoubleType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}


def parse_type(text: str) -> T.DataType:
    """A Spark SQL type in the catalog's spelling (``simpleString``) -> the Spark type.

    Needs no SparkSession (the catalog is read before one exists): the simple types above,
    ``decimal(p,s)``, ``array<t>``, ``map<k,v>`` and ``struct<name:t,...>``.
    """
    data_type, rest = _parse_type(text.replace(" ", ""))
    if rest:
        raise ValueError(f"unexpected {rest!r} after the type in {text!r}")
    return data_type


def _parse_type(text: str) -> tuple[T.DataType, str]:
    for name, simple in _SIMPLE_TYPES.items():
        if text.startswith(name) and not text[len(name) : len(name) + 1].isalnum():
            return simple, text[len(name) :]
    if text.startswith("decimal("):
        inside, _, rest = text[len("decimal(") :].partition(")")
        precision, scale = (int(part) for part in inside.split(","))
        return T.DecimalType(precision, scale), rest
    if text.startswith("array<"):
        element, rest = _parse_type(text[len("array<") :])
        return T.ArrayType(element), _closing(rest, text)
    if text.startswith("map<"):
        key, rest = _parse_type(text[len("map<") :])
        value, rest = _parse_type(_expect(rest, ",", text))
        return T.MapType(key, value), _closing(rest, text)
    if text.startswith("struct<"):
        fields, rest = [], text[len("struct<") :]
        while True:
            name, colon, rest = rest.partition(":")
            if not colon:
                raise ValueError(f"struct field without a type in {text!r}")
            field_type, rest = _parse_type(rest)
            fields.append(T.StructField(name, field_type))
            if not rest.startswith(","):
                return T.StructType(fields), _closing(rest, text)
            rest = rest[1:]
    raise ValueError(f"unknown type {text!r}")


def _expect(rest: str, token: str, whole: str) -> str:
    if not rest.startswith(token):
        raise ValueError(f"expected {token!r} in {whole!r}")
    return rest[len(token) :]


def _closing(rest: str, whole: str) -> str:
    return _expect(rest, ">", whole)


@dataclass(frozen=True)
class Col:
    """One column: name, Spark SQL type (DDL, e.g. ``decimal(18,2)``) and its comment."""

    name: str
    type: str
    comment: str

    @property
    def data_type(self) -> T.DataType:
        return parse_type(self.type)


@dataclass(frozen=True)
class Table:
    """One lake table. ``name`` is its path under the lake root, ``<layer>/<table>``."""

    name: str
    grain: str
    written_by: tuple[str, ...]
    write_mode: WriteMode
    columns: tuple[Col, ...]
    partition_by: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"{self.name}: the first path part must be a layer ({', '.join(LAYERS)})")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a column is listed twice")
        missing = [p for p in self.partition_by if p not in names]
        if missing:
            raise ValueError(f"{self.name}: partition column {missing[0]} is not a column")
        if self.write_mode == "replace_partitions" and not self.partition_by:
            raise ValueError(f"{self.name}: replace_partitions needs partition columns")

    @property
    def layer(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def comments(self) -> dict[str, str]:
        return {c.name: c.comment for c in self.columns}

    @property
    def schema(self) -> T.StructType:
        """The Spark schema, each field with its comment in the metadata."""
        return T.StructType([T.StructField(c.name, c.data_type, True, {"comment": c.comment}) for c in self.columns])

    @property
    def ddl(self) -> str:
        """``name type, ...`` for ``spark.createDataFrame(rows, table.ddl)``."""
        return ", ".join(f"`{c.name}` {c.type}" for c in self.columns)

    @property
    def is_as_of_partitioned(self) -> bool:
        """Partitioned by ``as_of_date``: a run replaces its date's partition."""
        return self.partition_by == ("as_of_date",)

    @property
    def is_restorable(self) -> bool:
        """A failed stage puts the table back at its version from before the stage.

        ops tables only ever append the record of what happened, failures included."""
        return self.layer != "ops"

    def is_written_by(self, job: str) -> bool:
        return job in self.written_by or EVERY_JOB in self.written_by


RECEIPT_COLUMNS: tuple[Col, ...] = (
    Col("receipt_id", "string", "Receipt (basket, invoice) identifier as delivered."),
    Col("customer_id", "string", "Customer identifier as delivered (not yet trimmed or case-normalised)."),
    Col("receipt_ts", "timestamp", "Time of the receipt (session time zone, UTC by default)."),
    Col("amount", "decimal(18,2)", "Receipt total in `currency`; negative for a return."),
    Col("currency", "string", "ISO 4217 code of `amount` as delivered."),
    Col("channel", "string", "Sales channel as delivered (store, online, app, or a source's own word)."),
    Col("store_id", "string", "Store identifier; online and app receipts use the region's web store."),
    Col("region", "string", "Sales region of the store."),
    Col("category", "string", "Product category with the largest amount on the receipt."),
    Col("item_count", "int", "Number of items on the receipt."),
    Col("discount_amount", "decimal(18,2)", "Total discount granted on the receipt, in `currency`, >= 0."),
    Col("coupon_used", "boolean", "True if a coupon was redeemed on the receipt."),
)

LINEAGE_COLUMNS: tuple[Col, ...] = (
    Col("source_file", "string", "File (or generator) the row came from."),
    Col("row_key", "string", "Unique key of the source row within the lake (lineage)."),
    Col("ingested_at", "timestamp", "UTC time the row was written to bronze."),
)

RETENTION_COLUMNS: tuple[Col, ...] = (
    Col("as_of_date", "date", "Partition: the as-of date D of the run; receipts after it are ignored."),
    Col("period_unit", "string", "Cohort period: day, week (Monday-Sunday), month or year (config cohorts.period)."),
    Col("cohort", "string", "Label of the cohort period: YYYY-MM, YYYY, or the first day (YYYY-MM-DD)."),
    Col("cohort_start_date", "date", "First day of the cohort period (the period of the first purchase)."),
    Col(
        "period_offset",
        "int",
        "Periods since the cohort's own period (0 = the cohort period); -1 sums the cohort's activity before "
        "its own period (returns dated before the first purchase), a row present only when there is some.",
    ),
    Col("period_start_date", "date", "First day of the period this row counts; null for offset -1."),
    Col("cohort_size", "bigint", "Customers in the cohort."),
    Col("active_customers", "bigint", "Cohort customers with a purchase in the period (0 when none)."),
    Col("retention_rate", "double", "active_customers / cohort_size; null for offset -1."),
    Col("orders", "bigint", "Purchases (receipts with a positive amount) of the cohort in the period."),
    Col(
        "revenue_amount",
        "decimal(18,2)",
        "Net amount (purchases + returns) of the cohort in the period, base currency.",
    ),
    Col("avg_receipt_amount", "decimal(18,2)", "Purchase amount / orders in the period; null without orders."),
    Col("is_partial_period", "boolean", "True for the period that D cuts short (D is not its last day)."),
)

TABLES: tuple[Table, ...] = (
    Table(
        name="bronze/receipts",
        grain="one row per source row (line sources: per receipt), as delivered",
        written_by=("generate", "ingest"),
        write_mode="append",
        partition_by=("receipt_month",),
        properties={"delta.dataSkippingStatsColumns": BRONZE_RECEIPT_STATS, **CHANGE_DATA_FEED},
        columns=(
            *RECEIPT_COLUMNS,
            *LINEAGE_COLUMNS,
            Col("raw_record", "string", "Source row as text when it could not be parsed; null otherwise."),
            Col(
                "parse_errors",
                "string",
                "Canonical columns whose source value did not parse (comma-separated); null when the row parsed "
                "cleanly.",
            ),
            Col("receipt_month", "string", "Partition: calendar month of receipt_ts (YYYY-MM), 'unknown' if null."),
        ),
    ),
    Table(
        name="bronze/customers",
        grain="one row per customer",
        written_by=("generate", "ingest"),
        write_mode="overwrite",
        partition_by=(),
        columns=(
            Col("customer_id", "string", "Customer identifier as delivered."),
            Col("signup_date", "date", "Date the customer account was created."),
            Col("birth_year", "int", "Year of birth; null when unknown."),
            Col("age_band", "string", "Age band as delivered (e.g. 35-44); null when unknown."),
            Col("gender", "string", "Gender as delivered (F, M, X); null when unknown."),
            Col("region", "string", "Home region of the customer."),
            Col("is_loyalty_member", "boolean", "True if the customer is in the loyalty programme."),
            Col("has_email_opt_in", "boolean", "True if the customer agreed to marketing e-mail."),
            Col(
                "attributes", "map<string,string>", "Other source attributes (name -> value as text), e.g. income band."
            ),
            *LINEAGE_COLUMNS,
        ),
    ),
    Table(
        name="bronze/_generator_truth",
        grain="one row per defective generated row",
        written_by=("generate",),
        write_mode="overwrite",
        partition_by=(),
        columns=(
            Col("row_key", "string", "bronze/receipts.row_key of the row the generator made defective."),
            Col("defect", "string", "Injected defect kind (e.g. null_customer, duplicate_row)."),
            Col("expected_outcome", "string", "What cleansing must do: the reject reason code, or 'normalised'."),
        ),
    ),
    Table(
        name="silver/receipts",
        grain="one row per valid receipt",
        written_by=("cleanse",),
        write_mode="append",
        partition_by=("receipt_month",),
        properties={"delta.dataSkippingStatsColumns": f"{RECEIPT_STATS},cleanse_run_id", **CHANGE_DATA_FEED},
        columns=(
            Col("receipt_id", "string", "Receipt identifier, unique in the table."),
            Col("customer_id", "string", "Customer identifier, trimmed and case-normalised."),
            Col("receipt_ts", "timestamp", "Time of the receipt (UTC)."),
            Col(
                "amount", "decimal(18,2)", "Receipt total in the base currency (currency.base); negative for a return."
            ),
            Col("currency", "string", "Currency the source delivered the amount in (ISO 4217)."),
            Col("channel", "string", "Sales channel: store, online or app."),
            Col("store_id", "string", "Store identifier."),
            Col("region", "string", "Sales region of the store."),
            Col("category", "string", "Product category with the largest amount on the receipt."),
            Col("item_count", "int", "Number of items on the receipt."),
            Col("discount_amount", "decimal(18,2)", "Total discount on the receipt in the base currency, >= 0."),
            Col("coupon_used", "boolean", "True if a coupon was redeemed on the receipt."),
            Col("source_file", "string", "File (or generator) the receipt came from."),
            Col("row_key", "string", "bronze/receipts.row_key of the source row (lineage)."),
            Col("ingested_at", "timestamp", "UTC time the source row was written to bronze."),
            Col("cleanse_run_id", "string", "ops/runs.run_id of the cleanse run that accepted the receipt."),
            Col("receipt_month", "string", "Partition: calendar month of receipt_ts (YYYY-MM)."),
        ),
    ),
    Table(
        name="silver/receipts_quarantine",
        grain="one row per rejected source row",
        written_by=("cleanse",),
        write_mode="append",
        partition_by=(),
        columns=(
            *(replace(c, comment=f"As in bronze/receipts: {c.comment}") for c in RECEIPT_COLUMNS),
            *LINEAGE_COLUMNS,
            Col("raw_record", "string", "Source row as text when it could not be parsed; null otherwise."),
            Col("parse_errors", "string", "Canonical columns whose source value did not parse (comma-separated)."),
            Col("receipt_month", "string", "Calendar month of receipt_ts in bronze (YYYY-MM or 'unknown')."),
            Col("reject_reason", "string", "Why the row was rejected: a reason code (see README, Cleansing)."),
            Col("reject_detail", "string", "The offending value or the row kept instead, in words."),
            Col("cleanse_run_id", "string", "ops/runs.run_id of the cleanse run that rejected the row."),
            Col("quarantined_at", "timestamp", "UTC time of that run."),
        ),
    ),
    Table(
        name="silver/customer_month",
        grain="customer x calendar month of the receipt date",
        written_by=("features",),
        write_mode="replace_partitions",
        partition_by=("month",),
        properties={"delta.dataSkippingStatsColumns": CUSTOMER_STATS},
        columns=(
            Col("customer_id", "string", "Customer identifier (as in silver/receipts)."),
            Col("month", "string", "Partition: calendar month of the receipt date (YYYY-MM, in spark.timezone)."),
            Col("orders", "bigint", "Purchases (receipts with amount > 0) in the month."),
            Col("purchase_amount", "decimal(18,2)", "Sum of the month's purchase amounts, base currency."),
            Col("returns", "bigint", "Returns (receipts with amount < 0) in the month."),
            Col("return_amount", "decimal(18,2)", "Sum of the month's return amounts, base currency, <= 0."),
            Col("net_amount", "decimal(18,2)", "purchase_amount + return_amount."),
            Col("first_purchase_ts", "timestamp", "Time of the month's first purchase; null without purchases."),
            Col("last_purchase_ts", "timestamp", "Time of the month's last purchase; null without purchases."),
            Col("gap_count", "bigint", "Purchases in the month that have an earlier purchase (ever): one gap each."),
            Col(
                "gap_sum_days",
                "bigint",
                "Sum of the whole days from each such purchase's date to the previous purchase date (a gap crossing "
                "into the month counts here; same day = 0).",
            ),
            Col(
                "gap_sumsq_days",
                "bigint",
                "Sum of the squares of those gaps (for the standard deviation, periodicity).",
            ),
            Col(
                "last_purchase_dates",
                "array<date>",
                "The month's last k purchase dates, latest first (k = features.recency_last_k).",
            ),
            Col(
                "first_purchase_channel",
                "string",
                "Channel of the month's first purchase (earliest receipt_ts, then receipt_id).",
            ),
            Col(
                "max_receipt_amount",
                "decimal(18,2)",
                "Largest purchase amount in the month, base currency; null without purchases.",
            ),
            Col("coupon_orders", "bigint", "Purchases in the month with a coupon redeemed."),
            Col("discount_amount", "decimal(18,2)", "Sum of the discounts on the month's purchases, base currency."),
            Col("items", "bigint", "Sum of item_count over the month's purchases."),
            Col("weekend_orders", "bigint", "Purchases on a Saturday or Sunday (spark.timezone)."),
            Col("night_orders", "bigint", "Purchases from 00:00 to 05:59 (spark.timezone)."),
            Col("morning_orders", "bigint", "Purchases from 06:00 to 11:59 (spark.timezone)."),
            Col("afternoon_orders", "bigint", "Purchases from 12:00 to 17:59 (spark.timezone)."),
            Col("evening_orders", "bigint", "Purchases from 18:00 to 23:59 (spark.timezone)."),
            Col("store_channel_orders", "bigint", "Purchases in the store channel."),
            Col("online_channel_orders", "bigint", "Purchases in the online channel."),
            Col("app_channel_orders", "bigint", "Purchases in the app channel."),
            Col(
                "category_amounts",
                "map<string,decimal(18,2)>",
                "Purchase amount per product category (category -> base-currency amount).",
            ),
            Col("region_orders", "map<string,bigint>", "Purchases per sales region (region -> count)."),
            Col("store_orders", "map<string,bigint>", "Purchases per store (store_id -> count)."),
        ),
    ),
    Table(
        name="silver/customer_lifetime",
        grain="customer (with a rollup row up to through_month)",
        written_by=("features",),
        write_mode="overwrite",
        properties={"delta.dataSkippingStatsColumns": CUSTOMER_STATS},
        columns=(
            Col("customer_id", "string", "Customer identifier (as in silver/receipts)."),
            Col(
                "through_month",
                "string",
                "The state covers the customer's silver/customer_month rows up to this month (YYYY-MM), the same "
                "for every row: an incremental features run adds the months after it.",
            ),
            Col("orders", "bigint", "Purchases (receipts with amount > 0) up to through_month."),
            Col("purchase_amount", "decimal(18,2)", "Sum of those purchases' amounts, base currency."),
            Col("net_amount", "decimal(18,2)", "Purchases + returns up to through_month, base currency."),
            Col("first_purchase_ts", "timestamp", "Time of the first purchase; null without purchases."),
            Col("last_purchase_ts", "timestamp", "Time of the last purchase up to through_month; null without."),
            Col("gap_count", "bigint", "Purchases with an earlier purchase: one gap each (sum of the months')."),
            Col("gap_sum_days", "bigint", "Sum of the whole days between consecutive purchase dates."),
            Col("gap_sumsq_days", "bigint", "Sum of the squares of those gaps (for periodicity)."),
            Col(
                "last_purchase_dates",
                "array<date>",
                "The last k purchase dates up to through_month, latest first (k = features.recency_last_k).",
            ),
            Col("first_purchase_channel", "string", "Channel of the first purchase (earliest time, then receipt id)."),
            Col("max_receipt_amount", "decimal(18,2)", "Largest purchase amount, base currency; null without."),
            Col("active_months", "bigint", "Calendar months with a purchase up to through_month."),
            Col(
                "categories_bought",
                "array<string>",
                "Product categories with a positive purchase amount in some month up to through_month, sorted "
                "(the bought categories next-best-offer never offers).",
            ),
        ),
    ),
    Table(
        name="gold/customer_profile",
        grain="customer x as-of date",
        written_by=("features",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        properties={"delta.dataSkippingStatsColumns": CUSTOMER_STATS},
        columns=(
            Col("customer_id", "string", "Customer with at least one purchase on or before as_of_date."),
            Col("as_of_date", "date", "Partition: as-of date D of the run; receipts after D are ignored."),
            Col("recency_days", "int", "Whole days from the last purchase date to D; 0 if bought on D."),
            Col(
                "frequency",
                "bigint",
                "Purchases (receipts with amount > 0) in the window (D - window_days, D]; may be 0.",
            ),
            Col(
                "monetary_amount",
                "decimal(18,2)",
                "Net amount (purchases + returns) of the receipts in the window, base currency; may be 0 or negative.",
            ),
            Col(
                "avg_receipt_amount",
                "decimal(18,2)",
                "Window purchase amount / frequency, rounded to cents; null when frequency is 0.",
            ),
            Col("first_purchase_date", "date", "Date of the first purchase."),
            Col("last_purchase_date", "date", "Date of the last purchase on or before D."),
            Col("tenure_days", "int", "Days from the first purchase date to D."),
            Col("length_days", "int", "LRFMP length L: days from the first to the last purchase date."),
            Col(
                "recency_last_k_days",
                "double",
                "Mean days from each of the last k purchases (k = features.recency_last_k; fewer if there are fewer) "
                "to D.",
            ),
            Col(
                "periodicity_days",
                "double",
                "LRFMP periodicity P: sample standard deviation of the whole days between consecutive purchase dates "
                "up to D (same day = 0); null below three purchases.",
            ),
            Col(
                "mean_gap_days",
                "double",
                "Mean whole days between consecutive purchase dates up to D; null below two purchases.",
            ),
            Col("cohort", "string", "Month of the first purchase (YYYY-MM)."),
            Col("orders_lifetime", "bigint", "Relationship: purchases on or before D."),
            Col(
                "net_amount_lifetime",
                "decimal(18,2)",
                "Spend: net amount (purchases + returns) of all receipts on or before D, base currency.",
            ),
            Col("first_channel", "string", "Relationship: channel of the first purchase (store, online, app)."),
            Col(
                "months_active_lifetime", "bigint", "Relationship: calendar months with at least one purchase, up to D."
            ),
            Col("months_active_window", "bigint", "Relationship: calendar months with a purchase in the window."),
            Col(
                "gross_spend_lifetime",
                "decimal(18,2)",
                "Spend: sum of purchase amounts (returns not netted) up to D, base currency.",
            ),
            Col("gross_spend_window", "decimal(18,2)", "Spend: sum of purchase amounts in the window, base currency."),
            Col(
                "max_receipt_amount_lifetime", "decimal(18,2)", "Spend: largest single purchase up to D, base currency."
            ),
            Col(
                "max_receipt_amount_window",
                "decimal(18,2)",
                "Spend: largest single purchase in the window; null without one.",
            ),
            Col(
                "spend_last_3_months",
                "decimal(18,2)",
                "Spend: net amount in the 3 calendar months ending with the last whole month on or before D (D's own "
                "month when D is its last day).",
            ),
            Col("spend_previous_3_months", "decimal(18,2)", "Spend: net amount in the 3 calendar months before those."),
            Col(
                "spend_trend_ratio",
                "double",
                "Spend: spend_last_3_months / spend_previous_3_months (1 = flat, > 1 growing); null when the previous"
                " 3 months are <= 0.",
            ),
            Col("categories_window", "bigint", "Products: distinct product categories bought in the window."),
            Col(
                "top_category",
                "string",
                "Products: category with the largest purchase amount in the window (ties: first by name).",
            ),
            Col(
                "top_category_share",
                "double",
                "Products: top_category's share of the window's purchase amount with a category.",
            ),
            Col(
                "store_order_share",
                "double",
                "Channels: share of window purchases made in a store; null when frequency is 0.",
            ),
            Col(
                "online_order_share",
                "double",
                "Channels: share of window purchases made online; null when frequency is 0.",
            ),
            Col(
                "app_order_share",
                "double",
                "Channels: share of window purchases made in the app; null when frequency is 0.",
            ),
            Col("channels_used_window", "bigint", "Channels: distinct channels with a purchase in the window."),
            Col(
                "is_omnichannel",
                "boolean",
                "Channels: true when the customer bought through 2 or more channels in the window; null when "
                "frequency is 0.",
            ),
            Col("main_channel", "string", "Channels: channel with the most window purchases (ties: first by name)."),
            Col("coupon_orders_window", "bigint", "Promotions: window purchases with a coupon redeemed."),
            Col(
                "coupon_order_share",
                "double",
                "Promotions: coupon_orders_window / frequency; null when frequency is 0.",
            ),
            Col(
                "discount_amount_window",
                "decimal(18,2)",
                "Promotions: discounts granted on window purchases, base currency.",
            ),
            Col(
                "discount_share",
                "double",
                "Promotions: discount_amount_window / (gross_spend_window + discount_amount_window), the share of the"
                " list price given away.",
            ),
            Col("items_window", "bigint", "Basket: items bought in the window (sum of item_count over purchases)."),
            Col(
                "avg_items_per_order",
                "double",
                "Basket: items_window / frequency (mean basket size); null when frequency is 0.",
            ),
            Col("avg_item_amount", "double", "Basket: gross_spend_window / items_window (mean price per item)."),
            Col(
                "weekend_order_share",
                "double",
                "Time: share of window purchases on Saturday or Sunday (spark.timezone).",
            ),
            Col("night_order_share", "double", "Time: share of window purchases from 00:00 to 05:59."),
            Col("morning_order_share", "double", "Time: share of window purchases from 06:00 to 11:59."),
            Col("afternoon_order_share", "double", "Time: share of window purchases from 12:00 to 17:59."),
            Col("evening_order_share", "double", "Time: share of window purchases from 18:00 to 23:59."),
            Col(
                "preferred_part_of_day",
                "string",
                "Time: part of day (night, morning, afternoon, evening) with the most window purchases; ties go to "
                "the earlier part.",
            ),
            Col(
                "peak_month_of_year",
                "int",
                "Time: calendar month (1-12) with the most window purchases (ties: earliest).",
            ),
            Col(
                "peak_month_share",
                "double",
                "Time: seasonality index, the peak month's share of window purchases (1/12 = even, 1 = all in one "
                "month).",
            ),
            Col("returns_window", "bigint", "Returns: return receipts (amount < 0) in the window."),
            Col(
                "return_amount_window", "decimal(18,2)", "Returns: amount returned in the window, base currency, >= 0."
            ),
            Col("return_rate_count", "double", "Returns: returns_window / frequency; null when frequency is 0."),
            Col(
                "return_rate_amount",
                "double",
                "Returns: return_amount_window / gross_spend_window; null without purchases.",
            ),
            Col(
                "main_region", "string", "Geography: sales region with the most window purchases (ties: first by name)."
            ),
            Col("main_region_share", "double", "Geography: main_region's share of window purchases."),
            Col("regions_used_window", "bigint", "Geography: distinct regions with a purchase in the window."),
            Col("main_store", "string", "Geography: store with the most window purchases (ties: first by id)."),
            Col("stores_used_window", "bigint", "Geography: distinct stores with a purchase in the window."),
            Col(
                "age_band",
                "string",
                "Demographics: age band from bronze/customers; null when unknown or without that table.",
            ),
            Col("gender", "string", "Demographics: gender from bronze/customers (F, M, X); null when unknown."),
            Col("is_loyalty_member", "boolean", "Demographics: in the loyalty programme (bronze/customers)."),
            Col("has_email_opt_in", "boolean", "Demographics: agreed to marketing e-mail (bronze/customers)."),
            Col("home_region", "string", "Demographics: home region from bronze/customers."),
            Col(
                "longevity_band",
                "int",
                "Band of tenure_days on the features.value_tiers.longevity_days bounds (0 = newest).",
            ),
            Col(
                "recency_band",
                "int",
                "Band of recency_days on the features.value_tiers.recency_days bounds (0 = most recent).",
            ),
            Col(
                "value_tier",
                "string",
                "Value tier: features.value_tiers.tiers[longevity_band][recency_band], refreshed each run.",
            ),
        ),
    ),
    Table(
        name="gold/customer_value",
        grain="customer x as-of date",
        written_by=("value",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("customer_id", "string", "Customer (as in gold/customer_profile)."),
            Col("as_of_date", "date", "Partition: as-of date D of the gold/customer_profile partition valued."),
            Col(
                "frequency_repeat",
                "bigint",
                "BG/NBD x: repeat purchases up to D, orders_lifetime - 1 (receipts with amount > 0; two receipts on "
                "one day are two purchases).",
            ),
            Col(
                "recency_time",
                "int",
                "BG/NBD t_x: time from the first to the last purchase date (length_days / time_unit_days, rounded to "
                "whole units); 0 without a repeat purchase. Not RFM recency.",
            ),
            Col(
                "age_time",
                "int",
                "BG/NBD T: time from the first purchase date to D (tenure_days / time_unit_days, rounded to whole "
                "units).",
            ),
            Col("time_unit_days", "double", "Days per model time unit (value.time_unit_days; 7 = weeks)."),
            Col(
                "avg_spend_observed",
                "decimal(18,2)",
                "Observed spend per purchase: gross_spend_lifetime / orders_lifetime, every purchase including the "
                "first, base currency, rounded to cents.",
            ),
            Col(
                "expected_purchases",
                "double",
                "BG/NBD expected purchases in the next horizon_days after D, given x, t_x and T.",
            ),
            Col(
                "probability_alive",
                "double",
                "BG/NBD probability that the customer is still active at D (1 without a repeat purchase: dropout "
                "happens only after a repeat purchase).",
            ),
            Col(
                "expected_avg_spend",
                "double",
                "Gamma-Gamma expected spend per future purchase, base currency: (gg_gamma + avg_spend_observed x) "
                "gg_p / (gg_p x + gg_q - 1); the population mean gg_p gg_gamma / (gg_q - 1) for x = 0.",
            ),
            Col(
                "clv_amount",
                "decimal(18,2)",
                "Customer lifetime value over the horizon: expected_purchases x expected_avg_spend, base currency, "
                "undiscounted, rounded to cents.",
            ),
            Col(
                "clv_decile",
                "int",
                "Decile of clv_amount in the as-of population, 1 = the highest tenth (approximate thresholds, "
                "value.relative_error; a value equal to a threshold goes to the lower-value decile, the larger number; "
                "ties share a decile).",
            ),
            Col("horizon_days", "int", "CLV horizon in days (value.horizon_days)."),
            Col("bgnbd_r", "double", "BG/NBD r: shape of the purchase-rate gamma distribution (same on every row)."),
            Col(
                "bgnbd_alpha",
                "double",
                "BG/NBD alpha: rate of the purchase-rate gamma distribution, per time unit (same on every row).",
            ),
            Col("bgnbd_a", "double", "BG/NBD a: first shape of the dropout-probability beta distribution."),
            Col("bgnbd_b", "double", "BG/NBD b: second shape of the dropout-probability beta distribution."),
            Col("gg_p", "double", "Gamma-Gamma p: shape of the spend per purchase (same on every row)."),
            Col("gg_q", "double", "Gamma-Gamma q: shape of the customers' spend-scale distribution (> 1)."),
            Col("gg_gamma", "double", "Gamma-Gamma gamma: rate of the customers' spend-scale distribution."),
        ),
    ),
    Table(
        name="gold/cohort_retention",
        grain="as_of x cohort x period offset",
        written_by=("cohorts",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=RETENTION_COLUMNS,
    ),
    Table(
        name="gold/cohort_retention_by_channel",
        grain="as_of x cohort x first channel x period offset",
        written_by=("cohorts",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            *RETENTION_COLUMNS[:4],
            Col("first_channel", "string", "Channel of the customer's first purchase (store, online, app)."),
            *RETENTION_COLUMNS[4:],
        ),
    ),
    Table(
        name="gold/rfm_segments",
        grain="customer x as-of date",
        written_by=("segment",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("customer_id", "string", "Customer (as in gold/customer_profile)."),
            Col("as_of_date", "date", "Partition: as-of date D of the profile scored."),
            Col("recency_days", "int", "Profile recency: whole days from the last purchase date to D."),
            Col("frequency", "bigint", "Profile frequency: purchases in the window."),
            Col(
                "monetary_amount",
                "decimal(18,2)",
                "Profile monetary: net amount in the window, base currency; may be 0 or negative.",
            ),
            Col(
                "r_score",
                "int",
                "Recency score 1..rfm.tiles, 1 = most recent tile (see gold/rfm_thresholds); null for a customer "
                "the map's scoring leaves out (scoring window_buyers: no purchase in the window).",
            ),
            Col("f_score", "int", "Frequency score 1..rfm.tiles, 1 = most frequent tile; null when not scored."),
            Col("m_score", "int", "Monetary score 1..rfm.tiles, 1 = highest-spend tile; null when not scored."),
            Col("rfm_cell", "string", "R, F and M score as three digits, e.g. '113'; null when not scored."),
            Col("segment_map", "string", "Name of the segment map (rfm.segment_map) that named the cell."),
            Col(
                "category",
                "string",
                "Named segment: of the cell in that map, or for a customer without a cell of the map's "
                "no_window_purchase recency band; 'Other' when the map names neither.",
            ),
            Col("campaign", "string", "Campaign of the category; null for Other."),
            Col("value_tier", "string", "Value tier from the profile (longevity x recency grid)."),
            Col(
                "clv_amount",
                "decimal(18,2)",
                "Customer lifetime value over value.horizon_days (gold/customer_value of the same as-of date); "
                "null when the value stage has not run for it.",
            ),
            Col("clv_decile", "int", "Decile of clv_amount, 1 = the highest tenth (gold/customer_value); null: none."),
            Col(
                "probability_alive",
                "double",
                "BG/NBD probability that the customer is still active at D (gold/customer_value); null: none.",
            ),
            Col(
                "is_above_average_clv",
                "boolean",
                "True when clv_amount is above the mean clv_amount of the as-of population; null without CLV.",
            ),
        ),
    ),
    Table(
        name="gold/rfm_thresholds",
        grain="metric x tile x as-of date",
        written_by=("segment",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("as_of_date", "date", "Partition: as-of date D of the scored profile."),
            Col("metric", "string", "recency, frequency or monetary."),
            Col(
                "scoring",
                "string",
                "Whom the thresholds rank (the segment map's scoring): 'all' customers of the population, or "
                "'window_buyers', those with a purchase in the window.",
            ),
            Col("tiles", "int", "Tiles per metric (rfm.tiles)."),
            Col("tile", "int", "Ascending tile 1..tiles: tile i holds values in (lower_bound, upper_bound]."),
            Col(
                "score",
                "int",
                "Score of the tile (1 = best): the tile for recency, tiles + 1 - tile for frequency and monetary.",
            ),
            Col("lower_bound", "double", "Threshold t_(tile-1), exclusive; null for tile 1 (no lower bound)."),
            Col(
                "upper_bound",
                "double",
                "Threshold t_tile, inclusive: the lower tile/tiles quantile; null for the last tile.",
            ),
            Col("customers", "bigint", "Customers in the tile; 0 for a tile that ties left empty."),
        ),
    ),
    Table(
        name="gold/rule_segments",
        grain="rule segment x customer x as-of date",
        written_by=("segment",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("as_of_date", "date", "Partition: as-of date D of the profile the rules ran on."),
            Col("segment", "string", "Rule name (rfm.rules file) whose predicate is true for the customer."),
            Col("customer_id", "string", "Customer in the rule segment (one row per segment the customer is in)."),
        ),
    ),
    Table(
        name="gold/campaign_audiences",
        grain="campaign x customer x as-of date",
        written_by=("segment",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("as_of_date", "date", "Partition: as-of date D of the segments."),
            Col("campaign", "string", "Campaign of an RFM category or a rule segment."),
            Col("customer_id", "string", "Customer the campaign reaches (once per campaign)."),
            Col(
                "source",
                "string",
                "How the customer got in: 'rfm' (category of the segment map) or 'rule' (rule segment).",
            ),
            Col(
                "segment",
                "string",
                "The category or rule name; the RFM category first, else the first rule in file order.",
            ),
            Col(
                "channel",
                "string",
                "Channel of the campaign (rfm.campaigns: email, sms, direct_mail, ...); null when not set. Every "
                "row passed the channel's consent column.",
            ),
            Col("priority", "int", "Priority of an exclusive campaign (1 = first); null: not exclusive."),
            Col(
                "offer_category",
                "string",
                "The customer's first next-best-offer category (gold/next_best_offer rank 1); null without offers.",
            ),
            Col(
                "is_holdout",
                "boolean",
                "True: held out (not to contact; the control group). A hash of campaign and customer id picks the "
                "campaign's holdout share, the same customers on every rerun.",
            ),
        ),
    ),
    Table(
        name="gold/campaign_summary",
        grain="campaign x as-of date",
        written_by=("segment",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("as_of_date", "date", "Partition: as-of date D of the segments."),
            Col("campaign", "string", "Campaign of an RFM category or a rule segment."),
            Col("channel", "string", "Channel of the campaign (rfm.campaigns); null when not set."),
            Col("consent_column", "string", "Profile column that must be true to contact on the channel; null: none."),
            Col("priority", "int", "Priority of an exclusive campaign (1 = first); null: not exclusive."),
            Col("holdout_share", "double", "Share of the audience held out (rfm.campaigns holdout)."),
            Col("candidate_customers", "bigint", "Customers the segments or rules put in the campaign."),
            Col("no_consent_customers", "bigint", "Candidates left out: the channel's consent column is not true."),
            Col(
                "excluded_customers",
                "bigint",
                "Consenting candidates left out: an exclusive campaign with a lower priority number has them.",
            ),
            Col("audience_customers", "bigint", "Rows in gold/campaign_audiences: holdout + contact."),
            Col("holdout_customers", "bigint", "Audience customers held out (is_holdout)."),
            Col("contact_customers", "bigint", "Audience customers to contact."),
        ),
    ),
    Table(
        name="gold/segment_migration",
        grain="previous category x current category x as-of date",
        written_by=("segment",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("as_of_date", "date", "Partition: as-of date D (current)."),
            Col(
                "previous_as_of_date",
                "date",
                "Nearest earlier as-of date in gold/rfm_segments the categories are compared with.",
            ),
            Col(
                "previous_category",
                "string",
                "Category at previous_as_of_date; '(new)' for customers not in that population.",
            ),
            Col("current_category", "string", "Category at D; '(gone)' for customers no longer in the population."),
            Col("customers", "bigint", "Customers moving from previous_category to current_category."),
            Col(
                "revenue_amount",
                "decimal(18,2)",
                "Their window monetary amount at D (for '(gone)' the one at previous_as_of_date), base currency.",
            ),
        ),
    ),
    Table(
        name="gold/next_best_offer",
        grain="customer x rank x as-of date",
        written_by=("segment",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("as_of_date", "date", "Partition: as-of date D; categories bought up to D's last whole month count."),
            Col("customer_id", "string", "Customer offered (as in gold/rfm_segments)."),
            Col(
                "grouping",
                "string",
                "How customer_group was formed, e.g. 'segment x top_category' (gold/rfm_segments.category and "
                "the profile's top_category, the default) or 'segment'; 'item_cooccurrence' with offers.method "
                "item_cooccurrence (no groups).",
            ),
            Col(
                "customer_group",
                "string",
                "The customer's group the lift is computed in; parts of a composite group joined by ' | ', a null "
                "part '(none)'; '(customer)' for item co-occurrence (each customer's own purchases).",
            ),
            Col("rank", "int", "1 = best offer; at most the configured number per customer (fewer when few are left)."),
            Col(
                "offer_category",
                "string",
                "Product category offered: one the customer has not bought up to D (positive purchase amount).",
            ),
            Col(
                "source",
                "string",
                "'lift': one of the group's categories with lift > 1 and enough buyers in the group (by lift, then "
                "group_share, then name); 'cooccurrence' (offers.method item_cooccurrence): bought together with "
                "the customer's categories (by score, then overall_share, then name); 'popular': the fill-up by "
                "overall_share (then name) when those run out or the group is too small.",
            ),
            Col(
                "lift",
                "double",
                "group_share / overall_share of the category in the customer's group (0 when nobody in it bought it); "
                "item co-occurrence: the score (sum of the category's similarity to each category the customer "
                "bought), null for a popular fill-up.",
            ),
            Col(
                "group_share",
                "double",
                "Customers of the group who bought the category up to D / group customers; null for item "
                "co-occurrence.",
            ),
            Col("overall_share", "double", "Customers who bought the category up to D / all customers offered."),
        ),
    ),
    Table(
        name="gold/clusters",
        grain="customer x as-of date",
        written_by=("clusters",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("as_of_date", "date", "Partition: as-of date D of the gold/customer_profile partition clustered."),
            Col("customer_id", "string", "Customer (as in gold/customer_profile)."),
            Col(
                "cluster_id",
                "int",
                "Stable cluster id: matched to the previous run's clusters, so an id keeps meaning the same group "
                "(see gold/cluster_profiles.match_distance).",
            ),
            Col(
                "cluster_name",
                "string",
                "Cluster name: the analyst's label (clusters.labels_file) or the generated one.",
            ),
            Col("distance", "double", "Euclidean distance to the cluster centre in the standardised feature space."),
        ),
    ),
    Table(
        name="gold/cluster_profiles",
        grain="cluster x as-of date",
        written_by=("clusters",),
        write_mode="replace_partitions",
        partition_by=("as_of_date",),
        columns=(
            Col("as_of_date", "date", "Partition: as-of date D of the clustering run."),
            Col("cluster_id", "int", "Stable cluster id (as in gold/clusters)."),
            Col(
                "cluster_name",
                "string",
                "Analyst label if one is given for the id, else the generated name (unique in the run).",
            ),
            Col(
                "name_source", "string", "'analyst' (from clusters.labels_file) or 'generated' (from the top features)."
            ),
            Col("notes", "string", "Analyst notes for the cluster; null without a label or notes."),
            Col("customers", "bigint", "Customers in the cluster."),
            Col("customer_share", "double", "customers / all customers clustered."),
            Col(
                "revenue_share",
                "double",
                "Cluster monetary_amount (net, window) / the population's; null when that total is 0.",
            ),
            Col(
                "feature_means",
                "map<string,double>",
                "Feature -> mean of the raw profile value in the cluster (nulls skipped).",
            ),
            Col(
                "feature_z_scores",
                "map<string,double>",
                "Feature -> (cluster mean - population mean) / population standard deviation (raw values; 0 for a "
                "constant feature).",
            ),
            Col(
                "top_features",
                "array<string>",
                "Features with the largest |z-score|, strongest first (clusters.top_features).",
            ),
            Col(
                "match_distance",
                "double",
                "Distance to the previous run's cluster that gave this id (raw means scaled by this run's population "
                "standard deviations); null for a fresh id.",
            ),
        ),
    ),
    Table(
        name="ops/runs",
        grain="one row per job run",
        written_by=("*",),
        write_mode="append",
        partition_by=(),
        columns=(
            Col("run_id", "string", "Unique id of the job run."),
            Col("job", "string", "Job name (generate, ingest, cleanse, features, ...)."),
            Col("as_of_date", "date", "As-of date the run computed for; null for jobs without one."),
            Col(
                "status",
                "string",
                "started (written when the run begins: it holds the lake's write lease), then one more row with "
                "succeeded or failed when it ends; abandoned is written by a later run for a started run whose "
                "driver died (its lease lapsed). A run's outcome is its last row.",
            ),
            Col("started_at", "timestamp", "UTC start time of the run."),
            Col(
                "ended_at",
                "timestamp",
                "UTC end time of the run; null on its started row; on an abandoned row, when a later run found it "
                "abandoned.",
            ),
            Col("rows_in", "bigint", "Rows read from the run's main input table."),
            Col("rows_out", "bigint", "Rows written to the run's main output table."),
            Col("tables_read", "map<string,bigint>", "Delta table -> version read, so a run can be replayed."),
            Col("tables_written", "map<string,bigint>", "Delta table -> version committed by this run."),
            Col("config_hash", "string", "Hash of the effective configuration."),
            Col("config_source", "string", "Config file (or defaults) the run used."),
            Col("code_version", "string", "seglake version and git commit."),
            Col("error", "string", "One-line error for a failed run; null when it succeeded."),
            Col(
                "details",
                "string",
                "Job-specific figures as JSON (e.g. generate throughput; features: the rollup it left; cohorts: its "
                "source).",
            ),
        ),
    ),
    Table(
        name="ops/leases",
        grain="one row per lease heartbeat",
        written_by=("*",),
        write_mode="append",
        partition_by=(),
        columns=(
            Col("run_id", "string", "ops/runs.run_id of the run that holds the lake's write lease."),
            Col("job", "string", "Job of that run."),
            Col("renewed_at", "timestamp", "UTC time of the heartbeat."),
            Col(
                "expires_at",
                "timestamp",
                "UTC time the lease lapses without a later heartbeat (ops.lease_seconds after renewed_at).",
            ),
            Col("driver", "string", "host:pid of the run's driver process."),
        ),
    ),
    Table(
        name="ops/data_quality",
        grain="rule x run",
        written_by=("cleanse",),
        write_mode="append",
        partition_by=(),
        columns=(
            Col("run_id", "string", "ops/runs.run_id of the checking run."),
            Col("job", "string", "Job that ran the check."),
            Col("checked_at", "timestamp", "UTC time of the check."),
            Col("table_name", "string", "Table whose rows were checked."),
            Col(
                "check_name",
                "string",
                "Rule (a reject reason code), quarantine_rate (all reasons together), row_count_drop (rows read "
                "against the last succeeded cleanse run of the same kind, full or incremental) or books_balance.",
            ),
            Col("rows_checked", "bigint", "Rows the check looked at: the rows the run read."),
            Col(
                "rows_flagged",
                "bigint",
                "Rows the rule rejected; for quarantine_rate, all rows quarantined; for row_count_drop, how many "
                "fewer rows than that earlier run read; for books_balance, rows unaccounted for.",
            ),
            Col(
                "passed",
                "boolean",
                "Rules and quarantine_rate: rows_flagged / rows_checked is at most its threshold "
                "(cleanse.thresholds; true, not judged, below cleanse.thresholds.min_rows rows read). row_count_drop: "
                "the drop is at most cleanse.thresholds.max_row_drop (true when that is null or there is no earlier "
                "run). books_balance: rows in = clean + quarantined, counted in the tables as committed (before "
                "writing when the run stopped there). A false check fails the run.",
            ),
            Col(
                "detail",
                "string",
                "What the rule means, the figures and the threshold (setting and value), or the book figures and "
                "where they were counted.",
            ),
        ),
    ),
    Table(
        name="ops/profile",
        grain="source column x run",
        written_by=("cleanse",),
        write_mode="append",
        partition_by=(),
        columns=(
            Col("run_id", "string", "ops/runs.run_id of the profiling run."),
            Col("profiled_at", "timestamp", "UTC time of the profile."),
            Col("table_name", "string", "Profiled table (the rows that run read)."),
            Col("column_name", "string", "Profiled column."),
            Col("data_type", "string", "Spark type of the column."),
            Col("rows", "bigint", "Rows profiled."),
            Col("null_count", "bigint", "Rows where the column is null."),
            Col("null_rate", "double", "null_count / rows."),
            Col("approx_distinct", "bigint", "Approximate distinct values (HyperLogLog++)."),
            Col("min_value", "string", "Smallest value, as text."),
            Col("max_value", "string", "Largest value, as text."),
            Col("p25", "string", "Approximate first quartile (numbers, dates, timestamps), as text."),
            Col("p50", "string", "Approximate median, as text."),
            Col("p75", "string", "Approximate third quartile, as text."),
            Col(
                "top_values",
                "array<struct<value:string,rows:bigint>>",
                "Most frequent values with their counts, counted on a sample.",
            ),
        ),
    ),
)


CATALOG: dict[str, Table] = {table.name: table for table in TABLES}


def table(name: str) -> Table:
    """The record of ``name`` (e.g. ``silver/receipts``); a name not in the catalog is a bug."""
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"{name}: not a table of the catalog (seglake/catalog.py)") from None


def restorable_tables_of(job: str) -> list[Table]:
    """The tables a failed ``job`` stage is restored to their version from before it."""
    return [t for t in TABLES if t.is_written_by(job) and t.is_restorable]
