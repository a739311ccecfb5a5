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
    rates = ", ".join(
        f"({_literal(code)}, CAST('{rate}' AS DECIMAL(19, 12)))" for code, rate in rules.currency_rates.items()
    )
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
            round(CAST(amount AS DECIMAL(18, 2)) * rates.rate, 2) AS n_amount,
            round(CAST(coalesce(discount_amount, 0) AS DECIMAL(18, 2)) * rates.rate, 2) AS n_discount
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
            WHEN n_amount = 0 THEN 'zero_amount'
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


def connect(threads: int | None = None, memory_gib: int | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB in this process; ``memory_gib`` caps it (beside a Spark driver in the same box,
    DuckDB's default of 80% of the RAM gets the JVM killed by the kernel at 50M rows)."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    if threads:
        connection.execute(f"SET threads = {threads}")
    if memory_gib:
        connection.execute(f"SET memory_limit = '{memory_gib}GiB'")
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


# The 360° profile columns straight from receipts (parameters: $files, $as_of, $w window days,
# $last_3 / $previous_3: the trend months as 'YYYY-MM' lists). Purchases: amount > 0.
PROFILE_360_COLUMNS = (
    "customer_id",
    "first_channel",
    "months_active_lifetime",
    "months_active_window",
    "gross_spend_lifetime",
    "gross_spend_window",
    "max_receipt_amount_lifetime",
    "max_receipt_amount_window",
    "spend_last_3_months",
    "spend_previous_3_months",
    "categories_window",
    "top_category",
    "top_category_share",
    "store_order_share",
    "online_order_share",
    "app_order_share",
    "channels_used_window",
    "main_channel",
    "coupon_orders_window",
    "coupon_order_share",
    "discount_amount_window",
    "items_window",
    "weekend_order_share",
    "night_order_share",
    "morning_order_share",
    "afternoon_order_share",
    "evening_order_share",
    "preferred_part_of_day",
    "peak_month_of_year",
    "peak_month_share",
    "returns_window",
    "return_amount_window",
    "main_region",
    "main_region_share",
    "main_store",
    "stores_used_window",
)

PROFILE_360_SQL = """
WITH r AS (
    SELECT *, CAST(receipt_ts AS DATE) AS day, strftime(CAST(receipt_ts AS DATE), '%Y-%m') AS month,
           CASE WHEN hour(receipt_ts) < 6 THEN 'night' WHEN hour(receipt_ts) < 12 THEN 'morning'
                WHEN hour(receipt_ts) < 18 THEN 'afternoon' ELSE 'evening' END AS part
    FROM read_parquet($files) WHERE CAST(receipt_ts AS DATE) <= $as_of
),
life AS (
    SELECT customer_id,
           first(channel ORDER BY receipt_ts, receipt_id) FILTER (WHERE amount > 0) AS first_channel,
           count(DISTINCT month) FILTER (WHERE amount > 0) AS months_active_lifetime,
           sum(amount) FILTER (WHERE amount > 0) AS gross_spend_lifetime,
           max(amount) FILTER (WHERE amount > 0) AS max_receipt_amount_lifetime,
           coalesce(sum(amount) FILTER (WHERE list_contains($last_3, month)), 0) AS spend_last_3_months,
           coalesce(sum(amount) FILTER (WHERE list_contains($previous_3, month)), 0) AS spend_previous_3_months
    FROM r GROUP BY customer_id HAVING count(*) FILTER (WHERE amount > 0) > 0
),
w AS (SELECT * FROM r WHERE day > $as_of - $w),
p AS (SELECT * FROM w WHERE amount > 0),
win AS (
    SELECT customer_id,
           count(*) FILTER (WHERE amount > 0) AS orders,
           count(DISTINCT month) FILTER (WHERE amount > 0) AS months_active_window,
           coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS gross,
           max(amount) FILTER (WHERE amount > 0) AS max_receipt_amount_window,
           count(*) FILTER (WHERE amount > 0 AND coupon_used) AS coupon_orders_window,
           coalesce(sum(discount_amount) FILTER (WHERE amount > 0), 0) AS discount_amount_window,
           coalesce(sum(item_count) FILTER (WHERE amount > 0), 0) AS items_window,
           count(*) FILTER (WHERE amount > 0 AND dayofweek(receipt_ts) IN (0, 6)) AS weekend,
           count(*) FILTER (WHERE amount > 0 AND part = 'night') AS night,
           count(*) FILTER (WHERE amount > 0 AND part = 'morning') AS morning,
           count(*) FILTER (WHERE amount > 0 AND part = 'afternoon') AS afternoon,
           count(*) FILTER (WHERE amount > 0 AND part = 'evening') AS evening,
           count(*) FILTER (WHERE amount > 0 AND channel = 'store') AS store,
           count(*) FILTER (WHERE amount > 0 AND channel = 'online') AS online,
           count(*) FILTER (WHERE amount > 0 AND channel = 'app') AS app,
           count(DISTINCT channel) FILTER (WHERE amount > 0) AS channels_used_window,
           count(DISTINCT category) FILTER (WHERE amount > 0) AS categories_window,
           count(DISTINCT store_id) FILTER (WHERE amount > 0) AS stores_used_window,
           count(*) FILTER (WHERE amount < 0) AS returns_window,
           coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) AS return_amount_window
    FROM w GROUP BY customer_id
),
top_category AS (
    SELECT customer_id, first(category ORDER BY s DESC, category) AS top_category,
           max(s) / sum(s) AS top_category_share
    FROM (SELECT customer_id, category, sum(amount) AS s FROM p WHERE category IS NOT NULL GROUP BY ALL)
    GROUP BY customer_id
),
top_of AS (  -- the key with the most window purchases, per kind; ties: smallest key
    SELECT customer_id, kind, first(k ORDER BY n DESC, k) AS top_key, max(n) AS top_n
    FROM (
        SELECT customer_id, kind, k, count(*) AS n FROM (
            SELECT customer_id, 'channel' AS kind, channel AS k FROM p
            UNION ALL SELECT customer_id, 'region', region FROM p
            UNION ALL SELECT customer_id, 'store', store_id FROM p
        ) WHERE k IS NOT NULL GROUP BY ALL
    ) GROUP BY ALL
),
peak AS (
    SELECT customer_id, first(m ORDER BY n DESC, m) AS peak_month_of_year, max(n) AS peak_n
    FROM (SELECT customer_id, month(day) AS m, count(*) AS n FROM p GROUP BY ALL) GROUP BY customer_id
)
SELECT l.customer_id, first_channel, months_active_lifetime, coalesce(months_active_window, 0),
       gross_spend_lifetime, coalesce(gross, 0), max_receipt_amount_lifetime, max_receipt_amount_window,
       spend_last_3_months, spend_previous_3_months, coalesce(categories_window, 0), top_category,
       top_category_share,
       CASE WHEN orders > 0 THEN store / orders END, CASE WHEN orders > 0 THEN online / orders END,
       CASE WHEN orders > 0 THEN app / orders END, coalesce(channels_used_window, 0), ch.top_key,
       coalesce(coupon_orders_window, 0), CASE WHEN orders > 0 THEN coupon_orders_window / orders END,
       coalesce(discount_amount_window, 0), coalesce(items_window, 0),
       CASE WHEN orders > 0 THEN weekend / orders END, CASE WHEN orders > 0 THEN night / orders END,
       CASE WHEN orders > 0 THEN morning / orders END, CASE WHEN orders > 0 THEN afternoon / orders END,
       CASE WHEN orders > 0 THEN evening / orders END,
       CASE WHEN orders > 0 THEN CASE greatest(night, morning, afternoon, evening)
            WHEN night THEN 'night' WHEN morning THEN 'morning' WHEN afternoon THEN 'afternoon'
            ELSE 'evening' END END,
       peak_month_of_year, CASE WHEN orders > 0 THEN peak_n / orders END,
       coalesce(returns_window, 0), coalesce(return_amount_window, 0),
       rg.top_key, CASE WHEN orders > 0 THEN rg.top_n / orders END, st.top_key, coalesce(stores_used_window, 0)
FROM life l
LEFT JOIN win USING (customer_id)
LEFT JOIN top_category USING (customer_id)
LEFT JOIN peak USING (customer_id)
LEFT JOIN top_of ch ON ch.customer_id = l.customer_id AND ch.kind = 'channel'
LEFT JOIN top_of rg ON rg.customer_id = l.customer_id AND rg.kind = 'region'
LEFT JOIN top_of st ON st.customer_id = l.customer_id AND st.kind = 'store'
"""


# The features core the issue names, the way the Spark job does it: the customer x month
# rollup with window gaps, then per customer R, F, M, L, gap sums and quartile scores.
# Parameters: $files, $as_of (the last day of a month, so every month is whole), $first_month
# (the first month inside the window, 'YYYY-MM'), $last_month (as_of's month).
FEATURES_CORE_SQL = """
WITH r AS (
    SELECT customer_id, receipt_id, receipt_ts, CAST(receipt_ts AS DATE) AS day, amount FROM read_parquet($files)
),
g AS (
    SELECT *, CASE WHEN amount > 0 THEN datediff('day', lag(day) OVER (
               PARTITION BY customer_id, amount > 0 ORDER BY receipt_ts, receipt_id), day) END AS gap
    FROM r
),
customer_month AS (
    SELECT customer_id, strftime(day, '%Y-%m') AS month,
           count(*) FILTER (WHERE amount > 0) AS orders, sum(amount) AS net_amount,
           min(day) FILTER (WHERE amount > 0) AS first_day, max(day) FILTER (WHERE amount > 0) AS last_day,
           count(gap) AS gap_count, coalesce(sum(gap), 0) AS gap_sum, coalesce(sum(gap * gap), 0) AS gap_sumsq
    FROM g GROUP BY ALL
),
profile AS (
    SELECT customer_id, datediff('day', max(last_day), $as_of) AS recency_days,
           coalesce(sum(orders) FILTER (WHERE month >= $first_month), 0) AS frequency,
           coalesce(sum(net_amount) FILTER (WHERE month >= $first_month), 0) AS monetary_amount,
           datediff('day', min(first_day), max(last_day)) AS length_days,
           sum(gap_count) AS gap_count, sum(gap_sum) AS gap_sum, sum(gap_sumsq) AS gap_sumsq
    FROM customer_month WHERE month <= $last_month GROUP BY customer_id HAVING sum(orders) > 0
),
q AS (
    SELECT quantile_disc(recency_days, [0.25, 0.5, 0.75]) AS rq, quantile_disc(frequency, [0.25, 0.5, 0.75]) AS fq,
           quantile_disc(monetary_amount, [0.25, 0.5, 0.75]) AS mq
    FROM profile
)
SELECT profile.*,
       1 + (recency_days > rq[1])::INT + (recency_days > rq[2])::INT + (recency_days > rq[3])::INT AS r_score,
       4 - (frequency > fq[1])::INT - (frequency > fq[2])::INT - (frequency > fq[3])::INT AS f_score,
       4 - (monetary_amount > mq[1])::INT - (monetary_amount > mq[2])::INT - (monetary_amount > mq[3])::INT AS m_score
FROM profile, q
"""
