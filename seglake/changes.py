"""The rows appended to a lake table since a version: what an incremental run reads.

An incremental run must not compare two full versions of a table to find what is new.
Delta records every commit: when all commits after the version the last run read only
appended rows (``WRITE`` in Append mode; commits that change no data, such as
``SET TBLPROPERTIES`` or ``OPTIMIZE``, are fine), the rows added are the ``insert`` rows of
the table's Change Data Feed over those commits, and Delta reads just the files those
commits added. Anything else (an overwrite, a ``replaceWhere``, a DELETE, MERGE or RESTORE,
a table re-created, a commit made before the feed was on) means history was rewritten:
:func:`appended_since` then says why in words, and the caller falls back to a full run.
"""

from __future__ import annotations

from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seglake.lake import Lake

# Operations that add or move files without changing the table's rows.
NO_DATA_CHANGE = frozenset(
    {"SET TBLPROPERTIES", "UNSET TBLPROPERTIES", "OPTIMIZE", "VACUUM START", "VACUUM END", "UPGRADE PROTOCOL"}
)
CHANGE_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")


@dataclass(frozen=True)
class Appended:
    """The rows appended to ``table`` after ``since`` up to ``until`` (the version this run
    reads), and how many; or ``reason`` (in words) why they cannot be told apart."""

    table: str
    since: int
    until: int
    rows: DataFrame | None = None
    count: int = 0
    reason: str | None = None


def _rewrite(commit_version: int, operation: str, parameters: dict[str, str] | None) -> str | None:
    """Why a commit is not an append (None when it is one, or changes no data)."""
    if operation == "WRITE" and (parameters or {}).get("mode") == "Append":
        return None
    if operation in NO_DATA_CHANGE:
        return None
    mode = (parameters or {}).get("mode")
    what = f"{operation} ({mode})" if mode else operation
    return f"v{commit_version} is a {what}"


def appended_since(lake: Lake, table: str, since: int) -> Appended:
    """The rows appended to ``table`` after version ``since`` (read by an earlier run) up to the
    version this run reads (``lake.read``); ``reason`` set when that is not only appends.

    The rows have the table's columns (the feed's own columns dropped) and are counted here:
    the count also proves the feed covers the range (Delta only tells when reading it).
    """
    lake.read(table)  # pins the version this run reads
    until = lake.tables_read[table]
    if since > until:
        return Appended(table, since, until, reason=f"{table} is at v{until}, before v{since} read last time")
    if since == until:
        return Appended(table, since, until, rows=lake.read(table).limit(0), count=0)
    path = lake.path(table)
    commits = (
        DeltaTable.forPath(lake.spark, path)
        .history()
        .where((F.col("version") > since) & (F.col("version") <= until))
        .select("version", "operation", "operationParameters")
        .orderBy("version")
        .collect()
    )  # the commits since the last run: a few
    for commit in commits:
        reason = _rewrite(int(commit["version"]), commit["operation"], commit["operationParameters"])
        if reason is not None:
            return Appended(table, since, until, reason=f"{table} {reason} since v{since}: history was rewritten")
    feed = (
        lake.spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", since + 1)
        .option("endingVersion", until)
        .load(path)
    )
    rows = feed.where(F.col("_change_type") == "insert").drop(*CHANGE_COLUMNS)
    try:
        count = rows.count()
    except PySparkException as exc:
        first = str(exc).splitlines()[0]
        return Appended(
            table, since, until, reason=f"{table}: no change data feed for v{since + 1}..v{until} ({first})"
        )
    return Appended(table, since, until, rows=rows, count=count)
