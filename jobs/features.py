"""``features``: silver/receipts -> silver/customer_month -> silver/customer_lifetime ->
gold/customer_profile.

The rollup ``silver/customer_month`` is rewritten in full (overwrite) from all of
silver. With ``--incremental`` (``run``'s default once the lifetime state exists) the
receipts appended to silver since the version the last run read come from the table's
Change Data Feed (:mod:`seglake.changes`), and only the months they touch are rebuilt
(``replaceWhere`` on ``month``): their own months plus, per customer with a new purchase,
the next month with a purchase (its first gap changes). It falls back to the full rewrite,
in one line, when silver's history was rewritten since (an overwrite, a RESTORE, ...),
the last run's bookkeeping (``ops/runs`` details) does not match the tables,
``features.recency_last_k`` or the time zone changed, or the rollup has other columns
(written by another seglake version).

``silver/customer_lifetime`` holds per customer the lifetime values of the rollup's whole
months up to D's last whole month; an incremental run merges it with the months after
its end (customers with late receipts in months it covers are recomputed from the
rollup). The profile for the as-of date D (``--as-of``, default: the last day with
receipts in silver) takes its lifetime values from that state and reads from the rollup
only the window's months, plus the receipts of the at most two months that D and the
window start cut (see ``transforms/features.py``); it replaces the ``as_of_date = D``
partition of ``gold/customer_profile`` atomically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

if __package__ in (None, ""):  # run as a file: spark-submit jobs/features.py
    import _bootstrap  # noqa: F401

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seglake.changes import appended_since
from seglake.job import Job, StageResult, job_log, run_job
from seglake.lake import Lake
from seglake.runlog import LIFETIME, last_rollup, lifetime_mismatch, rollup_mismatch
from transforms.calendar import ProfilePeriod, last_whole_month, month_of, shift_month
from transforms.features import (
    CUSTOMER_MONTH_COLUMNS,
    LIFETIME_VALUE_COLUMNS,
    to_changed_months,
    to_customer_lifetime,
    to_customer_month,
    to_customer_month_update,
    to_customer_profile,
    to_lifetime_rows,
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


@dataclass
class RollupUpdate:
    """What :func:`update_customer_month` did: rollup rows written; on a full rewrite the
    rollup it ``kept`` (persisted, partitioned by customer); on an incremental run the
    receipts appended since the last run (``appended``), the months it rebuilt, and the
    last run's bookkeeping (``previous``)."""

    rows_written: int
    kept: DataFrame | None = None
    appended: DataFrame | None = None
    appended_rows: int = 0
    months: list[str] = field(default_factory=list)
    previous: dict[str, Any] | None = None


def run(lake: Lake, *, as_of: dt.date, incremental: bool = False) -> StageResult:
    """Bring silver/customer_month and silver/customer_lifetime up to date, then write the
    ``as_of`` partition of gold/customer_profile."""
    config = lake.config
    receipts = lake.read("silver/receipts", hint="run `seglake cleanse` first")
    window_days, last_k = config.features.window_days, config.features.recency_last_k
    period = ProfilePeriod(as_of, window_days)
    log.info(
        f"as of {as_of}: window {period.window_start}..{as_of} "
        f"({window_days} days), k = {last_k}; months read from receipts: {', '.join(period.cut_months) or 'none'}"
    )
    details: dict[str, Any] = {}
    partitions = partitions_by_customer(lake)
    details["partitions"] = partitions
    update = update_customer_month(lake, receipts, incremental=incremental, details=details, partitions=partitions)
    lifetime: DataFrame | None = None
    try:
        lifetime, through = update_lifetime(lake, update, as_of=as_of, details=details, partitions=partitions)
        customers_written = write_profile(lake, receipts, update, lifetime, through, as_of=as_of, partitions=partitions)
    finally:
        for kept in (update.kept, lifetime):
            if kept is not None:
                kept.unpersist()
    details.update(
        customer_months_written=update.rows_written,
        customers=customers_written,
        window_days=window_days,
        recency_last_k=last_k,
        cut_months=period.cut_months,
    )
    log.info(f"gold/customer_profile: {customers_written:,} customers as of {as_of}")
    rows_in = update.appended_rows if update.appended is not None else receipts.count()
    return StageResult(rows_in=rows_in, rows_out=customers_written, details=details)


