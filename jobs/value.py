"""``value``: gold/customer_profile -> gold/customer_value (customer lifetime value).

    seglake value                                     # the latest profile as-of date
    seglake value --as-of 2024-12-31 --set value.horizon_days=180

Reads the ``as_of_date`` partition of ``gold/customer_profile`` (``--as-of``, default the
latest present) and fits two models on it (``transforms/clv.py``): BG/NBD for the number
of future purchases and Gamma-Gamma for the spend per purchase. Spark groups the
customers by history ``(x, t_x, T)`` in whole time units (``value.time_unit_days``) and by
(x, mean spend to ``value.spend_significant_digits`` digits); only those distinct rows and
their counts reach the driver, where scipy fits the models. Expected purchases over
``value.horizon_days`` and P(alive) are computed per distinct history and joined back to
every customer by a broadcast join; the expected spend, the CLV and its decile are
Spark columns. The date's partition of ``gold/customer_value`` is replaced in one commit.
The fitted parameters are on every row and in ``ops/runs.details``.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

if __package__ in (None, ""):  # run as a file: spark-submit jobs/value.py
    import _bootstrap  # noqa: F401

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seglake import catalog, tables
from seglake.errors import UserError
from seglake.job import Job, Laps, StageResult, job_log, run_job
from seglake.lake import Lake
from transforms.clv import (
    PROFILE_COLUMNS,
    BgNbdParams,
    GammaGammaParams,
    decile,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    probability_alive,
    to_clv_inputs,
    to_clv_triples,
    to_spend_buckets,
    with_clv_scores,
)

PROFILE = "gold/customer_profile"
VALUE = "gold/customer_value"
DECILES = 10
log = job_log("value")


def fit_models(triples: list[Any], buckets: list[Any], *, as_of: dt.date) -> tuple[BgNbdParams, GammaGammaParams]:
    """Both fits on the collected rows; a model the data cannot support is one line (UserError)."""
    x, t_x, T, customers = (np.array(column, dtype=np.float64) for column in zip(*triples, strict=True))
    try:
        purchases = fit_bgnbd(x, t_x, T, customers)
        if not buckets:
            raise ValueError("Gamma-Gamma: no customer has a repeat purchase to fit the spend on")
        bx, spend, bucket_customers = (np.array(column, dtype=np.float64) for column in zip(*buckets, strict=True))
        spend_params = fit_gamma_gamma(bx, spend, bucket_customers)
    except ValueError as exc:
        raise UserError(f"{PROFILE} as of {as_of}: {exc}") from None
    return purchases, spend_params


def score_triples(lake: Lake, triples: list[Any], params: BgNbdParams, horizon: float) -> DataFrame:
    """Expected purchases over ``horizon`` time units and P(alive) per distinct history: a small frame."""
    x, t_x, T = (np.array([row[i] for row in triples], dtype=np.float64) for i in range(3))
    purchases = expected_purchases(params, horizon, x, t_x, T)
    alive = probability_alive(params, x, t_x, T)
    if not (np.isfinite(purchases).all() and np.isfinite(alive).all()):
        raise UserError(
            f"{PROFILE}: the fitted BG/NBD model {params} gives no finite expected purchases for some histories"
        )
    rows = [
        (int(row[0]), int(row[1]), int(row[2]), float(p), float(a))
        for row, p, a in zip(triples, purchases, alive, strict=True)
    ]
    schema = "x bigint, t_x int, T int, expected_purchases double, probability_alive double"
    return lake.spark.createDataFrame(rows, schema)


def run(lake: Lake, *, as_of: dt.date) -> StageResult:
    """Fit BG/NBD and Gamma-Gamma on the ``as_of`` profile and replace that date's gold/customer_value."""
    settings = lake.config.value
    details: dict[str, Any] = {}
    lap = Laps(details)
    profiles = lake.read(PROFILE, hint="run `seglake features` first")
    missing = [c for c in PROFILE_COLUMNS if c not in profiles.columns]
    if missing:
        raise UserError(f"{PROFILE} has no column {missing[0]}; rerun `seglake features` with this version")
    unit, horizon_days = settings.time_unit_days, settings.horizon_days
    horizon = horizon_days / unit
    log.info(f"as of {as_of}: horizon {horizon_days} days = {horizon:g} time units of {unit:g} days")
    profile = profiles.where(F.col("as_of_date") == F.lit(as_of))
    inputs = to_clv_inputs(profile, time_unit_days=unit).cache()
    try:
        # distinct histories: bounded by the history's length and the largest frequency, not by customers
        triples = sorted(
            tuple(row) for row in to_clv_triples(inputs).limit(settings.max_distinct_triples + 1).collect()
        )
        if len(triples) > settings.max_distinct_triples:
            raise UserError(
                f"{PROFILE} as of {as_of}: more than value.max_distinct_triples = {settings.max_distinct_triples:,} "
                f"distinct (x, t_x, T) histories; choose a longer value.time_unit_days (now {unit:g} days)"
            )
        rows_in = sum(int(row[3]) for row in triples)
        if rows_in == 0:
            raise UserError(f"{PROFILE} as of {as_of} has no customers; nothing to value")
        buckets = sorted(
            tuple(row)
            for row in to_spend_buckets(inputs, significant_digits=settings.spend_significant_digits).collect()
        )
        lap("group")
        purchases, spend = fit_models(triples, buckets, as_of=as_of)
        lap("fit")
        log.info(
            f"BG/NBD on {rows_in:,} customers in {len(triples):,} distinct (x, t_x, T): "
            f"r = {purchases.r:.4g}, alpha = {purchases.alpha:.4g}, a = {purchases.a:.4g}, b = {purchases.b:.4g}"
        )
        log.info(
            f"Gamma-Gamma on {sum(int(b[2]) for b in buckets):,} repeat customers in {len(buckets):,} (x, spend) "
            f"groups: p = {spend.p:.4g}, q = {spend.q:.4g}, gamma = {spend.gamma:.4g} "
            f"(population mean spend {spend.p * spend.gamma / (spend.q - 1):.2f})"
        )
        triple_scores = score_triples(lake, triples, purchases, horizon)
        scored = with_clv_scores(inputs, triple_scores, spend).withColumn(
            "clv_amount", F.round(F.col("clv_amount"), 2).cast("decimal(18,2)")
        )
        population = tables.first_row(
            scored.agg(
                F.percentile_approx(
                    "clv_amount",
                    [j / DECILES for j in range(1, DECILES)],
                    max(int(1 / settings.relative_error), 1),
                ).alias("thresholds"),
                F.sum("clv_amount").alias("clv_total"),
                F.sum("expected_purchases").alias("purchases_total"),
                F.count(F.lit(1)).alias("customers"),
            )
        )
        thresholds = [float(t) for t in population["thresholds"]]
        lap("score")
        parameters = {
            "bgnbd_r": purchases.r,
            "bgnbd_alpha": purchases.alpha,
            "bgnbd_a": purchases.a,
            "bgnbd_b": purchases.b,
            "gg_p": spend.p,
            "gg_q": spend.q,
            "gg_gamma": spend.gamma,
        }
        value = scored.select(
            "customer_id",
            F.lit(as_of).alias("as_of_date"),
            F.col("x").alias("frequency_repeat"),
            F.col("t_x").alias("recency_time"),
            F.col("T").alias("age_time"),
            F.lit(float(unit)).alias("time_unit_days"),
            F.col("monetary").alias("avg_spend_observed"),
            "expected_purchases",
            "probability_alive",
            "expected_avg_spend",
            "clv_amount",
            decile(F.col("clv_amount"), thresholds).alias("clv_decile"),
            F.lit(horizon_days).alias("horizon_days"),
            *[F.lit(float(v)).alias(name) for name, v in parameters.items()],
        ).select(*catalog.table(VALUE).column_names)
        rows_out = lake.replace_as_of(value, VALUE, as_of)
        lap("write")
    finally:
        inputs.unpersist()
    clv_total = float(population["clv_total"] or 0)
    log.info(
        f"{VALUE}: {rows_out:,} customers as of {as_of}; population CLV over {horizon_days} days "
        f"{clv_total:,.2f} (mean {clv_total / rows_out:,.2f}; {float(population['purchases_total']):,.0f} expected "
        f"purchases); decile thresholds {', '.join(f'{t:g}' for t in thresholds)}"
    )
    details.update(
        customers=rows_in,
        distinct_triples=len(triples),
        spend_groups=len(buckets),
        repeat_customers=sum(int(b[2]) for b in buckets),
        time_unit_days=unit,
        horizon_days=horizon_days,
        bgnbd=purchases._asdict(),
        gamma_gamma=spend._asdict(),
        population_clv=round(clv_total, 2),
        expected_purchases=round(float(population["purchases_total"]), 3),
        decile_thresholds=thresholds,
    )
    return StageResult(rows_in=rows_in, rows_out=rows_out, details=details)


JOB = Job(
    name="value",
    summary="Customer lifetime value (BG/NBD purchases x Gamma-Gamma spend) for one as-of date "
    "(default: the latest in gold/customer_profile).",
    run=run,
    as_of_from="profile",
)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    sys.exit(main())
