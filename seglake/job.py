"""The job contract, and the one runner behind the CLI, ``python -m jobs.X`` and ``spark-submit``.

Every job module defines a :class:`Job`::

    def run(lake: Lake, *, as_of: dt.date, incremental: bool = False) -> StageResult: ...

    JOB = Job(name="features", summary="...", run=run, as_of_from="receipts",
              add_arguments=add_arguments, options=options)

``run`` gets everything as parameters: the :class:`~seglake.lake.Lake` (SparkSession,
config, and the recorder every Delta read and write goes through), the as-of date
already resolved, and its typed options. It returns a :class:`StageResult`. The runner
(:func:`run_job`) parses the command line, loads the config before Spark starts,
resolves the as-of date once with the resolver of the job's input (:data:`AsOfFrom`),
calls ``run`` and appends the run's row to ``ops/runs``. The ``run`` job calls the same
``run`` functions stage after stage with one as-of date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seglake import lease, logs, runlog, tables
from seglake.config import load_config, parse_as_of
from seglake.errors import USER_ERROR_EXIT, StageFailedError, UserError, exit_status
from seglake.lake import Lake
from seglake.logs import job_log
from seglake.session import build_session

# Where a job's as-of date comes from when --as-of is not given:
#   receipts  the last complete day in silver/receipts (features, cohorts);
#   profile   the latest gold/customer_profile partition; a given date must exist there
#             (segment, clusters, report);
#   none      the job has no as-of date (generate, ingest, cleanse);
#   pipeline  --as-of as given, or None: the run job resolves it once, after it has made sure
#             there are receipts (bronze before a first cleanse, else silver), for all its stages.
AsOfFrom = Literal["receipts", "profile", "none", "pipeline"]


class Laps:
    """Seconds per step of the run, into ``details['step_seconds']``."""

    def __init__(self, details: dict[str, Any]) -> None:
        self.seconds: dict[str, float] = details.setdefault("step_seconds", {})
        self.last = time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(now - self.last, 3)
        self.last = now


@dataclass
class StageResult:
    """What a job run reports besides its reads and writes (``ops/runs``)."""

    rows_in: int | None = None
    rows_out: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    as_of: dt.date | None = None  # the date a pipeline run resolved itself (as_of_from="pipeline")


@dataclass(frozen=True)
class Job:
    """A job: its ``run`` function, where its as-of date comes from, and its own options.

    ``add_arguments`` adds the job's flags to its parser; ``options`` turns the parsed
    flags into ``run``'s keyword arguments (typed; no ``getattr`` in job logic).
    """

    name: str
    summary: str
    run: Callable[..., StageResult]
    as_of_from: AsOfFrom
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda _parser: None
    options: Callable[[argparse.Namespace], Mapping[str, Any]] = lambda _args: {}
    # flag -> config key: a flag given on the command line acts as --set on that key
    flag_keys: Mapping[str, str] = field(default_factory=dict)


# --- logging: seglake.logs (job_log is re-exported for the jobs) -------------------------


# --- as-of resolvers ----------------------------------------------------------------------


def last_complete_day(receipts: DataFrame) -> dt.date | None:
    """The latest receipt date that had ended when its rows were ingested.

    A day is complete once data was ingested after it: min(last receipt date, day
    before the last ingestion). None when there are no receipts.
    """
    row = tables.first_row(
        receipts.agg(
            F.max(F.to_date("receipt_ts")).alias("last_receipt_day"),
            F.max(F.to_date("ingested_at")).alias("last_ingested_day"),
        )
    )
    last_receipt: dt.date | None = row["last_receipt_day"]
    last_ingested: dt.date | None = row["last_ingested_day"]
    if last_receipt is None or last_ingested is None:
        return last_receipt
    return min(last_receipt, last_ingested - dt.timedelta(days=1))


def as_of_from_receipts(lake: Lake, table: str = "silver/receipts") -> dt.date:
    """The last complete day in ``table`` (silver, or bronze before a first cleanse)."""
    hint = "run `seglake cleanse` first" if table.startswith("silver/") else "run `seglake generate` or `ingest`"
    day = last_complete_day(lake.read(table, hint=hint))
    if day is None:
        raise UserError(f"{table} has no receipts: nothing to compute; {hint}")
    return day


def as_of_from_profile(lake: Lake, given: dt.date | None) -> dt.date:
    """``given`` if gold/customer_profile has that partition, else (not given) the latest one."""
    profile = "gold/customer_profile"
    profiles = lake.read(profile, hint="run `seglake features` first")
    wanted = F.col("as_of_date") == F.lit(given) if given is not None else F.lit(False)
    row = tables.first_row(profiles.agg(F.max("as_of_date"), F.max(wanted)))  # partition values: one pass
    latest, present = row[0], row[1]
    if latest is None:
        raise UserError(f"{profile} is empty; run `seglake features` first")
    if given is None:
        return latest
    if not present:
        raise UserError(
            f"{profile} has no partition as_of_date = {given} (latest: {latest}); "
            f"run `seglake features --as-of {given}` first"
        )
    return given


def resolve_as_of(lake: Lake, source: AsOfFrom, given: dt.date | None) -> dt.date | None:
    """The as-of date of a run: ``given`` (--as-of), or the default of the job's input, logged."""
    log = job_log(lake.job)
    if source == "none":
        if given is not None:
            log.info(f"--as-of {given} is ignored: {lake.job} has no as-of date (its output does not depend on one)")
        return None
    if source == "pipeline":
        return given
    if source == "profile":
        day = as_of_from_profile(lake, given)
        if given is None:
            log.info(f"--as-of not given: using the latest profile, {day}")
        return day
    if given is not None:
        return given
    day = as_of_from_receipts(lake)
    log.info(f"--as-of not given: using the last complete day in the receipts, {day}")
    return day


