"""ingest: mappings, parsing without loss, line rollup, lineage, idempotency, real data."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import ingest as ingest_job
from seglake import catalog, tables
from seglake.config import load_config
from seglake.mapping import Mapping, MappingError, load_mapping
from tests.conftest import SHARED_DATA
from transforms.ingest import (
    ingest_summary,
    row_key_prefix,
    to_bronze_customers,
    to_bronze_receipts,
    to_parsed_lines,
    to_receipts,
    with_key_prefixes,
    with_raw_text,
)

INGESTED_AT = dt.datetime(2024, 1, 1)
RETAIL = SHARED_DATA / "online_retail" / "by_day"
JOURNEY = SHARED_DATA / "complete_journey"

LINE_MAPPING: dict[str, Any] = {
    "source": {"format": "csv", "options": {"header": True}},
    "grain": "line",
    "timestamp": {"format": "yyyy-MM-dd HH:mm:ss", "time_zone": "Europe/London"},
    "columns": {
        "receipt_id": "inv",
        "customer_id": "cust",
        "receipt_ts": "ts",
        "quantity": "qty",
        "unit_price": "price",
        "category": "cat",
    },
    "constants": {"currency": "GBP", "channel": "online"},
    "exclude_lines": "code = 'FEE'",
}

# Hand-checked: A1 ties toys/books at 3.00 (books wins by name); CA2 is a cancellation
# after the switch to summer time (12:00 BST = 11:00 UTC); A3 has a bad price, A4 a bad
# date, A5 only an excluded fee line, A6 too few columns.
LINES_CSV = """inv,cust,ts,qty,price,cat,code
A1,c1,2011-03-26 12:00:00,2,1.50,toys,X
A1,c1,2011-03-26 12:00:00,1,3.00,books,X
A1,c1,2011-03-26 12:01:00,1,0.25,,X
CA2,c1,2011-03-28 12:00:00,-2,1.50,toys,X
A3,c2,2011-03-28 09:00:00,1,abc,toys,X
A3,c2,2011-03-28 09:00:00,1,2.00,toys,X
A4,c3,not a date,1,1.00,toys,X
A5,c3,2011-03-28 10:00:00,1,5.00,fees,FEE
A6,c4,2011-03-28 10:00:00,1
"""

BRONZE_COLUMNS = catalog.table("bronze/receipts").column_names


def make_mapping(data: dict[str, Any], name: str = "test") -> Mapping:
    mapping = Mapping.model_validate(data)
    mapping.name, mapping.file = name, f"{name}.yaml"
    return mapping


def write_text(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", newline="") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return str(path)


def receipts_of(spark: SparkSession, mapping: Mapping, path: str) -> DataFrame:
    """Source -> receipts with accounting columns (no lake involved)."""
    lines = ingest_job.read_lines(spark, mapping, path)
    source = ingest_job.receipt_source(mapping)
    return to_receipts(to_parsed_lines(lines, source), source)


@pytest.fixture(scope="module")
def line_receipts(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> DataFrame:
    path = write_text(tmp_path_factory.mktemp("lines") / "day1.csv", LINES_CSV)
    frame = receipts_of(spark, make_mapping(LINE_MAPPING, "shop"), path).cache()
    yield frame
    frame.unpersist()


def test_line_grain_rolls_up_to_hand_checked_receipts(spark: SparkSession, line_receipts: DataFrame) -> None:
    bronze = to_bronze_receipts(line_receipts, ingested_at=INGESTED_AT)
    assert bronze.columns == BRONZE_COLUMNS
    expected = spark.createDataFrame(
        [
            ("A1", "c1", dt.datetime(2011, 3, 26, 12, 0), Decimal("6.25"), "books", 4, None),
            ("CA2", "c1", dt.datetime(2011, 3, 28, 11, 0), Decimal("-3.00"), "toys", -2, None),
            ("A3", "c2", dt.datetime(2011, 3, 28, 8, 0), Decimal("2.00"), "toys", 2, "amount"),
            ("A4", "c3", None, Decimal("1.00"), "toys", 1, "receipt_ts"),
            (
                "A6",
                "c4",
                dt.datetime(2011, 3, 28, 9, 0),
                None,
                None,
                1,
                "receipt_id,customer_id,receipt_ts,amount,category,item_count",
            ),
        ],
        "receipt_id string, customer_id string, receipt_ts timestamp, amount decimal(18,2), "
        "category string, item_count int, parse_errors string",
    )
    assert_df_equality(bronze.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_bad_lines_keep_their_receipt_with_raw_text_and_lineage(line_receipts: DataFrame) -> None:
    bronze = to_bronze_receipts(line_receipts, ingested_at=INGESTED_AT)
    rows = {r["receipt_id"]: r for r in bronze.collect()}
    assert rows["A3"]["raw_record"] == "A3,c2,2011-03-28 09:00:00,1,abc,toys,X"
    assert rows["A4"]["raw_record"] == "A4,c3,not a date,1,1.00,toys,X"
    assert rows["A6"]["raw_record"] == "A6,c4,2011-03-28 10:00:00,1"
    assert rows["A1"]["raw_record"] is None
    assert rows["A4"]["receipt_month"] == "unknown" and rows["A1"]["receipt_month"] == "2011-03"
    assert rows["A1"]["row_key"] == "shop:day1.csv:A1"
    assert rows["A1"]["source_file"].endswith("/day1.csv")
    assert (rows["A1"]["currency"], rows["A1"]["channel"]) == ("GBP", "online")
    assert rows["A1"]["ingested_at"] == INGESTED_AT


def test_every_line_is_accounted_for(line_receipts: DataFrame) -> None:
    summary = ingest_summary(line_receipts).first().asDict()
    assert summary == {
        "lines_read": 9,
        "lines_excluded": 1,
        "lines_rolled_up": 8,
        "lines_malformed": 1,
        "receipts_built": 5,
        "receipts_only_excluded": 1,
        "receipts_with_errors": 3,
        "customers": 4,
    }


def test_lines_that_disagree_on_the_customer_flag_the_receipt(spark: SparkSession, tmp_path: Path) -> None:
    text = "inv,cust,ts,qty,price,cat,code\nB1,c1,2011-01-01 10:00:00,1,1,x,X\n"
    text += "B1,,2011-01-01 10:00:00,1,1,x,X\nB2,c1,2011-01-01 10:00:00,1,1,x,X\n"
    path = write_text(tmp_path / "d.csv", text)
    receipts = receipts_of(spark, make_mapping(LINE_MAPPING), path)
    bronze = to_bronze_receipts(receipts, ingested_at=INGESTED_AT)
    flags = {r["receipt_id"]: r["parse_errors"] for r in bronze.collect()}
    assert flags == {"B1": "customer_id", "B2": None}


RECEIPT_MAPPING: dict[str, Any] = {
    "source": {"format": "json"},
    "grain": "receipt",
    "timestamp": {"format": "yyyy-MM-dd'T'HH:mm:ss", "time_zone": "America/New_York"},
    "columns": {
        "receipt_id": "id",
        "customer_id": "who",
        "receipt_ts": "at",
        "amount": "total",
        "item_count": "items",
        "discount_amount": "disc",
        "coupon_used": "coupon",
    },
}


def test_receipt_grain_json_keeps_identical_rows_and_bad_values(spark: SparkSession, tmp_path: Path) -> None:
    rows = [
        '{"id": "r1", "who": " C1 ", "at": "2017-03-11T12:00:00", "total": 10.5, "items": 2, '
        '"disc": -1.25, "coupon": 0}',
        '{"id": "r1", "who": " C1 ", "at": "2017-03-11T12:00:00", "total": 10.5, "items": 2, '
        '"disc": -1.25, "coupon": 0}',
        '{"id": "r2", "who": "C2", "at": "2017-03-13T12:00:00", "total": "ten", "items": 1, '
        '"disc": 0, "coupon": "yes"}',
        '{"id": "r3", "who": "C3", "at": "2017-03-13T12:00:00", "total": 1, "coupon": 0.5',
    ]
    path = write_text(tmp_path / "r.jsonl", "\n".join(rows) + "\n")
    receipts = receipts_of(spark, make_mapping(RECEIPT_MAPPING, "pos"), path)
    bronze = to_bronze_receipts(receipts, ingested_at=INGESTED_AT).orderBy(F.asc_nulls_last("receipt_id"))
    got = bronze.collect()
    assert len(got) == 4 and len({r["row_key"] for r in got}) == 4
    first = got[0]
    # as delivered (not trimmed); EST before the 2017-03-12 switch: 12:00 = 17:00 UTC
    assert first["customer_id"] == " C1 "
    assert first["receipt_ts"] == dt.datetime(2017, 3, 11, 17, 0)
    assert (first["amount"], first["item_count"]) == (Decimal("10.50"), 2)
    assert (first["discount_amount"], first["coupon_used"]) == (Decimal("1.25"), False)
    second = got[2]  # r2: EDT after the switch, 12:00 = 16:00 UTC
    assert second["receipt_ts"] == dt.datetime(2017, 3, 13, 16, 0)
    assert (second["amount"], second["coupon_used"]) == (None, True)
    assert second["parse_errors"] == "amount" and '"total":"ten"' in second["raw_record"]
    broken = [r for r in got if r["receipt_id"] is None]
    assert len(broken) == 1 and broken[0]["raw_record"] == rows[3]
    assert broken[0]["parse_errors"].startswith("receipt_id,customer_id,receipt_ts,amount")


def test_parquet_and_delta_sources_read_the_same(spark: SparkSession, tmp_path: Path) -> None:
    source = spark.createDataFrame(
        [("p1", "C1", "2020-06-01 10:00:00", "3.10")], "id string, who string, at string, total string"
    )
    source.write.parquet(str(tmp_path / "pq"))
    source.write.format("delta").save(str(tmp_path / "dl"))
    data = {**RECEIPT_MAPPING, "timestamp": {"time_zone": "UTC"}}
    kept = ("receipt_id", "customer_id", "receipt_ts", "amount")
    data["columns"] = {k: v for k, v in RECEIPT_MAPPING["columns"].items() if k in kept}
    results = []
    for fmt, folder in (("parquet", "pq"), ("delta", "dl")):
        mapping = make_mapping({**data, "source": {"format": fmt}}, fmt)
        bronze = to_bronze_receipts(receipts_of(spark, mapping, str(tmp_path / folder)), ingested_at=INGESTED_AT)
        results.append(bronze.select("receipt_id", "receipt_ts", "amount", "parse_errors").first())
    assert results[0] == results[1]
    assert results[0]["receipt_ts"] == dt.datetime(2020, 6, 1, 10, 0)
    assert results[0]["amount"] == Decimal("3.10") and results[0]["parse_errors"] is None


# --- the job: idempotency, modes, errors ---------------------------------------------


def write_mapping(folder: Path, data: dict[str, Any], name: str = "shop") -> str:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def run_ingest(spark: SparkSession, lake: Path, *args: str) -> int:
    return ingest_job.main(["--set", f"lake.root={lake}", *args], spark=spark)


def test_ingesting_the_same_files_again_adds_nothing(spark: SparkSession, tmp_path: Path, lake: Path) -> None:
    source = write_text(tmp_path / "in" / "day1.csv.gz", LINES_CSV)
    mapping = write_mapping(tmp_path, LINE_MAPPING)
    assert run_ingest(spark, lake, "--mapping", mapping, "--source", source) == 0
    assert run_ingest(spark, lake, "--mapping", mapping, "--source", source) == 0
    bronze = spark.read.format("delta").load(str(lake / "bronze/receipts"))
    assert bronze.count() == 5 and bronze.select("row_key").distinct().count() == 5
    runs = spark.read.format("delta").load(str(lake / "ops/runs")).where("status <> 'started'").orderBy("started_at")
    details = [json.loads(r["details"]) for r in runs.collect()]
    assert [d["receipts_written"] for d in details] == [5, 0]
    assert details[1]["receipts_already_in_bronze"] == 5 and details[1]["lines_read"] == 9
    assert run_ingest(spark, lake, "--mapping", mapping, "--source", source, "--mode", "overwrite") == 0
    assert spark.read.format("delta").load(str(lake / "bronze/receipts")).count() == 5


def test_key_prefixes_select_every_key_of_their_files(spark: SparkSession) -> None:
    keys = ["m:a.csv:1", "m:a.csv:zz", "m:a.csv:", "m:a.csv;x", "m:a.csv", "m:ab.csv:1", "n:a.csv:1", "m:a\U0010ffff:1"]
    frame = spark.createDataFrame([(k,) for k in keys], "row_key string")
    prefixes = {r["row_key"]: r["p"] for r in frame.select("row_key", row_key_prefix().alias("p")).collect()}
    assert prefixes["m:a.csv:zz"] == "m:a.csv" and prefixes["m:a.csv"] == "m:a.csv"
    assert prefixes["m:ab.csv:1"] == "m:ab.csv" and prefixes["m:a.csv;x"] == "m:a.csv;x"  # one colon: the key

    def selected(wanted: list[str]) -> set[str]:
        return {r["row_key"] for r in frame.where(with_key_prefixes(wanted)).collect()}

    # every key starting with the prefix, and no other file's keys ("m:a.csv;x" starts with it too)
    assert selected(["m:a.csv"]) == {"m:a.csv:1", "m:a.csv:zz", "m:a.csv:", "m:a.csv;x", "m:a.csv"}
    assert selected(["m:ab.csv", "n:a.csv"]) == {"m:ab.csv:1", "n:a.csv:1"}
    # the last character cannot be raised: no upper bound, every key from the prefix on
    assert selected(["m:a\U0010ffff"]) == {"m:a\U0010ffff:1", "n:a.csv:1"}
    assert selected([]) == set()
    assert selected(["", "m:ab.csv"]) == set(keys)
    # each key is selected by its own prefix: the check can never miss a key already there
    for key, prefix in prefixes.items():
        assert key in selected([prefix])


def test_a_new_files_append_reads_no_bronze_file_of_other_source_files(
    spark: SparkSession, tmp_path: Path, lake: Path
) -> None:
    mapping = write_mapping(tmp_path, LINE_MAPPING)
    day1 = write_text(tmp_path / "in" / "day1.csv.gz", LINES_CSV)
    day2 = write_text(tmp_path / "in" / "day2.csv.gz", LINES_CSV)  # same lines, another file: new row keys
    assert run_ingest(spark, lake, "--mapping", mapping, "--source", day1) == 0
    # day1's rows are gone from disk (the log still lists them): a run that reads them fails
    day1_files = list((lake / "bronze/receipts").rglob("*.parquet"))
    assert day1_files
    for file in day1_files:
        file.unlink()
    assert run_ingest(spark, lake, "--mapping", mapping, "--source", day2) == 0
    assert run_ingest(spark, lake, "--mapping", mapping, "--source", day2) == 0  # again: adds nothing
    assert run_ingest(spark, lake, "--mapping", mapping, "--source", day1) != 0  # day1's keys must be read
    runs = spark.read.format("delta").load(str(lake / "ops/runs")).where("status = 'succeeded'").orderBy("started_at")
    assert [json.loads(r["details"])["receipts_written"] for r in runs.collect()] == [5, 5, 0]


def mapping_error(tmp_path: Path, data: dict[str, Any], spark: SparkSession | None = None) -> str:
    path = write_mapping(tmp_path, data, "bad")
    with pytest.raises(MappingError) as caught:
        mapping = load_mapping(path)
        if spark is not None:
            source = write_text(tmp_path / "in.csv", LINES_CSV)
            ingest_job.read_lines(spark, mapping, source)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def test_unknown_format_is_a_one_line_error(tmp_path: Path) -> None:
    data = {**LINE_MAPPING, "source": {"format": "xlsx"}}
    assert "source.format: " in mapping_error(tmp_path, data)


def test_unknown_canonical_column_is_a_one_line_error(tmp_path: Path) -> None:
    data = {**LINE_MAPPING, "columns": {**LINE_MAPPING["columns"], "colour": "cat"}}
    assert "columns.colour: not a canonical column" in mapping_error(tmp_path, data)


def test_unknown_time_zone_is_a_one_line_error(tmp_path: Path) -> None:
    data = {**LINE_MAPPING, "timestamp": {"time_zone": "Mars/Olympus"}}
    assert "timestamp.time_zone: unknown time zone" in mapping_error(tmp_path, data)


def test_a_column_the_source_lacks_names_key_and_available_columns(spark: SparkSession, tmp_path: Path) -> None:
    data = {**LINE_MAPPING, "columns": {**LINE_MAPPING["columns"], "store_id": "shop"}}
    message = mapping_error(tmp_path, data, spark)
    assert "columns.store_id: source has no column 'shop'" in message
    assert "available: inv, cust, ts, qty, price, cat, code" in message


def test_an_expression_that_does_not_parse_is_a_one_line_error(spark: SparkSession, tmp_path: Path) -> None:
    columns = {**LINE_MAPPING["columns"], "region": {"expr": "upper(cat"}}
    message = mapping_error(tmp_path, {**LINE_MAPPING, "columns": columns}, spark)
    assert "columns.region: expression does not parse" in message


def test_an_expression_on_a_missing_column_is_a_one_line_error(spark: SparkSession, tmp_path: Path) -> None:
    message = mapping_error(tmp_path, {**LINE_MAPPING, "exclude_lines": "sku = 'X'"}, spark)
    assert "exclude_lines: expression does not fit the source" in message and "available:" in message


def test_a_bad_mapping_fails_the_job_before_anything_is_written(
    spark: SparkSession, tmp_path: Path, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {**LINE_MAPPING, "columns": {**LINE_MAPPING["columns"], "store_id": "shop"}}
    source = write_text(tmp_path / "in.csv", LINES_CSV)
    code = run_ingest(spark, lake, "--mapping", write_mapping(tmp_path, data), "--source", source)
    assert code == 2
    assert "seglake ingest: error: " in capsys.readouterr().err
    assert not (lake / "bronze").exists()


def test_shipped_mappings_load() -> None:
    retail, journey = load_mapping("online_retail"), load_mapping("complete_journey")
    assert (retail.grain, retail.timestamp.time_zone) == ("line", "Europe/London")
    assert journey.customers is not None and journey.lookups[0].key == "product_id"


# --- real data -----------------------------------------------------------------------

EXCLUDED_CODES = {"AMAZONFEE", "BANK CHARGES", "CRUK", "B"}
NOT_ITEMS = {"POST", "DOT", "C2", "D", "S"}


def brace_glob(files: list[Path]) -> str:
    """One Hadoop glob for several files of a folder: dir/{a,b}."""
    return f"{files[0].parent}/{{{','.join(f.name for f in files)}}}"


def retail_expected(files: list[Path]) -> dict[str, dict[str, Any]]:
    """Per invoice, with Python's csv module: amount, items, customer, lines."""
    invoices: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"amount": Decimal(0), "items": 0, "included": 0, "customer": None}
    )
    for file in files:
        with gzip.open(file, "rt", newline="") as handle:
            for row in csv.DictReader(handle):
                invoice = invoices[row["InvoiceNo"]]
                if row["StockCode"] in EXCLUDED_CODES:
                    continue
                invoice["included"] += 1
                invoice["amount"] += int(row["Quantity"]) * Decimal(row["UnitPrice"])
                if row["StockCode"] not in NOT_ITEMS:
                    invoice["items"] += int(row["Quantity"])
                if row["CustomerID"]:
                    invoice["customer"] = row["CustomerID"].removesuffix(".0")
    return invoices


