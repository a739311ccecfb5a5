"""RFM thresholds, tiles and scores, segment maps, rule segments, audiences and migration.

Expected values are worked out by hand in the comments (DESIGN.md: t_j = the smallest v
with #{x <= v} >= ceil(j*N/n); ascending tile i holds (t_{i-1}, t_i]; R score = tile,
F and M score = n + 1 - tile), or computed independently by DuckDB.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import segment as segment_job
from seglake import tables
from seglake.config import SeglakeConfig, load_config
from seglake.errors import UserError
from seglake.segment_maps import (
    OTHER,
    SegmentConfigError,
    check_consent_columns,
    check_rules,
    load_campaigns,
    load_rules,
    load_segment_map,
)
from tests.conftest import with_catalog_columns
from transforms.rfm import exact_thresholds, to_exact_thresholds, to_rfm_thresholds, with_rfm_scores
from transforms.segments import (
    CampaignRule,
    to_campaign_audiences,
    to_campaign_summary,
    to_rule_segments,
    to_segment_migration,
    with_audience_status,
    with_segment_category,
)

RFM = "customer_id string, recency_days int, frequency long, monetary_amount decimal(18,2)"
M = Decimal

# Ties at every threshold (N = 10, n = 4: ranks ceil(2.5) = 3, ceil(5) = 5, ceil(7.5) = 8).
#   R sorted 0 3 3 | 10 10 10 | 45 45 45 | 400          -> t = [3, 10, 45]
#   F sorted 1 1 1 | 2 2 | 3 3 3 | 5 8                   -> t = [1, 2, 3]
#   M sorted -50 -5 -0.01 | 0 0 | 12.50 30 30 30 | 99.99 -> t = [-0.01, 0.00, 30.00]
TIES = [
    ("a", 0, 8, M("99.99")),  # R1 F1 M1 -> 111 Loyal
    ("b", 3, 5, M("12.50")),  # R1 F1 M2 -> 112 Loyal
    ("c", 3, 3, M("0.00")),  # R1 F2 M3 -> 123 Other
    ("d", 10, 3, M("0.00")),  # R2 F2 M3 -> 223 Other
    ("e", 10, 3, M("-0.01")),  # R2 F2 M4 -> 224 Other (a value equal to t_1 sits in tile 1)
    ("f", 10, 2, M("-50.00")),  # R2 F3 M4 -> 234 Other
    ("g", 45, 2, M("30.00")),  # R3 F3 M2 -> 332 Seasonal Shoppers
    ("h", 45, 1, M("30.00")),  # R3 F4 M2 -> 342 Other
    ("i", 45, 1, M("30.00")),  # R3 F4 M2 -> 342 Other
    ("j", 400, 1, M("-5.00")),  # R4 F4 M4 -> 444 Other
]
TIES_CELLS = {
    "a": "111",
    "b": "112",
    "c": "123",
    "d": "223",
    "e": "224",
    "f": "234",
    "g": "332",
    "h": "342",
    "i": "342",
    "j": "444",
}


def config_of(*overrides: str) -> SeglakeConfig:
    return load_config(None, list(overrides))


def thresholds_of(profile: DataFrame, *overrides: str) -> dict[str, list[float]]:
    thresholds, _ = segment_job.rfm_thresholds(profile, config_of(*overrides))
    return thresholds


def cells_of(spark: SparkSession, rows: list[tuple], *overrides: str) -> dict[str, str]:
    profile = spark.createDataFrame(rows, RFM)
    scored = with_rfm_scores(profile, thresholds_of(profile, *overrides))
    return {r["customer_id"]: r["rfm_cell"] for r in scored.collect()}


# --- thresholds: plain Python -----------------------------------------------------------


def test_thresholds_of_five_values_are_the_lower_quartiles() -> None:
    # N = 5: ranks ceil(1.25) = 2, ceil(2.5) = 3, ceil(3.75) = 4
    assert exact_thresholds([(50, 1), (10, 1), (40, 1), (20, 1), (30, 1)], 4) == [20, 30, 40]


def test_thresholds_land_on_tied_blocks() -> None:
    assert exact_thresholds([(1, 3), (2, 2), (3, 3), (5, 1), (8, 1)], 4) == [1, 2, 3]


def test_one_value_or_all_equal_gives_that_value_for_every_threshold() -> None:
    assert exact_thresholds([(7, 1)], 4) == [7, 7, 7]
    assert exact_thresholds([(4, 6)], 4) == [4, 4, 4]


def test_five_tiles_use_fifths() -> None:
    # N = 10, n = 5: ranks 2, 4, 6, 8
    assert exact_thresholds([(v, 1) for v in range(1, 11)], 5) == [2, 4, 6, 8]


# --- thresholds in Spark: to_exact_thresholds ----------------------------------------------


def spark_thresholds(spark: SparkSession, values: list[int | None], tiles: int, **kwargs: int) -> list[tuple]:
    frame = spark.createDataFrame([(v,) for v in values], "x long")
    rows = to_exact_thresholds(frame, ["x"], tiles, **kwargs).orderBy("tile").collect()
    assert {r["column"] for r in rows} <= {"x"}
    return [(r["tile"], r["rank"], r["value"]) for r in rows]


@pytest.mark.parametrize(
    "buckets", [1, 3, 1024]
)  # one value range; 2-6 | 9 | 15 (ranks in and across); ~one value each
def test_spark_thresholds_with_ties_a_null_and_n_not_divisible_by_tiles(spark: SparkSession, buckets: int) -> None:
    # Non-null sorted: 2 4 4 4 6 6 9 9 9 9 15 -> N = 11 (the null is outside the population).
    # n = 4: ranks ceil(11/4) = 3, ceil(22/4) = 6, ceil(33/4) = 9 -> x(3) = 4, x(6) = 6, x(9) = 9
    values = [9, 4, None, 15, 6, 4, 9, 2, 9, 6, 4, 9]
    assert spark_thresholds(spark, values, 4, buckets=buckets) == [(1, 3, 4), (2, 6, 6), (3, 9, 9)]
    # n = 3: ranks ceil(11/3) = 4, ceil(22/3) = 8 -> x(4) = 4, x(8) = 9
    assert spark_thresholds(spark, values, 3, buckets=buckets) == [(1, 4, 4), (2, 8, 9)]


def test_spark_thresholds_at_thirds_of_n_divisible_by_three_take_the_exact_rank(spark: SparkSession) -> None:
    # Sorted 1 1 2 2 2 3 5 5 8: N = 9, n = 3 -> ranks exactly 3 and 6 (no rounding up).
    # #{x <= 1} = 2 < 3 <= #{x <= 2} = 5 -> t_1 = 2; #{x <= 3} = 6 = rank 6 -> t_2 = 3, not 5.
    assert spark_thresholds(spark, [5, 1, 2, 8, 2, 3, 1, 5, 2], 3) == [(1, 3, 2), (2, 6, 3)]


def test_spark_thresholds_of_equal_values_are_that_value(spark: SparkSession) -> None:
    # N = 6, ranks 2, 3, 5: every one of them is 4; N = 1: ranks 1, 1, 1
    assert spark_thresholds(spark, [4] * 6, 4) == [(1, 2, 4), (2, 3, 4), (3, 5, 4)]
    assert spark_thresholds(spark, [7], 4) == [(1, 1, 7), (2, 1, 7), (3, 1, 7)]


def test_spark_thresholds_can_leave_tiles_empty(spark: SparkSession) -> None:
    # 1 1 1 1 1 1 2 9: N = 8, ranks 2, 4, 6 all within the six 1s -> t = [1, 1, 1]:
    # tiles 2 and 3 are (1, 1], empty. Five tiles: ranks 2, 4, 5, 7 -> [1, 1, 1, 2]
    values = [1, 9, 1, 1, 2, 1, 1, 1]
    assert spark_thresholds(spark, values, 4) == [(1, 2, 1), (2, 4, 1), (3, 6, 1)]
    assert spark_thresholds(spark, values, 5) == [(1, 2, 1), (2, 4, 1), (3, 5, 1), (4, 7, 2)]


def test_spark_thresholds_of_the_extreme_longs(spark: SparkSession) -> None:
    # the widest range a long column can have: ranks 1, 2, 3 of four values
    low, high = -(2**63), 2**63 - 1
    assert spark_thresholds(spark, [high, 0, low, -1], 4) == [(1, 1, low), (2, 2, -1), (3, 3, 0)]


def test_spark_thresholds_of_a_column_without_values_are_no_rows(spark: SparkSession) -> None:
    assert spark_thresholds(spark, [None, None], 4) == []


def test_a_metric_null_for_every_customer_is_a_user_error(spark: SparkSession) -> None:
    profile = spark.createDataFrame([("a", None, 1, M("1.00"))], RFM)
    with pytest.raises(UserError, match=r"recency_days is null for every customer"):
        thresholds_of(profile)


# --- scores on hand-made profiles -------------------------------------------------------


def test_ties_at_every_threshold_share_the_lower_tile(spark: SparkSession) -> None:
    profile = spark.createDataFrame(TIES, RFM)
    thresholds = thresholds_of(profile)
    assert thresholds == {"recency": [3, 10, 45], "frequency": [1, 2, 3], "monetary": [-0.01, 0.0, 30.0]}
    assert cells_of(spark, TIES) == TIES_CELLS


def test_tile_counts_and_bounds_are_recorded(spark: SparkSession) -> None:
    profile = spark.createDataFrame(TIES, RFM)
    thresholds = thresholds_of(profile)
    scored = with_rfm_scores(profile, thresholds)
    rows = to_rfm_thresholds(scored, thresholds, as_of=dt.date(2024, 6, 30)).collect()
    got = {(r["metric"], r["tile"]): (r["score"], r["lower_bound"], r["upper_bound"], r["customers"]) for r in rows}
    n = None
    assert got == {
        ("recency", 1): (1, n, 3.0, 3),  # a b c
        ("recency", 2): (2, 3.0, 10.0, 3),  # d e f
        ("recency", 3): (3, 10.0, 45.0, 3),  # g h i
        ("recency", 4): (4, 45.0, n, 1),  # j
        ("frequency", 1): (4, n, 1.0, 3),  # h i j
        ("frequency", 2): (3, 1.0, 2.0, 2),  # f g
        ("frequency", 3): (2, 2.0, 3.0, 3),  # c d e
        ("frequency", 4): (1, 3.0, n, 2),  # a b
        ("monetary", 1): (4, n, -0.01, 3),  # e f j
        ("monetary", 2): (3, -0.01, 0.0, 2),  # c d
        ("monetary", 3): (2, 0.0, 30.0, 4),  # b g h i
        ("monetary", 4): (1, 30.0, n, 1),  # a
    }
    assert {(r["as_of_date"], r["tiles"]) for r in rows} == {(dt.date(2024, 6, 30), 4)}


def test_an_empty_tile_has_zero_customers(spark: SparkSession) -> None:
    # F: six customers at 1, then 2 and 9. N = 8: ranks 2, 4, 6 all land on 1 -> t = [1, 1, 1]:
    # tile 1 holds the six, tiles 2 and 3 are (1, 1] = empty, tile 4 holds 2 and 9.
    rows = [(f"c{i}", i, f, M(i)) for i, f in enumerate([1, 1, 1, 1, 1, 1, 2, 9])]
    profile = spark.createDataFrame(rows, RFM)
    thresholds = thresholds_of(profile)
    assert thresholds["frequency"] == [1, 1, 1]
    scored = with_rfm_scores(profile, thresholds)
    assert {r["customer_id"]: r["f_score"] for r in scored.collect()} == {
        "c0": 4,
        "c1": 4,
        "c2": 4,
        "c3": 4,
        "c4": 4,
        "c5": 4,
        "c6": 1,
        "c7": 1,
    }
    tiles = to_rfm_thresholds(scored, thresholds, as_of=dt.date(2024, 6, 30))
    frequency = tiles.where("metric = 'frequency'").orderBy("tile").select("tile", "customers").collect()
    assert [tuple(r) for r in frequency] == [(1, 6), (2, 0), (3, 0), (4, 2)]


def test_all_customers_equal_sit_in_the_lowest_tile(spark: SparkSession) -> None:
    # t = [v, v, v]: every value equals t_1 -> ascending tile 1: R 1, F 4, M 4
    rows = [(f"c{i}", 30, 2, M("10.00")) for i in range(6)]
    assert set(cells_of(spark, rows).values()) == {"144"}


def test_one_customer(spark: SparkSession) -> None:
    assert cells_of(spark, [("solo", 0, 1, M("5.00"))]) == {"solo": "144"}


def test_five_customers(spark: SparkSession) -> None:
    # ranks 2, 3, 4. R 5 1 4 2 3 -> t = [2, 3, 4]; F 10..50 -> t = [20, 30, 40]; M reversed.
    rows = [
        ("p", 5, 10, M("5.00")),  # R tile 4 -> 4; F tile 1 -> 4; M tile 4 -> 1
        ("q", 1, 20, M("4.00")),  # R tile 1 -> 1; F tile 1 -> 4; M tile 3 -> 2
        ("r", 4, 30, M("3.00")),  # R tile 3 -> 3; F tile 2 -> 3; M tile 2 -> 3
        ("s", 2, 40, M("2.00")),  # R tile 1 -> 1; F tile 3 -> 2; M tile 1 -> 4
        ("t", 3, 50, M("1.00")),  # R tile 2 -> 2; F tile 4 -> 1; M tile 1 -> 4
    ]
    # M sorted 1..5 -> t = [2, 3, 4] as for R
    assert cells_of(spark, rows) == {"p": "441", "q": "142", "r": "333", "s": "124", "t": "214"}


def test_five_tiles(spark: SparkSession) -> None:
    # N = 10, n = 5: ranks 2, 4, 6, 8 -> R t = [2, 4, 6, 8] on R = 1..10
    rows = [(f"c{r}", r, 1, M("1.00")) for r in range(1, 11)]
    cells = cells_of(spark, rows, "rfm.tiles=5")
    assert {c: cell[0] for c, cell in cells.items()} == {
        "c1": "1",
        "c2": "1",
        "c3": "2",
        "c4": "2",
        "c5": "3",
        "c6": "3",
        "c7": "4",
        "c8": "4",
        "c9": "5",
        "c10": "5",
    }
    assert {cell[1:] for cell in cells.values()} == {"55"}  # all equal: lowest tile -> score 5


def test_a_null_metric_gets_null_scores_and_no_cell(spark: SparkSession) -> None:
    profile = spark.createDataFrame([("a", 1, 1, M("1.00")), ("b", 2, 2, None)], RFM)
    scored = with_rfm_scores(profile, {"recency": [1, 1, 1], "frequency": [1, 1, 1], "monetary": [1.0, 1.0, 1.0]})
    rows = {r["customer_id"]: (r["m_score"], r["rfm_cell"]) for r in scored.collect()}
    assert rows == {"a": (4, "144"), "b": (None, None)}


def test_histogram_max_values_of_an_old_config_is_ignored_and_thresholds_stay_exact(spark: SparkSession) -> None:
    profile = spark.createDataFrame([(f"c{i}", i, 1, M(i)) for i in range(8)], RFM)
    config = config_of("rfm.histogram_max_values=5")  # 8 distinct recency values: the old fallback
    assert config.digest() == config_of().digest()  # no effect, so not in the digest
    thresholds, methods = segment_job.rfm_thresholds(profile, config)
    assert methods["recency"].startswith("exact") and methods["frequency"].startswith("exact")
    assert thresholds["recency"] == [1, 3, 5]  # N = 8: ranks 2, 4, 6 of 0..7


# --- segment maps -----------------------------------------------------------------------


def test_infoworks_map_names_cells_and_leaves_the_rest_to_other(spark: SparkSession) -> None:
    segment_map = load_segment_map("infoworks", 4)
    assert segment_map.scoring == "all" and segment_map.bands() == []
    profile = spark.createDataFrame(TIES, RFM)
    scored = with_rfm_scores(profile, thresholds_of(profile))
    named = with_segment_category(scored, segment_map.cells(), map_name=segment_map.name, unlisted=OTHER)
    got = {r["customer_id"]: (r["category"], r["campaign"]) for r in named.collect()}
    other = ("Other", None)
    assert got == {
        "a": ("Loyal", "weekly promotions"),
        "b": ("Loyal", "weekly promotions"),
        "c": other,
        "d": other,
        "e": other,
        "f": other,
        "g": ("Seasonal Shoppers", "seasonal catalogue + 25% off coupon"),
        "h": other,
        "i": other,
        "j": other,
    }


MARKETER_SEGMENTS = [
    *["Champions", "Loyal", "Potential Loyalist", "New", "Promising", "Need Attention", "About to Sleep"],
    *["At Risk", "Can't Lose Them", "Hibernating", "Lost"],
]
# The default map scores window buyers only (8 customers, N = 8, n = 4: ranks 2, 4, 6):
#   R sorted 1 2 | 10 20 | 50 60 | 100 200   -> t = [2, 20, 60]
#   F sorted 1 1 | 2 3 | 5 6 | 8 10          -> t = [1, 3, 6]; F score = 5 - ascending tile
# and names the customers without a window purchase (F = 0) by recency: < 730 Hibernating, else Lost.
WINDOW_BUYERS = [
    ("b1", 1, 10, M("50.00")),  # R1 F1 -> Champions
    ("b2", 2, 1, M("20.00")),  # R1 F4 -> New
    ("b3", 10, 8, M("80.00")),  # R2 F1 -> Loyal
    ("b4", 20, 2, M("30.00")),  # R2 F3 -> Potential Loyalist (20 = t_2 sits in tile 2)
    ("b5", 50, 6, M("60.00")),  # R3 F2 -> At Risk
    ("b6", 60, 3, M("40.00")),  # R3 F3 -> Need Attention
    ("b7", 100, 5, M("70.00")),  # R4 F2 -> At Risk
    ("b8", 200, 1, M("10.00")),  # R4 F4 -> Lost
    ("w1", 100, 0, M("-25.00")),  # only a return in the window: not scored, 100 < 730 -> Hibernating
    ("w2", 400, 0, M("0.00")),  # -> Hibernating
    ("w3", 729, 0, M("0.00")),  # -> Hibernating (below the bound)
    ("w4", 730, 0, M("0.00")),  # -> Lost (the bound is exclusive)
    ("w5", 1500, 0, M("0.00")),  # -> Lost
]


def test_default_map_scores_window_buyers_and_names_everyone(spark: SparkSession) -> None:
    segment_map = load_segment_map("default", 4)
    assert segment_map.scoring == "window_buyers"
    assert segment_map.bands() == [
        (730, "Hibernating", "low-cost reminder"),
        (None, "Lost", "last-chance reactivation"),
    ]
    assert segment_map.category_names() == MARKETER_SEGMENTS
    assert len(segment_map.cells()) == 64  # every R x F x M cell of 4 tiles
    profile = spark.createDataFrame(WINDOW_BUYERS, RFM)
    buyers = profile.where("frequency >= 1")
    thresholds, _ = segment_job.rfm_thresholds(buyers, config_of(), scoring="window_buyers")
    assert thresholds["recency"] == [2, 20, 60] and thresholds["frequency"] == [1, 3, 6]
    scored = with_rfm_scores(profile, thresholds, scored=F.col("frequency") >= 1)
    named = with_segment_category(
        scored, segment_map.cells(), map_name="default", unlisted=OTHER, unscored_bands=segment_map.bands()
    )
    got = {r["customer_id"]: (r["rfm_cell"] and r["rfm_cell"][:2], r["category"]) for r in named.collect()}
    assert got == {
        "b1": ("11", "Champions"),
        "b2": ("14", "New"),
        "b3": ("21", "Loyal"),
        "b4": ("23", "Potential Loyalist"),
        "b5": ("32", "At Risk"),
        "b6": ("33", "Need Attention"),
        "b7": ("42", "At Risk"),
        "b8": ("44", "Lost"),
        "w1": (None, "Hibernating"),
        "w2": (None, "Hibernating"),
        "w3": (None, "Hibernating"),
        "w4": (None, "Lost"),
        "w5": (None, "Lost"),
    }
    unscored = named.where("customer_id like 'w%'").select("r_score", "f_score", "m_score").distinct().collect()
    assert [tuple(r) for r in unscored] == [(None, None, None)]
    tiles = to_rfm_thresholds(scored, thresholds, as_of=dt.date(2024, 1, 31), scoring="window_buyers")
    recency = sorted((r["tile"], r["customers"], r["scoring"]) for r in tiles.where("metric = 'recency'").collect())
    assert recency == [
        (1, 2, "window_buyers"),
        (2, 2, "window_buyers"),
        (3, 2, "window_buyers"),
        (4, 2, "window_buyers"),
    ]


def test_window_buyers_map_without_buyers_is_a_user_error(spark: SparkSession) -> None:
    nobody = spark.createDataFrame([("w", 400, 0, M("0.00"))], RFM).where("frequency >= 1")
    with pytest.raises(UserError, match=r"no customer bought in the window .*\(rfm.segment_map=infoworks\)$"):
        segment_job.rfm_thresholds(nobody, config_of(), scoring="window_buyers", as_of=dt.date(2024, 1, 31))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("scoring: sometimes\n", r"scoring: 'sometimes' is not one of all, window_buyers"),
        ("scoring: window_buyers\n", r"no_window_purchase: scoring: window_buyers needs bands"),
        ("no_window_purchase: [{category: A}]\n", r"no_window_purchase: only a map with scoring: window_buyers"),
        (
            "scoring: window_buyers\nno_window_purchase: [{category: A, recency_days_below: 5}]\n",
            r"no_window_purchase\[1\]: the last band takes everyone left",
        ),
        (
            "scoring: window_buyers\nno_window_purchase: [{category: Gone}]\n",
            r"no_window_purchase\[1\]: category 'Gone' is not in categories: give it a campaign",
        ),
        (
            "scoring: window_buyers\nno_window_purchase:\n  - {category: A, recency_days_below: 9}\n"
            "  - {category: A, recency_days_below: 9}\n  - {category: A}\n",
            r"no_window_purchase\[2\]: recency_days_below 9 is not above the band before it",
        ),
    ],
)
def test_a_bad_scoring_or_band_is_refused(tmp_path: Path, body: str, reason: str) -> None:
    path = tmp_path / "my_map.yaml"
    path.write_text(f"name: mine\n{body}categories:\n  - {{category: A, cells: ['111'], campaign: a}}\n")
    with pytest.raises(SegmentConfigError, match=rf"my_map.yaml: {reason}"):
        load_segment_map(str(path), 4)


def test_a_new_band_category_brings_its_campaign(tmp_path: Path) -> None:
    path = tmp_path / "my_map.yaml"
    path.write_text(
        "scoring: window_buyers\ncategories:\n  - {category: A, cells: ['1**'], campaign: a}\n"
        "no_window_purchase:\n  - {category: A, recency_days_below: 400}\n  - {category: Gone, campaign: bye}\n"
    )
    segment_map = load_segment_map(str(path), 4)
    assert segment_map.bands() == [(400, "A", "a"), (None, "Gone", "bye")]
    assert segment_map.category_names() == ["A", "Gone"]


def test_rf_grid_covers_every_r_f_pair_with_eleven_categories() -> None:
    grid = load_segment_map("rf_grid", 4)
    cells = grid.cells()
    assert len(cells) == 64 and len(grid.categories) == 11
    assert cells["111"][0] == cells["124"][0] == "Champions"
    assert cells["141"][0] == "New" and cells["443"][0] == "Lost" and cells["412"][0] == "Can't Lose"
    assert len(load_segment_map("rf_grid", 5).cells()) == 80  # '*' expands to M 1..5; R or F 5 -> Other


def write_map(tmp_path: Path, categories: str) -> str:
    path = tmp_path / "my_map.yaml"
    path.write_text(f"name: mine\ncategories:\n{categories}")
    return str(path)


def test_a_cell_listed_twice_is_refused(tmp_path: Path) -> None:
    path = write_map(tmp_path, "  - {category: A, cells: ['111', '11*'], campaign: a}\n")
    with pytest.raises(SegmentConfigError, match=r"my_map.yaml: category 'A': cell '111' is listed twice$"):
        load_segment_map(path, 4)


def test_a_cell_in_two_categories_is_refused(tmp_path: Path) -> None:
    path = write_map(
        tmp_path, "  - {category: A, cells: ['111'], campaign: a}\n  - {category: B, cells: ['1*1'], campaign: b}\n"
    )
    with pytest.raises(SegmentConfigError, match=r"category 'B': cell '111' is listed twice \(also in category 'A'\)"):
        load_segment_map(path, 4)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("11", "a cell is three characters"),
        ("1111", "a cell is three characters"),
        ("105", "F score '0' is not 1..4"),
        ("115", "M score '5' is not 1..4"),
        ("a11", "R score 'a' is not 1..4"),
    ],
)
def test_a_malformed_cell_is_refused(tmp_path: Path, cell: str, reason: str) -> None:
    path = write_map(tmp_path, f"  - {{category: A, cells: ['{cell}'], campaign: a}}\n")
    with pytest.raises(SegmentConfigError, match=rf"my_map.yaml: category 'A': cell '{cell}': {reason}"):
        load_segment_map(path, 4)


def test_a_category_without_campaign_is_refused(tmp_path: Path) -> None:
    path = write_map(tmp_path, "  - {category: A, cells: ['111']}\n")
    with pytest.raises(SegmentConfigError, match=r"my_map.yaml: category 'A': campaign: every category needs"):
        load_segment_map(path, 4)


def test_an_unknown_map_names_the_shipped_ones() -> None:
    with pytest.raises(
        SegmentConfigError, match=r"conf/segments/nope.yaml: segment map not found .*default, infoworks, rf_grid\)"
    ):
        load_segment_map("nope", 4)


# --- rules ------------------------------------------------------------------------------

PROFILE_360 = (
    "customer_id string, recency_days int, frequency long, monetary_amount decimal(18,2), "
    "net_amount_lifetime decimal(18,2), coupon_order_share double, regions_used_window long, value_tier string"
)


def write_rules(tmp_path: Path, body: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + body)
    return str(path)


def rule(name: str, predicate: str) -> str:
    return f'  - name: {name}\n    description: d\n    predicate: "{predicate}"\n'


def test_the_shipped_rules_resolve_on_the_profile_columns(spark: SparkSession) -> None:
    file, rules = load_rules("conf/segments/rules.yaml")
    assert [r.name for r in rules] == [
        "inactive_90_days",
        "coupon_users",
        "above_average_spend",
        "one_region",
        "at_risk_of_churn",
        "above_average_clv",
    ]
    # the job checks them on the profile plus the CLV columns of gold/customer_value
    profile = segment_job.with_value(spark.createDataFrame([], PROFILE_360), None)
    check_rules(profile, rules, file=file, window_days=365)
    with pytest.raises(SegmentConfigError, match=r"rule above_average_clv: population_avg_clv_amount: the profile"):
        check_rules(spark.createDataFrame([], PROFILE_360), rules, file=file, window_days=365)


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        ("recency_days >=", r"rule broken: predicate does not parse: .*PARSE_SYNTAX_ERROR"),
        ("no_such_column > 1", r"rule broken: predicate does not fit the profile: .*no_such_column"),
        ("recency_days + 1", r"rule broken: predicate is int, not a condition \(true/false\): recency_days \+ 1"),
        ("avg(recency_days) > 3", r"rule broken: predicate does not fit the profile"),
        ("monetary_amount > population_avg_nope", r"rule broken: population_avg_nope: the profile has no column"),
        ("frequency > population_p50_value_tier", r"rule broken: population_p50_value_tier: value_tier is string"),
    ],
)
def test_a_bad_predicate_names_the_rule_and_the_reason(
    spark: SparkSession, tmp_path: Path, predicate: str, message: str
) -> None:
    file, rules = load_rules(write_rules(tmp_path, rule("fine", "frequency > 1") + rule("broken", predicate)))
    with pytest.raises(SegmentConfigError, match=message) as error:
        check_rules(spark.createDataFrame([], PROFILE_360), rules, file=file, window_days=365)
    assert str(error.value).startswith(f"{file}: rule broken: ") and "\n" not in str(error.value)


def test_a_rule_name_listed_twice_is_refused(tmp_path: Path) -> None:
    path = write_rules(tmp_path, rule("same", "frequency > 1") + rule("same", "frequency > 2"))
    with pytest.raises(SegmentConfigError, match=r"rules.yaml: rule same: the rule name is listed twice"):
        load_rules(path)


def test_rule_segments_with_population_columns_and_window_days(spark: SparkSession) -> None:
    # Lifetime net 100 (a) .. 1000 (j); coupon shares: a 0.5, b 0.49, c null, the rest 0.
    rows = [
        (cid, r, f, m, M((i + 1) * 100), {"a": 0.5, "b": 0.49, "c": None}.get(cid, 0.0), 1 if i < 2 else 2, "t")
        for i, (cid, r, f, m) in enumerate(TIES)
    ]
    values = spark.createDataFrame(
        [("a", M("100.00"), 2, 0.5), ("b", M("300.00"), 1, 0.9)],  # the others have no CLV
        "customer_id string, clv_amount decimal(18,2), clv_decile int, probability_alive double",
    )
    profile = segment_job.with_value(spark.createDataFrame(rows, PROFILE_360), values)
    _, rules = load_rules("conf/segments/rules.yaml")
    population = segment_job.population_values(profile, rules, 0.001)
    # mean M = 147.48 / 10; p75 of 100..1000 = the smallest v with >= 75% of values <= v = 800;
    # mean CLV over the customers with one = (100 + 300) / 2
    assert population == {
        "population_avg_clv_amount": 200.0,
        "population_avg_monetary_amount": pytest.approx(14.748),
        "population_p75_net_amount_lifetime": 800.0,
    }
    frame = profile.withColumns({"window_days": F.lit(365)} | {k: F.lit(v) for k, v in population.items()})
    segments = to_rule_segments(frame, {r.name: r.predicate for r in rules}, as_of=dt.date(2024, 6, 30))
    got: dict[str, set[str]] = {}
    for r in segments.collect():
        got.setdefault(r["segment"], set()).add(r["customer_id"])
    assert got == {
        "inactive_90_days": {"j"},  # recency 400
        "coupon_users": {"a"},  # 0.5 >= 0.5; b 0.49 no; c null -> not in
        "above_average_spend": {"a", "g", "h", "i"},  # 99.99, 30, 30, 30 > 14.748
        "one_region": {"a", "b"},
        "at_risk_of_churn": {"j"},  # lifetime 900 (i) and 1000 (j) > 800; only j has recency > 365/3
        "above_average_clv": {"b"},  # 300 > 200
    }


def test_no_rules_give_no_rows(spark: SparkSession) -> None:
    segments = to_rule_segments(spark.createDataFrame(TIES, RFM), {}, as_of=dt.date(2024, 6, 30))
    assert segments.count() == 0 and segments.schema["segment"].dataType.simpleString() == "string"


# --- audiences and migration ------------------------------------------------------------


def test_a_customer_reached_several_ways_is_listed_once_by_the_first_way(spark: SparkSession) -> None:
    as_of = dt.date(2024, 6, 30)
    rfm = spark.createDataFrame(
        [("a", "Loyal", "weekly"), ("b", "Other", None), ("c", "Other", None), ("d", "Lapsed", "winback")],
        "customer_id string, category string, campaign string",
    )
    rules = spark.createDataFrame(
        [
            (as_of, "big", "a"),
            (as_of, "big", "b"),
            (as_of, "coupon", "b"),
            (as_of, "coupon", "c"),
            (as_of, "quiet", "c"),
        ],
        "as_of_date date, segment string, customer_id string",
    )
    audiences = to_campaign_audiences(rfm, rules, {"big": "weekly", "coupon": "weekly"}, as_of=as_of)
    assert sorted(tuple(r) for r in audiences.collect()) == [
        (as_of, "weekly", "a", "rfm", "Loyal"),  # Loyal and rule big: the category first
        (as_of, "weekly", "b", "rule", "big"),  # big and coupon: the first rule in file order
        (as_of, "weekly", "c", "rule", "coupon"),  # quiet has no campaign
        (as_of, "winback", "d", "rfm", "Lapsed"),
    ]


# --- audiences: consent, exclusive priorities, holdout -----------------------------------

CANDIDATES = "campaign string, customer_id string, has_email_opt_in boolean"
CAMPAIGN_RULES = {
    "call": CampaignRule(channel="phone", priority=1),
    "mail": CampaignRule(channel="email", consent_column="has_email_opt_in", priority=2),
    "post": CampaignRule(channel="direct_mail", priority=3),
    "news": CampaignRule(channel="email", consent_column="has_email_opt_in"),  # not exclusive
}


def test_consent_then_priority_decide_each_candidate(spark: SparkSession) -> None:
    rows = [
        ("call", "A", True),  # A: exclusive call (1), mail (2) -> call contact, mail excluded
        ("mail", "A", True),
        ("news", "A", True),  # not exclusive: stays
        ("mail", "B", False),  # B: no e-mail consent, so mail does not take B from post
        ("post", "B", False),  # -> post contact (no consent needed)
        ("mail", "C", None),  # C: consent unknown counts as none
        ("news", "C", None),
        ("mail", "D", True),  # D: mail (2) beats post (3)
        ("post", "D", True),
        ("other", "D", True),  # a campaign without settings: no filter, no holdout, not exclusive
    ]
    statuses = with_audience_status(spark.createDataFrame(rows, CANDIDATES), CAMPAIGN_RULES)
    got = {(r["campaign"], r["customer_id"]): (r["status"], r["is_holdout"]) for r in statuses.collect()}
    assert got == {
        ("call", "A"): ("contact", False),
        ("mail", "A"): ("excluded", False),
        ("news", "A"): ("contact", False),
        ("mail", "B"): ("no_consent", False),
        ("post", "B"): ("contact", False),
        ("mail", "C"): ("no_consent", False),
        ("news", "C"): ("no_consent", False),
        ("mail", "D"): ("contact", False),
        ("post", "D"): ("excluded", False),
        ("other", "D"): ("contact", False),
    }
    summary = to_campaign_summary(statuses, CAMPAIGN_RULES, as_of=dt.date(2024, 1, 31))
    counts = {
        r["campaign"]: (
            r["channel"],
            r["consent_column"],
            r["priority"],
            r["candidate_customers"],
            r["no_consent_customers"],
            r["excluded_customers"],
            r["audience_customers"],
            r["holdout_customers"],
            r["contact_customers"],
        )
        for r in summary.collect()
    }
    assert counts == {
        "call": ("phone", None, 1, 1, 0, 0, 1, 0, 1),
        "mail": ("email", "has_email_opt_in", 2, 4, 2, 1, 1, 0, 1),
        "post": ("direct_mail", None, 3, 2, 0, 1, 1, 0, 1),
        "news": ("email", "has_email_opt_in", None, 2, 1, 0, 1, 0, 1),
        "other": (None, None, None, 1, 0, 0, 1, 0, 1),
    }


def test_holdout_is_the_share_asked_independent_per_campaign_and_stable(spark: SparkSession) -> None:
    rules = {"x": CampaignRule(holdout=0.1), "y": CampaignRule(holdout=0.1), "z": CampaignRule(holdout=0.0)}
    rows = spark.range(20_000).select(F.format_string("cust-%05d", "id").alias("customer_id"))
    candidates = rows.crossJoin(spark.createDataFrame([("x",), ("y",), ("z",)], "campaign string"))

    def held(campaign: str) -> set[str]:
        statuses = with_audience_status(candidates.where(F.col("campaign") == campaign), rules)
        return {r[0] for r in statuses.where("is_holdout").select("customer_id").collect()}

    x, y = held("x"), held("y")
    # binomial(20,000, 0.1): 2,000 +- 42.4 (one standard deviation); 5 sigma either side
    assert 1_788 <= len(x) <= 2_212 and 1_788 <= len(y) <= 2_212
    # independent picks overlap in about 0.1 * 0.1 * 20,000 = 200 (sd 14), not in all 2,000
    assert 130 <= len(x & y) <= 270
    assert held("x") == x  # the same customers on a rerun
    assert held("z") == set()


def test_migration_counts_new_gone_and_revenue(spark: SparkSession) -> None:
    schema = "customer_id string, category string, monetary_amount decimal(18,2)"
    previous = spark.createDataFrame(
        [("p1", "Loyal", M("10")), ("p2", "Other", M("5")), ("p3", "Loyal", M("7"))], schema
    )
    current = spark.createDataFrame(
        [("p1", "Loyal", M("12")), ("p2", "Loyal", M("3")), ("p4", "Other", M("-2")), ("p5", "Other", M("1"))], schema
    )
    moves = to_segment_migration(previous, current, as_of=dt.date(2024, 2, 29), previous_as_of=dt.date(2024, 1, 31))
    assert sorted(tuple(r)[2:] for r in moves.collect()) == [
        ("(new)", "Other", 2, M("-1.00")),  # p4 -2 + p5 1
        ("Loyal", "(gone)", 1, M("7.00")),  # p3: the previous amount
        ("Loyal", "Loyal", 1, M("12.00")),
        ("Other", "Loyal", 1, M("3.00")),
    ]


# --- the job on a tmp lake: three as-of dates run out of order ------------------------------

D1, D2, D3 = dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31)
PROFILE = "customer_id string, recency_days int, frequency long, monetary_amount decimal(18,2), value_tier string"
# Four customers with distinct values: scores are rank orders (R ascending, F and M descending).
PROFILES = {
    D1: [("A", 0, 9, M(100)), ("B", 30, 5, M(50)), ("C", 10, 3, M(30)), ("D", 20, 1, M(10))],
    # A 111 Loyal, B 422 Churned Loyal, C 233 Other, D 344 Other
    D2: [("A", 60, 10, M(200)), ("B", 0, 6, M(80)), ("C", 5, 4, M(40)), ("E", 7, 1, M(20))],
    # A 411 Churned Loyal, B 122 Other, C 233 Other, E 344 Other (new; D gone)
    D3: [("A", 90, 8, M(300)), ("C", 1, 12, M(150)), ("E", 3, 2, M(60)), ("F", 9, 1, M(15))],
    # A 421 Churned Loyal, C 112 Loyal, E 233 Other, F 344 Other (new; B gone)
}
JOB_RULES = """rules:
  - name: big_spenders
    description: Window spend above the mean.
    predicate: monetary_amount > population_avg_monetary_amount
    campaign: VIP offers!
  - name: lapsed
    description: No purchase in two months.
    predicate: recency_days >= 60