# --- the runner ---------------------------------------------------------------------------


def job_parser(job: str, description: str) -> argparse.ArgumentParser:
    """Parser with the options every job shares: --config, --set, --as-of."""
    parser = argparse.ArgumentParser(prog=f"seglake {job}", description=description)
    parser.add_argument(
        "--config", metavar="PATH", help="YAML config (default: conf/local.yaml, the embedded local lake)"
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one config key, e.g. --set rfm.tiles=5 (repeatable)",
    )
    parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="as-of date D of the run")
    parser.add_argument(
        "--log-format",
        choices=logs.LOG_FORMATS,
        default=os.environ.get(logs.ENV_FORMAT, "text"),
        help=f"text (default; ${logs.ENV_FORMAT}) or json: one JSON object per line for log shippers",
    )
    return parser


def build_parser(job: Job) -> argparse.ArgumentParser:
    parser = job_parser(job.name, job.summary)
    job.add_arguments(parser)
    return parser


def fail(job: str, message: str, status: int = USER_ERROR_EXIT) -> int:
    """Log the run's one-line error and return its exit status."""
    logs.final_error(job, message)
    return status


def one_line(exc: BaseException) -> str:
    """The first line of ``exc`` (with its type unless it is a user error). Py4J's first line
    only names the JVM call ("An error occurred while calling o3125.save."): the Java
    exception's own first line, the one that says what happened, comes after it."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if isinstance(exc, UserError | StageFailedError):
        return text
    if text.startswith("An error occurred while calling") and len(lines) > 1:
        return f"{type(exc).__name__}: {text} {lines[1].lstrip(': ').strip()}"
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def describe_jobs(lake: Lake, job: str, as_of: dt.date | None) -> None:
    """Name the Spark jobs that follow in the Spark UI: ``seglake <stage> as of D (run R)``."""
    when = f" as of {as_of}" if as_of else ""
    lake.spark.sparkContext.setJobDescription(f"seglake {job}{when} (run {lake.run_id})")


def run_stage(lake: Lake, job: Job, *, as_of: dt.date | None, options: Mapping[str, Any]) -> StageResult:
    """Call ``job.run`` with the run's as-of date (for jobs that have one) and options."""
    arguments = dict(options)
    if job.as_of_from != "none":
        arguments["as_of"] = as_of
    describe_jobs(lake, job.name, as_of)
    try:
        return job.run(lake, **arguments)
    finally:
        lake.spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]


def run_job(job: Job, argv: list[str] | None, *, spark: SparkSession | None = None) -> int:
    """Parse, validate the config before Spark starts, take the lake's write lease, resolve
    the as-of date, run, record.

    The run writes its ``started`` row to ``ops/runs`` first (:func:`seglake.lease.acquire`)
    and its ``succeeded`` or ``failed`` row last. A :class:`UserError` logs one line and
    exits 2; anything else is a bug or an unexpected failure: its traceback is logged, then
    one line, exit 1.
    """
    args = build_parser(job).parse_args(argv)
    logs.configure(args.log_format)
    for flag, key in job.flag_keys.items():
        value = getattr(args, flag, None)
        if value is not None:
            args.set.append(f"{key}={value}")
    try:
        config = load_config(args.config, args.set)
        given = parse_as_of(args.as_of)
        options = job.options(args)
        session = spark or build_session(config.spark)
    except UserError as exc:
        return fail(job.name, str(exc))
    lake = Lake(session, config, job=job.name)
    logs.set_run(lake.run_id, given)
    log = job_log(job.name)
    started = runlog.utc_now()
    as_of: dt.date | None = given
    result = StageResult()
    try:
        for run in lease.acquire(lake, as_of=given, started_at=started):
            log.warning(f"{run.describe()} was abandoned: it started and never ended (recorded as abandoned)")
        with lease.Heartbeat(lake):
            as_of = resolve_as_of(lake, job.as_of_from, given)
            logs.set_as_of(as_of)
            result = run_stage(lake, job, as_of=as_of, options=options)
            as_of = result.as_of or as_of
    except Exception as exc:
        status = exit_status(exc)
        if status != USER_ERROR_EXIT and not isinstance(exc, StageFailedError):  # a stage logged its own
            log.error("failed with an unexpected error", exc_info=exc)
        record_run(lake, as_of, started, result, runlog.FAILED, one_line(exc))
        lease.release(lake)
        return fail(job.name, one_line(exc), status)
    record_run(lake, as_of, started, result, runlog.SUCCEEDED, None)
    lease.release(lake)
    return 0


def record_run(
    lake: Lake, as_of: dt.date | None, started: dt.datetime, result: StageResult, status: str, error: str | None
) -> None:
    try:
        runlog.record(
            lake,
            as_of=as_of,
            started_at=started,
            rows_in=result.rows_in,
            rows_out=result.rows_out,
            details=result.details,
            status=status,
            error=error,
        )
    except Exception as exc:  # the run log must never hide the run's own outcome
        job_log(lake.job).warning(f"could not write ops/runs: {exc}")
