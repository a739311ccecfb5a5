"""Lake table paths, column comments and Delta reads/writes.

Every output column carries a comment (Delta schema metadata ``comment``), which
delta-rs, DuckDB, Trino and BI tools show. The comments live here, one registry for
all tables, and :func:`write_table` refuses a column that has none.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from seglake.config import SeglakeConfig
from seglake.errors import UserError

LINEAGE_COMMENTS = {
    "source_file": "File (or generator) the row came from.",
    "row_key": "Unique key of the source row within the lake (lineage).",
    "ingested_at": "UTC time the row was written to bronze.",
}

RECEIPT_COMMENTS = {
    "receipt_id": "Receipt (basket, invoice) identifier as delivered.",
    "customer_id": "Customer identifier as delivered (not yet trimmed or case-normalised).",
    "receipt_ts": "Time of the receipt (session time zone, UTC by default).",
    "amount": "Receipt total in `currency`; negative for a return.",
    "currency": "ISO 4217 code of `amount` as delivered.",
    "channel": "Sales channel as delivered (store, online, app, or a source's own word).",
    "store_id": "Store identifier; online and app receipts use the region's web store.",
    "region": "Sales region of the store.",
    "category": "Product category with the largest amount on the receipt.",
    "item_count": "Number of items on the receipt.",
    "discount_amount": "Total discount granted on the receipt, in `currency`, >= 0.",
    "coupon_used": "True if a coupon was redeemed on the receipt.",
}

RETENTION_COMMENTS = {
    "as_of_date": "Partition: the as-of date D of the run; receipts after it are ignored.",
    "period_unit": "Cohort period: day, week (Monday-Sunday), month or year (config cohorts.period).",
    "cohort": "Label of the cohort period: YYYY-MM, YYYY, or the first day (YYYY-MM-DD).",
    "cohort_start_date": "First day of the cohort period (the period of the first purchase).",
    "period_offset": "Periods since the cohort's own period (0 = the cohort period).",
    "period_start_date": "First day of the period this row counts.",
    "cohort_size": "Customers in the cohort.",
    "active_customers": "Cohort customers with a purchase in the period (0 when none).",
    "retention_rate": "active_customers / cohort_size.",
    "orders": "Purchases (receipts with a positive amount) of the cohort in the period.",
    "revenue_amount": "Net amount (purchases + returns) of the cohort in the period, base currency.",
    "avg_receipt_amount": "Purchase amount / orders in the period; null without orders.",
    "is_partial_period": "True for the period that D cuts short (D is not its last day).",
}

COMMENTS: dict[str, dict[str, str]] = {
    "bronze/receipts": {
        **RECEIPT_COMMENTS,
        **LINEAGE_COMMENTS,
        "raw_record": "Source row as text when it could not be parsed; null otherwise.",
        "parse_errors": "Canonical columns whose source value did not parse (comma-separated); "
        "null when the row parsed cleanly.",
        "receipt_month": "Partition: calendar month of receipt_ts (YYYY-MM), 'unknown' if null.",
    },
    "bronze/customers": {
        "customer_id": "Customer identifier as delivered.",
        "signup_date": "Date the customer account was created.",
        "birth_year": "Year of birth; null when unknown.",
        "age_band": "Age band as delivered (e.g. 35-44); null when unknown.",
        "gender": "Gender as delivered (F, M, X); null when unknown.",
        "region": "Home region of the customer.",
        "is_loyalty_member": "True if the customer is in the loyalty programme.",
        "has_email_opt_in": "True if the customer agreed to marketing e-mail.",
        "attributes": "Other source attributes (name -> value as text), e.g. income band.",
        **LINEAGE_COMMENTS,
    },
    "bronze/_generator_truth": {
        "row_key": "bronze/receipts.row_key of the row the generator made defective.",
        "defect": "Injected defect kind (e.g. null_customer, duplicate_row).",
        "expected_outcome": "What cleansing must do: the reject reason code, or 'normalised'.",
    },
    "silver/receipts": {
        "receipt_id": "Receipt identifier, unique in the table.",
        "customer_id": "Customer identifier, trimmed and case-normalised.",
        "receipt_ts": "Time of the receipt (UTC).",
        "amount": "Receipt total in the base currency (currency.base); negative for a return.",
        "currency": "Currency the source delivered the amount in (ISO 4217).",
        "channel": "Sales channel: store, online or app.",
        "store_id": "Store identifier.",
        "region": "Sales region of the store.",
        "category": "Product category with the largest amount on the receipt.",
        "item_count": "Number of items on the receipt.",
        "discount_amount": "Total discount on the receipt in the base currency, >= 0.",
        "coupon_used": "True if a coupon was redeemed on the receipt.",
        "source_file": "File (or generator) the receipt came from.",
        "row_key": "bronze/receipts.row_key of the source row (lineage).",
        "ingested_at": "UTC time the source row was written to bronze.",
        "cleanse_run_id": "ops/runs.run_id of the cleanse run that accepted the receipt.",
        "receipt_month": "Partition: calendar month of receipt_ts (YYYY-MM).",
    },
    "silver/receipts_quarantine": {
        **{name: f"As in bronze/receipts: {text}" for name, text in RECEIPT_COMMENTS.items()},
        **LINEAGE_COMMENTS,
        "raw_record": "Source row as text when it could not be parsed; null otherwise.",
        "parse_errors": "Canonical columns whose source value did not parse (comma-separated).",
        "receipt_month": "Calendar month of receipt_ts in bronze (YYYY-MM or 'unknown').",
        "reject_reason": "Why the row was rejected: a reason code (see README, Cleansing).",
        "reject_detail": "The offending value or the row kept instead, in words.",
        "cleanse_run_id": "ops/runs.run_id of the cleanse run that rejected the row.",
        "quarantined_at": "UTC time of that run.",
    },
    "silver/customer_month": {
        "customer_id": "Customer identifier (as in silver/receipts).",
        "month": "Partition: calendar month of the receipt date (YYYY-MM, in spark.timezone).",
        "orders": "Purchases (receipts with amount > 0) in the month.",
        "purchase_amount": "Sum of the month's purchase amounts, base currency.",
        "returns": "Returns (receipts with amount < 0) in the month.",
        "return_amount": "Sum of the month's return amounts, base currency, <= 0.",
        "net_amount": "purchase_amount + return_amount.",
        "first_purchase_ts": "Time of the month's first purchase; null without purchases.",
        "last_purchase_ts": "Time of the month's last purchase; null without purchases.",
        "gap_count": "Purchases in the month that have an earlier purchase (ever): one gap each.",
        "gap_sum_days": "Sum of the whole days from each such purchase's date to the previous purchase date "
        "(a gap crossing into the month counts here; same day = 0).",
        "gap_sumsq_days": "Sum of the squares of those gaps (for the standard deviation, periodicity).",
        "last_purchase_dates": "The month's last k purchase dates, latest first (k = features.recency_last_k).",
        "first_purchase_channel": "Channel of the month's first purchase (earliest receipt_ts, then receipt_id).",
        "max_receipt_amount": "Largest purchase amount in the month, base currency; null without purchases.",
        "coupon_orders": "Purchases in the month with a coupon redeemed.",
        "discount_amount": "Sum of the discounts on the month's purchases, base currency.",
        "items": "Sum of item_count over the month's purchases.",
        "weekend_orders": "Purchases on a Saturday or Sunday (spark.timezone).",
        "night_orders": "Purchases from 00:00 to 05:59 (spark.timezone).",
        "morning_orders": "Purchases from 06:00 to 11:59 (spark.timezone).",
        "afternoon_orders": "Purchases from 12:00 to 17:59 (spark.timezone).",
        "evening_orders": "Purchases from 18:00 to 23:59 (spark.timezone).",
        "store_channel_orders": "Purchases in the store channel.",
        "online_channel_orders": "Purchases in the online channel.",
        "app_channel_orders": "Purchases in the app channel.",
        "category_amounts": "Purchase amount per product category (category -> base-currency amount).",
        "region_orders": "Purchases per sales region (region -> count).",
        "store_orders": "Purchases per store (store_id -> count).",
    },
    "gold/customer_profile": {
        "customer_id": "Customer with at least one purchase on or before as_of_date.",
        "as_of_date": "Partition: as-of date D of the run; receipts after D are ignored.",
        "recency_days": "Whole days from the last purchase date to D; 0 if bought on D.",
        "frequency": "Purchases (receipts with amount > 0) in the window (D - window_days, D]; may be 0.",
        "monetary_amount": "Net amount (purchases + returns) of the receipts in the window, base currency; "
        "may be 0 or negative.",
        "avg_receipt_amount": "Window purchase amount / frequency, rounded to cents; null when frequency is 0.",
        "first_purchase_date": "Date of the first purchase.",
        "last_purchase_date": "Date of the last purchase on or before D.",
        "tenure_days": "Days from the first purchase date to D.",
        "length_days": "LRFMP length L: days from the first to the last purchase date.",
        "recency_last_k_days": "Mean days from each of the last k purchases (k = features.recency_last_k; "
        "fewer if there are fewer) to D.",
        "periodicity_days": "LRFMP periodicity P: sample standard deviation of the whole days between "
        "consecutive purchase dates up to D (same day = 0); null below three purchases.",
        "cohort": "Month of the first purchase (YYYY-MM).",
        "mean_gap_days": "Mean whole days between consecutive purchase dates up to D; null below two purchases.",
        "orders_lifetime": "Relationship: purchases on or before D.",
        "net_amount_lifetime": "Spend: net amount (purchases + returns) of all receipts on or before D, base currency.",
        "first_channel": "Relationship: channel of the first purchase (store, online, app).",
        "months_active_lifetime": "Relationship: calendar months with at least one purchase, up to D.",
        "months_active_window": "Relationship: calendar months with a purchase in the window.",
        "gross_spend_lifetime": "Spend: sum of purchase amounts (returns not netted) up to D, base currency.",
        "gross_spend_window": "Spend: sum of purchase amounts in the window, base currency.",
        "max_receipt_amount_lifetime": "Spend: largest single purchase up to D, base currency.",
        "max_receipt_amount_window": "Spend: largest single purchase in the window; null without one.",
        "spend_last_3_months": "Spend: net amount in the 3 calendar months ending with the last whole month "
        "on or before D (D's own month when D is its last day).",
        "spend_previous_3_months": "Spend: net amount in the 3 calendar months before those.",
        "spend_trend_ratio": "Spend: spend_last_3_months / spend_previous_3_months (1 = flat, > 1 growing); "
        "null when the previous 3 months are <= 0.",
        "categories_window": "Products: distinct product categories bought in the window.",
        "top_category": "Products: category with the largest purchase amount in the window (ties: first by name).",
        "top_category_share": "Products: top_category's share of the window's purchase amount with a category.",
        "store_order_share": "Channels: share of window purchases made in a store; null when frequency is 0.",
        "online_order_share": "Channels: share of window purchases made online; null when frequency is 0.",
        "app_order_share": "Channels: share of window purchases made in the app; null when frequency is 0.",
        "channels_used_window": "Channels: distinct channels with a purchase in the window.",
        "is_omnichannel": "Channels: true when the customer bought through 2 or more channels in the window; "
        "null when frequency is 0.",
        "main_channel": "Channels: channel with the most window purchases (ties: first by name).",
        "coupon_orders_window": "Promotions: window purchases with a coupon redeemed.",
        "coupon_order_share": "Promotions: coupon_orders_window / frequency; null when frequency is 0.",
        "discount_amount_window": "Promotions: discounts granted on window purchases, base currency.",
        "discount_share": "Promotions: discount_amount_window / (gross_spend_window + discount_amount_window), "
        "the share of the list price given away.",
        "items_window": "Basket: items bought in the window (sum of item_count over purchases).",
        "avg_items_per_order": "Basket: items_window / frequency (mean basket size); null when frequency is 0.",
        "avg_item_amount": "Basket: gross_spend_window / items_window (mean price per item).",
        "weekend_order_share": "Time: share of window purchases on Saturday or Sunday (spark.timezone).",
        "night_order_share": "Time: share of window purchases from 00:00 to 05:59.",
        "morning_order_share": "Time: share of window purchases from 06:00 to 11:59.",
        "afternoon_order_share": "Time: share of window purchases from 12:00 to 17:59.",
        "evening_order_share": "Time: share of window purchases from 18:00 to 23:59.",
        "preferred_part_of_day": "Time: part of day (night, morning, afternoon, evening) with the most window "
        "purchases; ties go to the earlier part.",
        "peak_month_of_year": "Time: calendar month (1-12) with the most window purchases (ties: earliest).",
        "peak_month_share": "Time: seasonality index, the peak month's share of window purchases "
        "(1/12 = even, 1 = all in one month).",
        "returns_window": "Returns: return receipts (amount < 0) in the window.",
        "return_amount_window": "Returns: amount returned in the window, base currency, >= 0.",
        "return_rate_count": "Returns: returns_window / frequency; null when frequency is 0.",
        "return_rate_amount": "Returns: return_amount_window / gross_spend_window; null without purchases.",
        "main_region": "Geography: sales region with the most window purchases (ties: first by name).",
        "main_region_share": "Geography: main_region's share of window purchases.",
        "regions_used_window": "Geography: distinct regions with a purchase in the window.",
        "main_store": "Geography: store with the most window purchases (ties: first by id).",
        "stores_used_window": "Geography: distinct stores with a purchase in the window.",
        "age_band": "Demographics: age band from bronze/customers; null when unknown or without that table.",
        "gender": "Demographics: gender from bronze/customers (F, M, X); null when unknown.",
        "is_loyalty_member": "Demographics: in the loyalty programme (bronze/customers).",
        "has_email_opt_in": "Demographics: agreed to marketing e-mail (bronze/customers).",
        "home_region": "Demographics: home region from bronze/customers.",
        "longevity_band": "Band of tenure_days on the features.value_tiers.longevity_days bounds (0 = newest).",
        "recency_band": "Band of recency_days on the features.value_tiers.recency_days bounds (0 = most recent).",
        "value_tier": "Value tier: features.value_tiers.tiers[longevity_band][recency_band], refreshed each run.",
    },
    "gold/cohort_retention": RETENTION_COMMENTS,
    "gold/cohort_retention_by_channel": {  # the same, split by first channel after the cohort
        **dict(list(RETENTION_COMMENTS.items())[:4]),
        "first_channel": "Channel of the customer's first purchase (store, online, app).",
        **dict(list(RETENTION_COMMENTS.items())[4:]),
    },
    "ops/data_quality": {
        "run_id": "ops/runs.run_id of the checking run.",
        "job": "Job that ran the check.",
        "checked_at": "UTC time of the check.",
        "table_name": "Table whose rows were checked.",
        "check_name": "Rule (a reject reason code), quarantine_rate (all reasons together), row_count_drop "
        "(rows read against the last succeeded cleanse run of the same kind, full or incremental) or books_balance.",
        "rows_checked": "Rows the check looked at: the rows the run read.",
        "rows_flagged": "Rows the rule rejected; for quarantine_rate, all rows quarantined; for row_count_drop, how "
        "many fewer rows than that earlier run read; for books_balance, rows unaccounted for.",
        "passed": "Rules and quarantine_rate: rows_flagged / rows_checked is at most its threshold "
        "(cleanse.thresholds; true, not judged, below cleanse.thresholds.min_rows rows read). row_count_drop: the "
        "drop is at most cleanse.thresholds.max_row_drop (true when that is null or there is no earlier run). "
        "books_balance: rows in = clean + quarantined, counted in the tables as committed (before writing when "
        "the run stopped there). A false check fails the run.",
        "detail": "What the rule means, the figures and the threshold (setting and value), or the book figures "
        "and where they were counted.",
    },
    "ops/profile": {
        "run_id": "ops/runs.run_id of the profiling run.",
        "profiled_at": "UTC time of the profile.",
        "table_name": "Profiled table (the rows that run read).",
        "column_name": "Profiled column.",
        "data_type": "Spark type of the column.",
        "rows": "Rows profiled.",
        "null_count": "Rows where the column is null.",
        "null_rate": "null_count / rows.",
        "approx_distinct": "Approximate distinct values (HyperLogLog++).",
        "min_value": "Smallest value, as text.",
        "max_value": "Largest value, as text.",
        "p25": "Approximate first quartile (numbers, dates, timestamps), as text.",
        "p50": "Approximate median, as text.",
        "p75": "Approximate third quartile, as text.",
        "top_values": "Most frequent values with their counts, counted on a sample.",
    },
    "ops/runs": {
        "run_id": "Unique id of the job run.",
        "job": "Job name (generate, ingest, cleanse, features, ...).",
        "as_of_date": "As-of date the run computed for; null for jobs without one.",
        "status": "succeeded or failed.",
        "started_at": "UTC start time of the run.",
        "ended_at": "UTC end time of the run.",
        "rows_in": "Rows read from the run's main input table.",
        "rows_out": "Rows written to the run's main output table.",
        "tables_read": "Delta table -> version read, so a run can be replayed.",
        "tables_written": "Delta table -> version committed by this run.",
        "config_hash": "Hash of the effective configuration.",
        "config_source": "Config file (or defaults) the run used.",
        "code_version": "seglake version and git commit.",
        "error": "One-line error for a failed run; null when it succeeded.",
        "details": (
            "Job-specific figures as JSON (e.g. generate throughput; features: the rollup it left; "
            "cohorts: its source)."
        ),
    },
    # --- segment job (branch segments) ---
    "gold/rfm_segments": {
        "customer_id": "Customer (as in gold/customer_profile).",
        "as_of_date": "Partition: as-of date D of the profile scored.",
        "recency_days": "Profile recency: whole days from the last purchase date to D.",
        "frequency": "Profile frequency: purchases in the window.",
        "monetary_amount": "Profile monetary: net amount in the window, base currency; may be 0 or negative.",
        "r_score": "Recency score 1..rfm.tiles, 1 = most recent tile (see gold/rfm_thresholds).",
        "f_score": "Frequency score 1..rfm.tiles, 1 = most frequent tile.",
        "m_score": "Monetary score 1..rfm.tiles, 1 = highest-spend tile.",
        "rfm_cell": "R, F and M score as three digits, e.g. '113'.",
        "segment_map": "Name of the segment map (rfm.segment_map) that named the cell.",
        "category": "Named segment of the cell in that map; 'Other' when the map does not list the cell.",
        "campaign": "Campaign of the category; null for Other.",
        "value_tier": "Value tier from the profile (longevity x recency grid).",
    },
    "gold/rfm_thresholds": {
        "as_of_date": "Partition: as-of date D of the scored profile.",
        "metric": "recency, frequency or monetary.",
        "tiles": "Tiles per metric (rfm.tiles).",
        "tile": "Ascending tile 1..tiles: tile i holds values in (lower_bound, upper_bound].",
        "score": "Score of the tile (1 = best): the tile for recency, tiles + 1 - tile for frequency and monetary.",
        "lower_bound": "Threshold t_(tile-1), exclusive; null for tile 1 (no lower bound).",
        "upper_bound": "Threshold t_tile, inclusive: the lower tile/tiles quantile; null for the last tile.",
        "customers": "Customers in the tile; 0 for a tile that ties left empty.",
    },
    "gold/rule_segments": {
        "as_of_date": "Partition: as-of date D of the profile the rules ran on.",
        "segment": "Rule name (rfm.rules file) whose predicate is true for the customer.",
        "customer_id": "Customer in the rule segment (one row per segment the customer is in).",
    },
    "gold/campaign_audiences": {
        "as_of_date": "Partition: as-of date D of the segments.",
        "campaign": "Campaign of an RFM category or a rule segment.",
        "customer_id": "Customer the campaign reaches (once per campaign).",
        "source": "How the customer got in: 'rfm' (category of the segment map) or 'rule' (rule segment).",
        "segment": "The category or rule name; the RFM category first, else the first rule in file order.",
    },
    "gold/segment_migration": {
        "as_of_date": "Partition: as-of date D (current).",
        "previous_as_of_date": "Nearest earlier as-of date in gold/rfm_segments the categories are compared with.",
        "previous_category": "Category at previous_as_of_date; '(new)' for customers not in that population.",
        "current_category": "Category at D; '(gone)' for customers no longer in the population.",
        "customers": "Customers moving from previous_category to current_category.",
        "revenue_amount": "Their window monetary amount at D (for '(gone)' the one at previous_as_of_date), "
        "base currency.",
    },
    # clusters
    "gold/clusters": {
        "as_of_date": "Partition: as-of date D of the gold/customer_profile partition clustered.",
        "customer_id": "Customer (as in gold/customer_profile).",
        "cluster_id": "Stable cluster id: matched to the previous run's clusters, so an id keeps meaning "
        "the same group (see gold/cluster_profiles.match_distance).",
        "cluster_name": "Cluster name: the analyst's label (clusters.labels_file) or the generated one.",
        "distance": "Euclidean distance to the cluster centre in the standardised feature space.",
    },
    "gold/cluster_profiles": {
        "as_of_date": "Partition: as-of date D of the clustering run.",
        "cluster_id": "Stable cluster id (as in gold/clusters).",
        "cluster_name": "Analyst label if one is given for the id, else the generated name (unique in the run).",
        "name_source": "'analyst' (from clusters.labels_file) or 'generated' (from the top features).",
        "notes": "Analyst notes for the cluster; null without a label or notes.",
        "customers": "Customers in the cluster.",
        "customer_share": "customers / all customers clustered.",
        "revenue_share": "Cluster monetary_amount (net, window) / the population's; null when that total is 0.",
        "feature_means": "Feature -> mean of the raw profile value in the cluster (nulls skipped).",
        "feature_z_scores": "Feature -> (cluster mean - population mean) / population standard deviation "
        "(raw values; 0 for a constant feature).",
        "top_features": "Features with the largest |z-score|, strongest first (clusters.top_features).",
        "match_distance": "Distance to the previous run's cluster that gave this id (raw means scaled by this "
        "run's population standard deviations); null for a fresh id.",
    },
}


# table -> (grain, partition columns, writing job); the README's table reference
TABLE_INFO: dict[str, tuple[str, str, str]] = {
    "bronze/receipts": ("one row per source row (line sources: per receipt), as delivered",
                        "`receipt_month`", "`generate`, `ingest`"),
    "bronze/customers": ("one row per customer", "none", "`generate`, `ingest`"),
    "bronze/_generator_truth": ("one row per defective generated row", "none", "`generate`"),
    "silver/receipts": ("one row per valid receipt", "`receipt_month`", "`cleanse`"),
    "silver/receipts_quarantine": ("one row per rejected source row", "none", "`cleanse`"),
    "silver/customer_month": ("customer x calendar month of the receipt date", "`month`", "`features`"),
    "gold/customer_profile": ("customer x as-of date", "`as_of_date`", "`features`"),
    "gold/cohort_retention": ("as_of x cohort x period offset", "`as_of_date`", "`cohorts`"),
    "gold/cohort_retention_by_channel": (
        "as_of x cohort x first channel x period offset", "`as_of_date`", "`cohorts`",
    ),
    "ops/data_quality": ("rule x run", "none", "`cleanse`"),
    "ops/profile": ("source column x run", "none", "`cleanse`"),
    "ops/runs": ("one row per job run", "none", "every job"),
    # --- segment job (branch segments) ---
    "gold/rfm_segments": ("customer x as-of date", "`as_of_date`", "`segment`"),
    "gold/rfm_thresholds": ("metric x tile x as-of date", "`as_of_date`", "`segment`"),
    "gold/rule_segments": ("rule segment x customer x as-of date", "`as_of_date`", "`segment`"),
    "gold/campaign_audiences": ("campaign x customer x as-of date", "`as_of_date`", "`segment`"),
    "gold/segment_migration": (
        "previous category x current category x as-of date", "`as_of_date`", "`segment`",
    ),
    # clusters
    "gold/clusters": ("customer x as-of date", "`as_of_date`", "`clusters`"),
    "gold/cluster_profiles": ("cluster x as-of date", "`as_of_date`", "`clusters`"),
}  # fmt: skip


# Delta table properties set when a table is created. Per-file statistics on every column
# cost about a quarter of a receipts write; readers skip files on time, customer and amount
# (and cleanse, counting the rows it committed, on its run id).
RECEIPT_STATS = "receipt_ts,customer_id,amount"
TABLE_PROPERTIES: dict[str, dict[str, str]] = {
    "bronze/receipts": {"delta.dataSkippingStatsColumns": RECEIPT_STATS},
    "silver/receipts": {"delta.dataSkippingStatsColumns": f"{RECEIPT_STATS},cleanse_run_id"},
}


def lake_root(config: SeglakeConfig) -> str:
    """Absolute lake root; URIs (s3a://, abfss://, file:/) pass through."""
    root = config.lake.root
    if "://" in root or root.startswith("file:"):
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


def table_path(config: SeglakeConfig, table: str) -> str:
    """Path of ``table`` (e.g. ``silver/receipts``) under the lake root."""
    return f"{lake_root(config)}/{table}"


def with_comments(frame: DataFrame, table: str) -> DataFrame:
    """Attach the registry comment to each column; fail on a column without one."""
    comments = COMMENTS.get(table, {})
    missing = [c for c in frame.columns if c not in comments]
    if missing:
        raise ValueError(f"{table}: no column comment registered for {', '.join(missing)}")
    columns: list[Column] = [F.col(name).alias(name, metadata={"comment": comments[name]}) for name in frame.columns]
    return frame.select(*columns)


def table_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def table_version(spark: SparkSession, path: str) -> int:
    """Latest committed version of the Delta table at ``path``."""
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def write_table(
    frame: DataFrame,
    config: SeglakeConfig,
    table: str,
    *,
    mode: str = "append",
    partition_by: list[str] | None = None,
    replace_where: str | None = None,
    commit_note: str | None = None,
) -> str:
    """Write ``frame`` to ``table`` as one Delta commit, with column comments.

    ``replace_where`` atomically replaces just the rows matching the predicate (one
    partition, typically), so reruns are idempotent and the rest of history stays.
    ``commit_note`` is stored with the commit (Delta ``userMetadata``, shown by ``DESCRIBE HISTORY``).
    """
    path = table_path(config, table)
    writer = with_comments(frame, table).write.format("delta").mode(mode)
    if commit_note is not None:
        writer = writer.option("userMetadata", commit_note)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if replace_where is not None:
        writer = writer.option("replaceWhere", replace_where)
    for key, value in TABLE_PROPERTIES.get(table, {}).items():
        writer = writer.option(key, value)
    if mode == "overwrite" and replace_where is None:
        writer = writer.option("overwriteSchema", "true")
    writer.save(path)
    return path


def replace_as_of(frame: DataFrame, config: SeglakeConfig, table: str, as_of: dt.date) -> str:
    """Replace the ``as_of_date`` partition of ``table`` with ``frame`` in one commit."""
    return write_table(
        frame,
        config,
        table,
        mode="overwrite",
        partition_by=["as_of_date"],
        replace_where=f"as_of_date = DATE'{as_of.isoformat()}'",
    )


def require_table(spark: SparkSession, config: SeglakeConfig, table: str, *, hint: str = "") -> str:
    """Path of ``table``; a missing table is a user error naming the path and what to run."""
    path = table_path(config, table)
    if not table_exists(spark, path):
        what = f" ({hint})" if hint else ""
        raise UserError(f"table {table} not found at {path}{what}")
    return path


def last_commit_rows(spark: SparkSession, path: str) -> int:
    """Rows written by the latest commit (Delta operation metrics; no recount)."""
    metrics = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").first()[0]
    return int((metrics or {}).get("numOutputRows", 0))