"""


@pytest.fixture(scope="module")
def profiles_only(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("profiles") / "lake"
    config = load_config(None, [f"lake.root={lake}"])
    rows = [(as_of, *row, "tier") for as_of, rows in PROFILES.items() for row in rows]
    profiles = spark.createDataFrame(rows, f"as_of_date date, {PROFILE}")
    full = with_catalog_columns(profiles, "gold/customer_profile")
    tables.write_table(full, config, "gold/customer_profile", mode="overwrite")
    return lake


@pytest.fixture
def profile_lake(profiles_only: Path, tmp_path: Path) -> Path:
    """A lake holding just gold/customer_profile at D1, D2, D3 (a copy per test) and a rules file."""
    lake = tmp_path / "lake"
    shutil.copytree(profiles_only, lake)
    (lake / "rules.yaml").write_text(JOB_RULES)
    return lake


def job_argv(lake: Path, as_of: dt.date, *extra: str) -> list[str]:
    """The seed's map over every customer; campaigns without consent, holdout or priority."""
    settings = [
        "lake.root=" + str(lake),
        f"rfm.rules={lake}/rules.yaml",
        "rfm.segment_map=infoworks",
        "rfm.campaigns=null",
    ]
    return [*[item for setting in settings for item in ("--set", setting)], "--as-of", str(as_of), *extra]


