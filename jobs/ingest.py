"""``ingest``: a receipt source (CSV, Parquet, JSON lines, Delta) into bronze, by a mapping.

seglake ingest --mapping online_retail --source '../shared/data/online_retail/by_day/*.csv.gz'
seglake ingest --mapping complete_journey --customers-source demographics.csv.gz
spark-submit jobs/ingest.py --mapping conf/mappings/my_pos.yaml --mode overwrite

Every source column is read as text; malformed rows and values that do not parse are
kept (``raw_record``, ``parse_errors``) for cleansing to quarantine. Row keys already in
bronze are skipped, so ingesting the same files again adds nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

if __package__ in (None, ""):  # run as a file: spark-submit jobs/ingest.py
    import _bootstrap  # noqa: F401

from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seglake import tables
from seglake.job import Job, StageResult, job_log, run_job
from seglake.lake import Lake
from seglake.mapping import ColumnSpec, CustomersSpec, Mapping, MappingError, SourceSpec, check_columns, load_mapping
from seglake.runlog import utc_now
from transforms.ingest import (
    CORRUPT_COLUMN,
    SOURCE_FILE,
    CustomerSource,
    ReceiptSource,
    SourceColumns,
    SourceTime,
    filter_new,
    ingest_summary,
    row_key_prefix,
    to_bronze_customers,
    to_bronze_receipts,
    to_parsed_lines,
    to_receipts,
    with_key_prefixes,
    with_lookup,
    with_raw_text,
)

RECEIPTS, CUSTOMERS = "bronze/receipts", "bronze/customers"
log = job_log("ingest")


def source_columns(columns: dict[str, ColumnSpec], constants: dict[str, str | int | float | bool]) -> SourceColumns:
    """A mapping's ``columns`` and ``constants`` as the transforms take them."""
    return SourceColumns(
        values={name: spec.as_column() for name, spec in columns.items()},
        constants=dict(constants),
        used=frozenset(spec.column for spec in columns.values() if spec.column is not None),
    )


def receipt_source(mapping: Mapping) -> ReceiptSource:
    """What the receipt transforms need of ``mapping`` (may raise Spark's ParseException on an expression)."""
    return ReceiptSource(
        name=mapping.name,
        columns=source_columns(mapping.columns, mapping.constants),
        time=SourceTime(
            format=mapping.timestamp.format, time_zone=mapping.timestamp.time_zone, has_zone=mapping.timestamp.has_zone
        ),
        line_grain=mapping.line_grain,
        exclude_lines=mapping.exclude_lines,
    )


def customer_source(spec: CustomersSpec) -> CustomerSource:
    return CustomerSource(
        columns=source_columns(spec.columns, spec.constants),
        attributes=tuple(spec.attributes) if spec.attributes is not None else None,
        date_format=spec.date_format,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mapping",
        required=True,
        metavar="NAME_OR_PATH",
        help="mapping name (conf/mappings/NAME.yaml) or path to a mapping YAML",
    )
    parser.add_argument("--source", metavar="PATH_OR_GLOB", help="source files or table (overrides source.path)")
    parser.add_argument(
        "--customers-source", metavar="PATH", help="customer dimension source (overrides customers.source.path)"
    )
    parser.add_argument(
        "--mode",
        choices=("append", "overwrite"),
        default="append",
        help="append new rows (default) or replace the bronze tables with this source",
    )


def read_source(spark: SparkSession, spec: SourceSpec, path: str, *, where: str) -> DataFrame:
    """Source columns as text (CSV, JSON) or as stored (Parquet, Delta), plus
    ``_corrupt_record`` (rows the reader could not split) and ``_source_file``."""
    try:
        if spec.format == "csv":
            options = {"header": "true", **spec.options, "inferSchema": "false"}
            names = spark.read.options(**options).csv(path).columns
            schema = ", ".join(f"`{n}` string" for n in [*names, CORRUPT_COLUMN])
            frame = (
                spark.read.options(**options)
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
                .schema(schema)
                .csv(path)
            )
        elif spec.format == "json":
            frame = (
                spark.read.options(**spec.options)
                .option("primitivesAsString", "true")
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
                .json(path)
            )
        else:
            frame = spark.read.options(**spec.options).format(spec.format).load(path)
    except AnalysisException as exc:
        reason = str(exc).strip().splitlines()[0]
        raise MappingError(f"{where}: cannot read {spec.format} at {path}: {reason}") from None
    if CORRUPT_COLUMN not in frame.columns:
        frame = frame.withColumn(CORRUPT_COLUMN, F.lit(None).cast("string"))
    source_file = F.lit(path) if spec.format == "delta" else F.col("_metadata.file_path")
    return frame.withColumn(SOURCE_FILE, source_file)


def _source_path(mapping: Mapping, key: str, spec: SourceSpec, override: str | None) -> str:
    path = override or spec.path
    if not path:
        raise MappingError(f"{mapping.file}: {key}.path: not set; give it or pass the option")
    return path


