"""Next-best-offer: per customer, the product categories their group over-buys (or, by item
co-occurrence, that are bought with theirs) that they have not bought yet, and the hit rate of
such offers on the following month.

**Bought categories** (:func:`to_customer_categories`) come from ``silver/customer_month``:
the keys of ``category_amounts`` with a positive amount. The rollup is monthly, so an as-of
date ``D`` that cuts its month cannot be honoured inside that month without the receipts.
The choice here is exactness: the months up to :func:`transforms.calendar.last_whole_month`
count, i.e. every month before ``D``'s month, plus ``D``'s month only when ``D`` is its last
day. No purchase after ``D`` ever counts; for a mid-month ``D`` the purchases from the 1st to
``D`` are left out (a category first bought then can still be offered). Month-end as-of
dates are exact.

**Offers** (:func:`to_next_best_offer`). Over the customers of ``groups`` (``N`` of them,
``N_g`` in group ``g``; a customer without bought categories counts in both):

- ``group_share_g(c)`` = customers of ``g`` who bought ``c`` / ``N_g``;
- ``overall_share(c)`` = customers who bought ``c`` / ``N``;
- ``lift_g(c)`` = ``group_share_g(c) / overall_share(c)``, computed as the one division
  ``(buyers_g(c) * N) / (N_g * buyers(c))`` of two whole numbers, so equal ratios are
  equal doubles and ties are exact.

Each customer gets up to ``top_n`` categories they have not bought, in two tiers:

1. ``source = 'lift'``: the group's categories with ``lift > 1`` (the group buys them more
   than the population does), by lift descending, ties by the higher group share, then
   by category name. A lift needs enough customers behind it: only groups of at least
   ``min_group_customers`` customers have this tier (a group of one has lift ``1/share``
   on exactly the categories it already bought, so nothing to offer), and only categories
   that at least ``min_category_buyers`` customers of the group bought (minimum support:
   two buyers of a department that five customers ever bought give a lift of 0.4 x N /
   N_g, mostly noise: on the Complete Journey sample departments such as AUTOMOTIVE or
   FROZEN GROCERY, 3 buyers each, took a third to over half of the RFM segments' lift
   offers, whose hit@3 rose from 45% to 63% with the minimum; BENCHMARKS.md, offers).
2. ``source = 'popular'``: when tier 1 leaves fewer than ``top_n``, the rest are filled
   with the most popular categories overall (``overall_share`` descending, then name)
   that the customer has not bought and tier 1 did not offer. This keeps coverage high.

A customer who bought every category gets no row; one who bought all but ``m < top_n``
gets ``m`` rows. A customer without any bought category (no rollup row up to ``D``, or
only returns) is offered the group's top categories. ``lift`` and ``group_share`` of a
popular pick are those of its category in the customer's group (0 when nobody in the
group bought it).

Built without a window and without customers x all categories rows: the group x category
statistics are small (groups x categories), each group gets two sorted arrays of
candidates, joined to the customers by broadcast; per customer the candidates are
filtered by ``array_contains(categories, ...)`` and sliced to ``top_n``.

**Item co-occurrence** (:func:`to_item_cooccurrence_offers`, ``offers.method:
item_cooccurrence``): no groups; per customer, the categories most often bought together
with the ones they bought ("customers who bought x also bought y"). ``sim(x, y)`` over the
population's purchase sets (:func:`to_item_similarity`: by default P(y | x), the share of
x's buyers who bought y too); a candidate y scores ``sum over the customer's bought x of
sim(x, y)``, among each x's ``neighbours`` most similar categories bought together by at
least ``min_together`` customers; filled up by popularity. It suits many fine categories
(products: on UCI Online Retail it beats popularity, BENCHMARKS.md 'offers-online-retail');
on a few broad ones (departments) the co-occurring ones are the common ones, which
popularity already offers. Built from pairs of categories within each customer's set (a
self-join per customer, so its cost grows with the square of a customer's distinct
categories) and a window per category for the neighbours; candidates come from the
neighbours only, never customers x all categories.

**Hit rate** (:func:`to_offer_hit_rate`): hit@k on the following month, against the
popularity baseline (:func:`to_popular_offers`: the ``top_n`` most popular categories
the customer has not bought).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from transforms.calendar import last_whole_month

NO_GROUP = "(none)"  # customer_group of a customer whose group is null
ALL_CUSTOMERS = "(all)"  # customer_group of the popularity baseline's offers
GROUP_SEPARATOR = " | "  # between the parts of a composite group (to_offer_groups)
LIFT, POPULAR = "lift", "popular"  # source of an offer
DEFAULT_MIN_GROUP_CUSTOMERS = 30
DEFAULT_MIN_CATEGORY_BUYERS = 30
# The default grouping: the RFM segment x the profile's top category (gold/rfm_segments.category,
# gold/customer_profile.top_category), the best of those measured (BENCHMARKS.md, offers).
DEFAULT_GROUPING = "segment x top_category"
DEFAULT_GROUP_COLUMNS = ("category", "top_category")
# item co-occurrence (to_item_cooccurrence_offers, offers.method: item_cooccurrence)
ITEM_COOCCURRENCE = "item_cooccurrence"  # grouping of these offers
PER_CUSTOMER = "(customer)"  # their customer_group: no group, each customer's own purchases
COOCCURRENCE = "cooccurrence"  # source of an offer scored by co-occurrence
DEFAULT_NEIGHBOURS = 50
DEFAULT_MIN_TOGETHER = 2
SCORE_DIGITS = 9  # scores are rounded to 9 decimals so that equal sums tie exactly
SIMILARITIES = ("cosine", "conditional")
# P(y | x) summed over the bought x: on Online Retail products 1.35x popularity against 0.98x
# for cosine, which favours rare products (BENCHMARKS.md, offers-online-retail)
DEFAULT_SIMILARITY = "conditional"

OFFER_COLUMNS = (
    "as_of_date",
    "customer_id",
    "grouping",
    "customer_group",
    "rank",
    "offer_category",
    "source",
    "lift",
    "group_share",
    "overall_share",
)


def _empty_categories() -> Column:
    return F.array().cast("array<string>")


def positive_categories(amounts: Column) -> Column:
    """Keys of a ``category -> amount`` map with a positive amount (null for a null map)."""
    return F.map_keys(F.map_filter(amounts, lambda _category, amount: amount > 0))


def _categories_per_customer(months: DataFrame) -> DataFrame:
    """customer_id, categories: the distinct positive-amount categories of the rows, sorted."""
    positive = F.flatten(F.collect_list(positive_categories(F.col("category_amounts"))))
    return months.groupBy("customer_id").agg(F.array_sort(F.array_distinct(positive)).alias("categories"))


def to_customer_categories(customer_month: DataFrame, *, as_of: dt.date) -> DataFrame:
    """Grain: customer. ``customer_id``, ``categories`` (array<string>, distinct, sorted).

    The categories with a positive purchase amount in the months up to the last whole month
    on or before ``as_of`` (``as_of``'s own month only when ``as_of`` is its last day; see
    the module doc). Every customer with a rollup row in those months is listed; one
    without a positive category amount gets an empty array.
    """
    return _categories_per_customer(customer_month.where(F.col("month") <= last_whole_month(as_of)))


def to_lifetime_categories(customer_lifetime: DataFrame) -> DataFrame:
    """:func:`to_customer_categories` from silver/customer_lifetime, whose
    ``categories_bought`` are those of every month up to its ``through_month``: the same
    rows when that month is the last whole month on or before the as-of date, without
    reading the months of history."""
    return customer_lifetime.select("customer_id", F.col("categories_bought").alias("categories"))


def to_month_categories(customer_month: DataFrame, *, month: str) -> DataFrame:
    """Grain: customer with a rollup row in ``month`` (``YYYY-MM``). ``customer_id``,
    ``categories``: the categories with a positive purchase amount that month, sorted."""
    return _categories_per_customer(customer_month.where(F.col("month") == month))


def to_offer_groups(frame: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Grain: customer. ``customer_id``, ``customer_group``: the values of ``columns`` as
    text joined by ``' | '`` (a null part reads ``(none)``), e.g. the RFM category, or the
    category and the profile's ``top_category``: ``'Loyal | GROCERY'``."""
    if not columns:
        raise ValueError("to_offer_groups: name at least one column")
    parts = [F.coalesce(F.col(name).cast("string"), F.lit(NO_GROUP)) for name in columns]
    return frame.select("customer_id", F.concat_ws(GROUP_SEPARATOR, *parts).alias("customer_group"))


