"""``make bench-offers``: hit rate of next-best-offer on real data.

    python -m bench.offers                        # Complete Journey: build bench/out/lake-complete-journey,
                                                  # measure, write section offers of BENCHMARKS.md
    python -m bench.offers --data online_retail   # Online Retail at product level:
                                                  # bench/out/lake-online-retail-products, section offers-online-retail
    python -m bench.offers --reuse                # measure on the lake a previous run left
    python -m bench.offers --as-of 2017-10-31 --groupings segment --methods '' --no-write

Data sets (``--data``, :data:`DATASETS`): ``complete_journey`` (the 84.51 sample, category =
department; the default) and ``online_retail`` (UCI Online Retail, category = product, the
StockCode, by conf/mappings/online_retail_products.yaml). The lake is made by seglake's own
jobs from the real data (../shared/data) with the data set's config: ``ingest``, ``cleanse``,
then for each month-end as-of date ``features`` (incremental after the first), ``segment`` and
``clusters``. For each as-of date D and each grouping (then each per-customer method),
transforms/offers.py (bench/offer_methods.py) makes the offers from the categories bought up to
D (``to_customer_categories``) and the popularity baseline, and ``to_offer_hit_rate`` scores
both on the month after D from ``silver/customer_month``. The data set's section of
BENCHMARKS.md is rewritten with the figures and the command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bench.offer_methods import SCORED, als_scores, cooccurrence_scores, ranked_offers
from seglake.config import load_config
from seglake.session import build_session
from transforms.calendar import last_whole_month, month_label, shift_month
from transforms.offers import (
    COOCCURRENCE,
    DEFAULT_GROUP_COLUMNS,
    DEFAULT_GROUPING,
    DEFAULT_MIN_CATEGORY_BUYERS,
    DEFAULT_MIN_GROUP_CUSTOMERS,
    DEFAULT_MIN_TOGETHER,
    DEFAULT_NEIGHBOURS,
    LIFT,
    to_customer_categories,
    to_item_cooccurrence_offers,
    to_month_categories,
    to_next_best_offer,
    to_offer_groups,
    to_offer_hit_rate,
    to_popular_offers,
)

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.2
TOP_N = 3


@dataclass(frozen=True)
class Dataset:
    """A data set the benchmark runs on."""

    config: Path
    mapping: str  # conf/mappings/<mapping>.yaml for ingest
    lake: Path
    as_of_dates: tuple[str, ...]  # month ends with a following month in the data
    section: str  # of BENCHMARKS.md
    command: str
    description: str  # what the data and its category are, for the section's header


DATASETS: dict[str, Dataset] = {
    "complete_journey": Dataset(
        config=ROOT / "conf" / "complete_journey.yaml",
        mapping="complete_journey",
        lake=ROOT / "bench" / "out" / "lake-complete-journey",
        # the last four month ends of the sample (2017) that have a following month in it
        as_of_dates=("2017-08-31", "2017-09-30", "2017-10-31", "2017-11-30"),
        section="offers",
        command="make bench-offers",
        description="the 84.51 Complete Journey sample (real grocery baskets of 2017; category = the department "
        "with the largest amount on the basket)",
    ),
    "online_retail": Dataset(
        config=ROOT / "conf" / "online_retail.yaml",
        mapping="online_retail_products",
        lake=ROOT / "bench" / "out" / "lake-online-retail-products",
        # month ends of 2011 with a whole following month (November 2011 is complete, the
        # data ends 2011-12-09)
        as_of_dates=("2011-07-31", "2011-08-31", "2011-09-30", "2011-10-31"),
        section="offers-online-retail",
        command='make bench-offers ARGS="--data online_retail"',
        description="UCI Online Retail (invoices of a UK online gift shop, 2010-12 to 2011-12) at product level: "
        "category = the product (StockCode, normalised; conf/mappings/online_retail_products.yaml) with the "
        "largest amount on the invoice",
    ),
}
DEFAULT_DATA = "complete_journey"
# grouping -> (columns of the per-customer frame of customers_at, min_category_buyers)
GROUPINGS: dict[str, tuple[tuple[str, ...], int]] = {
    DEFAULT_GROUPING: (DEFAULT_GROUP_COLUMNS, DEFAULT_MIN_CATEGORY_BUYERS),
    "segment": (("category",), DEFAULT_MIN_CATEGORY_BUYERS),
    "top_category": (("top_category",), DEFAULT_MIN_CATEGORY_BUYERS),
    "rfm_cell": (("rfm_cell",), DEFAULT_MIN_CATEGORY_BUYERS),
    "value_tier": (("value_tier",), DEFAULT_MIN_CATEGORY_BUYERS),
    "cluster": (("cluster_id",), DEFAULT_MIN_CATEGORY_BUYERS),
    "segment x cluster": (("category", "cluster_id"), DEFAULT_MIN_CATEGORY_BUYERS),
    # without the minimum support: any category a group bought may be offered by lift
    f"{DEFAULT_GROUPING} (min buyers 1)": (DEFAULT_GROUP_COLUMNS, 1),
    "segment (min buyers 1)": (("category",), 1),
}


RECENT_MONTHS = 3  # "recent" categories for the recency-weighted methods: the last 3 whole months


class MethodInputs:
    """What a per-customer method needs at one as-of date."""

    def __init__(
        self, rollup: DataFrame, customers: DataFrame, bought: DataFrame, recent: DataFrame, as_of: dt.date
    ) -> None:
        self.rollup, self.customers, self.bought, self.recent = rollup, customers, bought, recent
        self.as_of, self.last_month = as_of, last_whole_month(as_of)


def _scored(scores: Callable[[MethodInputs], DataFrame], name: str) -> Callable[[MethodInputs], DataFrame]:
    """A method of bench/offer_methods.py (scores: customer_id, category, score) -> its offers."""
    return lambda m: ranked_offers(m.bought, scores(m), as_of=m.as_of, method=name, top_n=TOP_N)


def _items(similarity: str, neighbours: int, min_together: int) -> tuple[str, Callable[[MethodInputs], DataFrame]]:
    """transforms/offers.py to_item_cooccurrence_offers with these parameters: (name, offers)."""
    name = f"item co-occurrence {similarity}, {neighbours} neighbours, together >= {min_together}"

    def offers(m: MethodInputs) -> DataFrame:
        return to_item_cooccurrence_offers(
            m.customers,
            m.bought,
            as_of=m.as_of,
            top_n=TOP_N,
            neighbours=neighbours,
            min_together=min_together,
            similarity=similarity,
            grouping=name,
        )

    return name, offers


_SCORES: dict[str, Callable[[MethodInputs], DataFrame]] = {
    "co-occurrence mean P(c given b)": lambda m: cooccurrence_scores(m.bought, kind="mean_p"),
    "co-occurrence sum P(c given b)": lambda m: cooccurrence_scores(m.bought, kind="sum_p"),
    "co-occurrence mean lift(b to c)": lambda m: cooccurrence_scores(m.bought, kind="mean_lift"),
    "co-occurrence mean P(c given b) + popularity 0.5": lambda m: cooccurrence_scores(m.bought, prior=0.5),
    "co-occurrence mean P(c given b), recent x3": lambda m: cooccurrence_scores(
        m.bought, recent=m.recent, recent_weight=2.0
    ),
    "co-occurrence mean P(c given b) + popularity 0.5, recent x3": lambda m: cooccurrence_scores(
        m.bought, prior=0.5, recent=m.recent, recent_weight=2.0
    ),
    "ALS implicit rank 10": lambda m: als_scores(m.rollup, m.bought, last_month=m.last_month, rank=10),
    "ALS implicit rank 3": lambda m: als_scores(m.rollup, m.bought, last_month=m.last_month, rank=3),
}
# per-customer methods: name -> offers (OFFER_COLUMNS). The co-occurrence and ALS scores of
# bench/offer_methods.py ranked by ranked_offers, then the item co-occurrence offers of
# transforms/offers.py (the first: its defaults).
METHODS: dict[str, Callable[[MethodInputs], DataFrame]] = {
    **{name: _scored(scores, name) for name, scores in _SCORES.items()},
    **dict(
        _items(*params)
        for params in (
            ("cosine", DEFAULT_NEIGHBOURS, DEFAULT_MIN_TOGETHER),
            ("conditional", DEFAULT_NEIGHBOURS, DEFAULT_MIN_TOGETHER),
            ("cosine", 20, DEFAULT_MIN_TOGETHER),
            ("cosine", 200, 1),
            ("conditional", 20, DEFAULT_MIN_TOGETHER),
            ("conditional", 200, DEFAULT_MIN_TOGETHER),
            ("conditional", DEFAULT_NEIGHBOURS, 3),
            ("conditional", DEFAULT_NEIGHBOURS, 5),
        )
    ),
}


def build_lake(data: Dataset, lake: Path, as_of_dates: list[dt.date]) -> None:
    """ingest, cleanse, then features, segment and clusters for each as-of date, by the jobs."""
    from jobs import cleanse, clusters, features, ingest, segment

    shutil.rmtree(lake, ignore_errors=True)
    common = ["--config", str(data.config), "--set", f"lake.root={lake}", "--set", "spark.console_progress=off"]
    steps: list[tuple[str, Callable[[list[str]], int], list[str]]] = [
        ("ingest", ingest.main, ["--mapping", data.mapping]),
        ("cleanse", cleanse.main, []),
    ]
    for i, as_of in enumerate(as_of_dates):
        incremental = ["--incremental"] if i else []
        steps += [
            (f"features {as_of}", features.main, ["--as-of", str(as_of), *incremental]),
            (f"segment {as_of}", segment.main, ["--as-of", str(as_of)]),
            (f"clusters {as_of}", clusters.main, ["--as-of", str(as_of)]),
        ]
    cwd = Path.cwd()
    for name, main, argv in steps:
        started = time.perf_counter()
        os.chdir(ROOT)  # the mapping's paths are relative to the project root
        try:
            status = main([*common, *argv])
        finally:
            os.chdir(cwd)
        if status != 0:
            raise SystemExit(f"bench offers: {name} failed (exit {status})")
        print(f"bench offers: {name} in {time.perf_counter() - started:.1f}s", flush=True)


def customers_at(spark: SparkSession, lake: Path, as_of: dt.date) -> DataFrame:
    """Per customer of gold/rfm_segments at ``as_of``: its segment and cell, the profile's
    top_category and value tier, and the cluster id (null without gold/clusters)."""

    def gold(table: str) -> DataFrame:
        return spark.read.format("delta").load(str(lake / "gold" / table)).where(F.col("as_of_date") == F.lit(as_of))

    segments = gold("rfm_segments").select("customer_id", "category", "rfm_cell", "value_tier")
    profile = gold("customer_profile").select("customer_id", "top_category", "main_store")
    customers = segments.join(profile, "customer_id", "left")
    if (lake / "gold" / "clusters" / "_delta_log").is_dir():
        return customers.join(gold("clusters").select("customer_id", "cluster_id"), "customer_id", "left")
    return customers.withColumn("cluster_id", F.lit(None).cast("int"))


def measure(
    spark: SparkSession, lake: Path, as_of: dt.date, groupings: list[str], methods: list[str] | None = None
) -> list[dict[str, Any]]:
    """One result per grouping, then per method: the hit-rate row plus the share of offers
    by lift (by the method's score for a method)."""
    rollup = spark.read.format("delta").load(str(lake / "silver" / "customer_month"))
    customers = customers_at(spark, lake, as_of).cache()
    bought = to_customer_categories(rollup, as_of=as_of).join(customers.select("customer_id"), "customer_id").cache()
    following = to_month_categories(rollup, month=shift_month(month_label(as_of), 1)).cache()
    baseline = to_popular_offers(customers, bought, as_of=as_of, top_n=TOP_N).cache()
    first_recent = shift_month(last_whole_month(as_of), 1 - RECENT_MONTHS)
    recent = to_customer_categories(rollup.where(F.col("month") >= first_recent), as_of=as_of)
    inputs = MethodInputs(rollup, customers.select("customer_id"), bought, recent, as_of)
    results = []
    runs: list[tuple[str, str | None]] = [(g, None) for g in groupings] + [(m, m) for m in methods or []]
    for grouping, method in runs:
        if method is None:
            columns, min_category_buyers = GROUPINGS[grouping]
            groups = to_offer_groups(customers, columns)
            offers = to_next_best_offer(
                groups, bought, as_of=as_of, grouping=grouping, top_n=TOP_N, min_category_buyers=min_category_buyers
            ).cache()
            group_count = groups.select("customer_group").distinct().count()
        else:
            offers = METHODS[method](inputs).cache()
            group_count = 0
        row = to_offer_hit_rate(offers, following, baseline=baseline, bought=bought, k=TOP_N).first()
        assert row is not None
        sources = {r["source"]: r["count"] for r in offers.groupBy("source").count().collect()}
        result = {"as_of": as_of, "grouping": grouping, "groups": group_count or "-", **row.asDict()}
        by_score = sources.get(LIFT, 0) + sources.get(SCORED, 0) + sources.get(COOCCURRENCE, 0)
        result["lift_share"] = by_score / max(sum(sources.values()), 1)
        results.append(result)
        offers.unpersist()
        print(
            f"bench offers: {as_of} {grouping:<24} hit@{TOP_N} {row['offer_hit_rate']:.3f} vs popularity "
            f"{row['baseline_hit_rate']:.3f} = {row['ratio']:.2f}x ({row['evaluated_customers']:,} evaluated, "
            f"coverage {row['offer_coverage']:.1%}, {result['lift_share']:.0%} of offers by lift/score, "
            f"{group_count or 'no'} groups)",
            flush=True,
        )
    for frame in (customers, bought, following, baseline):
        frame.unpersist()
    return results


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}x"


