"""``segment``: gold/customer_profile -> RFM scores, named and rule segments, audiences, migration.

    seglake segment                                   # the latest profile as-of date
    seglake segment --as-of 2024-12-31 --set rfm.segment_map=rf_grid
    seglake segment --export csv                      # + one CSV per campaign

Reads the ``as_of_date`` partition of ``gold/customer_profile`` (``--as-of``, default the
latest present), checks the segment map (``rfm.segment_map``) and every rule predicate
(``rfm.rules``) before anything runs, then replaces that date's partition of
``gold/rfm_thresholds``, ``gold/rfm_segments``, ``gold/rule_segments``,
``gold/campaign_audiences`` and ``gold/segment_migration``.

Recency and frequency thresholds are exact at any scale: Spark finds the value at each rank
``ceil(j*N/n)`` (``transforms.rfm.to_exact_thresholds``) and only those n-1 values reach
the driver. Monetary ones come from ``approxQuantile`` with ``rfm.relative_error``.
Migration compares with the nearest earlier as-of date in ``gold/rfm_segments``; when a run
fills a gap before a later date, that later date's migration is recomputed against it, so
out-of-order runs end up as if run in order.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

if __package__ in (None, ""):  # run as a file: spark-submit jobs/segment.py
    import _bootstrap  # noqa: F401

from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seglake import catalog, tables
from seglake.config import SeglakeConfig
from seglake.errors import UserError
from seglake.job import Job, Laps, StageResult, job_log, run_job
from seglake.lake import Lake
from seglake.runlog import LIFETIME, last_rollup, lifetime_mismatch, rollup_mismatch
from seglake.segment_maps import (
    OTHER,
    CampaignSettings,
    Rule,
    SegmentMap,
    campaign_slug,
    check_consent_columns,
    check_rules,
    load_campaigns,
    load_rules,
    load_segment_map,
    population_parts,
)
from transforms.calendar import last_whole_month
from transforms.offers import (
    ITEM_COOCCURRENCE,
    OFFER_COLUMNS,
    to_customer_categories,
    to_item_cooccurrence_offers,
    to_lifetime_categories,
    to_next_best_offer,
    to_offer_coverage,
    to_offer_groups,
)
from transforms.rfm import INTEGER_METRICS, METRICS, Threshold, to_exact_thresholds, to_rfm_thresholds, with_rfm_scores
from transforms.segments import (
    CampaignRule,
    population_aggregate,
    to_campaign_audiences,
    to_campaign_summary,
    to_rule_segments,
    to_segment_migration,
    with_audience_status,
    with_segment_category,
)

PROFILE = "gold/customer_profile"
SCORED_COLUMNS = ["customer_id", "recency_days", "frequency", "monetary_amount", "value_tier"]
log = job_log("segment")
RFM_SEGMENT_COLUMNS = [
    "customer_id",
    "as_of_date",
    "recency_days",
    "frequency",
    "monetary_amount",
    "r_score",
    "f_score",
    "m_score",
    "rfm_cell",
    "segment_map",
    "category",
    "campaign",
    "value_tier",
    "clv_amount",
    "clv_decile",
    "probability_alive",
    "is_above_average_clv",
]
VALUE = "gold/customer_value"
MONTHS = "silver/customer_month"
VALUE_COLUMNS = ["clv_amount", "clv_decile", "probability_alive"]  # joined from VALUE for segments and rules


AUDIENCE_COLUMNS = catalog.table("gold/campaign_audiences").column_names
EXPORT_COLUMNS = ["customer_id", "segment", "source", "offer_category", "is_holdout"]  # per campaign CSV file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--export", choices=["csv"], help="also write one CSV file per campaign")
    parser.add_argument(
        "--export-dir",
        metavar="PATH",
        help="folder for the --export files (default: <lake root>/exports/campaigns/<as_of>)",
    )


def check_campaigns(segment_map: SegmentMap, rules: list[Rule], rules_file: str) -> dict[str, str]:
    """Campaign -> file slug; two campaigns with one slug would share an export file."""
    slugs: dict[str, str] = {}
    named = [(c.campaign, segment_map.file) for c in segment_map.categories]
    named += [(band.campaign, segment_map.file) for band in segment_map.no_window_purchase]
    named += [(r.campaign, rules_file) for r in rules if r.campaign]
    for campaign, file in named:
        slug = campaign_slug(campaign)
        clash = next((other for other, s in slugs.items() if s == slug and other != campaign), None)
        if clash is not None:
            raise UserError(f"{file}: campaign {campaign!r}: export file {slug}.csv is also {clash!r}'s; rename one")
        slugs[campaign] = slug
    return slugs


def next_best_offers(lake: Lake, scored: DataFrame, as_of: dt.date, details: dict[str, Any]) -> DataFrame:
    """Write gold/next_best_offer for ``as_of``; return customer_id -> offer_category (rank 1).

    ``offers.method`` 'group_lift' (the default): the groups are ``offers.group_by`` over the
    scored customers (``category`` = their segment); 'item_cooccurrence': per customer, from
    the categories bought together with theirs. Bought categories come from
    silver/customer_month (transforms/offers.py). Without the rollup or with
    ``offers.enabled: false`` nothing is written and the audiences carry no offer.
    """
    offers_config = lake.config.offers
    no_offers = scored.select("customer_id", F.lit(None).cast("string").alias("offer_category")).limit(0)
    if not offers_config.enabled or not lake.exists(MONTHS):
        log.info("next-best-offer: " + ("off (offers.enabled)" if not offers_config.enabled else f"no {MONTHS}"))
        details["next_best_offer"] = None
        return no_offers
    bought = bought_categories(lake, as_of)
    if offers_config.method == ITEM_COOCCURRENCE:
        offers = to_item_cooccurrence_offers(
            scored.select("customer_id"),
            bought,
            as_of=as_of,
            top_n=offers_config.top_n,
            neighbours=offers_config.neighbours,
            min_together=offers_config.min_together,
        )
        how = f"item co-occurrence ({offers_config.neighbours} neighbours, together >= {offers_config.min_together})"
    else:
        offers = to_next_best_offer(
            to_offer_groups(scored, offers_config.group_by),
            bought,
            as_of=as_of,
            grouping=" x ".join("segment" if c == "category" else c for c in offers_config.group_by),
            top_n=offers_config.top_n,
            min_group_customers=offers_config.min_group_customers,
            min_category_buyers=offers_config.min_category_buyers,
        )
        how = ", ".join(offers_config.group_by)
    lake.replace_as_of(offers.select(*OFFER_COLUMNS), "gold/next_best_offer", as_of)
    written = written_partition(lake, "gold/next_best_offer", as_of)
    coverage = tables.first_row(to_offer_coverage(written, top_n=offers_config.top_n))
    details["next_best_offer"] = {
        "method": offers_config.method,
        "grouping": offers_config.group_by if offers_config.method != ITEM_COOCCURRENCE else None,
        "customers_with_offers": int(coverage["customers"]),
        "customers_with_all_offers": int(coverage["full"]),
        "customers_with_a_lift_offer": int(coverage["with_lift"]),
        "customers_with_a_cooccurrence_offer": int(coverage["with_cooccurrence"]),
    }
    log.info(
        f"next-best-offer by {how}: {coverage['customers']:,} customers with offers, "
        f"{coverage['full']:,} with {offers_config.top_n}, {coverage['with_lift']:,} with a group-lift offer, "
        f"{coverage['with_cooccurrence']:,} with a co-occurrence offer"
    )
    return written.where(F.col("rank") == 1).select("customer_id", "offer_category")


def bought_categories(lake: Lake, as_of: dt.date) -> DataFrame:
    """Per customer, the categories bought up to the last whole month on or before ``as_of``.

    From silver/customer_lifetime when the last features run left it through exactly that
    month and the tables are the ones it recorded (one row per customer: no months of
    history read); else from every month of silver/customer_month.
    """
    built = last_rollup(lake) if lake.exists(LIFETIME) else None
    state = (built or {}).get("lifetime") or {}
    month = last_whole_month(as_of)
    if (
        built is not None
        and state.get("through_month") == month
        and lifetime_mismatch(lake, state, lake.config.features.recency_last_k) is None
        and rollup_mismatch(lake, built) is None
    ):
        log.info(f"next-best-offer: bought categories from {LIFETIME} (through {month})")
        return to_lifetime_categories(lake.read(LIFETIME))
    log.info(f"next-best-offer: bought categories from every month up to {month} of {MONTHS}")
    return to_customer_categories(lake.read(MONTHS), as_of=as_of)


def value_partition(lake: Lake, as_of: dt.date, details: dict[str, Any]) -> DataFrame | None:
    """The ``as_of`` partition of gold/customer_value, or None (logged) when the value stage has not run."""
    if lake.exists(VALUE):
        values = lake.read(VALUE).where(F.col("as_of_date") == F.lit(as_of)).select("customer_id", *VALUE_COLUMNS)
        if values.limit(1).count():
            details["customer_value"] = True
            return values
    log.info(f"no {VALUE} for {as_of} (run `seglake value --as-of {as_of}`): CLV columns stay null")
    details["customer_value"] = False
    return None


def with_value(profile: DataFrame, values: DataFrame | None) -> DataFrame:
    """The profile plus the CLV columns rules and segments use (typed nulls without ``values``)."""
    if values is None:
        types = {c.name: c.data_type for c in catalog.table(VALUE).columns}
        return profile.withColumns({name: F.lit(None).cast(types[name]) for name in VALUE_COLUMNS})
    return profile.join(values, on="customer_id", how="left")


def campaign_rules_of(settings: CampaignSettings, campaigns: list[str]) -> dict[str, CampaignRule]:
    """The consent / holdout / priority rule of every campaign the map and rules name."""
    unlisted = [c for c in campaigns if not settings.of(c).listed]
    if unlisted and settings.campaigns:
        log.info(
            f"campaigns not in {settings.file} (no channel, holdout {settings.default_holdout:g}, not exclusive): "
            + ", ".join(unlisted)
        )
    rules = {}
    for name in campaigns:
        campaign = settings.of(name)
        rules[name] = CampaignRule(
            channel=campaign.channel,
            consent_column=campaign.consent_column,
            holdout=campaign.holdout,
            priority=campaign.priority,
        )
    return rules


def rfm_thresholds(
    profile: DataFrame,
    config: SeglakeConfig,
    details: dict[str, Any] | None = None,
    *,
    scoring: str = "all",
    as_of: dt.date | None = None,
) -> tuple[dict[str, list[Threshold]], dict[str, str]]:
    """Thresholds per metric and the method of each.

    Recency and frequency: exact at any scale, by ``to_exact_thresholds`` in Spark (one
    query for both); only its n-1 rows per metric are collected. Monetary:
    ``approxQuantile`` with ``rfm.relative_error``. Their seconds go into ``details``.
    """
    rfm, details = config.rfm, details if details is not None else {}
    if rfm.histogram_max_values is not None:
        log.info(
            f"rfm.histogram_max_values = {rfm.histogram_max_values} is ignored: recency and frequency thresholds "
            f"are always exact now; remove the key from {config.source}"
        )
    thresholds: dict[str, list[Threshold]] = {}
    methods: dict[str, str] = {}
    started = time.perf_counter()
    columns = [METRICS[metric][0] for metric in INTEGER_METRICS]
    rows = to_exact_thresholds(profile, columns, rfm.tiles).orderBy("column", "tile").collect()  # 2 x (n-1) rows
    for metric, column in zip(INTEGER_METRICS, columns, strict=True):
        metric_rows = [row for row in rows if row["column"] == column]
        if not metric_rows and scoring == "window_buyers":
            raise UserError(
                f"{PROFILE} as of {as_of}: no customer bought in the window (features.window_days = "
                f"{config.features.window_days}), and the segment map scores window buyers; choose a later --as-of "
                "or a map with scoring: all (rfm.segment_map=infoworks)"
            )
        if not metric_rows:
            raise UserError(f"{PROFILE}: {column} is null for every customer; rerun `seglake features`")
        thresholds[metric] = [row["value"] for row in metric_rows]
        methods[metric] = (
            f"exact (values at ranks ceil(j*N/n) of N = {metric_rows[0]['population']:,}; "
            f"{metric_rows[0]['distinct_values']:,} distinct values)"
        )
    details["exact_thresholds_seconds"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    probabilities = [j / rfm.tiles for j in range(1, rfm.tiles)]
    (thresholds["monetary"],) = profile.approxQuantile([METRICS["monetary"][0]], probabilities, rfm.relative_error)
    details["approx_quantile_seconds"] = round(time.perf_counter() - started, 3)
    methods["monetary"] = f"approxQuantile (relative error {rfm.relative_error})"
    return {metric: thresholds[metric] for metric in METRICS}, methods


def population_values(profile: DataFrame, rules: list[Rule], relative_error: float) -> dict[str, float | None]:
    """The population columns the rules use (one aggregation, one row)."""
    names = sorted({name for rule in rules for name in rule.population})
    if not names:
        return {}
    accuracy = max(int(1 / relative_error), 1)
    row = tables.first_row(
        profile.agg(*[population_aggregate(name, *population_parts(name), accuracy=accuracy) for name in names])
    )
    return {name: row[name] for name in names}


def run(lake: Lake, *, as_of: dt.date, export: str | None = None, export_dir: str | None = None) -> StageResult:
    """Score the ``as_of`` profile and replace that date's partition of the five segment tables."""
    spark, config = lake.spark, lake.config
    details: dict[str, Any] = {}
    lap = Laps(details)
    segment_map = load_segment_map(config.rfm.segment_map, config.rfm.tiles)
    rules_file, rules = load_rules(config.rfm.rules)
    slugs = check_campaigns(segment_map, rules, rules_file)
    settings = load_campaigns(config.rfm.campaigns)
    campaign_rules = campaign_rules_of(settings, list(slugs))
    profiles = lake.read(PROFILE, hint="run `seglake features` first")
    missing = [c for c in SCORED_COLUMNS if c not in profiles.columns]
    if missing:
        raise UserError(f"{PROFILE} has no column {missing[0]}; rerun `seglake features` with this version")
    check_rules(with_value(profiles, None), rules, file=rules_file, window_days=config.features.window_days)
    check_consent_columns(profiles, settings)
    unknown = [c for c in config.offers.group_by if c != "category" and c not in profiles.columns]
    if unknown:
        raise UserError(f"offers.group_by: {unknown[0]} is neither 'category' nor a {PROFILE} column")
    log.info(
        f"as of {as_of}: segment map {segment_map.name} ({segment_map.file}, scoring {segment_map.scoring}), "
        f"{len(rules)} rules ({rules_file}), campaign settings {settings.file}"
    )

    lap("validate")
    values = value_partition(lake, as_of, details)
    profile = with_value(profiles.where(F.col("as_of_date") == F.lit(as_of)), values)
    consent_columns = sorted({r.consent_column for r in campaign_rules.values() if r.consent_column})
    group_columns = [c for c in config.offers.group_by if c != "category" and c not in SCORED_COLUMNS]
    scored_input = profile.select(*SCORED_COLUMNS, *VALUE_COLUMNS, *consent_columns, *group_columns).cache()
    try:
        rows_in = scored_input.count()
        if rows_in == 0:
            raise UserError(f"{PROFILE} as of {as_of} has no customers; nothing to segment")
        lap("read_and_cache")
        is_scored = F.col("frequency") >= 1 if segment_map.scoring == "window_buyers" else None
        ranked = scored_input if is_scored is None else scored_input.where(is_scored)
        thresholds, methods = rfm_thresholds(ranked, config, details, scoring=segment_map.scoring, as_of=as_of)
        for metric, bounds in thresholds.items():
            shown = ", ".join(f"{v:g}" for v in bounds)
            log.info(f"{metric} thresholds [{shown}] by {methods[metric]}")
        details.update({"thresholds": thresholds, "threshold_methods": methods, "segment_map": segment_map.name})

        scored = scored_input.transform(with_rfm_scores, thresholds, scored=is_scored).transform(
            with_segment_category,
            segment_map.cells(),
            map_name=segment_map.name,
            unlisted=OTHER,
            unscored_bands=segment_map.bands(),
        )
        average_clv = tables.first_row(scored_input.agg(F.avg("clv_amount")))[0]
        details["average_clv"] = None if average_clv is None else float(average_clv)
        above = F.col("clv_amount") > F.lit(average_clv) if average_clv is not None else F.lit(None)
        rfm_segments = scored.withColumns({"as_of_date": F.lit(as_of), "is_above_average_clv": above.cast("boolean")})
        rfm_segments = rfm_segments.select(*RFM_SEGMENT_COLUMNS)

        lap("thresholds")
        tiles = to_rfm_thresholds(scored, thresholds, as_of=as_of, scoring=segment_map.scoring)
        tile_rows = tiles.collect()  # metric x tile: a few rows
        lake.replace_as_of(spark.createDataFrame(tile_rows, tiles.schema), "gold/rfm_thresholds", as_of)
        empty = [f"{r['metric']} tile {r['tile']}" for r in tile_rows if r["customers"] == 0]
        if empty:
            log.info(f"empty tiles (ties): {', '.join(empty)}")

        rows_out = lake.replace_as_of(rfm_segments, "gold/rfm_segments", as_of)
        sizes = {row["category"]: int(row["count"]) for row in scored.groupBy("category").count().collect()}
        order = [*segment_map.category_names(), OTHER]
        log.info("categories: " + ", ".join(f"{name} {sizes.get(name, 0):,}" for name in order))
        details["categories"] = {name: sizes.get(name, 0) for name in order}

        lap("rfm_segments")
        population = population_values(profile, rules, config.rfm.relative_error)
        if population:
            log.info("population values: " + ", ".join(f"{k} = {v}" for k, v in population.items()))
        rule_input = profile.withColumns(
            {"window_days": F.lit(config.features.window_days)}
            | {name: F.lit(value).cast("double") for name, value in population.items()}
        )
        rule_segments = to_rule_segments(rule_input, {r.name: r.predicate for r in rules}, as_of=as_of)
        lake.replace_as_of(rule_segments, "gold/rule_segments", as_of)
        rule_sizes = counts(lake, "gold/rule_segments", as_of, "segment")
        if rules:
            log.info("rule segments: " + ", ".join(f"{r.name} {rule_sizes.get(r.name, 0):,}" for r in rules))
        details["rule_segments"] = {r.name: rule_sizes.get(r.name, 0) for r in rules}

        lap("rule_segments")
        first_offers = next_best_offers(lake, scored, as_of, details)
        lap("next_best_offer")
        written_rules = written_partition(lake, "gold/rule_segments", as_of)
        rule_campaigns = {r.name: r.campaign for r in rules if r.campaign}
        candidates = to_campaign_audiences(rfm_segments, written_rules, rule_campaigns, as_of=as_of)
        candidates = candidates.join(first_offers, on="customer_id", how="left")
        if consent_columns:
            consent = scored_input.select("customer_id", *consent_columns)
            candidates = candidates.join(consent, on="customer_id", how="left")
        statuses = with_audience_status(candidates, campaign_rules).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            audiences = statuses.where(F.col("status").isin("holdout", "contact"))
            lake.replace_as_of(audiences.select(*AUDIENCE_COLUMNS), "gold/campaign_audiences", as_of)
            summary = to_campaign_summary(statuses, campaign_rules, as_of=as_of).collect()  # one row per campaign
        finally:
            statuses.unpersist()
        summary_rows = {row["campaign"]: row for row in summary}
        summary_frame = spark.createDataFrame(summary or [], catalog.table("gold/campaign_summary").ddl)
        lake.replace_as_of(summary_frame, "gold/campaign_summary", as_of)
        log.info(
            "campaign audiences (audience / held out / no consent / excluded by priority): "
            + ", ".join(
                f"{c} {row['audience_customers']:,}/{row['holdout_customers']:,}/{row['no_consent_customers']:,}"
                f"/{row['excluded_customers']:,}"
                for c, row in summary_rows.items()
            )
        )
        details["campaign_audiences"] = {
            c: summary_rows[c]["audience_customers"] if c in summary_rows else 0 for c in slugs
        }
        details["campaign_filtered"] = {
            c: {
                "no_consent": row["no_consent_customers"],
                "excluded": row["excluded_customers"],
                "holdout": row["holdout_customers"],
            }
            for c, row in summary_rows.items()
        }

        lap("campaign_audiences")
        migrate(lake, rfm_segments, as_of, details)
        lap("segment_migration")
        if export == "csv":
            target = export_dir or f"{tables.lake_root(config)}/exports/campaigns/{as_of}"
            audiences_written = written_partition(lake, "gold/campaign_audiences", as_of)
            export_csv(spark, audiences_written, slugs, target, replace=not export_dir)
            log.info(f"exported {len(slugs)} campaign files to {target}")
            details["export_dir"] = target
            lap("export")
    finally:
        scored_input.unpersist()
    return StageResult(rows_in=rows_in, rows_out=rows_out, details=details)


