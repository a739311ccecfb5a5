"""RFM thresholds, tiles and scores, exactly as DESIGN defines them.

For ``n`` tiles over a population of ``N`` values the thresholds ``t_1 <= ... <= t_{n-1}``
are the lower ``j/n`` quantiles: ``t_j`` is the smallest value ``v`` with
``#{x <= v} >= ceil(j*N/n)``, i.e. the value at rank ``ceil(j*N/n)`` of the sorted
population (ties counted). Ascending tile ``i`` holds ``(t_{i-1}, t_i]`` (``t_0 = -inf``,
``t_n = +inf``): a value equal to a threshold sits in the lower tile, equal values share a
tile, and a tile may be empty. Score 1 is the best tile: R score = ``i`` (most recent = 1),
F and M score = ``n + 1 - i`` (most frequent / highest spend = 1).

Thresholds of the integer metrics (recency, frequency) are exact at any scale:
:func:`to_exact_thresholds` finds the values at those ranks in Spark from the value
histogram with whole-number counts, and only its ``n - 1`` rows reach the driver.
:func:`exact_thresholds` is the same definition in plain Python (a reference for tests).
Monetary thresholds come from ``DataFrame.approxQuantile`` in the job. Nulls are outside
the population and get null scores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

# metric -> (profile column, score column, best tile is the ascending lowest?)
METRICS: dict[str, tuple[str, str, bool]] = {
    "recency": ("recency_days", "r_score", True),
    "frequency": ("frequency", "f_score", False),
    "monetary": ("monetary_amount", "m_score", False),
}
INTEGER_METRICS = ("recency", "frequency")

Threshold = int | float

# Value-range buckets of to_exact_thresholds: the cumulative count runs per bucket, so a
# window holds one bucket's distinct values, never the whole histogram.
THRESHOLD_BUCKETS = 1024


def threshold_ranks(population: int, tiles: int) -> list[int]:
    """``ceil(j*N/n)`` for j = 1..n-1: the rank (1-based) each lower quantile must reach."""
    if population < 1 or tiles < 2:
        raise ValueError("need at least one value and two tiles")
    return [-(-j * population // tiles) for j in range(1, tiles)]  # integer ceil, no float rounding


def exact_thresholds(histogram: Iterable[tuple[Threshold, int]], tiles: int) -> list[Threshold]:
    """The lower ``j/n`` quantiles from ``(value, count)`` pairs (any order; nulls left out)."""
    counts = sorted((value, count) for value, count in histogram if value is not None and count > 0)
    ranks = threshold_ranks(sum(count for _, count in counts), tiles)
    thresholds: list[Threshold] = []
    cumulative, position = 0, 0
    for rank in ranks:
        while cumulative < rank:
            cumulative += counts[position][1]
            position += 1
        thresholds.append(counts[position - 1][0])
    return thresholds


def to_exact_thresholds(
    profile: DataFrame, columns: Sequence[str], tiles: int, *, buckets: int = THRESHOLD_BUCKETS
) -> DataFrame:
    """Grain: column x ascending tile j = 1..n-1 -> the tile's upper bound ``t_j``, exact.

    Output: ``column`` (its name), ``tile`` (j), ``rank`` (``ceil(j*N/n)``), ``value`` (long:
    the smallest value with ``#{x <= value} >= rank``), ``population`` (N, the non-null values)
    and ``distinct_values``. A column without non-null values has no rows. The columns must
    be integral (recency, frequency).

    How: each column's value histogram is cut into at most ``buckets`` consecutive value
    ranges (equal widths from its smallest to its largest value). The per-range customer
    counts are few: one row per column adds them up in value order and finds, for each rank,
    the range it falls in and the customers below that range. Only those ranges are then
    walked in value order (a window partitioned by column and tile): ``#{x <= v}`` = the
    customers below the range + a running sum within it. Counts and ranks are whole numbers
    (``rank`` by integer ``div``, no floating-point quantile); the range of a value is
    computed in double, which is fine as it only has to be non-decreasing in the value, and
    rounding keeps it so.
    """
    if tiles < 2 or buckets < 1:
        raise ValueError("need at least two tiles and one bucket")
    for column in columns:
        if not isinstance(profile.schema[column].dataType, T.IntegralType):
            raise ValueError(f"{column}: exact thresholds need an integral column")
    histogram = (
        profile.select(*[F.col(c).cast("long") for c in columns])
        .unpivot([], list(columns), "column", "value")
        .where(F.col("value").isNotNull())
        .groupBy("column", "value")
        .agg(F.count("*").alias("customers"))
    )
    low, high = F.col("low_value"), F.col("high_value")
    value_ranges = (
        histogram.groupBy("column")
        .agg(F.min("value").cast("double").alias("low_value"), F.max("value").cast("double").alias("high_value"))
        .select(
            "column",
            "low_value",
            F.when(high > low, F.lit(float(buckets)) / (high - low)).otherwise(F.lit(0.0)).alias("buckets_per_unit"),
        )
    )
    position = (F.col("value").cast("double") - low) * F.col("buckets_per_unit")
    bucketed = histogram.join(F.broadcast(value_ranges), on="column", how="inner").select(
        "column", "value", "customers", F.least(F.floor(position), F.lit(buckets - 1)).cast("int").alias("bucket")
    )
    sizes = F.col("bucket_sizes")  # [(bucket, customers, values)] in bucket order
    ends = F.transform(  # customers in buckets 1..i: #{x <= largest value of bucket i}
        sizes,
        lambda _, i: F.aggregate(F.slice(sizes, 1, i + 1), F.lit(0).cast("long"), lambda s, b: s + b["customers"]),
    )
    index = F.size(F.filter("bucket_ends", lambda end: end < F.col("rank")))  # buckets wholly below the rank
    targets = (
        bucketed.groupBy("column", "bucket")
        .agg(F.sum("customers").alias("customers"), F.count("*").alias("values"))
        .groupBy("column")
        .agg(
            F.array_sort(F.collect_list(F.struct("bucket", "customers", "values"))).alias("bucket_sizes"),
            F.sum("customers").alias("population"),
            F.sum("values").alias("distinct_values"),
        )
        .select("*", ends.alias("bucket_ends"), F.explode(F.sequence(F.lit(1), F.lit(tiles - 1))).alias("tile"))
        .withColumn("rank", F.expr(f"(tile * population + {tiles - 1}) div {tiles}"))  # ceil(j*N/n)
        .select(
            "column",
            "tile",
            "rank",
            "population",
            "distinct_values",
            F.element_at(sizes, index + 1)["bucket"].alias("bucket"),
            (F.element_at("bucket_ends", index + 1) - F.element_at(sizes, index + 1)["customers"]).alias("below"),
        )
    )
    walk = (
        Window.partitionBy("column", "tile").orderBy("value").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    at_most = F.col("below") + F.sum("customers").over(walk)  # #{x <= value}
    return (
        bucketed.join(F.broadcast(targets), on=["column", "bucket"], how="inner")
        .withColumn("at_most", at_most)
        .where((F.col("at_most") >= F.col("rank")) & (F.col("at_most") - F.col("customers") < F.col("rank")))
        .select("column", "tile", "rank", "value", "population", "distinct_values")
    )


def ascending_tile(value: Column, thresholds: Sequence[Threshold]) -> Column:
    """Ascending tile 1..n of ``value``: the first i with ``value <= t_i``, else n; null stays null."""
    tile: Column = F.lit(len(thresholds) + 1)
    for i, threshold in reversed(list(enumerate(thresholds, start=1))):
        tile = F.when(value <= F.lit(threshold), F.lit(i)).otherwise(tile)
    return F.when(value.isNotNull(), tile).cast("int")


def score(value: Column, thresholds: Sequence[Threshold], *, lower_is_better: bool) -> Column:
    """Score 1..n (1 = best) of ``value`` on ``thresholds``."""
    tile = ascending_tile(value, thresholds)
    tiles = len(thresholds) + 1
    return tile if lower_is_better else (F.lit(tiles + 1) - tile).cast("int")


def with_rfm_scores(
    profile: DataFrame, thresholds: Mapping[str, Sequence[Threshold]], *, scored: Column | None = None
) -> DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score`` (1 = best) and ``rfm_cell`` (e.g. '113').

    ``thresholds`` maps each metric (recency, frequency, monetary) to its n-1 thresholds.
    ``scored`` (default: everyone) says which rows the scores rank; the others get null
    scores. The cell is null when a score is null.
    """
    scores = {
        score_column: score(F.col(column), thresholds[metric], lower_is_better=lower_is_better)
        for metric, (column, score_column, lower_is_better) in METRICS.items()
    }
    if scored is not None:
        scores = {name: F.when(scored, value) for name, value in scores.items()}
    cell = F.concat(*[value.cast("string") for value in scores.values()])
    return profile.withColumns({**scores, "rfm_cell": cell})


def to_rfm_thresholds(
    scored: DataFrame, thresholds: Mapping[str, Sequence[Threshold]], *, as_of: dt.date, scoring: str = "all"
) -> DataFrame:
    """Grain: metric x tile. The thresholds used and the customers in every tile (0 when empty).

    One aggregation over ``scored`` (the output of :func:`with_rfm_scores`); ``scoring``
    names whom the scores rank (rows with null scores count in no tile).
    """
    tiles = len(next(iter(thresholds.values()))) + 1
    counts = []
    rows = []
    for metric, (_, score_column, lower_is_better) in METRICS.items():
        bounds = [None, *[float(t) for t in thresholds[metric]], None]
        for tile in range(1, tiles + 1):
            tile_score = tile if lower_is_better else tiles + 1 - tile
            name = f"{metric}_{tile}"
            counts.append(F.count_if(F.col(score_column) == tile_score).alias(name))
            rows.append(
                F.struct(
                    F.lit(metric).alias("metric"),
                    F.lit(tile).alias("tile"),
                    F.lit(tile_score).alias("score"),
                    F.lit(bounds[tile - 1]).cast("double").alias("lower_bound"),
                    F.lit(bounds[tile]).cast("double").alias("upper_bound"),
                    F.col(name).cast("long").alias("customers"),
                )
            )
    return (
        scored.agg(*counts)
        .select(F.inline(F.array(*rows)))
        .select(
            F.lit(as_of).alias("as_of_date"),
            "metric",
            F.lit(scoring).alias("scoring"),
            F.lit(tiles).alias("tiles"),
            "tile",
            "score",
            "lower_bound",
            "upper_bound",
            "customers",
        )
    )
