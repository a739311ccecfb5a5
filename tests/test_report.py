"""The report: small aggregates (hand-worked), the page (no Spark), the job on a lake."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import report as report_job
from seglake.report import ReportData, render_report
from transforms.report import filter_recent_cohorts, to_headline, to_latest_checks, to_segment_sizes

AS_OF = dt.date(2024, 12, 31)


def test_headline_counts_active_customers_orders_revenue_and_median_recency(spark: SparkSession) -> None:
    profile = spark.createDataFrame(
        [
            ("a", 0, 2, Decimal("100.00")),
            ("b", 10, 0, Decimal("-5.00")),
            ("c", 10, 1, Decimal("50.50")),
            ("d", 400, 1, None),
        ],
        "customer_id string, recency_days int, frequency long, monetary_amount decimal(18,2)",
    )
    # active: a, c, d (frequency > 0) = 3; orders 2 + 0 + 1 + 1 = 4; revenue 100 - 5 + 50.50 = 145.50
    # (null monetary ignored); median recency of 0, 10, 10, 400: the lower middle value, 10
    row = to_headline(profile).first().asDict()
    assert row == {
        "customers": 4,
        "active_customers": 3,
        "orders": 4,
        "revenue_amount": Decimal("145.50"),
        "median_recency_days": 10,
    }


def test_segment_sizes_share_customers_and_revenue_and_list_cells(spark: SparkSession) -> None:
    segments = spark.createDataFrame(
        [
            ("a", "Loyal", "weekly promotions", "111", Decimal("300.00"), Decimal("500.00")),
            ("b", "Loyal", "weekly promotions", "112", Decimal("100.00"), Decimal("250.00")),
            ("c", "Other", None, "444", Decimal("100.00"), Decimal("250.00")),
            ("d", "Other", None, "443", Decimal("0.00"), None),
        ],
        "customer_id string, category string, campaign string, rfm_cell string, monetary_amount decimal(18,2), "
        "clv_amount decimal(18,2)",
    )
    # revenue 500 in all: Loyal 400 (0.8), Other 100 (0.2); customers 2 of 4 each;
    # CLV 1000 in all: Loyal 750 (mean 375, 0.75), Other 250 (d has none: mean 250, 0.25)
    expected = spark.createDataFrame(
        [
            ("Loyal", "weekly promotions", "111, 112", 2, 0.5, Decimal("400.00"), 0.8, 375.0, 0.75),
            ("Other", None, "443, 444", 2, 0.5, Decimal("100.00"), 0.2, 250.0, 0.25),
        ],
        "category string, campaign string, rfm_cells string, customers long, customer_share double, "
        "revenue_amount decimal(18,2), revenue_share double, avg_clv_amount double, clv_share double",
    )
    assert_df_equality(
        to_segment_sizes(segments), expected, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True
    )


def test_recent_cohorts_keep_every_offset_of_the_latest_cohorts(spark: SparkSession) -> None:
    retention = spark.createDataFrame(
        [
            (dt.date(2024, 10, 1), 0),
            (dt.date(2024, 10, 1), 1),
            (dt.date(2024, 10, 1), 2),
            (dt.date(2024, 11, 1), 0),
            (dt.date(2024, 11, 1), 1),
            (dt.date(2024, 12, 1), 0),
        ],
        "cohort_start_date date, period_offset int",
    )
    kept = filter_recent_cohorts(retention, 2)
    assert sorted(tuple(r) for r in kept.collect()) == [
        (dt.date(2024, 11, 1), 0),
        (dt.date(2024, 11, 1), 1),
        (dt.date(2024, 12, 1), 0),
    ]


def test_latest_checks_skip_a_later_cleanse_that_read_nothing(spark: SparkSession) -> None:
    at = dt.datetime(2025, 1, 1, 8)
    checks = spark.createDataFrame(
        [
            ("r1", "cleanse", at, "zero_amount", 100, 3),
            ("r2", "cleanse", at + dt.timedelta(hours=1), "zero_amount", 50, 1),
            ("r2", "cleanse", at + dt.timedelta(hours=1), "books_balance", 50, 0),
            ("r3", "cleanse", at + dt.timedelta(hours=2), "zero_amount", 0, 0),  # incremental run, nothing new
            ("x9", "other", at + dt.timedelta(hours=3), "zero_amount", 10, 1),
        ],
        "run_id string, job string, checked_at timestamp, check_name string, rows_checked long, rows_flagged long",
    )
    assert sorted((r["run_id"], r["check_name"]) for r in to_latest_checks(checks).collect()) == [
        ("r2", "books_balance"),
        ("r2", "zero_amount"),
    ]


def _minimal_data() -> ReportData:
    return ReportData(
        as_of=AS_OF,
        currency="EUR",
        window_days=365,
        headline={
            "customers": 12345,
            "active_customers": 6000,
            "orders": 54321,
            "revenue_amount": Decimal("1234567.89"),
            "median_recency_days": 42,
        },
    )


def test_page_without_segment_tables_names_the_jobs_to_run() -> None:
    page = render_report(_minimal_data())
    assert "12,345" in page and "1,234,568" in page and "48.6%" in page and "54,321" in page
    for job in ("segment", "clusters", "cohorts"):
        assert f"run <code>seglake {job} --as-of 2024-12-31</code>" in page
    assert "run <code>seglake cleanse</code>" in page
    assert "<img" not in page  # nothing to draw


def test_page_embeds_charts_and_escapes_names() -> None:
    data = _minimal_data()
    data.segments = [
        {
            "category": "<Loyal>",
            "campaign": "weekly & more",
            "rfm_cells": "111",
            "customers": 3000,
            "customer_share": 0.243,
            "revenue_amount": Decimal("700000.00"),
            "revenue_share": 0.567,
        }
    ]
    data.rf_grid = [{"r_score": 1, "f_score": 1, "customers": 3000, "revenue_amount": Decimal("700000.00")}]
    page = render_report(data)
    assert "9,345 customers without a purchase in the window are not scored" in page  # 12,345 - 3,000
    assert "&lt;Loyal&gt;" in page and "weekly &amp; more" in page and "<Loyal>" not in page
    assert "3,000" in page and "700,000 EUR" in page and "56.7%" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2  # segment bars, R x F heatmap
    assert 'src="http' not in page and "<link" not in page  # self-contained


def test_offers_show_coverage_and_each_groups_first_offers() -> None:
    data = _minimal_data()  # 12,345 customers
    data.offers = [
        {"customer_group": "Loyal", "offer_category": "BAKERY", "source": "lift", "customers": 300, "lift": 1.5},
        {"customer_group": "Loyal", "offer_category": "DELI", "source": "popular", "customers": 100, "lift": 0.9},
        {"customer_group": "Lost", "offer_category": "DELI", "source": "popular", "customers": 50, "lift": 1.0},
    ]
    data.offers_coverage = {"customers": 450, "full": 400, "with_lift": 300, "top_n": 3}
    page = render_report(data)
    section = page[page.index('id="offers"') : page.index('id="rf_grid"')]
    assert "450 of 12,345 customers (3.6%) have an offer, 400 the full 3; 300 have a category" in section
    cells = re.findall(r'<td class="[a-z]*">([^<]*)</td>', section)
    assert cells == [
        "Loyal",
        "400",
        "BAKERY (75.0%, lift 1.50), DELI (25.0%, popular)",
        "Lost",
        "50",
        "DELI (100.0%, popular)",
    ]


def test_segments_show_mean_clv_and_its_share_when_valued() -> None:
    data = _minimal_data()
    data.segments = [
        {
            "category": "Champions",
            "campaign": "vip",
            "rfm_cells": "111",
            "customers": 10,
            "customer_share": 0.1,
            "revenue_amount": Decimal("500.00"),
            "revenue_share": 0.5,
            "avg_clv_amount": 812.4,
            "clv_share": 0.6,
        },
    ]
    data.clv_horizon_days = 180
    page = render_report(data)
    section = page[page.index('id="segments"') : page.index('id="campaigns"')]
    assert "<th" in section and "mean CLV" in section and "812 EUR" in section and "60.0%" in section
    assert "over the next 180 days" in section


def test_campaigns_show_consent_priority_and_holdout_counts() -> None:
    data = _minimal_data()
    data.segments = [
        {
            "category": "At Risk",
            "campaign": "win-back e-mail",
            "rfm_cells": "321",
            "customers": 900,
            "customer_share": 0.5,
            "revenue_amount": Decimal("10.00"),
            "revenue_share": 0.5,
        },
    ]
    data.campaign_summary = [
        {
            "campaign": "win-back e-mail",
            "channel": "email",
            "priority": 11,
            "holdout_share": 0.1,
            "candidate_customers": 1000,
            "no_consent_customers": 450,
            "excluded_customers": 50,
            "audience_customers": 500,
            "holdout_customers": 48,
            "contact_customers": 452,
        },
    ]
    page = render_report(data)
    section = page[page.index('id="campaigns"') : page.index('id="rf_grid"')]
    cells = re.findall(r'<td class="[a-z]*">([^<]*)</td>', section)
    assert cells == ["win-back e-mail", "At Risk", "email", "11", "1,000", "450", "50", "452", "48 (10.0%)"]


@pytest.mark.slow  # the pipeline lake: every stage on a generated lake
def test_report_job_renders_every_section_from_the_gold_tables(
    spark: SparkSession, pipeline_lake: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    argv = ["--set", f"lake.root={pipeline_lake}", "--set", f"report.root={out}"]
    assert report_job.main(argv) == 0
    (page_path,) = out.glob("segmentation_*.html")
    page = page_path.read_text()
    assert "Not computed" not in page
    # segments, R x F, retention, clusters, migration, quality: one chart each
    assert page.count("data:image/png;base64,") == 6
    clusters = spark.read.format("delta").load(f"{pipeline_lake}/gold/cluster_profiles")
    latest = clusters.agg(F.max("as_of_date")).first()[0]
    names = [r["cluster_name"] for r in clusters.where(F.col("as_of_date") == latest).collect()]
    assert names and all(html.escape(name) in page for name in names)
    assert "vip early access" in page  # the default map's campaign for Champions
