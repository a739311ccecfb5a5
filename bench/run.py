"""``make bench``: throughput of seglake's stages against an independent engine (DuckDB).

    python -m bench.run                      # generate at 1M and 10M receipts
    python -m bench.run --sizes 1M,10M,50M   # larger, on a bigger machine
    python -m bench.run --only generate
    python -m bench.run --only segment --sizes 100k   # sizes are customers for segment
    python -m bench.run --only offers                 # next-best-offer hit rate on real data (no sizes)
    python -m bench.run --only incremental --sizes 10M  # a new month: incremental vs. full run

Each section is measured in one run and rewritten in BENCHMARKS.md between its
``<!-- bench:NAME -->`` markers, with the machine it ran on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
from pyspark.sql import Column, DataFrame, SparkSession

from bench.incremental import bench_incremental
from bench.offers import bench_offers
from seglake.config import load_config
from seglake.session import build_session

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
REPORT = ROOT / "BENCHMARKS.md"


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMbB]?)", text.strip())
    if not match:
        raise SystemExit(f"bench: --sizes {text}: expected a number like 1M, 500k, 1B")
    scale = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def label(size: int) -> str:
    for unit, scale in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 1024**2:.0f} GiB"
    except OSError:
        memory = "?"
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    import pyspark

    return (
        f"{os.cpu_count()} cores ({cpu or platform.processor()}), {memory} RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"Spark {pyspark.__version__} local[*], {java[0] if java else 'java ?'}, "
        f"DuckDB {duckdb.__version__}"
    )


def set_flags(overrides: list[str]) -> list[str]:
    """``--set KEY=VALUE`` arguments for a job, one pair per override."""
    return [arg for override in overrides for arg in ("--set", override)]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_generate(sizes: list[int], spark_overrides: list[str]) -> str:
    """generate at each size; then the same rows rewritten month-partitioned by Spark and DuckDB."""
    from jobs import generate as generate_job
    from jobs.generate import plan_generation
    from transforms.generate import to_bronze_receipts

    rows = [
        "| receipts (target) | written | generate s | receipts/s | commit s | commit /s | rows only s | "
        "rows only /s | rewrite: Spark s | rewrite: DuckDB s | Spark / DuckDB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        lake = OUT / f"lake-{label(size)}"
        shutil.rmtree(lake, ignore_errors=True)
        customers = max(size // 10, 1)
        argv = ["--set", f"lake.root={lake}", "--customers", str(customers), "--receipts", str(size)]
        argv += set_flags(spark_overrides)
        print(f"bench generate {label(size)} ...", flush=True)
        seconds = timed(lambda argv=argv: generate_job.main(argv))
        spark = build_session(load_config(None, spark_overrides).spark)
        runs = spark.read.format("delta").load(f"{lake}/ops/runs").where("job = 'generate' AND status = 'succeeded'")
        run = runs.orderBy("started_at", ascending=False).first()
        written = run["rows_out"]
        commit_s = json.loads(run["details"])["write_seconds"]  # the job's own timing of the commit

        # the same rows generated again into Spark's noop sink: the job's CPU cost without any write
        sizes_set = [f"generate.customers={customers}", f"generate.receipts={size}"]
        plan = plan_generation(spark, load_config(None, [*spark_overrides, *sizes_set]))
        rows_only_s = timed(
            lambda plan=plan: to_bronze_receipts(plan.receipts).write.format("noop").mode("overwrite").save()
        )
        bronze = spark.read.format("delta").load(f"{lake}/bronze/receipts")
        spark_s = timed(
            lambda bronze=bronze, lake=lake: (
                bronze.write.format("delta").partitionBy("receipt_month").save(f"{lake}/rewrite-spark")
            )
        )
        files = [f.removeprefix("file:") for f in bronze.inputFiles()]
        duck = duckdb.connect()
        duck.execute(f"SET threads = {os.cpu_count()}")
        duck_s = timed(
            lambda duck=duck, files=files, lake=lake: duck.execute(
                "COPY (SELECT * FROM read_parquet($files, hive_partitioning = true)) "
                f"TO '{lake}/rewrite-duckdb' (FORMAT parquet, PARTITION_BY (receipt_month))",
                {"files": files},
            )
        )
        rows.append(
            f"| {label(size)} | {written:,} | {seconds:.1f} | {written / seconds:,.0f} | "
            f"{commit_s:.1f} | {written / commit_s:,.0f} | {rows_only_s:.1f} | {written / rows_only_s:,.0f} | "
            f"{spark_s:.1f} | {duck_s:.1f} | {spark_s / duck_s:.1f}x |"
        )
        print(rows[-1], flush=True)
        shutil.rmtree(lake / "rewrite-spark", ignore_errors=True)
        shutil.rmtree(lake / "rewrite-duckdb", ignore_errors=True)
    return "\n".join(
        [
            "`generate` end to end (customers = receipts / 10, 2022-01-01..2024-12-31, 2% dirty),",
            "wall time of the job including the calibration pass, the month-partitioned",
            "bronze/receipts commit, bronze/customers and the truth table (the Spark session already",
            "started, as for every figure here). *Commit*: the job's own timing of the",
            "bronze/receipts commit (its log line, `ops/runs.details.write_seconds`). *Rows only*: the same",
            "receipts planned again (`plan_generation`) and written to Spark's `noop` sink, i.e. the",
            "cost of making the rows without any file written (CPU-bound or write-bound). Then the written",
            "rows are rewritten month-partitioned by Spark (Delta) and by DuckDB (Parquet,",
            "reading the same files): the write path of both engines on identical data.",
            "",
            *rows,
        ]
    )


VERSUS_HEADER = ("| rows | Spark s | rows/s | DuckDB s | rows/s | Spark / DuckDB |", "|---:|---:|---:|---:|---:|---:|")


def versus_row(rows: int, spark_s: float, duck_s: float, stage: str | None = None) -> str:
    """One table row: both engines' time and throughput on the same rows, and the ratio."""
    cells = [f"{rows:,}", *([stage] if stage else []), f"{spark_s:.1f}", f"{rows / spark_s:,.0f}", f"{duck_s:.1f}"]
    cells.append(f"{rows / duck_s:,.0f}")
    row = "| " + " | ".join([*cells, f"{spark_s / duck_s:.1f}x"]) + " |"
    print(row, flush=True)
    return row


