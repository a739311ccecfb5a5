"""``make bench-scale``: the whole pipeline at scale on this machine, against a base size.

    python -m bench.scale                                   # 250M receipts against 50M (hours)
    python -m bench.scale --receipts 2M --base 1M           # the same steps, small

For the base size and then the large one (customers = receipts / 10, 36 months): generate
a lake under bench/out/scale-<size>, then each stage as ``seglake run --full --stages
<stage>`` as of the last day, one job run per stage (all in the bench's process and Spark
session). Each stage's wall time comes from ops/runs; disk is sampled every few seconds
while a stage runs (the lake before it, plus the file system's used bytes above the level
when it started: the stage's tables, Spark's shuffle and spill files, everything), and the
lake's size is measured at the end. The section ``scale`` of BENCHMARKS.md gets both sizes
and the large/base time ratio per stage (linear: the size ratio, e.g. 5.0 for 250M/50M).
A base lake is removed before the large one is made (``--keep`` keeps both), so the disk
figures do not add up.

The run takes longer than a working session: every finished stage is recorded in
bench/out/scale-<size>.json, and the same command run again goes on from the first stage
not recorded (a stage that was interrupted runs again whole; ``--fresh`` starts over;
``--redo features`` runs that stage of the large size again, on the lake as it is, and
records the new figures: each stage's record names the code version its run recorded in
ops/runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from bench.run import OUT, label, machine, parse_size, write_section
from seglake.config import load_config
from seglake.session import build_session

START, END = "2022-01-01", "2024-12-31"
STAGES = ("generate", "cleanse", "features", "value", "cohorts", "segment", "clusters", "report")


class DiskPeak:
    """Peak used bytes of the file system holding ``path`` above the level when started."""

    def __init__(self, path: Path, every_seconds: float = 5.0) -> None:
        self.path, self.every = path, every_seconds
        self.start = shutil.disk_usage(path).used
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, shutil.disk_usage(self.path).used - self.start)
            self._stop.wait(self.every)

    def __enter__(self) -> DiskPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, shutil.disk_usage(self.path).used - self.start)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def stage_run(lake: Path, stage: str, overrides: list[str]) -> tuple[float, str]:
    """Seconds and code version (seglake version + git commit) of the latest succeeded run of
    ``stage`` (a job name) in the lake's ops/runs."""
    spark = build_session(load_config(None, overrides).spark)
    runs = spark.read.format("delta").load(f"{lake}/ops/runs").where("status = 'succeeded'")
    seconds = (F.col("ended_at").cast("double") - F.col("started_at").cast("double")).alias("s")
    last = runs.where(F.col("job") == stage).orderBy(F.desc("started_at")).select(seconds, "code_version").first()
    if last is None:
        raise SystemExit(f"bench scale: no succeeded {stage} run in {lake}/ops/runs")
    return float(last["s"]), str(last["code_version"])


def progress_path(receipts: int) -> Path:
    return OUT / f"scale-{label(receipts)}.json"


def load_progress(receipts: int) -> dict[str, Any]:
    path = progress_path(receipts)
    if path.exists():
        progress: dict[str, Any] = json.loads(path.read_text())
        return progress
    return {"receipts": receipts, "stages": {}}


