"""The built package runs with no checkout: dist/'s wheel and zip carry the code and conf/, and the
wheel installed with its [spark] extra in a fresh virtualenv outside the checkout runs the pipeline
from another working directory (``make test-cluster``)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import seglake
from tests.cluster.conftest import CUSTOMERS, Run
from tests.cluster.spark_cluster import (
    DIST,
    PROJECT_ROOT,
    Install,
    gold_differences,
    gold_tables,
    table_differences,
    wheel_file,
)

pytestmark = pytest.mark.cluster

CONF = PROJECT_ROOT / "conf"
PYFILES = DIST / "seglake-pyfiles.zip"


def shipped_files() -> dict[str, bytes]:
    """Every file of the checkout's conf/, by its name in the package (seglake/conf/...)."""
    return {
        f"seglake/conf/{path.relative_to(CONF).as_posix()}": path.read_bytes()
        for path in sorted(CONF.rglob("*"))
        if path.is_file()
    }


def test_the_wheel_and_the_zip_carry_the_code_and_every_shipped_file() -> None:
    shipped = shipped_files()
    expected = {"local.yaml", "log4j2.properties", "cluster_labels.example.yaml", "segments/rules.yaml"}
    assert {f"seglake/conf/{name}" for name in expected} <= set(shipped)
    assert any(name.startswith("seglake/conf/mappings/") for name in shipped)
    code = {
        f"{package}/{path.name}"
        for package in ("seglake", "jobs", "transforms")
        for path in (PROJECT_ROOT / package).glob("*.py")
    }
    with zipfile.ZipFile(wheel_file()) as wheel, zipfile.ZipFile(PYFILES) as pyfiles:
        for archive in (wheel, pyfiles):
            names = set(archive.namelist())
            assert code <= names, sorted(code - names)
            assert {name: archive.read(name) for name in shipped if name in names} == shipped
            assert not any("__pycache__" in name for name in names)
        assert not any(".dist-info/" in name for name in pyfiles.namelist())
        metadata = wheel.read(f"seglake-{seglake.__version__}.dist-info/METADATA").decode()
    requires = [line.removeprefix("Requires-Dist: ") for line in metadata.splitlines() if line.startswith("Requires-")]
    spark = [r for r in requires if r.startswith(("pyspark", "delta-spark"))]
    # Spark only through the [spark] extra: a runtime with its own pyspark does not get a second one
    assert sorted(spark) == ['delta-spark==4.4.0; extra == "spark"', 'pyspark[ml]==4.1.1; extra == "spark"']
    assert (DIST / "seglake_submit.py").read_bytes() == (PROJECT_ROOT / "seglake" / "submit.py").read_bytes()


# Run by the installed package (or from the zip): where seglake, and its shipped files, come from.
PROBE = """
import json, sys
import jobs, seglake, transforms
from jobs.clusters import load_labels
from seglake import defaults, runlog
from seglake.config import load_config
from seglake.mapping import available_mappings, load_mapping
from seglake.segment_maps import available_maps, load_rules, load_segment_map
log4j = defaults.conf_path("log4j2.properties")
print(json.dumps({
    "modules": [seglake.__file__, jobs.__file__, transforms.__file__],
    "checkout": str(defaults.CHECKOUT_ROOT) if defaults.CHECKOUT_ROOT else None,
    "config": load_config().source,
    "real_data_config": load_config("conf/online_retail.yaml").source,
    "code_version": runlog.code_version(),
    "maps": available_maps(),
    "default_map": load_segment_map("default", 4).file,
    "rules": load_rules("conf/segments/rules.yaml")[0],
    "local_map": load_segment_map("./default.yaml", 4).file,
    "mappings": available_mappings(),
    "mapping": load_mapping("online_retail").file,
    "labels": load_labels("conf/cluster_labels.example.yaml")[1],
    "log4j": str(log4j),
    "log4j_text": log4j.read_text(),
}))
"""


