"""Customer lifetime value: BG/NBD purchases x Gamma-Gamma spend, fitted on sufficient statistics.

**Models.** BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") for
the number of future purchases: while alive a customer buys at Poisson rate
``lambda ~ Gamma(r, alpha)`` (shape r, rate alpha); after each repeat purchase they drop
out for good with probability ``p ~ Beta(a, b)``. A customer's history enters only
through ``x`` (repeat purchases), ``t_x`` (time of the last purchase since the first) and
``T`` (time from the first purchase to the as-of date). Gamma-Gamma (Fader, Hardie & Lee
2005, "RFM and CLV") for the spend per purchase: amounts are ``Gamma(p, nu)`` with
``nu ~ Gamma(q, gamma)`` across customers, independent of the purchase process.

**Why sufficient statistics.** The BG/NBD likelihood of a customer depends on
``(x, t_x, T)`` only, and with time in whole units (weeks by default) there are few
distinct triples: they are bounded by the history's length and the largest
frequency, not by the number of customers. Spark groups customers by triple
(:func:`to_clv_triples`) and only those rows, with their counts as ``weights``, reach the
driver, where the fit runs in vectorised numpy. Expected purchases and P(alive) also
depend on the triple only, so they are computed once per triple on the driver and
joined back to every customer (:func:`with_clv_scores`, a broadcast join). Gamma-Gamma
needs each customer's mean spend; it is bucketed to a few significant digits
(:func:`to_spend_buckets`) so that (x, spend) pairs stay few as well. No per-customer
row ever leaves Spark.

**Inputs from the profile** (:func:`to_clv_inputs`, ``gold/customer_profile`` columns):
purchases are receipts with a positive amount, so two receipts on one day are two
purchases (lifetimes' ``summary_data_from_transaction_data`` counts distinct days
instead); ``x = orders_lifetime - 1``, ``t_x = length_days`` and ``T = tenure_days`` in time
units rounded to whole units, and the spend per purchase is ``gross_spend_lifetime /
orders_lifetime``: the mean over every purchase including the first (the profile keeps
no separate first amount; lifetimes' convention leaves the first purchase out).

The numpy functions take plain arrays and floats (no Spark); the Spark functions build
DataFrames and run no action: collecting is the job's business.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1, psi

Array = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

# The fits search log-parameters in [-LOG_BOUND, LOG_BOUND] (e^-20 .. e^20). A parameter that ends
# beyond e^+-15 (3.3e6, 3e-7) is running off to infinity or 0: the likelihood keeps rising towards a
# limiting model (e.g. a -> 0: nobody drops out), so the data do not identify the parameter.
LOG_BOUND = 20.0
IDENTIFIED_LOG_BOUND = 15.0


class BgNbdParams(NamedTuple):
    """BG/NBD parameters: purchase rate ~ Gamma(r, alpha) (alpha in 1/time unit), dropout ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


class GammaGammaParams(NamedTuple):
    """Gamma-Gamma parameters: spend ~ Gamma(p, nu), nu ~ Gamma(q, gamma); mean spend p*gamma/(q-1)."""

    p: float
    q: float
    gamma: float


def _floats(values: ArrayLike) -> Array:
    return np.asarray(values, dtype=np.float64)


# --- BG/NBD ---------------------------------------------------------------------------------