def duckdb_memory_gib(spark_overrides: list[str]) -> int:
    """What DuckDB may use beside the Spark driver: the RAM less the driver's heap and 4 GiB
    (the JVM's own memory above its heap, the Python workers, the page cache)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    heap = load_config(None, spark_overrides).spark.conf.get("spark.driver.memory", "1g").strip().lower()
    gib_per_unit = {"k": 2**-20, "m": 2**-10, "g": 1.0, "t": 2**10}  # a bare number is MiB in Spark
    heap = heap.removesuffix("b")  # 12gb = 12g
    number, unit = (heap[:-1], heap[-1]) if heap[-1] in gib_per_unit else (heap, "m")
    heap_gib = float(number) * gib_per_unit[unit]
    return max(2, int(ram - heap_gib - 4))


def ensure_lake(size: int, spark_overrides: list[str]) -> Path:
    """A generated lake of ``size`` receipts under bench/out (made once, then reused)."""
    from jobs import generate as generate_job

    lake = OUT / f"lake-{label(size)}"
    if not (lake / "bronze" / "receipts" / "_delta_log").is_dir():
        argv = ["--set", f"lake.root={lake}", "--customers", str(max(size // 10, 1)), "--receipts", str(size)]
        generate_job.main(argv + set_flags(spark_overrides))
    return lake


def bench_cleanse(sizes: list[int], spark_overrides: list[str]) -> str:
    """cleanse --full on a generated lake vs. the same rules and dedupe in DuckDB SQL."""
    from bench.reference import cleanse_classification_sql, connect
    from jobs import cleanse as cleanse_job

    rows = list(VERSUS_HEADER)
    for size in sizes:
        lake = ensure_lake(size, spark_overrides)
        argv = ["--set", f"lake.root={lake}", "--full", "--no-profile"]
        argv += set_flags(spark_overrides)
        print(f"bench cleanse {label(size)} ...", flush=True)
        spark_s = timed(lambda argv=argv: cleanse_job.main(argv))
        spark = build_session(load_config(None, spark_overrides).spark)
        bronze = spark.read.format("delta").load(f"{lake}/bronze/receipts")
        rows_in = bronze.count()
        files = [f.removeprefix("file:") for f in bronze.inputFiles()]
        rules = cleanse_job.rules_from(load_config(None, [f"lake.root={lake}"]))
        duck = connect(os.cpu_count(), duckdb_memory_gib(spark_overrides))
        out = lake / "duckdb-cleanse"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

        def duckdb_cleanse(duck=duck, files=files, rules=rules, out=out) -> None:
            duck.execute(
                f"CREATE OR REPLACE TEMP TABLE outcome AS {cleanse_classification_sql('$files', rules)}",
                {"files": files},
            )
            for name, test in (("silver", "IS NULL"), ("quarantine", "IS NOT NULL")):
                duck.execute(
                    "COPY (SELECT s.*, o.reject_reason FROM read_parquet($files, hive_partitioning = true) s "
                    f"JOIN outcome o USING (row_key) WHERE o.reject_reason {test}) "
                    f"TO '{out}/{name}.parquet' (FORMAT parquet)",
                    {"files": files},
                )

        duck_s = timed(duckdb_cleanse)
        rows.append(versus_row(rows_in, spark_s, duck_s))
    return "\n".join(
        [
            "`cleanse --full --no-profile` (Spark, Delta in and out, books checked, silver",
            "month-partitioned) against the same rules and receipt-id dedupe written",
            "independently in DuckDB SQL over the same bronze Parquet files, writing",
            "silver and quarantine Parquet. Both engines agree row by row",
            "(tests/test_cleanse.py).",
            "",
            *rows,
        ]
    )


CANONICAL = (
    "receipt_id, customer_id, receipt_ts, amount, currency, channel, store_id, region, category, "
    "item_count, discount_amount, coupon_used"
)


def bench_ingest(sizes: list[int], spark_overrides: list[str]) -> str:
    """ingest of CSV files (the generated receipts exported) vs. DuckDB parsing them to Parquet."""
    from bench.reference import connect
    from jobs import ingest as ingest_job

    rows = list(VERSUS_HEADER)
    for size in sizes:
        lake = ensure_lake(size, spark_overrides)
        spark = build_session(load_config(None, spark_overrides).spark)
        csv_dir = lake / "export-csv"
        if not csv_dir.is_dir():  # the export is set-up, not measured
            spark.read.format("delta").load(f"{lake}/bronze/receipts").selectExpr(*CANONICAL.split(", ")).write.option(
                "header", True
            ).option("timestampFormat", "yyyy-MM-dd HH:mm:ss").csv(str(csv_dir), compression="gzip")
        target = lake / "ingest-lake"
        shutil.rmtree(target, ignore_errors=True)
        argv = ["--set", f"lake.root={target}", "--mapping", "canonical_csv", "--source", f"{csv_dir}/*.csv.gz"]
        argv += set_flags(spark_overrides)
        print(f"bench ingest {label(size)} ...", flush=True)
        spark_s = timed(lambda argv=argv: ingest_job.main(argv))
        written = spark.read.format("delta").load(f"{target}/bronze/receipts").count()
        duck = connect(os.cpu_count(), duckdb_memory_gib(spark_overrides))
        out = lake / "duckdb-ingest.parquet"

        def duckdb_ingest(duck=duck, csv_dir=csv_dir, out=out) -> None:
            duck.execute(
                f"COPY (SELECT receipt_id, customer_id, TRY_CAST(receipt_ts AS TIMESTAMP) AS receipt_ts, "
                "TRY_CAST(amount AS DECIMAL(18,2)) AS amount, currency, channel, store_id, region, category, "
                "TRY_CAST(item_count AS INTEGER) AS item_count, "
                "TRY_CAST(discount_amount AS DECIMAL(18,2)) AS discount_amount, "
                "TRY_CAST(coupon_used AS BOOLEAN) AS coupon_used, filename AS source_file "
                f"FROM read_csv('{csv_dir}/*.csv.gz', header = true, all_varchar = true, filename = true)) "
                f"TO '{out}' (FORMAT parquet)"
            )

        duck_s = timed(duckdb_ingest)
        rows.append(versus_row(written, spark_s, duck_s))
    return "\n".join(
        [
            "`ingest --mapping canonical_csv` of the generated receipts exported as gzip CSV",
            "(every value parsed with try_* functions, lineage, idempotent append to a new",
            "month-partitioned bronze) against DuckDB reading the same files, casting the",
            "same columns and writing Parquet. DuckDB does less: no row keys (seglake's are a",
            "content hash plus a per-file occurrence number, which costs Spark a shuffle), no",
            "raw-text capture, no idempotence check.",
            "",
            *rows,
        ]
    )


def ensure_silver(size: int, spark_overrides: list[str]) -> Path:
    """A generated and cleansed lake of ``size`` receipts (made once, then reused)."""
    from jobs import cleanse as cleanse_job

    lake = ensure_lake(size, spark_overrides)
    if not (lake / "silver" / "receipts" / "_delta_log").is_dir():
        cleanse_job.main(["--set", f"lake.root={lake}", "--no-profile", *set_flags(spark_overrides)])
    return lake


def bench_features(sizes: list[int], spark_overrides: list[str]) -> str:
    """features (rollup + profile + 360°) and cohorts on silver vs. DuckDB on the same files."""
    from bench.reference import FEATURES_CORE_SQL, PROFILE_360_SQL, connect
    from jobs import cohorts as cohorts_job
    from jobs import features as features_job
    from transforms.calendar import ProfilePeriod
    from transforms.profile import trend_months

    as_of = dt.date(2024, 12, 31)
    period = ProfilePeriod(as_of, 365)
    last_3, previous_3 = trend_months(period.last_whole_month)
    rows = [
        "| silver rows | Spark stage | Spark s | rows/s | DuckDB s | rows/s | Spark / DuckDB |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        lake = ensure_silver(size, spark_overrides)
        spark = build_session(load_config(None, spark_overrides).spark)
        silver = spark.read.format("delta").load(f"{lake}/silver/receipts")
        rows_in = silver.count()
        files = [f.removeprefix("file:") for f in silver.inputFiles()]
        argv = ["--set", f"lake.root={lake}", "--as-of", as_of.isoformat(), *set_flags(spark_overrides)]
        duck = connect(os.cpu_count(), duckdb_memory_gib(spark_overrides))
        params = {
            "files": files,
            "as_of": as_of,
            "w": 365,
            "first_month": period.first_whole_window_month,
            "last_month": period.last_whole_month,
            "last_3": last_3,
            "previous_3": previous_3,
        }

        def duck_time(stage: str, sql: str, duck=duck, lake=lake, params=params) -> float:
            copy = f"COPY ({sql}) TO '{lake}/duckdb-{stage}.parquet' (FORMAT parquet)"
            return timed(lambda: duck.execute(copy, {k: v for k, v in params.items() if f"${k}" in sql}))

        print(f"bench features {label(size)} ...", flush=True)
        spark_s = timed(lambda argv=argv: features_job.main(argv))
        core_s = duck_time("core", FEATURES_CORE_SQL)
        duck_360_s = duck_time("360", PROFILE_360_SQL)
        rows.append(versus_row(rows_in, spark_s, core_s, "features vs. DuckDB core"))
        rows.append(versus_row(rows_in, spark_s, core_s + duck_360_s, "features vs. DuckDB core + 360°"))
        core_period = {
            "as_of": as_of,
            "first_month": period.first_whole_window_month,
            "last_month": period.last_whole_month,
        }
        core_seconds = {}
        for name, core in (("plain Spark SQL core", plain_spark_core), ("tuned Spark core", tuned_spark_core)):
            out = lake / f"spark-{name.split()[0]}-core.parquet"
            core_seconds[name] = timed(functools.partial(core, spark, lake, out, **core_period))
            check_spark_core(duck, lake, out)
            rows.append(versus_row(rows_in, core_seconds[name], core_s, f"{name} vs. DuckDB core"))
        out = lake / "spark-plain-360.parquet"
        spark_360_s = timed(
            functools.partial(
                plain_spark_360,
                spark,
                lake,
                out,
                as_of=as_of,
                window_days=params["w"],
                last_3=last_3,
                previous_3=previous_3,
            )
        )
        check_spark_360(duck, lake, out)
        rows.append(versus_row(rows_in, spark_360_s, duck_360_s, "plain Spark SQL 360° vs. DuckDB 360°"))
        rows.append(
            versus_row(
                rows_in,
                core_seconds["plain Spark SQL core"] + spark_360_s,
                core_s + duck_360_s,
                "plain Spark SQL core + 360° vs. DuckDB core + 360°",
            )
        )
        print(f"bench cohorts {label(size)} ...", flush=True)
        spark_s = timed(lambda argv=argv: cohorts_job.main(argv))
        rows.append(versus_row(rows_in, spark_s, duck_time("cohorts", COHORT_SQL), "cohorts"))
    return "\n".join(
        [
            f"On the cleansed generated lake, as of {as_of}. `features` is the whole stage: it rewrites",
            "`silver/customer_month` (gaps from each month's sorted purchase dates and one window over",
            "months, the monthly 360° values; one shuffle, one sort), then writes",
            "the profile partition (R, F, M, L, last-k recency, periodicity, value tier and the 360°",
            "columns) to Delta. *DuckDB core* is the work the features issue names, in DuckDB SQL on the",
            "same silver files (bench/reference.py `FEATURES_CORE_SQL`): the customer x month rollup with",
            "window gaps, then per customer R, F, M, L, gap sums and quartile scores, written to Parquet.",
            "*core + 360°* adds the 360° columns (`PROFILE_360_SQL`, the query the tests compare the",
            "profile with). The two *Spark core* rows do DuckDB's core alone in Spark, written to",
            "Parquet in the same warm session after `features` (no 360° values, no Delta, nothing",
            "kept), and their R, F, M, L and gap sums must equal DuckDB's (checked each run): *plain*",
            "is the same SQL in Spark (`SPARK_CORE_SQL`: three shuffles, and the profile computed twice",
            "for the quantiles), *tuned* is written for Spark (`tuned_spark_core`: one shuffle and",
            "one sort for the gaps and both aggregations, the profile cached for `approxQuantile`).",
            "*plain Spark SQL 360°* is `PROFILE_360_SQL` in Spark's dialect (`SPARK_360_SQL`), written",
            "to Parquet; every value must equal DuckDB's (checked each run). Beside the plain core it is",
            "the same work as DuckDB's core + 360°, done by Spark SQL as written.",
            "`cohorts` (run after `features`): monthly retention, overall and by first",
            "channel, from the `silver/customer_month` rollup that run wrote, against DuckDB's monthly",
            "retention matrix from the receipts. DuckDB runs in the bench's process beside the Spark",
            "driver, its memory capped at the RAM less the driver's heap and 4 GiB (`duckdb_memory_gib`).",
            "",
            *rows,
        ]
    )


# The features core (FEATURES_CORE_SQL in bench/reference.py) in Spark's SQL dialect, line
# for line: the straightforward Spark version the features issue measured (4.9x DuckDB there).
SPARK_CORE_SQL = """
WITH r AS (
    SELECT customer_id, receipt_id, receipt_ts, CAST(receipt_ts AS DATE) AS day, amount FROM bench_silver_receipts
),
g AS (
    SELECT *, CASE WHEN amount > 0 THEN datediff(day, lag(day) OVER (
               PARTITION BY customer_id, amount > 0 ORDER BY receipt_ts, receipt_id)) END AS gap
    FROM r
),
customer_month AS (
    SELECT customer_id, date_format(day, 'yyyy-MM') AS month,
           count(*) FILTER (WHERE amount > 0) AS orders, sum(amount) AS net_amount,
           min(day) FILTER (WHERE amount > 0) AS first_day, max(day) FILTER (WHERE amount > 0) AS last_day,
           count(gap) AS gap_count, coalesce(sum(gap), 0) AS gap_sum, coalesce(sum(gap * gap), 0) AS gap_sumsq
    FROM g GROUP BY customer_id, date_format(day, 'yyyy-MM')
),
profile AS (
    SELECT customer_id, datediff(DATE'{as_of}', max(last_day)) AS recency_days,
           coalesce(sum(orders) FILTER (WHERE month >= '{first_month}'), 0) AS frequency,
           coalesce(sum(net_amount) FILTER (WHERE month >= '{first_month}'), 0) AS monetary_amount,
           datediff(max(last_day), min(first_day)) AS length_days,
           sum(gap_count) AS gap_count, sum(gap_sum) AS gap_sum, sum(gap_sumsq) AS gap_sumsq
    FROM customer_month WHERE month <= '{last_month}' GROUP BY customer_id HAVING sum(orders) > 0
),
q AS (
    SELECT approx_percentile(recency_days, array(0.25, 0.5, 0.75)) AS rq,
           approx_percentile(frequency, array(0.25, 0.5, 0.75)) AS fq,
           approx_percentile(monetary_amount, array(0.25, 0.5, 0.75)) AS mq
    FROM profile
)
SELECT profile.*,
       1 + int(recency_days > rq[0]) + int(recency_days > rq[1]) + int(recency_days > rq[2]) AS r_score,
       4 - int(frequency > fq[0]) - int(frequency > fq[1]) - int(frequency > fq[2]) AS f_score,
       4 - int(monetary_amount > mq[0]) - int(monetary_amount > mq[1]) - int(monetary_amount > mq[2]) AS m_score