def read(spark: SparkSession, lake: Path, table: str, as_of: dt.date) -> DataFrame:
    return spark.read.format("delta").load(f"{lake}/{table}").where(F.col("as_of_date") == F.lit(as_of))


@pytest.mark.slow  # several job runs over a lake: `make test-slow`
def test_migration_over_three_dates_run_out_of_order(spark: SparkSession, profile_lake: Path) -> None:
    lake = profile_lake
    for as_of in (D3, D1):
        assert segment_job.main(job_argv(lake, as_of)) == 0
    assert segment_job.main(job_argv(lake, D2, "--export", "csv")) == 0

    segments = read(spark, lake, "gold/rfm_segments", D2).collect()
    cells = {r["customer_id"]: (r["rfm_cell"], r["category"]) for r in segments}
    assert cells == {"A": ("411", "Churned Loyal"), "B": ("122", "Other"), "C": ("233", "Other"), "E": ("344", "Other")}
    migration = spark.read.format("delta").load(f"{lake}/gold/segment_migration")
    got = sorted(tuple(r) for r in migration.collect())
    assert got == [
        # D1 has no earlier date: an empty partition. D2 from D1 (run last, between them):
        (D2, D1, "(new)", "Other", 1, M("20.00")),  # E
        (D2, D1, "Churned Loyal", "Other", 1, M("80.00")),  # B
        (D2, D1, "Loyal", "Churned Loyal", 1, M("200.00")),  # A
        (D2, D1, "Other", "(gone)", 1, M("10.00")),  # D, its D1 amount
        (D2, D1, "Other", "Other", 1, M("40.00")),  # C
        # D3 was first compared with nothing, then with D1; now with D2, the nearest earlier date:
        (D3, D2, "(new)", "Other", 1, M("15.00")),  # F
        (D3, D2, "Churned Loyal", "Churned Loyal", 1, M("300.00")),  # A
        (D3, D2, "Other", "(gone)", 1, M("80.00")),  # B
        (D3, D2, "Other", "Loyal", 1, M("150.00")),  # C
        (D3, D2, "Other", "Other", 1, M("60.00")),  # E
    ]
    # mean M at D2 = (200 + 80 + 40 + 20) / 4 = 85: big_spenders = A; lapsed (>= 60 days) = A
    rules = sorted((r["segment"], r["customer_id"]) for r in read(spark, lake, "gold/rule_segments", D2).collect())
    assert rules == [("big_spenders", "A"), ("lapsed", "A")]
    audiences = read(spark, lake, "gold/campaign_audiences", D2).select("campaign", "customer_id", "source", "segment")
    assert sorted(tuple(r) for r in audiences.collect()) == [
        ("VIP offers!", "A", "rule", "big_spenders"),
        ("loyal-customer 25% discount", "A", "rfm", "Churned Loyal"),
    ]
    exports = lake / "exports" / "campaigns" / "2024-02-29"
    assert sorted(p.name for p in exports.iterdir()) == [
        "loyal-customer-25-discount.csv",
        "seasonal-catalogue-25-off-coupon.csv",
        "vip-offers.csv",
        "weekly-promotions-10-off-next-visit.csv",
        "weekly-promotions.csv",
    ]
    assert (
        exports / "vip-offers.csv"
    ).read_text() == "customer_id,segment,source,offer_category,is_holdout\nA,big_spenders,rule,,false\n"
    assert (exports / "weekly-promotions.csv").read_text() == "customer_id,segment,source,offer_category,is_holdout\n"