def partitions_by_customer(lake: Lake) -> int:
    """The fixed partition count of the rollup and profile: one per
    ``features.partition_bytes`` of silver/receipts, at least spark.sql.shuffle.partitions
    (:func:`seglake.lake.partitions_for_bytes`). Fixed for the whole job: the profile
    aggregates the rollup's partitions as they are."""
    partitions, why = lake.partitions_by_size("silver/receipts", lake.config.features.partition_bytes)
    log.info(f"rollup and profile by customer: {why}")
    return partitions


def persist_and_write(lake: Lake, frame: DataFrame, table: str) -> tuple[DataFrame, int]:
    """``frame`` persisted while Delta overwrites ``table`` with it (the write fills the cache,
    so the profile reuses its partitions); the persisted frame and the rows written."""
    kept = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return kept, lake.write(kept, table, mode="overwrite")
    except BaseException:
        kept.unpersist()
        raise


def current_rollup(lake: Lake) -> DataFrame:
    """silver/customer_month as this run left it (the version it wrote, else the one it read)."""
    return lake.read_written(ROLLUP) if ROLLUP in lake.tables_written else lake.read(ROLLUP)


def write_profile(
    lake: Lake,
    receipts: DataFrame,
    update: RollupUpdate,
    lifetime: DataFrame,
    through: str,
    *,
    as_of: dt.date,
    partitions: int,
) -> int:
    """Replace the ``as_of`` partition of gold/customer_profile; customers written.

    The lifetime values come from ``lifetime`` (silver/customer_lifetime through ``through``)
    when it ends at or before D's last whole month, and the rest from the window's months of
    the rollup: on a full rewrite the rollup this run kept (partitioned by customer, like
    the state built from it: no second shuffle), else the table, shuffled with the state
    into ``partitions``. A state that runs past D (a run for an earlier date) is not used:
    then every month up to D is read from the rollup.
    """
    config = lake.config
    window_days, last_k = config.features.window_days, config.features.recency_last_k
    use_state = through <= last_whole_month(as_of)
    if update.kept is not None:
        customer_month = update.kept
    elif use_state:
        customer_month = current_rollup(lake).repartition(partitions, "customer_id")
    else:
        customer_month = current_rollup(lake)
    lined_up = update.kept is not None or use_state
    customers = None
    if lake.exists("bronze/customers"):
        customers = lake.read("bronze/customers")
    else:
        log.info("no bronze/customers: demographic columns stay null")
    if not use_state:
        log.info(f"profile: every month up to {last_whole_month(as_of)} read from {ROLLUP} (lifetime state ends later)")
    tiers = config.features.value_tiers
    profile = (
        to_customer_profile(
            customer_month,
            receipts,
            as_of=as_of,
            window_days=window_days,
            last_k=last_k,
            partitions=partitions if lined_up else None,
            lifetime=lifetime if use_state else None,
            lifetime_through=through if use_state else None,
        )
        .transform(with_demographics, customers, customer_id_case=config.cleanse.customer_id_case)
        .transform(
            with_value_tier, longevity_days=tiers.longevity_days, recency_days=tiers.recency_days, tiers=tiers.tiers
        )
    )
    return lake.replace_as_of(profile, "gold/customer_profile", as_of)


