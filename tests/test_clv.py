"""Customer lifetime value: the BG/NBD and Gamma-Gamma likelihoods and scores against closed forms
and the lifetimes package, parameter recovery on simulated customers, and the value job."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import value as value_job
from seglake import tables
from seglake.config import load_config
from seglake.errors import UserError
from seglake.job import StageResult
from seglake.lake import Lake
from tests.conftest import with_catalog_columns
from transforms.clv import (
    _bgnbd_objective,
    _gamma_gamma_objective,
    bgnbd_log_likelihood,
    decile,
    expected_avg_spend,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
    probability_alive,
)

# CDNow estimates (Fader, Hardie & Lee 2005), weeks: r, alpha, a, b
CDNOW = (0.243, 4.414, 0.793, 2.426)
# three histories (x, t_x, T): no repeat purchase, an early last purchase, a recent one
HISTORIES = [(0, 0.0, 30.0), (2, 12.5, 40.0), (7, 35.0, 38.0)]
# Literals from lifetimes 0.11.3 (numpy 2.4.6, scipy 1.17.1, in a throwaway virtualenv, never in this
# project): -BetaGeoFitter._negative_log_likelihood(log(CDNOW), [x], [t_x], [T], [1.0], 0.0) per history,
# and BetaGeoFitter with params_ = CDNOW: conditional_expected_number_of_purchases_up_to_time(52, ...) and
# conditional_probability_alive(...).
LIFETIMES_LOG_LIKELIHOOD = [-0.49904476257063024, -8.731752038876355, -22.012920134497158]
LIFETIMES_EXPECTED_52 = [0.3076383012864354, 0.6958402071279719, 5.7286816643461105]
LIFETIMES_P_ALIVE = [1.0, 0.33134767666748716, 0.8619910650934327]

# Gamma-Gamma: p, q, gamma (lifetimes calls gamma v); (x, m_x) of three repeat customers
SPEND = (6.25, 3.74, 15.44)
SPEND_HISTORIES = [(1, 35.5), (4, 20.25), (12, 88.0)]
# lifetimes 0.11.3: -GammaGammaFitter._negative_log_likelihood(log(SPEND), [x], [m], [1.0], 0.0) per customer,
# and GammaGammaFitter with params_ = {p, q, v} = SPEND: conditional_expected_average_profit for
# (x, m) = (0, 50.0) (the population mean) and the three customers.
LIFETIMES_GG_LOG_LIKELIHOOD = [-4.206189637286627, -3.461271502345795, -6.683076216140876]
LIFETIMES_GG_EXPECTED_SPEND = [35.21897810218978, 35.41434927697442, 21.728550829127613, 86.13969642397737]


def log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def closed_form_bgnbd(params: tuple[float, ...], x: int, t_x: float, T: float) -> float:
    """log L of FHL 2005 eq. (6), term by term in plain floats."""
    r, alpha, a, b = params
    purchases = math.exp(math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha))
    alive = math.exp(log_beta(a, b + x) - log_beta(a, b)) * purchases / (alpha + T) ** (r + x)
    dropped = 0.0
    if x > 0:
        dropped = math.exp(log_beta(a + 1, b + x - 1) - log_beta(a, b)) * purchases / (alpha + t_x) ** (r + x)
    return math.log(alive + dropped)


def hyp2f1_series(a: float, b: float, c: float, z: float) -> float:
    """Gauss's hypergeometric series, summed until the terms vanish (|z| < 1)."""
    total, term, k = 1.0, 1.0, 0
    while abs(term) > 1e-17 * abs(total):
        term *= (a + k) * (b + k) / ((c + k) * (k + 1)) * z
        total += term
        k += 1
    return total


