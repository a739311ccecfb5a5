"""The lake as one job run sees it: every Delta read pinned and recorded, every commit recorded.

A job never calls ``spark.read.format("delta")`` itself: :meth:`Lake.read` reads a
table at its current version (the same version for the whole run, however often the
job reads it) and remembers that version, and :meth:`Lake.write` commits through the
catalog (:mod:`seglake.tables`) and remembers the version it made. ``ops/runs`` gets
both maps, so a run can be replayed against the exact table versions it read.

``cleanse``'s two tables are read as a pair. Cleanse commits silver/receipts_quarantine,
then silver/receipts, each commit tagged with its run (Delta ``userMetadata``
``seglake cleanse run <run_id>``); the pair is complete once ``ops/runs`` records that run
as succeeded with both versions in ``tables_written``. :meth:`Lake.read` reads either
table at its last complete version (:func:`complete_version`), so the commits of a
cleanse run that died between (or after) its commits are never read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seglake import catalog, tables
from seglake.catalog import Table
from seglake.config import SeglakeConfig
from seglake.errors import UserError

# cleanse's two tables, in the order it commits them
CLEANSE_PAIR = ("silver/receipts_quarantine", "silver/receipts")
CLEANSE_COMMIT = "seglake cleanse run "  # + run id: the Delta userMetadata of cleanse's commits


def partitions_for_bytes(configured: int, table_bytes: int, bytes_per_partition: int | None) -> int:
    """A shuffle's partition count: ``configured`` (spark.sql.shuffle.partitions), raised to
    one per ``bytes_per_partition`` of the table it shuffles; ``None``: ``configured`` as is.

    For shuffles whose partitions adaptive execution cannot coalesce or split (a fixed
    partitioning the job reuses, a window): a count that suits 50M receipts leaves each task
    of a 250M run five times the rows, and its sort or aggregation spills to disk
    (BENCHMARKS.md, scale).
    """
    if bytes_per_partition is None:
        return configured
    return max(configured, -(-table_bytes // bytes_per_partition))


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

    def size_bytes(self, table: str) -> int:
        """Bytes of the table's data files at its latest version (not recorded: nothing is read)."""
        return tables.table_size_bytes(self.spark, self.path(table))

    def partitions_by_size(self, table: str, bytes_per_partition: int | None) -> tuple[int, str]:
        """The partition count of a shuffle of ``table`` (:func:`partitions_for_bytes` of its
        data files' bytes at its latest version), and a line saying why, for the job's log."""
        configured = int(self.spark.conf.get("spark.sql.shuffle.partitions") or "200")
        if bytes_per_partition is not None:  # else no need to read the table's size
            table_bytes = self.size_bytes(table)
            partitions = partitions_for_bytes(configured, table_bytes, bytes_per_partition)
            if partitions > configured:
                return partitions, (
                    f"{partitions} partitions: one per {bytes_per_partition / 2**20:,.0f} MiB of {table} "
                    f"({table_bytes / 2**30:,.1f} GiB; spark.sql.shuffle.partitions is {configured})"
                )
        return configured, f"{configured} partitions (spark.sql.shuffle.partitions)"

    def read(self, table: str, *, hint: str = "") -> DataFrame:
        """``table`` pinned at the version this run first read (its latest then), recorded.

        A missing table is a :class:`~seglake.errors.UserError` naming the path and ``hint``.
        """
        path = tables.require_table(self.spark, self.config, table, hint=hint)
        if table not in self.tables_read:
            self.tables_read[table] = self._version_to_read(table, path)
        return self.spark.read.format("delta").option("versionAsOf", self.tables_read[table]).load(path)

    def _version_to_read(self, table: str, path: str) -> int:
        """The latest version; for cleanse's pair the last complete one (a UserError when there is none)."""
        if table not in CLEANSE_PAIR:
            return tables.table_version(self.spark, path)
        complete = complete_version(self, table, last_cleanse_pair(self))
        if complete.version is None:
            raise UserError(
                f"table {table} at {path} holds only commits of cleanse run {complete.orphan_run_id}, which "
                "did not complete (run `seglake cleanse` again)"
            )
        return complete.version

    def read_version(self, table: str, version: int) -> DataFrame:
        """``table`` at an earlier ``version`` (e.g. what the last run read); recorded as ``table@version``."""
        path = tables.require_table(self.spark, self.config, table)
        self.tables_read[f"{table}@{version}"] = version
        return self.spark.read.format("delta").option("versionAsOf", version).load(path)

    def read_written(self, table: str) -> DataFrame:
        """``table`` at the version this run committed to it (already in ``tables_written``)."""
        return self.spark.read.format("delta").option("versionAsOf", self.tables_written[table]).load(self.path(table))

    def write(
        self,
        frame: DataFrame,
        table: str | Table,
        *,
        mode: str = "append",
        replace_where: str | None = None,
        commit_note: str | None = None,
    ) -> int:
        """Commit ``frame`` to ``table`` (see :func:`seglake.tables.write_table`); rows the commit wrote.

        The table's version after the write is recorded even when an append of no rows made
        no commit (then 0 rows): a run's ``tables_written`` names every table it wrote to.
        """
        record = catalog.table(table) if isinstance(table, str) else table
        name = record.name
        tables.ensure_properties(self.spark, self.path(name), record.properties)  # its own commit, if any
        before = self.version(name) if self.exists(name) else -1
        path = tables.write_table(
            frame,
            self.config,
            record,
            mode=mode,
            replace_where=replace_where,
            commit_note=commit_note,
            set_properties=False,
        )
        version, rows = tables.last_commit(self.spark, path)
        self.tables_written[name] = version
        return 0 if version == before else rows

    def restore(self, table: str, version: int) -> None:
        """Put ``table`` back at ``version`` (Delta RESTORE: a new commit; nothing read or lost)."""
        DeltaTable.forPath(self.spark, self.path(table)).restoreToVersion(version)

    def replace_as_of(self, frame: DataFrame, table: str | Table, as_of: dt.date) -> int:
        """Replace the ``as_of_date = as_of`` partition of ``table`` in one commit; rows written."""
        name = table if isinstance(table, str) else table.name
        path = tables.replace_as_of(frame, self.config, table, as_of)
        self.tables_written[name], rows = tables.last_commit(self.spark, path)
        return rows