def update_lifetime(
    lake: Lake, update: RollupUpdate, *, as_of: dt.date, details: dict[str, Any], partitions: int
) -> tuple[DataFrame, str]:
    """Bring silver/customer_lifetime up to D's last whole month (or keep it where it is, when
    it already runs later); the state persisted and the month it runs through.

    A full rewrite builds it from the rollup it kept. An incremental run merges the recorded
    state with the rollup's months after it; customers with receipts appended in months the
    state already covers (late data) are taken out of the state and recomputed from their
    rollup rows. A state that does not match the bookkeeping is rebuilt from the rollup
    (not from the receipts), said in one line. Records ``details['rollup']['lifetime']``.
    """
    last_k = lake.config.features.recency_last_k
    target = last_whole_month(as_of)
    recorded = (update.previous or {}).get("lifetime")
    month = F.col("month")
    if update.kept is not None:
        through, how = target, "built from the rollup this run kept"
        rows = to_lifetime_rows(update.kept.where(month <= through))
    elif (mismatch := lifetime_mismatch(lake, recorded, last_k)) is not None:
        through, how = target, f"rebuilt from {ROLLUP}: {mismatch}"
        rows = to_lifetime_rows(current_rollup(lake).where(month <= through)).repartition(partitions, "customer_id")
    else:
        assert recorded is not None  # checked by lifetime_mismatch
        state_through = str(recorded["through_month"])
        through = max(state_through, target)
        state = lake.read(LIFETIME)
        stale = [m for m in update.months if m <= state_through]
        if not stale and through == state_through:
            details["rollup"]["lifetime"] = recorded
            log.info(
                f"{LIFETIME}: through {through}, unchanged (no receipts appended for its months, and D's last "
                "whole month is not after it)"
            )
            return state.repartition(partitions, "customer_id"), through
        parts = []
        if stale and update.appended is not None:
            late = update.appended.where(month_of("receipt_ts") <= state_through).select("customer_id").distinct()
            parts.append(state.join(late, "customer_id", "left_anti").select("customer_id", *LIFETIME_VALUE_COLUMNS))
            recomputed = current_rollup(lake).where(month <= state_through).join(late, "customer_id", "left_semi")
            parts.append(to_lifetime_rows(recomputed))
            how = f"late receipts in {', '.join(stale)}: their customers recomputed from {ROLLUP}"
        else:
            parts.append(state.select("customer_id", *LIFETIME_VALUE_COLUMNS))
            how = f"merged with {ROLLUP}"
        if through > state_through:
            added = current_rollup(lake).where((month > state_through) & (month <= through))
            parts.append(to_lifetime_rows(added))
            how += f"; months {shift_month(state_through, 1)}..{through} added"
        rows = reduce(DataFrame.unionByName, parts).repartition(partitions, "customer_id")
    merged = to_customer_lifetime(rows, through_month=through, last_k=last_k)
    lifetime, written = persist_and_write(lake, merged, LIFETIME)
    details["rollup"]["lifetime"] = {
        "through_month": through,
        "version": lake.tables_written[LIFETIME],
        "recency_last_k": last_k,
    }
    log.info(f"{LIFETIME}: {written:,} customers through {through} ({how})")
    return lifetime, through


def rollup_rewrite_reason(lake: Lake, incremental: bool, previous: dict[str, Any] | None, last_k: int) -> str | None:
    """Why this run rewrites the rollup in full; None when it can update it from the appended receipts."""
    if not incremental:
        return "full rewrite"
    if previous is None:
        return "full rewrite: no earlier features run to continue from"
    mismatch = rollup_mismatch(lake, previous, recency_last_k=last_k)
    if mismatch is not None:
        return f"full rewrite: {mismatch}"
    if set(lake.read(ROLLUP).columns) != set(CUSTOMER_MONTH_COLUMNS):
        # a rollup written by an earlier seglake version (e.g. per-channel counts as a map)
        return f"full rewrite: {ROLLUP} has other columns than this version's rollup"
    return None