def _bgnbd_terms(params: Sequence[float], x: Array, t_x: Array, T: Array) -> tuple[Array, Array, Array, Array]:
    """The log-likelihood's parts: ``A1 + A2`` and ``A3``, ``A4`` (``-inf`` when x = 0), and their log-sum."""
    r, alpha, a, b = params
    repeat = x > 0
    a12 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    # B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1); x = 0 has no second term (b + x - 1 may be <= 0 there)
    shifted = np.where(repeat, b + x - 1, 1.0)
    a4 = np.where(repeat, np.log(a) - np.log(shifted) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a12, a3, a4, np.logaddexp(a3, a4)


def bgnbd_log_likelihood(params: Sequence[float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Log-likelihood of each history ``(x, t_x, T)`` under BG/NBD ``params`` = (r, alpha, a, b).

    The log-sum form of lifetimes (A1..A4, combined with ``logaddexp``) keeps it finite
    where the likelihood's two terms under- or overflow on their own::

        L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
          + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))
    """
    x_, t_x_, T_ = _floats(x), _floats(t_x), _floats(T)
    a12, _, _, lse = _bgnbd_terms(params, x_, t_x_, T_)
    return np.asarray(a12 + lse, dtype=np.float64)


def _bgnbd_objective(log_params: Array, x: Array, t_x: Array, T: Array, weights: Array) -> tuple[float, Array]:
    """Mean negative log-likelihood per customer and its gradient in log-parameters.

    The analytic gradient (digammas, and the softmax weights of the A3/A4 log-sum) makes
    L-BFGS-B converge tightly in few evaluations; the mean keeps the scale independent of
    the number of customers, so one tolerance fits any lake.
    """
    r, alpha, a, b = np.exp(log_params)
    a12, a3, a4, lse = _bgnbd_terms((r, alpha, a, b), x, t_x, T)
    total = weights.sum()
    w3 = np.exp(a3 - lse)
    w4 = np.exp(a4 - lse)  # 0 where x = 0
    shifted = np.where(x > 0, b + x - 1, 1.0)
    d_r = psi(r + x) - psi(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
    d_a = psi(a + b) - psi(a + b + x) + w4 / a
    d_b = psi(a + b) + psi(b + x) - psi(b) - psi(a + b + x) - w4 / shifted
    gradient = np.array([(weights * d).sum() for d in (d_r, d_alpha, d_a, d_b)]) * np.array([r, alpha, a, b])
    return float(-(weights * (a12 + lse)).sum() / total), np.asarray(-gradient / total, dtype=np.float64)


def _checked_inputs(*columns: ArrayLike, weights: ArrayLike | None) -> tuple[list[Array], Array]:
    arrays = [_floats(c).ravel() for c in columns]
    if len({len(a) for a in arrays}) != 1:
        raise ValueError("the input arrays differ in length")
    w = np.ones_like(arrays[0]) if weights is None else _floats(weights).ravel()
    if len(w) != len(arrays[0]):
        raise ValueError("weights differ in length from the data")
    if not all(np.isfinite(a).all() for a in [*arrays, w]):
        raise ValueError("the inputs hold a NaN or infinite value")
    if (w < 0).any():
        raise ValueError("weights must be >= 0")
    keep = w > 0
    return [a[keep] for a in arrays], w[keep]


Objective = Callable[..., tuple[float, Array]]


def _minimise(
    objective: Objective, start: Array, arguments: tuple[Array, ...], what: str, names: Sequence[str]
) -> Array:
    """Minimise ``objective`` (value, gradient) over log-parameters: L-BFGS-B, then Nelder-Mead from
    where it stopped if it did not converge. A ValueError when a parameter runs off towards 0 or
    infinity (the data cannot identify it) or neither method converges."""
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    result = minimize(
        objective,
        start,
        args=arguments,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9},
    )
    theta = np.asarray(result.x, dtype=np.float64)
    converged = bool(result.success) and bool(np.isfinite(result.fun))
    if not converged and np.isfinite(theta).all():
        # L-BFGS-B also stops when a line search cannot improve the last digits: at the optimum, the
        # gradient is ~0 there
        _, gradient = objective(theta, *arguments)
        converged = bool(np.isfinite(gradient).all() and np.abs(gradient).max() < 1e-6)
    if not converged:

        def value_only(point: Array, *args: Array) -> float:
            value, _ = objective(point, *args)
            return float(value) if np.isfinite(value) else math.inf

        polished = minimize(
            value_only,
            theta if np.isfinite(theta).all() else start,
            args=arguments,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 1000 * len(start), "xatol": 1e-8, "fatol": 1e-12},
        )
        theta, converged = np.asarray(polished.x, dtype=np.float64), bool(polished.success)
    off = [
        f"{name} ran to {'infinity' if value > 0 else '0'} ({math.exp(value):.3g})"
        for name, value in zip(names, theta, strict=True)
        if abs(value) >= IDENTIFIED_LOG_BOUND
    ]
    if off:
        raise ValueError(f"{what}: the data cannot identify the model: {', '.join(off)}")
    if not converged:
        raise ValueError(f"{what}: the fit did not converge")
    return theta


def fit_bgnbd(x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters (r, alpha, a, b) from histories and their counts.

    ``weights[i]`` is the number of customers with history ``(x[i], t_x[i], T[i])``, so the
    input is the distinct triples, however many customers share each. The fit runs on
    log-parameters (positive by construction) with L-BFGS-B and the analytic gradient,
    started at r = 1, a = b = 1 and alpha = r / (repeat purchases per time unit). A
    ValueError says why when the data cannot identify the model (no customer, no
    repeat purchase, no observed time) or the fit does not converge.
    """
    (x_, t_x_, T_), w = _checked_inputs(x, t_x, T, weights=weights)
    if len(w) == 0:
        raise ValueError("BG/NBD: no customers to fit")
    if (x_ < 0).any() or (t_x_ < 0).any() or (t_x_ > T_).any():
        raise ValueError("BG/NBD: every history needs x >= 0 and 0 <= t_x <= T")
    if (x_ != np.round(x_)).any():
        raise ValueError("BG/NBD: x must be whole purchase counts")
    if not (w * (x_ > 0)).any():
        raise ValueError("BG/NBD: no customer has a repeat purchase; purchase rates and dropout cannot be estimated")
    if not (w * T_).sum() > 0:
        raise ValueError("BG/NBD: every customer's first purchase is on the as-of date (T = 0): nothing observed")
    rate = (w * x_).sum() / (w * T_).sum()
    start = np.log(np.array([1.0, 1.0 / rate if rate > 0 else 1.0, 1.0, 1.0]))
    theta = _minimise(_bgnbd_objective, start, (x_, t_x_, T_, w), "BG/NBD", ("r", "alpha", "a", "b"))
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    return BgNbdParams(r, alpha, a, b)


def expected_purchases(params: Sequence[float], t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Expected purchases in the next ``t`` time units of a customer with history (x, t_x, T).

    FHL 2005 eq. (10)::

        E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
                               * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
                              / (1 + [x > 0] a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x))

    The Gauss hypergeometric function overflows for large x as its argument nears 1;
    there Euler's transformation ``2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A,C-B;C;z)`` gives
    the same value in finite numbers (as lifetimes does).
    """
    r, alpha, a, b = params
    x_, t_x_, T_ = _floats(x), _floats(t_x), _floats(T)
    big_a, big_b, big_c = r + x_, b + x_, a + b + x_ - 1
    z = t / (alpha + T_ + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_hyp = np.log(hyp2f1(big_a, big_b, big_c, z))
        euler = np.log(hyp2f1(big_c - big_a, big_c - big_b, big_c, z)) + (big_c - big_a - big_b) * np.log1p(-z)
        log_hyp = np.where(np.isfinite(log_hyp), log_hyp, euler)
        numerator = (a + b + x_ - 1) / (a - 1) * -np.expm1(log_hyp + (r + x_) * np.log((alpha + T_) / (alpha + T_ + t)))
        odds = np.where(x_ > 0, 1.0 + np.exp(_log_dropout_odds(params, x_, t_x_, T_)), 1.0)  # 1 / P(alive)
    return np.asarray(numerator / odds, dtype=np.float64)


def _log_dropout_odds(params: Sequence[float], x: Array, t_x: Array, T: Array) -> Array:
    """log of a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x): the odds of having dropped out after the last
    purchase against being alive (x > 0; 0 where x = 0, which is never used)."""
    r, alpha, a, b = params
    shifted = np.where(x > 0, b + x - 1, 1.0)
    return np.asarray(np.log(a / shifted) + (r + x) * np.log((alpha + T) / (alpha + t_x)), dtype=np.float64)


def probability_alive(params: Sequence[float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """P(still alive at T | x, t_x, T) (Fader, Hardie & Lee, note 021): 1 for x = 0, who cannot
    have dropped out (dropout happens right after a repeat purchase)."""
    x_, t_x_, T_ = _floats(x), _floats(t_x), _floats(T)
    return np.asarray(np.where(x_ > 0, expit(-_log_dropout_odds(params, x_, t_x_, T_)), 1.0), dtype=np.float64)


# --- Gamma-Gamma ------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params: Sequence[float], x: ArrayLike, m_x: ArrayLike) -> Array:
    """Log-likelihood of each customer's mean spend ``m_x`` over ``x`` purchases (x > 0).

    The mean of x Gamma(p, nu) amounts is Gamma(px, nu x); integrating nu ~ Gamma(q, gamma)::

        f(m_x | x) = G(px+q) / (G(px) G(q)) * gamma^q x^(px) m_x^(px-1) / (gamma + x m_x)^(px+q)
    """
    p, q, gamma = params
    x_, m_ = _floats(x), _floats(m_x)
    value = (
        gammaln(p * x_ + q)
        - gammaln(p * x_)
        - gammaln(q)
        + q * np.log(gamma)
        + (p * x_ - 1) * np.log(m_)
        + p * x_ * np.log(x_)
        - (p * x_ + q) * np.log(x_ * m_ + gamma)
    )
    return np.asarray(value, dtype=np.float64)


def _gamma_gamma_objective(log_params: Array, x: Array, m: Array, weights: Array) -> tuple[float, Array]:
    """Mean negative log-likelihood and its gradient in log-parameters."""
    p, q, gamma = np.exp(log_params)
    ll = gamma_gamma_log_likelihood((p, q, gamma), x, m)
    total = weights.sum()
    d_p = x * (psi(p * x + q) - psi(p * x) + np.log(m) + np.log(x) - np.log(x * m + gamma))
    d_q = psi(p * x + q) - psi(q) + np.log(gamma) - np.log(x * m + gamma)
    d_gamma = q / gamma - (p * x + q) / (x * m + gamma)
    gradient = np.array([(weights * d).sum() for d in (d_p, d_q, d_gamma)]) * np.array([p, q, gamma])
    return float(-(weights * ll).sum() / total), np.asarray(-gradient / total, dtype=np.float64)


def fit_gamma_gamma(x: ArrayLike, m_x: ArrayLike, weights: ArrayLike | None = None) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters (p, q, gamma) on customers with x > 0.

    ``m_x`` is the customer's mean spend per purchase over ``x`` purchases, ``weights`` the
    customers per (x, m_x) pair. Rows with x = 0 are left out (they carry no spend
    information in this model). q must end above 1, else the population's mean spend
    ``p*gamma/(q-1)`` does not exist: that, too few customers, or no convergence is a
    ValueError.
    """
    (x_, m_), w = _checked_inputs(x, m_x, weights=weights)
    repeat = x_ > 0
    x_, m_, w = x_[repeat], m_[repeat], w[repeat]
    if len(w) == 0:
        raise ValueError("Gamma-Gamma: no customer has a repeat purchase to fit the spend on")
    if (m_ <= 0).any():
        raise ValueError("Gamma-Gamma: the mean spend must be positive")
    if len(np.unique(m_)) < 2:
        raise ValueError("Gamma-Gamma: every customer has the same mean spend; the spread cannot be estimated")
    mean_spend = float((w * m_).sum() / w.sum())
    start = np.log(np.array([1.0, 2.0, mean_spend]))  # population mean p*gamma/(q-1) = the observed mean
    theta = _minimise(_gamma_gamma_objective, start, (x_, m_, w), "Gamma-Gamma", ("p", "q", "gamma"))
    p, q, gamma = (float(v) for v in np.exp(theta))
    if q <= 1:
        raise ValueError(f"Gamma-Gamma: q = {q:.4g} <= 1: the spend's population mean does not exist")
    return GammaGammaParams(p, q, gamma)