FROM profile CROSS JOIN q
"""


# PROFILE_360_SQL (bench/reference.py) in Spark's SQL dialect, line for line. DuckDB's
# `first(x ORDER BY ...)` is `min_by(x, struct(...))`, its dayofweek counts from 0 (Spark's from 1),
# and the top category's share divides doubles (DuckDB divides decimals into a double).
SPARK_360_SQL = """
WITH r AS (
    SELECT *, to_date(receipt_ts) AS day, date_format(receipt_ts, 'yyyy-MM') AS month,
           CASE WHEN hour(receipt_ts) < 6 THEN 'night' WHEN hour(receipt_ts) < 12 THEN 'morning'
                WHEN hour(receipt_ts) < 18 THEN 'afternoon' ELSE 'evening' END AS part
    FROM bench_silver_receipts WHERE to_date(receipt_ts) <= DATE'{as_of}'
),
life AS (
    SELECT customer_id,
           min_by(channel, struct(receipt_ts, receipt_id)) FILTER (WHERE amount > 0) AS first_channel,
           count(DISTINCT month) FILTER (WHERE amount > 0) AS months_active_lifetime,
           sum(amount) FILTER (WHERE amount > 0) AS gross_spend_lifetime,
           max(amount) FILTER (WHERE amount > 0) AS max_receipt_amount_lifetime,
           coalesce(sum(amount) FILTER (WHERE month IN ({last_3})), 0) AS spend_last_3_months,
           coalesce(sum(amount) FILTER (WHERE month IN ({previous_3})), 0) AS spend_previous_3_months
    FROM r GROUP BY customer_id HAVING count(*) FILTER (WHERE amount > 0) > 0
),
w AS (SELECT * FROM r WHERE day > date_sub(DATE'{as_of}', {w})),
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
           count(*) FILTER (WHERE amount > 0 AND dayofweek(receipt_ts) IN (1, 7)) AS weekend,
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
    SELECT customer_id, min_by(category, struct(-s, category)) AS top_category,
           CAST(max(s) AS DOUBLE) / CAST(sum(s) AS DOUBLE) AS top_category_share
    FROM (SELECT customer_id, category, sum(amount) AS s FROM p WHERE category IS NOT NULL
          GROUP BY customer_id, category)
    GROUP BY customer_id
),
top_of AS (  -- the key with the most window purchases, per kind; ties: smallest key
    SELECT customer_id, kind, min_by(k, struct(-n, k)) AS top_key, max(n) AS top_n
    FROM (
        SELECT customer_id, kind, k, count(*) AS n FROM (
            SELECT customer_id, 'channel' AS kind, channel AS k FROM p
            UNION ALL SELECT customer_id, 'region', region FROM p
            UNION ALL SELECT customer_id, 'store', store_id FROM p
        ) WHERE k IS NOT NULL GROUP BY customer_id, kind, k
    ) GROUP BY customer_id, kind
),
peak AS (
    SELECT customer_id, min_by(m, struct(-n, m)) AS peak_month_of_year, max(n) AS peak_n
    FROM (SELECT customer_id, month(day) AS m, count(*) AS n FROM p GROUP BY customer_id, month(day))
    GROUP BY customer_id
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


def plain_spark_360(
    spark: SparkSession,
    lake: Path,
    out: Path,
    *,
    as_of: dt.date,
    window_days: int,
    last_3: list[str],
    previous_3: list[str],
) -> None:
    """SPARK_360_SQL on the lake's silver receipts, its columns named as PROFILE_360_COLUMNS,
    written to ``out`` (Parquet)."""
    from bench.reference import PROFILE_360_COLUMNS

    spark.read.format("delta").load(f"{lake}/silver/receipts").createOrReplaceTempView("bench_silver_receipts")
    sql = SPARK_360_SQL.format(
        as_of=as_of.isoformat(),
        w=window_days,
        last_3=", ".join(f"'{month}'" for month in last_3),
        previous_3=", ".join(f"'{month}'" for month in previous_3),
    )
    spark.sql(sql).toDF(*PROFILE_360_COLUMNS).write.mode("overwrite").parquet(str(out))


def check_spark_360(duck: duckdb.DuckDBPyConnection, lake: Path, out: Path) -> None:
    """Fail unless the Spark 360° query (Parquet ``out``) has DuckDB's 360° values, column by
    column in PROFILE_360_COLUMNS' order (numbers compared as doubles to 9 decimals)."""
    from bench.reference import PROFILE_360_COLUMNS

    texts = {
        "customer_id",
        "first_channel",
        "top_category",
        "main_channel",
        "preferred_part_of_day",
        "main_region",
        "main_store",
    }
    values = ", ".join(c if c in texts else f"round(CAST({c} AS DOUBLE), 9)" for c in PROFILE_360_COLUMNS)
    names = ", ".join(PROFILE_360_COLUMNS)
    spark_rows = f"SELECT {values} FROM read_parquet('{out}/*.parquet')"
    duck_rows = f"SELECT {values} FROM read_parquet('{lake}/duckdb-360.parquet') AS t({names})"
    if differing := rows_differing(duck, spark_rows, duck_rows):
        raise SystemExit(f"bench: {out} differs from DuckDB's 360° values in {differing:,} rows")


def plain_spark_core(
    spark: SparkSession, lake: Path, out: Path, *, as_of: dt.date, first_month: str, last_month: str
) -> None:
    """SPARK_CORE_SQL on the lake's silver receipts, written to ``out`` (Parquet)."""
    spark.read.format("delta").load(f"{lake}/silver/receipts").createOrReplaceTempView("bench_silver_receipts")
    sql = SPARK_CORE_SQL.format(as_of=as_of.isoformat(), first_month=first_month, last_month=last_month)
    spark.sql(sql).write.mode("overwrite").parquet(str(out))


def tuned_spark_core(
    spark: SparkSession, lake: Path, out: Path, *, as_of: dt.date, first_month: str, last_month: str
) -> None:
    """The same core as SPARK_CORE_SQL, written for Spark: one shuffle (by customer) and one
    sort feed the gap window and both aggregations, which stream; the profile is cached for
    ``approxQuantile`` and the scores (the plain query computes it twice)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from transforms.calendar import month_of

    is_purchase = F.col("amount") > 0
    receipts = (
        spark.read.format("delta")
        .load(f"{lake}/silver/receipts")
        .select(
            "customer_id",
            "receipt_id",
            "receipt_ts",
            "amount",
            F.to_date("receipt_ts").alias("day"),
            month_of("receipt_ts").alias("month"),
        )
    )
    earlier = (
        Window.partitionBy("customer_id")
        .orderBy("month", "receipt_ts", "receipt_id")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    with_gaps = (
        receipts.repartition("customer_id")
        .sortWithinPartitions("customer_id", "month", "receipt_ts", "receipt_id")
        .withColumn(
            "gap", F.when(is_purchase, F.datediff("day", F.max(F.when(is_purchase, F.col("day"))).over(earlier)))
        )
    )
    customer_month = with_gaps.groupBy("customer_id", "month").agg(
        F.count(F.when(is_purchase, 1)).alias("orders"),
        F.sum("amount").alias("net_amount"),
        F.min(F.when(is_purchase, F.col("day"))).alias("first_day"),
        F.max(F.when(is_purchase, F.col("day"))).alias("last_day"),
        F.count("gap").alias("gap_count"),
        F.coalesce(F.sum("gap"), F.lit(0)).alias("gap_sum"),
        F.coalesce(F.sum(F.col("gap") * F.col("gap")), F.lit(0)).alias("gap_sumsq"),
    )
    in_window = F.col("month") >= first_month
    profile = (
        customer_month.where(F.col("month") <= last_month)
        .groupBy("customer_id")
        .agg(
            F.datediff(F.lit(as_of), F.max("last_day")).alias("recency_days"),
            F.coalesce(F.sum(F.when(in_window, F.col("orders"))), F.lit(0)).alias("frequency"),
            F.coalesce(F.sum(F.when(in_window, F.col("net_amount"))), F.lit(0)).alias("monetary_amount"),
            F.datediff(F.max("last_day"), F.min("first_day")).alias("length_days"),
            F.sum("gap_count").alias("gap_count"),
            F.sum("gap_sum").alias("gap_sum"),
            F.sum("gap_sumsq").alias("gap_sumsq"),
            F.sum("orders").alias("orders"),
        )
        .where(F.col("orders") > 0)
        .drop("orders")
        .persist()
    )
    metrics = ["recency_days", "frequency", "monetary_amount"]
    quartiles = dict(zip(metrics, profile.approxQuantile(metrics, [0.25, 0.5, 0.75], 1e-4), strict=True))

    def above(metric: str) -> Column:
        return sum((F.col(metric) > q).cast("int") for q in quartiles[metric])

    profile.select(
        "*",
        (1 + above("recency_days")).alias("r_score"),
        (4 - above("frequency")).alias("f_score"),
        (4 - above("monetary_amount")).alias("m_score"),
    ).write.mode("overwrite").parquet(str(out))
    profile.unpersist()


def check_spark_core(duck: duckdb.DuckDBPyConnection, lake: Path, out: Path) -> None:
    """Fail unless a Spark core (Parquet ``out``) has DuckDB's core values (scores aside:
    Spark's quantiles are approximate)."""
    columns = "customer_id, recency_days, frequency, monetary_amount, length_days, gap_count, gap_sum, gap_sumsq"
    spark_rows = f"SELECT {columns} FROM read_parquet('{out}/*.parquet')"
    duck_rows = f"SELECT {columns} FROM read_parquet('{lake}/duckdb-core.parquet')"
    if differing := rows_differing(duck, spark_rows, duck_rows):
        raise SystemExit(f"bench: {out} differs from DuckDB's core in {differing:,} rows")


def rows_differing(duck: duckdb.DuckDBPyConnection, left_sql: str, right_sql: str) -> int:
    """Rows of either query missing from the other, duplicates counted (positional columns)."""
    return duck.execute(
        f"SELECT (SELECT count(*) FROM ({left_sql} EXCEPT ALL {right_sql})) "
        f"+ (SELECT count(*) FROM ({right_sql} EXCEPT ALL {left_sql}))"
    ).fetchone()[0]


COHORT_SQL = """
WITH r AS (SELECT customer_id, CAST(receipt_ts AS DATE) AS day, amount
           FROM read_parquet($files) WHERE CAST(receipt_ts AS DATE) <= $as_of),
c AS (SELECT customer_id, min(date_trunc('month', day)) AS cohort FROM r WHERE amount > 0 GROUP BY 1),
act AS (SELECT c.cohort, date_diff('month', c.cohort, date_trunc('month', r.day)) AS off,
               count(DISTINCT r.customer_id) FILTER (WHERE r.amount > 0) AS active,
               count(*) FILTER (WHERE r.amount > 0) AS orders, sum(r.amount) AS revenue
        FROM r JOIN c USING (customer_id) GROUP BY 1, 2)
SELECT * FROM act
"""


SEGMENT_AS_OF = "2024-12-31"
SEGMENT_OUTPUTS = (
    "gold/rfm_segments",
    "gold/rfm_thresholds",
    "gold/rule_segments",
    "gold/campaign_audiences",
    "gold/segment_migration",
    "ops/runs",
    "exports",
)


def synthetic_profile(spark, customers: int):  # type: ignore[no-untyped-def]
    """gold/customer_profile-shaped rows from spark.range, hash-seeded: skewed, heavily tied F and R
    (a quarter at F = 1, 15% at F = 0), continuous M with some net returns, and the columns the
    shipped rules read."""
    from pyspark.sql import functions as F

    def u(seed: int):  # type: ignore[no-untyped-def]  # uniform [0, 1) from a hash of the id
        return F.pmod(F.xxhash64("id", F.lit(seed)), F.lit(1 << 30)) / float(1 << 30)

    frequency = F.when(u(1) < 0.15, 0).when(u(1) < 0.40, 1).otherwise(F.floor(-F.log(u(2) + 1e-9) * 4) + 2)
    buys = F.col("frequency") > 0
    spend = F.col("frequency") * F.exp(F.lit(3.2) + F.lit(0.9) * (u(3) + u(4) + u(5) - 1.5) * 2)
    return (
        spark.range(customers)
        .select("id", frequency.cast("long").alias("frequency"))
        .select(
            F.format_string("C%09d", "id").alias("customer_id"),
            F.lit(dt.date.fromisoformat(SEGMENT_AS_OF)).alias("as_of_date"),
            F.when(buys, F.floor(F.pow(u(6), 2) * 365))
            .otherwise(F.floor(u(6) * 730) + 365)
            .cast("int")
            .alias("recency_days"),
            "frequency",
            F.when(u(7) < 0.02, -F.round(u(8) * 80, 2))
            .when(buys, F.round(spend, 2))
            .otherwise(0)
            .cast("decimal(18,2)")
            .alias("monetary_amount"),
            F.round(F.when(buys, spend).otherwise(0) * (1 + u(9) * 3), 2)
            .cast("decimal(18,2)")
            .alias("net_amount_lifetime"),
            F.when(buys, F.round(F.pow(u(10), 2), 2)).alias("coupon_order_share"),
            F.when(buys, F.floor(F.pow(u(11), 3) * 4) + 1).otherwise(0).cast("long").alias("regions_used_window"),
            F.when(u(12) < 0.5, "Loyal Active").otherwise("New Active").alias("value_tier"),
        )
    )


def bench_segment(sizes: list[int], spark_overrides: list[str]) -> str:
    """The segment job on a synthetic gold/customer_profile of ``size`` customers (not the pipeline)."""
    from jobs import segment as segment_job

    rows = [
        "| customers | segment s | customers/s | approxQuantile s | share of the job |",
        "|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        lake = OUT / f"segment-lake-{label(size)}"
        spark = build_session(load_config(None, spark_overrides).spark)
        profile_path = lake / "gold" / "customer_profile"
        if not (profile_path / "_delta_log").is_dir():  # set-up, not measured
            print(f"bench segment: writing a synthetic profile of {label(size)} customers ...", flush=True)
            synthetic_profile(spark, size).write.format("delta").mode("overwrite").partitionBy("as_of_date").save(
                str(profile_path)
            )
        for table in SEGMENT_OUTPUTS:
            shutil.rmtree(lake / table, ignore_errors=True)
        argv = ["--set", f"lake.root={lake}", "--as-of", SEGMENT_AS_OF, *set_flags(spark_overrides)]
        print(f"bench segment {label(size)} ...", flush=True)
        seconds = timed(lambda argv=argv: segment_job.main(argv))
        run = (
            spark.read.format("delta").load(f"{lake}/ops/runs").where("job = 'segment' AND status <> 'started'").first()
        )
        if run is None or run["status"] != "succeeded":
            raise SystemExit(f"bench segment: the run failed: {run['error'] if run else 'no ops/runs row'}")
        quantile_s = json.loads(run["details"])["approx_quantile_seconds"]
        rows.append(
            f"| {run['rows_in']:,} | {seconds:.1f} | {run['rows_in'] / seconds:,.0f} | {quantile_s:.1f} | "
            f"{quantile_s / seconds:.0%} |"
        )
        print(rows[-1], flush=True)
    return "\n".join(
        [
            f"`segment --as-of {SEGMENT_AS_OF}` with the default map and the shipped rules, on a synthetic",
            "`gold/customer_profile` written once from `spark.range` (bench/run.py `synthetic_profile`: a",
            "quarter of customers at F = 1, 15% at F = 0, R and M skewed; the pipeline is not run). Wall",
            "time of the whole job: profile read and cache, exact R and F thresholds from histograms,",
            "approxQuantile on M (timed on its own), the five tables written, ops/runs. Output tables are",
            "removed before each run, so migration compares with nothing.",
            "",
            *rows,
        ]
    )


def synthetic_cluster_profile(spark: SparkSession, customers: int, as_of: str, seed: int = 7) -> DataFrame:
    """gold/customer_profile with the clustering features: five latent groups, skewed values.

    Frequency, recency, amounts are log-normal around per-group levels; about a tenth of
    the customers have no purchase in the window (frequency 0: shares, averages, trend null);
    periodicity is null below three purchases; a few net amounts are negative (returns).
    """
    from pyspark.sql import functions as F

    def pick(levels: list[float]) -> Column:
        return F.element_at(F.array(*[F.lit(v) for v in levels]), F.col("segment") + 1)

    def lognormal(mu: Column, sigma: float, salt: int) -> Column:
        return F.exp(F.randn(seed + salt) * sigma + mu)

    base = spark.range(customers, numPartitions=max(2, customers // 500_000)).select(
        F.format_string("C%09d", "id").alias("customer_id"), F.floor(F.rand(seed) * 5).cast("int").alias("segment")
    )
    drawn = base.select(
        "customer_id",
        "segment",
        F.floor(lognormal(pick([0.5, 1.5, 2.3, 3.0, 1.0]), 0.7, 1) - 1).cast("long").alias("frequency"),
        F.least(F.lit(2000), F.floor(lognormal(pick([5.5, 4.0, 2.8, 2.0, 3.5]), 0.8, 2)))
        .cast("int")
        .alias("recency_days"),
        F.floor(F.rand(seed + 3) * pick([200, 500, 800, 1000, 300])).cast("int").alias("length_days"),
        lognormal(pick([3.0, 3.6, 3.4, 3.9, 4.8]), 0.5, 4).alias("avg_receipt"),
        lognormal(pick([1.0, 1.5, 2.0, 2.2, 1.2]), 0.4, 5).alias("avg_items_per_order"),
        lognormal(F.lit(3.0), 0.5, 6).alias("periodicity"),
        lognormal(F.lit(0.0), 0.6, 7).alias("trend"),
        (F.rand(seed + 8) * pick([1.0, 3.0, 1.0, 0.5, 1.0])).alias("w_store"),
        (F.rand(seed + 9) * pick([1.0, 0.5, 2.0, 1.0, 0.3])).alias("w_online"),
        (F.rand(seed + 10) * pick([0.5, 0.3, 1.0, 2.5, 0.2])).alias("w_app"),
        (F.rand(seed + 11) * pick([0.6, 0.2, 0.4, 0.1, 0.05])).alias("coupon"),
        (F.rand(seed + 12) * pick([0.05, 0.1, 0.2, 0.08, 0.3])).alias("returns"),
        F.rand(seed + 13).alias("u"),
    )
    buying = F.col("frequency") > 0
    gross = F.col("frequency") * F.col("avg_receipt")
    weights = F.col("w_store") + F.col("w_online") + F.col("w_app")

    def share(value: Column) -> Column:
        return F.when(buying, value)

    return drawn.select(
        "customer_id",
        F.lit(as_of).cast("date").alias("as_of_date"),
        "length_days",
        "recency_days",
        "frequency",
        (gross * (1 - F.col("returns"))).cast("decimal(18,2)").alias("monetary_amount"),
        F.when(F.col("frequency") >= 3, F.col("periodicity")).alias("periodicity_days"),
        gross.cast("decimal(18,2)").alias("gross_spend_window"),
        share(F.col("avg_receipt")).cast("decimal(18,2)").alias("avg_receipt_amount"),
        share(F.col("avg_receipt") * (1 + 2 * F.col("u"))).cast("decimal(18,2)").alias("max_receipt_amount_window"),
        share(F.col("trend")).alias("spend_trend_ratio"),
        share(F.col("avg_items_per_order")).alias("avg_items_per_order"),
        share(F.col("avg_receipt") / F.col("avg_items_per_order")).alias("avg_item_amount"),
        share(F.least(F.col("frequency"), 1 + F.floor(F.col("u") * 8))).cast("long").alias("categories_window"),
        share(F.col("w_store") / weights).alias("store_order_share"),
        share(F.col("w_online") / weights).alias("online_order_share"),
        share(F.col("w_app") / weights).alias("app_order_share"),
        share(F.col("coupon")).alias("coupon_order_share"),
        share(F.col("coupon") * 0.4).alias("discount_share"),
        share(F.col("returns")).alias("return_rate_count"),
    )


def bench_clusters(sizes: list[int], spark_overrides: list[str]) -> str:
    """The whole clusters job against scikit-learn doing the same work (bench/reference_clusters.py)."""
    import numpy as np
    import pyarrow.parquet as pq
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from bench.reference_clusters import fit_at, sklearn_clusters
    from jobs import clusters as clusters_job

    as_of = "2024-12-31"
    cfg = load_config(None, spark_overrides).clusters
    features = cfg.feature_columns
    rows = [
        "| customers | sample | Spark k | sklearn k | Spark job s | sklearn job s | job ratio | "
        "Spark final fit s | sklearn fit at Spark's k s | fit ratio | Spark silhouette | sklearn silhouette | "
        "Spark WSSSE | sklearn WSSSE at Spark's k | WSSSE diff |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    steps = [
        "| customers | engine | read and check s | prepare s | k search s | final fit s | describe and write s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        lake = OUT / f"clusters-{label(size)}"
        spark = build_session(load_config(None, spark_overrides).spark)
        profile_path = lake / "gold" / "customer_profile"
        if not (profile_path / "_delta_log").is_dir():
            print(f"bench clusters: generating a {label(size)} customer profile ...", flush=True)
            synthetic_cluster_profile(spark, size, as_of).write.format("delta").mode("overwrite").partitionBy(
                "as_of_date"
            ).save(str(profile_path))
        shutil.rmtree(lake / "gold" / "clusters", ignore_errors=True)
        shutil.rmtree(lake / "gold" / "cluster_profiles", ignore_errors=True)
        argv = ["--set", f"lake.root={lake}", "--as-of", as_of, *set_flags(spark_overrides)]
        print(f"bench clusters {label(size)}: the Spark job ...", flush=True)
        job_s = timed(lambda argv=argv: clusters_job.main(argv))
        runs = spark.read.format("delta").load(f"{lake}/ops/runs").where("job = 'clusters' AND status = 'succeeded'")
        details = json.loads(runs.orderBy("started_at", ascending=False).first()["details"])
        k = details["k"]
        spark_silhouette = next(c["silhouette"] for c in details["k_curve"] if c["k"] == k)

        # the feature columns (null -> NaN) and Spark's standardised matrix, exported through Parquet
        profile = spark.read.format("delta").load(str(profile_path)).where(f"as_of_date = DATE'{as_of}'")
        raw_path, matrix_path = lake / "features.parquet", lake / "standardised.parquet"
        profile.select(*[F.col(f).cast("double") for f in features]).write.mode("overwrite").parquet(str(raw_path))
        prep = PipelineModel(stages=PipelineModel.load(details["model_path"]).stages[:4])
        prep.transform(profile).select(vector_to_array("features").alias("x")).write.mode("overwrite").parquet(
            str(matrix_path)
        )
        raw = np.column_stack(
            [pq.read_table(raw_path).column(f).to_numpy(zero_copy_only=False).astype(np.float64) for f in features]
        )
        column = pq.read_table(matrix_path).column("x").combine_chunks()
        spark_matrix = column.flatten().to_numpy().reshape(len(column), -1)

        print(f"bench clusters {label(size)}: scikit-learn's job ...", flush=True)
        sk = sklearn_clusters(
            raw,
            features,
            log_features=cfg.log_features,
            zero_fill=cfg.zero_fill,
            k_min=cfg.k_min,
            k_max=cfg.k_max,
            sample_rows=cfg.sample_rows,
            max_iter=cfg.max_iter,
            seed=cfg.seed,
        )
        prep_gap = float(np.max(np.abs(sk.matrix - spark_matrix))) if sk.matrix.shape == spark_matrix.shape else None
        sk_silhouette = dict(sk.curve)[sk.k]
        # scikit-learn's fit at Spark's k on Spark's very matrix: the same space and work, like for like
        sk_cost, _, sk_fit_s = fit_at(spark_matrix, k, max_iter=cfg.max_iter, seed=cfg.seed)
        spark_cost = details["training_cost"]
        sk_s = sk.total_seconds
        spark_steps = details["seconds"]
        rows.append(
            f"| {size:,} | {details['sample_rows']:,} | {k} | {sk.k} | {job_s:.1f} | {sk_s:.1f} | "
            f"{job_s / sk_s:.2f}x | {spark_steps['final_fit']:.1f} | {sk_fit_s:.1f} | "
            f"{spark_steps['final_fit'] / sk_fit_s:.1f}x | "
            f"{spark_silhouette:.4f} | {sk_silhouette:.4f} | {spark_cost:,.0f} | {sk_cost:,.0f} | "
            f"{(spark_cost - sk_cost) / sk_cost:+.2%} |"
        )
        steps.append(
            f"| {size:,} | Spark | {spark_steps['read_and_check']:.1f} | {spark_steps['prepare']:.1f} | "
            f"{spark_steps.get('k_search', 0.0):.1f} | {spark_steps['final_fit']:.1f} | "
            f"{spark_steps['describe_and_write']:.1f} |"
        )
        steps.append(
            f"| {size:,} | scikit-learn | - | {sk.seconds['prepare']:.1f} | {sk.seconds['k search']:.1f} "
            f"(silhouettes {sk.silhouette_seconds:.1f}) | "
            f"{sk.seconds['final fit']:.1f} | - |"
        )
        print(rows[-1], flush=True)
        print(*steps[-2:], sep="\n", flush=True)
        print("Spark k curve:", json.dumps(details["k_curve"]), flush=True)
        print("sklearn k curve:", json.dumps(sk.curve), flush=True)
        print(f"largest gap between the two standardised matrices: {prep_gap}", flush=True)
        del raw, spark_matrix, sk
    return "\n".join(
        [
            "`clusters` on a synthetic `gold/customer_profile` (five latent groups, log-normal",
            "days, counts and amounts, a tenth without a purchase in the window) with the 18",
            "default features, against scikit-learn doing the same work in one process",
            "(bench/reference_clusters.py): the same preparation (zero-fill, signed log1p, median",
            f"imputation, standardisation), the same k range ({cfg.k_min}..{cfg.k_max}), the same sample size",
            f"for the silhouette ({cfg.sample_rows:,}; Spark's `ClusteringEvaluator` measures squared Euclidean",
            "distance, scikit-learn's `silhouette_score` its default Euclidean; its squared Euclidean costs",
            "about the same, but the chosen k may differ), k-means++-style initialisation",
            f"(Spark: k-means||), the same iteration cap ({cfg.max_iter}),",
            "then the final fit on every customer at the chosen k. Spark's time is the whole job",
            "(Delta read, checks, the fitted model saved, both tables written, ops/runs);",
            "scikit-learn's starts from the feature columns in memory. The fit ratio and the WSSSE",
            "compare scikit-learn's k-means at Spark's k on the matrix Spark standardised (same space",
            "and work; not part of either job's time). Silhouettes are each engine's own on its own",
            "sample at its chosen k.",
            "",
            *rows,
            "",
            "Where the time goes (seconds):",
            "",
            *steps,
        ]
    )


SECTIONS: dict[str, Callable[[list[int], list[str]], str]] = {
    "generate": bench_generate,
    "ingest": bench_ingest,
    "cleanse": bench_cleanse,
    "features": bench_features,
    "segment": bench_segment,
    "clusters": bench_clusters,
    "offers": bench_offers,  # a fixed real data set: no sizes
    "incremental": lambda sizes, overrides: bench_incremental(sizes, overrides, OUT),
}
DEFAULT_SIZES = {
    "generate": "1M,10M",
    "ingest": "1M,10M",
    "cleanse": "1M,10M",
    "features": "10M,50M",
    "segment": "1M,5M",
    "clusters": "1M,5M",
    "incremental": "50M",
}


def write_section(name: str, body: str, header: str) -> None:
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n\n`make bench` rewrites the sections below.\n"
    block = f"<!-- bench:{name} -->\n## {name}\n\n{header}\n\n{body}\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    REPORT.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--sizes", help="receipts per run, e.g. 1M,10M (default per section)")
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(SECTIONS)
    overrides = ["spark.console_progress=off", *args.set]
    header = f"Measured {dt.date.today().isoformat()} on {machine()}."
    build_session(load_config(None, overrides).spark)  # JVM start-up is not part of any figure
    for name in names:
        if name not in SECTIONS:
            raise SystemExit(f"bench: --only {name}: choose from {', '.join(SECTIONS)}")
        sizes = [parse_size(s) for s in (args.sizes or DEFAULT_SIZES.get(name, "")).split(",") if s]
        write_section(name, SECTIONS[name](sizes, overrides), header)
        print(f"bench: wrote section {name} of {REPORT}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
