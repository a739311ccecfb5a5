"""``cleanse``: bronze/receipts -> silver/receipts + silver/receipts_quarantine.

Incremental by default: only the rows appended to bronze since the version the last
succeeded cleanse run read are processed (bronze's Change Data Feed reads just the files
those commits added), so a rerun adds nothing. When bronze's history was rewritten since
(an ingest ``--mode overwrite``, a RESTORE, ...) or no version is recorded, the run says so in
one line and processes the bronze rows whose ``row_key`` is in neither silver nor the
quarantine instead (comparing the full tables). ``--full`` reprocesses all of
bronze and replaces both tables. The books must balance (rows in = clean + quarantined)
before anything is written, and again after both commits, counted as committed (the
rows carrying the run's id in each table at the version it committed); a run whose
committed tables do not balance restores both and fails. The checks go to
``ops/data_quality`` and a profile of the rows read to ``ops/profile``.

Quarantine rates (per reason, overall) and the drop in rows read against the last
succeeded run of the same kind are judged against ``cleanse.thresholds`` on the counts
before writing: a run above a threshold records its checks in ``ops/data_quality``,
writes nothing to silver or the quarantine, and stops with one line (exit 2).

The two tables land as a pair. A run commits the quarantine, then silver, each commit
tagged with the run (Delta ``userMetadata`` ``seglake cleanse run <run_id>``), and the
pair is complete once the run is recorded as succeeded in ``ops/runs`` with both
versions in ``tables_written``. Every reader of the pair (``Lake.read``: features,
cohorts, the next cleanse; the default as-of date of ``run``) reads each table at its
last complete version, leaving out the commits of a cleanse run that did not complete
(see ``seglake.lake.complete_version``); other writers' commits are read as they are.
A run killed between its commits therefore changes nothing anyone reads, and the next
run repairs it first: it restores the table it committed to (Delta RESTORE) to its
last complete version, says so in one log line, and cleanses those bronze rows again.
A table with no complete version at all makes the run a full one.

``SEGLAKE_FAULT=cleanse-between-commits`` (for tests only) ends the process right
after the first commit, as a crash there would.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

if __package__ in (None, ""):  # run as a file: spark-submit jobs/cleanse.py
    import _bootstrap  # noqa: F401

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seglake import catalog
from seglake.changes import Appended, appended_since
from seglake.config import SeglakeConfig
from seglake.errors import UserError
from seglake.job import Job, StageResult, job_log, run_job
from seglake.lake import CLEANSE_COMMIT, CLEANSE_PAIR, Lake, complete_version, last_cleanse_pair
from seglake.runlog import utc_now
from transforms.cleanse import (
    REASONS,
    CleanseRules,
    to_quarantine,
    to_reason_counts,
    to_silver_receipts,
    with_duplicate_reasons,
    with_normalised_values,
    with_reject_reason,
)
from transforms.quality import Check, quarantine_rate_checks, row_drop_check, to_column_profile

FAULT_ENV = "SEGLAKE_FAULT"
# New rows up to this many are checked for duplicates by broadcasting their receipt ids.
FEW_NEW_ROWS = 5_000_000
FAULT_EXIT_STATUS = 86


class UnbalancedBooksError(RuntimeError):
    """Rows were lost or doubled by the cleansing logic: a bug, never written."""


log = job_log("cleanse")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true", help="reprocess all of bronze, replacing silver")
    parser.add_argument("--no-profile", action="store_true", help="skip ops/profile")


def rules_from(config: SeglakeConfig) -> CleanseRules:
    cleanse = config.cleanse
    return CleanseRules(
        business_start=cleanse.business_start,
        future_tolerance_hours=cleanse.future_tolerance_hours,
        outlier_amount=cleanse.outlier_amount,
        currency_rates=config.currency.rates,
        channels=cleanse.channels,
        excluded_customers=tuple(cleanse.excluded_customers),
        customer_id_case=cleanse.customer_id_case,
    )


def fault_point(name: str) -> None:
    """Test-only fault injection: ``SEGLAKE_FAULT=<name>`` ends the process here, as a crash would."""
    if os.environ.get(FAULT_ENV) == name:
        print(f"{FAULT_ENV}={name}: exiting now", file=sys.stderr, flush=True)
        os._exit(FAULT_EXIT_STATUS)


def repair_incomplete_run(lake: Lake) -> bool:
    """Put back a table that a cleanse run committed to without completing (it died between or
    after its commits): Delta RESTORE to the table's last complete version, said in one line.

    True when a table has no complete version to go back to: this run must rewrite both in full.
    """
    pair = last_cleanse_pair(lake)
    repaired, runs, rewrite = [], set(), False
    for table in CLEANSE_PAIR:
        if not lake.exists(table):
            continue
        state = complete_version(lake, table, pair)
        if state.orphan_version is None:
            continue
        runs.add(state.orphan_run_id)
        if state.version is None:
            rewrite = True
            repaired.append(f"{table} has no complete version (rewritten in full by this run)")
        else:
            lake.restore(table, state.version)
            repaired.append(f"{table} v{state.latest} restored to v{state.version}")
    if repaired:
        log.info(
            f"repaired cleanse run {', '.join(sorted(str(r) for r in runs))}, which committed without completing: "
            f"{'; '.join(repaired)}; its bronze rows are cleansed again"
        )
    return rewrite


def run(lake: Lake, *, full: bool = False, no_profile: bool = False) -> StageResult:
    """Cleanse the bronze rows not yet in silver or the quarantine (all of bronze with ``full``)."""
    config = lake.config
    check_threshold_config(config)
    bronze = lake.read("bronze/receipts", hint="run `seglake generate` or `seglake ingest` first")
    rewrite = repair_incomplete_run(lake)
    full = full or rewrite or not lake.exists("silver/receipts")
    kept: DataFrame | None = None
    todo, appended = bronze, None
    if not full:
        kept = lake.read("silver/receipts")
        todo, appended = rows_to_cleanse(lake, bronze, kept)
    log.info(f"{'full' if full else 'incremental'} run over bronze/receipts v{lake.tables_read['bronze/receipts']}")

    rules = rules_from(config)
    checked = with_reject_reason(with_normalised_values(todo, rules), rules)
    few = appended is not None and appended.count <= FEW_NEW_ROWS
    partitions = None
    if full:  # an incremental run's new rows are few: adaptive execution sizes their shuffle
        partitions, why = lake.partitions_by_size("bronze/receipts", config.cleanse.partition_bytes)
        log.info(f"duplicates by receipt id: {why}")
    classified = with_duplicate_reasons(checked, kept, few=few, partitions=partitions)
    classified = classified.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {r["reject_reason"]: int(r["rows"]) for r in to_reason_counts(classified).collect()}
        rows_in = todo.count()
        clean = counts.pop(None, 0)
        quarantined = sum(counts.values())
        checked_at = utc_now()
        checks = threshold_checks(lake, rows_in, counts, full=full)
        books = books_check(rows_in, clean, quarantined, "counted before writing")
        if not books.passed:
            write_data_quality(lake, [*checks, books], checked_at)
            raise UnbalancedBooksError(
                f"books do not balance: {rows_in:,} rows in, {clean:,} clean + {quarantined:,} "
                "quarantined; nothing written"
            )
        failed = [check for check in checks if not check.passed]
        if failed:
            write_data_quality(lake, [*checks, books], checked_at)
            others = len(failed) - 1
            more = f" (and {others} more failed check{'s' if others > 1 else ''} in ops/data_quality)" if others else ""
            raise UserError(f"data quality threshold failed: {failed[0].failure}; nothing written{more}")
        before = {table: lake.version(table) for table in CLEANSE_PAIR if lake.exists(table)}
        mode, note = ("overwrite" if full else "append"), f"{CLEANSE_COMMIT}{lake.run_id}"
        quarantine = to_quarantine(classified, bronze.columns, lake.run_id, checked_at)
        lake.write(quarantine, "silver/receipts_quarantine", mode=mode, commit_note=note)
        fault_point("cleanse-between-commits")
        lake.write(to_silver_receipts(classified, lake.run_id), "silver/receipts", mode=mode, commit_note=note)
    finally:
        classified.unpersist()

    committed = committed_rows(lake)
    where = " and ".join(f"{table} v{lake.tables_written[table]}" for table in reversed(CLEANSE_PAIR))
    books = books_check(
        rows_in, committed["silver/receipts"], committed["silver/receipts_quarantine"], f"this run's rows in {where}"
    )
    if not books.passed:
        undone = restore_pair(lake, before)
        write_data_quality(lake, [*checks, books], checked_at)
        raise UnbalancedBooksError(
            f"books do not balance in the committed tables: {rows_in:,} rows in, {committed['silver/receipts']:,} "
            f"clean + {committed['silver/receipts_quarantine']:,} quarantined in {where}; {undone}"
        )
    write_data_quality(lake, [*checks, books], checked_at)
    log.info(f"books balance: {rows_in:,} in = {clean:,} clean + {quarantined:,} quarantined (committed in {where})")
    for reason, rows in sorted(counts.items(), key=lambda kv: -kv[1]):
        log.info(f"  {reason:<24} {rows:>12,}")
    if rows_in and not no_profile:
        write_profile(lake, todo, rows_in)
    details = {
        "rows_in": rows_in,
        "clean": clean,
        "quarantined": quarantined,
        "full": full,
        "reasons": dict(sorted(counts.items())),
        "partitions": partitions,
    }
    return StageResult(rows_in=rows_in, rows_out=clean, details=details)


def last_bronze_version(lake: Lake) -> int | None:
    """The bronze/receipts version the last succeeded cleanse run read (None: none recorded)."""
    if not lake.exists("ops/runs"):
        return None
    read = F.col("tables_read")
    is_cleanse = (
        (F.col("job") == "cleanse") & (F.col("status") == "succeeded") & F.map_contains_key(read, "bronze/receipts")
    )
    last = lake.read("ops/runs").where(is_cleanse).orderBy(F.desc("ended_at")).select("tables_read").first()
    return int(last["tables_read"]["bronze/receipts"]) if last else None


def rows_to_cleanse(lake: Lake, bronze: DataFrame, kept: DataFrame) -> tuple[DataFrame, Appended | None]:
    """The bronze rows an incremental run cleanses, and what bronze's log said.

    The rows appended to bronze/receipts since the version the last succeeded cleanse read
    (its Change Data Feed: only the files added since). When that cannot be told (no version
    recorded, history rewritten, no feed), the rows whose ``row_key`` is in neither silver
    nor the quarantine, found by comparing the full tables, said in one line.
    """
    since = last_bronze_version(lake)
    appended = appended_since(lake, "bronze/receipts", since) if since is not None else None
    if appended is not None and appended.reason is None and appended.rows is not None:
        rows = f"{appended.count:,} row{'' if appended.count == 1 else 's'}"
        log.info(f"{rows} appended to bronze/receipts since v{since} (its change data feed)")
        return appended.rows, appended
    why = appended.reason if appended is not None else "no earlier cleanse run recorded the bronze version it read"
    log.info(f"new bronze rows found by comparing row keys with silver and the quarantine: {why}")
    done = kept.select("row_key")
    if lake.exists("silver/receipts_quarantine"):
        done = done.unionByName(lake.read("silver/receipts_quarantine").select("row_key"))
    return bronze.join(done, "row_key", "left_anti"), None


def check_threshold_config(config: SeglakeConfig) -> None:
    """cleanse.thresholds.reason_rates names reject reason codes (checked before anything is read)."""
    unknown = sorted(set(config.cleanse.thresholds.reason_rates) - set(REASONS))
    if unknown:
        raise UserError(
            f"{config.source}: cleanse.thresholds.reason_rates.{unknown[0]}: unknown reason code "
            f"(one of {', '.join(REASONS)})"
        )


def threshold_checks(lake: Lake, rows_in: int, counts: dict[str, int], *, full: bool) -> list[Check]:
    """Quarantine rates per reason and overall, and the drop in rows read, against cleanse.thresholds."""
    limits = lake.config.cleanse.thresholds
    kind = "full" if full else "incremental"
    rates = quarantine_rate_checks(
        rows_in,
        counts,
        REASONS,
        min_rows=limits.min_rows,
        max_quarantine_rate=limits.max_quarantine_rate,
        max_reason_rate=limits.max_reason_rate,
        reason_rates=limits.reason_rates,
    )
    return [*rates, row_drop_check(rows_in, last_rows_read(lake, full=full), kind, limits.max_row_drop)]


def last_rows_read(lake: Lake, *, full: bool) -> tuple[str, int] | None:
    """Run id and rows read of the last succeeded cleanse run of the same kind (full or incremental)."""
    if not lake.exists("ops/runs"):
        return None
    same_kind = (
        (F.col("job") == "cleanse")
        & (F.col("status") == "succeeded")
        & F.col("rows_in").isNotNull()
        & (F.get_json_object("details", "$.full") == F.lit(str(full).lower()))
    )
    last = lake.read("ops/runs").where(same_kind).orderBy(F.desc("ended_at")).select("run_id", "rows_in").first()
    return (last["run_id"], int(last["rows_in"])) if last else None


def books_check(rows_in: int, clean: int, quarantined: int, counted: str) -> Check:
    """books_balance: rows in = clean + quarantined; ``counted`` says where the two were counted."""
    unaccounted = rows_in - clean - quarantined
    detail = f"in={rows_in} clean={clean} quarantined={quarantined}: {counted}"
    return Check("books_balance", rows_in, abs(unaccounted), unaccounted == 0, detail)


def committed_rows(lake: Lake) -> dict[str, int]:
    """Rows carrying this run's id in each table of the pair, read at the version this run committed."""
    return {
        table: lake.read_written(table).where(F.col("cleanse_run_id") == lake.run_id).count() for table in CLEANSE_PAIR
    }