@pytest.mark.shared_data
def test_online_retail_day_files_match_an_independent_count(spark: SparkSession) -> None:
    # 2011-05-15 holds excluded fee lines; 2011-03-27 is the day UK clocks went forward
    files = [RETAIL / "2011-05-15.csv.gz", RETAIL / "2011-03-27.csv.gz"]
    mapping = load_mapping("online_retail")
    receipts = receipts_of(spark, mapping, brace_glob(files)).cache()
    expected = retail_expected(files)
    lines = 0
    for file in files:
        with gzip.open(file, "rt") as handle:
            lines += sum(1 for _ in handle) - 1
    written = {k: v for k, v in expected.items() if v["included"] > 0}
    summary = ingest_summary(receipts).first().asDict()
    assert summary["lines_read"] == lines
    assert summary["lines_rolled_up"] == sum(v["included"] for v in expected.values())
    assert summary["receipts_built"] == len(written)
    assert summary["receipts_only_excluded"] == len(expected) - len(written)
    assert summary["customers"] == len({v["customer"] for v in written.values()} - {None})
    bronze = to_bronze_receipts(receipts, ingested_at=INGESTED_AT)
    got = {
        r["receipt_id"]: (r["amount"], r["item_count"], r["customer_id"], r["parse_errors"]) for r in bronze.collect()
    }
    cents = Decimal("0.01")
    assert got == {
        k: (v["amount"].quantize(cents, ROUND_HALF_UP), v["items"], v["customer"], None) for k, v in written.items()
    }
    cancellations = bronze.where(F.col("receipt_id").startswith("C"))
    assert cancellations.count() > 0 and cancellations.where("amount >= 0").count() == 0
    receipts.unpersist()