def markdown(results: list[dict[str, Any]], groupings: list[str]) -> str:
    """Per date and grouping (or method), then the means of each (in the order given)."""
    rows = [
        f"| as of | grouping | groups | customers | evaluated | NBO hit@{TOP_N} | popularity hit@{TOP_N} | ratio | "
        f"coverage ({TOP_N} offers) | offers by lift (method: by score) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r['as_of']} | {r['grouping']} | {r['groups']} | {r['customers']:,} | {r['evaluated_customers']:,} | "
            f"{_pct(r['offer_hit_rate'])} | {_pct(r['baseline_hit_rate'])} | {_ratio(r['ratio'])} | "
            f"{_pct(r['offer_coverage'])} | {_pct(r['lift_share'])} |"
        )
    means = [
        f"| grouping | mean NBO hit@{TOP_N} | mean popularity hit@{TOP_N} | ratio of the means | "
        "lowest ratio of a date |",
        "|---|---:|---:|---:|---:|",
    ]
    for grouping in groupings:
        mine = [r for r in results if r["grouping"] == grouping]
        nbo = sum(float(r["offer_hit_rate"]) for r in mine) / len(mine)
        base = sum(float(r["baseline_hit_rate"]) for r in mine) / len(mine)
        lowest = min(float(r["ratio"]) for r in mine)
        default = " (default)" if grouping == DEFAULT_GROUPING else ""
        means.append(f"| {grouping}{default} | {nbo:.1%} | {base:.1%} | {base and nbo / base:.2f}x | {lowest:.2f}x |")
    return "\n".join([*rows, "", *means])


