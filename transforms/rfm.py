"""RFM thresholds, tiles and scores, exactly as DESIGN defines them.

For ``n`` tiles over a population of ``N`` values the thresholds ``t_1 <= ... <= t_{n-1}``
are the lower ``j/n`` quantiles: ``t_j`` is the smallest value ``v`` with
``#{x <= v} >= ceil(j*N/n)``. Ascending tile ``i`` holds ``(t_{i-1}, t_i]`` (``t_0 = -inf``,
``t_n = +inf``): a value equal to a threshold sits in the lower tile, equal values share a
tile, and a tile may be empty. Score 1 is the best tile: R score = ``i`` (most recent = 1),
F and M score = ``n + 1 - i`` (most frequent / highest spend = 1).

Thresholds of the integer metrics (recency, frequency) come exact from a value
histogram (``to_value_histogram`` -> ``exact_thresholds``, plain Python on a few hundred
rows); monetary from ``DataFrame.approxQuantile`` in the job. Nulls are outside the
population and get null scores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# metric -> (profile column, score column, best tile is the ascending lowest?)
METRICS: dict[str, tuple[str, str, bool]] = {
    "recency": ("recency_days", "r_score", True),
    "frequency": ("frequency", "f_score", False),
    "monetary": ("monetary_amount", "m_score", False),
}
INTEGER_METRICS = ("recency", "frequency")

Threshold = int | float


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


def to_value_histogram(profile: DataFrame, column: str) -> DataFrame:
    """Grain: distinct non-null value of ``column`` -> ``value``, ``customers``."""
    return (
        profile.where(F.col(column).isNotNull())
        .groupBy(F.col(column).alias("value"))
        .agg(F.count("*").alias("customers"))
        .select("value", "customers")
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


def with_rfm_scores(profile: DataFrame, thresholds: Mapping[str, Sequence[Threshold]]) -> DataFrame:
    """Add ``r_score``, ``f_score``, ``m_score`` (1 = best) and ``rfm_cell`` (e.g. '113').

    ``thresholds`` maps each metric (recency, frequency, monetary) to its n-1 thresholds.
    The cell is null when a score is null.
    """
    scores = {
        score_column: score(F.col(column), thresholds[metric], lower_is_better=lower_is_better)
        for metric, (column, score_column, lower_is_better) in METRICS.items()
    }
    cell = F.concat(*[value.cast("string") for value in scores.values()])
    return profile.withColumns({**scores, "rfm_cell": cell})


def to_rfm_thresholds(
    scored: DataFrame,
    thresholds: Mapping[str, Sequence[Threshold]],
    *,
    as_of: dt.date,
) -> DataFrame:
    """Grain: metric x tile. The thresholds used and the customers in every tile (0 when empty).

    One aggregation over ``scored`` (the output of :func:`with_rfm_scores`).
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
            F.lit(tiles).alias("tiles"),
            "tile",
            "score",
            "lower_bound",
            "upper_bound",
            "customers",
        )
    )
