"""Segment maps (RFM cell -> category and campaign) and rule segments, from YAML in ``conf/segments/``.

A segment map::

    name: default
    description: ...
    categories:
      - category: Loyal
        cells: ["111", "112", "113", "114"]   # R, F, M score digits, 1 = best
        campaign: weekly promotions

A cell is three digits, R then F then M, each 1..``rfm.tiles``. ``*`` stands for every
score of that letter (``"11*"`` = 111, 112, ... up to the tile count). After expanding,
no cell may be listed twice. Every category needs a campaign; ``Other`` is reserved
for the unlisted cells.

Rules::

    rules:
      - name: inactive_90_days
        description: No purchase in the last 90 days.
        predicate: recency_days >= 90          # Spark SQL over gold/customer_profile columns
        campaign: win-back e-mail              # optional

Predicates see the profile's columns plus ``window_days`` (``features.window_days``) and
population columns: ``population_avg_<col>``, ``population_min_<col>``,
``population_max_<col>`` and ``population_pNN_<col>`` (approximate NN-th percentile, 01..99)
of any numeric profile column over the as-of date's population. All predicates are
checked before anything runs (:func:`check_rules`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from seglake import defaults
from seglake.config import read_yaml_dict
from seglake.defaults import Traversable
from seglake.errors import UserError

SEGMENTS_DIR = "segments"  # in the shipped conf folder (seglake.defaults)
_NAME = re.compile(r"[a-z][a-z0-9_]*")


OTHER = "Other"  # category of a cell the segment map does not list
# population_<avg|min|max|pNN>_<profile column>: a population value a rule may compare with
_POPULATION = re.compile(r"\bpopulation_(avg|min|max|p(?:0[1-9]|[1-9][0-9]))_([A-Za-z_][A-Za-z0-9_]*)\b")


def population_names(predicate: str) -> list[str]:
    """Population columns (``population_avg_<col>``, ``population_p75_<col>``, ...) a predicate uses."""
    return sorted({match.group(0) for match in _POPULATION.finditer(predicate)})


def population_parts(name: str) -> tuple[str, str]:
    """(kind, profile column) of a population column name, e.g. ('p75', 'net_amount_lifetime')."""
    match = _POPULATION.fullmatch(name)
    if match is None:
        raise ValueError(f"not a population column: {name}")
    kind, column = match.groups()
    return kind, column


class SegmentConfigError(UserError):
    """A segment map or rules file that does not validate: names file, entry and problem."""


@dataclass(frozen=True)
class Category:
    name: str
    campaign: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class SegmentMap:
    name: str
    file: str
    description: str
    tiles: int
    categories: tuple[Category, ...]

    def cells(self) -> dict[str, tuple[str, str]]:
        """Cell -> (category, campaign), every cell expanded."""
        return {cell: (c.name, c.campaign) for c in self.categories for cell in c.cells}


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    predicate: str
    campaign: str | None = None
    population: tuple[str, ...] = field(default=())


def segments_path(name_or_path: str) -> Path | Traversable:
    """``NAME`` -> the shipped conf/segments/NAME.yaml; anything with a slash or .yaml is a path
    (in the working directory, else a shipped ``conf/...`` file: :func:`seglake.defaults.find`)."""
    if "/" not in name_or_path and not name_or_path.endswith((".yaml", ".yml")):
        return defaults.conf_file(f"{SEGMENTS_DIR}/{name_or_path}.yaml")
    return defaults.find(name_or_path)


def available_maps() -> list[str]:
    """Names of the shipped segment maps."""
    folder = defaults.conf_file(SEGMENTS_DIR)
    return sorted(
        defaults.stem(p) for p in folder.iterdir() if p.name.endswith(".yaml") and defaults.stem(p) != "rules"
    )


def _text(value: Any) -> str | None:
    return str(value).strip() if isinstance(value, str | int | float) and str(value).strip() else None


def expand_cell(cell: str, tiles: int) -> list[str]:
    """'11*' -> ['111', ..., '11<tiles>']; a malformed cell raises ValueError with the reason."""
    if len(cell) != 3:
        raise ValueError("a cell is three characters: R, F and M score (1 = best) or *")
    choices = []
    for letter, char in zip("RFM", cell, strict=True):
        if char == "*":
            choices.append([str(s) for s in range(1, tiles + 1)])
        elif char.isdigit() and 1 <= int(char) <= tiles:
            choices.append([char])
        else:
            raise ValueError(f"{letter} score {char!r} is not 1..{tiles} (rfm.tiles) or *")
    return ["".join(digits) for digits in itertools.product(*choices)]


def load_segment_map(name_or_path: str, tiles: int) -> SegmentMap:
    """Read and validate a segment map for ``tiles`` tiles per metric."""
    path = segments_path(name_or_path)
    shown = defaults.shown(path)
    if not path.is_file():
        raise SegmentConfigError(f"{shown}: segment map not found (shipped maps: {', '.join(available_maps())})")
    data = read_yaml_dict(path, shown, SegmentConfigError)
    unknown = sorted(set(data) - {"name", "description", "categories"})
    if unknown:
        raise SegmentConfigError(f"{shown}: {unknown[0]}: unknown key (name, description, categories)")
    entries = data.get("categories")
    if not isinstance(entries, list) or not entries:
        raise SegmentConfigError(f"{shown}: categories: expected a list of categories with cells and a campaign")
    owner: dict[str, str] = {}
    categories: list[Category] = []
    for index, entry in enumerate(entries, start=1):
        where = f"{shown}: categories[{index}]"
        if not isinstance(entry, dict):
            raise SegmentConfigError(f"{where}: expected a mapping with category, cells, campaign")
        name = _text(entry.get("category"))
        if name is None:
            raise SegmentConfigError(f"{where}: category: a name is required")
        where = f"{shown}: category {name!r}"
        extra = sorted(set(entry) - {"category", "cells", "campaign", "description"})
        if extra:
            raise SegmentConfigError(f"{where}: {extra[0]}: unknown key (category, cells, campaign, description)")
        if name == OTHER or name in {c.name for c in categories}:
            why = "is reserved for unlisted cells" if name == OTHER else "is listed twice"
            raise SegmentConfigError(f"{where}: the category name {why}")
        campaign = _text(entry.get("campaign"))
        if campaign is None:
            raise SegmentConfigError(f"{where}: campaign: every category needs a campaign")
        cells = entry.get("cells")
        if not isinstance(cells, list) or not cells:
            raise SegmentConfigError(f"{where}: cells: expected a list of cells like '113' or '11*'")
        expanded: list[str] = []
        for cell in cells:
            text = str(cell).strip()
            try:
                matches = expand_cell(text, tiles)
            except ValueError as exc:
                raise SegmentConfigError(f"{where}: cell {text!r}: {exc}") from None
            for match in matches:
                if match in owner:
                    other = "" if owner[match] == name else f" (also in category {owner[match]!r})"
                    raise SegmentConfigError(f"{where}: cell {match!r} is listed twice{other}")
                owner[match] = name
                expanded.append(match)
        categories.append(Category(name=name, campaign=campaign, cells=tuple(expanded)))
    return SegmentMap(
        name=_text(data.get("name")) or defaults.stem(path),
        file=shown,
        description=_text(data.get("description")) or "",
        tiles=tiles,
        categories=tuple(categories),
    )


def load_rules(name_or_path: str | None) -> tuple[str, list[Rule]]:
    """Read and validate a rules file (structure only; :func:`check_rules` checks the SQL)."""
    if not name_or_path:
        return "<no rules>", []
    path = segments_path(name_or_path)
    shown = defaults.shown(path)
    if not path.is_file():
        raise SegmentConfigError(f"{shown}: rules file not found (rfm.rules)")
    data = read_yaml_dict(path, shown, SegmentConfigError)
    unknown = sorted(set(data) - {"rules"})
    if unknown:
        raise SegmentConfigError(f"{shown}: {unknown[0]}: unknown key (rules)")
    entries = data.get("rules") or []
    if not isinstance(entries, list):
        raise SegmentConfigError(f"{shown}: rules: expected a list of rules")
    rules: list[Rule] = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise SegmentConfigError(f"{shown}: rules[{index}]: expected a mapping with name, description, predicate")
        name = _text(entry.get("name"))
        if name is None or not _NAME.fullmatch(name):
            raise SegmentConfigError(
                f"{shown}: rules[{index}]: name: expected lower-case letters, digits and _ (got {entry.get('name')!r})"
            )
        where = f"{shown}: rule {name}"
        extra = sorted(set(entry) - {"name", "description", "predicate", "campaign"})
        if extra:
            raise SegmentConfigError(f"{where}: {extra[0]}: unknown key (name, description, predicate, campaign)")
        if name in {r.name for r in rules}:
            raise SegmentConfigError(f"{where}: the rule name is listed twice")
        description, predicate = _text(entry.get("description")), _text(entry.get("predicate"))
        if description is None:
            raise SegmentConfigError(f"{where}: description: say in words who the segment holds")
        if predicate is None:
            raise SegmentConfigError(f"{where}: predicate: a Spark SQL condition over profile columns is required")
        campaign = entry.get("campaign")
        if campaign is not None and _text(campaign) is None:
            raise SegmentConfigError(f"{where}: campaign: expected a name or no key")
        rules.append(
            Rule(
                name=name,
                description=description,
                predicate=predicate,
                campaign=_text(campaign),
                population=tuple(population_names(predicate)),
            )
        )
    return shown, rules


_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def rule_frame(profile: DataFrame, rules: list[Rule], window_days: int) -> DataFrame:
    """The profile's schema (no rows) plus ``window_days`` and the population columns the rules use."""
    extra = {"window_days": F.lit(window_days)}
    extra.update({name: F.lit(None).cast("double") for rule in rules for name in rule.population})
    return profile.limit(0).withColumns(extra)


