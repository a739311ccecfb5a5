"""``generate``: a synthetic receipts lake (bronze) for demos, tests and benchmarks.

seglake generate --customers 200000 --receipts 2000000 --seed 42
spark-submit jobs/generate.py --config conf/cluster.yaml --receipts 1000000000
"""

from __future__ import annotations

import argparse
import sys
import time

if __package__ in (None, ""):  # run as a file: spark-submit jobs/generate.py
    import _bootstrap  # noqa: F401

from pyspark.sql import SparkSession

from seglake import tables
from seglake.cli import job_parser, run_job
from seglake.runlog import Run
from transforms.generate import (
    GeneratorParams,
    calibrate_theta,
    rate_exposure,
    to_bronze_receipts,
    to_customer_dimension,
    to_customers,
    to_generator_truth,
    to_receipts,
    with_defects,
)

FLAG_KEYS = {
    "customers": "generate.customers",
    "receipts": "generate.receipts",
    "seed": "generate.seed",
    "start": "generate.start_date",
    "end": "generate.end_date",
    "partitions": "generate.partitions",
    "dirty_rate": "generate.dirty_rate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(
        "generate",
        "Write synthetic bronze/receipts, bronze/customers and bronze/_generator_truth (replacing what is there).",
    )
    parser.add_argument("--customers", type=int, help="number of customers")
    parser.add_argument("--receipts", type=int, help="target number of receipts (in expectation)")
    parser.add_argument("--seed", type=int, help="random seed; the same seed gives the same data")
    parser.add_argument("--start", metavar="YYYY-MM-DD", help="first day of receipts")
    parser.add_argument("--end", metavar="YYYY-MM-DD", help="last day of receipts")
    parser.add_argument("--partitions", type=int, help="customer partitions (tasks)")
    parser.add_argument("--dirty-rate", type=float, help="share of defective rows, e.g. 0.02 (kinds in proportion)")
    parser.add_argument("--clean", action="store_true", help="inject no defects")
    return parser


def generate(spark: SparkSession, run: Run, args: argparse.Namespace) -> None:
    config = run.config.generate
    params = GeneratorParams(
        start_date=config.start_date,
        end_date=config.end_date,
        seed=config.seed,
        defect_rates={} if getattr(args, "clean", False) else config.effective_defect_rates(),
        currency_rates={code: float(rate) for code, rate in run.config.currency.rates.items()},
        base_currency=run.config.currency.base,
    )
    cores = spark.sparkContext.defaultParallelism
    # whole waves of tasks, about 2M receipts each, at least two per core
    partitions = config.partitions or 2 * cores * max(1, -(-config.receipts // (4_000_000 * cores)))
    run.log(
        f"{config.customers:,} customers, ~{config.receipts:,} receipts, "
        f"{config.start_date}..{config.end_date}, seed {config.seed}, {partitions} partitions"
    )
    customers = to_customers(spark.range(0, config.customers, numPartitions=partitions), params)
    exposure = rate_exposure(customers).first()["exposure"] or 0.0
    theta = calibrate_theta(config.receipts, config.customers, float(exposure))
    receipts = to_receipts(customers, params, theta)
    if params.defect_rates:
        receipts = with_defects(receipts, params)

    started = time.perf_counter()
    path = tables.write_table(
        to_bronze_receipts(receipts),
        run.config,
        "bronze/receipts",
        mode="overwrite",
        partition_by=["receipt_month"],
    )
    seconds = time.perf_counter() - started
    written = tables.last_commit_rows(spark, path)
    run.wrote(spark, "bronze/receipts")
    run.log(f"bronze/receipts: {written:,} rows in {seconds:.1f}s ({written / seconds:,.0f} receipts/s)")

    tables.write_table(to_customer_dimension(customers, params), run.config, "bronze/customers", mode="overwrite")
    run.wrote(spark, "bronze/customers")
    truth_path = tables.write_table(
        to_generator_truth(receipts), run.config, "bronze/_generator_truth", mode="overwrite"
    )
    run.wrote(spark, "bronze/_generator_truth")
    defects = tables.last_commit_rows(spark, truth_path)
    run.log(f"bronze/customers: {config.customers:,} rows; {defects:,} defective rows recorded")
    run.rows_out = written
    run.details.update(
        receipts_written=written, write_seconds=round(seconds, 3),
        receipts_per_second=round(written / seconds), theta=theta, partitions=partitions,
    )  # fmt: skip
    run.log(f"lake: {tables.lake_root(run.config)}")


def main(argv: list[str] | None = None) -> int:
    return run_job("generate", build_parser(), argv, generate, flag_keys=FLAG_KEYS)


if __name__ == "__main__":
    sys.exit(main())
