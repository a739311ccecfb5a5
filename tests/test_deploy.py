"""The scheduling artefacts in deploy/: the Airflow DAG and the Databricks job.

They need apache-airflow, its Spark provider and databricks-sdk, which live in a venv of their
own (``make test-deploy`` builds .venv-deploy from deploy/requirements.txt) so that ``make
setup`` stays quick. Under ``make test`` (.venv, no Airflow) this module is skipped; with
SEGLAKE_REQUIRE_DEPLOY=1, which ``make test-deploy`` (and so CI) sets, a missing package fails
the run instead. The module runs with ``--noconftest``: it needs no Spark session.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import importlib
import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parent.parent
DAG_FOLDER = ROOT / "deploy" / "airflow"
BUNDLE = ROOT / "deploy" / "databricks" / "databricks.yml"
MONTH_END = ROOT / "deploy" / "databricks" / "month_end.py"

# Airflow keeps its config and logs under AIRFLOW_HOME (default ~/airflow): keep them in the venv.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".venv-deploy" / "airflow-home"))


def _require(module: str) -> ModuleType:
    if os.environ.get("SEGLAKE_REQUIRE_DEPLOY") == "1":
        return importlib.import_module(module)  # an ImportError fails the run
    return pytest.importorskip(module, reason=f"{module} is installed by `make test-deploy` (.venv-deploy)")


_require("airflow.providers.apache.spark")
_require("databricks.sdk")

from airflow.dag_processing.dagbag import DagBag  # noqa: E402
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator  # noqa: E402
from airflow.sdk.execution_time.context import MacrosAccessor, VariableAccessor  # noqa: E402
from airflow.serialization.serialized_objects import DagSerialization  # noqa: E402
from airflow.timetables.base import TimeRestriction  # noqa: E402
from databricks.sdk.service.jobs import JobSettings  # noqa: E402

DAG_ID = "seglake_monthly"
VARIABLES = ("SEGLAKE_ARTIFACT_DIR", "SEGLAKE_CONFIG", "SEGLAKE_SPARK_CONN_ID")


def delta_package() -> str:
    """The project's Delta coordinate (``DELTA_PACKAGE`` in seglake/config.py), read without importing seglake."""
    tree = ast.parse((ROOT / "seglake" / "config.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DELTA_PACKAGE" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("seglake/config.py has no DELTA_PACKAGE")


def load_dagbag(env: dict[str, str]) -> DagBag:
    """Parse deploy/airflow with the Airflow Variables given as AIRFLOW_VAR_* (and no others of ours)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in VARIABLES:
            mp.delenv(f"AIRFLOW_VAR_{name}", raising=False)
        for name, value in env.items():
            mp.setenv(f"AIRFLOW_VAR_{name}", value)
        return DagBag(dag_folder=str(DAG_FOLDER), safe_mode=False)


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return load_dagbag({})


@pytest.fixture(scope="module")
def dag(dagbag: DagBag) -> Any:
    assert not dagbag.import_errors, f"import errors: {dagbag.import_errors}"
    return dagbag.dags[DAG_ID]


def month_run(dag: Any, first_day: dt.date) -> Any:
    """The scheduler's run for the month starting ``first_day``: the DAG as the scheduler sees it
    (serialised and back), asked for its next run from that day on."""
    timetable = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable
    earliest = dt.datetime(first_day.year, first_day.month, first_day.day, tzinfo=dt.timezone.utc)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(earliest=earliest, latest=None, catchup=True)
    )
    assert info is not None
    return info


def rendered(dag: Any, task_id: str, logical_date: dt.datetime, start: dt.datetime, end: dt.datetime) -> Any:
    """A copy of the task with its template fields rendered for one run, with Airflow's own
    macros and Variable accessors (Variables come from AIRFLOW_VAR_*, else their defaults)."""
    task = copy.deepcopy(dag.get_task(task_id))
    context = {
        "dag": dag,
        "task": task,
        "params": dag.params,
        "macros": MacrosAccessor(),
        "var": {"json": VariableAccessor(deserialize_json=True), "value": VariableAccessor(deserialize_json=False)},
        "logical_date": logical_date,
        "data_interval_start": start,
        "data_interval_end": end,
        "ds": logical_date.strftime("%Y-%m-%d"),
        "ts": logical_date.isoformat(),
    }
    task.render_template_fields(context)
    return task


def as_of_arg(task: SparkSubmitOperator) -> str:
    args = list(task.application_args)
    assert args.count("--as-of") == 1, args
    return args[args.index("--as-of") + 1]


# --- Airflow -----------------------------------------------------------------------------------


def test_dag_loads_without_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.dag_ids == [DAG_ID]


def test_tasks_schedule_and_catchup(dag: Any) -> None:
    assert sorted(dag.task_ids) == ["run"]
    assert isinstance(dag.get_task("run"), SparkSubmitOperator)
    assert dag.timetable.expression == "0 0 1 * *"  # @monthly
    assert str(dag.timetable.timezone) == "UTC"
    assert dag.catchup is False
    assert dag.max_active_runs == 1


def test_spark_submit_arguments_with_default_variables(dag: Any) -> None:
    first = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    task = rendered(dag, "run", first, first, dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    assert task._conn_id == "spark_default"
    assert task.application == "/opt/seglake/dist/seglake_submit.py"
    assert task.py_files == "/opt/seglake/dist/seglake-pyfiles.zip"
    assert task.packages == delta_package() == "io.delta:delta-spark_4.1_2.13:4.4.0"
    assert list(task.application_args) == [
        "run",
        "--config",
        "/opt/seglake/conf/cluster.yaml",
        "--as-of",
        "2026-11-30",
        "--log-format",
        "json",
    ]
    assert task.retries == 0


def test_variables_override_paths_and_connection() -> None:
    variables = {
        "SEGLAKE_ARTIFACT_DIR": "/srv/seglake/1.2",
        "SEGLAKE_CONFIG": "/etc/seglake/prod.yaml",
        "SEGLAKE_SPARK_CONN_ID": "yarn_prod",
    }
    bag = load_dagbag(variables)  # the connection id is read when the DAG is parsed
    assert bag.import_errors == {}
    first = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    with pytest.MonkeyPatch.context() as mp:  # the paths when a run renders its templates
        for name, value in variables.items():
            mp.setenv(f"AIRFLOW_VAR_{name}", value)
        task = rendered(bag.dags[DAG_ID], "run", first, first, dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    assert task._conn_id == "yarn_prod"
    assert task.application == "/srv/seglake/1.2/seglake_submit.py"
    assert task.py_files == "/srv/seglake/1.2/seglake-pyfiles.zip"
    assert list(task.application_args)[:3] == ["run", "--config", "/etc/seglake/prod.yaml"]


@pytest.mark.parametrize(
    ("first_day", "as_of"),
    [
        (dt.date(2024, 2, 1), "2024-02-29"),  # leap year
        (dt.date(2026, 11, 1), "2026-11-30"),
        (dt.date(2026, 12, 1), "2026-12-31"),  # the interval ends in the next year
    ],
)
def test_as_of_is_the_last_day_of_the_month_the_run_covers(dag: Any, first_day: dt.date, as_of: str) -> None:
    info = month_run(dag, first_day)
    assert info.logical_date.date() == first_day  # the run's logical date: the month it covers
    assert info.data_interval.start.date() == first_day
    task = rendered(dag, "run", info.logical_date, info.data_interval.start, info.data_interval.end)
    assert as_of_arg(task) == as_of


def test_a_manual_run_takes_the_last_complete_month(dag: Any) -> None:
    timetable = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable
    interval = timetable.infer_manual_data_interval(run_after=dt.datetime(2026, 3, 17, 9, 30, tzinfo=dt.timezone.utc))
    task = rendered(dag, "run", interval.start, interval.start, interval.end)
    assert as_of_arg(task) == "2026-02-28"


# --- Databricks --------------------------------------------------------------------------------


def bundle_job() -> dict[str, Any]:
    """The job of the bundle, with ${var.*} replaced by the variables' defaults (as the
    Databricks CLI does on deploy when no --var overrides them)."""
    bundle = yaml.safe_load(BUNDLE.read_text())
    defaults = {name: spec["default"] for name, spec in bundle["variables"].items()}

    def interpolate(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: interpolate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [interpolate(v) for v in value]
        if isinstance(value, str):
            whole = re.fullmatch(r"\$\{var\.(\w+)\}", value)
            if whole:
                return defaults[whole.group(1)]
            return re.sub(r"\$\{var\.(\w+)\}", lambda m: str(defaults[m.group(1)]), value)
        return value

    jobs = bundle["resources"]["jobs"]
    assert list(jobs) == ["seglake_monthly"]
    return interpolate(jobs["seglake_monthly"])


def lost_keys(before: Any, after: Any, path: str = "") -> list[str]:
    """Keys of ``before`` (recursively, through lists) that ``after`` lacks."""
    if isinstance(before, dict):
        if not isinstance(after, dict):
            return [path or "."]
        lost = [f"{path}.{k}".lstrip(".") for k in before if k not in after]
        return lost + [p for k in before if k in after for p in lost_keys(before[k], after[k], f"{path}.{k}")]
    if isinstance(before, list):
        if not isinstance(after, list) or len(after) != len(before):
            return [path]
        return [p for i, (b, a) in enumerate(zip(before, after, strict=True)) for p in lost_keys(b, a, f"{path}[{i}]")]
    return []


def test_lost_keys_finds_keys_the_model_drops() -> None:
    job = {"name": "x", "tasks": [{"task_key": "a", "python_wheel_task": {"package_name": "p", "entry_point": "e"}}]}
    job["tasks"][0]["python_wheel_task"]["entrypoint"] = "typo"
    job["quartz_cron"] = "0 0 2 1 * ?"
    round_trip = JobSettings.from_dict(job).as_dict()
    assert sorted(lost_keys(job, round_trip)) == ["quartz_cron", "tasks[0].python_wheel_task.entrypoint"]


def test_databricks_job_round_trips_through_the_jobs_api_model() -> None:
    job = bundle_job()
    assert "${" not in repr(job)
    round_trip = JobSettings.from_dict(job).as_dict()
    lost = lost_keys(job, round_trip)
    assert not lost, f"keys the Jobs API model does not know: {lost}"


def test_databricks_job_runs_the_wheel_monthly() -> None:
    job = bundle_job()
    settings = JobSettings.from_dict(job)
    assert settings.schedule.quartz_cron_expression == "0 0 2 1 * ?"  # 02:00 on the 1st of each month
    assert settings.schedule.timezone_id == "UTC"
    assert settings.max_concurrent_runs == 1
    tasks = {t.task_key: t for t in settings.tasks}
    assert sorted(tasks) == ["month_end", "run"]
    run = tasks["run"]
    assert [d.task_key for d in run.depends_on] == ["month_end"]
    wheel = run.python_wheel_task
    assert (wheel.package_name, wheel.entry_point) == ("seglake", "seglake")
    assert wheel.parameters == [
        "run",
        "--config",
        "/Workspace/Shared/seglake/cluster.yaml",
        "--as-of",
        "{{tasks.month_end.values.as_of}}",
        "--log-format",
        "json",
    ]
    assert [lib.whl for lib in run.libraries] == ["/Volumes/main/seglake/artifacts/seglake-0.1.0-py3-none-any.whl"]
    assert tasks["month_end"].notebook_task.notebook_path == "./month_end.py"
    assert tasks["month_end"].notebook_task.base_parameters == {"run_date": "{{job.start_time.iso_date}}"}
    assert [p.name for p in settings.parameters] == ["as_of"]
    (cluster,) = settings.job_clusters
    assert {run.job_cluster_key, tasks["month_end"].job_cluster_key} == {cluster.job_cluster_key}
    major = int(cluster.new_cluster.spark_version.split(".")[0])
    assert major >= 18  # Databricks Runtime 18 and later ship Spark 4.1+


@pytest.fixture(scope="module")
def month_end() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("month_end", MONTH_END)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # outside Databricks (no dbutils) it only defines functions
    yield module


@pytest.mark.parametrize(
    ("run_date", "as_of"),
    [
        ("2024-03-01", "2024-02-29"),
        ("2026-12-01", "2026-11-30"),
        ("2027-01-01", "2026-12-31"),
        ("2026-12-15", "2026-11-30"),  # a manual run in the middle of a month
    ],
)
def test_month_end_task_takes_the_last_day_of_the_previous_month(
    month_end: ModuleType, run_date: str, as_of: str
) -> None:
    assert month_end.resolve_as_of("", run_date) == as_of


def test_month_end_task_passes_a_given_as_of_through(month_end: ModuleType) -> None:
    assert month_end.resolve_as_of(" 2025-06-30 ", "2026-12-01") == "2025-06-30"
    with pytest.raises(ValueError):
        month_end.resolve_as_of("2025-06-31", "2026-12-01")
