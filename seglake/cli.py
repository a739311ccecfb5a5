"""Command line: the shared job runner and the ``seglake <job>`` console script."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Callable

from pyspark.sql import SparkSession

from seglake.config import load_config, parse_as_of
from seglake.errors import UserError
from seglake.runlog import Run
from seglake.session import build_session

JOBS = {
    "generate": "synthetic receipts and customers into bronze (demo, tests, benchmarks)",
    "cleanse": "bronze/receipts -> silver/receipts + quarantine, with books that balance",
    "ingest": "a receipt source into bronze/receipts (and bronze/customers) by a column mapping",
    "features": "silver/receipts -> silver/customer_month -> gold/customer_profile for one as-of date",
    "cohorts": "silver/receipts -> gold/cohort_retention (+ _by_channel) for one as-of date",
    "segment": "gold/customer_profile -> RFM scores, named and rule segments, campaign audiences, migration",
    "clusters": "gold/customer_profile -> gold/clusters, gold/cluster_profiles (k-means) for one as-of date",
    "report": "the gold tables of one as-of date -> reports/segmentation_<as_of>.html (charts embedded)",
    "run": "the whole pipeline for one as-of date (generates a sample lake if there is none)",
}

JobBody = Callable[[SparkSession, Run, argparse.Namespace], None]


def job_parser(job: str, description: str) -> argparse.ArgumentParser:
    """Parser with the options every job shares: --config, --set, --as-of."""
    parser = argparse.ArgumentParser(prog=f"seglake {job}", description=description)
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="YAML config (default: conf/local.yaml, the embedded local lake)",
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one config key, e.g. --set rfm.tiles=5 (repeatable)",
    )
    parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="as-of date D of the run")
    return parser


def fail(job: str, message: str) -> int:
    print(f"seglake {job}: error: {message}", file=sys.stderr, flush=True)
    return 2


def run_job(
    job: str,
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    body: JobBody,
    *,
    spark: SparkSession | None = None,
    flag_keys: dict[str, str] | None = None,
) -> int:
    """Parse, validate config before Spark starts, run ``body``, record the run.

    A :class:`UserError` prints one line and exits 2; anything else is a bug and keeps
    its stack trace (exit 1). Both are recorded as a failed run in ``ops/runs``.
    ``flag_keys`` maps job flags to config keys (``customers`` -> ``generate.customers``):
    a flag given on the command line acts as ``--set`` on that key.
    """
    args = parser.parse_args(argv)
    for flag, key in (flag_keys or {}).items():
        value = getattr(args, flag, None)
        if value is not None:
            args.set.append(f"{key}={value}")
    try:
        config = load_config(args.config, args.set)
        as_of = parse_as_of(args.as_of)
        session = spark or build_session(config.spark)
    except UserError as exc:
        return fail(job, str(exc))
    run = Run(job=job, config=config, as_of=as_of)
    try:
        body(session, run, args)
    except UserError as exc:
        _record(session, run, "failed", str(exc))
        return fail(job, str(exc))
    except Exception as exc:
        traceback.print_exc()
        _record(session, run, "failed", f"{type(exc).__name__}: {exc}".splitlines()[0])
        return fail(job, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    _record(session, run, "succeeded", None)
    return 0


def _record(spark: SparkSession, run: Run, status: str, error: str | None) -> None:
    try:
        run.record(spark, status, error)
    except Exception as exc:  # the run log must never hide the run's own outcome
        print(f"seglake {run.job}: warning: could not write ops/runs: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: seglake <job> [options]   (seglake <job> --help for a job's options)\n")
        print("jobs:")
        for name, what in JOBS.items():
            print(f"  {name:<10} {what}")
        return 0 if argv else 2
    job, rest = argv[0], argv[1:]
    if job not in JOBS:
        return fail(job, f"unknown job; choose one of {', '.join(JOBS)}")
    module = importlib.import_module(f"jobs.{job}")
    return int(module.main(rest))


if __name__ == "__main__":
    sys.exit(main())