def probe(install: Install, cwd: Path, **env: str) -> dict[str, object]:
    done = subprocess.run(
        [str(install.python), "-c", PROBE], cwd=cwd, env=install.env(**env), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def test_the_installed_package_and_the_zip_find_the_shipped_files_outside_the_checkout(
    install: Install, tmp_path: Path
) -> None:
    # a segment map of the user's in the working directory: relative paths are read there first
    (tmp_path / "default.yaml").write_text("categories:\n  - {category: Best, cells: ['111'], campaign: thanks}\n")
    checkout_log4j = (CONF / "log4j2.properties").read_text()
    for where, env in (("site-packages", {}), ("zip", {"PYTHONPATH": str(PYFILES)})):
        found = probe(install, tmp_path, **env)
        root = install.site_packages if where == "site-packages" else PYFILES
        assert all(str(module).startswith(f"{root}/") for module in found["modules"]), (where, found["modules"])  # type: ignore[union-attr]
        assert found["checkout"] is None
        assert found["code_version"] == seglake.__version__  # no git commit: not run from a checkout
        assert found["config"] == "seglake:conf/local.yaml"
        assert found["real_data_config"] == "seglake:conf/online_retail.yaml"
        assert found["maps"] == ["default", "infoworks", "rf_grid"]
        assert found["default_map"] == "seglake:conf/segments/default.yaml"
        assert found["rules"] == "seglake:conf/segments/rules.yaml"
        assert found["local_map"] == "default.yaml"
        assert found["mappings"] == sorted(p.stem for p in (CONF / "mappings").glob("*.yaml"))
        assert found["mapping"] == "seglake:conf/mappings/online_retail.yaml"
        assert found["labels"] == "seglake:conf/cluster_labels.example.yaml"
        # a real file for the JVM, in the package or extracted from the zip (and removed at exit)
        assert found["log4j_text"] == checkout_log4j
        if where == "zip":
            assert not Path(str(found["log4j"])).exists()
        else:
            assert found["log4j"] == str(install.site_packages / "seglake" / "conf" / "log4j2.properties")


def test_the_submit_script_runs_a_job_and_exits_with_its_status(install: Install, tmp_path: Path) -> None:
    submit = [str(install.python), str(DIST / "seglake_submit.py")]
    for command, env in (
        ([*submit, "generate", "--help"], {"PYTHONPATH": str(PYFILES)}),
        ([str(install.python), "-m", "seglake.submit", "generate", "--help"], {}),
    ):
        done = subprocess.run(
            command, cwd=tmp_path, env=install.env(**env), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "usage: seglake generate" in done.stdout
    wrong = subprocess.run(
        [*submit, "segmentize"], cwd=tmp_path, env=install.env(PYTHONPATH=str(PYFILES)), capture_output=True, text=True
    )
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [
        f"seglake segmentize: error: unknown job; choose one of {', '.join(seglake_jobs())}"
    ]


def seglake_jobs() -> list[str]:
    from seglake.cli import JOBS

    return list(JOBS)


def test_the_installed_seglake_runs_the_pipeline_in_another_directory(
    local_run: Run, install: Install, run_config: Path, spark: SparkSession
) -> None:
    assert local_run.status == 0, local_run.log[-3000:]
    assert not local_run.cwd.is_relative_to(PROJECT_ROOT)
    lake = local_run.lake  # lake.root ./lake: the run's working directory
    for table in gold_tables():
        assert (lake / table / "_delta_log").is_dir(), f"{table} not written"
    profile = spark.read.format("delta").load(str(lake / "gold" / "customer_profile"))
    assert 0.9 * CUSTOMERS <= profile.count() <= CUSTOMERS
    assert list((lake / "reports").glob("segmentation_*.html"))  # the report lives with the lake
    runs = spark.read.format("delta").load(str(lake / "ops" / "runs"))
    recorded = {(r["status"], r["config_source"], r["code_version"]) for r in runs.collect()}
    # code_version without a git commit: seglake did not run from the checkout
    assert recorded == {(status, str(run_config), seglake.__version__) for status in ("started", "succeeded")}
    # the seglake that ran: the console script's interpreter is the virtualenv's
    shebang = install.seglake.read_text().splitlines()[0]
    assert shebang == f"#!{install.python}"
    imported = subprocess.run(
        [str(install.python), "-c", "import seglake, jobs, transforms; print(seglake.__file__, jobs.__file__)"],
        cwd=local_run.cwd,
        env=install.env(),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert imported and all(path.startswith(f"{install.site_packages}/") for path in imported), imported


def test_the_gold_comparison_sees_one_changed_value(local_run: Run, spark: SparkSession, tmp_path: Path) -> None:
    """The cluster tests compare gold tables with :func:`gold_differences`; it must see a single change."""
    assert local_run.status == 0
    assert gold_differences(spark, local_run.lake, local_run.lake) == (gold_tables(), {})
    thresholds = spark.read.format("delta").load(str(local_run.lake / "gold" / "rfm_thresholds"))
    changed = thresholds.withColumn(
        "customers", F.when(F.col("metric") == F.lit("frequency"), F.col("customers") + 1).otherwise(F.col("customers"))
    )
    assert table_differences(thresholds, thresholds) is None
    assert table_differences(thresholds, changed) is not None
