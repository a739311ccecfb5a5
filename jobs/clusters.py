"""``clusters``: gold/customer_profile -> gold/clusters, gold/cluster_profiles, models/clusters/<as_of>.

    seglake clusters --as-of 2024-12-31              # k by silhouette over clusters.k_min..k_max
    seglake clusters --set clusters.k=6              # fixed k, no search

Spark ML ``KMeans`` (or ``BisectingKMeans``) on the profile features of one as-of date
(default: the latest in the profile), prepared, imputed and standardised by one
``Pipeline`` (transforms/clustering.py). The k search fits on a sample of
``clusters.sample_rows`` customers and records silhouette and training cost per k in
``ops/runs``; the final fit (``KMeans.fit``, public Spark ML only) runs on every
customer with the chosen k. Cluster ids are
matched to the clusters of the nearest earlier as-of date already in
``gold/cluster_profiles`` (else the nearest later one), so an id keeps meaning the same
group; analyst labels (``clusters.labels_file``) override the generated names.
The fitted pipeline (including the stable-id mapping) is saved under
``<lake>/models/clusters/<as_of>/``; both tables replace their ``as_of_date`` partition.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: spark-submit jobs/clusters.py
    import _bootstrap  # noqa: F401

from pyspark.ml.clustering import BisectingKMeans, BisectingKMeansModel, KMeans, KMeansModel
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seglake import catalog, defaults, tables
from seglake.config import ClustersConfig, read_yaml_dict
from seglake.defaults import Traversable
from seglake.errors import UserError
from seglake.job import Job, StageResult, job_log, run_job
from seglake.lake import Lake
from transforms.clustering import (
    FEATURES_COL,
    PREDICTION_COL,
    ClusterDescription,
    Population,
    PreviousCluster,
    assign_stable_ids,
    choose_k,
    clustering_estimator,
    describe_clusters,
    feature_pipeline,
    generate_names,
    non_finite,
    scoring_model,
    to_cluster_stats,
    to_clusters,
    to_population_stats,
    with_fit_layout,
)

ROWS_PER_PARTITION = 500_000
log = job_log("clusters")


@dataclass
class ClusterLabel:
    name: str
    notes: str | None = None


def labels_path(setting: str) -> Path | Traversable:
    """A relative ``clusters.labels_file`` is looked up in the working folder, then among the shipped
    ``conf/`` files (:func:`seglake.defaults.find`)."""
    return defaults.find(setting)


def load_labels(setting: str) -> tuple[dict[int, ClusterLabel], str]:
    """Analyst labels ``{cluster id: {name, notes}}`` (or ``id: name``); a missing file means none."""
    path = labels_path(setting)
    shown = defaults.shown(path)
    if not path.is_file():
        return {}, shown
    data = read_yaml_dict(path, shown, UserError)
    labels: dict[int, ClusterLabel] = {}
    for key, value in data.items():
        try:
            cluster_id = int(str(key))
        except ValueError:
            raise UserError(f"{shown}: {key}: expected a cluster id (a whole number)") from None
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise UserError(f"{shown}: {key}: expected a name or a mapping with name and notes")
        unknown = sorted(set(value) - {"name", "notes"})
        if unknown:
            raise UserError(f"{shown}: {key}.{unknown[0]}: unknown key (name, notes)")
        name, notes = value.get("name"), value.get("notes")
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"{shown}: {key}.name: expected a non-empty name")
        if notes is not None and not isinstance(notes, str):
            raise UserError(f"{shown}: {key}.notes: expected text")
        labels[cluster_id] = ClusterLabel(name.strip(), notes)
    return labels, shown


def previous_clusters(lake: Lake, as_of: dt.date) -> tuple[list[PreviousCluster], dt.date | None]:
    """Clusters of the nearest earlier as-of date in gold/cluster_profiles, else the nearest later one."""
    if not lake.exists("gold/cluster_profiles"):
        return [], None
    profiles = lake.read("gold/cluster_profiles")
    dates = [r[0] for r in profiles.select("as_of_date").distinct().collect() if r[0] != as_of]
    earlier = [d for d in dates if d < as_of]
    reference = max(earlier) if earlier else min(dates, default=None)
    if reference is None:
        return [], None
    rows = profiles.where(F.col("as_of_date") == F.lit(reference)).select("cluster_id", "feature_means").collect()
    return [PreviousCluster(r["cluster_id"], dict(r["feature_means"] or {})) for r in rows], reference


def partitions_for(spark: SparkSession, rows: int) -> int:
    """One task per core at least, more only for partitions beyond ROWS_PER_PARTITION rows."""
    return max(spark.sparkContext.defaultParallelism, math.ceil(rows / ROWS_PER_PARTITION))


def estimator_for(k: int, cfg: ClustersConfig) -> KMeans | BisectingKMeans:
    """``clusters.algorithm`` with ``k`` clusters and the configured seed, iteration cap, tolerance and solver."""
    return clustering_estimator(
        cfg.algorithm, k=k, seed=cfg.seed, max_iter=cfg.max_iter, tol=cfg.tol, solver=cfg.solver
    )


@dataclass(frozen=True)
class FinalFit:
    """The k-means (or bisecting k-means) model fitted on every customer, with its summary's figures."""

    model: KMeansModel | BisectingKMeansModel
    iterations: int
    training_cost: float


