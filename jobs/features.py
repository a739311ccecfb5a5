"""``features``: silver/receipts -> silver/customer_month -> gold/customer_profile.

The rollup ``silver/customer_month`` is rewritten in full (overwrite) from all of
silver. With ``--incremental`` only the months that changed since the silver version
the rollup was last built from are rebuilt (``replaceWhere`` on ``month``): the months
of receipts added or removed since, plus, per customer with a changed purchase, the
next month with a purchase (its first gap changes). It falls back to the full rewrite
when the last run's bookkeeping (``ops/runs`` details) does not match the tables,
``features.recency_last_k`` changed, or the rollup has other columns (written by another
seglake version). The profile for the as-of date D (``--as-of``, default: the last day with
receipts in silver) is derived from the rollup plus the receipts of the at most two
months that D and the window start cut (see ``transforms/features.py``), and
replaces the ``as_of_date = D`` partition of ``gold/customer_profile`` atomically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

if __package__ in (None, ""):  # run as a file: spark-submit jobs/features.py
    import _bootstrap  # noqa: F401

from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame

from seglake.job import Job, StageResult, job_log, run_job
from seglake.lake import Lake
from seglake.runlog import last_rollup, rollup_mismatch
from transforms.calendar import ProfilePeriod
from transforms.features import (
    CUSTOMER_MONTH_COLUMNS,
    to_changed_months,
    to_customer_month,
    to_customer_month_update,
    to_customer_profile,
)
from transforms.profile import with_demographics
from transforms.segments import with_value_tier

ROLLUP = "silver/customer_month"
log = job_log("features")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="rebuild only the customer_month months that changed since the last run (default: rewrite all)",
    )


def run(lake: Lake, *, as_of: dt.date, incremental: bool = False) -> StageResult:
    """Bring silver/customer_month up to date, then write the ``as_of`` partition of gold/customer_profile."""
    config = lake.config
    receipts = lake.read("silver/receipts", hint="run `seglake cleanse` first")
    window_days, last_k = config.features.window_days, config.features.recency_last_k
    period = ProfilePeriod(as_of, window_days)
    log.info(
        f"as of {as_of}: window {period.window_start}..{as_of} "
        f"({window_days} days), k = {last_k}; months read from receipts: {', '.join(period.cut_months) or 'none'}"
    )
    details: dict[str, Any] = {}
    partitions = int(lake.spark.conf.get("spark.sql.shuffle.partitions") or "200")
    month_rows, rewritten = update_customer_month(
        lake, receipts, incremental=incremental, details=details, partitions=partitions
    )
    try:
        customers_written = write_profile(lake, receipts, rewritten, as_of=as_of, partitions=partitions)
    finally:
        if rewritten is not None:
            rewritten.unpersist()
    details.update(
        customer_months_written=month_rows,
        customers=customers_written,
        window_days=window_days,
        recency_last_k=last_k,
        cut_months=period.cut_months,
    )
    log.info(f"gold/customer_profile: {customers_written:,} customers as of {as_of}")
    return StageResult(rows_in=receipts.count(), rows_out=customers_written, details=details)


def write_profile(
    lake: Lake, receipts: DataFrame, rewritten: DataFrame | None, *, as_of: dt.date, partitions: int
) -> int:
    """Replace the ``as_of`` partition of gold/customer_profile; customers written.

    From ``rewritten``, the rollup this run computed and persisted (partitioned by customer:
    no second shuffle of it), else from silver/customer_month as stored.
    """
    config = lake.config
    window_days, last_k = config.features.window_days, config.features.recency_last_k
    customer_month = rewritten if rewritten is not None else lake.read(ROLLUP)
    customers = None
    if lake.exists("bronze/customers"):
        customers = lake.read("bronze/customers")
    else:
        log.info("no bronze/customers: demographic columns stay null")
    tiers = config.features.value_tiers
    profile = (
        to_customer_profile(
            customer_month,
            receipts,
            as_of=as_of,
            window_days=window_days,
            last_k=last_k,
            partitions=partitions if rewritten is not None else None,
        )
        .transform(with_demographics, customers, customer_id_case=config.cleanse.customer_id_case)
        .transform(
            with_value_tier, longevity_days=tiers.longevity_days, recency_days=tiers.recency_days, tiers=tiers.tiers
        )
    )
    return lake.replace_as_of(profile, "gold/customer_profile", as_of)


def update_customer_month(
    lake: Lake, receipts: DataFrame, *, incremental: bool, details: dict[str, Any], partitions: int
) -> tuple[int, DataFrame | None]:
    """Rewrite silver/customer_month (or only its changed months): (rows written, the
    rewritten rollup persisted, or None after a rebuild of changed months only). Records
    ``details['rollup']``: the silver version it was built from, its own version, k and zone.

    A full rewrite computes the rollup once, hash-partitioned by customer into
    ``partitions``, and persists it while Delta writes it: the profile aggregates the same
    partitions (:func:`write_profile`) instead of reading the table back and shuffling it.
    """
    spark, last_k = lake.spark, lake.config.features.recency_last_k
    silver_version = lake.tables_read["silver/receipts"]
    timezone = spark.conf.get("spark.sql.session.timeZone")
    bookkeeping = {"silver_version": silver_version, "recency_last_k": last_k, "timezone": timezone}
    previous = last_rollup(lake) if incremental and lake.exists(ROLLUP) else None
    reason = "full rewrite"
    mismatch = rollup_mismatch(lake, previous, recency_last_k=last_k) if previous is not None else None
    if incremental and previous is None:
        reason = "full rewrite: no earlier features run to continue from"
    elif mismatch is not None:
        reason = f"full rewrite: {mismatch}"
    elif previous is not None and set(lake.read(ROLLUP).columns) != set(CUSTOMER_MONTH_COLUMNS):
        # a rollup written by an earlier seglake version (e.g. per-channel counts as a map)
        reason = f"full rewrite: {ROLLUP} has other columns than this version's rollup"
    elif previous is not None:
        customer_month = lake.read(ROLLUP)
        try:
            earlier = lake.read_version("silver/receipts", previous["silver_version"])
            changed = receipts.join(earlier.select("receipt_id"), "receipt_id", how="left_anti").unionByName(
                earlier.join(receipts.select("receipt_id"), "receipt_id", how="left_anti")
            )
            months = sorted(r["month"] for r in to_changed_months(changed, customer_month).collect())  # few months
        except PySparkException as exc:
            reason = f"full rewrite: silver/receipts v{previous['silver_version']} unreadable ({exc})".splitlines()[0]
        else:
            written = 0
            if months:
                quoted = ", ".join(f"'{m}'" for m in months)
                update = to_customer_month_update(receipts, customer_month, months=months, last_k=last_k)
                written = lake.write(update, ROLLUP, mode="overwrite", replace_where=f"month IN ({quoted})")
            details["rebuilt_months"] = months
            details["rollup"] = {**bookkeeping, "customer_month_version": lake.version(ROLLUP)}
            log.info(
                f"{ROLLUP}: {len(months)} changed month(s) rebuilt since silver/receipts "
                f"v{previous['silver_version']}: {', '.join(months) or 'none'}; {written:,} rows"
            )
            return written, None
    rollup = to_customer_month(receipts, last_k=last_k, partitions=partitions).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        written = lake.write(rollup, ROLLUP, mode="overwrite")
    except BaseException:
        rollup.unpersist()
        raise
    details["rollup"] = {**bookkeeping, "customer_month_version": lake.version(ROLLUP)}
    log.info(
        f"{ROLLUP}: {written:,} customer-months ({reason}; {partitions} partitions by customer, kept for the profile)"
    )
    return written, rollup


JOB = Job(
    name="features",
    summary="Roll silver receipts up to silver/customer_month and write gold/customer_profile for one as-of date "
    "(default: the last complete day in the receipts).",
    run=run,
    as_of_from="receipts",
    add_arguments=add_arguments,
    options=lambda args: {"incremental": bool(args.incremental)},
)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    sys.exit(main())
