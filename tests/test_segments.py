"""Value tiers: longevity x recency bands on a configured grid, worked out by hand."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from seglake.config import load_config
from seglake.errors import ConfigError
from transforms.segments import with_value_tier

GRID = [["Develop", "Nurture", "Reactivate"], ["Grow", "Retain", "Win back"], ["Core", "Rescue", "Lost"]]


def tiers_of(spark: SparkSession, rows: list[tuple[str, int, int]]) -> dict[str, tuple[int, int, str]]:
    profile = spark.createDataFrame(rows, "customer_id string, tenure_days int, recency_days int")
    tiered = with_value_tier(profile, longevity_days=[180, 730], recency_days=[90, 365], tiers=GRID)
    return {r["customer_id"]: (r["longevity_band"], r["recency_band"], r["value_tier"]) for r in tiered.collect()}


def test_bands_include_their_lower_bound(spark: SparkSession) -> None:
    assert tiers_of(
        spark,
        [
            ("first-day", 0, 0),  # bought today for the first time
            ("just-below", 179, 89),
            ("on-bounds", 180, 90),  # a value equal to a bound sits in the upper band
            ("middle", 729, 364),
            ("old-lost", 730, 365),
            ("very-old", 5000, 4000),
        ],
    ) == {
        "first-day": (0, 0, "Develop"),
        "just-below": (0, 0, "Develop"),
        "on-bounds": (1, 1, "Retain"),
        "middle": (1, 1, "Retain"),
        "old-lost": (2, 2, "Lost"),
        "very-old": (2, 2, "Lost"),
    }


def test_mixed_bands_pick_row_by_longevity_and_column_by_recency(spark: SparkSession) -> None:
    assert tiers_of(spark, [("new-lapsed", 100, 400), ("veteran-recent", 800, 10)]) == {
        "new-lapsed": (0, 2, "Reactivate"),
        "veteran-recent": (2, 0, "Core"),
    }


def test_default_grid_has_four_tiers() -> None:
    tiers = load_config().features.value_tiers
    assert sum(len(row) for row in tiers.tiers) == 4


def test_grid_that_does_not_fit_the_bounds_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"features.value_tiers: tiers must be 2 rows .* of 3 names"):
        load_config(None, ["features.value_tiers.recency_days=[30, 90]"])


def test_bounds_must_ascend() -> None:
    with pytest.raises(ConfigError, match="longevity_days must be ascending"):
        load_config(None, ["features.value_tiers.longevity_days=[365, 30]", "features.value_tiers.tiers=[[a],[b],[c]]"])