def written_partition(lake: Lake, table: str, as_of: dt.date) -> DataFrame:
    """The ``as_of`` partition of ``table`` as this run committed it."""
    return lake.read_written(table).where(F.col("as_of_date") == F.lit(as_of))


def counts(lake: Lake, table: str, as_of: dt.date, column: str) -> dict[str, int]:
    """Rows per value of ``column`` in the as-of partition just written (a handful of groups)."""
    rows = written_partition(lake, table, as_of).groupBy(column).count().collect()
    return {row[column]: int(row["count"]) for row in rows}


def migrate(lake: Lake, current: DataFrame, as_of: dt.date, details: dict[str, Any]) -> None:
    """Migration of ``as_of`` from the nearest earlier date; and of the nearest later date from ``as_of``."""
    segments = lake.read_written("gold/rfm_segments")
    dates = sorted(row[0] for row in segments.select("as_of_date").distinct().collect())
    earlier = [d for d in dates if d < as_of]
    later = [d for d in dates if d > as_of]
    if earlier:
        previous = segments.where(F.col("as_of_date") == F.lit(earlier[-1]))
        migration = to_segment_migration(previous, current, as_of=as_of, previous_as_of=earlier[-1])
        log.info(f"migration from {earlier[-1]}")
    else:
        migration = to_segment_migration(current.limit(0), current, as_of=as_of, previous_as_of=as_of).limit(0)
        log.info("migration: no earlier as-of date in gold/rfm_segments; empty partition")
    lake.replace_as_of(migration, "gold/segment_migration", as_of)
    details["migration_previous_as_of"] = earlier[-1] if earlier else None
    if later:
        following = segments.where(F.col("as_of_date") == F.lit(later[0]))
        remade = to_segment_migration(current, following, as_of=later[0], previous_as_of=as_of)
        lake.replace_as_of(remade, "gold/segment_migration", later[0])
        log.info(f"migration of the later {later[0]} recomputed from {as_of} (a run out of order)")
        details["migration_recomputed"] = later[0]