def _population(groups: DataFrame, bought: DataFrame) -> DataFrame:
    """customer_id, customer_group (null -> '(none)'), categories (distinct; empty when none)."""
    return (
        groups.select("customer_id", F.coalesce(F.col("customer_group"), F.lit(NO_GROUP)).alias("customer_group"))
        .join(bought.select("customer_id", "categories"), "customer_id", "left")
        .select(
            "customer_id",
            "customer_group",
            F.array_distinct(
                F.filter(F.coalesce(F.col("categories"), _empty_categories()), lambda c: c.isNotNull())
            ).alias("categories"),
        )
    )


def to_category_lift(population: DataFrame) -> DataFrame:
    """Grain: group x category bought by anyone in the population.

    ``population``: ``customer_id``, ``customer_group``, ``categories``. Output:
    ``customer_group``, ``category``, ``group_customers`` (N_g), ``group_buyers``,
    ``customers`` (N), ``buyers``, ``group_share``, ``overall_share``, ``lift`` (see the
    module doc; ``group_buyers`` 0 and lift 0 for a category nobody in the group bought).
    """
    held = population.select("customer_group", F.explode("categories").alias("category"))
    pairs = held.groupBy("customer_group", "category").agg(F.count("*").alias("group_buyers"))
    sizes = population.groupBy("customer_group").agg(F.count("*").alias("group_customers"))
    total = population.agg(F.count("*").alias("customers"))
    buyers = pairs.groupBy("category").agg(F.sum("group_buyers").alias("buyers"))
    grid = sizes.crossJoin(F.broadcast(buyers)).crossJoin(F.broadcast(total))
    stats = grid.join(pairs, ["customer_group", "category"], "left").withColumn(
        "group_buyers", F.coalesce(F.col("group_buyers"), F.lit(0)).cast("long")
    )
    return stats.select(
        "customer_group",
        "category",
        "group_customers",
        "group_buyers",
        "customers",
        "buyers",
        (F.col("group_buyers") / F.col("group_customers")).alias("group_share"),
        (F.col("buyers") / F.col("customers")).alias("overall_share"),
        (
            (F.col("group_buyers") * F.col("customers")).cast("double")
            / (F.col("group_customers") * F.col("buyers")).cast("double")
        ).alias("lift"),
    )