def check_rules(profile: DataFrame, rules: list[Rule], *, file: str, window_days: int) -> None:
    """Every predicate parses, resolves on the profile's columns and is boolean. Analysis only."""
    types = {f.name: f.dataType for f in profile.schema.fields}
    for rule in rules:
        for name in rule.population:
            column = name.split("_", 2)[2]
            if column not in types:
                raise SegmentConfigError(f"{file}: rule {rule.name}: {name}: the profile has no column {column!r}")
            if not isinstance(types[column], _NUMERIC):
                raise SegmentConfigError(
                    f"{file}: rule {rule.name}: {name}: {column} is {types[column].simpleString()}, not a number"
                )
    frame = rule_frame(profile, rules, window_days)
    for rule in rules:
        where = f"{file}: rule {rule.name}"
        try:
            condition = F.expr(rule.predicate)
            data_type = frame.select(condition.alias("matches")).schema["matches"].dataType
            if not isinstance(data_type, T.BooleanType):
                raise SegmentConfigError(
                    f"{where}: predicate is {data_type.simpleString()}, not a condition (true/false): {rule.predicate}"
                )
            frame.where(condition).schema  # noqa: B018  (analysis only: aggregates and windows fail here)
        except PySparkException as exc:
            kind = "does not parse" if "PARSE" in type(exc).__name__.upper() else "does not fit the profile"
            raise SegmentConfigError(f"{where}: predicate {kind}: {_reason(exc)}") from None


def campaign_slug(campaign: str) -> str:
    """File-name form of a campaign: lower case, runs of other characters -> '-'."""
    return re.sub(r"[^a-z0-9]+", "-", campaign.lower()).strip("-") or "campaign"