def restore_pair(lake: Lake, before: dict[str, int]) -> str:
    """Put both tables back at their versions from before this run's commits; what was done, in words."""
    restored = []
    for table, version in before.items():
        lake.restore(table, version)
        restored.append(f"{table} v{version}")
    created = [
        f"{table} (created by this run: no complete version, the next run rewrites it)"
        for table in CLEANSE_PAIR
        if table not in before
    ]
    return "; ".join(([f"restored {', '.join(restored)}"] if restored else []) + created)


def write_data_quality(lake: Lake, checks: list[Check], at: dt.datetime) -> None:
    """One ops/data_quality row per check of this run."""
    table = "bronze/receipts"
    rows = [
        (lake.run_id, lake.job, at, table, c.name, c.rows_checked, c.rows_flagged, c.passed, c.detail) for c in checks
    ]
    lake.write(lake.spark.createDataFrame(rows, catalog.table("ops/data_quality").ddl), "ops/data_quality")


def write_profile(lake: Lake, rows: DataFrame, rows_in: int) -> None:
    """Profile the source columns of the rows read; print it as a table."""
    columns = [c for c in rows.columns if c not in ("row_key", "raw_record")]
    fraction = min(1.0, lake.config.cleanse.profile_sample_rows / max(rows_in, 1))
    profile = to_column_profile(rows, columns, fraction).select(
        F.lit(lake.run_id).alias("run_id"),
        F.lit(utc_now()).alias("profiled_at"),
        F.lit("bronze/receipts").alias("table_name"),
        "*",
    )
    lake.write(profile, "ops/profile")
    written = lake.read_written("ops/profile").where(F.col("run_id") == lake.run_id)
    lines = [f"{'column':<16} {'nulls':>7} {'distinct':>10}  {'min':<20} {'max':<20} top values"]
    for r in written.orderBy("column_name").collect():  # one row per column: small
        top = ", ".join(f"{_shown(t['value'])} ({t['rows']})" for t in (r["top_values"] or [])[:3])
        lines.append(
            f"{r['column_name']:<16} {r['null_rate'] or 0:>7.2%} {r['approx_distinct']:>10,}  "
            f"{str(r['min_value'])[:20]:<20} {str(r['max_value'])[:20]:<20} {top[:60]}"
        )
    log.info("profile of the rows read (ops/profile):\n" + "\n".join(lines))


def _shown(value: str | None) -> str:
    """Values as a person can tell them apart: blanks quoted, null as null."""
    if value is None:
        return "null"
    return repr(value) if value.strip() != value or not value else value


JOB = Job(
    name="cleanse",
    summary="Validate bronze receipts into silver; quarantine the rest.",
    run=run,
    as_of_from="none",
    add_arguments=add_arguments,
    options=lambda args: {"full": bool(args.full), "no_profile": bool(args.no_profile)},
)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, argv)


if __name__ == "__main__":
    sys.exit(main())
