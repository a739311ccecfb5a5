"""Table I/O: comments on every column, atomic as-of partitions, readable by delta-rs."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable as RustDeltaTable
from pyspark.sql import SparkSession

from seglake import catalog, tables
from seglake.catalog import Col, Table
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
    assert comments == catalog.table(THRESHOLDS_LIKE).comments
    protocol = table.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)


def test_a_column_not_in_the_catalog_is_refused(spark: SparkSession, config) -> None:
    frame = spark.createDataFrame(
        [("k", "d", "o", 1)], "row_key string, defect string, expected_outcome string, extra int"
    )
    with pytest.raises(tables.SchemaMismatchError, match="extra is not a column of the table"):
        tables.write_table(frame, config, THRESHOLDS_LIKE, mode="overwrite")


def test_a_missing_column_is_refused(spark: SparkSession, config) -> None:
    frame = spark.createDataFrame([("k", "d")], "row_key string, defect string")
    with pytest.raises(tables.SchemaMismatchError, match="column expected_outcome is missing"):
        tables.write_table(frame, config, THRESHOLDS_LIKE, mode="overwrite")


def test_a_column_of_another_type_is_refused_before_anything_is_written(spark: SparkSession, config) -> None:
    frame = spark.createDataFrame([("k", "d", 1)], "row_key string, defect string, expected_outcome int")
    with pytest.raises(tables.SchemaMismatchError, match="expected_outcome is int, the catalog says string"):
        tables.write_table(frame, config, THRESHOLDS_LIKE, mode="overwrite")
    assert not tables.table_exists(spark, tables.table_path(config, THRESHOLDS_LIKE))


def test_columns_are_written_in_the_catalog_order(spark: SparkSession, config) -> None:
    frame = spark.createDataFrame([("o", "d", "k")], "expected_outcome string, defect string, row_key string")
    path = tables.write_table(frame, config, THRESHOLDS_LIKE, mode="overwrite")
    assert spark.read.format("delta").load(path).columns == ["row_key", "defect", "expected_outcome"]


AS_OF_SCORES = Table(
    name="gold/test_as_of",
    grain="customer x as-of date",
    written_by=("test",),
    write_mode="replace_partitions",
    partition_by=("as_of_date",),
    columns=(Col("as_of_date", "date", "partition"), Col("customer_id", "string", "id"), Col("score", "int", "score")),
)
AS_OF_GUARD = replace(AS_OF_SCORES, name="gold/test_as_of_guard", columns=AS_OF_SCORES.columns[:2])


def test_replace_as_of_rewrites_one_partition_and_keeps_the_others(spark: SparkSession, config) -> None:
    schema = "as_of_date date, customer_id string, score int"
    jan, feb = dt.date(2024, 1, 31), dt.date(2024, 2, 29)
    tables.replace_as_of(spark.createDataFrame([(jan, "a", 1), (jan, "b", 2)], schema), config, AS_OF_SCORES, jan)
    tables.replace_as_of(spark.createDataFrame([(feb, "a", 3)], schema), config, AS_OF_SCORES, feb)
    # rerun January with different rows: January replaced, February untouched, no duplicates
    tables.replace_as_of(spark.createDataFrame([(jan, "c", 9)], schema), config, AS_OF_SCORES, jan)
    tables.replace_as_of(spark.createDataFrame([(jan, "c", 9)], schema), config, AS_OF_SCORES, jan)

    result = spark.read.format("delta").load(tables.table_path(config, AS_OF_SCORES.name))
    expected = spark.createDataFrame([(jan, "c", 9), (feb, "a", 3)], schema)
    assert_df_equality(
        result.select("as_of_date", "customer_id", "score"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_metadata=True,
    )


def test_replace_as_of_refuses_rows_of_another_date(spark: SparkSession, config) -> None:
    schema = "as_of_date date, customer_id string"
    jan = dt.date(2024, 1, 31)
    tables.replace_as_of(spark.createDataFrame([(jan, "a")], schema), config, AS_OF_GUARD, jan)
    wrong = spark.createDataFrame([(dt.date(2024, 2, 1), "b")], schema)
    with pytest.raises(Exception, match=r"(?i)replaceWhere|DELTA_REPLACE_WHERE_MISMATCH|condition"):
        tables.replace_as_of(wrong, config, AS_OF_GUARD, jan)
    kept = spark.read.format("delta").load(tables.table_path(config, AS_OF_GUARD.name))
    assert [tuple(r) for r in kept.collect()] == [(jan, "a")]


def test_lake_root_resolves_relative_paths_and_keeps_uris(tmp_path: Path) -> None:
    assert tables.lake_root(load_config(None, [f"lake.root={tmp_path}/x/../lake"])) == f"{tmp_path}/lake"
    assert tables.lake_root(load_config(None, ["lake.root=s3a://bucket/lake/"])) == "s3a://bucket/lake"


def test_replace_as_of_refuses_a_table_not_partitioned_by_date(spark: SparkSession, config) -> None:
    frame = spark.createDataFrame([("k", "d", "o")], "row_key string, defect string, expected_outcome string")
    with pytest.raises(tables.SchemaMismatchError, match="not partitioned by as_of_date"):
        tables.replace_as_of(frame, config, THRESHOLDS_LIKE, dt.date(2024, 1, 31))


def test_an_existing_table_gets_the_catalog_properties_on_its_next_write(spark: SparkSession, config) -> None:
    frame = spark.createDataFrame([("k", "d", "o")], "row_key string, defect string, expected_outcome string")
    plain = catalog.table(THRESHOLDS_LIKE)
    path = tables.write_table(frame, config, plain, mode="overwrite")  # made without statistics settings

    def properties() -> dict[str, str]:
        return dict(spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["properties"])

    assert "delta.dataSkippingStatsColumns" not in properties()
    with_stats = replace(plain, properties={"delta.dataSkippingStatsColumns": "row_key"})
    tables.write_table(frame, config, with_stats, mode="overwrite")
    assert properties()["delta.dataSkippingStatsColumns"] == "row_key"
    versions = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count()
    tables.write_table(frame, config, with_stats, mode="overwrite")  # already set: no extra commit
    assert spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count() == versions + 1
    # only customer_id gets statistics in the rollup and the profile
    assert catalog.table("silver/customer_month").properties == {"delta.dataSkippingStatsColumns": "customer_id"}
    assert catalog.table("gold/customer_profile").properties == {"delta.dataSkippingStatsColumns": "customer_id"}
