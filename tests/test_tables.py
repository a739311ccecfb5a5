"""Table I/O: comments on every column, atomic as-of partitions, readable by delta-rs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable as RustDeltaTable
from pyspark.sql import SparkSession

from seglake import tables
from seglake.config import load_config

THRESHOLDS_LIKE = "bronze/_generator_truth"


@pytest.fixture
def config(lake: Path):
    return load_config(None, [f"lake.root={lake}"])


def test_written_table_reopens_in_delta_rs_with_rows_and_comments(spark: SparkSession, config) -> None:
    rows = [
        ("gen-1-0", "zero_amount", "zero_amount"),
        ("gen-2-3~dup", "duplicate_row", "duplicate_row"),
        ("gen-3-1", None, None),
    ]
    frame = spark.createDataFrame(rows, "row_key string, defect string, expected_outcome string")
    path = tables.write_table(frame, config, THRESHOLDS_LIKE, mode="overwrite")

    table = RustDeltaTable(path)
    read_back = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["row_key"])
    assert read_back == [
        {"row_key": "gen-1-0", "defect": "zero_amount", "expected_outcome": "zero_amount"},
        {"row_key": "gen-2-3~dup", "defect": "duplicate_row", "expected_outcome": "duplicate_row"},
        {"row_key": "gen-3-1", "defect": None, "expected_outcome": None},
    ]
    comments = {f.name: f.metadata.get("comment") for f in table.schema().fields}
    assert comments == tables.COMMENTS[THRESHOLDS_LIKE]
    protocol = table.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)


def test_a_column_without_comment_is_refused(spark: SparkSession, config) -> None:
    frame = spark.createDataFrame(
        [("k", "d", "o", 1)], "row_key string, defect string, expected_outcome string, extra int"
    )
    with pytest.raises(ValueError, match="no column comment registered for extra"):
        tables.write_table(frame, config, THRESHOLDS_LIKE, mode="overwrite")


def test_replace_as_of_rewrites_one_partition_and_keeps_the_others(spark: SparkSession, config) -> None:
    tables.COMMENTS["test/as_of"] = {
        "as_of_date": "partition",
        "customer_id": "id",
        "score": "score",
    }
    schema = "as_of_date date, customer_id string, score int"
    jan, feb = dt.date(2024, 1, 31), dt.date(2024, 2, 29)
    tables.replace_as_of(spark.createDataFrame([(jan, "a", 1), (jan, "b", 2)], schema), config, "test/as_of", jan)
    tables.replace_as_of(spark.createDataFrame([(feb, "a", 3)], schema), config, "test/as_of", feb)
    # rerun January with different rows: January replaced, February untouched, no duplicates
    tables.replace_as_of(spark.createDataFrame([(jan, "c", 9)], schema), config, "test/as_of", jan)
    tables.replace_as_of(spark.createDataFrame([(jan, "c", 9)], schema), config, "test/as_of", jan)

    result = spark.read.format("delta").load(tables.table_path(config, "test/as_of"))
    expected = spark.createDataFrame([(jan, "c", 9), (feb, "a", 3)], schema)
    assert_df_equality(
        result.select("as_of_date", "customer_id", "score"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_metadata=True,
    )


def test_replace_as_of_refuses_rows_of_another_date(spark: SparkSession, config) -> None:
    tables.COMMENTS["test/as_of_guard"] = {"as_of_date": "partition", "customer_id": "id"}
    schema = "as_of_date date, customer_id string"
    jan = dt.date(2024, 1, 31)
    tables.replace_as_of(spark.createDataFrame([(jan, "a")], schema), config, "test/as_of_guard", jan)
    wrong = spark.createDataFrame([(dt.date(2024, 2, 1), "b")], schema)
    with pytest.raises(Exception, match=r"(?i)replaceWhere|DELTA_REPLACE_WHERE_MISMATCH|condition"):
        tables.replace_as_of(wrong, config, "test/as_of_guard", jan)
    kept = spark.read.format("delta").load(tables.table_path(config, "test/as_of_guard"))
    assert [tuple(r) for r in kept.collect()] == [(jan, "a")]


def test_lake_root_resolves_relative_paths_and_keeps_uris(tmp_path: Path) -> None:
    assert tables.lake_root(load_config(None, [f"lake.root={tmp_path}/x/../lake"])) == f"{tmp_path}/lake"
    assert tables.lake_root(load_config(None, ["lake.root=s3a://bucket/lake/"])) == "s3a://bucket/lake"
