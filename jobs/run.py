"""``run``: the whole pipeline for one as-of date on the configured lake.

On the embedded default lake (``./lake``) without receipts, as on a fresh machine, it
first generates the sample lake from the ``generate`` section of the config; on any
other lake only with ``--sample`` (else a missing bronze/receipts is an error). The as-of date
is resolved once (``--as-of``, else the last complete day in the receipts the run will
profile) and every stage's ``run`` gets it. A stage that fails has the tables it
committed to restored to their version from before it (Delta RESTORE; the catalog says
which tables a stage writes), is recorded failed, and later stages do not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Mapping
from typing import Any

if __package__ in (None, ""):  # run as a file: spark-submit jobs/run.py
    import _bootstrap  # noqa: F401

from pyspark.sql import functions as F

from jobs import cleanse, clusters, cohorts, features, generate, report, segment, value
from seglake import catalog, logs, runlog, tables
from seglake.config import LakeConfig, SeglakeConfig
from seglake.errors import StageFailedError, UserError
from seglake.job import Job, StageResult, as_of_from_receipts, job_log, one_line, record_run, run_job, run_stage
from seglake.lake import Lake
from seglake.runlog import utc_now

DEFAULT_LAKE_ROOT = LakeConfig.model_fields["root"].default
# Pipeline stages in order.
STAGES: dict[str, Job] = {
    job.name: job for job in (cleanse.JOB, features.JOB, value.JOB, cohorts.JOB, segment.JOB, clusters.JOB, report.JOB)
}
log = job_log("run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stages", help=f"comma-separated subset of: {', '.join(STAGES)}")
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--full",
        action="store_true",
        help="rebuild everything: cleanse all of bronze, rewrite silver/customer_month and the lifetime state",
    )
    how.add_argument(
        "--incremental",
        action="store_true",
        help="process only what was appended since the last run (the default once silver/customer_lifetime exists)",
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help="without bronze/receipts, generate the synthetic sample lake first (automatic only on the default ./lake)",
    )


def stage_list(stages: str | None) -> list[str]:
    """The stages named by ``--stages`` (all by default), in pipeline order as given."""
    wanted = [s.strip() for s in (stages or ",".join(STAGES)).split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise UserError(f"--stages: unknown stage {unknown[0]}; choose from {', '.join(STAGES)}")
    return wanted


def table_versions(lake: Lake, names: list[str]) -> dict[str, int]:
    """Current version of each of ``names`` that exists."""
    return {table: lake.version(table) for table in names if lake.exists(table)}


def restore_tables(lake: Lake, before: dict[str, int]) -> list[str]:
    """Put every table a failed stage committed to back at its version from before the stage."""
    restored = []
    for table, version in table_versions(lake, list(before)).items():
        if version != before[table]:
            lake.restore(table, before[table])
            restored.append(f"{table} v{before[table]}")
    return restored


def run_pipeline_stage(
    stage: Lake, job: Job, *, as_of: dt.date, options: Mapping[str, Any], pipeline_run: str
) -> StageResult:
    """Run one stage; on failure restore what it committed, record it failed, raise one line.

    The stage's ``ops/runs`` row names the pipeline run in ``details.pipeline_run``.
    """
    before = table_versions(stage, [t.name for t in catalog.restorable_tables_of(job.name)])
    started = utc_now()
    try:
        result = run_stage(stage, job, as_of=as_of, options=options)
    except Exception as exc:
        user_error = isinstance(exc, UserError)
        if not user_error:
            job_log(job.name).error("failed with an unexpected error", exc_info=exc)
        restored = restore_tables(stage, before)
        if restored:
            job_log(job.name).info(f"restored {', '.join(restored)}")
        failed = StageResult(details={"pipeline_run": pipeline_run})
        record_run(stage, as_of, started, failed, runlog.FAILED, one_line(exc))
        raise StageFailedError(f"stage {job.name} failed: {one_line(exc)}", user_error=user_error) from exc
    result.details = {**result.details, "pipeline_run": pipeline_run}
    record_run(stage, as_of, started, result, runlog.SUCCEEDED, None)
    return result


def default_as_of(lake: Lake, *, cleanse_first: bool) -> dt.date:
    """The last complete day in the receipts the run will profile, printed.

    bronze/receipts when the run cleanses first (or on a first run, without silver): the
    day is capped by ingestion time, so junk dates in the future do not count; else silver.
    """
    table = "silver/receipts" if lake.exists("silver/receipts") and not cleanse_first else "bronze/receipts"
    day = as_of_from_receipts(lake, table)
    log.info(f"as of {day}: the last complete day in {table} (--as-of to choose another)")
    return day


def is_default_local_lake(config: SeglakeConfig) -> bool:
    """The embedded default lake (``lake.root: ./lake``), which ``run`` fills with the sample lake."""
    return config.lake.root.rstrip("/") in (DEFAULT_LAKE_ROOT.rstrip("/"), "lake")


def generate_sample_lake(lake: Lake, *, pipeline_run: str) -> None:
    """The synthetic lake of the config's ``generate`` section, recorded as a generate run."""
    log.info(f"no receipts at {lake.path('bronze/receipts')}: generating the sample lake first")
    sample = Lake(lake.spark, lake.config, job="generate")
    started = utc_now()
    details = {"pipeline_run": pipeline_run}
    try:
        result = generate.run(sample)
    except Exception as exc:
        record_run(sample, None, started, StageResult(details=details), runlog.FAILED, one_line(exc))
        raise
    result.details = {**result.details, **details}
    record_run(sample, None, started, result, runlog.SUCCEEDED, None)
    lake.tables_written.update(sample.tables_written)


