"""Spark stage metrics of a running seglake job, summed per job: the shuffle volumes behind
the cluster projection in BENCHMARKS.md (section ``scale``).

    python -m bench.stage_metrics --out bench/out/stages-250M.json        # poll until stopped
    python -m bench.stage_metrics --out bench/out/stages-250M.json --summary

It polls Spark's monitoring REST API (the driver's UI, 127.0.0.1:4040 by default) every
20 seconds (``--every``) and keeps every completed stage it has seen, keyed by application,
stage and attempt, so that stages the UI forgets (``spark.ui.retainedStages``) are not lost. Each
stage is attributed to the seglake job named in its description ("seglake cleanse as of
... (run ...)", set by ``seglake.job``). ``--summary`` prints, per job: input, output,
shuffle write and read, spill to disk, the executors' run time and the largest task count
of a stage; with ``--by-run``, per job run (a stage run again is its own line).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

SUMMED = (
    "inputBytes",
    "outputBytes",
    "shuffleWriteBytes",
    "shuffleReadBytes",
    "memoryBytesSpilled",
    "diskBytesSpilled",
    "executorRunTime",
)
JOB_NAME = re.compile(r"^seglake (\S+)")
RUN_ID = re.compile(r"\(run ([0-9a-f]+)\)")
# --summary's columns: title, summed field, unit
SUMMARY_COLUMNS = (
    ("input GiB", "inputBytes", 1024**3),
    ("output GiB", "outputBytes", 1024**3),
    ("shuffle w GiB", "shuffleWriteBytes", 1024**3),
    ("shuffle r GiB", "shuffleReadBytes", 1024**3),
    ("spill GiB", "diskBytesSpilled", 1024**3),
    ("task hours", "executorRunTime", 3_600_000),
    ("max tasks", "maxTasks", 1),
)


def fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def poll_once(ui: str, seen: dict[str, dict[str, Any]]) -> int:
    """Add the completed stages of every application at ``ui``; returns how many were new."""
    new = 0
    for app in fetch(f"{ui}/api/v1/applications"):
        for stage in fetch(f"{ui}/api/v1/applications/{app['id']}/stages?status=complete"):
            key = f"{app['id']}/{stage['stageId']}/{stage['attemptId']}"
            if key not in seen:
                new += 1
                seen[key] = {
                    "description": stage.get("description") or "",
                    "name": stage.get("name", ""),
                    "numTasks": stage["numTasks"],
                    "submissionTime": stage.get("submissionTime"),
                    **{field: stage.get(field, 0) for field in SUMMED},
                }
    return new


def summary(seen: dict[str, dict[str, Any]], *, by_run: bool = False) -> dict[str, dict[str, int]]:
    """Per seglake job (or job run, ``by_run``: "features 186fd584"): the summed metrics, the
    largest stage's task count, the stage count."""
    jobs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for stage in seen.values():
        match = JOB_NAME.match(stage["description"])
        name = match.group(1).rstrip(":") if match else "(other)"
        run = RUN_ID.search(stage["description"])
        job = jobs[f"{name} {run.group(1)[:8]}" if by_run and match and run else name]
        for field in SUMMED:
            job[field] += int(stage[field])
        job["maxTasks"] = max(job["maxTasks"], int(stage["numTasks"]))
        job["stages"] += 1
    return {name: dict(values) for name, values in jobs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stage_metrics", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the stages seen (kept across restarts)")
    parser.add_argument("--ui", default="http://127.0.0.1:4040", help="the Spark driver's UI")
    parser.add_argument("--every", type=float, default=20.0, help="seconds between polls")
    parser.add_argument("--summary", action="store_true", help="print the per-job sums of --out and stop")
    parser.add_argument("--by-run", action="store_true", help="with --summary: one line per job run")
    args = parser.parse_args(argv)
    seen: dict[str, dict[str, Any]] = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.summary:
        width = 18 if args.by_run else 10
        print(f"{'job':<{width}} " + " ".join(f"{title:>13}" for title, _, _ in SUMMARY_COLUMNS))
        for job, sums in sorted(summary(seen, by_run=args.by_run).items()):
            cells = [
                f"{sums[field] / unit:>13,.2f}" if unit > 1 else f"{sums[field]:>13,}"
                for _, field, unit in SUMMARY_COLUMNS
            ]
            print(f"{job:<{width}} " + " ".join(cells))
        return 0
    while True:
        try:
            if poll_once(args.ui, seen):
                args.out.write_text(json.dumps(seen))
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass  # between jobs no driver is listening, or one that is stopping answers with no JSON
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
