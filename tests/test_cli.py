"""Every job answers --help three ways; a config mistake is one line, exit 2, no Spark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seglake.cli import JOBS

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("job", list(JOBS))
def test_python_module_help(job: str) -> None:
    result = run(sys.executable, "-m", f"jobs.{job}", "--help")
    assert result.returncode == 0
    assert "--as-of" in result.stdout and "--config" in result.stdout and "--set" in result.stdout


def test_console_script_lists_jobs_and_forwards_help() -> None:
    listing = run(str(BIN / "seglake"), "--help")
    assert listing.returncode == 0 and "generate" in listing.stdout and "run" in listing.stdout
    job_help = run(str(BIN / "seglake"), "generate", "--help")
    assert job_help.returncode == 0 and "--receipts" in job_help.stdout


def test_unknown_job_is_one_line() -> None:
    result = run(str(BIN / "seglake"), "segmentize")
    assert result.returncode == 2
    choices = ", ".join(JOBS)
    assert result.stderr.strip().splitlines() == [f"seglake segmentize: error: unknown job; choose one of {choices}"]


def test_bad_override_stops_before_spark_with_one_line() -> None:
    result = run(sys.executable, "-m", "jobs.generate", "--set", "generate.customers=many")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("seglake generate: error: --set generate.customers: ")
    assert "Traceback" not in result.stderr


def test_delta_package_for_another_spark_stops_before_spark_with_one_line() -> None:
    wrong = "io.delta:delta-spark_3.9_2.13:4.4.0"
    result = run(sys.executable, "-m", "jobs.generate", "--set", f"spark.delta_package={wrong}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"seglake generate: error: spark.delta_package {wrong} is built for Spark 3.9, ")


def test_bad_as_of_is_one_line() -> None:
    result = run(str(BIN / "seglake"), "run", "--as-of", "2024-13-01")
    assert result.returncode == 2
    assert result.stderr.strip() == ("seglake run: error: --as-of 2024-13-01: not a date, expected YYYY-MM-DD")


@pytest.mark.parametrize("job", list(JOBS))
def test_console_script_runs_every_job_help(job: str) -> None:
    result = run(str(BIN / "seglake"), job, "--help")
    assert result.returncode == 0 and f"usage: seglake {job}" in result.stdout


@pytest.mark.slow  # a second JVM through spark-submit
def test_spark_submit_runs_a_job_end_to_end(tmp_path: Path) -> None:
    from seglake.config import load_config
    from seglake.session import jars_dir

    jars = ",".join(str(j) for j in sorted(jars_dir(load_config().spark).glob("*.jar")))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    lake = tmp_path / "lake"
    command = [
        str(BIN / "spark-submit"),
        "--master",
        "local[1]",
        "--jars",
        jars,
        "jobs/generate.py",
        "--set",
        f"lake.root={lake}",
        "--customers",
        "50",
        "--receipts",
        "500",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (lake / "bronze" / "receipts" / "_delta_log").is_dir()
    assert (lake / "ops" / "runs" / "_delta_log").is_dir()


def test_spark_submit_runs_the_job_file() -> None:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    result = subprocess.run(
        [str(BIN / "spark-submit"), "jobs/generate.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: seglake generate" in result.stdout