def final_fit(vectors: DataFrame, k: int, cfg: ClustersConfig) -> FinalFit:
    """``clusters.algorithm`` with ``k`` clusters on every row's ``features`` (public Spark ML API).

    ``KMeans.fit`` runs k-means|| (``initSteps`` sampling passes) and then Lloyd's passes
    until every centre moves less than ``clusters.tol``. Its training cost is the WSSSE
    against the centres it returns.
    """
    model = estimator_for(k, cfg).fit(vectors.select(FEATURES_COL))
    summary = model.summary
    return FinalFit(model, int(summary.numIter), float(summary.trainingCost))


def sample_vectors(vectors: DataFrame, rows: int, cfg: ClustersConfig) -> DataFrame:
    """About ``clusters.sample_rows`` customers' vectors (all of them when fewer), cached."""
    fraction = min(1.0, cfg.sample_rows / rows)
    sample = vectors.select(FEATURES_COL)
    if fraction < 1.0:
        sample = sample.sample(fraction=fraction, seed=cfg.seed)
    return sample.cache()


def search_k(sample: DataFrame, cfg: ClustersConfig) -> tuple[int, list[dict[str, Any]]]:
    """Silhouette and training cost for each k in k_min..k_max on the cached sample; (best k, curve)."""
    evaluator = ClusteringEvaluator(featuresCol=FEATURES_COL, predictionCol=PREDICTION_COL)
    curve: list[dict[str, Any]] = []
    for k in range(cfg.k_min, cfg.k_max + 1):
        started = time.perf_counter()
        model = estimator_for(k, cfg).fit(sample)
        found = sum(1 for size in model.summary.clusterSizes if size > 0)
        silhouette = evaluator.evaluate(model.transform(sample)) if found > 1 else None
        cost = float(model.summary.trainingCost)
        curve.append({"k": k, "silhouette": silhouette, "cost": cost, "clusters_found": found})
        shown = "n/a" if silhouette is None else f"{silhouette:.4f}"
        log.info(
            f"k search: k={k} silhouette {shown}, cost {cost:,.1f} "
            f"({found} clusters, {time.perf_counter() - started:.1f}s)"
        )
    best = choose_k([(c["k"], c["silhouette"], c["cost"]) for c in curve])
    return best, curve


def checked_rows(profile: DataFrame, features: list[str], cfg: ClustersConfig, as_of: dt.date) -> int:
    """Customers in ``profile``, after the checks that stop the job before anything is written."""
    counts = tables.first_row(
        profile.agg(
            F.count("*").alias("__rows"),
            *[F.count(f).alias(f) for f in features],
            *[F.count(F.when(non_finite(F.col(f)), True)).alias(f"__non_finite_{f}") for f in features],
        )
    )
    rows = int(counts["__rows"])
    needed, why = (cfg.k, "clusters.k") if cfg.k else (cfg.k_max, "clusters.k_max of the k search")
    if rows < max(needed, 2):
        raise UserError(
            f"gold/customer_profile as of {as_of} has {rows} customer(s): too few for "
            f"k = {needed} ({why}); lower it or pick another --as-of"
        )
    empty = [f for f in features if counts[f] == 0 and f not in cfg.zero_fill]
    if empty:
        raise UserError(
            f"feature {empty[0]} is null for every customer as of {as_of}: nothing to impute from "
            "(drop it from clusters.features / clusters.sections)"
        )
    broken = [f for f in features if counts[f"__non_finite_{f}"]]
    if broken:
        raise UserError(
            f"gold/customer_profile as of {as_of}: feature {broken[0]} is NaN or infinite for "
            f"{counts[f'__non_finite_{broken[0]}']:,} customer(s); fix the profile or drop the feature "
            "from clusters.features / clusters.sections"
        )
    return rows