def expected_avg_spend(params: Sequence[float], x: ArrayLike, m_x: ArrayLike) -> Array:
    """E[spend per purchase | x, m_x] = (gamma + m_x x) p / (p x + q - 1): the observed mean
    shrunk towards the population's ``p gamma / (q - 1)`` (all of it for x = 0)."""
    p, q, gamma = params
    x_, m_ = _floats(x), _floats(m_x)
    observed = (gamma + m_ * x_) * p / (p * x_ + q - 1)
    return np.asarray(np.where(x_ > 0, observed, p * gamma / (q - 1)), dtype=np.float64)


# --- Spark ---------------------------------------------------------------------------------

PROFILE_COLUMNS = ("customer_id", "orders_lifetime", "length_days", "tenure_days", "gross_spend_lifetime")
TRIPLE = ("x", "t_x", "T")


def to_clv_inputs(profile: DataFrame, *, time_unit_days: float = 7.0) -> DataFrame:
    """One row per customer: ``customer_id, x, t_x, T, monetary`` from ``gold/customer_profile``.

    ``x = orders_lifetime - 1`` repeat purchases (receipts with a positive amount; same-day
    receipts count separately); ``t_x = length_days`` (first to last purchase date) and
    ``T = tenure_days`` (first purchase date to the as-of date) divided by ``time_unit_days``
    and rounded half up to whole units, so that t_x <= T still holds and distinct triples
    stay few; ``monetary = gross_spend_lifetime / orders_lifetime`` rounded to cents, the
    mean over all purchases including the first (the profile has no separate first amount).
    """
    if time_unit_days <= 0:
        raise ValueError("time_unit_days must be positive")
    unit = float(time_unit_days)
    return profile.select(
        "customer_id",
        (F.col("orders_lifetime") - 1).cast("bigint").alias("x"),
        F.round(F.col("length_days") / F.lit(unit)).cast("int").alias("t_x"),
        F.round(F.col("tenure_days") / F.lit(unit)).cast("int").alias("T"),
        F.round(F.col("gross_spend_lifetime") / F.col("orders_lifetime"), 2).cast("decimal(18,2)").alias("monetary"),
    )


