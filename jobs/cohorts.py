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

import datetime as dt
import sys
from typing import Any

if __package__ in (None, ""):  # run as a file: spark-submit jobs/cohorts.py
    import _bootstrap  # noqa: F401

from pyspark.sql import functions as F

from seglake import tables
from seglake.job import Job, StageResult, job_log, run_job
from seglake.lake import Lake
from seglake.runlog import last_rollup, rollup_mismatch
from transforms.cohorts import (
    BEFORE_COHORT,
    MONTH_PERIODS,
    to_cohort_activity,
    to_cohort_retention,
    to_customer_periods,
    to_customer_periods_from_months,
)

ROLLUP = "silver/customer_month"
log = job_log("cohorts")


def why_not_rollup(lake: Lake, period: str) -> str | None:
    """Why the customer periods cannot come from silver/customer_month; None when they can."""
    if period not in MONTH_PERIODS:
        return f"{period} cohorts need the receipt dates"
    if not lake.exists(ROLLUP):
        return f"no {ROLLUP} yet (`seglake features` writes it)"
    return rollup_mismatch(lake, last_rollup(lake), silver_version=lake.tables_read["silver/receipts"])


def run(lake: Lake, *, as_of: dt.date) -> StageResult:
    """Write the ``as_of`` partitions of both retention tables (``cohorts.period`` cohorts)."""
    receipts = lake.read("silver/receipts", hint="run `seglake cleanse` first")
    period = lake.config.cohorts.period
    details: dict[str, Any] = {}
    reason = why_not_rollup(lake, period)
    if reason is None:
        customer_month = lake.read(ROLLUP)
        customer_periods = to_customer_periods_from_months(customer_month, receipts, as_of, period)
        details["source"] = ROLLUP
        log.info(
            f"{period} cohorts from {ROLLUP} v{lake.tables_read[ROLLUP]} "
            f"(built from silver/receipts v{lake.tables_read['silver/receipts']})"
        )
    else:
        customer_periods = to_customer_periods(receipts, as_of, period)
        details["source"] = "silver/receipts"
        log.info(f"{period} cohorts from silver/receipts: {reason}")
    activity = to_cohort_activity(customer_periods, period).cache()  # small: cohorts x channels x offsets
    rows_out = 0
    try:
        before = tables.first_row(
            activity.where(F.col("period_offset") == BEFORE_COHORT).agg(
                F.count_distinct("cohort_start_date").alias("cohorts"), F.sum("revenue_amount").alias("amount")
            )
        )
        if before["cohorts"]:
            details["before_cohort"] = {"cohorts": before["cohorts"], "revenue_amount": str(before["amount"])}
            log.info(
                f"activity before the first purchase (returns): {before['amount']} in {before['cohorts']:,} "
                "cohort(s), at period_offset -1"
            )
        for table, by in (("gold/cohort_retention", ()), ("gold/cohort_retention_by_channel", ("first_channel",))):
            rows = lake.replace_as_of(to_cohort_retention(activity, as_of, period, by=by), table, as_of)
            log.info(f"{table}: {rows:,} rows ({period} cohorts, as of {as_of})")
            if not by:
                rows_out = rows
    finally:
        activity.unpersist()
    return StageResult(rows_in=receipts.count(), rows_out=rows_out, details=details)  # rows_in: the main input


JOB = Job(
    name="cohorts",
    summary="Cohort retention matrices (long format) for one as-of date.",
    run=run,
    as_of_from="receipts",
)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    sys.exit(main())