def export_csv(spark: SparkSession, audiences: DataFrame, slugs: dict[str, str], target: str, *, replace: bool) -> None:
    """One ``<campaign slug>.csv`` (header: EXPORT_COLUMNS) per campaign in ``target``.

    ``is_holdout`` true marks the control group: keep those customers out of the send.

    Spark writes each campaign as one part file (all its rows in one task); the files are
    then renamed through the Hadoop file system, so any lake URI works. A campaign with
    no customers gets a file with the header only.
    """
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path  # type: ignore[union-attr]
    root = hadoop_path(target)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if replace and fs.exists(root):
        fs.delete(root, True)
    staging = f"{target}/_staging"
    slug_of = F.create_map(*[F.lit(v) for campaign, slug in slugs.items() for v in (campaign, slug)])
    (
        audiences.select(F.try_element_at(slug_of, F.col("campaign")).alias("campaign_slug"), *EXPORT_COLUMNS)
        .repartition("campaign_slug")
        .sortWithinPartitions("campaign_slug", "customer_id")
        .write.mode("overwrite")
        .partitionBy("campaign_slug")
        .option("header", True)
        .csv(staging)
    )
    for slug in sorted(set(slugs.values())):
        final = hadoop_path(f"{target}/{slug}.csv")
        if fs.exists(final):
            fs.delete(final, False)
        parts = fs.globStatus(hadoop_path(f"{staging}/campaign_slug={slug}/part-*"))
        if parts:
            fs.rename(parts[0].getPath(), final)
        else:
            stream = fs.create(final, True)
            stream.write(bytearray((",".join(EXPORT_COLUMNS) + "\n").encode()))
            stream.close()
        checksum = hadoop_path(f"{target}/.{slug}.csv.crc")  # the local file system's side files
        if fs.exists(checksum):
            fs.delete(checksum, False)
    fs.delete(hadoop_path(staging), True)


JOB = Job(
    name="segment",
    summary="RFM scores, named segments, rule segments, campaign audiences and segment migration for one as-of date "
    "(default: the latest in gold/customer_profile).",
    run=run,
    as_of_from="profile",
    add_arguments=add_arguments,
    options=lambda args: {"export": args.export, "export_dir": args.export_dir},
)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    sys.exit(main())