def header(data: Dataset, as_of_dates: list[dt.date]) -> str:
    dates = ", ".join(str(d) for d in as_of_dates)
    text = (
        f"`{data.command}` (`python -m bench.offers`): next-best-offer on {data.description}, "
        f"the lake made by seglake's own jobs with conf/{data.config.name} (ingest, cleanse, then features, "
        f"segment and clusters as of each of {dates}). Offers: `transforms/offers.py` `to_next_best_offer` "
        f"from the categories bought up to D: the top {TOP_N} by lift in the customer's group among the "
        f"categories with lift > 1 and at least {DEFAULT_MIN_CATEGORY_BUYERS} buyers in the group (unless the "
        f"grouping's name says otherwise), filled up by popularity; groups below {DEFAULT_MIN_GROUP_CUSTOMERS} "
        f"customers by popularity only. Baseline: the {TOP_N} most popular categories the customer has not "
        "bought. Evaluated: the customers of D who bought a category they had never bought in the month after "
        f"D; a hit is one of their {TOP_N} offers among those. Coverage: customers of D with {TOP_N} offers. "
        f"Target ratio: >= {TARGET_RATIO}x. Per-customer methods (`bench/offer_methods.py`, no groups, "
        "customer_group '(customer)'): co-occurrence of the categories in the customers' purchase sets up to D "
        "(P(c given b) or lift, averaged or summed over the bought b; '+ popularity 0.5' blends in the overall "
        f"share; 'recent x3' weighs the categories of the last {RECENT_MONTHS} months 3 times), and Spark ML ALS "
        "(implicit, ratings = months bought, 10 iterations, reg 0.1, alpha 10, seed 42); the scored categories not "
        "bought by score, filled up by popularity. Item co-occurrence (`transforms/offers.py` "
        "`to_item_cooccurrence_offers`, `offers.method: item_cooccurrence`): a candidate y scores the sum of "
        "sim(x, y) over the customer's bought x, sim = cosine (together / sqrt(buyers x * buyers y)) or "
        "conditional (together / buyers x), keeping each x's most similar neighbours bought together by at "
        "least the given number of customers; filled up by popularity."
    )
    return textwrap.fill(text, width=92, break_on_hyphens=False)


