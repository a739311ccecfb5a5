"""``run``: the whole pipeline for one as-of date on the configured lake.

On a lake without receipts (the embedded default on a fresh machine) it first
generates the sample lake from the ``generate`` section of the config.
"""

from __future__ import annotations

import argparse
import sys

if __package__ in (None, ""):  # run as a file: spark-submit jobs/run.py
    import _bootstrap  # noqa: F401

from pyspark.sql import SparkSession

from jobs import generate
from seglake import tables
from seglake.cli import job_parser, run_job
from seglake.errors import UserError
from seglake.runlog import Run

# Pipeline stages in order; each is a job module with a ``stage(spark, run, args)``.
STAGES: tuple[str, ...] = ()


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser("run", "Run the pipeline stages for one as-of date.")
    parser.add_argument("--stages", help=f"comma-separated subset of: {', '.join(STAGES) or '(none yet)'}")
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
    for stage in wanted:
        run.log(f"stage {stage}: not built yet")
    run.log(f"outputs under {tables.lake_root(run.config)}:")
    for table in ("bronze/receipts", "bronze/customers", "bronze/_generator_truth", "ops/runs"):
        path = tables.table_path(run.config, table)
        if tables.table_exists(spark, path):
            run.log(f"  {table:<28} {path}")


def main(argv: list[str] | None = None) -> int:
    return run_job("run", build_parser(), argv, run_pipeline)


if __name__ == "__main__":
    sys.exit(main())
