"""Segments over the customer profile: value tiers (longevity x recency grid)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def band(value: Column, bounds: list[int]) -> Column:
    """Index of the band holding ``value``: 0 below ``bounds[0]``, i in [bounds[i-1], bounds[i])."""
    index: Column = F.lit(len(bounds))
    for i, bound in reversed(list(enumerate(bounds))):
        index = F.when(value < bound, F.lit(i)).otherwise(index)
    return index


def with_value_tier(
    profile: DataFrame, *, longevity_days: list[int], recency_days: list[int], tiers: list[list[str]]
) -> DataFrame:
    """Add ``longevity_band``, ``recency_band`` and ``value_tier`` (``tiers[longevity][recency]``).

    Needs ``tenure_days`` (longevity: days since the first purchase) and ``recency_days``.
    """
    grid = F.array(*[F.array(*[F.lit(name) for name in row]) for row in tiers])
    longevity = band(F.col("tenure_days"), longevity_days)
    recency = band(F.col("recency_days"), recency_days)
    return profile.withColumns(
        {
            "longevity_band": longevity,
            "recency_band": recency,
            "value_tier": F.element_at(F.element_at(grid, longevity + 1), recency + 1),
        }
    )