def closed_form_expected(params: tuple[float, ...], t: float, x: int, t_x: float, T: float) -> float:
    """FHL 2005 eq. (10) with the series above."""
    r, alpha, a, b = params
    hyp = hyp2f1_series(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    return numerator / (1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def closed_form_p_alive(params: tuple[float, ...], x: int, t_x: float, T: float) -> float:
    r, alpha, a, b = params
    return 1.0 if x == 0 else 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def closed_form_gamma_gamma(params: tuple[float, ...], x: int, m: float) -> float:
    """log of the density of the mean of x Gamma(p, nu) amounts, nu ~ Gamma(q, gamma) (FHL 2005b)."""
    p, q, gamma = params
    return (
        math.lgamma(p * x + q)
        - math.lgamma(p * x)
        - math.lgamma(q)
        + q * math.log(gamma)
        + p * x * math.log(x)
        + (p * x - 1) * math.log(m)
        - (p * x + q) * math.log(gamma + x * m)
    )


def columns(rows: list[tuple[float, ...]]) -> list[np.ndarray]:
    return [np.array(column, dtype=float) for column in zip(*rows, strict=True)]


# --- the formulas -------------------------------------------------------------------------------


def test_bgnbd_log_likelihood_equals_the_closed_form_and_lifetimes() -> None:
    got = bgnbd_log_likelihood(CDNOW, *columns(HISTORIES))
    closed = [closed_form_bgnbd(CDNOW, *history) for history in HISTORIES]
    assert got == pytest.approx(closed, rel=1e-12)
    assert got == pytest.approx(LIFETIMES_LOG_LIKELIHOOD, rel=1e-12)


def test_gamma_gamma_log_likelihood_equals_the_closed_form_and_lifetimes() -> None:
    got = gamma_gamma_log_likelihood(SPEND, *columns(SPEND_HISTORIES))
    closed = [closed_form_gamma_gamma(SPEND, *customer) for customer in SPEND_HISTORIES]
    assert got == pytest.approx(closed, rel=1e-12)
    assert got == pytest.approx(LIFETIMES_GG_LOG_LIKELIHOOD, rel=1e-12)


def test_expected_purchases_and_probability_alive_equal_the_closed_form_and_lifetimes() -> None:
    x, t_x, T = columns(HISTORIES)
    expected = expected_purchases(CDNOW, 52.0, x, t_x, T)
    assert expected == pytest.approx([closed_form_expected(CDNOW, 52.0, *h) for h in HISTORIES], rel=1e-10)
    assert expected == pytest.approx(LIFETIMES_EXPECTED_52, rel=1e-12)
    alive = probability_alive(CDNOW, x, t_x, T)
    assert alive == pytest.approx([closed_form_p_alive(CDNOW, *h) for h in HISTORIES], rel=1e-12)
    assert alive == pytest.approx(LIFETIMES_P_ALIVE, rel=1e-12)
    # a heavy buyer: 2F1 overflows at its argument near 1 and the Euler transform takes over
    heavy = expected_purchases(CDNOW, 5200.0, np.array([400.0]), np.array([99.0]), np.array([100.0]))
    assert np.isfinite(heavy).all() and heavy[0] > 0


def test_expected_average_spend_equals_the_formula_and_lifetimes() -> None:
    p, q, gamma = SPEND
    x = np.array([0.0] + [c[0] for c in SPEND_HISTORIES])
    m = np.array([50.0] + [c[1] for c in SPEND_HISTORIES])
    got = expected_avg_spend(SPEND, x, m)
    formula = [p * gamma / (q - 1)] + [
        (gamma + mi * xi) * p / (p * xi + q - 1) for xi, mi in zip(x[1:], m[1:], strict=True)
    ]
    assert got == pytest.approx(formula, rel=1e-14)
    assert got == pytest.approx(LIFETIMES_GG_EXPECTED_SPEND, rel=1e-12)


@pytest.mark.parametrize(
    ("objective", "log_params", "data"),
    [
        (
            _bgnbd_objective,
            np.log(CDNOW),
            [np.array(v, dtype=float) for v in ([0, 2, 7, 1, 0], [0, 12.5, 35, 3, 0], [30, 40, 38, 10, 2])],
        ),
        (_gamma_gamma_objective, np.log(SPEND), [np.array([1.0, 4.0, 12.0]), np.array([35.5, 20.25, 88.0])]),
    ],
)
def test_the_analytic_gradients_equal_finite_differences(
    objective: Callable[..., tuple[float, np.ndarray]], log_params: np.ndarray, data: list[np.ndarray]
) -> None:
    weights = np.arange(1.0, len(data[0]) + 1)
    _, gradient = objective(log_params, *data, weights)
    step = 1e-6
    numeric = [
        (objective(log_params + step * e, *data, weights)[0] - objective(log_params - step * e, *data, weights)[0])
        / (2 * step)
        for e in np.eye(len(log_params))
    ]
    assert gradient == pytest.approx(numeric, rel=1e-6, abs=1e-9)


# --- fitting ------------------------------------------------------------------------------------


def simulate_bgnbd(
    n: int, params: tuple[float, ...], T: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Repeat purchases x and the time t_x of the last one, observed over (0, T] after a first purchase
    at 0: Poisson(lambda) purchases, lambda ~ Gamma(r, scale 1/alpha); after each one the customer drops
    out with probability p ~ Beta(a, b).

    Vectorised: N ~ Poisson(lambda T) purchases would happen in (0, T] without dropout; dropout comes
    with purchase J ~ Geometric(p) (1, 2, ...); x = min(N, J); given N the purchase times are N sorted
    uniforms on (0, T], the x-th of which is T * Beta(x, N - x + 1)."""
    r, alpha, a, b = params
    rate = rng.gamma(r, 1 / alpha, n)
    dropout = rng.beta(a, b, n)
    would_buy = rng.poisson(rate * T)
    x = np.minimum(would_buy, rng.geometric(dropout))
    t_x = np.zeros(n)
    repeat = x > 0
    t_x[repeat] = T[repeat] * rng.beta(x[repeat], would_buy[repeat] - x[repeat] + 1)
    return x.astype(float), t_x


def standard_errors(
    objective: Callable[..., tuple[float, np.ndarray]], log_params: tuple, *data: np.ndarray
) -> np.ndarray:
    """Standard errors of the log-parameters (~ relative errors of the parameters) at the estimate: the
    inverse Hessian of the negative log-likelihood, by central differences of the analytic gradient."""
    theta, weights = np.log(np.array(log_params)), data[-1]
    step = 1e-5
    hessian = np.column_stack(
        [
            (objective(theta + step * e, *data)[1] - objective(theta - step * e, *data)[1]) / (2 * step)
            for e in np.eye(len(theta))
        ]
    )
    return np.sqrt(np.diag(np.linalg.inv(hessian * weights.sum())))


def test_bgnbd_recovers_the_parameters_of_200k_simulated_customers() -> None:
    truth = (0.6, 4.0, 0.9, 2.5)
    rng = np.random.default_rng(20050101)
    n = 200_000
    T = rng.integers(52, 157, n).astype(float)  # one to three years of history, in whole weeks
    x, t_x = simulate_bgnbd(n, truth, T, rng)
    # as the value job does: time in whole weeks, the fit on distinct (x, t_x, T) with counts
    triples, counts = np.unique(np.column_stack([x, np.round(t_x), T]), axis=0, return_counts=True)
    assert len(triples) < n / 2
    fitted = fit_bgnbd(triples[:, 0], triples[:, 1], triples[:, 2], counts)
    assert np.array(fitted) == pytest.approx(truth, rel=0.05)
    # 5% is comfortably above the sampling error: more than three standard errors of every parameter
    errors = standard_errors(_bgnbd_objective, fitted, *triples.T, counts.astype(float))
    assert (errors < 0.05 / 3).all(), errors


def test_gamma_gamma_recovers_the_parameters_of_200k_simulated_customers() -> None:
    truth = (1.0, 4.0, 150.0)  # population mean spend p gamma / (q - 1) = 50
    p, q, gamma = truth
    rng = np.random.default_rng(20050102)
    n = 200_000
    x = 1 + rng.poisson(2.0, n)
    scale = rng.gamma(q, 1 / gamma, n)  # nu: the customer's spend rate
    mean_spend = rng.gamma(p * x, 1 / (scale * x))  # the mean of x Gamma(p, nu) amounts
    # as the value job does: the mean spend to 3 significant digits, the fit on distinct (x, spend) with counts
    step = 10.0 ** (np.floor(np.log10(mean_spend)) - 2)
    pairs, counts = np.unique(np.column_stack([x, np.round(mean_spend / step) * step]), axis=0, return_counts=True)
    fitted = fit_gamma_gamma(pairs[:, 0], pairs[:, 1], counts)
    assert np.array(fitted) == pytest.approx(truth, rel=0.05)
    errors = standard_errors(_gamma_gamma_objective, fitted, *pairs.T, counts.astype(float))
    assert (errors < 0.05 / 3).all(), errors


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (([0, 0], [0, 0], [10, 20], [5, 3]), "no customer has a repeat purchase"),
        (([1, 0], [0, 0], [0, 0], [5, 3]), r"T = 0\): nothing observed"),
        (([1, 0], [3, 0], [2, 5], [1, 1]), "0 <= t_x <= T"),
        (([], [], [], []), "no customers to fit"),
        (([1, 2], [1, 2], [3, 4], [1, -1]), "weights must be >= 0"),
        (([1, np.nan], [1, 2], [3, 4], [1, 1]), "NaN or infinite"),
    ],
)
def test_a_bgnbd_fit_the_data_cannot_support_is_a_clear_value_error(arrays: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_bgnbd(*arrays)


def test_a_bgnbd_parameter_running_off_to_zero_is_a_value_error() -> None:
    # customers who never drop out (gamma-Poisson purchases, the last one the latest of x uniforms):
    # the likelihood keeps rising as a -> 0, a model without dropout
    rng = np.random.default_rng(3)
    T = rng.integers(10, 60, 5000).astype(float)
    x = rng.poisson(rng.gamma(2.0, 1 / 4.0, 5000) * T).astype(float)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)
    with pytest.raises(ValueError, match=r"^BG/NBD: the data cannot identify the model: a ran to 0 \("):
        fit_bgnbd(x, t_x, T)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (([0, 0], [10.0, 20.0], [3, 4]), "no customer has a repeat purchase"),
        (([1, 2], [10.0, 10.0], [3, 4]), "same mean spend"),
        (([1, 2], [10.0, -1.0], [3, 4]), "must be positive"),
    ],
)
def test_a_gamma_gamma_fit_the_data_cannot_support_is_a_clear_value_error(arrays: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_gamma_gamma(*arrays)


# --- Spark: the decile column and the value job -------------------------------------------------


def test_deciles_put_a_value_equal_to_a_threshold_in_the_lower_tenth(spark: SparkSession) -> None:
    thresholds = [float(j) for j in range(1, 10)]
    values = [None, 0.5, 1.0, 1.5, 2.0, 5.0, 9.0, 9.5]
    frame = spark.createDataFrame([(v,) for v in values], "clv double")
    got = [r[0] for r in frame.select(decile(F.col("clv"), thresholds)).collect()]
    assert got == [None, 10, 10, 9, 9, 6, 2, 1]


AS_OF = dt.date(2024, 12, 31)
FITTED = ("bgnbd_r", "bgnbd_alpha", "bgnbd_a", "bgnbd_b")
SPEND_FITTED = ("gg_p", "gg_q", "gg_gamma")


def profile_rows(n: int) -> list[tuple]:
    """customer_id, orders_lifetime, length_days, tenure_days, gross_spend_lifetime: n customers drawn from
    BG/NBD and Gamma-Gamma (spend with three significant digits, so the fit's spend groups are the
    customers' own means), then hand-made cases."""
    rng = np.random.default_rng(7)
    tenure = rng.integers(1, 731, n)
    x, t_x = simulate_bgnbd(n, (0.6, 4.0, 0.9, 2.5), tenure / 7.0, rng)
    length = np.floor(t_x * 7).astype(int)
    raw = rng.gamma(4.0, 12.0, n) + 10
    step = 10.0 ** (np.floor(np.log10(raw)) - 2)
    spend = np.round(raw / step) * step
    rows = [
        (f"C{i:04d}", int(x[i]) + 1, int(length[i]), int(tenure[i]), Decimal(f"{spend[i]:.2f}") * (int(x[i]) + 1))
        for i in range(n)
    ]
    return [
        *rows,
        ("ONE_NEW", 1, 0, 3, Decimal("25.00")),  # a single purchase 3 days ago: T = 0 weeks
        ("ONE_OLD", 1, 0, 400, Decimal("25.00")),  # a single purchase long ago: no repeat, P(alive) 1
        ("SAME_DAY", 3, 0, 100, Decimal("90.00")),  # three receipts on the first day: x = 2, t_x = 0
        ("THIRDS", 3, 30, 200, Decimal("100.00")),  # a mean spend of 33.33
        ("TIE_A", 5, 300, 500, Decimal("200.00")),  # two identical histories
        ("TIE_B", 5, 300, 500, Decimal("200.00")),
    ]


@pytest.fixture(scope="module")
def valued_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple], StageResult]:
    """A lake holding a gold/customer_profile partition of 600 customers (+ the hand-made ones), valued."""
    lake = tmp_path_factory.mktemp("value") / "lake"
    rows = profile_rows(600)
    frame = spark.createDataFrame(
        rows,
        "customer_id string, orders_lifetime bigint, length_days int, tenure_days int, "
        "gross_spend_lifetime decimal(18,2)",
    ).withColumn("as_of_date", F.lit(AS_OF))
    profile = with_catalog_columns(frame, "gold/customer_profile")
    config = load_config(None, [f"lake.root={lake}"])
    tables.replace_as_of(profile, config, "gold/customer_profile", AS_OF)
    result = value_job.run(Lake(spark, config, job="value"), as_of=AS_OF)  # the job's work, without the run log
    return lake, rows, result


def test_the_value_job_scores_every_customer_as_numpy_does_with_the_fitted_parameters(
    spark: SparkSession, valued_lake: tuple[Path, list[tuple], StageResult]
) -> None:
    lake, rows, _ = valued_lake
    table = spark.read.format("delta").load(f"{lake}/gold/customer_value")
    got = {r["customer_id"]: r for r in table.collect()}  # a test-sized table
    assert len(got) == len(rows)
    first = next(iter(got.values()))
    bgnbd = tuple(first[name] for name in FITTED)
    spend_params = tuple(first[name] for name in SPEND_FITTED)
    assert all(
        r["as_of_date"] == AS_OF and r["horizon_days"] == 365 and r["time_unit_days"] == 7.0 for r in got.values()
    )
    assert all(tuple(r[name] for name in FITTED + SPEND_FITTED) == bgnbd + spend_params for r in got.values())

    # the inputs, worked out here from the profile: x = orders - 1, weeks rounded half up, mean spend in cents
    ids = [row[0] for row in rows]
    x = np.array([row[1] - 1 for row in rows], dtype=float)
    t_x = np.floor(np.array([row[2] for row in rows]) / 7 + 0.5)
    T = np.floor(np.array([row[3] for row in rows]) / 7 + 0.5)
    spend = np.array([float((row[4] / row[1]).quantize(Decimal("0.01"))) for row in rows])
    assert [got[i]["frequency_repeat"] for i in ids] == x.tolist()
    assert [got[i]["recency_time"] for i in ids] == t_x.tolist()
    assert [got[i]["age_time"] for i in ids] == T.tolist()
    assert [float(got[i]["avg_spend_observed"]) for i in ids] == spend.tolist()

    # the parameters are the fits on the distinct histories (and spend groups) aggregated here
    triples, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    assert np.array(bgnbd) == pytest.approx(np.array(fit_bgnbd(*triples.T, counts)), rel=1e-6)
    repeat = x > 0
    pairs, pair_counts = np.unique(np.column_stack([x[repeat], spend[repeat]]), axis=0, return_counts=True)
    assert np.array(spend_params) == pytest.approx(np.array(fit_gamma_gamma(*pairs.T, pair_counts)), rel=1e-4)

    purchases = expected_purchases(bgnbd, 365 / 7, x, t_x, T)
    alive = probability_alive(bgnbd, x, t_x, T)
    avg_spend = expected_avg_spend(spend_params, x, spend)
    assert [got[i]["expected_purchases"] for i in ids] == pytest.approx(purchases.tolist(), rel=1e-9)
    assert [got[i]["probability_alive"] for i in ids] == pytest.approx(alive.tolist(), rel=1e-9)
    assert [got[i]["expected_avg_spend"] for i in ids] == pytest.approx(avg_spend.tolist(), rel=1e-9)
    clv = [float(got[i]["clv_amount"]) for i in ids]
    assert clv == pytest.approx((purchases * avg_spend).tolist(), abs=0.0051)

    p, q, gamma = spend_params
    for single in ("ONE_NEW", "ONE_OLD"):  # no repeat purchase: alive, the population's mean spend
        assert got[single]["probability_alive"] == 1.0
        assert got[single]["expected_avg_spend"] == pytest.approx(p * gamma / (q - 1), rel=1e-12)
    assert (got["ONE_NEW"]["age_time"], got["ONE_OLD"]["age_time"]) == (0, 57)
    assert got["ONE_NEW"]["expected_purchases"] > got["ONE_OLD"]["expected_purchases"]
    assert (got["SAME_DAY"]["frequency_repeat"], got["SAME_DAY"]["recency_time"]) == (2, 0)
    assert got["THIRDS"]["avg_spend_observed"] == Decimal("33.33")
    tie_a, tie_b = (got[i].asDict() for i in ("TIE_A", "TIE_B"))
    assert {k: v for k, v in tie_a.items() if k != "customer_id"} == {
        k: v for k, v in tie_b.items() if k != "customer_id"
    }

    # deciles: all ten, about a tenth each, and a higher CLV never in a lower-value decile
    deciles = [got[i]["clv_decile"] for i in ids]
    sizes = np.bincount(deciles, minlength=11)[1:]
    assert sorted(set(deciles)) == list(range(1, 11))
    assert sizes.min() >= 0.08 * len(ids) and sizes.max() <= 0.12 * len(ids), sizes
    by_value = sorted(zip(clv, deciles, strict=True))
    assert all(d1 >= d2 for (_, d1), (_, d2) in itertools.pairwise(by_value))


def test_the_value_job_reports_the_fit(spark: SparkSession, valued_lake: tuple[Path, list[tuple], StageResult]) -> None:
    lake, rows, result = valued_lake
    assert (result.rows_in, result.rows_out) == (len(rows), len(rows))
    details = result.details  # what ops/runs.details records
    table = spark.read.format("delta").load(f"{lake}/gold/customer_value")
    distinct = table.select("frequency_repeat", "recency_time", "age_time").distinct().count()
    assert details["distinct_triples"] == distinct < len(rows)
    first = table.first()
    assert details["bgnbd"] == {name: first[f"bgnbd_{name}"] for name in ("r", "alpha", "a", "b")}
    assert details["gamma_gamma"] == {name: first[f"gg_{name}"] for name in ("p", "q", "gamma")}
    assert details["population_clv"] == pytest.approx(float(table.agg(F.sum("clv_amount")).first()[0]), abs=0.01)
    assert len(details["decile_thresholds"]) == 9
    json.dumps(details)  # ops/runs stores it as JSON


def test_a_profile_without_repeat_buyers_stops_the_job_with_one_line() -> None:
    triples = [(0, 0, 10, 5), (0, 0, 20, 3)]  # x, t_x, T, customers
    with pytest.raises(UserError) as error:
        value_job.fit_models(triples, [], as_of=AS_OF)
    assert str(error.value) == (
        f"gold/customer_profile as of {AS_OF}: BG/NBD: no customer has a repeat purchase; "
        "purchase rates and dropout cannot be estimated"
    )
