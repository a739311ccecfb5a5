"""One SparkSession with Delta for the whole suite: local[2], tiny shuffles, no UI."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from seglake import catalog
from seglake.config import SparkConfig
from seglake.session import configure_builder

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.shared_data`` tests need ../shared/data: skipped on a machine without
    it, but failed under CI (CI=true), where the data is laid beside the clone and must be read."""
    if item.get_closest_marker("shared_data") is None or SHARED_DATA.is_dir():
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"real data sets not found at {SHARED_DATA}: CI runs the real-data tests", pytrace=False)
    pytest.skip(f"real data sets not found at {SHARED_DATA}")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    spark_config = SparkConfig(
        master="local[2]",
        console_progress="off",
        conf={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.driver.memory": "2g",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.driver.extraJavaOptions": "-XX:-DontCompileHugeMethods",
            # the suite runs thousands of tiny queries: compiling each plan to Java costs more than
            # interpreting it (a small pipeline run: 85.7 s compiled, 79.4 s interpreted); same results
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        },
    )
    session = configure_builder(SparkSession.builder, spark_config).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def with_catalog_columns(frame: DataFrame, table: str) -> DataFrame:
    """``frame`` plus the catalog columns of ``table`` it lacks, as typed nulls: tests write only
    the columns a behaviour needs, the lake keeps the table's whole schema."""
    record = catalog.table(table)
    missing = {c.name: F.lit(None).cast(c.data_type) for c in record.columns if c.name not in frame.columns}
    return frame.withColumns(missing) if missing else frame


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """An empty lake folder for one test."""
    root = tmp_path / "lake"
    root.mkdir()
    return root


# A tiny lake made by the run job (generate + every stage), shared by the run, report,
# notebook and BI tests. Tests may add as-of dates or rerun stages but must leave it valid
# (same rows), and rerun with pipeline_argv so that they use the same settings.
PIPELINE_SETTINGS = ("generate.customers=2000", "generate.receipts=20000", "clusters.k_max=5")
# then a run for an earlier as-of date (out of order), so that gold/segment_migration has rows
PIPELINE_EARLIER_DAYS = 30
PIPELINE_EARLIER_STAGES = "features,value,cohorts,segment"


def pipeline_argv(lake: Path, *extra: str) -> list[str]:
    argv = ["--set", f"lake.root={lake}", "--set", f"report.root={lake.parent / 'reports'}"]
    for assignment in PIPELINE_SETTINGS:
        argv += ["--set", assignment]
    return [*argv, *extra]


def first_run_log(lake: Path) -> str:
    """What the pipeline lake's first run (generate, then every stage) printed on stderr."""
    return (lake.parent / "first_run.log").read_text()


def versions_before_earlier_run(lake: Path) -> dict[str, int]:
    """The gold table versions the pipeline lake had before its earlier as-of run."""
    return json.loads((lake.parent / "versions_before_earlier_run.json").read_text())


@pytest.fixture(scope="session")
def pipeline_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from jobs import run as run_job
    from seglake import tables

    root = tmp_path_factory.mktemp("pipeline") / "lake"
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        status = run_job.main(pipeline_argv(root, "--sample"))
    (root.parent / "first_run.log").write_text(printed.getvalue())
    assert status == 0, printed.getvalue()[-2000:]
    versions = {
        table: tables.table_version(spark, str(root / table))
        for table in catalog.CATALOG
        if table.startswith("gold/") and tables.table_exists(spark, str(root / table))
    }
    (root.parent / "versions_before_earlier_run.json").write_text(json.dumps(versions))
    profile = spark.read.format("delta").load(str(root / "gold" / "customer_profile"))
    earlier = profile.agg(F.max("as_of_date")).first()[0] - dt.timedelta(days=PIPELINE_EARLIER_DAYS)
    argv = pipeline_argv(root, "--as-of", str(earlier), "--stages", PIPELINE_EARLIER_STAGES)
    assert run_job.main(argv) == 0
    return root


def comparable(frame: DataFrame) -> DataFrame:
    """Map columns as sorted entry arrays: set operations cannot compare maps."""
    columns = [
        F.array_sort(F.map_entries(name)).alias(name) if isinstance(kind, T.MapType) else F.col(name)
        for name, kind in ((f.name, f.dataType) for f in frame.schema.fields)
    ]
    return frame.select(*columns)


def assert_same_rows(before: DataFrame, after: DataFrame, what: str) -> None:
    before, after = comparable(before), comparable(after)
    assert before.exceptAll(after).count() == 0, f"{what}: rows lost or changed"
    assert after.exceptAll(before).count() == 0, f"{what}: rows added or changed"
