"""``report``: the gold tables of one as-of date -> ``<report.root>/segmentation_<as_of>.html``.

    seglake report                        # the latest as_of_date in gold/customer_profile
    seglake report --as-of 2024-12-31 --set report.root=s3a://bucket/reports

``report.root`` defaults to ``<lake.root>/reports``: the report lives with the lake, not on
the disk of a driver that a cluster throws away. A plain path is written with Python, any
URI (``s3a://``, ``abfss://``, ``hdfs://``, ``file:``) through Hadoop's file system with the
session's Hadoop settings (the same credentials the lake is read with).

One self-contained HTML page (charts embedded as PNG) for people who do not read
tables: headline numbers, segments and campaigns, R x F, cohort retention, value
tiers, clusters, migration since the previous as-of, data quality. Only small
aggregates are collected from Spark. A section whose table (or as-of partition) is
missing says which job to run instead of failing; only gold/customer_profile is
required.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: spark-submit jobs/report.py
    import _bootstrap  # noqa: F401

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seglake import tables
from seglake.config import SeglakeConfig
from seglake.errors import UserError
from seglake.job import Job, StageResult, job_log, run_job
from seglake.lake import Lake
from seglake.report import ReportData, Rows, render_report
from seglake.runlog import code_version
from transforms.offers import to_offer_coverage
from transforms.report import (
    filter_recent_cohorts,
    to_headline,
    to_latest_checks,
    to_offer_summary,
    to_rf_grid,
    to_segment_sizes,
    to_value_tier_grid,
)

log = job_log("report")


def report_path(config: SeglakeConfig, as_of: dt.date) -> str:
    """Where the report of ``as_of`` goes: ``<report.root>/segmentation_<as_of>.html``, by
    default under the lake (``<lake.root>/reports``); a plain path is made absolute."""
    root = config.report.root or f"{tables.lake_root(config)}/reports"
    if not is_uri(root):
        root = str(Path(root).expanduser().resolve())
    return f"{root.rstrip('/')}/segmentation_{as_of.isoformat()}.html"


def is_uri(location: str) -> bool:
    """``s3a://…``, ``file:/…``: a location for Hadoop's file systems, not a local path."""
    return "://" in location or location.startswith("file:")


def _rows(frame: DataFrame) -> Rows:
    return [row.asDict() for row in frame.collect()]


def _of_date(lake: Lake, table: str, as_of: dt.date) -> DataFrame | None:
    """The ``as_of`` partition of an optional table; None when the table does not exist."""
    if not lake.exists(table):
        return None
    return lake.read(table).where(F.col("as_of_date") == F.lit(as_of))


