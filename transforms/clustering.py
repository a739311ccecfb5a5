"""Clusters: Spark ML k-means on the customer profile, described, named, with stable ids.

Spark-side pieces build the ML ``Pipeline`` (prepare -> impute -> assemble -> scale ->
cluster), score customers and aggregate per-cluster figures. The rest is plain Python
on the handful of rows those aggregates collect: describing clusters against the
population, matching them to the previous run's clusters (minimum total distance,
Hungarian assignment) so ids stay stable, and generating readable unique names.

Preparation of each feature (one ``SQLTransformer``, built-in SQL only):

1. cast to double;
2. features in ``zero_fill`` (shares and rates, null when the customer has no purchase
   in the window) -> null becomes 0;
3. features in ``log_features`` -> ``signum(x) * log1p(|x|)``: ``log1p`` for the
   non-negative skewed features, and monotone and defined for a negative net
   ``monetary_amount`` too;
4. any null left (e.g. ``periodicity_days`` below three purchases, averages without a
   purchase in the window) -> the feature's median (``Imputer``, strategy median,
   computed on the transformed values).

Then ``VectorAssembler`` and ``StandardScaler(withMean=True, withStd=True)``: the
clustering space is the standardised prepared features.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.clustering import BisectingKMeans, KMeans
from pyspark.ml.feature import Imputer, SQLTransformer, StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# feature -> (word when the cluster is below the population, word when above).
FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "length_days": ("short-standing", "long-standing"),
    "recency_days": ("recent", "lapsed"),
    "recency_last_k_days": ("recently-active", "long-inactive"),
    "tenure_days": ("new", "veteran"),
    "frequency": ("infrequent", "frequent"),
    "monetary_amount": ("low-spend", "high-spend"),
    "periodicity_days": ("regular", "irregular"),
    "gross_spend_window": ("light-buying", "heavy-buying"),
    "avg_receipt_amount": ("small-ticket", "big-ticket"),
    "max_receipt_amount_window": ("no-splurge", "splurging"),
    "spend_trend_ratio": ("declining", "growing"),
    "avg_items_per_order": ("small-basket", "large-basket"),
    "avg_item_amount": ("budget", "premium"),
    "categories_window": ("narrow-range", "broad-range"),
    "store_order_share": ("rarely-in-store", "in-store"),
    "online_order_share": ("rarely-online", "online"),
    "app_order_share": ("rarely-app", "app"),
    "coupon_order_share": ("coupon-free", "coupon-driven"),
    "discount_share": ("full-price", "discount-seeking"),
    "return_rate_count": ("low-return", "high-return"),
    "return_rate_amount": ("low-return-value", "high-return-value"),
    "orders_lifetime": ("few-orders", "many-orders"),
    "net_amount_lifetime": ("low-lifetime-value", "high-lifetime-value"),
    "months_active_window": ("sporadic", "every-month"),
    "weekend_order_share": ("weekday", "weekend"),
}

FEATURES_COL = "features"
PREDICTION_COL = "prediction"


def prepared_name(feature: str) -> str:
    return f"prepared__{feature}"


def imputed_name(feature: str) -> str:
    return f"imputed__{feature}"


def preparation_sql(features: Sequence[str], *, log_features: Iterable[str], zero_fill: Iterable[str]) -> str:
    """The SQLTransformer statement: cast, zero-fill shares, signed log1p the skewed features."""
    logged, zeroed = set(log_features), set(zero_fill)
    expressions = []
    for name in features:
        value = f"CAST(`{name}` AS DOUBLE)"
        if name in zeroed:
            value = f"coalesce({value}, 0D)"
        if name in logged:
            value = f"signum({value}) * log1p(abs({value}))"
        expressions.append(f"{value} AS `{prepared_name(name)}`")
    return f"SELECT *, {', '.join(expressions)} FROM __THIS__"


def feature_pipeline(
    features: Sequence[str], *, log_features: Iterable[str] = (), zero_fill: Iterable[str] = (), center: bool = True
) -> Pipeline:
    """Prepare (SQL), impute medians, assemble, standardise -> column ``features``.

    ``center=False`` scales without subtracting the mean: the same geometry shifted (all
    distances equal). ``BisectingKMeans`` needs it: it splits a cluster by nudging its
    centre by 1e-4 x its norm, and the centre of mean-centred data is the zero vector, so
    the first split never happens and every customer lands in one cluster.
    """
    prepared = [prepared_name(f) for f in features]
    imputed = [imputed_name(f) for f in features]
    return Pipeline(
        stages=[
            SQLTransformer(statement=preparation_sql(features, log_features=log_features, zero_fill=zero_fill)),
            Imputer(inputCols=prepared, outputCols=imputed, strategy="median"),
            VectorAssembler(inputCols=imputed, outputCol="assembled", handleInvalid="error"),
            StandardScaler(inputCol="assembled", outputCol=FEATURES_COL, withMean=center, withStd=True),
        ]
    )


def with_fit_layout(vectors: DataFrame, partitions: int, *, key: str = "customer_id") -> DataFrame:
    """Rows hash-partitioned by ``key`` into ``partitions`` and sorted by it within each.

    k-means|| seeds its sampling per partition (``seed ^ partition index``) and walks the
    rows in order, and ``DataFrame.sample`` does the same: a round-robin ``repartition``
    keeps whatever order the upstream files and tasks gave, so the same customers on a
    cluster (other file layout, other shuffle fetch order) fitted other centres than on
    ``local[*]``. With this layout the fit depends only on the data and ``partitions``.
    """
    return vectors.repartition(partitions, key).sortWithinPartitions(key)


def non_finite(value: Column) -> Column:
    """True where the value, as a double, is NaN or infinite (null stays null: nulls are imputed)."""
    as_double = value.cast("double")
    return F.isnan(as_double) | (F.abs(as_double) == F.lit(float("inf")))


def clustering_estimator(
    algorithm: str, *, k: int, seed: int, max_iter: int = 20, tol: float = 1e-4, solver: str = "block"
) -> KMeans | BisectingKMeans:
    """``KMeans`` (k-means|| initialisation) or ``BisectingKMeans`` on the ``features`` column."""
    if algorithm == "kmeans":
        return KMeans(
            featuresCol=FEATURES_COL,
            predictionCol=PREDICTION_COL,
            k=k,
            seed=seed,
            maxIter=max_iter,
            tol=tol,
            initMode="k-means||",
            solver=solver,
        )
    if algorithm == "bisecting_kmeans":
        return BisectingKMeans(featuresCol=FEATURES_COL, predictionCol=PREDICTION_COL, k=k, seed=seed, maxIter=max_iter)
    raise ValueError(f"unknown clustering algorithm {algorithm} (kmeans, bisecting_kmeans)")


def cluster_id_stage(ids: dict[int, int]) -> SQLTransformer:
    """Final pipeline stage: Spark's cluster index -> the run's stable ``cluster_id``."""
    cases = " ".join(f"WHEN {index} THEN {cluster_id}" for index, cluster_id in sorted(ids.items()))
    cluster_id = f"CAST(CASE {PREDICTION_COL} {cases} END AS INT) AS cluster_id"
    return SQLTransformer(statement=f"SELECT *, {cluster_id} FROM __THIS__")


def scoring_model(prep: PipelineModel, model: Transformer, ids: dict[int, int]) -> PipelineModel:
    """The saved model: preparation stages, the fitted clustering model, the id mapping."""
    return PipelineModel(stages=[*prep.stages, model, cluster_id_stage(ids)])


def centroid_distance(centers: Sequence[Sequence[float]]) -> Column:
    """Euclidean distance from ``features`` to the centre of the row's ``prediction`` (standardised space)."""
    matrix = F.array(*[F.array(*[F.lit(float(x)) for x in center]) for center in centers])
    center = F.element_at(matrix, F.col(PREDICTION_COL) + 1)
    squares = F.zip_with(vector_to_array(F.col(FEATURES_COL)), center, lambda a, b: (a - b) * (a - b))
    return F.sqrt(F.aggregate(squares, F.lit(0.0), lambda total, x: total + x))