def run(
    lake: Lake,
    *,
    as_of: dt.date | None,
    stages: str | None = None,
    full: bool = False,
    incremental: bool = False,
    sample: bool = False,
) -> StageResult:
    """Every stage of ``stages`` (default: all) for one as-of date (default: the last complete day).

    Incremental (``incremental``, and by default once silver/customer_lifetime exists): cleanse
    takes the rows appended to bronze since its last run and features rebuilds only the months
    they touch and merges them into the lifetime state (each stage falls back to a full
    rebuild, saying why in one line, when history was rewritten). ``full`` rebuilds everything.

    Without bronze/receipts, the sample lake is generated first on the default local lake
    or with ``sample``; anywhere else that is a one-line error (a mistyped production
    path must not produce segments of synthetic customers).
    """
    wanted = stage_list(stages)
    if not lake.exists("bronze/receipts"):
        if not (sample or is_default_local_lake(lake.config)):
            raise UserError(
                f"no bronze/receipts at {lake.path('bronze/receipts')}: load receipts with `seglake ingest` "
                "(or check lake.root), or pass --sample to generate the synthetic sample lake there"
            )
        generate_sample_lake(lake, pipeline_run=lake.run_id)
    if as_of is None:
        as_of = default_as_of(lake, cleanse_first="cleanse" in wanted)
    else:
        log.info(f"as of {as_of} (--as-of)")
    logs.set_as_of(as_of)
    incremental = not full and (incremental or lake.exists(runlog.LIFETIME))
    if "features" in wanted:
        how = "incremental" if incremental else ("full (--full)" if full else "full (no lifetime state yet)")
        log.info(f"{how} run: features {'updates' if incremental else 'rewrites'} the rollup and the lifetime state")
    options: dict[str, dict[str, Any]] = {"cleanse": {"full": full}, "features": {"incremental": incremental}}
    results: dict[str, StageResult] = {}
    for name in wanted:
        stage = Lake(lake.spark, lake.config, job=name)
        started = time.perf_counter()
        job_log(name).info("started")
        results[name] = run_pipeline_stage(
            stage, STAGES[name], as_of=as_of, options=options.get(name, {}), pipeline_run=lake.run_id
        )
        lake.tables_written.update(stage.tables_written)
        job_log(name).info(
            f"done in {time.perf_counter() - started:.1f}s: {results[name].rows_in or 0:,} rows in, "
            f"{results[name].rows_out or 0:,} rows out"
        )
    summarise(lake, as_of, results)
    return StageResult(as_of=as_of, details={"stages": list(results)})


def partition_rows(lake: Lake, table: str, as_of: dt.date) -> int:
    """Rows of the run's as-of partition (gold tables) or of the table's last commit."""
    if catalog.table(table).is_as_of_partitioned:
        return lake.read_written(table).where(F.col("as_of_date") == F.lit(as_of)).count()
    return tables.last_commit_rows(lake.spark, lake.path(table))


def summarise(lake: Lake, as_of: dt.date, results: dict[str, StageResult]) -> None:
    """The end-of-run summary: tables written and their rows, quarantine, segments, the report."""
    log.info(f"summary (as of {as_of}, lake {tables.lake_root(lake.config)}):")
    log.info(f"  {'table':<34} {'rows':>12}  counted")
    for table in sorted(lake.tables_written):
        counted = "as-of partition" if catalog.table(table).is_as_of_partitioned else "last commit"
        log.info(f"  {table:<34} {partition_rows(lake, table, as_of):>12,}  {counted}")
    cleansed = results.get("cleanse")
    if cleansed is not None and "quarantined" in cleansed.details:
        reasons = ", ".join(f"{k} {v:,}" for k, v in cleansed.details.get("reasons", {}).items() if v)
        log.info(f"  quarantined this run: {cleansed.details['quarantined']:,}" + (f" ({reasons})" if reasons else ""))
    if lake.exists("gold/rfm_segments"):
        sizes = (
            lake.read("gold/rfm_segments")
            .where(F.col("as_of_date") == F.lit(as_of))
            .groupBy("category")
            .count()
            .orderBy(F.col("count").desc(), "category")
            .collect()
        )
        if sizes:
            log.info("  segments: " + ", ".join(f"{r['category']} {r['count']:,}" for r in sizes))
    reported = results.get("report")
    if reported is not None and "report" in reported.details:
        log.info(f"  report: {reported.details['report']}")


JOB = Job(
    name="run",
    summary="Run the pipeline stages for one as-of date.",
    run=run,
    as_of_from="pipeline",
    add_arguments=add_arguments,
    options=lambda args: {
        "stages": args.stages,
        "full": bool(args.full),
        "incremental": bool(args.incremental),
        "sample": bool(args.sample),
    },
)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    sys.exit(main())