def test_the_job_filters_on_consent_and_records_it(spark: SparkSession, profile_lake: Path) -> None:
    (profile_lake / "campaigns.yaml").write_text(
        "defaults: {holdout: 0}\nconsent: {email: has_email_opt_in}\n"
        "campaigns:\n  - {name: loyal-customer 25% discount, channel: email, priority: 1}\n"
    )
    argv = job_argv(profile_lake, D2, "--set", f"rfm.campaigns={profile_lake}/campaigns.yaml", "--export", "csv")
    assert segment_job.main(argv) == 0
    # A is Churned Loyal at D2 but has no e-mail opt-in (null in this profile): left out, counted
    audiences = read(spark, profile_lake, "gold/campaign_audiences", D2)
    assert sorted((r["campaign"], r["customer_id"], r["channel"]) for r in audiences.collect()) == [
        ("VIP offers!", "A", None)
    ]
    summary = {r["campaign"]: r for r in read(spark, profile_lake, "gold/campaign_summary", D2).collect()}
    loyal = summary["loyal-customer 25% discount"]
    assert (loyal["candidate_customers"], loyal["no_consent_customers"], loyal["audience_customers"]) == (1, 1, 0)
    assert (loyal["channel"], loyal["consent_column"], loyal["priority"]) == ("email", "has_email_opt_in", 1)
    assert summary["VIP offers!"]["audience_customers"] == 1
    export = profile_lake / "exports" / "campaigns" / "2024-02-29" / "loyal-customer-25-discount.csv"
    assert export.read_text() == "customer_id,segment,source,offer_category,is_holdout\n"