def last_cleanse_pair(lake: Lake) -> dict[str, int] | None:
    """The silver/receipts and quarantine versions the last succeeded cleanse run committed."""
    if not lake.exists("ops/runs"):
        return None
    written = F.col("tables_written")
    is_pair = (
        (F.col("job") == "cleanse")
        & (F.col("status") == "succeeded")
        & F.map_contains_key(written, CLEANSE_PAIR[0])
        & F.map_contains_key(written, CLEANSE_PAIR[1])
    )
    last = lake.read("ops/runs").where(is_pair).orderBy(F.desc("ended_at")).select("tables_written").first()
    return {table: int(last["tables_written"][table]) for table in CLEANSE_PAIR} if last else None


@dataclass(frozen=True)
class CompleteVersion:
    """The version of a cleanse table to read, and the first commit of an incomplete run if any."""

    table: str
    latest: int
    version: int | None  # None: every commit is an incomplete run's
    orphan_version: int | None = None
    orphan_run_id: str | None = None


def complete_version(lake: Lake, table: str, pair: dict[str, int] | None) -> CompleteVersion:
    """The latest version of ``table`` (one of :data:`CLEANSE_PAIR`) that holds no commit of an
    incomplete cleanse run.

    Commits up to the last complete pair's version (``pair``, from :func:`last_cleanse_pair`;
    None: no complete pair recorded) are complete. After it, a commit tagged by cleanse
    belongs to a run that did not complete (it died, failed, or is still running): that
    commit and every later one are left out, unless a later RESTORE went back before it.
    Other writers' commits (a DELETE, OPTIMIZE, a RESTORE) are read as they are.
    """
    path = lake.path(table)
    latest = tables.table_version(lake.spark, path)
    since = pair[table] if pair is not None and pair[table] <= latest else -1
    if since == latest:
        return CompleteVersion(table, latest, latest)
    commits = (
        DeltaTable.forPath(lake.spark, path)
        .history()
        .where(F.col("version") > since)
        .select("version", "operation", "operationParameters", "userMetadata")
        .orderBy("version")
        .collect()
    )  # the commit log since the last complete pair: a few entries
    orphan: tuple[int, str] | None = None
    for commit in commits:
        note = commit["userMetadata"] or ""
        if orphan is None and note.startswith(CLEANSE_COMMIT):
            orphan = (int(commit["version"]), note.removeprefix(CLEANSE_COMMIT))
        elif orphan is not None and commit["operation"] == "RESTORE" and _restored_to(commit) < orphan[0]:
            orphan = None  # restored to before the incomplete run's commit
    if orphan is None:
        return CompleteVersion(table, latest, latest)
    version = orphan[0] - 1
    return CompleteVersion(table, latest, version if version >= 0 else None, orphan[0], orphan[1])


def _restored_to(commit: Any) -> int:
    """The version a RESTORE commit went back to (its operation parameter; the commit's own if absent)."""
    return int((commit["operationParameters"] or {}).get("version", commit["version"]))
