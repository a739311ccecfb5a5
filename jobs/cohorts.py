"""``cohorts``: silver/customer_month (or silver/receipts) -> gold/cohort_retention and
gold/cohort_retention_by_channel.

    seglake cohorts --as-of 2024-12-31                 # monthly cohorts
    seglake cohorts --as-of 2024-12-31 --set cohorts.period=week

Month and year cohorts come from the rollup ``silver/customer_month`` (a row per
customer-month instead of a row per receipt) plus the receipts of the as-of date's
month when the date cuts it, provided the last ``features`` run built the rollup from
the silver/receipts version this run reads, in the same ``spark.timezone``, and
nothing wrote the rollup since. Otherwise — and always for day and week cohorts —
they come from the receipts; the run log says which and why. Both give the same rows.

Both tables are partitioned by ``as_of_date``; a rerun for a date replaces that date's
partition atomically and leaves the other dates' history as it is.
"""

from __future__ import annotations

import argparse
import sys

if __package__ in (None, ""):  # run as a file: spark-submit jobs/cohorts.py
    import _bootstrap  # noqa: F401

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from seglake import tables
from seglake.asof import resolve_as_of
from seglake.cli import job_parser, run_job
from seglake.runlog import Run, last_rollup
from transforms.cohorts import (
    BEFORE_COHORT,
    MONTH_PERIODS,
    to_cohort_activity,
    to_cohort_retention,
    to_customer_periods,
    to_customer_periods_from_months,
)

ROLLUP = "silver/customer_month"


def build_parser() -> argparse.ArgumentParser:
    return job_parser("cohorts", "Cohort retention matrices (long format) for one as-of date.")


def why_not_rollup(spark: SparkSession, run: Run, period: str) -> str | None:
    """Why the customer periods cannot come from silver/customer_month; None when they can."""
    if period not in MONTH_PERIODS:
        return f"{period} cohorts need the receipt dates"
    path = tables.table_path(run.config, ROLLUP)
    if not tables.table_exists(spark, path):
        return f"no {ROLLUP} yet (`seglake features` writes it)"
    built = last_rollup(spark, run.config)
    if built is None:
        return f"no succeeded features run recorded for {ROLLUP}"
    silver = run.tables_read["silver/receipts"]
    if built.get("silver_version") != silver:
        return (
            f"{ROLLUP} was built from silver/receipts v{built.get('silver_version')}, this run reads v{silver} "
            "(`seglake features` brings it up to date)"
        )
    if built.get("customer_month_version") != tables.table_version(spark, path):
        return f"{ROLLUP} was written by something else since the last features run"
    timezone = spark.conf.get("spark.sql.session.timeZone")
    if built.get("timezone") != timezone:
        return f"{ROLLUP} months are in {built.get('timezone', 'an unrecorded time zone')}, this run's in {timezone}"
    return None


def cohorts(spark: SparkSession, run: Run, args: argparse.Namespace) -> None:
    receipts = run.read(spark, "silver/receipts", hint="run `seglake cleanse` first")
    as_of = resolve_as_of(receipts, run)
    period = run.config.cohorts.period
    reason = why_not_rollup(spark, run, period)
    if reason is None:
        customer_month = run.read(spark, ROLLUP)
        customer_periods = to_customer_periods_from_months(customer_month, receipts, as_of, period)
        run.details["source"] = ROLLUP
        run.log(
            f"{period} cohorts from {ROLLUP} v{run.tables_read[ROLLUP]} "
            f"(built from silver/receipts v{run.tables_read['silver/receipts']})"
        )
    else:
        customer_periods = to_customer_periods(receipts, as_of, period)
        run.details["source"] = "silver/receipts"
        run.log(f"{period} cohorts from silver/receipts: {reason}")
    activity = to_cohort_activity(customer_periods, period).cache()  # small: cohorts x channels x offsets
    try:
        before = tables.first_row(
            activity.where(F.col("period_offset") == BEFORE_COHORT).agg(
                F.count_distinct("cohort_start_date").alias("cohorts"), F.sum("revenue_amount").alias("amount")
            )
        )
        if before["cohorts"]:
            run.details["before_cohort"] = {"cohorts": before["cohorts"], "revenue_amount": str(before["amount"])}
            run.log(
                f"activity before the first purchase (returns): {before['amount']} in {before['cohorts']:,} "
                "cohort(s), at period_offset -1"
            )
        for table, by in (("gold/cohort_retention", ()), ("gold/cohort_retention_by_channel", ("first_channel",))):
            retention = to_cohort_retention(activity, as_of, period, by=by)
            path = tables.replace_as_of(retention, run.config, table, as_of)
            run.wrote(spark, table)
            rows = tables.last_commit_rows(spark, path)
            run.log(f"{table}: {rows:,} rows ({period} cohorts, as of {as_of})")
            if not by:
                run.rows_out = rows
    finally:
        activity.unpersist()
    run.rows_in = receipts.count()  # the main input, as ops/runs documents rows_in


def main(argv: list[str] | None = None) -> int:
    return run_job("cohorts", build_parser(), argv, cohorts)


if __name__ == "__main__":
    sys.exit(main())
