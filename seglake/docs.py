"""Print the lake's table reference (README section) from the column-comment registry.

python -m seglake.docs > /tmp/tables.md   # `make docs` rewrites the README block
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from seglake.tables import COMMENTS, TABLE_INFO

BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"


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


def rewrite_readme(readme: Path) -> None:
    text = readme.read_text()
    block = f"{BEGIN}\n{tables_markdown()}{END}"
    readme.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, text, flags=re.S))


if __name__ == "__main__":
    if sys.argv[1:] == ["--readme"]:
        rewrite_readme(Path(__file__).resolve().parent.parent / "README.md")
    else:
        sys.stdout.write(tables_markdown())
