"""``ops/runs``: one row per job run, succeeded or failed (written by the job runner, :mod:`seglake.job`)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import functions as F

import seglake
from seglake import catalog, defaults, tables
from seglake.lake import Lake


@cache
def code_version() -> str:
    """``<package version>+<git commit>`` when seglake runs from a git checkout, else the version.

    Installed (a wheel, the ``--py-files`` zip) there is no commit to report: no git is run,
    so a virtualenv or a zip that happens to sit inside some git repository does not lend
    its commit. From a checkout, the commit is that of the checkout's own repository.
    """
    root = defaults.CHECKOUT_ROOT
    if root is None:
        return seglake.__version__
    try:
        lines = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        lines = []
    # a checkout copied without its .git into another repository's tree is not that repository
    commit = lines[1] if len(lines) == 2 and Path(lines[0]).resolve() == root else ""
    return f"{seglake.__version__}+{commit}" if commit else seglake.__version__


STARTED_COMMIT = "seglake run started "  # + run id: the Delta userMetadata of a started row's commit
HISTORY_SEARCHED = 100  # commits of ops/runs searched for one's own started row (other drivers append too)

# ops/runs.status of the row a run writes when it begins; its last row says how it ended
STARTED, SUCCEEDED, FAILED, ABANDONED = "started", "succeeded", "failed", "abandoned"


def utc_now() -> dt.datetime:
    """Now in UTC, without a zone (``ops`` timestamps are UTC instants)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def record(
    lake: Lake,
    *,
    as_of: dt.date | None,
    started_at: dt.datetime,
    rows_in: int | None,
    rows_out: int | None,
    details: dict[str, Any],
    status: str,
    error: str | None,
    ended_at: dt.datetime | None = None,
) -> int | None:
    """Append one row about the run of ``lake`` to ``ops/runs``: what it read and wrote (from
    ``lake``), and its status. For a ``started`` row, the version of its commit (else None).

    ``status`` is ``started`` (the row a run writes first, ``ended_at`` null), ``succeeded``
    or ``failed`` (the row it writes last; ``ended_at`` now unless given).
    """
    ended = None if status == STARTED else (ended_at or utc_now())
    row = (
        lake.run_id,
        lake.job,
        as_of,
        status,
        started_at,
        ended,
        rows_in,
        rows_out,
        lake.tables_read,
        lake.tables_written,
        lake.config.digest(),
        lake.config.source,
        code_version(),
        error,
        json.dumps(details, sort_keys=True, default=str) if details else None,
    )
    frame = lake.spark.createDataFrame([row], catalog.table("ops/runs").ddl)
    if status != STARTED:
        tables.write_table(frame, lake.config, "ops/runs", mode="append")
        return None
    note = f"{STARTED_COMMIT}{lake.run_id}"
    path = tables.write_table(frame, lake.config, "ops/runs", mode="append", commit_note=note)
    return commit_version(lake, path, note)


def commit_version(lake: Lake, path: str, note: str) -> int:
    """The version of the commit of ``path`` tagged ``note`` (Delta userMetadata), among the latest.

    Usually the latest version; but another driver may have appended since.
    """
    latest = tables.first_row(DeltaTable.forPath(lake.spark, path).history(1).select("version", "userMetadata"))
    if latest["userMetadata"] == note:
        return int(latest["version"])
    history = DeltaTable.forPath(lake.spark, path).history(HISTORY_SEARCHED)
    row = history.where(F.col("userMetadata") == F.lit(note)).select("version").first()
    if row is None:
        raise RuntimeError(f"{path}: the commit {note!r} is not among the last {HISTORY_SEARCHED} commits")
    return int(row["version"])


def last_rollup(lake: Lake) -> dict[str, Any] | None:
    """What the last successful ``features`` run recorded about the ``silver/customer_month``
    it left (``details.rollup``): ``silver_version`` (the silver/receipts version it was
    built from), ``customer_month_version``, ``recency_last_k`` and ``timezone`` (the
    session time zone its months were taken in; absent before seglake recorded it)."""
    if not lake.exists("ops/runs"):
        return None
    is_rollup = (F.col("job") == "features") & (F.col("status") == "succeeded") & F.col("details").contains("rollup")
    last = lake.read("ops/runs").where(is_rollup).orderBy(F.desc("started_at")).select("details").first()
    return json.loads(last["details"])["rollup"] if last else None


def rollup_mismatch(
    lake: Lake, built: dict[str, Any] | None, *, recency_last_k: int | None = None, silver_version: int | None = None
) -> str | None:
    """Why silver/customer_month is not the rollup the last features run recorded (``built``,
    from :func:`last_rollup`) for this run's settings; None when it is.

    ``recency_last_k`` and ``silver_version`` are checked when given; the session time zone
    and the rollup's version always (a rollup's months are calendar months in its zone).
    """
    rollup = "silver/customer_month"
    if built is None:
        return f"no succeeded features run recorded for {rollup}"
    if recency_last_k is not None and built.get("recency_last_k") != recency_last_k:
        return f"features.recency_last_k changed ({built.get('recency_last_k')} -> {recency_last_k})"
    timezone = lake.spark.conf.get("spark.sql.session.timeZone")
    if built.get("timezone") != timezone:
        return f"spark.timezone changed ({built.get('timezone', 'not recorded')} -> {timezone})"
    if built.get("customer_month_version") != lake.version(rollup):
        return f"{rollup} was written by something else since the last features run"
    if silver_version is not None and built.get("silver_version") != silver_version:
        return (
            f"{rollup} was built from silver/receipts v{built.get('silver_version')}, this run reads "
            f"v{silver_version} (`seglake features` brings it up to date)"
        )
    return None


LIFETIME = "silver/customer_lifetime"


def lifetime_mismatch(lake: Lake, recorded: dict[str, Any] | None, last_k: int) -> str | None:
    """Why silver/customer_lifetime is not the state the last features run recorded; None when it is."""
    if recorded is None:
        return "the last features run recorded no lifetime state"
    if not lake.exists(LIFETIME):
        return f"no {LIFETIME} at {lake.path(LIFETIME)}"
    if recorded.get("version") != lake.version(LIFETIME):
        return f"{LIFETIME} was written by something else since the last features run"
    if recorded.get("recency_last_k") != last_k:
        return f"features.recency_last_k changed ({recorded.get('recency_last_k')} -> {last_k})"
    return None
