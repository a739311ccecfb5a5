"""Per-customer next-best-offer methods measured by ``python -m bench.offers --methods``.

None of them reaches the 1.2x popularity target on the Complete Journey sample (BENCHMARKS.md,
offers), so they stay here, measured, rather than in transforms/offers.py. Each returns offers
shaped like :func:`transforms.offers.to_next_best_offer` (:data:`OFFER_COLUMNS`; ``grouping`` the
method's name, ``customer_group`` '(customer)', ``lift`` the method's score) for every customer of
``bought`` (``customer_id``, ``categories`` from :func:`transforms.offers.to_customer_categories`,
the population: customers with an empty array count), ``top_n`` categories they have not bought:
the scored ones by score descending (ties by overall share, then name), filled up by popularity
(``source`` 'popular') when fewer are scored.

- **Co-occurrence** (:func:`cooccurrence_scores`): over the population's purchase sets,
  ``P(c | b)`` = customers who bought b and c / customers who bought b, and
  ``lift(b -> c)`` = ``P(c | b) / share(c)``. A customer with bought set B and weights
  ``w_b`` (1, or ``1 + recent_weight`` for a category bought in the recent months) scores a
  candidate ``c`` not in B by ``sum_b w_b P(c | b) / sum_b w_b`` ('mean_p'), ``sum_b P(c | b)``
  ('sum_p') or ``sum_b w_b lift(b -> c) / sum_b w_b`` ('mean_lift'); a popularity prior blends
  in as ``(1 - prior) * score + prior * share(c)``. The category x category table is small and
  broadcast; per customer: explode(bought) join pairs, group by customer and candidate.
- **ALS** (:func:`als_scores`): Spark ML ALS with implicit preferences on customer x category
  (the number of months the category was bought), fixed seed; score = the dot product of the
  factors, bought categories excluded.
"""

from __future__ import annotations

import datetime as dt

from pyspark.ml.feature import StringIndexer
from pyspark.ml.recommendation import ALS
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.offers import PER_CUSTOMER, POPULAR, to_bought_together

SCORED = "score"  # source of an offer ranked by a method's score
_SCORED_TYPE = "array<struct<k1:double,k2:double,category:string,score:double,share:double>>"


def _held(bought: DataFrame) -> DataFrame:
    """customer_id, category: one row per bought category (nulls dropped)."""
    return (
        bought.select("customer_id", F.explode("categories").alias("category"))
        .where(F.col("category").isNotNull())
        .distinct()
    )


def category_shares(bought: DataFrame) -> DataFrame:
    """category, buyers, share: buyers / customers of ``bought`` (empty sets count)."""
    customers = bought.select("customer_id").distinct().agg(F.count("*").alias("customers"))
    buyers = _held(bought).groupBy("category").agg(F.count("*").alias("buyers"))
    return buyers.crossJoin(F.broadcast(customers)).select(
        "category", "buyers", (F.col("buyers") / F.col("customers")).alias("share")
    )


def category_pairs(bought: DataFrame) -> DataFrame:
    """Grain: (b, c) bought together by at least one customer, b != c. ``antecedent``,
    ``category``, ``together``, ``p`` = P(c | b), ``lift`` = P(c | b) / share(c)."""
    held = _held(bought)
    shares = category_shares(bought)
    together = to_bought_together(held.withColumnRenamed("category", "item")).select(
        F.col("item").alias("antecedent"), F.col("neighbour").alias("category"), "together"
    )
    ante = shares.select(F.col("category").alias("antecedent"), F.col("buyers").alias("antecedent_buyers"))
    cons = shares.select("category", "share")
    return (
        together.join(F.broadcast(ante), "antecedent")
        .join(F.broadcast(cons), "category")
        .select(
            "antecedent",
            "category",
            "together",
            (F.col("together") / F.col("antecedent_buyers")).alias("p"),
            (F.col("together") / F.col("antecedent_buyers") / F.col("share")).alias("lift"),
        )
    )


def cooccurrence_scores(
    bought: DataFrame,
    *,
    kind: str = "mean_p",
    prior: float = 0.0,
    recent: DataFrame | None = None,
    recent_weight: float = 0.0,
) -> DataFrame:
    """customer_id, category, score: candidates not bought (see the module doc). ``recent``:
    customer_id, categories bought in the recent months (weighted ``1 + recent_weight``)."""
    if kind not in ("mean_p", "sum_p", "mean_lift"):
        raise ValueError(f"cooccurrence_scores: kind {kind!r}")
    held = _held(bought)
    weight: Column = F.lit(1.0)
    if recent is not None and recent_weight:
        recent_held = _held(recent).withColumn("is_recent", F.lit(True))
        held = held.join(recent_held, ["customer_id", "category"], "left")
        weight = F.when(F.col("is_recent"), 1.0 + recent_weight).otherwise(1.0)
    held = held.select("customer_id", F.col("category").alias("antecedent"), weight.alias("w"))
    pairs = category_pairs(bought)
    value = F.col("lift") if kind == "mean_lift" else F.col("p")
    totals = held.groupBy("customer_id").agg(F.sum("w").alias("total_w"))
    summed = (
        held.join(F.broadcast(pairs), "antecedent")
        .groupBy("customer_id", "category")
        .agg(F.sum(F.col("w") * value).alias("raw"))
        .join(_held(bought), ["customer_id", "category"], "left_anti")
        .join(totals, "customer_id")
    )
    score = F.col("raw") if kind == "sum_p" else F.col("raw") / F.col("total_w")
    if prior:
        shares = category_shares(bought).select("category", "share")
        summed = summed.join(F.broadcast(shares), "category")
        score = F.lit(1.0 - prior) * score + F.lit(prior) * F.col("share")
    return summed.select("customer_id", "category", score.alias("score"))


