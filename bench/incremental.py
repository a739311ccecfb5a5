"""The incremental benchmark: one new month appended to the history, run incrementally,
against a full run of the same stages on the same receipts; and the same at 12 months.

For each history length (36 and 12 months, the same customers and receipts per month):

1. ``generate`` makes the whole lake, history plus one month (January 2025), in a
   *source* lake: the full run's input.
2. The *incremental* lake gets the source's bronze rows of the history months only, and
   the pipeline runs on it as of the history's last day (a full run: no state yet).
3. The new month's bronze rows are appended to it, and ``run`` (incremental by default once
   the lifetime state exists) runs as of 2025-01-31: the time measured.
4. ``run --full`` on the source lake as of 2025-01-31: the full run of the same stages.
5. Every gold table both runs wrote for 2025-01-31 is compared row for row (``EXCEPT ALL``
   both ways, run ids and times left out); tables that compare with an earlier run of the
   same lake (segment migration, cluster ids and names) are left out, as the full lake has
   no earlier run.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seglake import catalog, tables
from seglake.config import load_config
from seglake.session import build_session

NEW_MONTH = "2025-01"
AS_OF = "2025-01-31"
HISTORY_END = "2024-12-31"
HISTORY_START = {36: "2022-01-01", 12: "2024-01-01"}
# gold tables whose rows depend on the lake's earlier runs, not only on the receipts
EARLIER_RUN_TABLES = {"gold/segment_migration", "gold/clusters", "gold/cluster_profiles"}
# columns that name the run or its time
RUN_COLUMNS = {"run_id", "computed_at", "created_at", "written_at", "model_path"}


def _label(size: int) -> str:
    return f"{size / 1e6:g}M" if size >= 1_000_000 else f"{size / 1e3:g}k"


def _stage_seconds(spark: SparkSession, lake: Path) -> dict[str, float]:
    """Seconds per stage of the lake's last ``run`` (from ops/runs)."""
    runs = spark.read.format("delta").load(f"{lake}/ops/runs").where("status = 'succeeded'")
    last = runs.where("job = 'run'").orderBy(F.desc("started_at")).first()
    stages = runs.where(F.get_json_object("details", "$.pipeline_run") == last["run_id"]).where("job <> 'generate'")
    seconds = F.col("ended_at").cast("double") - F.col("started_at").cast("double")
    return {r["job"]: r["s"] for r in stages.select("job", seconds.alias("s")).collect()}


def _split_history(spark: SparkSession, source: Path, target: Path) -> DataFrame:
    """Copy the source's bronze history (all but the new month) to ``target``; the new month's rows."""
    config = load_config(None, [f"lake.root={target}"])
    bronze = spark.read.format("delta").load(f"{source}/bronze/receipts")
    is_new = F.col("receipt_month") == NEW_MONTH
    tables.write_table(bronze.where(~is_new), config, "bronze/receipts", mode="overwrite")
    customers = spark.read.format("delta").load(f"{source}/bronze/customers")
    tables.write_table(customers, config, "bronze/customers", mode="overwrite")
    return bronze.where(is_new)


def _gold_differences(spark: SparkSession, ours: Path, full: Path) -> dict[str, int]:
    """Rows in one lake's AS_OF partition and not the other's, per gold table both wrote."""
    differences = {}
    for name, table in catalog.CATALOG.items():
        if not table.is_as_of_partitioned or name in EARLIER_RUN_TABLES:
            continue
        if not (tables.table_exists(spark, f"{ours}/{name}") and tables.table_exists(spark, f"{full}/{name}")):
            continue
        columns = [c for c in table.column_names if c not in RUN_COLUMNS]

        def rows(lake: Path, name: str = name, columns: list[str] = columns) -> DataFrame:
            frame = spark.read.format("delta").load(f"{lake}/{name}").where(f"as_of_date = DATE'{AS_OF}'")
            maps = {f.name for f in frame.schema.fields if f.dataType.typeName() == "map"}
            return frame.select([F.array_sort(F.map_entries(c)).alias(c) if c in maps else F.col(c) for c in columns])

        a, b = rows(ours), rows(full)
        differences[name] = a.exceptAll(b).count() + b.exceptAll(a).count()
    return differences