def to_clusters(
    scored: DataFrame, *, as_of: object, centers: Sequence[Sequence[float]], ids: dict[int, int], names: dict[int, str]
) -> DataFrame:
    """Grain: customer. ``scored`` has customer_id, features, prediction (Spark's cluster index)."""
    id_map = F.create_map(*[F.lit(v) for index, cid in sorted(ids.items()) for v in (index, cid)])
    name_map = F.create_map(*[F.lit(v) for cid, name in sorted(names.items()) for v in (cid, name)])
    cluster_id = F.element_at(id_map, F.col(PREDICTION_COL)).cast("int")
    return scored.select(
        F.lit(as_of).cast("date").alias("as_of_date"),
        "customer_id",
        cluster_id.alias("cluster_id"),
        F.element_at(name_map, cluster_id).alias("cluster_name"),
        centroid_distance(centers).alias("distance"),
    )


def to_cluster_stats(scored: DataFrame, features: Sequence[str], *, revenue: str = "monetary_amount") -> DataFrame:
    """Grain: Spark cluster index. customers, revenue (sum of ``revenue``), mean of each raw feature (nulls skipped)."""
    return scored.groupBy(PREDICTION_COL).agg(
        F.count("*").alias("customers"),
        F.sum(F.col(revenue).cast("double")).alias("revenue"),
        *[F.avg(F.col(f).cast("double")).alias(f"mean__{f}") for f in features],
    )