@pytest.mark.shared_data
def test_online_retail_times_are_uk_local_converted_to_utc(spark: SparkSession) -> None:
    # 536365 at 2010-12-01 08:26 GMT; on 2011-03-27 (after 01:00 GMT) UK time is BST
    files = [RETAIL / "2010-12-01.csv.gz", RETAIL / "2011-03-27.csv.gz"]
    bronze = to_bronze_receipts(
        receipts_of(spark, load_mapping("online_retail"), brace_glob(files)), ingested_at=INGESTED_AT
    )
    with gzip.open(files[1], "rt", newline="") as handle:
        later = next(csv.DictReader(handle))
    local = dt.datetime.fromisoformat(later["InvoiceDate"])
    got = {
        r["receipt_id"]: r["receipt_ts"]
        for r in bronze.where(F.col("receipt_id").isin("536365", later["InvoiceNo"])).collect()
    }
    assert got == {"536365": dt.datetime(2010, 12, 1, 8, 26), later["InvoiceNo"]: local - dt.timedelta(hours=1)}


@pytest.mark.shared_data
def test_complete_journey_slice_matches_an_independent_rollup(spark: SparkSession, tmp_path: Path) -> None:
    with gzip.open(JOURNEY / "transactions_sample.csv.gz", "rt", newline="") as handle:
        head = [next(handle) for _ in range(2001)]
    source = write_text(tmp_path / "slice.csv.gz", "".join(head))
    with gzip.open(JOURNEY / "products.csv.gz", "rt", newline="") as handle:
        department = {r["product_id"]: r["department"] or None for r in csv.DictReader(handle)}

    def new_basket() -> dict[str, Any]:
        return {"amount": Decimal(0), "disc": Decimal(0), "coupon": False, "by_dept": {}}

    baskets: dict[str, dict[str, Any]] = defaultdict(new_basket)
    for row in csv.DictReader(head):
        basket = baskets[row["basket_id"]]
        basket["amount"] += Decimal(row["sales_value"])
        basket["disc"] += abs(Decimal(row["retail_disc"]))
        basket["coupon"] |= Decimal(row["coupon_disc"]) != 0
        dept = department.get(row["product_id"])
        basket["by_dept"][dept] = basket["by_dept"].get(dept, 0) + Decimal(row["sales_value"])

    def top(by_dept: dict[str | None, Decimal]) -> str | None:
        return min(by_dept, key=lambda d: (d is None, -abs(by_dept[d]), d or ""))

    mapping = load_mapping("complete_journey")
    bronze = to_bronze_receipts(receipts_of(spark, mapping, source), ingested_at=INGESTED_AT)
    got = {
        r["receipt_id"]: (r["amount"], r["discount_amount"], r["coupon_used"], r["category"]) for r in bronze.collect()
    }
    cents = Decimal("0.01")
    assert got == {
        k: (v["amount"].quantize(cents), v["disc"].quantize(cents), v["coupon"], top(v["by_dept"]))
        for k, v in baskets.items()
    }


