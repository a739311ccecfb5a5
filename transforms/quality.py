"""Data quality: a per-column profile of a source table (ops/profile), and the checks a
cleanse run records in ops/data_quality (quarantine rates and row counts against thresholds)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T


def _quartiles(column: str, data_type: T.DataType) -> Column:
    if isinstance(data_type, T.NumericType) and not isinstance(data_type, T.BooleanType):
        value = F.col(column).cast("double")
    elif isinstance(data_type, T.DateType | T.TimestampType | T.TimestampNTZType):
        value = F.col(column)
    else:
        return F.array().cast("array<string>")
    return F.percentile_approx(value, [0.25, 0.5, 0.75], 1000).cast("array<string>")


def to_column_profile(frame: DataFrame, columns: list[str], sample_fraction: float, top: int = 5) -> DataFrame:
    """One row per column: rows, nulls, approximate distinct count, min, max, quartiles and
    the ``top`` most frequent values (counted on a ``sample_fraction`` sample).

    Statistics come from one aggregation over ``frame``; top values from a sample, so the
    cost stays one pass plus a small sample whatever the size of the table.
    """
    types = {f.name: f.dataType for f in frame.schema.fields}
    stats = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        *[
            F.struct(
                F.lit(name).alias("column_name"),
                F.lit(types[name].simpleString()).alias("data_type"),
                F.count_if(F.col(name).isNull()).alias("null_count"),
                F.approx_count_distinct(name).alias("approx_distinct"),
                F.min(name).cast("string").alias("min_value"),
                F.max(name).cast("string").alias("max_value"),
                _quartiles(name, types[name]).alias("quartiles"),
            ).alias(f"_s{i}")
            for i, name in enumerate(columns)
        ],
    )
    long = stats.select("rows", F.explode(F.array(*[f"_s{i}" for i in range(len(columns))])).alias("s"))
    sample = frame.sample(fraction=min(sample_fraction, 1.0), seed=17) if sample_fraction < 1 else frame
    value_counts = (
        sample.select(
            F.explode(
                F.array(
                    *[
                        F.struct(F.lit(name).alias("column_name"), F.col(name).cast("string").alias("value"))
                        for name in columns
                    ]
                )
            ).alias("cell")
        )
        .groupBy("cell.column_name", "cell.value")
        .agg(F.count("*").alias("rows"))
    )
    ranked = value_counts.withColumn(
        "_rank",
        F.row_number().over(Window.partitionBy("column_name").orderBy(F.desc("rows"), F.asc_nulls_last("value"))),
    ).where(F.col("_rank") <= top)
    top_values = ranked.groupBy("column_name").agg(
        F.sort_array(F.collect_list(F.struct(F.col("_rank"), "value", "rows"))).alias("_top")
    )
    return (
        long.select("rows", "s.*")
        .join(top_values, "column_name", "left")
        .select(
            "column_name",
            "data_type",
            "rows",
            "null_count",
            F.when(F.col("rows") > 0, F.col("null_count") / F.col("rows")).alias("null_rate"),
            "approx_distinct",
            "min_value",
            "max_value",
            F.get("quartiles", 0).alias("p25"),
            F.get("quartiles", 1).alias("p50"),
            F.get("quartiles", 2).alias("p75"),
            F.transform("_top", lambda t: F.struct(t["value"].alias("value"), t["rows"].alias("rows"))).alias(
                "top_values"
            ),
        )
    )


@dataclass(frozen=True)
class Check:
    """One ops/data_quality row of a run: ``failure`` is the one line a failed check stops the run with."""

    name: str
    rows_checked: int
    rows_flagged: int
    passed: bool
    detail: str
    failure: str | None = None


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def quarantine_rate_checks(
    rows_in: int,
    counts: dict[str, int],
    meanings: dict[str, str],
    *,
    min_rows: int,
    max_quarantine_rate: float,
    max_reason_rate: float,
    reason_rates: dict[str, float],
) -> list[Check]:
    """A check per reject reason (its share of the rows read against ``reason_rates[reason]``,
    else ``max_reason_rate``) and ``quarantine_rate`` (all reasons together against
    ``max_quarantine_rate``). Below ``min_rows`` rows read a rate is recorded, not judged.
    A rate equal to its threshold passes."""
    key = "cleanse.thresholds"
    limits = [
        (
            reason,
            meaning + "; ",
            counts.get(reason, 0),
            reason_rates.get(reason, max_reason_rate),
            f"{key}.reason_rates.{reason}" if reason in reason_rates else f"{key}.max_reason_rate",
        )
        for reason, meaning in meanings.items()
    ]
    quarantined = sum(counts.values())
    limits.append(
        (
            "quarantine_rate",
            "rows quarantined, all reasons: ",
            quarantined,
            max_quarantine_rate,
            f"{key}.max_quarantine_rate",
        )
    )
    checks = []
    for name, lead, flagged, limit, setting in limits:
        rate = _rate(flagged, rows_in)
        figures = f"{flagged:,} of {rows_in:,} rows ({rate:.2%})"
        if rows_in < min_rows:
            note = f"not judged below {key}.min_rows = {min_rows:,} rows read"
            checks.append(Check(name, rows_in, flagged, True, f"{lead}{figures}; {note}"))
            continue
        passed, threshold = rate <= limit, f"{setting} = {limit:.2%}"
        failure = None if passed else f"{name}: {figures} quarantined, above {threshold}"
        checks.append(Check(name, rows_in, flagged, passed, f"{lead}{figures}; threshold {threshold}", failure))
    return checks


def row_drop_check(rows_in: int, previous: tuple[str, int] | None, kind: str, max_row_drop: float | None) -> Check:
    """``row_count_drop``: rows read against ``previous`` (run id, rows read) of the last succeeded
    run of the same ``kind``; the drop is (previous - rows_in) / previous, at most ``max_row_drop``."""
    setting = "cleanse.thresholds.max_row_drop"
    if previous is None:
        return Check("row_count_drop", rows_in, 0, True, f"{rows_in:,} rows read; no earlier succeeded {kind} run")
    run_id, before = previous
    dropped = max(before - rows_in, 0)
    drop = _rate(dropped, before)
    figures = f"{rows_in:,} rows read, {before:,} by the last succeeded {kind} run {run_id}: a drop of {drop:.2%}"
    if max_row_drop is None:
        return Check("row_count_drop", rows_in, dropped, True, f"{figures}; not judged ({setting} is null)")
    passed = drop <= max_row_drop
    return Check(
        "row_count_drop",
        rows_in,
        dropped,
        passed,
        f"{figures}; threshold {setting} = {max_row_drop:.2%}",
        None if passed else f"row_count_drop: {figures}, above {setting} = {max_row_drop:.2%}",
    )
