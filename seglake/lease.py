"""The lake's write lease: one writing run at a time, for drivers on any machines.

Every job writes shared tables (silver/customer_month is rebuilt whole, a failed stage
RESTOREs what it wrote), so two runs on one lake at once, for the same as-of date or not,
could interleave commits and have one run's restore undo the other's. The lease makes
them take turns, on top of Delta's optimistic concurrency rather than a local lock:

1. A run appends its ``started`` row to ``ops/runs``. Delta numbers commits one after
   the other, whichever driver makes them, so the row gets a version ``v`` no other
   commit has.
2. It looks for the runs whose started rows came before ``v`` (by their commits'
   versions) and have not ended (no later row). One of them that is alive holds the
   lake: this run records itself as failed and stops, having written nothing else. Two
   runs started at once both see the order of their versions, so exactly one goes on.
3. While it runs, a heartbeat thread appends a row to ``ops/leases`` every
   ``ops.heartbeat_seconds``; the lease lapses ``ops.lease_seconds`` after the start or
   the last heartbeat. Its last ``ops/runs`` row (succeeded or failed) ends it.

A started run is alive while its lease has not lapsed, or, when its driver ran on this
host, exactly while that process exists (so the rerun after a killed driver need not wait
for the lapse). A run that is not alive and never ended is *abandoned*: the next run says
so in one line and appends an ``abandoned`` row for it, so it is reported once.

Delta's guarantee that two drivers cannot both commit version ``v`` needs a file system
with atomic put-if-absent (HDFS, ABFS, GCS, a local disk) or, on S3, a Delta commit
coordinator / LogStore that provides it (e.g. the DynamoDB LogStore).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from seglake import catalog, runlog, tables
from seglake.errors import UserError
from seglake.lake import Lake
from seglake.logs import job_log

# run ids of this process that hold the lease (or are taking it): a started row written by
# this pid is alive exactly when its run id is here (tests and notebooks run several jobs
# in one process)
_ACTIVE_RUNS: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


def this_driver() -> str:
    """``host:pid`` of this process, as the lease records it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LakeHeldError(UserError):
    """Another run holds the lake's write lease."""


@dataclass(frozen=True)
class StartedRun:
    """A run that had started and not ended when this one began."""

    run_id: str
    job: str
    as_of: dt.date | None
    started_at: dt.datetime
    driver: str
    expires_at: dt.datetime

    def describe(self) -> str:
        as_of = f", as of {self.as_of}" if self.as_of else ""
        return (
            f"run {self.run_id} ({self.job}{as_of}, started {self.started_at:%Y-%m-%d %H:%M:%S} UTC on {self.driver})"
        )

    def is_alive(self, now: dt.datetime) -> bool:
        host, _, pid = self.driver.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            if int(pid) == os.getpid():
                with _ACTIVE_LOCK:
                    return self.run_id in _ACTIVE_RUNS
            return _process_exists(int(pid))
        return self.expires_at > now


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def started_runs_before(lake: Lake, version: int) -> list[StartedRun]:
    """The runs whose ``started`` row was committed to ``ops/runs`` before ``version`` and that
    have not ended (no later row), with when their leases lapse (start or last heartbeat +
    ops.lease_seconds).

    Reads the latest ``ops/runs`` (a time-travel read costs seconds) and places each unfinished
    run before or after ``version`` by its start commit (tagged with its run id); a run that
    ended meanwhile no longer holds the lake, so it does not matter when it started.
    """
    runs = lake.spark.read.format("delta").load(lake.path("ops/runs"))
    ended = runs.where(F.col("status") != runlog.STARTED).select("run_id")
    unfinished = (
        runs.where((F.col("status") == runlog.STARTED) & (F.col("run_id") != lake.run_id))
        .join(F.broadcast(ended), "run_id", "left_anti")
        .select(
            "run_id",
            "job",
            "as_of_date",
            "started_at",
            F.get_json_object("details", "$.driver").alias("driver"),
        )
        .collect()
    )  # runs that have not ended: the one running, or abandoned ones not yet reported (a few)
    if not unfinished:
        return []
    started_in = start_commits(lake, [row["run_id"] for row in unfinished])
    earlier = [row for row in unfinished if started_in.get(row["run_id"], -1) < version]
    if not earlier:
        return []
    lease = dt.timedelta(seconds=lake.config.ops.lease_seconds)
    heartbeats = last_heartbeats(lake, [row["run_id"] for row in earlier])
    return [
        StartedRun(
            run_id=row["run_id"],
            job=row["job"],
            as_of=row["as_of_date"],
            started_at=row["started_at"],
            driver=row["driver"] or "unknown:",
            expires_at=max(row["started_at"] + lease, heartbeats.get(row["run_id"], row["started_at"])),
        )
        for row in earlier
    ]