def to_clv_triples(inputs: DataFrame) -> DataFrame:
    """``x, t_x, T, customers``: the distinct histories and how many customers have each (the
    BG/NBD fit's whole input)."""
    return inputs.groupBy(*TRIPLE).agg(F.count(F.lit(1)).alias("customers"))


def significant(value: Column, digits: int) -> Column:
    """``value`` (> 0) rounded to ``digits`` significant digits, as a double (null for <= 0)."""
    if digits < 1:
        raise ValueError("digits must be at least 1")
    number = value.cast("double")
    step = F.pow(F.lit(10.0), F.floor(F.log10(number)) - F.lit(digits - 1))
    return F.when(number > 0, F.round(number / step) * step)


def to_spend_buckets(inputs: DataFrame, *, significant_digits: int = 3) -> DataFrame:
    """``x, monetary, customers`` for the Gamma-Gamma fit: customers with x > 0, their mean spend
    rounded to ``significant_digits`` (3: within 0.5%), so that the pairs stay few."""
    return (
        inputs.where(F.col("x") > 0)
        .select("x", significant(F.col("monetary"), significant_digits).alias("monetary"))
        .where(F.col("monetary").isNotNull())
        .groupBy("x", "monetary")
        .agg(F.count(F.lit(1)).alias("customers"))
    )


