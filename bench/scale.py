"""``make bench-scale``: the whole pipeline at scale on this machine, against a base size.

    python -m bench.scale                                   # 250M receipts against 50M (hours)
    python -m bench.scale --receipts 2M --base 1M           # the same steps, small

For the base size and then the large one (customers = receipts / 10, 36 months): generate
a fresh lake under bench/out/scale-<size>, then ``seglake run --full`` as of the last day.
Each stage's wall time comes from ops/runs; disk is sampled every few seconds while the
size runs (the file system's used bytes above those before it started: the lake, Spark's
shuffle and spill files, everything), and the lake's size is measured at the end. The
section ``scale`` of BENCHMARKS.md gets both sizes and the large/base time ratio per stage
(linear: the size ratio, e.g. 5.0 for 250M/50M). A base lake is removed before the large
one is made (``--keep`` keeps both), so the disk figures do not add up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import threading
import time
from pathlib import Path

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


def stage_seconds(lake: Path, overrides: list[str]) -> dict[str, float]:
    """Seconds per job of the lake's runs (generate, then the stages of the last ``run``)."""
    spark = build_session(load_config(None, overrides).spark)
    runs = spark.read.format("delta").load(f"{lake}/ops/runs").where("status = 'succeeded'")
    seconds = (F.col("ended_at").cast("double") - F.col("started_at").cast("double")).alias("s")
    last = runs.where("job = 'run'").orderBy(F.desc("started_at")).first()
    stages = runs.where(
        (F.get_json_object("details", "$.pipeline_run") == last["run_id"]) | (F.col("job") == "generate")
    )
    return {r["job"]: r["s"] for r in stages.select("job", seconds).collect()}


def run_size(receipts: int, overrides: list[str]) -> dict[str, object]:
    """Generate ``receipts`` and run the pipeline in full: seconds per stage, peak disk, lake size."""
    from jobs import generate as generate_job
    from jobs import run as run_job

    flags = [arg for override in overrides for arg in ("--set", override)]
    lake = OUT / f"scale-{label(receipts)}"
    shutil.rmtree(lake, ignore_errors=True)
    customers = max(receipts // 10, 1)
    print(f"bench scale {label(receipts)}: generate, then run --full ...", flush=True)
    started = time.perf_counter()
    with DiskPeak(OUT) as disk:
        argv = [f"--set=lake.root={lake}", f"--set=report.root={lake}/reports", *flags]
        generated = generate_job.main(
            [*argv, "--customers", str(customers), "--receipts", str(receipts), "--start", START, "--end", END]
        )
        if generated != 0:
            raise SystemExit(f"bench scale: generate failed at {label(receipts)}")
        if run_job.main([*argv, f"--as-of={END}", "--full"]) != 0:
            raise SystemExit(f"bench scale: run failed at {label(receipts)}")
    result: dict[str, object] = {
        "receipts": receipts,
        "seconds": stage_seconds(lake, overrides),
        "wall": time.perf_counter() - started,
        "peak_disk": disk.peak,
        "lake_bytes": folder_bytes(lake),
    }
    print(f"  {result}", flush=True)
    return result


def section(base: dict, large: dict) -> str:
    """The BENCHMARKS.md section: both sizes per stage, and the ratio."""
    size_ratio = large["receipts"] / base["receipts"]
    rows = [
        f"| stage | {label(base['receipts'])} s | {label(large['receipts'])} s | ratio (linear = {size_ratio:.1f}) |",
        "|---|---:|---:|---:|",
    ]
    for stage in STAGES:
        small, big = base["seconds"].get(stage), large["seconds"].get(stage)
        if small is None or big is None:
            continue
        rows.append(f"| {stage} | {small:.1f} | {big:.1f} | {big / small:.2f}x |")
    total_small, total_big = sum(base["seconds"].values()), sum(large["seconds"].values())
    rows.append(f"| **all stages** | {total_small:.1f} | {total_big:.1f} | {total_big / total_small:.2f}x |")
    gib = 1024**3
    return "\n".join(
        [
            f"`python -m bench.scale --receipts {label(large['receipts'])} --base {label(base['receipts'])}`:"
            " a fresh generated lake per size (customers = receipts / 10,",
            f"{START}..{END}), then `seglake run --full` as of {END}; seconds per stage from",
            "ops/runs. Disk: the file system's peak use above its level before the size started",
            "(lake, shuffle and spill files), and the lake's size at the end.",
            "",
            *rows,
            "",
            f"Peak disk: {base['peak_disk'] / gib:.1f} GiB at {label(base['receipts'])}, "
            f"{large['peak_disk'] / gib:.1f} GiB at {label(large['receipts'])}; lake at the end: "
            f"{base['lake_bytes'] / gib:.1f} GiB and {large['lake_bytes'] / gib:.1f} GiB.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--receipts", default="250M", help="the large size (default 250M)")
    parser.add_argument("--base", default="50M", help="the size to compare with (default 50M)")
    parser.add_argument("--keep", action="store_true", help="keep the base lake while the large one runs")
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    args = parser.parse_args(argv)
    overrides = ["spark.console_progress=off", *args.set]
    OUT.mkdir(parents=True, exist_ok=True)
    header = f"Measured {dt.date.today().isoformat()} on {machine()}."
    base = run_size(parse_size(args.base), overrides)
    if not args.keep:
        shutil.rmtree(OUT / f"scale-{label(parse_size(args.base))}", ignore_errors=True)
    large = run_size(parse_size(args.receipts), overrides)
    write_section("scale", section(base, large), header)
    print("bench: wrote section scale of BENCHMARKS.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
