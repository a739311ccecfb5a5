"""The lake as one job run sees it: every Delta read pinned and recorded, every commit recorded.

A job never calls ``spark.read.format("delta")`` itself: :meth:`Lake.read` reads a
table at its current version (the same version for the whole run, however often the
job reads it) and remembers that version, and :meth:`Lake.write` commits through the
catalog (:mod:`seglake.tables`) and remembers the version it made. ``ops/runs`` gets
both maps, so a run can be replayed against the exact table versions it read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from seglake import tables
from seglake.catalog import Table
from seglake.config import SeglakeConfig


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class Lake:
    """What one run of ``job`` read and wrote, and the handles it reads and writes with."""

    spark: SparkSession
    config: SeglakeConfig
    job: str
    run_id: str = field(default_factory=new_run_id)
    tables_read: dict[str, int] = field(default_factory=dict)
    tables_written: dict[str, int] = field(default_factory=dict)

    def path(self, table: str) -> str:
        return tables.table_path(self.config, table)

    def exists(self, table: str) -> bool:
        return tables.table_exists(self.spark, self.path(table))

    def version(self, table: str) -> int:
        """The table's latest committed version (not recorded: nothing is read)."""
        return tables.table_version(self.spark, self.path(table))

    def read(self, table: str, *, hint: str = "") -> DataFrame:
        """``table`` pinned at the version this run first read (its latest then), recorded.

        A missing table is a :class:`~seglake.errors.UserError` naming the path and ``hint``.
        """
        path = tables.require_table(self.spark, self.config, table, hint=hint)
        version = self.tables_read.setdefault(table, tables.table_version(self.spark, path))
        return self.spark.read.format("delta").option("versionAsOf", version).load(path)

    def read_version(self, table: str, version: int) -> DataFrame:
        """``table`` at an earlier ``version`` (e.g. what the last run read); recorded as ``table@version``."""
        path = tables.require_table(self.spark, self.config, table)
        self.tables_read[f"{table}@{version}"] = version
        return self.spark.read.format("delta").option("versionAsOf", version).load(path)

    def read_written(self, table: str) -> DataFrame:
        """``table`` at the version this run committed to it (already in ``tables_written``)."""
        return self.spark.read.format("delta").option("versionAsOf", self.tables_written[table]).load(self.path(table))

    def write(
        self, frame: DataFrame, table: str | Table, *, mode: str = "append", replace_where: str | None = None
    ) -> int:
        """Commit ``frame`` to ``table`` (see :func:`seglake.tables.write_table`); rows the commit wrote.

        An append of no rows may make no commit: then 0, and nothing is recorded.
        """
        name = table if isinstance(table, str) else table.name
        before = self.version(name) if self.exists(name) else -1
        path = tables.write_table(frame, self.config, table, mode=mode, replace_where=replace_where)
        version = tables.table_version(self.spark, path)
        if version == before:
            return 0
        self.tables_written[name] = version
        return tables.last_commit_rows(self.spark, path)

    def replace_as_of(self, frame: DataFrame, table: str | Table, as_of: dt.date) -> int:
        """Replace the ``as_of_date = as_of`` partition of ``table`` in one commit; rows written."""
        name = table if isinstance(table, str) else table.name
        path = tables.replace_as_of(frame, self.config, table, as_of)
        self.tables_written[name] = tables.table_version(self.spark, path)
        return tables.last_commit_rows(self.spark, path)
