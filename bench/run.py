"""``make bench``: throughput of seglake's stages against an independent engine (DuckDB).

    python -m bench.run                      # generate at 1M and 10M receipts
    python -m bench.run --sizes 1M,10M,50M   # larger, on a bigger machine
    python -m bench.run --only generate

Each section is measured in one run and rewritten in BENCHMARKS.md between its
``<!-- bench:NAME -->`` markers, with the machine it ran on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from seglake.config import load_config
from seglake.session import build_session

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
REPORT = ROOT / "BENCHMARKS.md"


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMbB]?)", text.strip())
    if not match:
        raise SystemExit(f"bench: --sizes {text}: expected a number like 1M, 500k, 1B")
    scale = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def label(size: int) -> str:
    for unit, scale in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 1024**2:.0f} GiB"
    except OSError:
        memory = "?"
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    import pyspark

    return (
        f"{os.cpu_count()} cores ({cpu or platform.processor()}), {memory} RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"Spark {pyspark.__version__} local[*], {java[0] if java else 'java ?'}, "
        f"DuckDB {duckdb.__version__}"
    )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_generate(sizes: list[int], spark_overrides: list[str]) -> str:
    """generate at each size; then the same rows rewritten month-partitioned by Spark and DuckDB."""
    from jobs import generate as generate_job

    rows = [
        "| receipts (target) | written | generate s | receipts/s | rewrite: Spark s | "
        "rewrite: DuckDB s | Spark / DuckDB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        lake = OUT / f"lake-{label(size)}"
        shutil.rmtree(lake, ignore_errors=True)
        customers = max(size // 10, 1)
        argv = [
            "--set",
            f"lake.root={lake}",
            "--customers",
            str(customers),
            "--receipts",
            str(size),
        ]
        argv += [a for o in spark_overrides for a in ("--set", o)]
        print(f"bench generate {label(size)} ...", flush=True)
        seconds = timed(lambda argv=argv: generate_job.main(argv))
        spark = build_session(load_config(None, spark_overrides).spark)
        runs = spark.read.format("delta").load(f"{lake}/ops/runs").where("job = 'generate'")
        written = runs.orderBy("started_at", ascending=False).first()["rows_out"]

        bronze = spark.read.format("delta").load(f"{lake}/bronze/receipts")
        spark_s = timed(
            lambda bronze=bronze, lake=lake: (
                bronze.write.format("delta").partitionBy("receipt_month").save(f"{lake}/rewrite-spark")
            )
        )
        files = [f.removeprefix("file:") for f in bronze.inputFiles()]
        duck = duckdb.connect()
        duck.execute(f"SET threads = {os.cpu_count()}")
        duck_s = timed(
            lambda duck=duck, files=files, lake=lake: duck.execute(
                "COPY (SELECT * FROM read_parquet($files, hive_partitioning = true)) "
                f"TO '{lake}/rewrite-duckdb' (FORMAT parquet, PARTITION_BY (receipt_month))",
                {"files": files},
            )
        )
        rows.append(
            f"| {label(size)} | {written:,} | {seconds:.1f} | {written / seconds:,.0f} | "
            f"{spark_s:.1f} | {duck_s:.1f} | {spark_s / duck_s:.1f}x |"
        )
        print(rows[-1], flush=True)
        shutil.rmtree(lake, ignore_errors=True)
    return "\n".join(
        [
            "`generate` end to end (customers = receipts / 10, 2022-01-01..2024-12-31, 2% dirty),",
            "wall time of the job including the calibration pass, the month-partitioned",
            "bronze/receipts commit, bronze/customers and the truth table. Then the written",
            "rows are rewritten month-partitioned by Spark (Delta) and by DuckDB (Parquet,",
            "reading the same files): the write path of both engines on identical data.",
            "",
            *rows,
        ]
    )


SECTIONS: dict[str, Callable[[list[int], list[str]], str]] = {"generate": bench_generate}
DEFAULT_SIZES = {"generate": "1M,10M"}


def write_section(name: str, body: str, header: str) -> None:
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n\n`make bench` rewrites the sections below.\n"
    block = f"<!-- bench:{name} -->\n## {name}\n\n{header}\n\n{body}\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    REPORT.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--sizes", help="receipts per run, e.g. 1M,10M (default per section)")
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(SECTIONS)
    overrides = ["spark.console_progress=off", *args.set]
    header = f"Measured {dt.date.today().isoformat()} on {machine()}."
    for name in names:
        if name not in SECTIONS:
            raise SystemExit(f"bench: --only {name}: choose from {', '.join(SECTIONS)}")
        sizes = [parse_size(s) for s in (args.sizes or DEFAULT_SIZES[name]).split(",")]
        write_section(name, SECTIONS[name](sizes, overrides), header)
        print(f"bench: wrote section {name} of {REPORT}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
