"""Small aggregates of the gold tables for the report and the notebook.

Every function takes the rows of one as-of date and returns a frame of a few dozen
rows at most (one row per segment, score pair, tier, cohort x offset ...), so a job
can collect it. No per-customer rows leave Spark.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

# Accuracy of percentile_approx for the median recency (relative error 1/accuracy).
MEDIAN_ACCURACY = 10_000


def to_headline(profile: DataFrame) -> DataFrame:
    """One row: customers, active customers (a purchase in the window), orders, revenue, median recency.

    Needs recency_days, frequency, monetary_amount.
    """
    return profile.agg(
        F.count("*").alias("customers"),
        F.sum(F.when(F.col("frequency") > 0, 1).otherwise(0)).alias("active_customers"),
        F.coalesce(F.sum("frequency"), F.lit(0)).alias("orders"),
        F.coalesce(F.sum("monetary_amount"), F.lit(0)).alias("revenue_amount"),
        F.percentile_approx("recency_days", 0.5, MEDIAN_ACCURACY).alias("median_recency_days"),
    )


def _with_shares(frame: DataFrame) -> DataFrame:
    """Add customer_share and revenue_share of the whole frame (a small aggregate: one window)."""
    everything = Window.partitionBy().rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    total_revenue = F.sum("revenue_amount").over(everything)
    return frame.withColumns(
        {
            "customer_share": F.col("customers") / F.sum("customers").over(everything),
            "revenue_share": F.when(total_revenue != 0, F.col("revenue_amount") / total_revenue).cast("double"),
        }
    )


def to_segment_sizes(rfm_segments: DataFrame) -> DataFrame:
    """Grain: category x campaign. Customers, revenue (window monetary) and their shares; with a
    ``clv_amount`` column also the mean CLV and the segment's share of the predicted value
    (null when no customer of the date has a CLV)."""
    has_clv = "clv_amount" in rfm_segments.columns
    clv = F.col("clv_amount") if has_clv else F.lit(None).cast("decimal(18,2)")
    sizes = rfm_segments.groupBy("category", "campaign").agg(
        F.count("*").alias("customers"),
        F.coalesce(F.sum("monetary_amount"), F.lit(0)).cast("decimal(18,2)").alias("revenue_amount"),
        F.concat_ws(", ", F.array_sort(F.collect_set("rfm_cell"))).alias("rfm_cells"),
        F.avg(clv).cast("double").alias("avg_clv_amount"),
        F.sum(clv).cast("double").alias("clv_total"),
    )
    everything = Window.partitionBy().rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    all_clv = F.sum("clv_total").over(everything)
    return (
        _with_shares(sizes)
        .withColumn("clv_share", F.when(all_clv != 0, F.col("clv_total") / all_clv))
        .select(
            "category",
            "campaign",
            "rfm_cells",
            "customers",
            "customer_share",
            "revenue_amount",
            "revenue_share",
            "avg_clv_amount",
            "clv_share",
        )
    )


def to_offer_summary(offers: DataFrame) -> DataFrame:
    """Grain: customer group x first offer category. Customers whose rank-1 offer it is, and how
    it was chosen (``source`` lift / popular), from gold/next_best_offer of one date."""
    return (
        offers.where(F.col("rank") == 1)
        .groupBy("customer_group", "offer_category", "source")
        .agg(F.count("*").alias("customers"), F.avg("lift").alias("lift"))
    )


def to_rf_grid(rfm_segments: DataFrame) -> DataFrame:
    """Grain: r_score x f_score. Customers and revenue per pair of scores (the scored customers:
    a map with scoring window_buyers leaves those without a window purchase unscored)."""
    scored = rfm_segments.where(F.col("r_score").isNotNull() & F.col("f_score").isNotNull())
    return scored.groupBy("r_score", "f_score").agg(
        F.count("*").alias("customers"),
        F.coalesce(F.sum("monetary_amount"), F.lit(0)).cast("decimal(18,2)").alias("revenue_amount"),
    )


def to_value_tier_grid(profile: DataFrame) -> DataFrame:
    """Grain: longevity_band x recency_band (x its tier name). Customers, revenue and shares."""
    grid = profile.groupBy("longevity_band", "recency_band", "value_tier").agg(
        F.count("*").alias("customers"),
        F.coalesce(F.sum("monetary_amount"), F.lit(0)).cast("decimal(18,2)").alias("revenue_amount"),
    )
    return _with_shares(grid)


def filter_recent_cohorts(retention: DataFrame, cohorts: int) -> DataFrame:
    """Keep the ``cohorts`` latest cohorts (by cohort_start_date) of a retention matrix."""
    latest_first = Window.partitionBy().orderBy(F.col("cohort_start_date").desc())
    starts = retention.select("cohort_start_date").distinct()
    recent = starts.withColumn("rank", F.row_number().over(latest_first)).where(F.col("rank") <= cohorts)
    return retention.join(recent.select("cohort_start_date"), "cohort_start_date", how="left_semi")


def to_latest_checks(data_quality: DataFrame, job: str = "cleanse") -> DataFrame:
    """The ops/data_quality rows of ``job``'s latest run that checked any rows."""
    runs = (
        data_quality.where((F.col("job") == job) & (F.col("rows_checked") > 0))
        .groupBy("run_id")
        .agg(F.max("checked_at").alias("checked_at"))
    )
    latest = runs.orderBy(F.col("checked_at").desc(), F.col("run_id")).limit(1).select("run_id")
    return data_quality.join(latest, "run_id", how="left_semi")