def run_case(customers: int, receipts: int, history_months: int, overrides: list[str], out: Path) -> dict:
    """One history length: the timings and the gold comparison."""
    from jobs import generate as generate_job
    from jobs import run as run_job

    flags = [arg for override in overrides for arg in ("--set", override)]
    base = out / f"incremental-{history_months}m"
    source, incremental = base / "source", base / "incremental"
    shutil.rmtree(base, ignore_errors=True)
    start = HISTORY_START[history_months]
    print(f"bench incremental {history_months} months: generate {receipts:,} receipts ...", flush=True)
    argv = [f"--set=lake.root={source}", "--customers", str(customers), "--receipts", str(receipts)]
    assert generate_job.main([*argv, "--start", start, "--end", AS_OF, *flags]) == 0
    spark = build_session(load_config(None, overrides).spark)
    new_rows = _split_history(spark, source, incremental)
    new_count = new_rows.count()
    print(f"  history run as of {HISTORY_END} (full: no state yet) ...", flush=True)
    assert run_job.main([f"--set=lake.root={incremental}", f"--as-of={HISTORY_END}", *flags]) == 0
    tables.write_table(new_rows, load_config(None, [f"lake.root={incremental}"]), "bronze/receipts", mode="append")
    print(f"  incremental run as of {AS_OF} ({new_count:,} new bronze rows) ...", flush=True)
    started = time.perf_counter()
    assert run_job.main([f"--set=lake.root={incremental}", f"--as-of={AS_OF}", *flags]) == 0
    incremental_s = time.perf_counter() - started
    incremental_stages = _stage_seconds(spark, incremental)
    print(f"  full run as of {AS_OF} ...", flush=True)
    started = time.perf_counter()
    assert run_job.main([f"--set=lake.root={source}", f"--as-of={AS_OF}", "--full", *flags]) == 0
    full_s = time.perf_counter() - started
    full_stages = _stage_seconds(spark, source)
    differences = _gold_differences(spark, incremental, source)
    silver = spark.read.format("delta").load(f"{source}/silver/receipts").count()
    case = {
        "months": history_months,
        "receipts": silver,
        "new_rows": new_count,
        "incremental_s": incremental_s,
        "full_s": full_s,
        "incremental_stages": incremental_stages,
        "full_stages": full_stages,
        "differences": differences,
    }
    print(f"  {case}", flush=True)
    return case


def bench_incremental(sizes: list[int], overrides: list[str], out: Path) -> str:
    """The section: per size (receipts of the 36-month lake), both history lengths."""
    lines = [
        "| receipts (36 months + 1) | history | silver receipts | new bronze rows | incremental s | full s | "
        "incremental / full | gold tables equal |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    stage_lines = [
        "| receipts | history | run | " + " | ".join(STAGES) + " |",
        "|---:|---:|---|" + "---:|" * len(STAGES),
    ]
    ratios = []
    for size in sizes:
        customers = max(size // 10, 1)
        cases = {}
        for months in (36, 12):
            receipts = round(size * (months + 1) / 37)  # the same receipts per month
            cases[months] = run_case(customers, receipts, months, overrides, out)
            case = cases[months]
            equal = [t for t, n in case["differences"].items() if n == 0]
            unequal = [f"{t} ({n} rows differ)" for t, n in case["differences"].items() if n]
            verdict = f"{len(equal)} of {len(case['differences'])}" + (f"; {', '.join(unequal)}" if unequal else "")
            lines.append(
                f"| {_label(size)} | {months} months | {case['receipts']:,} | {case['new_rows']:,} | "
                f"{case['incremental_s']:.1f} | {case['full_s']:.1f} | "
                f"{case['incremental_s'] / case['full_s']:.2f}x | {verdict} |"
            )
            for run in ("incremental", "full"):
                seconds = case[f"{run}_stages"]
                cells = " | ".join(f"{seconds.get(stage, 0.0):.1f}" for stage in STAGES)
                stage_lines.append(f"| {_label(size)} | {months} months | {run} | {cells} |")
        ratio = cases[36]["incremental_s"] / cases[12]["incremental_s"]
        ratios.append(f"{_label(size)}: incremental run at 36 months / at 12 months = **{ratio:.2f}x**")
    return "\n".join(
        [
            "One new month (January 2025) appended to 36 and to 12 months of history, with the",
            "same customers and receipts per month (bench/incremental.py). *incremental*: `seglake",
            "run` as of 2025-01-31 after the new month's bronze rows were appended to a lake whose",
            "last run was as of 2024-12-31 (wall time of the whole run, every stage); *full*: `run",
            "--full` as of 2025-01-31 on a lake holding the same receipts. Gold tables compared row",
            "for row for 2025-01-31 (segment migration and cluster ids compare with a lake's earlier",
            "run, which only the incremental lake has: left out).",
            "",
            *lines,
            "",
            *ratios,
            "",
            "Seconds per stage (ops/runs):",
            "",
            *stage_lines,
        ]
    )


STAGES = ("cleanse", "features", "value", "cohorts", "segment", "clusters", "report")
