"""One SparkSession with Delta for the whole suite: local[2], tiny shuffles, no UI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from seglake.config import SparkConfig
from seglake.session import configure_builder

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


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
        },
    )
    session = configure_builder(SparkSession.builder, spark_config).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """An empty lake folder for one test."""
    root = tmp_path / "lake"
    root.mkdir()
    return root


# A tiny lake made by the run job (generate + every stage), shared by the run, report,
# notebook and BI tests. Tests may add as-of dates or rerun stages but must leave it valid.
PIPELINE_LAKE_SIZE = ("generate.customers=2000", "generate.receipts=20000")


@pytest.fixture(scope="session")
def pipeline_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from jobs import run as run_job

    root = tmp_path_factory.mktemp("pipeline") / "lake"
    argv = ["--set", f"lake.root={root}", "--set", f"report.dir={root.parent / 'reports'}"]
    for assignment in PIPELINE_LAKE_SIZE:
        argv += ["--set", assignment]
    assert run_job.main(argv) == 0
    return root


@pytest.fixture(scope="session")
def fake_gold_lake(spark: SparkSession, pipeline_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the pipeline lake plus stand-in segment/cluster tables (tests/fake_gold.py)."""
    import shutil

    from pyspark.sql import functions as F

    from tests.fake_gold import write_fake_gold

    root = tmp_path_factory.mktemp("fake_gold") / "lake"
    shutil.copytree(pipeline_lake, root)
    profile = spark.read.format("delta").load(str(root / "gold" / "customer_profile"))
    as_of = profile.agg(F.max("as_of_date")).first()[0]
    write_fake_gold(spark, str(root), as_of)
    return root