def run_stage(lake: Path, stage: str, receipts: int, overrides: list[str]) -> None:
    """One stage in the lake, as its own job run (generate: a new lake)."""
    from jobs import generate as generate_job
    from jobs import run as run_job

    flags = [arg for override in overrides for arg in ("--set", override)]
    argv = [f"--set=lake.root={lake}", f"--set=report.root={lake}/reports", *flags]
    if stage == "generate":
        shutil.rmtree(lake, ignore_errors=True)
        customers = max(receipts // 10, 1)
        code = generate_job.main(
            [*argv, "--customers", str(customers), "--receipts", str(receipts), "--start", START, "--end", END]
        )
    else:
        code = run_job.main([*argv, f"--as-of={END}", "--full", f"--stages={stage}"])
    if code != 0:
        raise SystemExit(f"bench scale: {stage} failed at {label(receipts)} (run the same command to retry it)")


def run_size(receipts: int, overrides: list[str]) -> dict[str, Any]:
    """Every stage not yet recorded for ``receipts``: seconds, peak disk, then the lake's size."""
    progress = load_progress(receipts)
    lake = OUT / f"scale-{label(receipts)}"
    for stage in STAGES:
        if stage in progress["stages"]:
            continue
        print(f"bench scale {label(receipts)}: {stage} ...", flush=True)
        before = folder_bytes(lake) if lake.exists() and stage != "generate" else 0
        with DiskPeak(OUT) as disk:
            run_stage(lake, stage, receipts, overrides)
        seconds, code_version = stage_run(lake, stage, overrides)
        progress["stages"][stage] = {
            "seconds": seconds,
            "peak_disk": before + disk.peak,
            "date": dt.date.today().isoformat(),
            "machine": machine(),
            "commit": code_version,
        }
        progress_path(receipts).write_text(json.dumps(progress, indent=2))
        print(f"  {stage}: {progress['stages'][stage]['seconds']:.1f} s", flush=True)
    if "lake_bytes" not in progress:
        progress["lake_bytes"] = folder_bytes(lake)
        progress_path(receipts).write_text(json.dumps(progress, indent=2))
    return progress


def commits(large: dict[str, Any]) -> str:
    """Which commit each of the large size's stages ran (recorded since stages can be redone)."""
    by_commit: dict[str, list[str]] = {}
    for stage in STAGES:
        by_commit.setdefault(large["stages"][stage].get("commit", "not recorded"), []).append(stage)
    return "; ".join(f"{', '.join(stages)} at {code}" for code, stages in by_commit.items())


def peak_disk(progress: dict[str, Any]) -> int:
    return max(int(stage["peak_disk"]) for stage in progress["stages"].values())


def machines(*sizes: dict[str, Any]) -> str:
    """The distinct (date, machine) pairs the stages ran on: a resumed run may span several."""
    seen = sorted({(stage["date"], stage["machine"]) for size in sizes for stage in size["stages"].values()})
    return "; ".join(f"{day} on {machine}" for day, machine in seen)


def section(base: dict[str, Any], large: dict[str, Any]) -> str:
    """The BENCHMARKS.md section: both sizes per stage, and the ratio."""
    size_ratio = large["receipts"] / base["receipts"]
    rows = [
        f"| stage | {label(base['receipts'])} s | {label(large['receipts'])} s | ratio (linear = {size_ratio:.1f}) |",
        "|---|---:|---:|---:|",
    ]
    for stage in STAGES:
        small, big = base["stages"][stage]["seconds"], large["stages"][stage]["seconds"]
        rows.append(f"| {stage} | {small:.1f} | {big:.1f} | {big / small:.2f}x |")
    total_small = sum(stage["seconds"] for stage in base["stages"].values())
    total_big = sum(stage["seconds"] for stage in large["stages"].values())
    rows.append(f"| **all stages** | {total_small:.1f} | {total_big:.1f} | {total_big / total_small:.2f}x |")
    gib = 1024**3
    return "\n".join(
        [
            f"`python -m bench.scale --receipts {label(large['receipts'])} --base {label(base['receipts'])}`:"
            " a fresh generated lake per size (customers = receipts / 10,",
            f"{START}..{END}), then each stage as `seglake run --full --stages <stage>` as of {END},",
            "one job run per stage in one process; seconds per stage from ops/runs. Disk: the lake before a stage plus",
            "the file system's peak use above its level when the stage started (its tables, shuffle and",
            "spill files), the largest over the stages; and the lake's size at the end. Days and machines",
            "of the stages: "
            + machines(base, large)
            + f". Code of the {label(large['receipts'])} stages: "
            + commits(large)
            + ".",
            "",
            *rows,
            "",
            f"Peak disk: {peak_disk(base) / gib:.1f} GiB at {label(base['receipts'])}, "
            f"{peak_disk(large) / gib:.1f} GiB at {label(large['receipts'])}; lake at the end: "
            f"{base['lake_bytes'] / gib:.1f} GiB and {large['lake_bytes'] / gib:.1f} GiB.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--receipts", default="250M", help="the large size (default 250M)")
    parser.add_argument("--base", default="50M", help="the size to compare with (default 50M)")
    parser.add_argument("--keep", action="store_true", help="keep the base lake while the large one runs")
    parser.add_argument("--fresh", action="store_true", help="forget the recorded stages and start over")
    parser.add_argument(
        "--redo",
        action="append",
        default=[],
        choices=STAGES[1:],
        help="run this stage of the large size again and record it (repeatable)",
    )
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    args = parser.parse_args(argv)
    overrides = ["spark.console_progress=off", *args.set]
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = [parse_size(args.base), parse_size(args.receipts)]
    if args.fresh:
        for size in sizes:
            progress_path(size).unlink(missing_ok=True)
    if args.redo:
        progress = load_progress(sizes[1])
        for stage in args.redo:
            progress["stages"].pop(stage, None)
        progress.pop("lake_bytes", None)
        progress_path(sizes[1]).write_text(json.dumps(progress, indent=2))
    base = run_size(sizes[0], overrides)
    if not args.keep:
        shutil.rmtree(OUT / f"scale-{label(sizes[0])}", ignore_errors=True)
    large = run_size(sizes[1], overrides)
    header = f"Measured {dt.date.today().isoformat()}; the stages' days and machines are listed below."
    write_section("scale", section(base, large), header)
    print("bench: wrote section scale of BENCHMARKS.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
