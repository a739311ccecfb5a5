"""The one SparkSession factory every job and test uses.

Delta comes from Maven Central through Spark's own resolver (``spark.jars.packages``).
``make setup`` resolves it once into a jar folder (``python -m seglake.session
--resolve``); later sessions load those jars with ``spark.jars`` and need no network.
Under ``spark-submit`` the command line owns the master and the jars: pass
``--packages`` (or ``--jars``) there.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from seglake import defaults
from seglake.config import DELTA_PACKAGE, SparkConfig
from seglake.errors import ConfigError

LOG4J_CONFIG = "log4j2.properties"  # in the shipped conf folder (seglake.defaults)

# Transitive jars of delta-spark that Spark already ships in a newer version; loading
# the older copies next to Spark's own invites class clashes.
_SPARK_PROVIDED = (
    "com.fasterxml.jackson.core:jackson-core",
    "com.fasterxml.jackson.core:jackson-databind",
    "com.fasterxml.jackson.core:jackson-annotations",
    "com.github.luben:zstd-jni",
    "com.google.code.findbugs:jsr305",
    "io.airlift:aircompressor",
    "org.apache.hadoop:hadoop-client-api",
    "org.apache.hadoop:hadoop-client-runtime",
    "org.apache.logging.log4j:log4j-api",
    "org.apache.logging.log4j:log4j-core",
    "org.apache.logging.log4j:log4j-slf4j2-impl",
    "org.apache.parquet:parquet-column",
    "org.apache.parquet:parquet-common",
    "org.apache.parquet:parquet-encoding",
    "org.apache.parquet:parquet-format-structures",
    "org.apache.parquet:parquet-hadoop",
    "org.apache.parquet:parquet-jackson",
    "org.locationtech.jts:jts-core",
    "org.roaringbitmap:RoaringBitmap",
    "org.slf4j:slf4j-api",
    "org.xerial.snappy:snappy-java",
)


def jars_dir(spark_config: SparkConfig) -> Path:
    """Folder for the resolved jars of ``spark_config.delta_package``."""
    base = spark_config.jars_dir or os.environ.get("SEGLAKE_JARS_DIR")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "seglake" / "jars"
    return root / spark_config.delta_package.replace(":", "_")


def _ivy_dir(target: Path) -> Path:
    return target.with_name(target.name + ".ivy")


def under_spark_submit() -> bool:
    """True when spark-submit (or pyspark shell) launched this Python process."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def check_delta_package(package: str, spark_version: str) -> None:
    """Delta publishes one jar per Spark line (``delta-spark_<spark major.minor>_<scala>``);
    a jar for another line fails later, deep inside Spark, with a class or method error."""
    built_for = re.match(r"io\.delta:delta-spark_(\d+\.\d+)_([\d.]+):", package)
    running = ".".join(spark_version.split(".")[:2])
    if built_for and built_for.group(1) != running:
        line, scala = built_for.groups()
        raise ConfigError(
            f"spark.delta_package {package} is built for Spark {line}, but this Spark is "
            f"{spark_version}: use io.delta:delta-spark_{running}_{scala}:<version> (default {DELTA_PACKAGE})"
        )


def _console_progress(setting: str) -> bool:
    if setting != "auto":
        return setting == "on"
    return sys.stderr.isatty() and "PYTEST_CURRENT_TEST" not in os.environ


# Receipt-grain columns with (nearly) one value per row; also the customer key, with one
# value per customer-month or profile row.
UNIQUE_VALUED_COLUMNS = ("receipt_id", "row_key", "customer_id", "receipt_ts", "amount", "raw_record")


