"""Clusters: blobs recovered, k found, stable ids, names, labels, saved model, errors."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.functions import array_to_vector
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sklearn.metrics import adjusted_rand_score

from jobs import clusters as clusters_job
from seglake import tables
from seglake.config import ClustersConfig, SeglakeConfig, load_config
from seglake.errors import ConfigError, UserError
from tests.conftest import with_catalog_columns
from transforms.clustering import (
    ClusterDescription,
    PreviousCluster,
    assign_stable_ids,
    centroid_distance,
    clustering_estimator,
    feature_pipeline,
    generate_names,
    min_cost_assignment,
    with_fit_layout,
)

FEATURES = ["recency_days", "frequency", "monetary_amount", "store_order_share"]
# Four groups far apart in every feature: (recency, frequency, monetary, store share).
BLOBS = {
    "champions": (8, 24, 2400.0, 0.85),
    "steady": (40, 6, 600.0, 0.50),
    "fading": (120, 12, 1200.0, 0.05),
    "lapsed": (300, 1, 40.0, 0.15),
}
D = dt.date(2024, 12, 31)
SCHEMA = (
    "customer_id string, as_of_date date, recency_days int, frequency long, monetary_amount decimal(18,2), "
    "store_order_share double, truth string"
)


def blob_rows(per_blob: int = 150, seed: int = 7) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for group, (recency, frequency, monetary, share) in BLOBS.items():
        for i in range(per_blob):
            rows.append(
                (
                    f"{group}-{i:03d}",
                    D,
                    max(0, round(rng.gauss(recency, recency * 0.08 + 1))),
                    max(1, round(rng.gauss(frequency, frequency * 0.08))),
                    round(max(1.0, rng.gauss(monetary, monetary * 0.08)), 2),
                    min(1.0, max(0.0, rng.gauss(share, 0.02))),
                    group,
                )
            )
    from decimal import Decimal

    return [(*r[:4], Decimal(str(r[4])), *r[5:]) for r in rows]


@pytest.fixture(scope="module")
def blobs(spark: SparkSession) -> DataFrame:
    rows = blob_rows()
    rows[3] = (*rows[3][:5], None, rows[3][6])  # a null share: zero-filled
    return spark.createDataFrame(rows, SCHEMA)


def fitted_labels(profile: DataFrame, algorithm: str, k: int, seed: int) -> list[tuple[str, int]]:
    prep = feature_pipeline(
        FEATURES,
        log_features=["recency_days", "frequency", "monetary_amount"],
        zero_fill=["store_order_share"],
        center=algorithm == "kmeans",
    ).fit(profile)
    vectors = prep.transform(profile)
    model = clustering_estimator(algorithm, k=k, seed=seed).fit(vectors)
    return [(r["truth"], r["prediction"]) for r in model.transform(vectors).select("truth", "prediction").collect()]


def test_well_separated_groups_are_recovered(blobs: DataFrame) -> None:
    truth, predicted = zip(*fitted_labels(blobs, "kmeans", k=4, seed=3), strict=True)
    assert adjusted_rand_score(truth, predicted) >= 0.95


def test_bisecting_kmeans_option_separates_groups(blobs: DataFrame) -> None:
    # Bisecting splits every cluster of a level at once, so with four groups it may halve a
    # tight group before parting two others; on two groups its one split must part them.
    two_groups = blobs.where(F.col("truth").isin("champions", "lapsed"))
    truth, predicted = zip(*fitted_labels(two_groups, "bisecting_kmeans", k=2, seed=3), strict=True)
    assert adjusted_rand_score(truth, predicted) == 1.0


def test_preparation_zero_fills_logs_and_imputes_the_median(spark: SparkSession) -> None:
    profile = spark.createDataFrame(
        [("a", 0, None, 0.5), ("b", 9, 2.0, None), ("c", -9, 4.0, 0.25), ("d", 99, None, 1.0)],
        "customer_id string, monetary_amount int, periodicity_days double, store_order_share double",
    )
    features = ["monetary_amount", "periodicity_days", "store_order_share"]
    prep = feature_pipeline(features, log_features=["monetary_amount"], zero_fill=["store_order_share"]).fit(profile)
    rows = {r["customer_id"]: r for r in prep.transform(profile).collect()}
    # monetary: signum(x) * log1p(|x|): 0 -> 0, 9 -> ln 10, -9 -> -ln 10
    assert rows["a"]["imputed__monetary_amount"] == 0.0
    assert rows["b"]["imputed__monetary_amount"] == pytest.approx(2.302585, abs=1e-6)
    assert rows["c"]["imputed__monetary_amount"] == pytest.approx(-2.302585, abs=1e-6)
    # periodicity null -> median of {2, 4}; Spark's approximate median is the lower one, 2
    assert rows["a"]["imputed__periodicity_days"] == 2.0
    assert rows["d"]["imputed__periodicity_days"] == 2.0
    # share null (no purchase in the window) -> 0, not the median
    assert rows["b"]["imputed__store_order_share"] == 0.0
    # standardised: every column has mean 0 and sample standard deviation 1
    vectors = [r["features"].toArray() for r in prep.transform(profile).select("features").collect()]
    for j in range(3):
        column = [v[j] for v in vectors]
        assert sum(column) == pytest.approx(0.0, abs=1e-9)
        assert sum(x * x for x in column) / 3 == pytest.approx(1.0)


def test_distance_to_the_centre(spark: SparkSession) -> None:
    schema = T.StructType([T.StructField("features", VectorUDT()), T.StructField("prediction", T.IntegerType())])
    scored = spark.createDataFrame(
        [(Vectors.dense([3.0, 4.0]), 0), (Vectors.dense([1.0, 1.0]), 1), (Vectors.dense([0.0, 0.0]), 0)], schema
    )
    distances = [r[0] for r in scored.select(centroid_distance([[0.0, 0.0], [1.0, 2.0]])).collect()]
    assert distances == [5.0, 1.0, 0.0]  # 3-4-5; (1,1) to (1,2); at the centre


def test_the_final_fit_converges_on_every_row_and_saves_as_an_ml_model(spark: SparkSession, tmp_path: Path) -> None:
    schema = T.StructType([T.StructField("features", VectorUDT())])
    points = [(0.0, 0.0), (0.0, 2.0), (10.0, 0.0), (10.0, 2.0), (11.0, 1.0)]
    vectors = spark.createDataFrame([(Vectors.dense(list(p)),) for p in points], schema)
    config = load_config(None, ["clusters.tol=1e-6", "clusters.seed=3"]).clusters
    fitted = clusters_job.final_fit(vectors, 2, config)
    # the two groups {(0,0), (0,2)} and the other three -> centres (0, 1) and (31/3, 1)
    centers = sorted(list(c) for c in fitted.model.clusterCenters())
    assert centers[0] == pytest.approx([0.0, 1.0]) and centers[1] == pytest.approx([31 / 3, 1.0])
    assert 1 <= fitted.iterations <= config.max_iter
    # WSSSE against those centres: 1 + 1 + (1/9 + 1) + (1/9 + 1) + 4/9 = 14/3
    assert fitted.training_cost == pytest.approx(14 / 3)
    # a KMeansModel as KMeans.fit makes it: it scores, and saves and reloads inside a pipeline
    scored = [r["prediction"] for r in fitted.model.transform(vectors).collect()]
    assert scored[0] == scored[1] != scored[2] == scored[3] == scored[4]
    PipelineModel(stages=[fitted.model]).write().save(str(tmp_path / "model"))
    reloaded = PipelineModel.load(str(tmp_path / "model"))
    assert [r["prediction"] for r in reloaded.transform(vectors).collect()] == scored


def fit_after_layout(
    spark: SparkSession, rows: list[tuple[int, float, float]], input_partitions: int
) -> list[list[float]]:
    """Sorted k-means centres of ``rows`` read as ``input_partitions`` partitions, then laid out for the fit."""
    schema = "customer_id INT, x DOUBLE, y DOUBLE"
    frame = spark.createDataFrame(rows, schema).repartition(input_partitions)
    vectors = frame.select("customer_id", array_to_vector(F.array("x", "y")).alias("features"))
    laid_out = with_fit_layout(vectors, 2).cache()
    try:
        model = clustering_estimator("kmeans", k=6, seed=11).fit(laid_out)
        return sorted(list(map(float, c)) for c in model.clusterCenters())
    finally:
        laid_out.unpersist()


def test_the_fit_layout_makes_centres_independent_of_the_input_order_and_partitions(spark: SparkSession) -> None:
    # 3,000 customers spread evenly over a square: no natural clusters, so k-means|| from
    # another sample (another row order or partitioning) ends in other centres.
    rng = random.Random(5)
    rows = [(i, rng.random(), rng.random()) for i in range(3000)]
    shuffled = rows[:]
    rng.shuffle(shuffled)
    reference = fit_after_layout(spark, rows, 1)
    assert fit_after_layout(spark, shuffled, 7) == reference
    assert fit_after_layout(spark, list(reversed(rows)), 3) == reference


def test_min_cost_assignment_agrees_with_scipy() -> None:
    from scipy.optimize import linear_sum_assignment

    rng = random.Random(11)
    for rows, columns in [(4, 4), (3, 5), (6, 2), (10, 10), (1, 1)]:
        cost = [[rng.uniform(0, 10) for _ in range(columns)] for _ in range(rows)]
        ours = min_cost_assignment(cost)
        r, c = linear_sum_assignment(cost)
        assert len(ours) == min(rows, columns)
        assert sum(cost[i][j] for i, j in ours) == pytest.approx(sum(cost[i][j] for i, j in zip(r, c, strict=True)))
    # by hand: the greedy pick (0,0)=1 forces (1,1)=10; the optimum crosses: 2 + 3
    assert min_cost_assignment([[1, 2], [3, 10]]) == [(0, 1), (1, 0)]


def description(index: int, customers: int, means: dict[str, float], z: dict[str, float]) -> ClusterDescription:
    return ClusterDescription(
        index=index,
        customers=customers,
        customer_share=0.0,
        revenue_share=None,
        feature_means=means,
        z_scores=z,
        top_features=[],
    )


def test_stable_ids_follow_the_nearest_previous_centre_and_fresh_ids_continue() -> None:
    stds = {"x": 10.0, "y": 1.0}
    previous = [PreviousCluster(3, {"x": 0.0, "y": 0.0}), PreviousCluster(7, {"x": 100.0, "y": 5.0})]
    current = [
        description(0, 50, {"x": 98.0, "y": 5.0}, {}),  # 0.2 std from 7
        description(1, 10, {"x": 0.0, "y": 0.5}, {}),  # 0.5 std from 3
        description(2, 90, {"x": 50.0, "y": 2.0}, {}),  # no previous left: fresh id 8
    ]
    assign_stable_ids(current, previous, stds)
    assert [(c.cluster_id, c.match_distance) for c in current] == [(7, pytest.approx(0.2)), (3, 0.5), (8, None)]


def test_first_run_numbers_clusters_by_size_and_a_far_match_is_refused() -> None:
    current = [description(0, 5, {"x": 0.0}, {}), description(1, 9, {"x": 1.0}, {})]
    assign_stable_ids(current, [], {"x": 1.0})
    assert [c.cluster_id for c in current] == [2, 1]  # the larger cluster gets id 1
    assign_stable_ids(current, [PreviousCluster(4, {"x": 9.0})], {"x": 1.0}, max_distance=5.0)
    assert [(c.cluster_id, c.match_distance) for c in current] == [(6, None), (5, None)]  # 8 and 9 > 5: fresh


def test_generated_names_are_readable_and_unique() -> None:
    features = ["recency_days", "frequency", "monetary_amount", "coupon_order_share"]
    rows = [  # z of recency, frequency, monetary, coupon share
        (-1.2, 2.0, 1.5, 0.0),
        (1.8, -0.9, -0.7, 0.5),
        (1.7, -0.8, -0.6, -0.4),
        (0.1, 0.0, None, 0.1),
        (0.0, -0.1, 0.2, 0.0),
    ]
    clusters = [description(i, 1, {}, dict(zip(features, z, strict=True))) for i, z in enumerate(rows)]
    for c in clusters:
        c.cluster_id = c.index + 1
    names = generate_names(clusters, features, words=3, min_abs_z=0.25)
    assert names == {
        1: "recent frequent high-spend",  # words in feature order, strongest three
        2: "lapsed infrequent low-spend coupon-driven",  # collided with 3: one more word each
        3: "lapsed infrequent low-spend coupon-free",
        4: "average (cluster 4)",  # no |z| >= 0.25 and nothing to add: suffixed
        5: "average (cluster 5)",
    }
    # an analyst name counts as taken
    assert generate_names(clusters[:1], features, taken=["recent frequent high-spend"]) == {
        1: "recent frequent high-spend (cluster 1)"
    }


def test_feature_sections_and_config_checks() -> None:
    sections = ClustersConfig(sections=["promotions", "returns"])
    assert sections.feature_columns == ["coupon_order_share", "discount_share", "return_rate_count"]
    explicit = ClustersConfig(features=["frequency", "frequency", "recency_days"], sections=["lrfmp"])
    assert explicit.feature_columns == ["frequency", "recency_days"]
    assert len(SeglakeConfig().clusters.feature_columns) >= 15
    with pytest.raises(ConfigError, match="clusters: unknown section basketz"):
        load_config(None, ["clusters.sections=[lrfmp, basketz]"])
    with pytest.raises(ConfigError, match="k_min must not be above k_max"):
        load_config(None, ["clusters.k_min=6", "clusters.k_max=4"])


def test_labels_file_errors_name_the_key(tmp_path: Path) -> None:
    assert clusters_job.load_labels(str(tmp_path / "none.yaml"))[0] == {}
    bad = tmp_path / "labels.yaml"
    bad.write_text("2: {name: Families, note: typo}\n")
    with pytest.raises(UserError, match=r"labels.yaml: 2.note: unknown key"):
        clusters_job.load_labels(str(bad))
    bad.write_text("two: Families\n")
    with pytest.raises(UserError, match="two: expected a cluster id"):
        clusters_job.load_labels(str(bad))


# --- the job end to end on a tmp lake ------------------------------------------------------


def write_profile(spark: SparkSession, lake: Path, rows: list[tuple], as_of: dt.date = D) -> None:
    config = load_config(None, [f"lake.root={lake}"])
    profile = spark.createDataFrame([(r[0], as_of, *r[2:6]) for r in rows], SCHEMA.rsplit(",", 1)[0])
    full = with_catalog_columns(profile, "gold/customer_profile")
    tables.replace_as_of(full, config, "gold/customer_profile", as_of)


def job_args(lake: Path, *extra: str) -> list[str]:
    settings = [
        f"lake.root={lake}",
        f"clusters.features=[{', '.join(FEATURES)}]",
        "clusters.log_features=[recency_days, frequency, monetary_amount]",
        "clusters.zero_fill=[store_order_share]",
        f"clusters.labels_file={lake}/labels.yaml",
        *extra,
    ]
    return [arg for setting in settings for arg in ("--set", setting)]


def last_details(spark: SparkSession, lake: Path) -> dict:
    runs = spark.read.format("delta").load(f"{lake}/ops/runs").where("status <> 'started'").where("job = 'clusters'")
    return json.loads(runs.orderBy(F.desc("started_at")).first()["details"])


def assignments(spark: SparkSession, lake: Path, as_of: dt.date) -> dict[str, int]:
    frame = spark.read.format("delta").load(f"{lake}/gold/clusters").where(F.col("as_of_date") == as_of)
    return {r["customer_id"]: r["cluster_id"] for r in frame.collect()}


@pytest.fixture(scope="module")
def clustered_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run 1 (as of D - 1 month, k searched in 3..5, seed 1), then run 2 (as of D, k = 4, seed 99)."""
    lake = tmp_path_factory.mktemp("clusters") / "lake"
    rows = blob_rows()
    earlier = dt.date(2024, 11, 30)
    write_profile(spark, lake, rows, earlier)
    write_profile(spark, lake, rows, D)
    (lake / "labels.yaml").write_text("2: {name: Weekend families, notes: from the Q3 survey}\n99: Gone group\n")
    argv = job_args(lake, "clusters.k_min=3", "clusters.k_max=5", "clusters.seed=1", "clusters.sample_rows=400")
    assert clusters_job.main([*argv, f"--as-of={earlier}"]) == 0
    assert clusters_job.main(job_args(lake, "clusters.k=4", "clusters.seed=99")) == 0  # latest as_of: D
    return lake


