"""Next-best-offer (transforms/offers.py) on hand-made customers, lifts worked out by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from seglake import catalog
from seglake.config import OffersConfig
from tests.conftest import with_catalog_columns
from transforms.calendar import last_whole_month
from transforms.features import to_customer_lifetime, to_lifetime_rows
from transforms.offers import (
    COOCCURRENCE,
    PER_CUSTOMER,
    to_category_lift,
    to_customer_categories,
    to_item_cooccurrence_offers,
    to_item_similarity,
    to_lifetime_categories,
    to_month_categories,
    to_next_best_offer,
    to_offer_coverage,
    to_offer_groups,
    to_offer_hit_rate,
    to_popular_offers,
)

AS_OF = dt.date(2024, 2, 29)

# Population N = 10 (x9 is in `bought` but not in a group: not offered, not counted).
#   group g (4): g1 [A, B], g2 [B, C], g3 [C], g4 (null categories)
#   group h (5): h1 [D], h2 [D], h3 [D], h4 [B, E], h5 [A, B, C, D, E] (bought everything)
#   group solo (1): s1 [D]
# Buyers: A 2 (g1, h5), B 4 (g1, g2, h4, h5), C 3 (g2, g3, h5), D 5 (h1-h3, h5, s1), E 2 (h4, h5)
# overall_share: A .2, B .4, C .3, D .5, E .2 -> popularity order D, B, C, A, E (A before E by name)
# lift = (group buyers * N) / (group customers * buyers):
#   g: A 1*10/(4*2) = 1.25 (share .25), B 2*10/(4*4) = 1.25 (share .5), C 2*10/(4*3) = 5/3 (share .5)
#      -> lift tier C, B, A (B before A: same lift, higher group share, although A < B by name)
#   h: A 1*10/(5*2) = 1 and B 2*10/(5*4) = 1 (exactly 1: not > 1), C 1*10/(5*3) = 2/3,
#      D 4*10/(5*5) = 1.6 (share .8), E 2*10/(5*2) = 2 (share .4) -> lift tier E, D
#   solo: D 1*10/(1*5) = 2, but 1 customer < min_group_customers (2): popularity only
# (min_category_buyers 1 here: every category bought in a group may have a lift offer)
GROUPS = [
    ("g1", "g"),
    ("g2", "g"),
    ("g3", "g"),
    ("g4", "g"),
    ("h1", "h"),
    ("h2", "h"),
    ("h3", "h"),
    ("h4", "h"),
    ("h5", "h"),
    ("s1", "solo"),
]
BOUGHT = [
    ("g1", ["A", "B"]),
    ("g2", ["B", "C"]),
    ("g3", ["C"]),
    ("g4", None),
    ("h1", ["D"]),
    ("h2", ["D"]),
    ("h3", ["D"]),
    ("h4", ["B", "E"]),
    ("h5", ["A", "B", "C", "D", "E"]),
    ("s1", ["D"]),
    ("x9", ["A"]),
]
# customer -> [(category, source), ...] in rank order
EXPECTED_OFFERS = {
    "g1": [("C", "lift"), ("D", "popular"), ("E", "popular")],
    "g2": [("A", "lift"), ("D", "popular"), ("E", "popular")],
    "g3": [("B", "lift"), ("A", "lift"), ("D", "popular")],
    "g4": [("C", "lift"), ("B", "lift"), ("A", "lift")],  # nothing bought: the group's top categories
    "h1": [("E", "lift"), ("B", "popular"), ("C", "popular")],
    "h2": [("E", "lift"), ("B", "popular"), ("C", "popular")],
    "h3": [("E", "lift"), ("B", "popular"), ("C", "popular")],
    "h4": [("D", "lift"), ("C", "popular"), ("A", "popular")],
    "s1": [("B", "popular"), ("C", "popular"), ("A", "popular")],  # a group of one: popularity
}  # h5 bought everything: no row
EXPECTED_BASELINE = {
    "g1": ["D", "C", "E"],
    "g2": ["D", "A", "E"],
    "g3": ["D", "B", "A"],
    "g4": ["D", "B", "C"],
    "h1": ["B", "C", "A"],
    "h2": ["B", "C", "A"],
    "h3": ["B", "C", "A"],
    "h4": ["D", "C", "A"],
    "s1": ["B", "C", "A"],
}


@pytest.fixture(scope="module")
def groups(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(GROUPS, "customer_id string, customer_group string")


@pytest.fixture(scope="module")
def bought(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(BOUGHT, "customer_id string, categories array<string>")


@pytest.fixture(scope="module")
def offers(groups: DataFrame, bought: DataFrame) -> DataFrame:
    return to_next_best_offer(
        groups, bought, as_of=AS_OF, grouping="test", min_group_customers=2, min_category_buyers=1
    ).cache()


def _by_customer(rows: list[Row], *fields: str) -> dict[str, list[tuple]]:
    result: dict[str, list[tuple]] = {}
    for row in sorted(rows, key=lambda r: (r["customer_id"], r["rank"])):
        result.setdefault(row["customer_id"], []).append(tuple(row[f] for f in fields))
    return result


def test_offers_follow_lift_then_popularity_and_skip_what_was_bought(offers: DataFrame) -> None:
    rows = offers.collect()
    assert _by_customer(rows, "offer_category", "source") == EXPECTED_OFFERS
    assert {r["rank"] for r in rows} == {1, 2, 3}
    assert {(r["as_of_date"], r["grouping"]) for r in rows} == {(AS_OF, "test")}


def test_offers_carry_the_group_statistics_of_their_category(offers: DataFrame) -> None:
    rows = {(r["customer_id"], r["rank"]): r for r in offers.collect()}
    g1_c, g1_d = rows[("g1", 1)], rows[("g1", 2)]
    assert g1_c["customer_group"] == "g"
    assert g1_c["lift"] == pytest.approx(5 / 3) and g1_c["group_share"] == 0.5 and g1_c["overall_share"] == 0.3
    assert (g1_d["lift"], g1_d["group_share"], g1_d["overall_share"]) == (0.0, 0.0, 0.5)  # nobody in g bought D
    g3_a = rows[("g3", 2)]
    assert (g3_a["lift"], g3_a["group_share"]) == (1.25, 0.25)
    h4_c = rows[("h4", 2)]  # a popular pick keeps its (below 1) lift in h
    assert h4_c["lift"] == pytest.approx(2 / 3) and h4_c["source"] == "popular"


def test_the_lift_statistics_are_exact_ratios(groups: DataFrame, bought: DataFrame) -> None:
    population = groups.join(bought, "customer_id", "left").select(
        "customer_id", "customer_group", F.coalesce("categories", F.array().cast("array<string>")).alias("categories")
    )
    stats = {(r["customer_group"], r["category"]): r for r in to_category_lift(population).collect()}
    assert len(stats) == 3 * 5  # every group x every category bought by anyone
    assert stats[("h", "A")]["lift"] == 1.0 and stats[("h", "B")]["lift"] == 1.0  # exactly 1: no lift pick
    assert stats[("g", "A")]["lift"] == stats[("g", "B")]["lift"] == 1.25  # the tie broken by group share
    assert (stats[("solo", "D")]["group_customers"], stats[("solo", "D")]["lift"]) == (1, 2.0)
    assert {r["customers"] for r in stats.values()} == {10}


def test_without_a_minimum_a_group_of_one_gets_nothing_by_lift(groups: DataFrame, bought: DataFrame) -> None:
    # s1's group bought only D (lift 2), which s1 bought: the lift tier is empty anyway
    offers = to_next_best_offer(
        groups, bought, as_of=AS_OF, grouping="test", min_group_customers=1, min_category_buyers=1
    )
    rows = offers.where("customer_id = 's1'").collect()
    assert _by_customer(rows, "offer_category", "source") == {"s1": EXPECTED_OFFERS["s1"]}


def test_a_lift_needs_enough_buyers_in_the_group(groups: DataFrame, bought: DataFrame) -> None:
    # min_category_buyers 2: A (1 buyer in g, g1) leaves g's lift tier, which is C, B; E and D
    # (2 and 4 buyers in h) stay in h's
    offers = to_next_best_offer(
        groups, bought, as_of=AS_OF, grouping="test", min_group_customers=2, min_category_buyers=2
    )
    rows = offers.where("customer_group = 'g'").collect()
    assert _by_customer(rows, "offer_category", "source") == {
        "g1": [("C", "lift"), ("D", "popular"), ("E", "popular")],
        "g2": [("D", "popular"), ("A", "popular"), ("E", "popular")],
        "g3": [("B", "lift"), ("D", "popular"), ("A", "popular")],
        "g4": [("C", "lift"), ("B", "lift"), ("D", "popular")],
    }


def test_one_offer_each_and_a_null_group(spark: SparkSession, bought: DataFrame) -> None:
    groups = spark.createDataFrame([("g3", None), ("h4", "h")], "customer_id string, customer_group string")
    # N = 2: C (g3) and B, E (h4) each 1 buyer; g3's group '(none)': C lift 2; h4's: B, E lift 2
    rows = to_next_best_offer(
        groups, bought, as_of=AS_OF, grouping="test", top_n=1, min_group_customers=1, min_category_buyers=1
    ).collect()
    assert sorted((r["customer_id"], r["customer_group"], r["offer_category"], r["source"]) for r in rows) == [
        ("g3", "(none)", "B", "popular"),  # B, C, E all share .5: B first by name; C bought
        ("h4", "h", "C", "popular"),  # B, E bought (its lift tier), C next by name
    ]


def test_the_baseline_offers_the_most_popular_categories_not_bought(groups: DataFrame, bought: DataFrame) -> None:
    rows = to_popular_offers(groups, bought, as_of=AS_OF).collect()
    assert {k: [c for (c,) in v] for k, v in _by_customer(rows, "offer_category").items()} == EXPECTED_BASELINE
    assert {(r["source"], r["customer_group"], r["lift"]) for r in rows} == {("popular", "(all)", 1.0)}


def test_the_offers_match_the_catalog_and_need_no_window(offers: DataFrame) -> None:
    table = catalog.table("gold/next_best_offer")
    assert [(f.name, f.dataType.simpleString()) for f in offers.schema.fields] == [
        (c.name, c.type) for c in table.columns
    ]
    plan = offers._jdf.queryExecution().executedPlan().toString()
    assert "Window" not in plan and "CartesianProduct" not in plan


# customer_month rows: u1 bought A, C, then A, D; B only for 0.00; u2 only returned (no map);
# u3 first bought in March.
MONTHS = [
    ("u1", "2024-01", {"A": Decimal("5.00"), "B": Decimal("0.00")}),
    ("u1", "2024-02", {"C": Decimal("3.00")}),
    ("u1", "2024-03", {"D": Decimal("1.00"), "A": Decimal("2.00")}),
    ("u2", "2024-01", None),
    ("u3", "2024-03", {"A": Decimal("2.00")}),
]


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (dt.date(2024, 2, 29), {"u1": ["A", "C"], "u2": []}),  # a month end: its month counts
        (dt.date(2024, 3, 15), {"u1": ["A", "C"], "u2": []}),  # mid-month: March is left out
        (dt.date(2024, 3, 31), {"u1": ["A", "C", "D"], "u2": [], "u3": ["A"]}),
    ],
)
def test_categories_bought_up_to_the_last_whole_month(spark: SparkSession, as_of: dt.date, expected: dict) -> None:
    rollup = spark.createDataFrame(
        MONTHS, "customer_id string, month string, category_amounts map<string,decimal(18,2)>"
    )
    rows = to_customer_categories(rollup, as_of=as_of).collect()
    assert {r["customer_id"]: r["categories"] for r in rows} == expected
    # the same from the lifetime state through that month (what an incremental run reads)
    through = last_whole_month(as_of)
    months = with_catalog_columns(rollup.where(F.col("month") <= through), "silver/customer_month")
    state = to_customer_lifetime(to_lifetime_rows(months), through_month=through, last_k=5)
    assert {r["customer_id"]: r["categories"] for r in to_lifetime_categories(state).collect()} == expected
    month = to_month_categories(rollup, month="2024-03").collect()
    assert {r["customer_id"]: r["categories"] for r in month} == {"u1": ["A", "D"], "u3": ["A"]}


def test_groups_from_several_columns(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [("a", "Loyal", "GROCERY"), ("b", "Other", None)], "customer_id string, category string, top_category string"
    )
    rows = to_offer_groups(frame, ["category", "top_category"]).orderBy("customer_id").collect()
    assert [r["customer_group"] for r in rows] == ["Loyal | GROCERY", "Other | (none)"]


# The month after AS_OF (offers above; baseline = EXPECTED_BASELINE):
#   g1 [A, E]: new E -> offers C, D, E hit; baseline D, C, E hit
#   g2 [B]: nothing new (rebought): not evaluated
#   g3 [B]: new B -> offers B, A, D hit (rank 1); baseline D, B, A hit (rank 2)
#   g4 [A]: new A -> offers C, B, A hit (rank 3); baseline D, B, C miss
#   h1 [E]: new E -> offers E, B, C hit (rank 1); baseline B, C, A miss
#   h2 [D]: rebought only; h3: no purchase; h5 [A]: bought everything before: not evaluated
#   h4 [A]: new A -> offers D, C, A hit (rank 3); baseline D, C, A hit (rank 3)
#   s1 [E]: new E -> offers B, C, A miss; baseline miss
#   n1 [A]: not in the as-of population: not evaluated
# hit@3: evaluated 6, offers 5 (5/6), baseline 3 (1/2), ratio 5/3
# hit@1: offers g3, h1 = 2 (1/3), baseline 0 -> ratio null
NEXT_MONTH = [
    ("g1", ["A", "E"]),
    ("g2", ["B"]),
    ("g3", ["B"]),
    ("g4", ["A"]),
    ("h1", ["E"]),
    ("h2", ["D"]),
    ("h4", ["A"]),
    ("h5", ["A"]),
    ("s1", ["E"]),
    ("n1", ["A"]),
]


FIGURES = (
    "evaluated_customers",
    "offer_hits",
    "baseline_hits",
    "offer_hit_rate",
    "baseline_hit_rate",
    "ratio",
    "offer_coverage",
    "baseline_coverage",
)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        # coverage: 9 of the 10 have k offers (h5 none)
        (3, (6, 5, 3, 5 / 6, 1 / 2, 5 / 3, 9 / 10, 9 / 10)),
        (1, (6, 2, 0, 1 / 3, 0.0, None, 9 / 10, 9 / 10)),  # the baseline hit nobody: no ratio
    ],
)
def test_hit_rate_against_the_popularity_baseline(
    spark: SparkSession, groups: DataFrame, bought: DataFrame, offers: DataFrame, k: int, expected: tuple
) -> None:
    population = bought.where("customer_id != 'x9'")  # the offered customers: 10, of whom h5 has no offer
    baseline = to_popular_offers(groups, population, as_of=AS_OF)
    following = spark.createDataFrame(NEXT_MONTH, "customer_id string, categories array<string>")
    row = to_offer_hit_rate(offers, following, baseline=baseline, bought=population, k=k).first()
    assert row is not None and row["customers"] == 10
    for name, value in zip(FIGURES, expected, strict=True):
        assert row[name] == (value if value is None else pytest.approx(value)), name


def test_offer_coverage_counts_customers_full_lists_and_lift(spark: SparkSession) -> None:
    offers = spark.createDataFrame(
        [("a", 1, "lift"), ("a", 2, "popular"), ("a", 3, "popular"), ("b", 1, "popular"), ("c", 1, "lift")],
        "customer_id string, rank int, source string",
    )
    row = to_offer_coverage(offers, top_n=3).first()
    assert (row["customers"], row["full"], row["with_lift"]) == (3, 1, 2)  # a has 3; a and c have a lift offer
    assert row["with_cooccurrence"] == 0


# --- item co-occurrence ---------------------------------------------------------------------
# Population N = 8 (q1..q8; x9 is in `bought` but not in the population: its A-D pair must not count):
#   q1 [A, B], q2 [A, B, C], q3 [A, C], q4 [B, D], q5 [A, B, C, D, E] (bought everything),
#   q6 no purchases (not in `bought`), q7 [B], q8 [E]
# Buyers: A 4, B 5, C 3, D 2, E 2 -> overall_share A .5, B .625, C .375, D .25, E .25,
#   popularity order B, A, C, D, E (D before E by name)
# Together: A-B 3 (q1, q2, q5), A-C 3 (q2, q3, q5), B-C 2 (q2, q5), B-D 2 (q4, q5); every other
#   pair 1 (q5 only), so with min_together 2 the pairs are A-B, A-C, B-C, B-D
# conditional (the default) P(y | x) = together / buyers x: P(B|A) 3/4, P(C|A) 3/4, P(A|B) 3/5,
#   P(C|B) 2/5, P(D|B) 2/5, P(A|C) 1, P(B|C) 2/3, P(B|D) 1
# cosine = together / sqrt(buyers x * buyers y): A-B 3/sqrt(20), A-C 3/sqrt(12), B-C 2/sqrt(15),
#   B-D 2/sqrt(10) (.6708, .8660, .5164, .6325)
COOC_GROUPS = [(f"q{i}",) for i in range(1, 9)]
COOC_BOUGHT = [
    ("q1", ["A", "B"]),
    ("q2", ["A", "B", "C"]),
    ("q3", ["A", "C"]),
    ("q4", ["B", "D"]),
    ("q5", ["A", "B", "C", "D", "E"]),
    ("q7", ["B"]),
    ("q8", ["E"]),
    ("x9", ["A", "D"]),
]
AB, AC, BC, BD = 3 / 20**0.5, 3 / 12**0.5, 2 / 15**0.5, 2 / 10**0.5
C, P = "cooccurrence", "popular"
# customer -> [(category, source, lift = score), ...] in rank order (conditional)
EXPECTED_COOCCURRENCE = {
    "q1": [("C", C, 3 / 4 + 2 / 5), ("D", C, 2 / 5), ("E", P, None)],  # A, B bought; E is all that is left
    "q2": [("D", C, 2 / 5), ("E", P, None)],  # bought all but two: two offers
    "q3": [("B", C, 3 / 4 + 2 / 3), ("D", P, None), ("E", P, None)],  # A-D, C-D pairs are too rare: no D score
    "q4": [("A", C, 3 / 5), ("C", C, 2 / 5), ("E", P, None)],  # from B only (D-A, D-C: 1 customer)
    "q6": [("B", P, None), ("A", P, None), ("C", P, None)],  # nothing bought: the most popular
    "q7": [("A", C, 3 / 5), ("C", C, 2 / 5), ("D", C, 2 / 5)],  # C, D tie at 2/5: C has the higher share
    "q8": [("B", P, None), ("A", P, None), ("C", P, None)],  # E has no pair bought by 2
}  # q5 bought everything: no row


@pytest.fixture(scope="module")
def cooc_groups(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(COOC_GROUPS, "customer_id string")


@pytest.fixture(scope="module")
def cooc_bought(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(COOC_BOUGHT, "customer_id string, categories array<string>")


def _offers_of(frame: DataFrame) -> dict[str, list[tuple]]:
    return _by_customer(frame.collect(), "offer_category", "source", "lift")


def _approx(offers: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    return {k: [(c, s, None if v is None else pytest.approx(v)) for c, s, v in rows] for k, rows in offers.items()}


def test_item_similarity_cosine_and_conditional(cooc_bought: DataFrame) -> None:
    population = cooc_bought.where("customer_id != 'x9'")
    cosine = {(r["item"], r["neighbour"]): r for r in to_item_similarity(population, similarity="cosine").collect()}
    assert sorted(cosine) == [
        ("A", "B"),
        ("A", "C"),
        ("B", "A"),
        ("B", "C"),
        ("B", "D"),
        ("C", "A"),
        ("C", "B"),
        ("D", "B"),
    ]
    assert cosine[("A", "B")]["similarity"] == pytest.approx(AB)
    assert cosine[("B", "A")]["similarity"] == pytest.approx(AB)  # cosine is symmetric
    assert cosine[("A", "C")]["similarity"] == pytest.approx(AC)
    assert cosine[("C", "B")]["similarity"] == pytest.approx(BC)
    b_d = cosine[("B", "D")]
    assert (b_d["together"], b_d["item_buyers"], b_d["neighbour_buyers"]) == (2, 5, 2)
    assert b_d["similarity"] == pytest.approx(BD)
    similar = to_item_similarity(population).collect()
    conditional = {(r["item"], r["neighbour"]): r["similarity"] for r in similar}
    # P(neighbour | item) = together / item buyers: not symmetric
    assert conditional == {
        ("A", "B"): 3 / 4,
        ("A", "C"): 3 / 4,
        ("B", "A"): 3 / 5,
        ("B", "C"): 2 / 5,
        ("B", "D"): 2 / 5,
        ("C", "A"): 1.0,
        ("C", "B"): 2 / 3,
        ("D", "B"): 1.0,
    }
    with pytest.raises(ValueError, match="similarity"):
        to_item_similarity(population, similarity="jaccard")


def test_item_cooccurrence_offers(cooc_groups: DataFrame, cooc_bought: DataFrame) -> None:
    offers = to_item_cooccurrence_offers(cooc_groups, cooc_bought, as_of=AS_OF)
    assert _offers_of(offers) == _approx(EXPECTED_COOCCURRENCE)
    rows = offers.collect()
    assert {(r["as_of_date"], r["grouping"], r["customer_group"], r["group_share"]) for r in rows} == {
        (AS_OF, "item_cooccurrence", "(customer)", None)
    }
    shares = {r["offer_category"]: r["overall_share"] for r in rows}
    assert shares == {"A": 0.5, "B": 0.625, "C": 0.375, "D": 0.25, "E": 0.25}


def test_item_cooccurrence_keeps_the_nearest_neighbours(cooc_groups: DataFrame, cooc_bought: DataFrame) -> None:
    # neighbours 1: A -> B (B and C tie at 3/4 with 3 together: B by name), B -> A, C -> A, D -> B
    offers = to_item_cooccurrence_offers(cooc_groups, cooc_bought, as_of=AS_OF, neighbours=1)
    got = _offers_of(offers.where("customer_id in ('q1', 'q3', 'q4', 'q7')"))
    assert got == _approx(
        {
            "q1": [("C", P, None), ("D", P, None), ("E", P, None)],  # A -> B and B -> A: both bought
            "q3": [("B", C, 3 / 4), ("D", P, None), ("E", P, None)],  # C's nearest, A, is bought
            "q4": [("A", C, 3 / 5), ("C", P, None), ("E", P, None)],
            "q7": [("A", C, 3 / 5), ("C", P, None), ("D", P, None)],
        }
    )


def test_item_cooccurrence_by_cosine(cooc_groups: DataFrame, cooc_bought: DataFrame) -> None:
    offers = to_item_cooccurrence_offers(cooc_groups, cooc_bought, as_of=AS_OF, similarity="cosine")
    got = _offers_of(offers.where("customer_id in ('q1', 'q3', 'q7')"))
    assert got == _approx(
        {
            "q1": [("C", C, AC + BC), ("D", C, BD), ("E", P, None)],
            "q3": [("B", C, AB + BC), ("D", P, None), ("E", P, None)],
            "q7": [("A", C, AB), ("D", C, BD), ("C", C, BC)],  # D before C: 2/sqrt(10) > 2/sqrt(15)
        }
    )


def test_item_cooccurrence_ties_by_share_then_name(cooc_groups: DataFrame, cooc_bought: DataFrame) -> None:
    # conditional, min_together 1 (every pair counts; q5 makes E a neighbour of all):
    #   q7 [B]: A 3/5, C 2/5, D 2/5, E 1/5: C before D (same score, share .375 > .25)
    #   q3 [A, C]: B 3/4 + 2/3; D and E both P(.|A) + P(.|C) = 1/4 + 1/3 and share .25: D by name
    #   q8 [E]: A, B, C, D all P(.|E) = 1/2: B, A, C by share
    offers = to_item_cooccurrence_offers(cooc_groups, cooc_bought, as_of=AS_OF, min_together=1)
    got = _offers_of(offers.where("customer_id in ('q3', 'q7', 'q8')"))
    assert got == _approx(
        {
            "q3": [("B", C, 3 / 4 + 2 / 3), ("D", C, 1 / 4 + 1 / 3), ("E", C, 1 / 4 + 1 / 3)],
            "q7": [("A", C, 3 / 5), ("C", C, 2 / 5), ("D", C, 2 / 5)],
            "q8": [("B", C, 1 / 2), ("A", C, 1 / 2), ("C", C, 1 / 2)],
        }
    )


def test_item_cooccurrence_one_offer_and_the_catalog(cooc_groups: DataFrame, cooc_bought: DataFrame) -> None:
    offers = to_item_cooccurrence_offers(cooc_groups, cooc_bought, as_of=AS_OF, top_n=1)
    assert {k: v[0][0] for k, v in _offers_of(offers).items()} == {
        "q1": "C",
        "q2": "D",
        "q3": "B",
        "q4": "A",
        "q6": "B",
        "q7": "A",
        "q8": "B",
    }
    table = catalog.table("gold/next_best_offer")
    assert [(f.name, f.dataType.simpleString()) for f in offers.schema.fields] == [
        (c.name, c.type) for c in table.columns
    ]
    assert "CartesianProduct" not in offers._jdf.queryExecution().executedPlan().toString()
    row = to_offer_coverage(to_item_cooccurrence_offers(cooc_groups, cooc_bought, as_of=AS_OF), top_n=3).first()
    # q1, q3, q4, q6, q7, q8 have 3 offers, q2 two; q1, q2, q3, q4, q7 one by co-occurrence
    assert (row["customers"], row["full"], row["with_lift"], row["with_cooccurrence"]) == (7, 6, 0, 5)


def test_offers_method_is_checked() -> None:
    assert OffersConfig().method == "group_lift"
    assert OffersConfig(method="item_cooccurrence").method == "item_cooccurrence"
    with pytest.raises(ValueError, match="method"):
        OffersConfig(method="als")


# --- the segment job with offers.method: item_cooccurrence ---------------------------------------

JOB_SILVER = (
    "receipt_id string, customer_id string, receipt_ts timestamp, amount decimal(18,2), currency string, "
    "channel string, store_id string, region string, category string, item_count int, "
    "discount_amount decimal(18,2), coupon_used boolean, source_file string, row_key string, "
    "ingested_at timestamp, cleanse_run_id string, receipt_month string"
)


@pytest.mark.slow  # a whole segment job over a lake: `make test-slow`
def test_the_segment_job_offers_by_item_cooccurrence(spark: SparkSession, tmp_path: Path) -> None:
    """features then segment on four customers, all purchases in May 2024, as of 2024-06-30.

    Bought: A food, wine; B food, wine, cheese; C food, cheese; D food. Buyers: food 4, wine 2,
    cheese 2. Bought together by >= 2 customers: food-wine (A, B), food-cheese (B, C); wine-cheese
    only by B. P(wine | food) = P(cheese | food) = 2/4, P(food | wine) = P(food | cheese) = 2/2.
    A: cheese (0.5 from food); C: wine (0.5 from food); D: cheese and wine, 0.5 each, equal
    buyers, so by name; nothing left to fill up. B bought everything: no offer.
    """
    from jobs import features as features_job
    from jobs import segment as segment_job
    from seglake import tables
    from seglake.config import load_config

    lake = tmp_path / "lake"
    bought = {"A": ["food", "wine"], "B": ["food", "wine", "cheese"], "C": ["food", "cheese"], "D": ["food"]}
    rows = [
        (
            f"{customer}{i}",
            customer,
            dt.datetime(2024, 5, 3 + i, 12),
            Decimal("10.00"),
            "EUR",
            "store",
            "S1",
            "North",
            category,
            1,
            Decimal("0.00"),
            False,
            "test",
            f"{customer}{i}",
            dt.datetime(2024, 7, 1),
            "run-0",
            "2024-05",
        )
        for customer, categories in bought.items()
        for i, category in enumerate(categories)
    ]
    config = load_config(None, [f"lake.root={lake}"])
    tables.write_table(spark.createDataFrame(rows, JOB_SILVER), config, "silver/receipts")
    argv = ["--set", f"lake.root={lake}", "--as-of", "2024-06-30"]
    assert features_job.main(argv) == 0
    assert segment_job.main([*argv, "--set", "offers.method=item_cooccurrence", "--set", "rfm.campaigns=null"]) == 0
    offers = spark.read.format("delta").load(str(lake / "gold" / "next_best_offer"))
    got = {
        (r["customer_id"], r["rank"]): (r["offer_category"], r["source"], r["lift"], r["customer_group"])
        for r in offers.collect()
    }
    assert got == {
        ("A", 1): ("cheese", COOCCURRENCE, 0.5, PER_CUSTOMER),
        ("C", 1): ("wine", COOCCURRENCE, 0.5, PER_CUSTOMER),
        ("D", 1): ("cheese", COOCCURRENCE, 0.5, PER_CUSTOMER),
        ("D", 2): ("wine", COOCCURRENCE, 0.5, PER_CUSTOMER),
    }