def _offer(source: str) -> Column:
    return F.struct(
        F.col("category"), F.col("lift"), F.col("group_share"), F.col("overall_share"), F.lit(source).alias("source")
    )


def _group_candidates(
    stats: DataFrame, *, min_group_customers: int, min_category_buyers: int, use_lift: bool
) -> DataFrame:
    """Grain: group. ``lift_candidates`` and ``popular_candidates``: arrays of offers
    (category, lift, group_share, overall_share, source), each in its tier's order."""
    lift_tier = F.col("lift") > 1
    if not use_lift:
        lift_tier = F.lit(False)
    eligible = (
        lift_tier & (F.col("group_customers") >= min_group_customers) & (F.col("group_buyers") >= min_category_buyers)
    )
    # array_sort orders structs field by field: negated numbers give descending order
    lift_key = F.struct(
        (-F.col("lift")).alias("k1"), (-F.col("group_share")).alias("k2"), F.col("category"), _offer(LIFT).alias("o")
    )
    popular_key = F.struct((-F.col("overall_share")).alias("k1"), F.col("category"), _offer(POPULAR).alias("o"))
    return stats.groupBy("customer_group").agg(
        F.transform(F.array_sort(F.collect_list(F.when(eligible, lift_key))), lambda k: k["o"]).alias(
            "lift_candidates"
        ),
        F.transform(F.array_sort(F.collect_list(popular_key)), lambda k: k["o"]).alias("popular_candidates"),
    )


