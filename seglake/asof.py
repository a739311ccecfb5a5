"""The default as-of date: the last complete day in silver receipts."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seglake.errors import UserError
from seglake.runlog import Run


def last_complete_day(receipts: DataFrame) -> dt.date | None:
    """The latest receipt date that had ended when its rows were ingested.

    A day is complete once data was ingested after it: min(last receipt date, day
    before the last ingestion). Null when there are no receipts.
    """
    row = receipts.agg(
        F.max(F.to_date("receipt_ts")).alias("last_receipt_day"),
        F.max(F.to_date("ingested_at")).alias("last_ingested_day"),
    ).first()
    if row is None or row["last_receipt_day"] is None:
        return None
    last_ingested = row["last_ingested_day"]
    if last_ingested is None:
        return row["last_receipt_day"]
    return min(row["last_receipt_day"], last_ingested - dt.timedelta(days=1))


def resolve_as_of(receipts: DataFrame, run: Run) -> dt.date:
    """``--as-of`` if given, else the last complete day (and say so)."""
    if run.as_of is not None:
        return run.as_of
    day = last_complete_day(receipts)
    if day is None:
        raise UserError("silver/receipts is empty: nothing to compute; run `seglake cleanse` first")
    run.as_of = day
    run.log(f"--as-of not given: using the last complete day in the receipts, {day}")
    return day
