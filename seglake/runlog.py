"""``ops/runs``: one row per job run, succeeded or failed.

It is also the completion marker of ``cleanse``'s two commits (silver/receipts_quarantine,
then silver/receipts): a pair is complete once a succeeded cleanse run records both
versions in ``tables_written``. Cleanse tags each of its commits (Delta ``userMetadata``
``seglake cleanse run <run_id>``), so a reader can tell a commit of a run that never
completed from anyone else's commit and reads the version before it (see
:func:`complete_version`).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import seglake
from seglake import tables
from seglake.config import PROJECT_ROOT, SeglakeConfig
from seglake.errors import UserError

# cleanse's two tables, in the order it commits them
CLEANSE_PAIR = ("silver/receipts_quarantine", "silver/receipts")
CLEANSE_COMMIT = "seglake cleanse run "  # + run id: the Delta userMetadata of cleanse's commits

RUNS_SCHEMA = (
    "run_id string, job string, as_of_date date, status string, started_at timestamp, "
    "ended_at timestamp, rows_in long, rows_out long, tables_read map<string,long>, "
    "tables_written map<string,long>, config_hash string, config_source string, "
    "code_version string, error string, details string"
)


@cache
def code_version() -> str:
    """``<package version>+<git commit>`` when run from a checkout, else the version."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{seglake.__version__}+{commit}" if commit else seglake.__version__


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class Run:
    """What one job run did; jobs read and write tables through it so it can tell."""

    job: str
    config: SeglakeConfig
    as_of: dt.date | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    started_at: dt.datetime = field(default_factory=_utc_now)
    rows_in: int | None = None
    rows_out: int | None = None
    tables_read: dict[str, int] = field(default_factory=dict)
    tables_written: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def log(self, message: str) -> None:
        """One progress line on stderr, timestamped."""
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        print(f"[{stamp}] {self.job}: {message}", file=sys.stderr, flush=True)

    def read(self, spark: SparkSession, table: str, *, hint: str = "") -> DataFrame:
        """Read ``table`` pinned at its current version, and remember that version.

        silver/receipts and its quarantine are pinned at their last complete cleanse
        version instead: a commit of a cleanse run that did not complete is not read.
        """
        path = tables.require_table(spark, self.config, table, hint=hint)
        if table in CLEANSE_PAIR:
            complete = complete_version(spark, self.config, table, last_cleanse_pair(spark, self.config))
            if complete.version is None:
                raise UserError(
                    f"table {table} at {path} holds only commits of cleanse run {complete.orphan_run_id}, which "
                    "did not complete (run `seglake cleanse` again)"
                )
            version = complete.version
        else:
            version = tables.table_version(spark, path)
        self.tables_read[table] = version
        return spark.read.format("delta").option("versionAsOf", version).load(path)

    def wrote(self, spark: SparkSession, table: str) -> int:
        """Record the version just committed to ``table``."""
        version = tables.table_version(spark, tables.table_path(self.config, table))
        self.tables_written[table] = version
        return version

    def record(self, spark: SparkSession, status: str, error: str | None = None) -> None:
        """Append this run's row to ``ops/runs``."""
        row = (
            self.run_id,
            self.job,
            self.as_of,
            status,
            self.started_at,
            _utc_now(),
            self.rows_in,
            self.rows_out,
            self.tables_read,
            self.tables_written,
            self.config.digest(),
            self.config.source,
            code_version(),
            error,
            json.dumps(self.details, sort_keys=True, default=str) if self.details else None,
        )
        frame = spark.createDataFrame([row], RUNS_SCHEMA)
        tables.write_table(frame, self.config, "ops/runs", mode="append")


def last_rollup(spark: SparkSession, config: SeglakeConfig) -> dict[str, Any] | None:
    """What the last successful ``features`` run recorded about the ``silver/customer_month``
    it left (``details.rollup``): ``silver_version`` (the silver/receipts version it was
    built from), ``customer_month_version``, ``recency_last_k`` and ``timezone`` (the
    session time zone its months were taken in; absent before seglake recorded it)."""
    path = tables.table_path(config, "ops/runs")
    if not tables.table_exists(spark, path):
        return None
    last = (
        spark.read.format("delta").load(path)
        .where((F.col("job") == "features") & (F.col("status") == "succeeded") & F.col("details").contains("rollup"))
        .orderBy(F.desc("started_at")).select("details").first()
    )  # fmt: skip
    return json.loads(last["details"])["rollup"] if last else None


def last_cleanse_pair(spark: SparkSession, config: SeglakeConfig) -> dict[str, int] | None:
    """The silver/receipts and quarantine versions the last succeeded cleanse run committed."""
    path = tables.table_path(config, "ops/runs")
    if not tables.table_exists(spark, path):
        return None
    written = F.col("tables_written")
    last = (
        spark.read.format("delta").load(path)
        .where((F.col("job") == "cleanse") & (F.col("status") == "succeeded")
               & F.map_contains_key(written, CLEANSE_PAIR[0]) & F.map_contains_key(written, CLEANSE_PAIR[1]))
        .orderBy(F.desc("ended_at")).select("tables_written").first()
    )  # fmt: skip
    return {table: int(last["tables_written"][table]) for table in CLEANSE_PAIR} if last else None


@dataclass(frozen=True)
class CompleteVersion:
    """The version of a cleanse table to read, and the first commit of an incomplete run if any."""

    table: str
    latest: int
    version: int | None  # None: every commit is an incomplete run's
    orphan_version: int | None = None
    orphan_run_id: str | None = None


def complete_version(
    spark: SparkSession, config: SeglakeConfig, table: str, pair: dict[str, int] | None
) -> CompleteVersion:
    """The latest version of ``table`` (one of :data:`CLEANSE_PAIR`) that holds no commit of an
    incomplete cleanse run.

    Commits up to the last complete pair's version (``pair``, from :func:`last_cleanse_pair`;
    None: no complete pair recorded) are complete. After it, a commit tagged by cleanse
    belongs to a run that did not complete (it died, failed, or is still running): that
    commit and every later one are left out, unless a later RESTORE went back before it.
    Other writers' commits (a DELETE, OPTIMIZE, a RESTORE) are read as they are.
    """
    path = tables.table_path(config, table)
    latest = tables.table_version(spark, path)
    since = pair[table] if pair is not None and pair[table] <= latest else -1
    if since == latest:
        return CompleteVersion(table, latest, latest)
    commits = (
        DeltaTable.forPath(spark, path).history()
        .where(F.col("version") > since)
        .select("version", "operation", "operationParameters", "userMetadata")
        .orderBy("version").collect()
    )  # fmt: skip
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