def test_k_search_picks_the_true_k_and_records_the_curve(spark: SparkSession, clustered_lake: Path) -> None:
    runs = (
        spark.read.format("delta")
        .load(f"{clustered_lake}/ops/runs")
        .where("status <> 'started'")
        .where("job = 'clusters'")
    )
    first = json.loads(runs.orderBy("started_at").first()["details"])
    assert first["k"] == 4 and first["k_source"] == "silhouette"
    assert [c["k"] for c in first["k_curve"]] == [3, 4, 5]
    best = max(first["k_curve"], key=lambda c: c["silhouette"])
    assert best["k"] == 4
    costs = [c["cost"] for c in first["k_curve"]]
    assert costs[1] < costs[0] / 5  # the elbow: the fourth centre takes most of the remaining cost
    assert 300 <= first["sample_rows"] <= 500  # 400 of 600 sampled (Bernoulli)


def test_ids_are_stable_across_runs_with_different_seeds(spark: SparkSession, clustered_lake: Path) -> None:
    first = assignments(spark, clustered_lake, dt.date(2024, 11, 30))
    second = assignments(spark, clustered_lake, D)
    assert len(first) == len(second) == 600
    agreeing = sum(first[c] == second[c] for c in first)
    assert agreeing >= 0.98 * len(first)
    truth = {c: c.split("-")[0] for c in first}
    assert adjusted_rand_score([truth[c] for c in first], [first[c] for c in first]) >= 0.95
    details = last_details(spark, clustered_lake)
    assert details["matched_to_as_of"] == "2024-11-30"
    profiles = spark.read.format("delta").load(f"{clustered_lake}/gold/cluster_profiles")
    latest = profiles.where(F.col("as_of_date") == D).collect()
    assert sorted(r["cluster_id"] for r in latest) == [1, 2, 3, 4]
    assert all(r["match_distance"] is not None and r["match_distance"] < 0.5 for r in latest)
    assert all(r["match_distance"] is None for r in profiles.where(F.col("as_of_date") != D).collect())


