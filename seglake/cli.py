"""The ``seglake <job>`` console script: dispatches to ``jobs.<job>.main`` (the runner is :mod:`seglake.job`)."""

from __future__ import annotations

import importlib
import sys

from seglake.job import fail

JOBS = {
    "generate": "synthetic receipts and customers into bronze (demo, tests, benchmarks)",
    "cleanse": "bronze/receipts -> silver/receipts + quarantine, with books that balance",
    "ingest": "a receipt source into bronze/receipts (and bronze/customers) by a column mapping",
    "features": "silver/receipts -> silver/customer_month -> gold/customer_profile for one as-of date",
    "value": "gold/customer_profile -> gold/customer_value (BG/NBD x Gamma-Gamma lifetime value) for one as-of date",
    "cohorts": "silver/receipts -> gold/cohort_retention (+ _by_channel) for one as-of date",
    "segment": "gold/customer_profile -> RFM scores, named and rule segments, campaign audiences, migration",
    "clusters": "gold/customer_profile -> gold/clusters, gold/cluster_profiles (k-means) for one as-of date",
    "report": "the gold tables of one as-of date -> <lake>/reports/segmentation_<as_of>.html (charts embedded)",
    "run": "the whole pipeline for one as-of date (--sample: generate a sample lake first if there is none)",
}


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


def entry() -> None:
    """The ``seglake`` console script, also the entry point of a Databricks wheel task: a
    status other than 0 leaves as ``SystemExit``, so a failed run fails the task (a wheel
    task ignores what the function returns)."""
    status = main()
    if status:
        sys.exit(status)


if __name__ == "__main__":
    sys.exit(main())
