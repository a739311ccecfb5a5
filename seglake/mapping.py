"""Source column mappings (``conf/mappings/<name>.yaml``): model, loader and checks.

A mapping tells ``ingest`` how to read one receipt source and how each canonical
``bronze/receipts`` column is made from it (a source column, a Spark SQL expression
or a constant). Every problem becomes a :class:`MappingError`: one line naming the
mapping file, the key and what is wrong, raised before anything is written.
See ``docs/mappings.md`` for every key.
"""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seglake import catalog, defaults
from seglake.config import read_yaml_dict
from seglake.defaults import Traversable
from seglake.errors import UserError

MAPPINGS_DIR = "mappings"  # in the shipped conf folder (seglake.defaults)

# canonical receipt columns a mapping may fill (bronze/receipts minus lineage)
RECEIPT_COLUMNS = tuple(column.name for column in catalog.RECEIPT_COLUMNS)
# line-grain inputs: amount defaults to quantity x unit_price, item_count to quantity
LINE_COLUMNS = ("quantity", "unit_price")
REQUIRED_COLUMNS = ("receipt_id", "customer_id", "receipt_ts")
CUSTOMER_COLUMNS = (
    "customer_id",
    "signup_date",
    "birth_year",
    "age_band",
    "gender",
    "region",
    "is_loyalty_member",
    "has_email_opt_in",
)
FORMATS = ("csv", "parquet", "json", "delta")
CORRUPT_COLUMN = "_corrupt_record"
# pattern letters that carry a zone or offset: such text is an instant already
_ZONE_LETTERS = re.compile(r"[VzOXxZ]")