def test_clv_joins_into_segments_and_rules(spark: SparkSession, profile_lake: Path) -> None:
    config = load_config(None, [f"lake.root={profile_lake}"])
    values = spark.createDataFrame(
        [(D2, "A", M("300.00"), 1, 0.9), (D2, "B", M("100.00"), 2, 0.5), (D2, "C", M("20.00"), 3, 0.2)],
        "as_of_date date, customer_id string, clv_amount decimal(18,2), clv_decile int, probability_alive double",
    )  # E has no value row (a customer the value stage did not score): null CLV
    tables.write_table(with_catalog_columns(values, "gold/customer_value"), config, "gold/customer_value")
    (profile_lake / "rules.yaml").write_text(
        "rules:\n  - name: valuable\n    description: d\n    predicate: clv_amount > population_avg_clv_amount\n"
    )
    assert segment_job.main(job_argv(profile_lake, D2)) == 0
    segments = read(spark, profile_lake, "gold/rfm_segments", D2).collect()
    got = {r["customer_id"]: (r["clv_amount"], r["clv_decile"], r["is_above_average_clv"]) for r in segments}
    # mean over the customers with a CLV: (300 + 100 + 20) / 3 = 140
    assert got == {
        "A": (M("300.00"), 1, True),
        "B": (M("100.00"), 2, False),
        "C": (M("20.00"), 3, False),
        "E": (None, None, None),
    }
    rules = read(spark, profile_lake, "gold/rule_segments", D2).collect()
    assert [(r["segment"], r["customer_id"]) for r in rules] == [("valuable", "A")]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("campaigns:\n  - {name: a, channel: sms}\n", r"campaign 'a': channel 'sms' has no consent entry"),
        ("campaigns:\n  - {name: a, holdout: 1.5}\n", r"campaign 'a': holdout: expected a share >= 0 and < 1"),
        (
            "campaigns:\n  - {name: a, priority: 1}\n  - {name: b, priority: 1}\n",
            r"campaign 'b': priority 1 is also 'a''s",
        ),
        ("campaigns:\n  - {name: a}\n  - {name: a}\n", r"campaign 'a': listed twice"),
        ("campaigns:\n  - {name: a, colour: red}\n", r"campaign 'a': colour: unknown key"),
    ],
)
def test_bad_campaign_settings_are_refused(tmp_path: Path, body: str, reason: str) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text(body)
    with pytest.raises(SegmentConfigError, match=rf"campaigns.yaml: {reason}"):
        load_campaigns(str(path))


