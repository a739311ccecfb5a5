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
