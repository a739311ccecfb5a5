"""The real data sets through ingest + cleanse, checked against DuckDB on the raw CSV files.

Expected figures come from DuckDB reading the delivered files directly (an independent
computation of the same definitions: receipt = invoice, fee lines left out, no customer
-> missing_customer, net amount 0 -> zero_amount), never from seglake's own output.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from pyspark.sql import SparkSession

from jobs import cleanse as cleanse_job
from jobs import features as features_job
from jobs import ingest as ingest_job
from jobs import segment as segment_job
from seglake.segment_maps import OTHER, load_segment_map
from tests.conftest import SHARED_DATA

RETAIL = SHARED_DATA / "online_retail" / "by_day"
FEES = "('AMAZONFEE', 'BANK CHARGES', 'CRUK', 'B')"
GBP = ["--set=currency.base=GBP", "--set=currency.rates={GBP: 1.0}", "--set=cleanse.business_start=2010-01-01"]


def duckdb_expected(files: list[str]) -> dict[str, object]:
    """Per-invoice outcome computed by DuckDB from the raw lines."""
    invoices = duckdb.sql(
        f"""
        SELECT InvoiceNo,
               max(CustomerID) AS customer,
               round(sum(CAST(Quantity AS DOUBLE) * CAST(UnitPrice AS DOUBLE)), 2) AS amount
        FROM read_csv({files!r}, header = true, all_varchar = true)
        WHERE StockCode NOT IN {FEES}
        GROUP BY InvoiceNo
        """
    )
    rows = invoices.fetchall()
    return {
        "receipts": len(rows),
        "clean": sum(1 for _, c, a in rows if c and a != 0),
        "missing_customer": sum(1 for _, c, _a in rows if not c),
        "zero_amount": sum(1 for _, c, a in rows if c and a == 0),
        "customers": len({c for _, c, a in rows if c and a != 0}),
        "revenue": round(sum(a for _, c, a in rows if c and a != 0), 2),
        "returns": sum(1 for i, c, a in rows if c and a != 0 and i.startswith("C")),
    }


def run_pipeline(spark: SparkSession, lake: Path, source: str) -> dict[str, object]:
    argv = [f"--set=lake.root={lake}", *GBP]
    assert ingest_job.main([*argv, "--mapping", "online_retail", "--source", source]) == 0
    assert cleanse_job.main([*argv, "--no-profile"]) == 0
    silver = spark.read.format("delta").load(f"{lake}/silver/receipts")
    reasons = dict(
        spark.read.format("delta").load(f"{lake}/silver/receipts_quarantine").groupBy("reject_reason").count().collect()
    )
    totals = silver.selectExpr(
        "count(*) AS clean",
        "count(DISTINCT customer_id) AS customers",
        "sum(amount) AS revenue",
        "count_if(amount < 0 AND receipt_id LIKE 'C%') AS returns",
    ).first()
    return {
        "receipts": totals["clean"] + sum(reasons.values()),
        "clean": totals["clean"],
        "missing_customer": reasons.get("missing_customer", 0),
        "zero_amount": reasons.get("zero_amount", 0),
        "customers": totals["customers"],
        "revenue": round(float(totals["revenue"]), 2),
        "returns": totals["returns"],
    }


@pytest.mark.shared_data
def test_online_retail_slice_matches_duckdb_on_the_raw_lines(spark: SparkSession, lake: Path) -> None:
    days = ["2010-12-01", "2011-01-18", "2011-11-29"]
    files = [str(RETAIL / f"{day}.csv.gz") for day in days]
    expected = duckdb_expected(files)
    assert expected["missing_customer"] > 0 and expected["returns"] > 0
    assert run_pipeline(spark, lake, str(RETAIL / "{2010-12-01,2011-01-18,2011-11-29}.csv.gz")) == expected


@pytest.fixture(scope="module")
def whole_retail(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """All of Online Retail ingested and cleansed once: the lake and the figures read back."""
    lake = tmp_path_factory.mktemp("online_retail") / "lake"
    return lake, run_pipeline(spark, lake, str(RETAIL / "*.csv.gz"))


@pytest.mark.shared_data
@pytest.mark.slow
def test_whole_online_retail_matches_duckdb_and_the_known_figures(whole_retail: tuple[Path, dict]) -> None:
    files = sorted(str(f) for f in RETAIL.glob("*.csv.gz"))
    expected = duckdb_expected(files)
    # known figures of the set (shared/data/README.md): 25,900 invoices, 4,372 customers,
    # of which 89 invoices hold fee lines only and one customer's only invoice nets to 0
    assert expected["receipts"] == 25_900 - 89
    assert expected["customers"] == 4_372 - 1
    assert whole_retail[1] == expected


@pytest.mark.shared_data
@pytest.mark.slow
def test_online_retail_fills_every_segment_of_the_default_map(
    spark: SparkSession, whole_retail: tuple[Path, dict]
) -> None:
    lake = whole_retail[0]
    argv = [f"--set=lake.root={lake}", *GBP, "--as-of", "2011-12-09"]
    assert features_job.main(argv) == 0
    assert segment_job.main(argv) == 0
    segments = spark.read.format("delta").load(f"{lake}/gold/rfm_segments")
    sizes = {r["category"]: r["count"] for r in segments.groupBy("category").count().collect()}
    profile = spark.read.format("delta").load(f"{lake}/gold/customer_profile")
    assert sum(sizes.values()) == profile.count() > 4_300  # everyone with a purchase (4,371 with any receipt)
    assert OTHER not in sizes
    assert all(sizes.get(name, 0) > 0 for name in load_segment_map("default", 4).category_names()), sizes
