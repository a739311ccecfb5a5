"""Independent reference implementations in DuckDB SQL, for tests and benchmarks.

Written from the definitions (README, DESIGN), not from the Spark code, so that
agreement between the two engines on the same files is evidence, not an echo.
"""

from __future__ import annotations

import duckdb

from transforms.cleanse import CleanseRules


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def cleanse_classification_sql(files_param: str, rules: CleanseRules) -> str:
    """SQL giving ``row_key, reject_reason`` (null = clean) for bronze parquet files."""
    rates = ", ".join(f"({_literal(code)}, {rate!r})" for code, rate in rules.currency_rates.items())
    words = {w.strip().lower(): canonical for canonical, ws in rules.channels.items() for w in [canonical, *ws]}
    channels = ", ".join(f"({_literal(w)}, {_literal(c)})" for w, c in words.items())
    case = "upper" if rules.customer_id_case == "upper" else "lower"
    excluded = ", ".join(_literal(getattr(e.strip(), case)()) for e in rules.excluded_customers) or "NULL"
    tolerance = round(rules.future_tolerance_hours * 3600)

    def has_error(column: str) -> str:
        return f"list_contains(string_split(coalesce(parse_errors, ''), ','), '{column}')"

    return f"""
    WITH rates(code, rate) AS (VALUES {rates}),
    channels(word, canonical) AS (VALUES {channels}),
    src AS (SELECT * FROM read_parquet({files_param}, hive_partitioning = true)),
    norm AS (
        SELECT src.*,
            CASE WHEN trim(customer_id) <> '' THEN {case}(trim(customer_id)) END AS n_customer,
            upper(trim(currency)) AS n_currency,
            channels.canonical AS n_channel,
            rates.rate AS n_rate,
            round(CAST(amount AS DOUBLE) * rates.rate, 2) AS n_amount,
            round(CAST(coalesce(discount_amount, 0) AS DOUBLE) * rates.rate, 2) AS n_discount
        FROM src
        LEFT JOIN rates ON upper(trim(src.currency)) = rates.code
        LEFT JOIN channels ON lower(trim(src.channel)) = channels.word
    ),
    checked AS (
        SELECT *, CASE
            WHEN {has_error("receipt_id")} THEN 'malformed_row'
            WHEN {has_error("receipt_ts")} THEN 'unparseable_timestamp'
            WHEN {has_error("amount")} OR {has_error("discount_amount")} THEN 'unparseable_amount'
            WHEN parse_errors IS NOT NULL THEN 'malformed_row'
            WHEN coalesce(trim(receipt_id), '') = '' THEN 'missing_receipt_id'
            WHEN n_customer IS NULL THEN 'missing_customer'
            WHEN n_customer IN ({excluded}) THEN 'excluded_account'
            WHEN receipt_ts IS NULL THEN 'missing_timestamp'
            WHEN amount IS NULL THEN 'missing_amount'
            WHEN receipt_ts > ingested_at + INTERVAL {tolerance} SECOND THEN 'future_timestamp'
            WHEN receipt_ts < TIMESTAMP '{rules.business_start.isoformat()} 00:00:00'
                THEN 'before_business_start'
            WHEN n_rate IS NULL THEN 'unknown_currency'
            WHEN amount = 0 THEN 'zero_amount'
            WHEN abs(n_amount) > {rules.outlier_amount!r} THEN 'outlier_amount'
            WHEN n_channel IS NULL THEN 'unknown_channel'
        END AS reject_reason
        FROM norm
    ),
    candidates AS (
        SELECT receipt_id, row_key, ingested_at,
            row(n_customer, receipt_ts, n_amount, n_currency, n_channel, store_id, region, category,
                item_count, n_discount, coalesce(coupon_used, false)) AS content
        FROM checked WHERE reject_reason IS NULL
    ),
    ranked AS (
        SELECT row_key, content,
            row_number() OVER w AS rank_in_receipt,
            first_value(content) OVER w AS winner
        FROM candidates
        WINDOW w AS (PARTITION BY receipt_id ORDER BY ingested_at, row_key
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    )
    SELECT row_key, reject_reason FROM checked WHERE reject_reason IS NOT NULL
    UNION ALL
    SELECT row_key, CASE WHEN rank_in_receipt = 1 THEN NULL
                         WHEN content = winner THEN 'duplicate_row'
                         ELSE 'receipt_id_conflict' END
    FROM ranked
    """


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    if threads:
        connection.execute(f"SET threads = {threads}")
    return connection


# Core customer profile straight from receipts (parameters: $files, $as_of, $w window days, $k).
PROFILE_SQL = """
WITH r AS (
    SELECT customer_id, receipt_id, receipt_ts, CAST(receipt_ts AS DATE) AS day, amount
    FROM read_parquet($files) WHERE CAST(receipt_ts AS DATE) <= $as_of
),
purchases AS (SELECT * FROM r WHERE amount > 0),
population AS (
    SELECT customer_id, min(day) AS first_day, max(day) AS last_day, count(*) AS orders_lifetime
    FROM purchases GROUP BY customer_id
),
money AS (
    SELECT customer_id,
           sum(amount) AS net_amount_lifetime,
           coalesce(sum(amount) FILTER (WHERE day > $as_of - $w), 0) AS monetary_amount,
           count(*) FILTER (WHERE amount > 0 AND day > $as_of - $w) AS frequency,
           sum(amount) FILTER (WHERE amount > 0 AND day > $as_of - $w) AS window_purchase
    FROM r GROUP BY customer_id
),
gaps AS (
    SELECT customer_id, stddev_samp(gap) AS periodicity_days FROM (
        SELECT customer_id,
               datediff('day', lag(day) OVER (PARTITION BY customer_id ORDER BY receipt_ts, receipt_id), day) AS gap
        FROM purchases
    ) GROUP BY customer_id
),
last_k AS (
    SELECT customer_id, avg(datediff('day', day, $as_of)) AS recency_last_k_days FROM (
        SELECT customer_id, day,
               row_number() OVER (PARTITION BY customer_id ORDER BY receipt_ts DESC, receipt_id DESC) AS rn
        FROM purchases
    ) WHERE rn <= $k GROUP BY customer_id
)
SELECT p.customer_id, datediff('day', last_day, $as_of) AS recency_days, frequency, monetary_amount,
       CASE WHEN frequency > 0 THEN window_purchase / frequency END AS avg_receipt_amount,
       first_day, last_day, datediff('day', first_day, $as_of) AS tenure_days,
       datediff('day', first_day, last_day) AS length_days, recency_last_k_days, periodicity_days,
       strftime(first_day, '%Y-%m') AS cohort, orders_lifetime, net_amount_lifetime
FROM population p JOIN money USING (customer_id) JOIN gaps USING (customer_id) JOIN last_k USING (customer_id)
"""
