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

``scoring`` says whom the scores rank: ``all`` (DESIGN: every customer of the population)
or ``window_buyers`` (the customers with a purchase in the window, frequency >= 1). With
``window_buyers`` the others are not scored and ``no_window_purchase`` names them by
recency::

    no_window_purchase:            # bands in order; the last one has no bound
      - category: Hibernating      # a category above, or a new one with its own campaign
        recency_days_below: 730
      - category: Lost

Rules::

    rules:
      - name: inactive_90_days
        description: No purchase in the last 90 days.
        predicate: recency_days >= 90          # Spark SQL over gold/customer_profile columns
        campaign: win-back e-mail              # optional

Predicates see the profile's columns, the CLV columns of gold/customer_value (``clv_amount``,
``clv_decile``, ``probability_alive``; null without a value run), ``window_days`` (``features.window_days``) and
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
NOT_MAPS = ("rules", "campaigns")  # the other files in it
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


SCORING = ("all", "window_buyers")  # whom the R, F, M scores rank


@dataclass(frozen=True)
class Category:
    name: str
    campaign: str
    cells: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class RecencyBand:
    """Customers without a purchase in the window whose recency_days is below ``below``
    (None: no bound) and not in an earlier band."""

    category: str
    campaign: str
    below: int | None


@dataclass(frozen=True)
class SegmentMap:
    name: str
    file: str
    description: str
    tiles: int
    categories: tuple[Category, ...]
    scoring: str = "all"
    no_window_purchase: tuple[RecencyBand, ...] = ()

    def cells(self) -> dict[str, tuple[str, str]]:
        """Cell -> (category, campaign), every cell expanded."""
        return {cell: (c.name, c.campaign) for c in self.categories for cell in c.cells}

    def bands(self) -> list[tuple[int | None, str, str]]:
        """(recency_days bound or None, category, campaign) of the customers without a window purchase."""
        return [(band.below, band.category, band.campaign) for band in self.no_window_purchase]

    def category_names(self) -> list[str]:
        """Every category the map can assign, in file order (cells first, then new band categories)."""
        names = [c.name for c in self.categories]
        return names + [b.category for b in self.no_window_purchase if b.category not in names]


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
        defaults.stem(p) for p in folder.iterdir() if p.name.endswith(".yaml") and defaults.stem(p) not in NOT_MAPS
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
    keys = {"name", "description", "scoring", "categories", "no_window_purchase"}
    unknown = sorted(set(data) - keys)
    if unknown:
        raise SegmentConfigError(f"{shown}: {unknown[0]}: unknown key ({', '.join(sorted(keys))})")
    scoring = _text(data.get("scoring")) or "all"
    if scoring not in SCORING:
        raise SegmentConfigError(f"{shown}: scoring: {scoring!r} is not one of {', '.join(SCORING)}")
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
        categories.append(
            Category(
                name=name, campaign=campaign, cells=tuple(expanded), description=_text(entry.get("description")) or ""
            )
        )
    bands = _recency_bands(data.get("no_window_purchase"), scoring, categories, shown)
    return SegmentMap(
        name=_text(data.get("name")) or defaults.stem(path),
        file=shown,
        description=_text(data.get("description")) or "",
        tiles=tiles,
        categories=tuple(categories),
        scoring=scoring,
        no_window_purchase=bands,
    )


def _recency_bands(entries: Any, scoring: str, categories: list[Category], shown: str) -> tuple[RecencyBand, ...]:
    """The ``no_window_purchase`` bands: required with ``scoring: window_buyers``, refused without."""
    where = f"{shown}: no_window_purchase"
    if scoring != "window_buyers":
        if entries:
            raise SegmentConfigError(f"{where}: only a map with scoring: window_buyers leaves customers unscored")
        return ()
    if not isinstance(entries, list) or not entries:
        raise SegmentConfigError(
            f"{where}: scoring: window_buyers needs bands naming the customers without a window purchase"
        )
    campaigns = {c.name: c.campaign for c in categories}
    bands: list[RecencyBand] = []
    for index, entry in enumerate(entries, start=1):
        at = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise SegmentConfigError(f"{at}: expected a mapping with category and recency_days_below")
        extra = sorted(set(entry) - {"category", "recency_days_below", "campaign"})
        if extra:
            raise SegmentConfigError(f"{at}: {extra[0]}: unknown key (category, recency_days_below, campaign)")
        name = _text(entry.get("category"))
        if name is None or name == OTHER:
            raise SegmentConfigError(f"{at}: category: a name other than {OTHER} is required")
        campaign = _text(entry.get("campaign")) or campaigns.get(name)
        if campaign is None:
            raise SegmentConfigError(f"{at}: category {name!r} is not in categories: give it a campaign")
        if name in campaigns and _text(entry.get("campaign")) not in (None, campaigns[name]):
            raise SegmentConfigError(f"{at}: category {name!r} has campaign {campaigns[name]!r} above; drop the key")
        below = entry.get("recency_days_below")
        last = index == len(entries)
        if last and below is not None:
            raise SegmentConfigError(f"{at}: the last band takes everyone left: no recency_days_below")
        if not last and (not isinstance(below, int) or isinstance(below, bool) or below < 1):
            raise SegmentConfigError(f"{at}: recency_days_below: expected a whole number of days >= 1")
        if below is not None and bands and bands[-1].below is not None and below <= bands[-1].below:
            raise SegmentConfigError(f"{at}: recency_days_below {below} is not above the band before it")
        bands.append(RecencyBand(category=name, campaign=campaign, below=below))
    return tuple(bands)


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