def run(lake: Lake, *, as_of: dt.date) -> StageResult:
    """k-means on the ``as_of`` profile; replace that date's gold/clusters and gold/cluster_profiles."""
    job_started = time.perf_counter()
    spark, cfg = lake.spark, lake.config.clusters
    features = cfg.feature_columns
    labels, labels_shown = load_labels(cfg.labels_file)
    log.info(
        f"analyst labels: {len(labels)} from {labels_shown}" if labels else f"analyst labels: none ({labels_shown})"
    )
    profile = lake.read("gold/customer_profile", hint="run `seglake features` first")
    missing = [c for c in ["customer_id", "monetary_amount", *features] if c not in profile.columns]
    if missing:
        raise UserError(
            f"gold/customer_profile has no column {', '.join(missing)} "
            "(set clusters.features or clusters.sections to columns it has)"
        )
    columns = list(dict.fromkeys(["customer_id", "monetary_amount", *features]))
    # cached: the checks, the imputer's and the scaler's fits and the transform read Delta once
    profile = profile.where(F.col("as_of_date") == F.lit(as_of)).select(*columns).cache()
    try:
        rows = checked_rows(profile, features, cfg, as_of)
        seconds: dict[str, float] = {"read_and_check": time.perf_counter() - job_started}
        started = time.perf_counter()
        prep = feature_pipeline(
            features, log_features=cfg.log_features, zero_fill=cfg.zero_fill, center=cfg.algorithm == "kmeans"
        ).fit(profile)
        partitions = partitions_for(spark, rows)
        vectors = with_fit_layout(prep.transform(profile).select(*columns, FEATURES_COL), partitions).cache()
        try:
            vectors.count()
        except BaseException:
            vectors.unpersist()
            raise
    finally:
        profile.unpersist()
    try:
        log.info(
            f"{rows:,} customers x {len(features)} features as of {as_of}, prepared and standardised "
            f"({partitions} partitions, {time.perf_counter() - started:.1f}s)"
        )
        seconds["prepare"] = time.perf_counter() - started
        curve: list[dict[str, Any]] = []
        k, sample_rows = cfg.k or 0, 0
        if not cfg.k:
            started = time.perf_counter()
            sample = sample_vectors(vectors, rows, cfg)
            try:
                sample_rows = sample.count()
                k, curve = search_k(sample, cfg)
            finally:
                sample.unpersist()
            seconds["k_search"] = time.perf_counter() - started
            log.info(
                f"k search on {sample_rows:,} sampled customers: best silhouette at k = {k} "
                f"({seconds['k_search']:.1f}s)"
            )
        started = time.perf_counter()
        fitted = final_fit(vectors, k, cfg)
        model, cost, iterations = fitted.model, fitted.training_cost, fitted.iterations
        seconds["final_fit"] = time.perf_counter() - started
        log.info(f"final fit on all {rows:,} customers: {seconds['final_fit']:.1f}s, {iterations} iterations")
        started = time.perf_counter()
        centers = [list(map(float, c)) for c in model.clusterCenters()]
        scored = model.transform(vectors)
        stats = [r.asDict() for r in to_cluster_stats(scored, features).collect()]
        population = Population.from_row(tables.first_row(to_population_stats(vectors, features)).asDict(), features)
        if len(stats) < k:
            log.info(
                f"warning: {cfg.algorithm} returned {len(stats)} non-empty clusters for k = {k} "
                "(too few distinct customers, or bisecting stopped early)"
            )
        described = describe_clusters(stats, population, features, top_n=cfg.top_features)
        previous, reference = previous_clusters(lake, as_of)
        assign_stable_ids(described, previous, population.stds, max_distance=cfg.max_match_distance)
        unknown_labels = name_clusters(described, features, labels, cfg)
        for cluster_id in unknown_labels:
            log.info(
                f"warning: {labels_shown} labels cluster {cluster_id} ({labels[cluster_id].name!r}), "
                "which does not exist in this run"
            )
        matched = [d for d in described if d.match_distance is not None]
        log.info(
            f"{len(described)} clusters, {iterations} iterations, cost {cost:,.1f}; "
            "ids matched to "
            + (f"{reference} ({len(matched)} of {len(previous)})" if reference else "nothing (first run)")
        )
        for d in sorted(described, key=lambda d: d.cluster_id):
            log.info(
                f"  cluster {d.cluster_id}: {d.name!r} {d.customers:,} customers ({d.customer_share:.1%}), "
                f"top {', '.join(d.top_features)}"
            )

        ids = {d.index: d.cluster_id for d in described}
        names = {d.cluster_id: d.name for d in described}
        model_path = f"{tables.lake_root(lake.config)}/models/clusters/{as_of.isoformat()}"
        scoring_model(prep, model, ids).write().overwrite().save(model_path)

        assigned = to_clusters(scored, as_of=as_of, centers=centers, ids=ids, names=names)
        rows_out = lake.replace_as_of(assigned, "gold/clusters", as_of)
        profiles = spark.createDataFrame(
            [profile_row(as_of, d) for d in described], catalog.table("gold/cluster_profiles").ddl
        )
        lake.replace_as_of(profiles.coalesce(1), "gold/cluster_profiles", as_of)
        seconds["describe_and_write"] = time.perf_counter() - started
    finally:
        vectors.unpersist()
    details = dict(
        as_of=as_of.isoformat(),
        algorithm=cfg.algorithm,
        features=features,
        k=k,
        k_source="config" if cfg.k else "silhouette",
        k_curve=curve,
        sample_rows=sample_rows,
        clusters=len(described),
        training_cost=cost,
        iterations=iterations,
        seconds={step: round(value, 2) for step, value in seconds.items()},
        partitions=partitions,
        model_path=model_path,
        matched_to_as_of=reference.isoformat() if reference else None,
        match_distances={d.cluster_id: d.match_distance for d in described},
        unknown_label_ids=unknown_labels,
        labels_file=labels_shown,
    )
    log.info(
        f"gold/clusters: {rows_out:,} customers; model saved to {model_path}; seconds: "
        + ", ".join(f"{step.replace('_', ' ')} {value:.1f}" for step, value in seconds.items())
    )
    return StageResult(rows_in=rows, rows_out=rows_out, details=details)


