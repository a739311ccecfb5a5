"""``cohorts``: silver/receipts -> gold/cohort_retention and gold/cohort_retention_by_channel.

    seglake cohorts --as-of 2024-12-31                 # monthly cohorts
    seglake cohorts --as-of 2024-12-31 --set cohorts.period=week

Both tables are partitioned by ``as_of_date``; a rerun for a date replaces that date's
partition atomically and leaves the other dates' history as it is.
"""

from __future__ import annotations

import argparse
import sys

if __package__ in (None, ""):  # run as a file: spark-submit jobs/cohorts.py
    import _bootstrap  # noqa: F401

from pyspark.sql import SparkSession

from seglake import tables
from seglake.asof import resolve_as_of
from seglake.cli import job_parser, run_job
from seglake.runlog import Run
from transforms.cohorts import to_cohort_retention, to_customer_periods


def build_parser() -> argparse.ArgumentParser:
    return job_parser("cohorts", "Cohort retention matrices (long format) for one as-of date.")


def cohorts(spark: SparkSession, run: Run, args: argparse.Namespace) -> None:
    receipts = run.read(spark, "silver/receipts", hint="run `seglake cleanse` first")
    as_of = resolve_as_of(receipts, run)
    period = run.config.cohorts.period
    customer_periods = to_customer_periods(receipts, as_of, period).cache()
    try:
        for table, by in (("gold/cohort_retention", ()), ("gold/cohort_retention_by_channel", ("first_channel",))):
            retention = to_cohort_retention(customer_periods, as_of, period, by=by)
            path = tables.replace_as_of(retention, run.config, table, as_of)
            run.wrote(spark, table)
            rows = tables.last_commit_rows(spark, path)
            run.log(f"{table}: {rows:,} rows ({period} cohorts, as of {as_of})")
            if not by:
                run.rows_out = rows
    finally:
        customer_periods.unpersist()
    run.rows_in = receipts.count()  # the main input, as ops/runs documents rows_in


def main(argv: list[str] | None = None) -> int:
    return run_job("cohorts", build_parser(), argv, cohorts)


if __name__ == "__main__":
    sys.exit(main())