def _offers(
    population: DataFrame,
    *,
    as_of: dt.date,
    grouping: str,
    top_n: int,
    min_group_customers: int,
    min_category_buyers: int,
    use_lift: bool,
) -> DataFrame:
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, not {top_n}")
    stats = to_category_lift(population)
    candidates = _group_candidates(
        stats, min_group_customers=min_group_customers, min_category_buyers=min_category_buyers, use_lift=use_lift
    )
    bought = F.col("categories")

    def not_bought(offer: Column) -> Column:
        return ~F.array_contains(bought, offer["category"])

    picked = (
        population.join(F.broadcast(candidates), "customer_group", "left")
        .withColumn("lift_picks", F.slice(F.filter("lift_candidates", not_bought), 1, top_n))
        .withColumn("lift_picked", F.transform("lift_picks", lambda o: o["category"]))
        .withColumn(
            "popular_picks",
            F.slice(
                F.filter(
                    "popular_candidates",
                    lambda o: not_bought(o) & ~F.array_contains(F.col("lift_picked"), o["category"]),
                ),
                1,
                F.lit(top_n) - F.size("lift_picks"),
            ),
        )
    )
    return _ranked_rows(picked, F.concat("lift_picks", "popular_picks"), as_of=as_of, grouping=grouping)


def _ranked_rows(
    picked: DataFrame, offers: Column, *, as_of: dt.date, grouping: str, group_share: bool = True
) -> DataFrame:
    """One gold/next_best_offer row per element of ``offers`` (structs of category, source,
    lift, overall_share and, with ``group_share``, group_share), ranked from 1 in array order."""
    exploded = picked.select("customer_id", "customer_group", F.posexplode(offers).alias("position", "offer"))
    return exploded.select(
        F.lit(as_of).alias("as_of_date"),
        "customer_id",
        F.lit(grouping).alias("grouping"),
        "customer_group",
        (F.col("position") + 1).cast("int").alias("rank"),
        F.col("offer.category").alias("offer_category"),
        F.col("offer.source").alias("source"),
        F.col("offer.lift").alias("lift"),
        (F.col("offer.group_share") if group_share else F.lit(None).cast("double")).alias("group_share"),
        F.col("offer.overall_share").alias("overall_share"),
    )


def to_next_best_offer(
    groups: DataFrame,
    bought: DataFrame,
    *,
    as_of: dt.date,
    grouping: str,
    top_n: int = 3,
    min_group_customers: int = DEFAULT_MIN_GROUP_CUSTOMERS,
    min_category_buyers: int = DEFAULT_MIN_CATEGORY_BUYERS,
) -> DataFrame:
    """Grain: customer x rank (1..top_n). The offers of every customer of ``groups``.

    ``groups``: ``customer_id``, ``customer_group`` (text, e.g. from :func:`to_offer_groups`;
    one row per customer: the population). ``bought``: ``customer_id``, ``categories`` from
    :func:`to_customer_categories` (customers not in it have bought nothing categorised).
    ``grouping`` names how the groups were made (written as is). ``min_group_customers`` and
    ``min_category_buyers``: the lift tier's minimum group size and minimum buyers of a
    category in the group. Output: :data:`OFFER_COLUMNS`; ranking, tiers, ties and coverage
    as in the module doc.
    """
    return _offers(
        _population(groups, bought),
        as_of=as_of,
        grouping=grouping,
        top_n=top_n,
        min_group_customers=min_group_customers,
        min_category_buyers=min_category_buyers,
        use_lift=True,
    )


def to_popular_offers(groups: DataFrame, bought: DataFrame, *, as_of: dt.date, top_n: int = 3) -> DataFrame:
    """The popularity baseline, shaped like :func:`to_next_best_offer`'s output: each customer
    of ``groups`` (only ``customer_id`` is used) gets the ``top_n`` categories with the
    highest overall share that they have not bought (ties by name); ``customer_group``
    '(all)', ``grouping`` 'popularity', ``source`` 'popular', ``lift`` 1."""
    everyone = groups.select("customer_id", F.lit(ALL_CUSTOMERS).alias("customer_group"))
    return _offers(
        _population(everyone, bought),
        as_of=as_of,
        grouping="popularity",
        top_n=top_n,
        min_group_customers=0,
        min_category_buyers=0,
        use_lift=False,
    )