def to_population_stats(scored: DataFrame, features: Sequence[str], *, revenue: str = "monetary_amount") -> DataFrame:
    """One row: customers, revenue, mean and sample standard deviation of each raw feature."""
    return scored.agg(
        F.count("*").alias("customers"),
        F.sum(F.col(revenue).cast("double")).alias("revenue"),
        *[F.avg(F.col(f).cast("double")).alias(f"mean__{f}") for f in features],
        *[F.stddev(F.col(f).cast("double")).alias(f"std__{f}") for f in features],
    )


@dataclass
class Population:
    customers: int
    revenue: float | None
    means: dict[str, float | None]
    stds: dict[str, float | None]

    @classmethod
    def from_row(cls, row: Mapping[str, Any], features: Sequence[str]) -> Population:
        return cls(
            customers=int(row["customers"]),
            revenue=row["revenue"],
            means={f: row[f"mean__{f}"] for f in features},
            stds={f: row[f"std__{f}"] for f in features},
        )


@dataclass
class ClusterDescription:
    """One cluster of a run; ``index`` is Spark's cluster index, ``cluster_id`` the stable id."""

    index: int
    customers: int
    customer_share: float
    revenue_share: float | None
    feature_means: dict[str, float | None]
    z_scores: dict[str, float | None]
    top_features: list[str]
    cluster_id: int = -1
    match_distance: float | None = None
    name: str = ""
    name_source: str = "generated"
    notes: str | None = None


def z_score(mean: float | None, population_mean: float | None, population_std: float | None) -> float | None:
    """(mean - population mean) / population std; 0 when the population does not vary; null when unknown."""
    if mean is None or population_mean is None or population_std is None:
        return None
    if population_std == 0:
        return 0.0
    return (mean - population_mean) / population_std


def describe_clusters(
    stats: Iterable[Mapping[str, Any]], population: Population, features: Sequence[str], *, top_n: int = 3
) -> list[ClusterDescription]:
    """Size, shares, raw feature means and their z-scores, top features by |z| (ties: feature order)."""
    order = {f: i for i, f in enumerate(features)}
    described = []
    for row in stats:
        means = {f: row[f"mean__{f}"] for f in features}
        z = {f: z_score(means[f], population.means[f], population.stds[f]) for f in features}
        ranked = sorted((f for f in features if z[f] is not None), key=lambda f: (-abs(z[f] or 0.0), order[f]))
        revenue_share = None
        if population.revenue and row["revenue"] is not None:
            revenue_share = row["revenue"] / population.revenue
        described.append(
            ClusterDescription(
                index=int(row[PREDICTION_COL]),
                customers=int(row["customers"]),
                customer_share=int(row["customers"]) / population.customers,
                revenue_share=revenue_share,
                feature_means=means,
                z_scores=z,
                top_features=ranked[:top_n],
            )
        )
    return sorted(described, key=lambda d: d.index)


def choose_k(curve: Sequence[tuple[int, float | None, float]]) -> int:
    """The k with the highest silhouette (ties: the smaller k); curve rows are (k, silhouette, cost)."""
    scored = [(k, s) for k, s, _ in curve if s is not None and not math.isnan(s)]
    if not scored:
        raise ValueError("no k in the search gave a silhouette (every fit found a single cluster)")
    return max(scored, key=lambda ks: (ks[1], -ks[0]))[0]


# --- stable ids -------------------------------------------------------------------------


