"""Airflow DAG: the seglake pipeline once a month, through spark-submit.

Each run covers one calendar month (the data interval, e.g. 2026-11-01 to 2026-12-01) and
runs ``seglake_submit.py run --as-of <last day of that month>`` (2026-11-30), so the run
that starts on 1 December scores the customers as of the end of November.

Copy this file into the DAGs folder of an Airflow 3 deployment that has
``apache-airflow-providers-apache-spark`` installed and ``spark-submit`` on the workers'
PATH (tested with apache-airflow 3.3.2 and the provider 6.3.4: deploy/requirements.txt).
Set these Airflow Variables (Admin → Variables, or ``AIRFLOW_VAR_<NAME>`` in the
environment) where the defaults do not fit:

``seglake_artifact_dir`` (default ``/opt/seglake/dist``)
    folder holding ``make package``'s ``seglake_submit.py`` and ``seglake-pyfiles.zip``;
``seglake_config`` (default ``/opt/seglake/conf/cluster.yaml``)
    the cluster config (see ``conf/cluster.example.yaml``), a path the Spark driver can read;
``seglake_spark_conn_id`` (default ``spark_default``)
    the Spark connection: master, deploy mode, spark-submit binary, queue.

The two paths are read when a run starts (templates), the connection id when the DAG is
parsed. The Spark connection owns master and deploy mode; the Delta jar comes with
``--packages`` (seglake sets the Delta extension and catalog itself), the executors need
the wheel's dependencies (pyyaml, pydantic) in their Python.
"""

from __future__ import annotations

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Variable

DELTA_PACKAGE = "io.delta:delta-spark_4.1_2.13:4.4.0"  # Delta Lake 4.4.0 for Spark 4.1 (Scala 2.13)

ARTIFACT_DIR = "{{ var.value.get('seglake_artifact_dir', '/opt/seglake/dist') }}"
CONFIG = "{{ var.value.get('seglake_config', '/opt/seglake/conf/cluster.yaml') }}"
# The data interval of a monthly run is [first of the month, first of the next month): its
# last day is the day before the interval's end, whatever the month's length.
AS_OF = "{{ macros.ds_add(data_interval_end | ds, -1) }}"

with DAG(
    dag_id="seglake_monthly",
    description="seglake pipeline (cleanse → features → value → cohorts → segment → clusters → report) for each month",
    # An explicit data-interval timetable: a run's data interval is the month it covers,
    # whatever [scheduler] create_cron_data_intervals says.
    schedule=CronDataIntervalTimetable("@monthly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # runs write the same Delta tables: one at a time
    tags=["seglake"],
    doc_md=__doc__,
) as dag:
    SparkSubmitOperator(
        task_id="run",
        conn_id=Variable.get("seglake_spark_conn_id", default="spark_default"),
        application=f"{ARTIFACT_DIR}/seglake_submit.py",
        py_files=f"{ARTIFACT_DIR}/seglake-pyfiles.zip",
        packages=DELTA_PACKAGE,
        name="seglake-run",
        application_args=["run", "--config", CONFIG, "--as-of", AS_OF, "--log-format", "json"],
        # One submission per run, no automatic retry: a retry after a lost worker could start
        # a second driver beside one still writing. The pipeline is idempotent per as-of date
        # (a failed stage restores its tables), so a failed run is rerun by clearing the task.
        retries=0,
        durable=False,
    )