def to_offer_coverage(offers: DataFrame, *, top_n: int) -> DataFrame:
    """One row of gold/next_best_offer's coverage: ``customers`` with an offer, ``full``
    (with ``top_n`` offers), ``with_lift`` (at least one offer from group lift) and
    ``with_cooccurrence`` (at least one offer from item co-occurrence)."""
    return (
        offers.groupBy("customer_id")
        .agg(
            F.count("*").alias("offers"),
            F.max(F.col("source") == LIFT).alias("any_lift"),
            F.max(F.col("source") == COOCCURRENCE).alias("any_cooccurrence"),
        )
        .agg(
            F.count("*").alias("customers"),
            F.count_if(F.col("offers") >= top_n).alias("full"),
            F.count_if("any_lift").alias("with_lift"),
            F.count_if("any_cooccurrence").alias("with_cooccurrence"),
        )
    )


def to_offer_hit_rate(
    offers: DataFrame, next_month_categories: DataFrame, *, baseline: DataFrame, bought: DataFrame, k: int = 3
) -> DataFrame:
    """One row: hit@k of ``offers`` and of ``baseline`` on the following month.

    ``offers`` and ``baseline``: ``customer_id``, ``rank``, ``offer_category`` (from
    :func:`to_next_best_offer` and :func:`to_popular_offers` over the same population);
    ``next_month_categories``: :func:`to_month_categories` of the month after the as-of
    date; ``bought``: the :func:`to_customer_categories` the offers were made from.

    Evaluated: the customers of ``bought`` who, in the following month, bought a category
    they had not bought before (customers who only rebought can be hit by no offer, which
    only ever names categories not bought; customers new next month had no offer). A hit:
    one of the customer's offers of rank <= k is among those new categories.

    Columns: ``customers`` (of ``bought``), ``evaluated_customers``, ``offer_hits``,
    ``baseline_hits``, ``offer_hit_rate``, ``baseline_hit_rate`` (null without evaluated
    customers), ``ratio`` (offer / baseline hit rate; null when the baseline hits none),
    ``offer_coverage`` and ``baseline_coverage`` (share of ``bought``'s customers with k
    offers).
    """
    known = bought.select("customer_id", F.coalesce(F.col("categories"), _empty_categories()).alias("before"))

    def offered(frame: DataFrame, name: str) -> DataFrame:
        return (
            frame.where(F.col("rank") <= k)
            .groupBy("customer_id")
            .agg(F.collect_set("offer_category").alias(name), F.count("*").alias(f"{name}_count"))
        )

    new = next_month_categories.select("customer_id", F.col("categories").alias("next"))
    rows = (
        known.join(new, "customer_id", "left")
        .join(offered(offers, "offer"), "customer_id", "left")
        .join(offered(baseline, "baseline"), "customer_id", "left")
        .withColumn("new", F.array_except(F.coalesce(F.col("next"), _empty_categories()), F.col("before")))
        .withColumn("evaluated", F.size("new") > 0)
    )

    def hit(name: str) -> Column:
        return F.count(F.when(F.col("evaluated") & F.arrays_overlap(F.col(name), F.col("new")), 1))

    def full(name: str) -> Column:
        return F.count(F.when(F.col(f"{name}_count") == k, 1))

    figures = rows.agg(
        F.count("*").alias("customers"),
        F.count(F.when(F.col("evaluated"), 1)).alias("evaluated_customers"),
        hit("offer").alias("offer_hits"),
        hit("baseline").alias("baseline_hits"),
        full("offer").alias("offer_full"),
        full("baseline").alias("baseline_full"),
    )

    def rate(part: str, whole: str) -> Column:
        return F.when(F.col(whole) > 0, F.col(part) / F.col(whole))

    return figures.select(
        "customers",
        "evaluated_customers",
        "offer_hits",
        "baseline_hits",
        rate("offer_hits", "evaluated_customers").alias("offer_hit_rate"),
        rate("baseline_hits", "evaluated_customers").alias("baseline_hit_rate"),
        rate("offer_hits", "baseline_hits").alias("ratio"),
        rate("offer_full", "customers").alias("offer_coverage"),
        rate("baseline_full", "customers").alias("baseline_coverage"),
    )


