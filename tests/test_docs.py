"""The README's table reference is the column-comment registry, word for word."""

from __future__ import annotations

from pathlib import Path

from jobs.docs import BEGIN, END, REASONS_BEGIN, REASONS_END, reasons_markdown, tables_markdown
from seglake.cli import JOBS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_table_reference_matches_the_column_comments() -> None:
    text = README.read_text()
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert block == tables_markdown().strip(), "run `make docs` to refresh the README"


def test_readme_reason_codes_match_the_cleansing_rules() -> None:
    text = README.read_text()
    block = text[text.index(REASONS_BEGIN) + len(REASONS_BEGIN) : text.index(REASONS_END)].strip()
    assert block == reasons_markdown().strip(), "run `make docs` to refresh the README"


def test_every_job_is_in_the_readme() -> None:
    text = README.read_text()
    for job in JOBS:
        assert f"`{job}`" in text or f"jobs/{job}.py" in text or f"seglake {job}" in text, job
