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
import sys

if __package__ in (None, ""):  # run as a file: spark-submit jobs/features.py
    import _bootstrap  # noqa: F401

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession

from seglake import tables
from seglake.asof import resolve_as_of
from seglake.cli import job_parser, run_job
from seglake.runlog import Run, last_rollup
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


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(
        "features",
        "Roll silver receipts up to silver/customer_month and write gold/customer_profile for one as-of date "
        "(default: the last day with receipts).",
    )
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="rebuild only the customer_month months that changed since the last run (default: rewrite all)",
    )
    return parser


def features(spark: SparkSession, run: Run, args: argparse.Namespace) -> None:
    config = run.config
    receipts = run.read(spark, "silver/receipts", hint="run `seglake cleanse` first")
    as_of = resolve_as_of(receipts, run)
    window_days, last_k = config.features.window_days, config.features.recency_last_k
    period = ProfilePeriod(as_of, window_days)
    run.log(
        f"as of {as_of}: window {period.window_start}..{as_of} "
        f"({window_days} days), k = {last_k}; months read from receipts: {', '.join(period.cut_months) or 'none'}"
    )

    month_rows = update_customer_month(spark, run, receipts, incremental=bool(getattr(args, "incremental", False)))

    customer_month = run.read(spark, "silver/customer_month")
    customers = None
    if tables.table_exists(spark, tables.table_path(config, "bronze/customers")):
        customers = run.read(spark, "bronze/customers")
    else:
        run.log("no bronze/customers: demographic columns stay null")
    tiers = config.features.value_tiers
    profile = (
        to_customer_profile(customer_month, receipts, as_of=as_of, window_days=window_days, last_k=last_k)
        .transform(with_demographics, customers, customer_id_case=config.cleanse.customer_id_case)
        .transform(
            with_value_tier,
            longevity_days=tiers.longevity_days,
            recency_days=tiers.recency_days,
            tiers=tiers.tiers,
        )
    )
    path = tables.replace_as_of(profile, config, "gold/customer_profile", as_of)
    run.wrote(spark, "gold/customer_profile")
    run.rows_out = tables.last_commit_rows(spark, path)
    run.rows_in = receipts.count()
    run.details.update(customer_months_written=month_rows, customers=run.rows_out, window_days=window_days,
                       recency_last_k=last_k, cut_months=period.cut_months)  # fmt: skip
    run.log(f"gold/customer_profile: {run.rows_out:,} customers as of {as_of}")


def update_customer_month(spark: SparkSession, run: Run, receipts: DataFrame, *, incremental: bool) -> int:
    """Rewrite silver/customer_month (or only its changed months); rows written."""
    config, last_k = run.config, run.config.features.recency_last_k
    table = "silver/customer_month"
    path = tables.table_path(config, table)
    silver_version = run.tables_read["silver/receipts"]
    timezone = spark.conf.get("spark.sql.session.timeZone")
    bookkeeping = {"silver_version": silver_version, "recency_last_k": last_k, "timezone": timezone}
    previous = last_rollup(spark, config) if incremental and tables.table_exists(spark, path) else None
    reason = "full rewrite"
    if incremental and previous is None:
        reason = "full rewrite: no earlier features run to continue from"
    elif previous is not None and previous.get("recency_last_k") != last_k:
        reason = f"full rewrite: features.recency_last_k changed ({previous.get('recency_last_k')} -> {last_k})"
    elif previous is not None and previous.get("timezone") != timezone:
        # the rollup's months are calendar months in the zone it was built in
        reason = f"full rewrite: spark.timezone changed ({previous.get('timezone', 'not recorded')} -> {timezone})"
    elif previous is not None and previous.get("customer_month_version") != tables.table_version(spark, path):
        reason = "full rewrite: silver/customer_month was written by something else since the last run"
    elif previous is not None and set(spark.read.format("delta").load(path).columns) != set(CUSTOMER_MONTH_COLUMNS):
        # a rollup written by an earlier seglake version (e.g. per-channel counts as a map)
        reason = "full rewrite: silver/customer_month has other columns than this version's rollup"
    elif previous is not None:
        customer_month = run.read(spark, table)
        try:
            earlier = (
                spark.read.format("delta").option("versionAsOf", previous["silver_version"]).load(
                    tables.table_path(config, "silver/receipts"))
            )  # fmt: skip
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
                tables.write_table(update, config, table, mode="overwrite", replace_where=f"month IN ({quoted})")
                written = tables.last_commit_rows(spark, path)
                run.wrote(spark, table)
            run.details.update(rebuilt_months=months)
            run.details["rollup"] = {**bookkeeping, "customer_month_version": tables.table_version(spark, path)}
            run.log(f"{table}: {len(months)} changed month(s) rebuilt since silver/receipts "
                    f"v{previous['silver_version']}: {', '.join(months) or 'none'}; {written:,} rows")  # fmt: skip
            return written
    tables.write_table(to_customer_month(receipts, last_k=last_k), config, table, mode="overwrite")
    written = tables.last_commit_rows(spark, path)
    run.details["rollup"] = {**bookkeeping, "customer_month_version": run.wrote(spark, table)}
    run.log(f"{table}: {written:,} customer-months ({reason})")
    return written


def main(argv: list[str] | None = None) -> int:
    return run_job("features", build_parser(), argv, features)


if __name__ == "__main__":
    sys.exit(main())