# --- per customer: item co-occurrence ("customers who bought x also bought y") ----------------


def _held_items(bought: DataFrame) -> DataFrame:
    """``customer_id``, ``item``: one row per distinct category a customer bought (nulls dropped)."""
    return bought.select("customer_id", F.explode(F.array_distinct("categories")).alias("item")).where(
        F.col("item").isNotNull()
    )


def to_bought_together(held: DataFrame) -> DataFrame:
    """Grain: (item, neighbour), two different categories some customer bought both of.
    ``held``: ``customer_id``, ``item``, one row per customer and category
    (:func:`_held_items`). ``together``: the customers who bought both. A self-join per
    customer: its cost grows with the square of a customer's distinct categories."""
    return (
        held.alias("a")
        .join(held.alias("b"), "customer_id")
        .where(F.col("a.item") != F.col("b.item"))
        .groupBy(F.col("a.item").alias("item"), F.col("b.item").alias("neighbour"))
        .agg(F.count("*").alias("together"))
    )


def to_item_similarity(
    bought: DataFrame,
    *,
    neighbours: int = DEFAULT_NEIGHBOURS,
    min_together: int = DEFAULT_MIN_TOGETHER,
    similarity: str = DEFAULT_SIMILARITY,
) -> DataFrame:
    """Grain: (item, neighbour) bought by at least ``min_together`` customers together,
    the ``neighbours`` most similar neighbours of each item. ``bought``: ``customer_id``,
    ``categories`` (the population's purchase sets). Output: ``item``, ``neighbour``,
    ``together`` (customers who bought both), ``item_buyers``, ``neighbour_buyers`` and
    ``similarity``: ``together / item_buyers`` ('conditional', the default: P(neighbour |
    item), the share of the item's buyers who bought the neighbour too) or ``together /
    sqrt(item_buyers * neighbour_buyers)`` ('cosine', symmetric). Neighbours are ranked by
    similarity, then ``together``, then name (a window per item; nothing is collected)."""
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, not {similarity!r}")
    if neighbours < 1 or min_together < 1:
        raise ValueError("neighbours and min_together must be at least 1")
    held = _held_items(bought)
    buyers = held.groupBy("item").agg(F.count("*").alias("item_buyers"))
    pairs = to_bought_together(held).where(F.col("together") >= min_together)
    stats = pairs.join(buyers, "item").join(
        buyers.select(F.col("item").alias("neighbour"), F.col("item_buyers").alias("neighbour_buyers")), "neighbour"
    )
    if similarity == "cosine":
        value = F.col("together") / F.sqrt(F.col("item_buyers").cast("double") * F.col("neighbour_buyers"))
    else:
        value = F.col("together") / F.col("item_buyers")
    order = Window.partitionBy("item").orderBy(F.desc("similarity"), F.desc("together"), F.asc("neighbour"))
    return (
        stats.withColumn("similarity", value.cast("double"))
        .withColumn("_rank", F.row_number().over(order))
        .where(F.col("_rank") <= neighbours)
        .select("item", "neighbour", "together", "item_buyers", "neighbour_buyers", "similarity")
    )