def update_customer_month(
    lake: Lake, receipts: DataFrame, *, incremental: bool, details: dict[str, Any], partitions: int
) -> RollupUpdate:
    """Rewrite silver/customer_month, or rebuild only the months the receipts appended since
    the last run touch. Records ``details['rollup']``: the silver version it was built from,
    its own version, k and zone.

    Incremental: the receipts appended to silver/receipts since the version the last run
    read come from its Change Data Feed (:func:`seglake.changes.appended_since`): no
    comparison of table versions. A silver history that was rewritten since (a full
    cleanse, a RESTORE, ...) makes it a full rewrite, said in one line.

    A full rewrite computes the rollup once, hash-partitioned by customer into
    ``partitions``, and persists it while Delta writes it: the lifetime state and the profile
    aggregate the same partitions instead of reading the table back and shuffling it.
    """
    spark, last_k = lake.spark, lake.config.features.recency_last_k
    silver_version = lake.tables_read["silver/receipts"]
    timezone = spark.conf.get("spark.sql.session.timeZone")
    bookkeeping = {"silver_version": silver_version, "recency_last_k": last_k, "timezone": timezone}
    previous = last_rollup(lake) if incremental and lake.exists(ROLLUP) else None
    reason = rollup_rewrite_reason(lake, incremental, previous, last_k)
    if reason is None and previous is not None:
        appended = appended_since(lake, "silver/receipts", int(previous["silver_version"]))
        if appended.reason is not None or appended.rows is None:
            reason = f"full rewrite: {appended.reason}"
        else:
            return rebuild_months(lake, appended.rows, receipts, previous, details, bookkeeping, appended.count)
    rollup, written = persist_and_write(lake, to_customer_month(receipts, last_k=last_k, partitions=partitions), ROLLUP)
    details["rollup"] = {**bookkeeping, "customer_month_version": lake.version(ROLLUP)}
    log.info(
        f"{ROLLUP}: {written:,} customer-months ({reason}; {partitions} partitions by customer, kept for the profile)"
    )
    return RollupUpdate(rows_written=written, kept=rollup)


def rebuild_months(
    lake: Lake,
    appended: DataFrame,
    receipts: DataFrame,
    previous: dict[str, Any],
    details: dict[str, Any],
    bookkeeping: dict[str, Any],
    appended_rows: int,
) -> RollupUpdate:
    """Rebuild the rollup months the ``appended`` receipts change (their own months, and per
    customer the next month with a purchase: its first gap changes).

    Only the months from the earliest appended one on are read to find those; the purchase
    before a rebuilt month (for its first gap) comes from the lifetime state when the state
    ends before every rebuilt month, else from the rollup's other months.
    """
    last_k = lake.config.features.recency_last_k
    customer_month = lake.read(ROLLUP)
    month = F.col("month")
    own = sorted(r["month"] for r in appended.select(month_of("receipt_ts").alias("month")).distinct().collect())
    months: list[str] = []
    if own:
        later = customer_month.where(month >= own[0])
        months = sorted(r["month"] for r in to_changed_months(appended, later).collect())  # few months
    written = 0
    if months:
        quoted = ", ".join(f"'{m}'" for m in months)
        recorded = previous.get("lifetime")
        state_through = str(recorded["through_month"]) if recorded else ""
        if state_through and state_through < months[0] and lifetime_mismatch(lake, recorded, last_k) is None:
            # the state stands in for every month up to its end (one anchor row per customer)
            anchors = lake.read(LIFETIME).select(
                "customer_id", F.lit(state_through).alias("month"), "orders", "last_purchase_ts"
            )
            recent = customer_month.where((month > state_through) & (month < months[-1]))
            before = anchors.unionByName(recent.select("customer_id", "month", "orders", "last_purchase_ts"))
        else:
            before = customer_month
        update = to_customer_month_update(receipts, before, months=months, last_k=last_k)
        written = lake.write(update, ROLLUP, mode="overwrite", replace_where=f"month IN ({quoted})")
    details["rebuilt_months"] = months
    details["appended_receipts"] = appended_rows
    details["rollup"] = {**bookkeeping, "customer_month_version": lake.version(ROLLUP)}
    log.info(
        f"{ROLLUP}: {appended_rows:,} receipts appended to silver/receipts since v{previous['silver_version']} "
        f"(its change data feed); {len(months)} month(s) rebuilt: {', '.join(months) or 'none'}; {written:,} rows"
    )
    return RollupUpdate(
        rows_written=written, appended=appended, appended_rows=appended_rows, months=months, previous=previous
    )


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
