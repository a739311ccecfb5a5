"""``run``: the whole pipeline for one as-of date on the configured lake.

On a lake without receipts (the embedded default on a fresh machine) it first
generates the sample lake from the ``generate`` section of the config.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import traceback
from collections.abc import Callable

if __package__ in (None, ""):  # run as a file: spark-submit jobs/run.py
    import _bootstrap  # noqa: F401

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import cleanse, clusters, cohorts, features, generate, report, segment
from seglake import tables
from seglake.asof import last_complete_day
from seglake.cli import job_parser, run_job
from seglake.errors import UserError
from seglake.runlog import Run, complete_version, last_cleanse_pair

StageBody = Callable[[SparkSession, Run, argparse.Namespace], None]

# Pipeline stages in order: name -> the job body that runs it.
STAGES = {
    "cleanse": cleanse.cleanse,
    "features": features.features,
    "cohorts": cohorts.cohorts,
    "segment": segment.segment,
    "clusters": clusters.clusters,
    "report": report.report,
}


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("run", "Run the pipeline stages for one as-of date.")
    parser.add_argument("--stages", help=f"comma-separated subset of: {', '.join(STAGES)}")
    parser.add_argument("--full", action="store_true", help="cleanse: reprocess all of bronze")
    return parser


def stage_tables(stage: str) -> list[str]:
    """The lake tables a stage writes (TABLE_INFO's writer column), ops tables aside: they only append."""
    return [t for t, info in tables.TABLE_INFO.items() if f"`{stage}`" in info[2] and not t.startswith("ops/")]


def table_versions(spark: SparkSession, run: Run, names: list[str]) -> dict[str, int]:
    """Current version of each of ``names`` that exists."""
    versions = {}
    for table in names:
        path = tables.table_path(run.config, table)
        if tables.table_exists(spark, path):
            versions[table] = tables.table_version(spark, path)
    return versions


def restore_tables(spark: SparkSession, run: Run, before: dict[str, int]) -> list[str]:
    """Put every table a failed stage committed to back at its version from before the stage."""
    restored = []
    for table, version in table_versions(spark, run, list(before)).items():
        if version != before[table]:
            DeltaTable.forPath(spark, tables.table_path(run.config, table)).restoreToVersion(before[table])
            restored.append(f"{table} v{before[table]}")
    return restored


def run_stage(spark: SparkSession, stage: Run, body: StageBody, args: argparse.Namespace) -> None:
    """Run one stage; on failure restore what it committed, record it failed, raise one line."""
    before = table_versions(spark, stage, stage_tables(stage.job))
    try:
        body(spark, stage, args)
    except Exception as exc:
        if not isinstance(exc, UserError):
            traceback.print_exc()
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        restored = restore_tables(spark, stage, before)
        if restored:
            stage.log(f"restored {', '.join(restored)}")
        stage.record(spark, "failed", f"{type(exc).__name__}: {why}")
        raise UserError(f"stage {stage.job} failed: {why}") from exc
    stage.record(spark, "succeeded")


def default_as_of(spark: SparkSession, run: Run, *, cleanse_first: bool) -> dt.date:
    """The last complete day in the receipts the run will profile, printed.

    bronze/receipts when the run cleanses first (or on a first run, without silver): the
    day is capped by ingestion time, so junk dates in the future do not count; else silver.
    """
    table, reader = "bronze/receipts", spark.read.format("delta")
    if not cleanse_first and tables.table_exists(spark, tables.table_path(run.config, "silver/receipts")):
        # silver as its readers see it: without the commits of a cleanse run that did not complete
        silver = complete_version(spark, run.config, "silver/receipts", last_cleanse_pair(spark, run.config))
        if silver.version is not None:
            table, reader = "silver/receipts", reader.option("versionAsOf", silver.version)
    day = last_complete_day(reader.load(tables.table_path(run.config, table)))
    if day is None:
        raise UserError(f"{table} has no receipts: nothing to compute")
    run.log(f"as of {day}: the last complete day in {table} (--as-of to choose another)")
    return day


def run_pipeline(spark: SparkSession, run: Run, args: argparse.Namespace) -> None:
    receipts = tables.table_path(run.config, "bronze/receipts")
    if not tables.table_exists(spark, receipts):
        run.log(f"no receipts at {receipts}: generating the sample lake first")
        generate.generate(spark, run, args)
    wanted = [s.strip() for s in (args.stages or ",".join(STAGES)).split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise UserError(f"--stages: unknown stage {unknown[0]}; choose from {', '.join(STAGES)}")
    if run.as_of is None:
        run.as_of = default_as_of(spark, run, cleanse_first="cleanse" in wanted)
    else:
        run.log(f"as of {run.as_of} (--as-of)")
    stages: list[Run] = []
    for name in wanted:
        stage = Run(job=name, config=run.config, as_of=run.as_of)
        started = time.perf_counter()
        stage.log("started")
        run_stage(spark, stage, STAGES[name], args)
        stages.append(stage)
        run.as_of = run.as_of or stage.as_of  # later stages compute for the same date
        run.tables_written.update(stage.tables_written)
        stage.log(f"done in {time.perf_counter() - started:.1f}s: {stage.rows_in or 0:,} rows in, "
                  f"{stage.rows_out or 0:,} rows out")  # fmt: skip
    summarise(spark, run, stages)


def partition_rows(spark: SparkSession, run: Run, table: str) -> int:
    """Rows of the run's as-of partition (gold tables) or of the table's last commit."""
    path = tables.table_path(run.config, table)
    if run.as_of is not None and TABLE_PARTITION.get(table) == "`as_of_date`":
        frame = spark.read.format("delta").load(path)
        return frame.where(F.col("as_of_date") == F.lit(run.as_of)).count()
    return tables.last_commit_rows(spark, path)


TABLE_PARTITION = {table: info[1] for table, info in tables.TABLE_INFO.items()}


def summarise(spark: SparkSession, run: Run, stages: list[Run]) -> None:
    """The end-of-run summary: tables written and their rows, quarantine, segments, the report."""
    root = tables.lake_root(run.config)
    run.log(f"summary (as of {run.as_of}, lake {root}):")
    run.log(f"  {'table':<34} {'rows':>12}  counted")
    for table in sorted(run.tables_written):
        rows = partition_rows(spark, run, table)
        counted = "as-of partition" if TABLE_PARTITION.get(table) == "`as_of_date`" else "last commit"
        run.log(f"  {table:<34} {rows:>12,}  {counted}")
    for stage in stages:
        if stage.job == "cleanse" and "quarantined" in stage.details:
            reasons = ", ".join(f"{k} {v:,}" for k, v in stage.details.get("reasons", {}).items() if v)
            run.log(f"  quarantined this run: {stage.details['quarantined']:,}" + (f" ({reasons})" if reasons else ""))
    segments_path = tables.table_path(run.config, "gold/rfm_segments")
    if run.as_of is not None and tables.table_exists(spark, segments_path):
        sizes = (
            spark.read.format("delta").load(segments_path)
            .where(F.col("as_of_date") == F.lit(run.as_of))
            .groupBy("category").count().orderBy(F.col("count").desc(), "category").collect()
        )  # fmt: skip
        if sizes:
            run.log("  segments: " + ", ".join(f"{r['category']} {r['count']:,}" for r in sizes))
    for stage in stages:
        if "report" in stage.details:
            run.log(f"  report: {stage.details['report']}")
    run.details["stages"] = [stage.job for stage in stages]


def main(argv: list[str] | None = None) -> int:
    return run_job("run", build_parser(), argv, run_pipeline)


if __name__ == "__main__":
    sys.exit(main())