def als_scores(
    customer_month: DataFrame,
    bought: DataFrame,
    *,
    last_month: str,
    rank: int = 10,
    reg: float = 0.1,
    alpha: float = 10.0,
    iterations: int = 10,
    seed: int = 42,
) -> DataFrame:
    """customer_id, category, score: ALS (implicit) factors' dot product for the categories
    the customers of ``bought`` have not bought; ratings = months with a positive amount in
    the months up to ``last_month`` (``YYYY-MM``)."""
    months = customer_month.where(F.col("month") <= last_month).select(
        "customer_id", "month", F.explode("category_amounts").alias("category", "amount")
    )
    ratings = (
        months.where(F.col("amount") > 0)
        .join(bought.select("customer_id"), "customer_id")
        .groupBy("customer_id", "category")
        .agg(F.countDistinct("month").cast("float").alias("months"))
    )
    users = StringIndexer(inputCol="customer_id", outputCol="user").fit(ratings)
    items = StringIndexer(inputCol="category", outputCol="item").fit(ratings)
    indexed = items.transform(users.transform(ratings))
    als = ALS(
        rank=rank,
        maxIter=iterations,
        regParam=reg,
        alpha=alpha,
        implicitPrefs=True,
        userCol="user",
        itemCol="item",
        ratingCol="months",
        seed=seed,
        nonnegative=False,
        coldStartStrategy="drop",
    )
    model = als.fit(indexed)
    user_ids = indexed.select("customer_id", F.col("user").cast("int").alias("id")).distinct()
    item_ids = indexed.select("category", F.col("item").cast("int").alias("id")).distinct()
    uf = model.userFactors.join(user_ids, "id").select("customer_id", F.col("features").alias("u"))
    itf = model.itemFactors.join(item_ids, "id").select("category", F.col("features").alias("v"))
    dot = F.aggregate(F.zip_with("u", "v", lambda x, y: x * y), F.lit(0.0).cast("float"), lambda acc, x: acc + x)
    return (
        uf.crossJoin(F.broadcast(itf))
        .select("customer_id", "category", dot.cast("double").alias("score"))
        .join(_held(bought), ["customer_id", "category"], "left_anti")
    )


def ranked_offers(bought: DataFrame, scores: DataFrame, *, as_of: dt.date, method: str, top_n: int = 3) -> DataFrame:
    """Offers (OFFER_COLUMNS) from ``scores`` (customer_id, category, score; candidates not
    bought), the top ``top_n`` by score, filled up by popularity; see the module doc."""
    shares = category_shares(bought).select("category", "share")
    scored = (
        scores.join(F.broadcast(shares), "category", "left")
        .withColumn("share", F.coalesce("share", F.lit(0.0)))
        .groupBy("customer_id")
        .agg(
            F.array_sort(
                F.collect_list(
                    F.struct(
                        (-F.col("score")).alias("k1"),
                        (-F.col("share")).alias("k2"),
                        F.col("category"),
                        F.col("score"),
                        F.col("share"),
                    )
                )
            ).alias("scored")
        )
    )
    popular = shares.agg(
        F.array_sort(F.collect_list(F.struct((-F.col("share")).alias("k1"), "category", "share"))).alias("popular")
    )
    population = bought.select(
        "customer_id", F.coalesce("categories", F.array().cast("array<string>")).alias("categories")
    )
    picked = (
        population.join(scored, "customer_id", "left")
        .crossJoin(F.broadcast(popular))
        .withColumn(
            "picks",
            F.slice(
                F.transform(
                    F.coalesce("scored", F.array().cast(_SCORED_TYPE)),
                    lambda s: F.struct(
                        s["category"].alias("category"),
                        s["score"].alias("score"),
                        s["share"].alias("share"),
                        F.lit(SCORED).alias("source"),
                    ),
                ),
                1,
                top_n,
            ),
        )
        .withColumn("picked", F.transform("picks", lambda o: o["category"]))
        .withColumn(
            "fill",
            F.slice(
                F.transform(
                    F.filter(
                        "popular",
                        lambda p: (
                            ~F.array_contains("categories", p["category"]) & ~F.array_contains("picked", p["category"])
                        ),
                    ),
                    lambda p: F.struct(
                        p["category"].alias("category"),
                        F.lit(None).cast("double").alias("score"),
                        p["share"].alias("share"),
                        F.lit(POPULAR).alias("source"),
                    ),
                ),
                1,
                F.lit(top_n) - F.size("picks"),
            ),
        )
    )
    exploded = picked.select("customer_id", F.posexplode(F.concat("picks", "fill")).alias("position", "offer"))
    return exploded.select(
        F.lit(as_of).alias("as_of_date"),
        "customer_id",
        F.lit(method).alias("grouping"),
        F.lit(PER_CUSTOMER).alias("customer_group"),
        (F.col("position") + 1).cast("int").alias("rank"),
        F.col("offer.category").alias("offer_category"),
        F.col("offer.source").alias("source"),
        F.col("offer.score").alias("lift"),
        F.lit(None).cast("double").alias("group_share"),
        F.col("offer.share").alias("overall_share"),
    )