def test_a_consent_column_the_profile_lacks_is_refused(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "campaigns.yaml"
    path.write_text("consent: {email: emial_ok}\ncampaigns:\n  - {name: a, channel: email}\n")
    profile = with_catalog_columns(spark.createDataFrame(TIES, RFM), "gold/customer_profile")
    with pytest.raises(SegmentConfigError, match=r"consent: email: emial_ok: gold/customer_profile has no such column"):
        check_consent_columns(profile, load_campaigns(str(path)))


def test_the_shipped_campaign_settings_cover_the_default_map() -> None:
    settings = load_campaigns("campaigns")
    segment_map = load_segment_map("default", 4)
    assert all(settings.of(c.campaign).listed for c in segment_map.categories)
    assert settings.of("win-back e-mail").consent_column == "has_email_opt_in"


def test_a_bad_rule_stops_the_job_before_anything_is_written(
    profile_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    oops = "  - name: oops\n    description: x\n    predicate: spend > 1\n"
    (profile_lake / "rules.yaml").write_text(JOB_RULES + oops)
    assert segment_job.main(job_argv(profile_lake, D1)) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"seglake segment: error: {profile_lake}/rules.yaml: rule oops: predicate does not fit")
    assert not (profile_lake / "gold" / "rfm_segments").exists()


def test_a_missing_profile_partition_is_a_user_error(profile_lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert segment_job.main(job_argv(profile_lake, dt.date(2024, 4, 30))) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (
        "seglake segment: error: gold/customer_profile has no partition as_of_date = 2024-04-30 "
        "(latest: 2024-03-31); run `seglake features --as-of 2024-04-30` first"
    )
    assert not (profile_lake / "gold" / "rfm_segments").exists()


# --- 120k generated customers against DuckDB's exact quantiles -------------------------------


def test_scores_on_120k_customers_equal_exact_quantile_scores_from_duckdb(spark: SparkSession, tmp_path: Path) -> None:
    import duckdb

    def u(seed: int) -> F.Column:  # uniform in [0, 1), from a hash of the id
        return F.pmod(F.xxhash64("id", F.lit(seed)), F.lit(1_000_000)) / 1_000_000

    frequency = (
        F.when(u(1) < 0.25, 1)  # a quarter at F = 1: the case approxQuantile gets wrong
        .when(u(1) < 0.35, 0)
        .otherwise(F.floor(F.pow(u(2), 3) * 40) + 2)
    )
    profile = spark.range(120_000).select(
        F.concat(F.lit("c"), F.col("id").cast("string")).alias("customer_id"),
        F.when(u(3) < 0.2, 0).otherwise(F.floor(F.pow(u(4), 2) * 730)).cast("int").alias("recency_days"),
        frequency.cast("long").alias("frequency"),
        (F.round(F.pow(u(5), 2) * 5000 - 200, 2)).cast("decimal(18,2)").alias("monetary_amount"),
    )
    data = str(tmp_path / "profile.parquet")
    profile.write.parquet(data)
    profile = spark.read.parquet(data).cache()
    thresholds = thresholds_of(profile)
    scores = str(tmp_path / "scores.parquet")
    with_rfm_scores(profile, thresholds).select("customer_id", "r_score", "f_score", "m_score").write.parquet(scores)
    profile.unpersist()

    exact = duckdb.execute(
        f"""
        WITH p AS (SELECT * FROM read_parquet('{data}')),
        long AS (SELECT customer_id, 'r' AS metric, CAST(recency_days AS DOUBLE) AS v FROM p
                 UNION ALL SELECT customer_id, 'f', CAST(frequency AS DOUBLE) FROM p
                 UNION ALL SELECT customer_id, 'm', CAST(monetary_amount AS DOUBLE) FROM p),
        hist AS (SELECT metric, v, count(*) AS c FROM long GROUP BY ALL),
        cum AS (SELECT metric, v, sum(c) OVER (PARTITION BY metric ORDER BY v) AS at_most,
                       sum(c) OVER (PARTITION BY metric) AS n FROM hist),
        -- t_j = the smallest v with #{{x <= v}} >= ceil(j * N / 4)
        t AS (SELECT metric, j, min(v) AS t FROM cum, range(1, 4) r(j)
              WHERE at_most >= ceil(j * n / 4) GROUP BY ALL),
        tile AS (SELECT l.customer_id, l.metric, 1 + count(t.t) FILTER (WHERE t.t < l.v) AS tile
                 FROM long l JOIN t USING (metric) GROUP BY ALL),
        want AS (SELECT customer_id, max(tile) FILTER (WHERE metric = 'r') AS r,
                        5 - max(tile) FILTER (WHERE metric = 'f') AS f,
                        5 - max(tile) FILTER (WHERE metric = 'm') AS m FROM tile GROUP BY 1)
        SELECT count(*), count(*) FILTER (WHERE w.r = s.r_score), count(*) FILTER (WHERE w.f = s.f_score),
               count(*) FILTER (WHERE w.m = s.m_score),
               (SELECT list(t ORDER BY j) FROM t WHERE metric = 'f')
        FROM want w JOIN read_parquet('{scores}') s USING (customer_id)
        """
    ).fetchone()
    customers, same_r, same_f, same_m, f_thresholds = exact
    assert f_thresholds[0] == 1.0 and thresholds["frequency"] == [int(t) for t in f_thresholds]
    assert customers == 120_000
    assert same_r == customers and same_f == customers
    assert same_m >= 0.998 * customers


# --- 2,000,000 distinct values: the job's thresholds against DuckDB's order statistics ----

ROWS, DISTINCT = 3_000_001, 2_000_000  # + 7 null recencies; N = 3,000,001 is not divisible by 4
# Keys 0..1,999,999 once each, then 1,000,001 repeats piled up on the small keys; recency is
# strictly increasing in the key (2,000,000 distinct values, gaps widening up to 4,000,000),
# frequency 0..39 with most customers at 0.
KEY = f"CASE WHEN id < {DISTINCT} THEN id ELSE (id - {DISTINCT}) * (id - {DISTINCT}) // 500001 END"
RECENCY = f"key + key * key // {DISTINCT}"
FREQUENCY = "key * key // 100000000000"


def test_thresholds_over_2m_distinct_values_equal_duckdb_order_statistics(spark: SparkSession) -> None:
    import duckdb

    spark_sql = {
        name: F.expr(text.replace("//", "div")) for name, text in [("key", KEY), ("r", RECENCY), ("f", FREQUENCY)]
    }
    profile = (
        spark.range(ROWS + 7)
        .select("id", spark_sql["key"].alias("key"))
        .select(
            F.concat(F.lit("c"), F.col("id").cast("string")).alias("customer_id"),
            F.when(F.col("id") < ROWS, spark_sql["r"]).cast("int").alias("recency_days"),
            spark_sql["f"].alias("frequency"),
            F.lit(M("1.00")).cast("decimal(18,2)").alias("monetary_amount"),
        )
    )
    thresholds, methods = segment_job.rfm_thresholds(profile, config_of())

    # DuckDB, independently: sort the same values and take those at ranks ceil(j * N / 4)
    ranks = [-(-j * ROWS // 4) for j in (1, 2, 3)]  # 750001, 1500001, 2250001
    at_ranks = ", ".join(f"{{name}}[{r}]" for r in ranks)
    recency, frequency, distinct = duckdb.execute(
        f"""
        WITH keys AS (SELECT {KEY} AS key FROM range({ROWS}) t(id)),
        sorted AS (SELECT list_sort(list({RECENCY})) AS r, list_sort(list({FREQUENCY})) AS f,
                          count(DISTINCT {RECENCY}) AS distinct_r FROM keys)
        SELECT [{at_ranks.format(name="r")}], [{at_ranks.format(name="f")}], distinct_r FROM sorted
        """
    ).fetchone()
    assert distinct == DISTINCT
    assert thresholds["recency"] == recency
    assert thresholds["frequency"] == frequency
    assert methods["recency"] == "exact (values at ranks ceil(j*N/n) of N = 3,000,001; 2,000,000 distinct values)"