@pytest.mark.shared_data
def test_complete_journey_demographics_become_customers(spark: SparkSession) -> None:
    spec = load_mapping("complete_journey").customers
    assert spec is not None
    raw = ingest_job.read_source(spark, spec.source, str(JOURNEY / "demographics.csv.gz"), where="test")
    customers = to_bronze_customers(
        with_raw_text(raw, text_format="csv"),
        ingest_job.customer_source(spec),
        mapping_name="cj",
        ingested_at=INGESTED_AT,
    )
    assert customers.columns == catalog.table("bronze/customers").column_names
    first = customers.where("customer_id = '1'").first()
    assert first["age_band"] == "65+"
    assert first["attributes"] == {
        "income": "35-49K",
        "home_ownership": "Homeowner",
        "marital_status": "Married",
        "household_size": "2",
        "household_comp": "2 Adults No Kids",
        "kids_count": "0",
    }
    assert customers.count() == 801 == customers.select("row_key").distinct().count()


@pytest.mark.slow
@pytest.mark.shared_data
def test_whole_online_retail_set_gives_the_known_figures(spark: SparkSession, lake: Path) -> None:
    source = str(RETAIL / "*.csv.gz")
    assert run_ingest(spark, lake, "--mapping", "online_retail", "--source", source) == 0
    config = load_config(None, [f"lake.root={lake}"])
    runs = spark.read.format("delta").load(tables.table_path(config, "ops/runs")).where("status <> 'started'")
    details = json.loads(runs.first()["details"])
    assert details["lines_read"] == 541_909
    assert details["lines_excluded"] == 90  # AMAZONFEE, BANK CHARGES, CRUK, B
    assert details["lines_rolled_up"] == 541_909 - 90
    assert details["receipts_written"] + details["receipts_only_excluded"] == 25_900
    assert details["receipts_only_excluded"] == 89
    assert details["customers"] == 4_372
    assert details["lines_malformed"] == 0 and details["receipts_with_errors"] == 0
    bronze = spark.read.format("delta").load(tables.table_path(config, "bronze/receipts"))
    duckdb = pytest.importorskip("duckdb")
    invoices = duckdb.sql(
        f"""SELECT count(*) FILTER (WHERE customer IS NULL), count(*) FROM (
              SELECT InvoiceNo, max(CustomerID) AS customer
              FROM read_csv('{source}', all_varchar = true, header = true)
              WHERE StockCode NOT IN ('AMAZONFEE', 'BANK CHARGES', 'CRUK', 'B')
              GROUP BY InvoiceNo)"""
    ).fetchall()[0]
    no_customer = bronze.where("customer_id IS NULL").count()
    assert (no_customer, bronze.count()) == invoices == (3_648, 25_811)
