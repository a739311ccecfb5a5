"""Lake table paths and Delta reads/writes, by the records of :mod:`seglake.catalog`.

Every write is checked against the table's catalog schema (same columns, same types)
and carries the catalog's comment on each column (Delta schema metadata ``comment``),
which delta-rs, DuckDB, Trino and BI tools show. Partition columns and table
properties come from the catalog too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from seglake.catalog import Table, table
from seglake.config import SeglakeConfig
from seglake.errors import UserError


class SchemaMismatchError(ValueError):
    """A frame written to a table does not have the table's catalog schema: a bug in a job."""


def lake_root(config: SeglakeConfig) -> str:
    """Absolute lake root; URIs (s3a://, abfss://, file:/) pass through."""
    root = config.lake.root
    if "://" in root or root.startswith("file:"):
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


def table_path(config: SeglakeConfig, table: str) -> str:
    """Path of ``table`` (e.g. ``silver/receipts``) under the lake root."""
    return f"{lake_root(config)}/{table}"


def conformed(frame: DataFrame, target: Table) -> DataFrame:
    """``frame`` in the table's column order with its comments; any other column set or type is refused."""
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    extra = [name for name in types if name not in target.comments]
    if extra:
        raise SchemaMismatchError(f"{target.name}: {extra[0]} is not a column of the table (seglake/catalog.py)")
    missing = [c.name for c in target.columns if c.name not in types]
    if missing:
        raise SchemaMismatchError(f"{target.name}: column {missing[0]} is missing from the rows written")
    for column in target.columns:
        if types[column.name] != column.data_type.simpleString():
            raise SchemaMismatchError(
                f"{target.name}: column {column.name} is {types[column.name]}, the catalog says {column.type}"
            )
    columns: list[Column] = [F.col(c.name).alias(c.name, metadata={"comment": c.comment}) for c in target.columns]
    return frame.select(*columns)


def first_row(frame: DataFrame) -> Row:
    """The first row of a frame that always has one (a global aggregate, a table's history)."""
    row = frame.first()
    if row is None:
        raise RuntimeError("expected a row, got none")  # an aggregate without grouping always has one
    return row


def table_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def table_version(spark: SparkSession, path: str) -> int:
    """Latest committed version of the Delta table at ``path``."""
    return int(first_row(DeltaTable.forPath(spark, path).history(1).select("version"))[0])


def table_size_bytes(spark: SparkSession, path: str) -> int:
    """Bytes of the data files of the Delta table's latest version (from its log: no file is read)."""
    return int(first_row(DeltaTable.forPath(spark, path).detail().select("sizeInBytes"))[0] or 0)


def ensure_properties(spark: SparkSession, path: str, properties: Mapping[str, str]) -> None:
    """Give an existing table the catalog's Delta properties (one metadata commit, only when
    one differs). Writer options set them on a new table only: an overwrite of an existing one
    keeps the old properties, e.g. statistics on every column of a lake made by an earlier version."""
    if not properties or not table_exists(spark, path):
        return
    current = first_row(spark.sql(f"DESCRIBE DETAIL delta.`{path}`").select("properties"))[0] or {}
    stale = {key: value for key, value in properties.items() if current.get(key) != value}
    if stale:
        settings = ", ".join(f"'{key}' = '{value}'" for key, value in sorted(stale.items()))
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({settings})")


def write_table(
    frame: DataFrame,
    config: SeglakeConfig,
    target: str | Table,
    *,
    mode: str = "append",
    replace_where: str | None = None,
    commit_note: str | None = None,
    set_properties: bool = True,
) -> str:
    """Write ``frame`` to ``target`` (a catalog name or record) as one Delta commit.

    ``mode`` is ``append`` or ``overwrite``; ``replace_where`` atomically replaces just
    the rows matching the predicate (one partition, typically), so reruns are
    idempotent and the rest of history stays. ``commit_note`` is stored with the commit
    (Delta ``userMetadata``, shown by ``DESCRIBE HISTORY``). An existing table first gets
    the catalog's properties (:func:`ensure_properties`) unless ``set_properties`` is false.
    """
    record = table(target) if isinstance(target, str) else target
    path = table_path(config, record.name)
    if set_properties:
        ensure_properties(frame.sparkSession, path, record.properties)
    writer = conformed(frame, record).write.format("delta").mode(mode)
    if commit_note is not None:
        writer = writer.option("userMetadata", commit_note)
    if record.partition_by:
        writer = writer.partitionBy(*record.partition_by)
    if replace_where is not None:
        writer = writer.option("replaceWhere", replace_where)
    for key, value in record.properties.items():
        writer = writer.option(key, value)
    if mode == "overwrite" and replace_where is None:
        writer = writer.option("overwriteSchema", "true")
    else:  # a lake written by an earlier version gains the catalog's new columns (null in its old rows)
        writer = writer.option("mergeSchema", "true")
    writer.save(path)
    return path


def replace_as_of(frame: DataFrame, config: SeglakeConfig, target: str | Table, as_of: dt.date) -> str:
    """Replace the ``as_of_date`` partition of ``target`` with ``frame`` in one commit."""
    record = table(target) if isinstance(target, str) else target
    if not record.is_as_of_partitioned:
        raise SchemaMismatchError(f"{record.name}: not partitioned by as_of_date")
    return write_table(frame, config, record, mode="overwrite", replace_where=f"as_of_date = DATE'{as_of.isoformat()}'")


def require_table(spark: SparkSession, config: SeglakeConfig, table: str, *, hint: str = "") -> str:
    """Path of ``table``; a missing table is a user error naming the path and what to run."""
    path = table_path(config, table)
    if not table_exists(spark, path):
        what = f" ({hint})" if hint else ""
        raise UserError(f"table {table} not found at {path}{what}")
    return path


def last_commit(spark: SparkSession, path: str) -> tuple[int, int]:
    """Version of the latest commit and the rows it wrote (Delta operation metrics; no recount),
    from one read of the table's history."""
    row = first_row(DeltaTable.forPath(spark, path).history(1).select("version", "operationMetrics"))
    return int(row["version"]), int((row["operationMetrics"] or {}).get("numOutputRows", 0))


def last_commit_rows(spark: SparkSession, path: str) -> int:
    """Rows written by the latest commit (Delta operation metrics; no recount)."""
    return last_commit(spark, path)[1]
