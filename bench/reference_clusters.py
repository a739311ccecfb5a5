"""The ``clusters`` job's work done by scikit-learn on one machine, for ``make bench``.

The same steps as ``jobs/clusters.py``, written with numpy and scikit-learn from the
job's definition (README, conf/local.yaml), not from the Spark code:

1. prepare: nulls of the zero-fill shares -> 0, signed log1p of the skewed features;
2. impute the remaining nulls with each column's median, standardise (mean 0, std 1);
3. sample ``sample_rows`` customers; for each k in k_min..k_max fit k-means (k-means++,
   one init, the same iteration cap) on the sample and score it by ``silhouette_score``
   with its default Euclidean distance (Spark's ``ClusteringEvaluator`` uses squared
   Euclidean; scikit-learn's squared Euclidean costs about the same: 6.6 s against
   5.9 s on a 20k sample, so the timing holds for either, but the chosen k may differ);
   the best silhouette wins, ties to the smaller k;
4. fit k-means on every customer with that k.

What the accelerators do when they pull the scores into pandas; the timing starts from
the feature columns in memory (loading them is not counted).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler


@dataclass
class SklearnClusters:
    """What the scikit-learn job found, and how long each step took (seconds)."""

    k: int
    curve: list[tuple[int, float]]  # (k, silhouette on the sample)
    matrix: np.ndarray  # the standardised customers x features
    seconds: dict[str, float] = field(default_factory=dict)
    silhouette_seconds: float = 0.0  # of seconds["k search"]

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def kmeans(k: int, *, max_iter: int, seed: int) -> KMeans:
    """scikit-learn's k-means as the bench runs it: k-means++, one init, the job's iteration cap."""
    return KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=max_iter, random_state=seed)


def standardised(
    raw: np.ndarray, features: Sequence[str], *, log_features: Sequence[str], zero_fill: Sequence[str]
) -> np.ndarray:
    """Steps 1-2: the prepared, median-imputed, standardised matrix (raw: NaN for null)."""
    matrix = raw.astype(np.float64, copy=True)
    for j, name in enumerate(features):
        column = matrix[:, j]
        if name in zero_fill:
            column[np.isnan(column)] = 0.0
        if name in log_features:
            matrix[:, j] = np.sign(column) * np.log1p(np.abs(column))
    imputed = SimpleImputer(strategy="median").fit_transform(matrix)
    return StandardScaler().fit_transform(imputed)


def sklearn_clusters(
    raw: np.ndarray,
    features: Sequence[str],
    *,
    log_features: Sequence[str],
    zero_fill: Sequence[str],
    k_min: int,
    k_max: int,
    sample_rows: int,
    max_iter: int,
    seed: int,
) -> SklearnClusters:
    """Steps 1-4 on ``raw`` (customers x features), timed step by step."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    matrix = standardised(raw, features, log_features=log_features, zero_fill=zero_fill)
    seconds["prepare"] = time.perf_counter() - started

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    sample = matrix[rng.choice(len(matrix), size=min(sample_rows, len(matrix)), replace=False)]
    curve: list[tuple[int, float]] = []
    silhouette_seconds = 0.0
    for k in range(k_min, k_max + 1):
        labels = kmeans(k, max_iter=max_iter, seed=seed).fit_predict(sample)
        scored = time.perf_counter()
        curve.append((k, float(silhouette_score(sample, labels))))
        silhouette_seconds += time.perf_counter() - scored
    best = max(curve, key=lambda ks: (ks[1], -ks[0]))[0]
    seconds["k search"] = time.perf_counter() - started

    started = time.perf_counter()
    kmeans(best, max_iter=max_iter, seed=seed).fit(matrix)
    seconds["final fit"] = time.perf_counter() - started
    return SklearnClusters(best, curve, matrix, seconds, silhouette_seconds)


def fit_at(matrix: np.ndarray, k: int, *, max_iter: int, seed: int) -> tuple[float, int, float]:
    """WSSSE, iterations and seconds of scikit-learn's k-means on ``matrix`` at ``k`` (a like-for-like fit)."""
    started = time.perf_counter()
    fitted = kmeans(k, max_iter=max_iter, seed=seed).fit(matrix)
    return float(fitted.inertia_), int(fitted.n_iter_), time.perf_counter() - started