def start_commits(lake: Lake, run_ids: list[str]) -> dict[str, int]:
    """The ``ops/runs`` version of each run's started row, among the last commits (an older one
    is not found: it is earlier than any run starting now)."""
    notes = {f"{runlog.STARTED_COMMIT}{run_id}": run_id for run_id in run_ids}
    history = DeltaTable.forPath(lake.spark, lake.path("ops/runs")).history(runlog.HISTORY_SEARCHED)
    rows = history.where(F.col("userMetadata").isin(list(notes))).select("version", "userMetadata").collect()
    return {notes[row["userMetadata"]]: int(row["version"]) for row in rows}


def last_heartbeats(lake: Lake, run_ids: list[str]) -> dict[str, dt.datetime]:
    """The latest ``expires_at`` in ``ops/leases`` of each of ``run_ids`` that has one."""
    if not lake.exists("ops/leases"):
        return {}
    leases = lake.spark.read.format("delta").load(lake.path("ops/leases"))
    rows = (
        leases.where(F.col("run_id").isin(run_ids)).groupBy("run_id").agg(F.max("expires_at").alias("until")).collect()
    )  # one row per unfinished run
    return {row["run_id"]: row["until"] for row in rows}


def acquire(lake: Lake, *, as_of: dt.date | None, started_at: dt.datetime) -> list[StartedRun]:
    """Write the run's ``started`` row and take the lake's write lease; the abandoned runs found.

    Raises :class:`LakeHeldError` (after recording nothing more) when a run that started
    earlier is still alive. The caller records this run's end either way.
    """
    with _ACTIVE_LOCK:
        _ACTIVE_RUNS.add(lake.run_id)
    version = runlog.record(
        lake,
        as_of=as_of,
        started_at=started_at,
        rows_in=None,
        rows_out=None,
        details={"driver": this_driver()},
        status=runlog.STARTED,
        error=None,
    )
    assert version is not None  # a started row's commit version
    earlier = started_runs_before(lake, version)
    now = runlog.utc_now()
    alive = [run for run in earlier if run.is_alive(now)]
    if alive:
        holder = min(alive, key=lambda run: run.started_at)
        raise LakeHeldError(
            f"the lake {tables.lake_root(lake.config)} is held by {holder.describe()}: this run wrote nothing; "
            "run it again once that run has ended"
        )
    abandoned = [run for run in earlier if not run.is_alive(now)]
    for run in abandoned:
        record_abandoned(lake, run)
    return abandoned


def record_abandoned(lake: Lake, run: StartedRun) -> None:
    """Append the ``abandoned`` row of ``run`` (same run id, job and start) to ``ops/runs``."""
    frame = lake.spark.createDataFrame(
        [
            (
                run.run_id,
                run.job,
                run.as_of,
                runlog.ABANDONED,
                run.started_at,
                runlog.utc_now(),
                f"abandoned: its driver {run.driver} stopped without recording an end (lease lapsed "
                f"{run.expires_at:%Y-%m-%d %H:%M:%S} UTC or process gone); found by run {lake.run_id}",
            )
        ],
        "run_id string, job string, as_of_date date, status string, started_at timestamp, "
        "ended_at timestamp, error string",
    )
    columns = catalog.table("ops/runs").columns
    missing = {c.name: F.lit(None).cast(c.data_type) for c in columns if c.name not in frame.columns}
    frame = frame.withColumns(missing).select(*[c.name for c in columns])
    tables.write_table(frame, lake.config, "ops/runs", mode="append")


def release(lake: Lake) -> None:
    """Forget the run in this process (its last ops/runs row, written by the caller, ends the lease)."""
    with _ACTIVE_LOCK:
        _ACTIVE_RUNS.discard(lake.run_id)


class Heartbeat:
    """Renews the run's lease every ``ops.heartbeat_seconds`` (a row in ``ops/leases``) until stopped."""

    def __init__(self, lake: Lake) -> None:
        self._lake = lake
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"seglake-lease-{lake.run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def _beat(self) -> None:
        ops = self._lake.config.ops
        while not self._stopped.wait(ops.heartbeat_seconds):
            try:
                renew(self._lake)
            except Exception as exc:  # a missed beat only shortens the lease; the run goes on
                job_log(self._lake.job).warning(f"could not renew the lake's write lease: {exc}")


def renew(lake: Lake) -> None:
    """Append one heartbeat of ``lake``'s run to ``ops/leases``."""
    now = runlog.utc_now()
    until = now + dt.timedelta(seconds=lake.config.ops.lease_seconds)
    spark = lake.spark
    spark.sparkContext.setJobDescription(f"seglake {lake.job}: lease heartbeat (run {lake.run_id})")
    frame = spark.createDataFrame([(lake.run_id, lake.job, now, until, this_driver())], catalog.table("ops/leases").ddl)
    tables.write_table(frame, lake.config, "ops/leases", mode="append")
