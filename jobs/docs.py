"""Print the lake's table reference (README section) from the catalog (seglake/catalog.py).

python -m jobs.docs > /tmp/tables.md   # `make docs` rewrites the README block
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from seglake.catalog import EVERY_JOB, TABLES, Table
from transforms.cleanse import REASONS

BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"
REASONS_BEGIN, REASONS_END = "<!-- reasons:begin -->", "<!-- reasons:end -->"


def reasons_markdown() -> str:
    rows = ["| reason code | meaning |", "|---|---|"]
    rows += [f"| `{code}` | {meaning} |" for code, meaning in REASONS.items()]
    return "\n".join(rows) + "\n"


WRITE_MODES = {
    "append": "rows appended",
    "overwrite": "rewritten whole",
    "replace_partitions": "a run replaces its partitions",
}


def _writers(table: Table) -> str:
    return "every job" if EVERY_JOB in table.written_by else ", ".join(f"`{job}`" for job in table.written_by)


def tables_markdown() -> str:
    parts: list[str] = []
    for table in TABLES:
        partition = ", ".join(f"`{name}`" for name in table.partition_by) or "none"
        parts.append(
            f"### `{table.name}`\n\nGrain: {table.grain}. Partitioned by: {partition}. "
            f"Written by: {_writers(table)} ({WRITE_MODES[table.write_mode]}).\n"
        )
        parts.append("| column | type | meaning |\n|---|---|---|")
        parts.extend(f"| `{c.name}` | `{c.type}` | {c.comment.replace('|', '/')} |" for c in table.columns)
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _replace(text: str, begin: str, end: str, body: str) -> str:
    block = f"{begin}\n{body}{end}"
    return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _m: block, text, flags=re.S)


def rewrite_readme(readme: Path) -> None:
    text = _replace(readme.read_text(), BEGIN, END, tables_markdown())
    readme.write_text(_replace(text, REASONS_BEGIN, REASONS_END, reasons_markdown()))


if __name__ == "__main__":
    if sys.argv[1:] == ["--readme"]:
        rewrite_readme(Path(__file__).resolve().parent.parent / "README.md")
    else:
        sys.stdout.write(tables_markdown())
