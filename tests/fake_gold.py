"""Stand-in segment and cluster tables for report and notebook tests (NOT product output).

The real ``segment`` and ``clusters`` jobs write gold/rfm_segments, gold/segment_migration
and gold/cluster_profiles; until a lake has them, tests (and the README screenshot) use
these: plausible rows in the contract's schemas, derived from an existing profile with
plain quartiles (no tie handling, no real clustering).

    python -m tests.fake_gold /path/to/lake 2024-12-31     # dev only
"""

from __future__ import annotations

import datetime as dt
import sys

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

DEFAULT_MAP = {
    "Loyal": (["111", "112", "113", "114"], "weekly promotions"),
    "Churned Loyal": (["411", "412", "421", "422"], "loyal-customer 25% discount"),
    "High Spending New": (["141", "142"], "weekly promotions + 10% off next visit"),
    "Seasonal Shoppers": (
        ["131", "132", "231", "232", "331", "332", "431", "432"],
        "seasonal catalogue + 25% off coupon",
    ),
}


def _write(frame: DataFrame, path: str, as_of: dt.date) -> None:
    columns = [F.col(c).alias(c, metadata={"comment": f"test stand-in: {c}"}) for c in frame.columns]
    (
        frame.select(*columns)
        .write.format("delta")
        .mode("overwrite")
        .partitionBy("as_of_date")
        .option("replaceWhere", f"as_of_date = DATE'{as_of}'")
        .save(path)
    )


def to_fake_rfm_segments(profile: DataFrame) -> DataFrame:
    everyone = Window.partitionBy()
    category = F.lit("Other")
    campaign = F.lit(None).cast("string")
    for name, (cells, text) in DEFAULT_MAP.items():
        hit = F.col("rfm_cell").isin(cells)
        category = F.when(hit, F.lit(name)).otherwise(category)
        campaign = F.when(hit, F.lit(text)).otherwise(campaign)
    scored = profile.select(
        "customer_id", "as_of_date", "recency_days", "frequency", "monetary_amount", "value_tier",
        F.ntile(4).over(everyone.orderBy("recency_days")).alias("r_score"),
        (5 - F.ntile(4).over(everyone.orderBy("frequency"))).alias("f_score"),
        (5 - F.ntile(4).over(everyone.orderBy("monetary_amount"))).alias("m_score"),
    ).withColumn("rfm_cell", F.concat_ws("", "r_score", "f_score", "m_score"))  # fmt: skip
    return scored.select(
        "customer_id", "as_of_date", "recency_days", "frequency", "monetary_amount",
        F.col("r_score").cast("int"), F.col("f_score").cast("int"), F.col("m_score").cast("int"), "rfm_cell",
        F.lit("default").alias("segment_map"), category.alias("category"), campaign.alias("campaign"), "value_tier",
    )  # fmt: skip


def to_fake_migration(segments: DataFrame, previous_as_of: dt.date) -> DataFrame:
    names = ["(new)", *DEFAULT_MAP, "Other"]
    pick = F.abs(F.hash("customer_id")) % 10
    previous = F.when(pick < 6, F.col("category")).otherwise(
        F.element_at(F.array(*[F.lit(n) for n in names]), (pick % len(names) + 1).cast("int"))
    )
    moves = segments.groupBy("as_of_date", previous.alias("previous_category"), F.col("category")).agg(
        F.count("*").alias("customers"), F.sum("monetary_amount").cast("decimal(18,2)").alias("revenue_amount")
    )
    return moves.select(
        "as_of_date", F.lit(previous_as_of).alias("previous_as_of_date"), "previous_category",
        F.col("category").alias("current_category"), "customers", "revenue_amount",
    )  # fmt: skip


def fake_cluster_profiles(spark: SparkSession, as_of: dt.date) -> DataFrame:
    rows = [
        (as_of, 0, "Frequent big spenders", "generated", None, 800, 0.16, 0.48,
         {"frequency": 8.0, "monetary_amount": 900.0}, {"frequency": 1.9, "monetary_amount": 2.1, "recency_days": -0.8},
         ["monetary_amount", "frequency"], 0.12),
        (as_of, 1, "Regulars", "generated", None, 2100, 0.42, 0.38,
         {"frequency": 4.0, "monetary_amount": 300.0}, {"frequency": 0.4, "monetary_amount": 0.2, "recency_days": -0.5},
         ["recency_days"], 0.2),
        (as_of, 2, "Lapsed one-timers", "analyst", "named by CRM", 2100, 0.42, 0.14,
         {"frequency": 0.2, "monetary_amount": 20.0}, {"frequency": -1.1, "monetary_amount": -0.9, "recency_days": 1.6},
         ["recency_days", "frequency"], None),
    ]  # fmt: skip
    schema = (
        "as_of_date date, cluster_id int, cluster_name string, name_source string, notes string, customers long, "
        "customer_share double, revenue_share double, feature_means map<string,double>, "
        "feature_z_scores map<string,double>, top_features array<string>, match_distance double"
    )
    return spark.createDataFrame(rows, schema)


def write_fake_gold(spark: SparkSession, lake: str, as_of: dt.date) -> None:
    """gold/rfm_segments, gold/segment_migration and gold/cluster_profiles for ``as_of``."""
    profile = spark.read.format("delta").load(f"{lake}/gold/customer_profile").where(F.col("as_of_date") == as_of)
    segments = to_fake_rfm_segments(profile)
    _write(segments, f"{lake}/gold/rfm_segments", as_of)
    segments = spark.read.format("delta").load(f"{lake}/gold/rfm_segments").where(F.col("as_of_date") == as_of)
    _write(to_fake_migration(segments, as_of - dt.timedelta(days=91)), f"{lake}/gold/segment_migration", as_of)
    _write(fake_cluster_profiles(spark, as_of), f"{lake}/gold/cluster_profiles", as_of)


if __name__ == "__main__":
    from seglake.config import load_config
    from seglake.session import build_session

    session = build_session(load_config(None, [f"lake.root={sys.argv[1]}"]).spark)
    write_fake_gold(session, sys.argv[1], dt.date.fromisoformat(sys.argv[2]))
