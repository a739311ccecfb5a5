"""Fixtures of ``make test-cluster`` (``pytest -m cluster``): the built package installed outside the
checkout, a small generated bronze lake, the installed ``seglake run`` on a copy of it (the
``local[*]`` reference), and Spark standalone clusters on 127.0.0.1.

``make test-cluster`` builds ``dist/`` first (``make package``). The virtualenv is made once per
session under pytest's temporary folder; ``SEGLAKE_CLUSTER_VENV=/some/venv`` reuses (or makes)
one there instead and only reinstalls the wheel, for iterating on these tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seglake.config import SparkConfig
from seglake.session import jars_dir
from tests.cluster.spark_cluster import PROJECT_ROOT, Install, StandaloneCluster

# Small enough for a few minutes on two shared cores; big enough for every stage to have work.
CUSTOMERS, RECEIPTS = 300, 3000
RUN_TIMEOUT = 900.0  # seconds a pipeline run may take before it is stopped and the test fails

# One config for every run of the session (the local reference and the cluster runs): a relative lake
# (in the working directory of the run; the report goes under it), few shuffle partitions, a short k search.
# spark.default.parallelism is pinned so that local[*] and the cluster (two one-core workers) partition
# alike on any machine: the clusters job cuts its k-means input into max(default parallelism, rows / 500k)
# partitions, and Spark ML's k-means|| initialisation draws per partition, so another partition count is
# another (equally valid) clustering: with parallelism 3 and 7 shuffle partitions, gold/clusters and
# gold/cluster_profiles differ (cost 3,271 against 3,225 at k = 4 on this lake) and every other gold
# table is the same row for row.
CONFIG = f"""\
lake:
  root: ./lake
spark:
  console_progress: "off"
  conf:
    spark.driver.memory: 1g
    spark.sql.shuffle.partitions: "4"
    spark.default.parallelism: "2"
    spark.databricks.delta.snapshotPartitions: "2"
generate:
  customers: {CUSTOMERS}
  receipts: {RECEIPTS}
clusters:
  k_min: 3
  k_max: 4
"""


@dataclass(frozen=True)
class Run:
    """A finished pipeline run: its exit status, what it printed, its working directory and lake."""

    status: int
    log: str
    cwd: Path

    @property
    def lake(self) -> Path:
        return self.cwd / "lake"


@pytest.fixture(scope="session")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """dist/'s wheel with its [spark] extra in a fresh virtualenv outside the checkout."""
    resolved = jars_dir(SparkConfig())
    jars = sorted(resolved.glob("*.jar")) if resolved.is_dir() else []
    if not jars:
        pytest.fail(f"no Delta jars in {resolved}: run `make setup` (it caches them)", pytrace=False)
    given = os.environ.get("SEGLAKE_CLUSTER_VENV")
    venv = Path(given).resolve() if given else tmp_path_factory.mktemp("installed") / "venv"
    assert not venv.is_relative_to(PROJECT_ROOT), f"the virtualenv must sit outside the checkout: {venv}"
    try:
        return Install.create(venv, jars_dir=resolved.parent, jars=jars, fresh=not given)
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def run_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "seglake-test.yaml"
    path.write_text(CONFIG)
    return path


def run_installed(install: Install, cwd: Path, *args: str) -> Run:
    """The virtualenv's ``seglake`` console script, run in ``cwd`` (stdout and stderr together)."""
    done = subprocess.run(
        [str(install.seglake), *args],
        cwd=cwd,
        env=install.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT,
        start_new_session=True,
    )
    (cwd / "seglake.log").write_text(done.stdout)
    return Run(done.returncode, done.stdout, cwd)


@pytest.fixture(scope="session")
def local_run(install: Install, run_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The installed ``seglake run`` (``local[*]``) in an empty working directory: it generates the
    sample lake of the config (bronze) first, then runs every stage. The reference of the cluster runs."""
    cwd = tmp_path_factory.mktemp("local") / "run"
    cwd.mkdir()
    return run_installed(install, cwd, "run", "--config", str(run_config))


@pytest.fixture(scope="session")
def bronze_lake(local_run: Run) -> Path:
    """The bronze layer the local run generated (and read, never wrote: input is never modified)."""
    assert local_run.status == 0, f"the local[*] reference run failed:\n{local_run.log[-3000:]}"
    assert "generating the sample lake first" in local_run.log
    return local_run.lake


def copy_lake(lake: Path, cwd: Path) -> Path:
    """A working directory ``cwd`` holding a copy of ``lake``'s bronze layer as ``./lake/bronze``."""
    (cwd / "lake").mkdir(parents=True)
    shutil.copytree(lake / "bronze", cwd / "lake" / "bronze")
    return cwd


@pytest.fixture
def start_cluster(install: Install, tmp_path: Path) -> Iterator[Callable[..., StandaloneCluster]]:
    """Starts standalone clusters (master + workers) for one test, and stops every process it started."""
    started: list[StandaloneCluster] = []

    def start(**options: object) -> StandaloneCluster:
        cluster = StandaloneCluster(install, tmp_path / f"cluster-{len(started)}", **options)  # type: ignore[arg-type]
        started.append(cluster)
        return cluster.start()

    try:
        yield start
    finally:
        for cluster in started:
            cluster.stop()
