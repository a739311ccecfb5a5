"""``ops/runs``: one row per job run, succeeded or failed."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import seglake
from seglake import catalog, tables
from seglake.config import PROJECT_ROOT, SeglakeConfig


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
        """Read ``table`` pinned at its current version, and remember that version."""
        path = tables.require_table(spark, self.config, table, hint=hint)
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
        frame = spark.createDataFrame([row], catalog.table("ops/runs").ddl)
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