def expected_avg_spend_column(params: Sequence[float], x: Column, monetary: Column) -> Column:
    """:func:`expected_avg_spend` as a Spark column (double)."""
    p, q, gamma = (float(v) for v in params)
    x_, m_ = x.cast("double"), monetary.cast("double")
    observed = (F.lit(gamma) + m_ * x_) * F.lit(p) / (F.lit(p) * x_ + F.lit(q - 1))
    return F.when(x_ > 0, observed).otherwise(F.lit(p * gamma / (q - 1)))


def with_clv_scores(inputs: DataFrame, triple_scores: DataFrame, spend: Sequence[float]) -> DataFrame:
    """``inputs`` plus ``expected_purchases``, ``probability_alive`` (from ``triple_scores``, one row per
    triple, joined by broadcast), ``expected_avg_spend`` (Gamma-Gamma ``spend`` parameters) and
    ``clv_amount`` = expected purchases x expected spend (undiscounted), in Spark columns."""
    scored = inputs.join(F.broadcast(triple_scores), list(TRIPLE), "left")
    avg_spend = expected_avg_spend_column(spend, F.col("x"), F.col("monetary"))
    return scored.withColumns(
        {
            "expected_avg_spend": avg_spend,
            "clv_amount": F.col("expected_purchases") * avg_spend,
        }
    )


def decile(value: Column, thresholds: Sequence[float]) -> Column:
    """Decile 1..len(thresholds)+1, 1 = the highest values.

    ``thresholds`` are the ascending j/n quantiles; as for RFM tiles (DESIGN), ascending tile
    i holds (t_(i-1), t_i], so a value equal to a threshold sits in the lower tile, ties
    share a tile, and the decile is n + 1 - i. Null stays null.
    """
    above: Column = F.lit(0)
    for threshold in thresholds:
        above = above + F.when(value > F.lit(float(threshold)), 1).otherwise(0)
    return F.when(value.isNotNull(), F.lit(len(thresholds) + 1) - above).cast("int")
