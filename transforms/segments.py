"""Segments over the customer profile: value tiers (longevity x recency grid), named RFM
segments from a segment map, rule segments, campaign audiences and segment migration."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
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
    scored: DataFrame,
    cells: Mapping[str, tuple[str, str]],
    *,
    map_name: str,
    unlisted: str,
    unscored_bands: Sequence[tuple[int | None, str, str]] = (),
) -> DataFrame:
    """Add ``segment_map``, ``category`` and ``campaign`` from ``rfm_cell``.

    ``cells`` maps a cell ('113') to (category, campaign). ``unscored_bands`` names the
    rows without a cell by ``recency_days``: (bound, category, campaign) in order, a row
    takes the first band whose bound is above its recency (None: no bound). An unlisted
    cell, or a null cell no band takes, gets category ``unlisted`` ('Other') and a null
    campaign.
    """
    category_of = F.create_map(*[F.lit(v) for cell, (category, _) in cells.items() for v in (cell, category)])
    campaign_of = F.create_map(*[F.lit(v) for cell, (_, campaign) in cells.items() for v in (cell, campaign)])
    band_category: Column = F.lit(None).cast("string")
    band_campaign: Column = F.lit(None).cast("string")
    for bound, category, campaign in reversed(list(unscored_bands)):
        matches = F.col("recency_days").isNotNull() & (F.lit(True) if bound is None else F.col("recency_days") < bound)
        band_category = F.when(matches, F.lit(category)).otherwise(band_category)
        band_campaign = F.when(matches, F.lit(campaign)).otherwise(band_campaign)
    unscored = F.col("rfm_cell").isNull()
    return scored.withColumns(
        {
            "segment_map": F.lit(map_name),
            "category": F.coalesce(
                F.try_element_at(category_of, F.col("rfm_cell")), F.when(unscored, band_category), F.lit(unlisted)
            ),
            "campaign": F.coalesce(F.try_element_at(campaign_of, F.col("rfm_cell")), F.when(unscored, band_campaign)),
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


@dataclass(frozen=True)
class CampaignRule:
    """What an audience row of one campaign must pass: the consent column (None: no opt-in
    needed), the holdout share, and the priority that makes the campaign exclusive (None: not)."""

    channel: str | None = None
    consent_column: str | None = None
    holdout: float = 0.0
    priority: int | None = None


# Where an audience candidate ends: left out for want of consent, left out because an
# exclusive campaign with a lower priority number has the customer, held out, or contacted.
STATUSES = ("no_consent", "excluded", "holdout", "contact")
HOLDOUT_BUCKETS = 10_000  # holdout shares are exact to 1/10,000


def holdout_bucket(campaign: Column, customer_id: Column) -> Column:
    """0..9,999 from a hash of campaign and customer id: the same on every rerun and machine."""
    return F.pmod(F.xxhash64(campaign, customer_id), F.lit(HOLDOUT_BUCKETS))


def with_audience_status(candidates: DataFrame, rules: Mapping[str, CampaignRule]) -> DataFrame:
    """Add ``channel``, ``priority``, ``status`` (one of STATUSES) and ``is_holdout`` to each
    campaign x customer candidate.

    ``candidates`` holds ``campaign``, ``customer_id`` and every consent column the rules
    name (null counts as no consent). In order: a candidate without consent for the
    campaign's channel is ``no_consent``; of a customer's consented candidates in exclusive
    campaigns only the lowest priority number stays, the others are ``excluded``; then a
    share ``holdout`` of each campaign's rows, picked by :func:`holdout_bucket`, is
    ``holdout`` and the rest ``contact``. A campaign ``rules`` does not name has no
    channel, no holdout and no priority.
    """
    channel_of = _campaign_map({name: rule.channel for name, rule in rules.items()}, "string")
    priority_of = _campaign_map({name: rule.priority for name, rule in rules.items()}, "int")
    holdout_of = _campaign_map({name: round(rule.holdout * HOLDOUT_BUCKETS) for name, rule in rules.items()}, "int")
    consented: Column = F.lit(True)
    for name, rule in rules.items():
        if rule.consent_column is not None:
            has_consent = F.coalesce(F.col(rule.consent_column), F.lit(False))
            consented = F.when(F.col("campaign") == name, has_consent).otherwise(consented)
    exclusive = F.col("priority").isNotNull() & F.col("consented")
    first = Window.partitionBy("customer_id").orderBy(
        F.when(exclusive, F.col("priority")).asc_nulls_last(), F.col("campaign")
    )
    held = holdout_bucket(F.col("campaign"), F.col("customer_id")) < F.coalesce(
        F.try_element_at(holdout_of, F.col("campaign")), F.lit(0)
    )
    status = (
        F.when(~F.col("consented"), F.lit("no_consent"))
        .when(exclusive & (F.row_number().over(first) > 1), F.lit("excluded"))
        .when(held, F.lit("holdout"))
        .otherwise(F.lit("contact"))
    )
    return (
        candidates.withColumns(
            {
                "channel": F.try_element_at(channel_of, F.col("campaign")),
                "priority": F.try_element_at(priority_of, F.col("campaign")),
                "consented": consented,
            }
        )
        .withColumn("status", status)
        .withColumn("is_holdout", F.col("status") == "holdout")
        .drop("consented")
    )


def _campaign_map(values: Mapping[str, object], kind: str) -> Column:
    """campaign -> value as a map literal (the None values left out)."""
    pairs = [(name, value) for name, value in values.items() if value is not None]
    if not pairs:
        return F.create_map().cast(f"map<string,{kind}>")
    return F.create_map(*[item for name, value in pairs for item in (F.lit(name), F.lit(value).cast(kind))])


def to_campaign_summary(statuses: DataFrame, rules: Mapping[str, CampaignRule], *, as_of: dt.date) -> DataFrame:
    """Grain: campaign. Candidates and where they ended (the output of :func:`with_audience_status`)."""
    counts = [F.count_if(F.col("status") == status).alias(f"{status}_customers") for status in STATUSES]
    holdout_of = _campaign_map({name: rule.holdout for name, rule in rules.items()}, "double")
    consent_of = _campaign_map({name: rule.consent_column for name, rule in rules.items()}, "string")
    return (
        statuses.groupBy("campaign")
        .agg(
            F.first("channel").alias("channel"),
            F.first("priority").alias("priority"),
            F.count("*").alias("candidates"),
            *counts,
        )
        .select(
            F.lit(as_of).alias("as_of_date"),
            "campaign",
            "channel",
            F.try_element_at(consent_of, F.col("campaign")).alias("consent_column"),
            "priority",
            F.coalesce(F.try_element_at(holdout_of, F.col("campaign")), F.lit(0.0)).alias("holdout_share"),
            F.col("candidates").alias("candidate_customers"),
            "no_consent_customers",
            "excluded_customers",
            (F.col("holdout_customers") + F.col("contact_customers")).alias("audience_customers"),
            "holdout_customers",
            "contact_customers",
        )
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
