"""Per-customer offer methods of the benchmark (bench/offer_methods.py), worked out by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyspark.sql import DataFrame, SparkSession

from bench.offer_methods import als_scores, category_pairs, cooccurrence_scores, ranked_offers
from transforms.offers import OFFER_COLUMNS

AS_OF = dt.date(2024, 2, 29)

# N = 6: p1 [A, B], p2 [A, C], p3 [A, B, C], p4 [D], p5 [] (counts in N), p6 [B]
# buyers A 3, B 3, C 2, D 1 -> share A 1/2, B 1/2, C 1/3, D 1/6
# together: A-B 2 (p1, p3), A-C 2 (p2, p3), B-C 1 (p3); D with nothing
# P(c | b): P(B|A) 2/3, P(C|A) 2/3, P(A|B) 2/3, P(C|B) 1/3, P(A|C) 1, P(B|C) 1/2
# mean P: p1 C (2/3 + 1/3) / 2 = 1/2; p2 B (2/3 + 1/2) / 2 = 7/12; p6 A 2/3, C 1/3;
#   p3 and p4 have no candidate with a pair, p5 has no bought category
BOUGHT = [
    ("p1", ["A", "B"]),
    ("p2", ["A", "C"]),
    ("p3", ["A", "B", "C"]),
    ("p4", ["D"]),
    ("p5", []),
    ("p6", ["B"]),
]
# rank order (category, source): scored first, then popularity (share, then name) fills up
EXPECTED = {
    "p1": [("C", "score"), ("D", "popular")],
    "p2": [("B", "score"), ("D", "popular")],
    "p3": [("D", "popular")],
    "p4": [("A", "popular"), ("B", "popular"), ("C", "popular")],
    "p5": [("A", "popular"), ("B", "popular"), ("C", "popular")],
    "p6": [("A", "score"), ("C", "score"), ("D", "popular")],
}


@pytest.fixture(scope="module")
def bought(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(BOUGHT, "customer_id string, categories array<string>")


def _scores(frame: DataFrame) -> dict[tuple[str, str], float]:
    return {(r["customer_id"], r["category"]): r["score"] for r in frame.collect()}


def test_category_pairs(bought: DataFrame) -> None:
    pairs = {(r["antecedent"], r["category"]): (r["p"], r["lift"]) for r in category_pairs(bought).collect()}
    assert set(pairs) == {("A", "B"), ("B", "A"), ("A", "C"), ("C", "A"), ("B", "C"), ("C", "B")}
    assert pairs["A", "C"] == pytest.approx((2 / 3, 2.0))  # (2/3) / (1/3)
    assert pairs["B", "C"] == pytest.approx((1 / 3, 1.0))
    assert pairs["C", "A"] == pytest.approx((1.0, 2.0))


def test_cooccurrence_mean_p(bought: DataFrame) -> None:
    scores = _scores(cooccurrence_scores(bought))
    assert scores == pytest.approx({("p1", "C"): 1 / 2, ("p2", "B"): 7 / 12, ("p6", "A"): 2 / 3, ("p6", "C"): 1 / 3})


def test_cooccurrence_variants(bought: DataFrame, spark: SparkSession) -> None:
    assert _scores(cooccurrence_scores(bought, kind="sum_p"))["p1", "C"] == pytest.approx(1.0)
    assert _scores(cooccurrence_scores(bought, kind="mean_lift"))["p1", "C"] == pytest.approx(1.5)  # (2 + 1) / 2
    # (1 - 0.5) * 1/2 + 0.5 * share(C) 1/3
    assert _scores(cooccurrence_scores(bought, prior=0.5))["p1", "C"] == pytest.approx(5 / 12)
    recent = spark.createDataFrame([("p1", ["B"])], "customer_id string, categories array<string>")
    # B recent: weight 3 -> (1 * 2/3 + 3 * 1/3) / 4
    weighted = _scores(cooccurrence_scores(bought, recent=recent, recent_weight=2.0))
    assert weighted["p1", "C"] == pytest.approx(5 / 12)
    assert weighted["p2", "B"] == pytest.approx(7 / 12)  # no recent category: unchanged
    with pytest.raises(ValueError, match="kind"):
        cooccurrence_scores(bought, kind="max_p")


def test_ranked_offers(bought: DataFrame) -> None:
    offers = ranked_offers(bought, cooccurrence_scores(bought), as_of=AS_OF, method="co-occurrence")
    assert tuple(offers.columns) == OFFER_COLUMNS
    rows = sorted(offers.collect(), key=lambda r: (r["customer_id"], r["rank"]))
    got: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        got.setdefault(row["customer_id"], []).append((row["offer_category"], row["source"]))
        assert row["customer_group"] == "(customer)" and row["as_of_date"] == AS_OF
    assert got == EXPECTED
    assert [r["rank"] for r in rows if r["customer_id"] == "p6"] == [1, 2, 3]


def test_als_scores_exclude_bought(spark: SparkSession, bought: DataFrame) -> None:
    months = [
        (customer, month, {c: Decimal("10.00") for c in categories})
        for customer, categories in BOUGHT
        if categories
        for month in ("2024-01", "2024-02")
    ]
    months.append(("p1", "2024-03", {"D": Decimal("5.00")}))  # after the last month: not a rating
    rollup = spark.createDataFrame(
        months, "customer_id string, month string, category_amounts map<string,decimal(18,2)>"
    )
    scores = _scores(als_scores(rollup, bought, last_month="2024-02", rank=2, iterations=5))
    # every candidate not bought, for each customer with a rating (p5 has none); D is known (p4)
    assert set(scores) == {("p1", "C"), ("p1", "D"), ("p2", "B"), ("p2", "D"), ("p3", "D")} | {
        ("p4", c) for c in "ABC"
    } | {("p6", c) for c in "ACD"}
