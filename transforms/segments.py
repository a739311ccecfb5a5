"""Segments over the customer profile: value tiers (longevity x recency grid), named RFM
segments from a segment map, rule segments, campaign audiences and segment migration."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

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


# --- named segments, rule segments, campaign audiences, migration -------------------------

NEW = "(new)"  # previous category of a customer who was not in the previous population
GONE = "(gone)"  # current category of a customer who left the population


def with_segment_category(
    scored: DataFrame, cells: Mapping[str, tuple[str, str]], *, map_name: str, unlisted: str
) -> DataFrame:
    """Add ``segment_map``, ``category`` and ``campaign`` from ``rfm_cell``.

    ``cells`` maps a cell ('113') to (category, campaign). An unlisted (or null) cell gets
    category ``unlisted`` ('Other') and a null campaign.
    """
    category_of = F.create_map(*[F.lit(v) for cell, (category, _) in cells.items() for v in (cell, category)])
    campaign_of = F.create_map(*[F.lit(v) for cell, (_, campaign) in cells.items() for v in (cell, campaign)])
    return scored.withColumns(
        {
            "segment_map": F.lit(map_name),
            "category": F.coalesce(F.try_element_at(category_of, F.col("rfm_cell")), F.lit(unlisted)),
            "campaign": F.try_element_at(campaign_of, F.col("rfm_cell")),
        }
    )


def to_rule_segments(profile: DataFrame, rules: Mapping[str, str], *, as_of: dt.date) -> DataFrame:
    """Grain: rule segment x customer. ``rules`` maps a segment name to a Spark SQL predicate.

    One pass: each customer gets the names of the predicates that are true for it (a null
    predicate result counts as false); a customer can be in many segments.
    """
    if rules:
        matches = F.array(*[F.when(F.expr(predicate), F.lit(name)) for name, predicate in rules.items()])
        segment = F.explode(F.filter(matches, lambda name: name.isNotNull()))
    else:
        profile, segment = profile.where(F.lit(False)), F.lit(None).cast("string")
    return profile.select("customer_id", segment.alias("segment")).select(
        F.lit(as_of).alias("as_of_date"), "segment", "customer_id"
    )


def to_campaign_audiences(
    rfm_segments: DataFrame, rule_segments: DataFrame, rule_campaigns: Mapping[str, str], *, as_of: dt.date
) -> DataFrame:
    """Grain: campaign x customer. From RFM categories (campaign not null) and rule segments.

    ``rule_campaigns`` maps a rule segment name to its campaign (rules without one are left
    out). A customer a campaign reaches several ways is listed once; ``source`` and
    ``segment`` name the first way: the RFM category, else the first rule in file order.
    """
    from_rfm = rfm_segments.where(F.col("campaign").isNotNull()).select(
        "campaign",
        "customer_id",
        F.lit("rfm").alias("source"),
        F.col("category").alias("segment"),
        F.lit(0).alias("priority"),
    )
    reasons = from_rfm
    if rule_campaigns:
        names = list(rule_campaigns)
        campaign_of = F.create_map(*[F.lit(v) for name in names for v in (name, rule_campaigns[name])])
        priority_of = F.create_map(*[F.lit(v) for i, name in enumerate(names, start=1) for v in (name, i)])
        from_rules = rule_segments.where(F.col("segment").isin(names)).select(
            F.try_element_at(campaign_of, F.col("segment")).alias("campaign"),
            "customer_id",
            F.lit("rule").alias("source"),
            "segment",
            F.try_element_at(priority_of, F.col("segment")).alias("priority"),
        )
        reasons = reasons.unionByName(from_rules)
    first = F.min_by(F.struct("source", "segment"), "priority")
    return (
        reasons.groupBy("campaign", "customer_id")
        .agg(first.alias("first"))
        .select(F.lit(as_of).alias("as_of_date"), "campaign", "customer_id", "first.source", "first.segment")
    )


def to_segment_migration(
    previous: DataFrame, current: DataFrame, *, as_of: dt.date, previous_as_of: dt.date
) -> DataFrame:
    """Grain: previous category x current category. Customers and revenue moving between them.

    ``previous`` and ``current`` hold ``customer_id``, ``category`` and ``monetary_amount``
    (gold/rfm_segments of two as-of dates). A customer only in ``current`` comes from
    '(new)', one only in ``previous`` goes to '(gone)'. Revenue is the current window
    monetary amount; for '(gone)' the previous one.
    """
    before = previous.select(
        "customer_id", F.col("category").alias("previous_category"), F.col("monetary_amount").alias("previous_amount")
    )
    after = current.select(
        "customer_id", F.col("category").alias("current_category"), F.col("monetary_amount").alias("current_amount")
    )
    moves = before.join(after, on="customer_id", how="full")
    revenue = F.sum(F.coalesce("current_amount", "previous_amount"))
    return (
        moves.groupBy(
            F.coalesce("previous_category", F.lit(NEW)).alias("previous_category"),
            F.coalesce("current_category", F.lit(GONE)).alias("current_category"),
        )
        .agg(F.count("*").alias("customers"), revenue.alias("revenue_amount"))
        .select(
            F.lit(as_of).alias("as_of_date"),
            F.lit(previous_as_of).alias("previous_as_of_date"),
            "previous_category",
            "current_category",
            "customers",
            F.coalesce(F.col("revenue_amount"), F.lit(0)).cast("decimal(18,2)").alias("revenue_amount"),
        )
    )


def population_aggregate(name: str, kind: str, column: str, *, accuracy: int = 10_000) -> Column:
    """The aggregate named ``name`` over ``column``: ``kind`` avg, min, max or pNN, the
    approximate NN-th percentile (``percentile_approx`` with ``accuracy``)."""
    value = F.col(column).cast("double")
    if kind == "avg":
        aggregate = F.avg(value)
    elif kind == "min":
        aggregate = F.min(value)
    elif kind == "max":
        aggregate = F.max(value)
    else:
        aggregate = F.percentile_approx(value, int(kind[1:]) / 100, accuracy)
    return aggregate.cast("double").alias(name)