def name_clusters(
    described: list[ClusterDescription], features: list[str], labels: dict[int, ClusterLabel], cfg: ClustersConfig
) -> list[int]:
    """Analyst labels first (name_source 'analyst'), generated names for the rest; ids of unused labels."""
    present = {d.cluster_id for d in described}
    analyst = {d.cluster_id: labels[d.cluster_id] for d in described if d.cluster_id in labels}
    generated = generate_names(
        [d for d in described if d.cluster_id not in analyst],
        features,
        words=cfg.name_words,
        min_abs_z=cfg.name_min_abs_z,
        taken=[label.name for label in analyst.values()],
    )
    for d in described:
        if d.cluster_id in analyst:
            d.name, d.name_source, d.notes = analyst[d.cluster_id].name, "analyst", analyst[d.cluster_id].notes
        else:
            d.name, d.name_source, d.notes = generated[d.cluster_id], "generated", None
    return sorted(set(labels) - present)


def profile_row(as_of: dt.date, d: ClusterDescription) -> tuple:
    return (
        as_of,
        d.cluster_id,
        d.name,
        d.name_source,
        d.notes,
        d.customers,
        d.customer_share,
        d.revenue_share,
        d.feature_means,
        d.z_scores,
        list(d.top_features),
        d.match_distance,
    )


JOB = Job(
    name="clusters",
    summary="k-means clusters of the customer profile for one as-of date (default: the latest).",
    run=run,
    as_of_from="profile",
)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    sys.exit(main())