def min_cost_assignment(cost: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """Rows matched to columns at minimum total cost (Hungarian method, O(n^2 m)); min(n, m) pairs."""
    if not cost or not cost[0]:
        return []
    matrix = [list(map(float, row)) for row in cost]
    transposed = len(matrix) > len(matrix[0])
    if transposed:
        matrix = [list(column) for column in zip(*matrix, strict=True)]
    n, m = len(matrix), len(matrix[0])
    inf = float("inf")
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner, way = [0] * (m + 1), [0] * (m + 1)  # owner[j]: row (1-based) holding column j
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        min_slack, used = [inf] * (m + 1), [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = owner[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    slack = matrix[i0 - 1][j - 1] - u[i0] - v[j]
                    if slack < min_slack[j]:
                        min_slack[j], way[j] = slack, j0
                    if min_slack[j] < delta:
                        delta, j1 = min_slack[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    min_slack[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    pairs = [(owner[j] - 1, j - 1) for j in range(1, m + 1) if owner[j]]
    return sorted((c, r) for r, c in pairs) if transposed else sorted(pairs)


@dataclass
class PreviousCluster:
    cluster_id: int
    feature_means: dict[str, float | None] = field(default_factory=dict)


def centroid_distance_between(
    current: dict[str, float | None], previous: dict[str, float | None], stds: dict[str, float | None]
) -> float | None:
    """Euclidean distance of two raw-feature mean vectors, each feature divided by the population std.

    Uses the features both know with a positive std; null when there is none.
    """
    terms = [
        ((current[f] - previous[f]) / std) ** 2  # type: ignore[operator]
        for f, std in stds.items()
        if std and f in current and f in previous and current[f] is not None and previous[f] is not None
    ]
    return math.sqrt(sum(terms)) if terms else None


def assign_stable_ids(
    clusters: list[ClusterDescription],
    previous: Sequence[PreviousCluster],
    stds: dict[str, float | None],
    *,
    max_distance: float | None = None,
) -> None:
    """Give each cluster the id of its previous-run counterpart (minimum total distance) or a fresh id.

    Fresh ids continue after the largest previous id (1, 2, ... on a first run), in order of
    descending size then Spark index. ``match_distance`` is set for matched clusters.
    """
    unmatched = set(range(len(clusters)))
    if previous and clusters:
        distances = [
            [centroid_distance_between(c.feature_means, p.feature_means, stds) for p in previous] for c in clusters
        ]
        if any(d is not None for row in distances for d in row):
            cost = [[d if d is not None else 1e12 for d in row] for row in distances]
            for i, j in min_cost_assignment(cost):
                distance = distances[i][j]
                if distance is None or (max_distance is not None and distance > max_distance):
                    continue
                clusters[i].cluster_id, clusters[i].match_distance = previous[j].cluster_id, distance
                unmatched.discard(i)
    next_id = max((p.cluster_id for p in previous), default=0) + 1
    for i in sorted(unmatched, key=lambda i: (-clusters[i].customers, clusters[i].index)):
        clusters[i].cluster_id, clusters[i].match_distance = next_id, None
        next_id += 1


# --- names ------------------------------------------------------------------------------


def feature_word(feature: str, z: float) -> str:
    """The readable word for ``feature`` being above (z > 0) or below the population."""
    low, high = FEATURE_WORDS.get(feature, (f"low-{feature}", f"high-{feature}"))
    return high if z > 0 else low


def generate_names(
    clusters: Sequence[ClusterDescription],
    features: Sequence[str],
    *,
    words: int = 3,
    min_abs_z: float = 0.25,
    taken: Iterable[str] = (),
) -> dict[int, str]:
    """cluster_id -> a name from its most distinguishing features, unique within the run.

    A name holds up to ``words`` words, one per feature with |z| >= ``min_abs_z`` (strongest
    first, written in feature order: "recent frequent high-spend"); "average" when none is.
    Clusters whose names collide (with each other or with a ``taken`` analyst name) take one
    more word at a time while they have any; those still equal get " (cluster <id>)".
    """
    order = {f: i for i, f in enumerate(features)}
    taken = set(taken)
    ranked: dict[int, list[str]] = {}
    for c in clusters:
        strong = [f for f in features if c.z_scores.get(f) is not None and abs(c.z_scores[f] or 0.0) >= min_abs_z]
        ranked[c.cluster_id] = sorted(strong, key=lambda f: (-abs(c.z_scores[f] or 0.0), order[f]))
    z = {c.cluster_id: c.z_scores for c in clusters}
    used = {cid: min(words, len(r)) for cid, r in ranked.items()}

    def render(cid: int) -> str:
        chosen = sorted(ranked[cid][: used[cid]], key=order.__getitem__)
        return " ".join(feature_word(f, z[cid][f] or 0.0) for f in chosen) or "average"

    while True:
        names = {cid: render(cid) for cid in sorted(used)}
        counts = Counter(names.values())
        grew = False
        for cid, name in names.items():
            if (counts[name] > 1 or name in taken) and used[cid] < len(ranked[cid]):
                used[cid] += 1
                grew = True
        if not grew:
            break
    counts = Counter(names.values())
    return {
        cid: f"{name} (cluster {cid})" if counts[name] > 1 or name in taken else name for cid, name in names.items()
    }
