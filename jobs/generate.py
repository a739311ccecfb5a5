"""``generate``: a synthetic receipts lake (bronze) for demos, tests and benchmarks.

seglake generate --customers 200000 --receipts 2000000 --seed 42
spark-submit jobs/generate.py --config conf/cluster.yaml --receipts 1000000000
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

if __package__ in (None, ""):  # run as a file: spark-submit jobs/generate.py
    import _bootstrap  # noqa: F401

from pyspark.sql import DataFrame, SparkSession

from seglake import tables
from seglake.config import SeglakeConfig
from seglake.errors import UserError
from seglake.job import Job, StageResult, job_log, run_job
from seglake.lake import Lake
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, help="number of customers")
    parser.add_argument("--receipts", type=int, help="target number of receipts (in expectation)")
    parser.add_argument("--seed", type=int, help="random seed; the same seed gives the same data")
    parser.add_argument("--start", metavar="YYYY-MM-DD", help="first day of receipts")
    parser.add_argument("--end", metavar="YYYY-MM-DD", help="last day of receipts")
    parser.add_argument("--partitions", type=int, help="customer partitions (tasks)")
    parser.add_argument("--dirty-rate", type=float, help="share of defective rows, e.g. 0.02 (kinds in proportion)")
    parser.add_argument("--clean", action="store_true", help="inject no defects")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the bronze tables of a lake that has them (refused without)"
    )


@dataclass(frozen=True)
class GenerationPlan:
    """The lazily planned synthetic data of one ``generate`` run (theta already calibrated)."""

    params: GeneratorParams
    customers: DataFrame
    receipts: DataFrame  # with the ``_defect`` column; to_bronze_receipts makes the bronze rows
    theta: float
    partitions: int


def plan_generation(spark: SparkSession, seglake_config: SeglakeConfig, *, clean: bool = False) -> GenerationPlan:
    """Customers, calibrated theta (one pass over the customers) and the receipts to write.

    ``make bench`` writes the same plan to Spark's ``noop`` sink to split the job's time
    into generating the rows and writing them.
    """
    log = job_log("generate")
    config = seglake_config.generate
    params = GeneratorParams(
        start_date=config.start_date,
        end_date=config.end_date,
        seed=config.seed,
        defect_rates={} if clean else config.effective_defect_rates(),
        currency_rates={code: float(rate) for code, rate in seglake_config.currency.rates.items()},
        base_currency=seglake_config.currency.base,
    )
    cores = spark.sparkContext.defaultParallelism
    # whole waves of tasks, about 2M receipts each, at least two per core
    partitions = config.partitions or 2 * cores * max(1, -(-config.receipts // (4_000_000 * cores)))
    log.info(
        f"{config.customers:,} customers, ~{config.receipts:,} receipts, "
        f"{config.start_date}..{config.end_date}, seed {config.seed}, {partitions} partitions"
    )
    customers = to_customers(spark.range(0, config.customers, numPartitions=partitions), params)
    exposure = tables.first_row(rate_exposure(customers))["exposure"] or 0.0
    theta = calibrate_theta(config.receipts, config.customers, float(exposure))
    receipts = to_receipts(customers, params, theta)
    if params.defect_rates:
        receipts = with_defects(receipts, params)
    return GenerationPlan(params, customers, receipts, theta, partitions)


def run(lake: Lake, *, clean: bool = False, overwrite: bool = False) -> StageResult:
    """Generate the synthetic lake the ``generate`` config section describes; ``clean``: no defects.

    Refuses (before writing anything) to replace an existing bronze/receipts unless ``overwrite``.
    """
    log = job_log("generate")
    if not overwrite and lake.exists("bronze/receipts"):
        raise UserError(
            f"bronze/receipts already exists at {lake.path('bronze/receipts')}: generate replaces it with "
            "synthetic receipts only with --overwrite"
        )
    config = lake.config.generate
    plan = plan_generation(lake.spark, lake.config, clean=clean)
    started = time.perf_counter()
    written = lake.write(to_bronze_receipts(plan.receipts), "bronze/receipts", mode="overwrite")
    seconds = time.perf_counter() - started
    log.info(f"bronze/receipts: {written:,} rows in {seconds:.1f}s ({written / seconds:,.0f} receipts/s)")

    lake.write(to_customer_dimension(plan.customers, plan.params), "bronze/customers", mode="overwrite")
    defects = lake.write(to_generator_truth(plan.receipts), "bronze/_generator_truth", mode="overwrite")
    log.info(f"bronze/customers: {config.customers:,} rows; {defects:,} defective rows recorded")
    log.info(f"lake: {tables.lake_root(lake.config)}")
    details = {
        "receipts_written": written,
        "write_seconds": round(seconds, 3),
        "receipts_per_second": round(written / seconds),
        "theta": plan.theta,
        "partitions": plan.partitions,
    }
    return StageResult(rows_out=written, details=details)


JOB = Job(
    name="generate",
    summary="Write synthetic bronze/receipts, bronze/customers and bronze/_generator_truth (replacing what is there).",
    run=run,
    as_of_from="none",
    add_arguments=add_arguments,
    options=lambda args: {"clean": bool(args.clean), "overwrite": bool(args.overwrite)},
    flag_keys=FLAG_KEYS,
)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    sys.exit(main())