def configure_builder(builder: SparkSession.Builder, spark_config: SparkConfig) -> SparkSession.Builder:
    """Delta extension + catalog, AQE, time zone, console progress, extra settings."""
    builder = (
        builder.appName(spark_config.app_name)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.adaptive.enabled", "true")
        # An aggregation over rows that arrive sorted by its keys (after a window, say)
        # streams instead of building a hash map (and falling back to a sort).
        .config("spark.sql.execution.replaceHashWithSortAgg", "true")
        # Cached tables (the features job's rollup, kept for the profile) are stored
        # uncompressed: compressing the rollup's wide rows as the write builds the cache cost
        # more than the cache saved (BENCHMARKS.md, features).
        .config("spark.sql.inMemoryColumnarStorage.compressed", "false")
        .config("spark.sql.session.timeZone", spark_config.timezone)
        .config("spark.ui.showConsoleProgress", str(_console_progress(spark_config.console_progress)).lower())
        # Keep tables readable by delta-rs, DuckDB, Trino: no deletion vectors etc.
        .config("spark.databricks.delta.properties.defaults.enableDeletionVectors", "false")
    )
    # No Parquet dictionary for columns whose values are (nearly) all distinct: the writer
    # builds a dictionary per column chunk, overflows it and falls back to plain encoding.
    # That cost a fifth of the generator's bronze write, and the files came out larger
    # (BENCHMARKS.md, generate). Other columns keep the dictionary.
    for column in UNIQUE_VALUED_COLUMNS:
        builder = builder.config(f"spark.hadoop.parquet.enable.dictionary#{column}", "false")
    extra_java = spark_config.conf.get("spark.driver.extraJavaOptions", "")
    if not under_spark_submit():
        check_delta_package(spark_config.delta_package, pyspark.__version__)
        builder = builder.master(spark_config.master or "local[*]")
        log4j = None if "log4j2.configurationFile" in extra_java else defaults.conf_path(LOG4J_CONFIG)
        if log4j is not None:  # a real file for the JVM (extracted when seglake runs from a zip)
            extra_java = f"{extra_java} -Dlog4j2.configurationFile={log4j.as_uri()}".strip()
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        resolved = jars_dir(spark_config)
        jars = sorted(resolved.glob("*.jar")) if resolved.is_dir() else []
        if jars:
            builder = builder.config("spark.jars", ",".join(str(j) for j in jars))
        else:
            builder = _with_packages(builder, spark_config.delta_package, resolved)
    for key, value in spark_config.conf.items():
        builder = builder.config(key, value)
    if extra_java:
        builder = builder.config("spark.driver.extraJavaOptions", extra_java)
    return builder


def _with_packages(builder: SparkSession.Builder, package: str, target: Path) -> SparkSession.Builder:
    return (
        builder.config("spark.jars.packages", package)
        .config("spark.jars.excludes", ",".join(_SPARK_PROVIDED))
        .config("spark.jars.ivy", str(_ivy_dir(target)))
    )


def build_session(spark_config: SparkConfig) -> SparkSession:
    """Create the session described by ``spark_config``, or reuse the active one as it is
    (a notebook's, a test suite's, or a caller's that built its own)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    session = configure_builder(SparkSession.builder, spark_config).getOrCreate()
    session.sparkContext.setLogLevel(spark_config.log_level)
    return session


def resolve_delta_jars(spark_config: SparkConfig) -> Path:
    """Resolve the Delta package with Spark's resolver and keep the jars in ``jars_dir``."""
    target = jars_dir(spark_config)
    if target.is_dir() and any(target.glob("*.jar")):
        return target
    builder = _with_packages(
        SparkSession.builder.master("local[1]").appName("seglake-resolve"), spark_config.delta_package, target
    ).config("spark.ui.enabled", "false")
    session = builder.getOrCreate()
    try:
        session.sparkContext.setLogLevel("ERROR")
        session.range(1).count()
    finally:
        session.stop()
    retrieved = _ivy_dir(target) / "jars"
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for jar in retrieved.glob("*.jar"):
        shutil.copy2(jar, staging / jar.name)
    staging.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seglake.session", description="Resolve and cache the Delta Lake jars."
    )
    parser.add_argument("--resolve", action="store_true", help="resolve the Delta jars now")
    parser.add_argument("--package", default=DELTA_PACKAGE, help="Maven coordinate")
    args = parser.parse_args(argv)
    spark_config = SparkConfig(delta_package=args.package)
    try:  # refuse before fetching jars that the first session would refuse anyway
        check_delta_package(args.package, pyspark.__version__)
    except ConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    if args.resolve:
        target = resolve_delta_jars(spark_config)
        print(f"Delta jars for {args.package}: {target} ({len(list(target.glob('*.jar')))} jars)")
    else:
        print(jars_dir(spark_config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
