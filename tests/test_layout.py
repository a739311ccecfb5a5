"""The layers' dependencies point one way: jobs -> transforms, jobs -> seglake, and
transforms and seglake never import each other (nor jobs)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pyspark.sql import types as T

from seglake import catalog, config
from transforms import cleanse, ingest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"transforms": ("seglake", "jobs"), "seglake": ("transforms", "jobs")}


def imported_packages(path: Path) -> set[str]:
    """Top-level package of every import in the module, wherever it sits (functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_does_not_import_the_layers_it_must_not_know(layer: str) -> None:
    offending = {
        f"{path.relative_to(ROOT)} imports {package}"
        for path in sorted((ROOT / layer).glob("*.py"))
        for package in imported_packages(path) & set(FORBIDDEN[layer])
    }
    assert not offending, sorted(offending)


def test_the_ingest_transform_fills_the_canonical_columns_of_the_catalog() -> None:
    assert tuple(c.name for c in catalog.RECEIPT_COLUMNS) == ingest.RECEIPT_COLUMNS


def test_the_config_accepts_exactly_the_currency_rates_cleanse_s_rate_type_holds() -> None:
    rate_type = catalog.parse_type(cleanse.RATE_TYPE)
    assert isinstance(rate_type, T.DecimalType)
    assert rate_type.scale == config.RATE_MAX_DECIMALS
    assert 10 ** (rate_type.precision - rate_type.scale) == config.RATE_MAX
