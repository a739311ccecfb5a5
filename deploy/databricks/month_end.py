# Databricks notebook source
# The as-of date of a monthly seglake run: the last day of the month before the run's start
# date (a run on 2026-12-01 scores as of 2026-11-30), or the job parameter as_of when a run
# is started with one. Databricks' {{ }} references cannot do date arithmetic, so this small
# task works it out and hands it to the `run` task as the task value `as_of`.
import datetime as dt


def last_day_of_previous_month(day: dt.date) -> dt.date:
    return day.replace(day=1) - dt.timedelta(days=1)


def resolve_as_of(as_of: str, run_date: str) -> str:
    """``as_of`` (YYYY-MM-DD) when given, else the last day of the month before ``run_date``."""
    if as_of.strip():
        return dt.date.fromisoformat(as_of.strip()).isoformat()
    return last_day_of_previous_month(dt.date.fromisoformat(run_date[:10])).isoformat()


# COMMAND ----------

if "dbutils" in globals():  # in a Databricks notebook (not when a test imports this file)
    dbutils = globals()["dbutils"]
    as_of = resolve_as_of(dbutils.widgets.get("as_of"), dbutils.widgets.get("run_date"))
    dbutils.jobs.taskValues.set(key="as_of", value=as_of)
    print(f"as-of date: {as_of}")
