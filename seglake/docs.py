"""Print the lake's table reference (README section) from the column-comment registry.

python -m seglake.docs > /tmp/tables.md   # `make docs` rewrites the README block
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from seglake.tables import COMMENTS, TABLE_INFO
from transforms.cleanse import REASONS

BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"
REASONS_BEGIN, REASONS_END = "<!-- reasons:begin -->", "<!-- reasons:end -->"


def reasons_markdown() -> str:
    rows = ["| reason code | meaning |", "|---|---|"]
    rows += [f"| `{code}` | {meaning} |" for code, meaning in REASONS.items()]
    return "\n".join(rows) + "\n"


def tables_markdown() -> str:
    parts: list[str] = []
    for table, comments in COMMENTS.items():
        if table.startswith("test/"):
            continue
        grain, partition, writer = TABLE_INFO[table]
        parts.append(f"### `{table}`\n\nGrain: {grain}. Partitioned by: {partition}. Written by: {writer}.\n")
        parts.append("| column | meaning |\n|---|---|")
        parts.extend(f"| `{name}` | {text.replace('|', '/')} |" for name, text in comments.items())
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