@dataclass(frozen=True)
class Campaign:
    """How one campaign reaches customers. ``priority`` set: exclusive (lowest number wins)."""

    name: str
    channel: str | None = None
    consent_column: str | None = None
    holdout: float = 0.0
    priority: int | None = None
    listed: bool = True  # False: not in the campaigns file, defaults apply


@dataclass(frozen=True)
class CampaignSettings:
    file: str
    default_holdout: float
    consent: dict[str, str | None]
    campaigns: dict[str, Campaign]

    def of(self, name: str) -> Campaign:
        """The settings of ``name``; a campaign the file does not list gets the defaults."""
        return self.campaigns.get(name) or Campaign(name=name, holdout=self.default_holdout, listed=False)


def _share(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise SegmentConfigError(f"{where}: expected a share >= 0 and < 1 (e.g. 0.1), got {value!r}")
    return float(value)


def load_campaigns(name_or_path: str | None) -> CampaignSettings:
    """Read and validate the campaign settings (``rfm.campaigns``); None: no settings, no holdout."""
    if not name_or_path:
        return CampaignSettings(file="<no campaign settings>", default_holdout=0.0, consent={}, campaigns={})
    path = segments_path(name_or_path)
    shown = defaults.shown(path)
    if not path.is_file():
        raise SegmentConfigError(f"{shown}: campaign settings not found (rfm.campaigns)")
    data = read_yaml_dict(path, shown, SegmentConfigError)
    unknown = sorted(set(data) - {"defaults", "consent", "campaigns"})
    if unknown:
        raise SegmentConfigError(f"{shown}: {unknown[0]}: unknown key (defaults, consent, campaigns)")
    default_section = data.get("defaults") or {}
    if not isinstance(default_section, dict) or set(default_section) - {"holdout"}:
        raise SegmentConfigError(f"{shown}: defaults: expected a mapping with holdout")
    default_holdout = _share(default_section.get("holdout", 0.0), f"{shown}: defaults: holdout")
    consent_section = data.get("consent") or {}
    if not isinstance(consent_section, dict):
        raise SegmentConfigError(f"{shown}: consent: expected channel: profile column (or null)")
    consent: dict[str, str | None] = {}
    for channel, column in consent_section.items():
        if column is not None and _text(column) is None:
            raise SegmentConfigError(f"{shown}: consent: {channel}: expected a profile column name or null")
        consent[str(channel)] = _text(column)
    entries = data.get("campaigns") or []
    if not isinstance(entries, list):
        raise SegmentConfigError(f"{shown}: campaigns: expected a list of campaigns")
    campaigns: dict[str, Campaign] = {}
    priorities: dict[int, str] = {}
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or _text(entry.get("name")) is None:
            raise SegmentConfigError(f"{shown}: campaigns[{index}]: expected a mapping with a name")
        name = str(_text(entry.get("name")))
        where = f"{shown}: campaign {name!r}"
        extra = sorted(set(entry) - {"name", "channel", "holdout", "priority"})
        if extra:
            raise SegmentConfigError(f"{where}: {extra[0]}: unknown key (name, channel, holdout, priority)")
        if name in campaigns:
            raise SegmentConfigError(f"{where}: listed twice")
        channel = _text(entry.get("channel"))
        if channel is not None and channel not in consent:
            known = ", ".join(sorted(consent)) or "none"
            raise SegmentConfigError(f"{where}: channel {channel!r} has no consent entry (consent lists: {known})")
        priority = entry.get("priority")
        if priority is not None:
            if isinstance(priority, bool) or not isinstance(priority, int):
                raise SegmentConfigError(f"{where}: priority: expected a whole number (1 = first)")
            if priority in priorities:
                raise SegmentConfigError(f"{where}: priority {priority} is also {priorities[priority]!r}'s")
            priorities[priority] = name
        holdout = entry.get("holdout", default_holdout)
        campaigns[name] = Campaign(
            name=name,
            channel=channel,
            consent_column=consent.get(channel) if channel else None,
            holdout=_share(holdout, f"{where}: holdout"),
            priority=priority,
        )
    return CampaignSettings(file=shown, default_holdout=default_holdout, consent=consent, campaigns=campaigns)


def check_consent_columns(profile: DataFrame, settings: CampaignSettings) -> None:
    """Every consent column the campaigns use is a boolean profile column."""
    types = {f.name: f.dataType for f in profile.schema.fields}
    for campaign in settings.campaigns.values():
        column = campaign.consent_column
        if column is None:
            continue
        where = f"{settings.file}: consent: {campaign.channel}: {column}"
        if column not in types:
            raise SegmentConfigError(f"{where}: gold/customer_profile has no such column")
        if not isinstance(types[column], T.BooleanType):
            raise SegmentConfigError(f"{where}: is {types[column].simpleString()}, not boolean")