def run(
    data: Dataset,
    lake: Path,
    as_of_dates: list[dt.date],
    groupings: list[str],
    *,
    reuse: bool,
    methods: list[str] | None = None,
) -> str:
    if not reuse:
        build_lake(data, lake, as_of_dates)
    spark = build_session(load_config(str(data.config), ["spark.console_progress=off"]).spark)
    results = [r for as_of in as_of_dates for r in measure(spark, lake, as_of, groupings, methods)]
    return markdown(results, [*groupings, *(methods or [])])


def bench_offers(_sizes: list[int], _spark_overrides: list[str]) -> str:
    """The ``offers`` section of ``make bench`` (sizes do not apply: the data set is fixed).

    The session ``make bench`` built is reused; its time zone is set to the data set's
    (America/New_York) for the jobs and the measurement, then put back."""
    data = DATASETS[DEFAULT_DATA]
    spark = SparkSession.getActiveSession()
    zone_key = "spark.sql.session.timeZone"
    previous = spark.conf.get(zone_key) if spark is not None else None
    if spark is not None:
        spark.conf.set(zone_key, load_config(str(data.config), []).spark.timezone)
    try:
        as_of_dates = [dt.date.fromisoformat(d) for d in data.as_of_dates]
        body = run(data, data.lake, as_of_dates, list(GROUPINGS), reuse=False, methods=list(METHODS))
        return header(data, as_of_dates) + "\n\n" + body
    finally:
        if spark is not None and previous is not None:
            spark.conf.set(zone_key, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.offers", description=__doc__)
    parser.add_argument(
        "--data", default=DEFAULT_DATA, choices=list(DATASETS), help=f"data set (default {DEFAULT_DATA})"
    )
    parser.add_argument("--lake", help="lake folder (default: the data set's, under bench/out)")
    parser.add_argument("--reuse", action="store_true", help="measure on the lake as it is (do not rebuild it)")
    parser.add_argument("--as-of", help="comma-separated month-end as-of dates (default: the data set's four)")
    parser.add_argument("--groupings", default=",".join(GROUPINGS), help=f"comma-separated: {', '.join(GROUPINGS)}")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    parser.add_argument(
        "--methods",
        default=";".join(METHODS),
        help=f"semicolon-separated per-customer methods (empty: none): {'; '.join(METHODS)}",
    )
    args = parser.parse_args(argv)
    data = DATASETS[args.data]
    as_of_dates = [dt.date.fromisoformat(d.strip()) for d in (args.as_of or ",".join(data.as_of_dates)).split(",")]
    groupings = [g.strip() for g in args.groupings.split(",") if g.strip()]
    unknown = [g for g in groupings if g not in GROUPINGS]
    if unknown:
        raise SystemExit(f"bench offers: --groupings {unknown[0]}: choose from {', '.join(GROUPINGS)}")
    methods = [m.strip() for m in args.methods.split(";") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"bench offers: --methods {unknown[0]}: choose from {'; '.join(METHODS)}")
    build_session(load_config(str(data.config), ["spark.console_progress=off"]).spark)  # the data set's time zone
    lake = Path(args.lake) if args.lake else data.lake
    body = run(data, lake, as_of_dates, groupings, reuse=args.reuse, methods=methods)
    print(body, flush=True)
    if not args.no_write:
        from bench.run import machine, write_section

        measured = f"Measured {dt.date.today()} on {machine()}."
        write_section(data.section, header(data, as_of_dates) + "\n\n" + body, measured)
        print(f"bench offers: wrote section {data.section} of BENCHMARKS.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
