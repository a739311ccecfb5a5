"""``run``: the whole pipeline for one as-of date on the configured lake.

On a lake without receipts (the embedded default on a fresh machine) it first
generates the sample lake from the ``generate`` section of the config.
"""

from __future__ import annotations

import argparse
import sys
import time

if __package__ in (None, ""):  # run as a file: spark-submit jobs/run.py
    import _bootstrap  # noqa: F401

from pyspark.sql import SparkSession

from jobs import cleanse, clusters, cohorts, features, generate, segment
from seglake import tables
from seglake.cli import job_parser, run_job
from seglake.errors import UserError
from seglake.runlog import Run

# Pipeline stages in order: name -> the job body that runs it.
STAGES = {
    "cleanse": cleanse.cleanse,
    "features": features.features,
    "cohorts": cohorts.cohorts,
    "segment": segment.segment,
    "clusters": clusters.clusters,
}


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("run", "Run the pipeline stages for one as-of date.")
    parser.add_argument("--stages", help=f"comma-separated subset of: {', '.join(STAGES)}")
    parser.add_argument("--full", action="store_true", help="cleanse: reprocess all of bronze")
    return parser


def run_pipeline(spark: SparkSession, run: Run, args: argparse.Namespace) -> None:
    receipts = tables.table_path(run.config, "bronze/receipts")
    if not tables.table_exists(spark, receipts):
        run.log(f"no receipts at {receipts}: generating the sample lake first")
        generate.generate(spark, run, args)
    wanted = [s.strip() for s in (args.stages or ",".join(STAGES)).split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise UserError(f"--stages: unknown stage {unknown[0]}; choose from {', '.join(STAGES)}")
    if run.as_of is not None:
        run.log(f"as of {run.as_of}")
    for name in wanted:
        stage = Run(job=name, config=run.config, as_of=run.as_of)
        started = time.perf_counter()
        stage.log("started")
        try:
            STAGES[name](spark, stage, args)
        except Exception as exc:
            stage.record(spark, "failed", f"{type(exc).__name__}: {exc}".splitlines()[0])
            raise UserError(f"stage {name} failed: {str(exc).splitlines()[0]}") from exc
        stage.record(spark, "succeeded")
        run.as_of = run.as_of or stage.as_of  # later stages compute for the same date
        run.tables_written.update(stage.tables_written)
        stage.log(f"done in {time.perf_counter() - started:.1f}s: {stage.rows_in or 0:,} rows in, "
                  f"{stage.rows_out or 0:,} rows out")  # fmt: skip
    run.log(f"outputs under {tables.lake_root(run.config)}:")
    for table in tables.TABLE_INFO:
        path = tables.table_path(run.config, table)
        if tables.table_exists(spark, path):
            run.log(f"  {table:<34} {path}")


def main(argv: list[str] | None = None) -> int:
    return run_job("run", build_parser(), argv, run_pipeline)


if __name__ == "__main__":
    sys.exit(main())
