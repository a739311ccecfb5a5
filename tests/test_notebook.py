"""notebooks/explore_segments.ipynb runs top to bottom against a small lake (its own kernel and Spark)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

# the notebook runs in its own kernel and JVM against the pipeline lake (conftest.py)
pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "explore_segments.ipynb"


def _run(lake: Path, monkeypatch) -> str:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("SEGLAKE_LAKE_ROOT", str(lake))
    monkeypatch.setenv("PYSPARK_PYTHON", os.sys.executable)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    return "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def test_notebook_runs_top_to_bottom_with_every_table(pipeline_lake: Path, monkeypatch) -> None:
    text = _run(pipeline_lake, monkeypatch)
    assert f"lake: {pipeline_lake}" in text
    assert "not in this lake" not in text
    assert "no segments for" not in text and "no clusters for" not in text and "no migration for" not in text
    assert "Loyal" in text  # the segment table and the pivot by value tier
