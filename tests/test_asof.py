"""The default as-of date is the last complete day: ended before its data was ingested."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from seglake.job import last_complete_day

SCHEMA = "receipt_ts timestamp, ingested_at timestamp"
T = dt.datetime


def test_last_receipt_day_when_ingested_after_it(spark: SparkSession) -> None:
    rows = [(T(2024, 12, 30, 9), T(2025, 1, 1, 2)), (T(2024, 12, 31, 23, 59), T(2025, 1, 1, 2))]
    assert last_complete_day(spark.createDataFrame(rows, SCHEMA)) == dt.date(2024, 12, 31)


def test_a_day_still_being_ingested_is_not_complete(spark: SparkSession) -> None:
    rows = [(T(2024, 12, 30, 9), T(2024, 12, 31, 1)), (T(2024, 12, 31, 8), T(2024, 12, 31, 12))]
    assert last_complete_day(spark.createDataFrame(rows, SCHEMA)) == dt.date(2024, 12, 30)


def test_no_receipts_no_day(spark: SparkSession) -> None:
    assert last_complete_day(spark.createDataFrame([], SCHEMA)) is None