def test_profiles_describe_clusters_and_analyst_labels_override(spark: SparkSession, clustered_lake: Path) -> None:
    profiles = spark.read.format("delta").load(f"{clustered_lake}/gold/cluster_profiles")
    rows = {r["cluster_id"]: r for r in profiles.where(F.col("as_of_date") == D).collect()}
    assert sum(r["customers"] for r in rows.values()) == 600
    assert sum(r["customer_share"] for r in rows.values()) == pytest.approx(1.0)
    assert sum(r["revenue_share"] for r in rows.values()) == pytest.approx(1.0)
    assert (rows[2]["cluster_name"], rows[2]["name_source"], rows[2]["notes"]) == (
        "Weekend families",
        "analyst",
        "from the Q3 survey",
    )
    generated = [r for cid, r in rows.items() if cid != 2]
    assert all(r["name_source"] == "generated" and r["notes"] is None for r in generated)
    assert len({r["cluster_name"] for r in rows.values()}) == 4
    # the champions' cluster (most frequent) is named and described so
    champions = max(rows.values(), key=lambda r: r["feature_means"]["frequency"])
    assert champions["feature_means"]["frequency"] == pytest.approx(24, abs=1)
    assert champions["feature_z_scores"]["frequency"] > 1
    assert "frequent" in champions["cluster_name"].split() or champions["cluster_id"] == 2
    assert set(champions["top_features"]) <= set(FEATURES) and len(champions["top_features"]) == 3
    # the label for cluster 99 is reported, not dropped silently
    assert last_details(spark, clustered_lake)["unknown_label_ids"] == [99]
    names = spark.read.format("delta").load(f"{clustered_lake}/gold/clusters").where(F.col("as_of_date") == D)
    assert {(r[0], r[1]) for r in names.select("cluster_id", "cluster_name").distinct().collect()} == {
        (cid, r["cluster_name"]) for cid, r in rows.items()
    }