def to_item_cooccurrence_offers(
    groups: DataFrame,
    bought: DataFrame,
    *,
    as_of: dt.date,
    top_n: int = 3,
    neighbours: int = DEFAULT_NEIGHBOURS,
    min_together: int = DEFAULT_MIN_TOGETHER,
    similarity: str = DEFAULT_SIMILARITY,
    grouping: str = ITEM_COOCCURRENCE,
) -> DataFrame:
    """Grain: customer x rank (1..top_n). Item co-occurrence offers for every customer of
    ``groups`` (only ``customer_id`` is used: the population), shaped like
    :func:`to_next_best_offer` (:data:`OFFER_COLUMNS`).

    Over the population's purchase sets (``bought``, as for :func:`to_next_best_offer`), a
    category y the customer has not bought scores ``sum over the bought x of sim(x, y)``
    (:func:`to_item_similarity`: y among the ``neighbours`` most similar of x, bought together
    by at least ``min_together`` customers), rounded to :data:`SCORE_DIGITS` decimals. Two tiers:

    1. ``source = 'cooccurrence'``: the scored categories, score descending, ties by the
       higher overall share, then by name; ``lift`` = the score.
    2. ``source = 'popular'``: the rest up to ``top_n`` filled with the most popular
       categories (overall share descending, then name) not bought and not yet offered;
       ``lift`` null. A customer without purchases gets only these.

    ``customer_group`` is '(customer)', ``group_share`` null, ``overall_share`` the
    category's buyers / customers of the population. A customer who bought every category
    gets no row. Candidates come from the neighbours of bought items only (no customers x
    all categories rows); the popular fill-up looks at the first ``size(bought) + 2 *
    top_n`` popular categories only, which always hold enough not bought nor offered.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, not {top_n}")
    population = _population(groups.select("customer_id", F.lit(PER_CUSTOMER).alias("customer_group")), bought)
    sims = to_item_similarity(population, neighbours=neighbours, min_together=min_together, similarity=similarity)
    held = population.select("customer_id", F.explode("categories").alias("item"))
    customers = population.agg(F.count("*").alias("customers"))
    shares = (
        held.groupBy(F.col("item").alias("category"))
        .agg(F.count("*").alias("buyers"))
        .crossJoin(F.broadcast(customers))
        .select("category", (F.col("buyers") / F.col("customers")).alias("overall_share"))
    )
    scores = (
        held.join(sims.select("item", F.col("neighbour").alias("category"), "similarity"), "item")
        .groupBy("customer_id", "category")
        .agg(F.round(F.sum("similarity"), SCORE_DIGITS).alias("score"))
        .join(held.withColumnRenamed("item", "category"), ["customer_id", "category"], "left_anti")
        .join(shares, "category")
    )
    offer_key = F.struct(
        (-F.col("score")).alias("k1"),
        (-F.col("overall_share")).alias("k2"),
        F.col("category"),
        F.struct(
            F.col("category"), F.col("score").alias("lift"), F.col("overall_share"), F.lit(COOCCURRENCE).alias("source")
        ).alias("o"),
    )
    scored = scores.groupBy("customer_id").agg(
        F.transform(F.array_sort(F.collect_list(offer_key)), lambda k: k["o"]).alias("scored")
    )
    popular = shares.agg(
        F.transform(
            F.array_sort(
                F.collect_list(
                    F.struct(
                        (-F.col("overall_share")).alias("k1"),
                        F.col("category"),
                        F.struct(
                            F.col("category"),
                            F.lit(None).cast("double").alias("lift"),
                            F.col("overall_share"),
                            F.lit(POPULAR).alias("source"),
                        ).alias("o"),
                    )
                )
            ),
            lambda k: k["o"],
        ).alias("popular")
    )
    bought_set = F.col("categories")
    picked = (
        population.join(scored, "customer_id", "left")
        .crossJoin(F.broadcast(popular))
        .withColumn("picks", F.coalesce(F.slice("scored", 1, top_n), F.slice("popular", 1, 0)))
        .withColumn("picked", F.transform("picks", lambda o: o["category"]))
        .withColumn(
            "fill",
            F.slice(
                F.filter(
                    F.slice("popular", 1, F.size(bought_set) + 2 * top_n),
                    lambda o: (
                        ~F.array_contains(bought_set, o["category"]) & ~F.array_contains(F.col("picked"), o["category"])
                    ),
                ),
                1,
                F.lit(top_n) - F.size("picks"),
            ),
        )
    )
    return _ranked_rows(picked, F.concat("picks", "fill"), as_of=as_of, grouping=grouping, group_share=False)