class MappingError(UserError):
    """A mapping that cannot be used: names the file, the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ColumnSpec(_Strict):
    """Where a canonical value comes from: a source column or a Spark SQL expression."""

    column: str | None = None
    expr: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ColumnSpec:
        if (self.column is None) == (self.expr is None):
            raise ValueError("give exactly one of column: or expr:")
        return self

    def as_column(self) -> Any:
        """The Spark column (parsing the expression; may raise ParseException)."""
        return F.col(f"`{self.column}`") if self.column is not None else F.expr(str(self.expr))


def _column_specs(value: Any) -> Any:
    """A plain string is a source column name; a mapping is {column: ...} or {expr: ...}."""
    if not isinstance(value, dict):
        return value
    return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}


class SourceSpec(_Strict):
    format: Literal["csv", "parquet", "json", "delta"]
    path: str | None = Field(None, description="File, folder, glob or table path; --source overrides it.")
    options: dict[str, str] = Field(default_factory=dict, description="Spark reader options.")

    @field_validator("options", mode="before")
    @classmethod
    def _options_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class TimestampSpec(_Strict):
    format: str | None = Field(
        "yyyy-MM-dd HH:mm:ss", description="Spark datetime pattern of receipt_ts text; null: ISO-8601 forms."
    )
    time_zone: str = Field("UTC", description="Zone of the source's local times (IANA id).")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if re.fullmatch(r"[+-]\d{2}:\d{2}", value):
            return value
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA id such as Europe/London") from None
        return value

    @property
    def has_zone(self) -> bool:
        """True when the pattern parses an offset or zone itself (time_zone is then unused)."""
        literal_free = re.sub(r"'[^']*'", "", self.format or "")
        return bool(_ZONE_LETTERS.search(literal_free))


class LookupSpec(_Strict):
    source: SourceSpec
    key: str = Field(description="Column present in both the source and the lookup.")
    columns: list[str] = Field(min_length=1, description="Lookup columns added to the source.")

    @model_validator(mode="after")
    def _has_path(self) -> LookupSpec:
        if not self.source.path:
            raise ValueError("a lookup needs source.path")
        return self


class CustomersSpec(_Strict):
    source: SourceSpec
    columns: dict[str, ColumnSpec]
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    attributes: list[str] | None = Field(
        None, description="Source columns kept in `attributes`; null: every unmapped column."
    )
    date_format: str = "yyyy-MM-dd"

    @field_validator("columns", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        return _column_specs(value)

    @model_validator(mode="after")
    def _known_columns(self) -> CustomersSpec:
        _check_names(self.columns, self.constants, CUSTOMER_COLUMNS, "customers.")
        if "customer_id" not in self.columns:
            raise ValueError("customers.columns.customer_id is required")
        return self


class Mapping(_Strict):
    description: str | None = None
    source: SourceSpec
    grain: Literal["receipt", "line"] = "receipt"
    timestamp: TimestampSpec = Field(default_factory=TimestampSpec)
    columns: dict[str, ColumnSpec]
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    exclude_lines: str | None = Field(
        None, description="Spark SQL predicate on source columns: matching lines are left out."
    )
    lookups: list[LookupSpec] = Field(default_factory=list)
    customers: CustomersSpec | None = None

    # set by the loader, not by users
    name: str = Field("mapping", exclude=True)
    file: str = Field("<inline>", exclude=True)

    @field_validator("columns", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        return _column_specs(value)

    @model_validator(mode="after")
    def _known_columns(self) -> Mapping:
        allowed = RECEIPT_COLUMNS + (LINE_COLUMNS if self.grain == "line" else ())
        _check_names(self.columns, self.constants, allowed, "")
        given = set(self.columns) | set(self.constants)
        for name in REQUIRED_COLUMNS:
            if name not in given:
                raise ValueError(f"columns.{name} is required")
        if "amount" not in given and not {"quantity", "unit_price"} <= given:
            raise ValueError("columns.amount is required (or quantity and unit_price, line grain)")
        if self.timestamp.has_zone and self.timestamp.time_zone != "UTC":
            raise ValueError("timestamp.time_zone must be UTC when timestamp.format has an offset")
        return self

    @property
    def line_grain(self) -> bool:
        return self.grain == "line"


def _check_names(
    columns: dict[str, ColumnSpec], constants: dict[str, Any], allowed: tuple[str, ...], where: str
) -> None:
    for section, names in (("columns", columns), ("constants", constants)):
        for name in names:
            if name not in allowed:
                raise ValueError(f"{where}{section}.{name}: not a canonical column; one of {', '.join(allowed)}")
    both = sorted(set(columns) & set(constants))
    if both:
        raise ValueError(f"{where}{both[0]} is both in columns and in constants; keep one")


def mapping_path(name_or_path: str) -> Path | Traversable:
    """``NAME`` -> the shipped conf/mappings/NAME.yaml; anything with a slash or .yaml is a path
    (in the working directory, else a shipped ``conf/...`` file: :func:`seglake.defaults.find`)."""
    if "/" in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        return defaults.find(name_or_path)
    return defaults.conf_file(f"{MAPPINGS_DIR}/{name_or_path}.yaml")


def available_mappings() -> list[str]:
    """Names of the shipped mappings."""
    return sorted(defaults.stem(p) for p in defaults.conf_file(MAPPINGS_DIR).iterdir() if p.name.endswith(".yaml"))


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(p) for p in error["loc"]) or "<top>"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "literal_error":
        message += f" (got {error['input']!r})"
    return loc, message


def load_mapping(name_or_path: str) -> Mapping:
    """Read and validate a mapping; a :class:`MappingError` names the file and key."""
    path = mapping_path(name_or_path)
    shown = defaults.shown(path)
    if not path.is_file():
        raise MappingError(f"{shown}: mapping not found (shipped mappings: {', '.join(available_mappings())})")
    data = read_yaml_dict(path, shown, MappingError)
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        loc, message = _describe(dict(exc.errors()[0]))
        prefix = "" if loc == "<top>" else f"{loc}: "  # model checks name their key
        raise MappingError(f"{shown}: {prefix}{message}") from None
    mapping.name, mapping.file = defaults.stem(path), shown
    return mapping


def check_columns(
    frame: DataFrame, columns: dict[str, ColumnSpec], *, file: str, section: str, extra: dict[str, str] | None = None
) -> None:
    """Each column spec must name a column of ``frame`` or be an expression that parses
    and resolves on it. Analysis only: nothing is read. ``extra`` adds key -> predicate."""
    available = [c for c in frame.columns if not c.startswith("_")]
    checks = {f"{section}.{k}": v for k, v in columns.items()}
    for key, spec in checks.items():
        if spec.column is not None and spec.column not in frame.columns:
            raise MappingError(
                f"{file}: {key}: source has no column {spec.column!r} (available: {', '.join(available)})"
            )
    exprs = {k: v.expr for k, v in checks.items() if v.expr is not None}
    exprs.update(extra or {})
    for key, text in exprs.items():
        try:
            frame.select(F.expr(str(text))).schema  # noqa: B018  (analysis only)
        except ParseException as exc:
            reason = str(exc).strip().splitlines()[0]
            raise MappingError(f"{file}: {key}: expression does not parse: {reason}") from None
        except AnalysisException as exc:
            reason = str(exc).strip().splitlines()[0]
            raise MappingError(
                f"{file}: {key}: expression does not fit the source: {reason} (available: {', '.join(available)})"
            ) from None