def test_saved_model_reloads_and_scores_identically(spark: SparkSession, clustered_lake: Path) -> None:
    model = PipelineModel.load(f"{clustered_lake}/models/clusters/{D.isoformat()}")
    profile = spark.read.format("delta").load(f"{clustered_lake}/gold/customer_profile").where(F.col("as_of_date") == D)
    rescored = {r["customer_id"]: r["cluster_id"] for r in model.transform(profile).collect()}
    assert rescored == assignments(spark, clustered_lake, D)


def test_too_few_customers_is_one_clear_error_before_any_write(
    spark: SparkSession, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_profile(spark, lake, blob_rows(per_blob=1))  # 4 customers
    assert clusters_job.main(job_args(lake, "clusters.k=5")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "seglake clusters: error: gold/customer_profile as of 2024-12-31 has 4 customer(s): too few for "
        "k = 5 (clusters.k); lower it or pick another --as-of"
    )
    assert clusters_job.main(job_args(lake)) == 2  # the search needs k_max = 10
    assert "too few for k = 10 (clusters.k_max of the k search)" in capsys.readouterr().err
    assert not (lake / "gold" / "clusters").exists()
    assert not (lake / "models").exists()


def test_a_nan_or_infinite_feature_is_one_clear_error_before_any_write(
    spark: SparkSession, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = blob_rows(per_blob=3)
    rows[0] = (*rows[0][:5], float("inf"), rows[0][6])
    rows[5] = (*rows[5][:5], float("nan"), rows[5][6])
    rows[7] = (*rows[7][:5], None, rows[7][6])  # null is no error: zero-filled
    write_profile(spark, lake, rows)
    assert clusters_job.main(job_args(lake, "clusters.k=2")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "seglake clusters: error: gold/customer_profile as of 2024-12-31: feature store_order_share is "
        "NaN or infinite for 2 customer(s); fix the profile or drop the feature from clusters.features / "
        "clusters.sections"
    )
    assert not (lake / "gold" / "clusters").exists()
    assert not (lake / "models").exists()
