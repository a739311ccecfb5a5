"""``features``: silver/receipts -> silver/customer_month -> gold/customer_profile.

The rollup ``silver/customer_month`` is rewritten in full (overwrite) from all of
silver; the profile for the as-of date D (``--as-of``, default: the last day with
receipts in silver) is derived from the rollup plus the receipts of the at most two
months that D and the window start cut (see ``transforms/features.py``), and
replaces the ``as_of_date = D`` partition of ``gold/customer_profile`` atomically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

if __package__ in (None, ""):  # run as a file: spark-submit jobs/features.py
    import _bootstrap  # noqa: F401

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seglake import tables
from seglake.cli import job_parser, run_job
from seglake.errors import UserError
from seglake.runlog import Run
from transforms.features import ProfilePeriod, to_customer_month, to_customer_profile


def build_parser() -> argparse.ArgumentParser:
    return job_parser(
        "features",
        "Roll silver receipts up to silver/customer_month and write gold/customer_profile for one as-of date "
        "(default: the last day with receipts).",
    )


def last_receipt_date(receipts: DataFrame) -> dt.date | None:
    """The last day with receipts (one aggregate row)."""
    return receipts.select(F.max(F.to_date("receipt_ts")).alias("day")).first()["day"]


def features(spark: SparkSession, run: Run, args: argparse.Namespace) -> None:
    config = run.config
    receipts = run.read(spark, "silver/receipts", hint="run `seglake cleanse` first")
    as_of = run.as_of or last_receipt_date(receipts)
    if as_of is None:
        raise UserError("silver/receipts has no receipts: nothing to compute; run `seglake cleanse` first")
    run.as_of = as_of
    window_days, last_k = config.features.window_days, config.features.recency_last_k
    period = ProfilePeriod(as_of, window_days)
    run.log(
        f"as of {as_of}{'' if args.as_of else ' (last day with receipts)'}: window {period.window_start}..{as_of} "
        f"({window_days} days), k = {last_k}; months read from receipts: {', '.join(period.cut_months) or 'none'}"
    )

    tables.write_table(
        to_customer_month(receipts, last_k=last_k), config, "silver/customer_month",
        mode="overwrite", partition_by=["month"],
    )  # fmt: skip
    month_rows = tables.last_commit_rows(spark, tables.table_path(config, "silver/customer_month"))
    run.wrote(spark, "silver/customer_month")
    run.log(f"silver/customer_month: {month_rows:,} customer-months (rewritten)")

    customer_month = run.read(spark, "silver/customer_month")
    profile = to_customer_profile(customer_month, receipts, as_of=as_of, window_days=window_days, last_k=last_k)
    path = tables.replace_as_of(profile, config, "gold/customer_profile", as_of)
    run.wrote(spark, "gold/customer_profile")
    run.rows_out = tables.last_commit_rows(spark, path)
    run.rows_in = receipts.count()
    run.details.update(customer_months=month_rows, customers=run.rows_out, window_days=window_days,
                       recency_last_k=last_k, cut_months=period.cut_months)  # fmt: skip
    run.log(f"gold/customer_profile: {run.rows_out:,} customers as of {as_of}")


def main(argv: list[str] | None = None) -> int:
    return run_job("features", build_parser(), argv, features)


if __name__ == "__main__":
    sys.exit(main())
