"""The catalog: one typed record per lake table, read by writers, the restore and the docs."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from seglake import catalog
from seglake.catalog import Col, Table, parse_type


@pytest.mark.parametrize(
    "text",
    [
        "string",
        "bigint",
        "decimal(18,2)",
        "array<date>",
        "map<string,decimal(18,2)>",
        "array<struct<value:string,rows:bigint>>",
        "map<string,array<int>>",
    ],
)
def test_catalog_types_parse_to_the_type_spark_itself_parses(spark: SparkSession, text: str) -> None:
    from_spark = spark.createDataFrame([], f"x {text}").schema["x"].dataType
    assert parse_type(text) == from_spark
    assert parse_type(text).simpleString() == text


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown type 'varchar2'"):
        parse_type("varchar2")


def test_every_column_of_every_table_has_a_comment_and_a_type() -> None:
    for table in catalog.TABLES:
        for column in table.columns:
            assert column.comment.strip(), f"{table.name}.{column.name}"
            assert isinstance(column.data_type, T.DataType)


def test_gold_tables_are_partitioned_by_as_of_date_and_replace_their_partition() -> None:
    gold = [t for t in catalog.TABLES if t.layer == "gold"]
    assert len(gold) == 13
    for table in gold:
        assert table.is_as_of_partitioned and table.write_mode == "replace_partitions", table.name


def test_a_failed_stage_restores_only_its_own_non_ops_tables() -> None:
    assert {t.name for t in catalog.restorable_tables_of("segment")} == {
        "gold/rfm_segments",
        "gold/rfm_thresholds",
        "gold/rule_segments",
        "gold/campaign_audiences",
        "gold/segment_migration",
        "gold/next_best_offer",
        "gold/campaign_summary",
    }
    assert {t.name for t in catalog.restorable_tables_of("cleanse")} == {
        "silver/receipts",
        "silver/receipts_quarantine",
    }
    assert {t.name for t in catalog.restorable_tables_of("report")} == set()


def test_ops_runs_is_written_by_every_job_and_never_restored() -> None:
    runs = catalog.table("ops/runs")
    assert runs.is_written_by("features") and runs.is_written_by("report")
    assert not runs.is_restorable


def test_the_schema_carries_the_comments() -> None:
    schema = catalog.table("gold/clusters").schema
    assert schema["distance"].metadata["comment"].startswith("Euclidean distance")
    assert schema["cluster_id"].dataType == T.IntegerType()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "platinum/x"}, "first path part must be a layer"),
        ({"partition_by": ("month",)}, "partition column month is not a column"),
        ({"columns": (Col("a", "int", "a"), Col("a", "int", "again"))}, "a column is listed twice"),
        ({"write_mode": "replace_partitions", "partition_by": ()}, "replace_partitions needs partition columns"),
    ],
)
def test_a_malformed_record_is_refused(kwargs: dict, message: str) -> None:
    base = {
        "name": "gold/x",
        "grain": "g",
        "written_by": ("test",),
        "write_mode": "append",
        "columns": (Col("a", "int", "a"),),
    }
    with pytest.raises(ValueError, match=message):
        Table(**(base | kwargs))


def test_an_unknown_table_name_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="gold/nope: not a table of the catalog"):
        catalog.table("gold/nope")
