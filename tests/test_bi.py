"""BI readiness: every gold table opens without Spark (delta-rs, the `deltalake` package),
has rows, and carries a comment on every column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deltalake import DeltaTable

from seglake import catalog

# these read the pipeline lake: a whole generated lake through every stage (conftest.py)
pytestmark = pytest.mark.slow

GOLD = [table.name for table in catalog.TABLES if table.layer == "gold"]


def _existing_gold(lake: Path) -> list[str]:
    return [table for table in GOLD if DeltaTable.is_deltatable(str(lake / table))]


def test_every_gold_table_opens_without_spark_with_rows_and_column_comments(pipeline_lake: Path) -> None:
    existing = _existing_gold(pipeline_lake)
    assert existing == GOLD, f"missing: {sorted(set(GOLD) - set(existing))}"
    for table in existing:
        delta = DeltaTable(str(pipeline_lake / table))
        rows = delta.to_pyarrow_dataset().count_rows()
        assert rows > 0, f"{table}: no rows"  # the pipeline lake has two as-of dates: migration too
        fields = delta.schema().fields
        uncommented = [f.name for f in fields if not str((f.metadata or {}).get("comment", "")).strip()]
        assert not uncommented, f"{table}: columns without a comment: {uncommented}"
        assert [f.name for f in fields] == catalog.table(table).column_names, (
            f"{table}: columns differ from the catalog"
        )


def test_the_gold_tables_a_run_wrote_are_all_readable(pipeline_lake: Path) -> None:
    runs = DeltaTable(str(pipeline_lake / "ops/runs")).to_pyarrow_table(columns=["job", "status", "tables_written"])
    written: set[str] = set()
    for row in runs.to_pylist():
        if row["status"] == "succeeded":
            written |= {name for name, _version in (row["tables_written"] or []) if name.startswith("gold/")}
    assert {"gold/customer_profile", "gold/cohort_retention"} <= written
    assert written <= set(_existing_gold(pipeline_lake)), json.dumps(sorted(written))