def collect_report_data(lake: Lake, as_of: dt.date) -> ReportData:
    """Aggregate every section in Spark and collect the (small) results."""
    config = lake.config
    profile = lake.read("gold/customer_profile", hint="run `seglake features` first")
    profile = profile.where(F.col("as_of_date") == F.lit(as_of))
    headline = to_headline(profile).first()
    if headline is None or not headline["customers"]:
        raise UserError(f"gold/customer_profile has no rows for {as_of}; run `seglake features --as-of {as_of}`")
    tiers = config.features.value_tiers
    data = ReportData(
        as_of=as_of,
        currency=config.currency.base,
        window_days=config.features.window_days,
        lake_root=tables.lake_root(config),
        headline=headline.asDict(),
        value_tiers=_rows(to_value_tier_grid(profile)),
        longevity_days=tiers.longevity_days,
        recency_days=tiers.recency_days,
        tiles=config.rfm.tiles,
    )

    segments = _of_date(lake, "gold/rfm_segments", as_of)
    if segments is not None:
        data.segments = _rows(to_segment_sizes(segments)) or None
        data.rf_grid = _rows(to_rf_grid(segments)) or None
        seen = segments.agg(
            F.array_sort(F.collect_set("segment_map")).alias("maps"),
            F.max(F.greatest("r_score", "f_score", "m_score")).alias("tiles"),
        ).first()
        if seen is not None:
            data.segment_map = ", ".join(seen["maps"]) or None
            data.tiles = max(int(seen["tiles"] or 0), config.rfm.tiles)

    data.clv_horizon_days = config.value.horizon_days
    offers = _of_date(lake, "gold/next_best_offer", as_of)
    if offers is not None:
        data.offers = _rows(to_offer_summary(offers)) or None
        coverage = to_offer_coverage(offers, top_n=config.offers.top_n).first()
        data.offers_coverage = {**(coverage.asDict() if coverage else {}), "top_n": config.offers.top_n}

    summary = _of_date(lake, "gold/campaign_summary", as_of)
    if summary is not None:
        data.campaign_summary = _rows(summary) or None

    retention = _of_date(lake, "gold/cohort_retention", as_of)
    if retention is not None:
        retained = retention.where(F.col("period_offset") >= 0)  # offset -1: activity before the cohort
        recent = filter_recent_cohorts(retained, config.report.recent_cohorts).select(
            "period_unit",
            "cohort",
            "cohort_start_date",
            "period_offset",
            "cohort_size",
            "retention_rate",
            "is_partial_period",
        )
        data.retention = _rows(recent) or None
        if data.retention:
            data.period_unit = str(data.retention[0]["period_unit"])

    clusters = _of_date(lake, "gold/cluster_profiles", as_of)
    if clusters is not None:
        data.clusters = _rows(clusters.drop("feature_means")) or None

    migration = _of_date(lake, "gold/segment_migration", as_of)
    if migration is not None:
        data.migration = _rows(migration) or None
        if data.migration:
            data.previous_as_of = data.migration[0]["previous_as_of_date"]
        elif lake.exists("gold/rfm_segments"):
            data.notes["migration"] = (
                f"No migration rows for {as_of}: there is no earlier segmented as-of to compare with "
                f"(or `seglake segment --as-of {as_of}` has not run)."
            )

    if lake.exists("ops/data_quality"):
        checks = to_latest_checks(lake.read("ops/data_quality"))
        data.quality = _rows(checks.drop("run_id", "job", "table_name")) or None
        if data.quality:
            data.quality_checked_at = max(r["checked_at"] for r in data.quality)
    return data


def write_report(spark: SparkSession, text: str, location: str) -> None:
    """Write ``text`` to ``location`` via a temporary file renamed into place: a reader never
    sees half a report (on object stores, where rename is a copy, the temporary name is hidden)."""
    if not is_uri(location):
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
        return
    # Hadoop's FileSystem through the JVM gateway: PySpark has no public API to write one file,
    # and this is the way to honour the cluster's file system settings and credentials.
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    target = jvm.org.apache.hadoop.fs.Path(location)
    fs = target.getFileSystem(hadoop_conf)
    partial = jvm.org.apache.hadoop.fs.Path(target.getParent(), f".{target.getName()}.{os.getpid()}.tmp")
    stream = fs.create(partial, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    if fs.exists(target):
        fs.delete(target, False)
    if not fs.rename(partial, target):
        raise UserError(f"report: could not move {partial} to {location}")


def run(lake: Lake, *, as_of: dt.date) -> StageResult:
    """Write ``<report.root>/segmentation_<as_of>.html`` from the gold tables of ``as_of``."""
    data = collect_report_data(lake, as_of)
    path = report_path(lake.config, data.as_of)
    write_report(lake.spark, render_report(data, version=code_version()), path)
    sections = ("segments", "retention", "clusters", "migration", "quality")
    missing = [name for name in sections if getattr(data, name) is None]
    log.info(f"report for {data.as_of}: {path}" + (f" (not computed: {', '.join(missing)})" if missing else ""))
    return StageResult(
        rows_in=int(data.headline["customers"]) if data.headline else None,
        details={"report": str(path), "sections_not_computed": missing},
    )


JOB = Job(
    name="report",
    summary="Write <report.root>/segmentation_<as_of>.html (default root: <lake.root>/reports) from the gold tables "
    "(default: the latest as-of in the profile).",
    run=run,
    as_of_from="profile",
)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    sys.exit(main())