def read_lines(spark: SparkSession, mapping: Mapping, path: str) -> DataFrame:
    """Read the source and its lookups, check the mapping against them (analysis only)."""
    source = read_source(spark, mapping.source, path, where=f"{mapping.file}: source")
    lines = with_raw_text(source, text_format=mapping.source.format)
    for index, lookup in enumerate(mapping.lookups):
        key = f"lookups.{index}"
        table = read_source(spark, lookup.source, str(lookup.source.path), where=f"{mapping.file}: {key}")
        wanted = {"key": ColumnSpec(column=lookup.key)}
        wanted.update({f"columns.{c}": ColumnSpec(column=c) for c in lookup.columns})
        check_columns(table, wanted, file=mapping.file, section=key)
        check_columns(lines, {"key": wanted["key"]}, file=mapping.file, section=key)
        clash = [c for c in lookup.columns if c in lines.columns]
        if clash:
            raise MappingError(f"{mapping.file}: {key}.columns: {clash[0]!r} is already a source column")
        lines = with_lookup(lines, table, key=lookup.key, columns=lookup.columns)
    extra = {"exclude_lines": mapping.exclude_lines} if mapping.exclude_lines else {}
    check_columns(lines, mapping.columns, file=mapping.file, section="columns", extra=extra)
    return lines


# Above this many source files in one append, the key check reads every bronze file (one
# range per file in the filter is cheap; tens of thousands of them are not).
MAX_KEY_PREFIXES = 2000


def existing_keys(lake: Lake, rows: DataFrame, table: str) -> DataFrame:
    """The row keys of ``table`` that the ``rows`` about to be appended could repeat.

    A row key starts with its mapping and source file (``row_key_prefix``), so only the
    keys of the same files can match: the read asks for those prefixes only and Delta
    skips, by its per-file min/max of ``row_key``, the files that hold none of them. The
    cost of a new file's append then follows that file, not the history in bronze.
    """
    prefixes = [row[0] for row in rows.select(row_key_prefix().alias("p")).distinct().collect()]  # one per file
    keys = lake.read(table).select("row_key")
    if len(prefixes) > MAX_KEY_PREFIXES:
        log.info(f"{len(prefixes):,} source files: the check for rows already in {table} reads all of it")
        return keys
    return keys.where(with_key_prefixes(prefixes))


def write_new(lake: Lake, rows: DataFrame, table: str, mode: str) -> int:
    """Append the rows not yet in ``table`` (or replace it); rows written (an empty append may not commit)."""
    if mode == "append" and lake.exists(table):
        rows = filter_new(rows, existing_keys(lake, rows, table))
    return lake.write(rows, table, mode=mode)


def run(
    lake: Lake,
    *,
    mapping_name: str,
    source: str | None = None,
    customers_source: str | None = None,
    mode: str = "append",
) -> StageResult:
    """Ingest the source of mapping ``mapping_name`` (``source`` overrides its path) into bronze."""
    spark = lake.spark
    mapping = load_mapping(mapping_name)
    path = _source_path(mapping, "source", mapping.source, source)
    if customers_source and mapping.customers is None:
        raise MappingError(f"{mapping.file}: customers: not set, so --customers-source is unused")
    lines = read_lines(spark, mapping, path)
    customers = None
    if mapping.customers is not None and (customers_source or mapping.customers.source.path):
        spec = mapping.customers
        where = "customers.source"
        customers_path = _source_path(mapping, where, spec.source, customers_source)
        raw = read_source(spark, spec.source, customers_path, where=f"{mapping.file}: {where}")
        check_columns(raw, spec.columns, file=mapping.file, section="customers.columns")
        customers = with_raw_text(raw, text_format=spec.source.format)
    log.info(f"mapping {mapping.file} ({mapping.grain} grain), source {path}")

    ingested_at = utc_now().replace(microsecond=0)
    receipt_spec = receipt_source(mapping)
    receipts = to_receipts(to_parsed_lines(lines, receipt_spec), receipt_spec)
    receipts = receipts.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        summary = {k: int(v or 0) for k, v in tables.first_row(ingest_summary(receipts)).asDict().items()}
        written = write_new(lake, to_bronze_receipts(receipts, ingested_at=ingested_at), RECEIPTS, mode)
    finally:
        receipts.unpersist()
    summary["receipts_already_in_bronze"] = summary["receipts_built"] - written
    summary["receipts_written"] = written
    details: dict[str, Any] = {"mapping": mapping.name, "source": path, "grain": mapping.grain, "mode": mode}
    details.update(summary)
    for key, value in summary.items():
        log.info(f"{key.replace('_', ' ')}: {value:,}")
    if customers is not None and mapping.customers is not None:
        dimension = to_bronze_customers(
            customers, customer_source(mapping.customers), mapping_name=mapping.name, ingested_at=ingested_at
        )
        customers_written = write_new(lake, dimension, CUSTOMERS, mode)
        details["customers_written"] = customers_written
        log.info(f"customers written: {customers_written:,}")
    log.info(f"lake: {tables.lake_root(lake.config)}")
    return StageResult(rows_in=summary["lines_read"], rows_out=written, details=details)


JOB = Job(
    name="ingest",
    summary="Read a receipt source through a column mapping into bronze/receipts "
    "(and bronze/customers); rows already in bronze are skipped.",
    run=run,
    as_of_from="none",
    add_arguments=add_arguments,
    options=lambda args: {
        "mapping_name": args.mapping,
        "source": args.source,
        "customers_source": args.customers_source,
        "mode": args.mode,
    },
)


def main(argv: list[str] | None = None, *, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
