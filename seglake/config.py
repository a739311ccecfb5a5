"""Configuration: YAML file + ``--set`` overrides + ``${ENV}`` expansion, validated by pydantic.

Every problem becomes a :class:`ConfigError` with one line naming the file (or the
``--set`` flag), the dotted key and what was expected, raised before Spark starts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from seglake import defaults
from seglake.defaults import Traversable
from seglake.errors import ConfigError

DEFAULT_CONFIG = "local.yaml"  # in the shipped conf folder (seglake.defaults)

DELTA_PACKAGE = "io.delta:delta-spark_4.1_2.13:4.4.0"
# A currency rate must fit cleanse's rate type, decimal(19,12) (transforms.cleanse.RATE_TYPE):
# below 10^7, at most 12 decimal places (tests/test_layout.py checks the two agree).
RATE_MAX_DECIMALS, RATE_MAX = 12, Decimal(10) ** 7


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class LakeConfig(_Section):
    root: str = Field("./lake", description="Lake root: a folder, or any Hadoop URI (s3a://, abfss://).")


class SparkConfig(_Section):
    app_name: str = "seglake"
    master: str | None = Field(None, description="Spark master. Null: spark-submit's, else local[*].")
    timezone: str = Field("UTC", description="spark.sql.session.timeZone")
    console_progress: Literal["auto", "on", "off"] = "auto"
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"
    delta_package: str = Field(DELTA_PACKAGE, description="Maven coordinate of the Delta jar.")
    jars_dir: str | None = Field(
        None,
        description="Folder holding resolved Delta jars (filled by `make setup`). "
        "Null: $SEGLAKE_JARS_DIR or ~/.cache/seglake/jars.",
    )
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings.")

    @model_validator(mode="before")
    @classmethod
    def _normalise_yaml_scalars(cls, data: Any) -> Any:
        """YAML reads on/off/true as booleans; Spark settings are strings."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("console_progress"), bool):
            data["console_progress"] = "on" if data["console_progress"] else "off"
        if isinstance(data.get("conf"), dict):
            data["conf"] = {
                str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in data["conf"].items()
            }
        return data


class DefectRates(_Section):
    """Share of generated receipts given each defect (each kind on its own)."""

    null_customer: float = Field(0.003, ge=0, le=0.2)
    customer_id_variant: float = Field(0.003, ge=0, le=0.2)
    duplicate_row: float = Field(0.003, ge=0, le=0.2)
    reused_receipt_id: float = Field(0.002, ge=0, le=0.2)
    future_timestamp: float = Field(0.001, ge=0, le=0.2)
    before_business_start: float = Field(0.001, ge=0, le=0.2)
    zero_amount: float = Field(0.002, ge=0, le=0.2)
    outlier_amount: float = Field(0.001, ge=0, le=0.2)
    unknown_currency: float = Field(0.002, ge=0, le=0.2)
    unknown_channel: float = Field(0.002, ge=0, le=0.2)

    @model_validator(mode="after")
    def _total_below_one(self) -> DefectRates:
        if sum(self.model_dump().values()) >= 0.5:
            raise ValueError("defect rates add up to 0.5 or more")
        return self


class GenerateConfig(_Section):
    customers: int = Field(200_000, ge=1)
    receipts: int = Field(2_000_000, ge=1, description="Target receipts (met in expectation).")
    start_date: dt.date = dt.date(2022, 1, 1)
    end_date: dt.date = dt.date(2024, 12, 31)
    seed: int = 42
    dirty: bool = Field(True, description="Inject defects at `defect_rates`.")
    dirty_rate: float | None = Field(
        None, ge=0, lt=0.5, description="Total defect share; scales `defect_rates` to add up to it."
    )
    defect_rates: DefectRates = Field(default_factory=DefectRates)
    partitions: int | None = Field(
        None, ge=1, description="Customer partitions. Null: one per 2M receipts, at least 2 per core."
    )

    def effective_defect_rates(self) -> dict[str, float]:
        """Per-kind defect rates, scaled to ``dirty_rate`` when set; empty when not dirty."""
        rates = self.defect_rates.model_dump()
        if not self.dirty or self.dirty_rate == 0:
            return {}
        if self.dirty_rate is not None:
            total = sum(rates.values()) or 1.0
            rates = {kind: rate * self.dirty_rate / total for kind, rate in rates.items()}
        return rates

    @model_validator(mode="after")
    def _dates_in_order(self) -> GenerateConfig:
        if self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        if self.receipts < self.customers:
            raise ValueError("receipts must be at least customers (every customer buys once)")
        return self


class CurrencyConfig(_Section):
    base: str = Field("EUR", description="Base currency of silver and gold amounts.")
    rates: dict[str, Decimal] = Field(
        default_factory=lambda: {"EUR": Decimal("1.0"), "USD": Decimal("0.92"), "GBP": Decimal("1.17")},
        description="Value of one unit of each source currency in the base currency (exact decimals: "
        "below 10,000,000, at most 12 decimal places).",
    )

    @field_validator("rates")
    @classmethod
    def _rates_fit_the_rate_type(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in rates.items():
            if rate <= 0:
                raise ValueError(f"the rate of {code} must be positive (got {rate})")
            if rate >= RATE_MAX or -int(rate.normalize().as_tuple().exponent) > RATE_MAX_DECIMALS:
                raise ValueError(
                    f"the rate of {code} must be below {RATE_MAX:,} with at most {RATE_MAX_DECIMALS} "
                    f"decimal places (got {rate})"
                )
        return rates

    @model_validator(mode="after")
    def _base_has_rate_one(self) -> CurrencyConfig:
        if self.rates.get(self.base) != 1:
            raise ValueError(f"rates must give the base currency {self.base} the rate 1.0")
        return self


class CleanseThresholds(_Section):
    """When a cleanse run fails (and writes nothing): quarantine shares and a drop in rows read."""

    min_rows: int = Field(1000, ge=0, description="Quarantine rates are judged once a run reads this many rows.")
    max_quarantine_rate: float = Field(0.25, ge=0, le=1, description="Largest share of the rows read quarantined.")
    max_reason_rate: float = Field(
        0.20, ge=0, le=1, description="Largest share of the rows read one reject reason may take."
    )
    reason_rates: dict[str, float] = Field(
        default_factory=dict, description="Reason code -> its largest share, instead of max_reason_rate."
    )
    max_row_drop: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Largest drop in rows read against the last succeeded cleanse run of the same kind (full "
        "or incremental), as a share of its rows. Null: recorded, not judged.",
    )

    @field_validator("reason_rates")
    @classmethod
    def _shares(cls, rates: dict[str, float]) -> dict[str, float]:
        # the reason codes live with the rules (transforms.cleanse.REASONS): the cleanse job checks the names
        if any(not 0 <= rate <= 1 for rate in rates.values()):
            raise ValueError("every rate must be a share from 0 to 1")
        return rates


def partition_bytes_field(table: str, shuffle: str) -> Any:
    """A stage's ``partition_bytes`` setting (:func:`seglake.lake.partitions_for_bytes`)."""
    return Field(
        128 * 1024 * 1024,
        ge=1,
        description=f"Bytes of {table} per partition of {shuffle}: spark.sql.shuffle.partitions, raised to one "
        "partition per this many bytes (fewer, larger partitions spill to disk); null: spark.sql.shuffle.partitions "
        "as is.",
    )


class CleanseConfig(_Section):
    business_start: dt.date = Field(dt.date(2000, 1, 1), description="Receipts before this day are rejected.")
    future_tolerance_hours: float = Field(24.0, ge=0, description="Slack for receipts stamped after their ingestion.")
    outlier_amount: float = Field(
        1_000_000.0, gt=0, description="Receipts with |amount| in base currency above are rejected."
    )
    excluded_customers: list[str] = Field(
        default_factory=list, description="Test or staff accounts (compared after normalising)."
    )
    customer_id_case: Literal["upper", "lower"] = "upper"
    channels: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "store": ["store", "shop", "instore", "in-store", "pos", "retail"],
            "online": ["online", "web", "ecommerce", "e-commerce", "www", "internet"],
            "app": ["app", "mobile", "ios", "android", "mobile_app"],
        },
        description="Canonical channel -> source words (compared trimmed, lower case).",
    )
    profile_sample_rows: int = Field(1_000_000, ge=1000, description="Rows sampled for the top values in ops/profile.")
    partition_bytes: int | None = partition_bytes_field("bronze/receipts", "a full run's shuffle by receipt id")
    thresholds: CleanseThresholds = Field(default_factory=CleanseThresholds)

    @model_validator(mode="after")
    def _channels_are_canonical(self) -> CleanseConfig:
        unknown = set(self.channels) - {"store", "online", "app"}
        if unknown:
            raise ValueError(f"unknown canonical channel {sorted(unknown)[0]} (store, online, app)")
        return self


class ValueTiersConfig(_Section):
    """Longevity (days since the first purchase) x recency grid -> tier names.

    ``longevity_days`` and ``recency_days`` are ascending band bounds: band 0 holds
    values below the first bound, band i values in [bound i-1, bound i). ``tiers`` has
    one row per longevity band (shortest first) and one name per recency band (most
    recent first).
    """

    longevity_days: list[int] = Field(default_factory=lambda: [365])
    recency_days: list[int] = Field(default_factory=lambda: [90])
    tiers: list[list[str]] = Field(
        default_factory=lambda: [["New Active", "New Lapsing"], ["Loyal Active", "Loyal Lapsing"]]
    )

    @model_validator(mode="after")
    def _grid_fits_bounds(self) -> ValueTiersConfig:
        for name, bounds in (("longevity_days", self.longevity_days), ("recency_days", self.recency_days)):
            if any(b <= a for a, b in itertools.pairwise(bounds)) or any(b < 0 for b in bounds):
                raise ValueError(f"{name} must be ascending, non-negative day counts")
        rows, columns = len(self.longevity_days) + 1, len(self.recency_days) + 1
        if len(self.tiers) != rows or any(len(row) != columns for row in self.tiers):
            raise ValueError(f"tiers must be {rows} rows (longevity bands) of {columns} names (recency bands)")
        return self


class FeaturesConfig(_Section):
    window_days: int = Field(365, ge=1, description="Review window W in days.")
    recency_last_k: int = Field(5, ge=1, description="k of LRFMP recency: mean days since the last k purchases.")
    partition_bytes: int | None = partition_bytes_field("silver/receipts", "the rollup and profile")
    value_tiers: ValueTiersConfig = Field(default_factory=ValueTiersConfig)


class CohortsConfig(_Section):
    period: Literal["day", "week", "month", "year"] = Field("month", description="Cohort and activity period.")


class RfmConfig(_Section):
    tiles: int = Field(4, ge=2, le=9, description="Tiles per metric (quartiles); cells hold one digit per score.")
    relative_error: float = Field(0.001, gt=0, lt=1, description="approxQuantile relative error (monetary).")
    segment_map: str = Field(
        "default", min_length=1, description="Segment map: a name in conf/segments/ or a path to a YAML file."
    )
    rules: str | None = Field(
        "conf/segments/rules.yaml", description="Rule segments YAML (name or path); null: no rule segments."
    )
    campaigns: str | None = Field(
        "campaigns",
        description="Campaign settings YAML (channel and consent, holdout, priority; name in conf/segments/ or "
        "a path); null: no consent filter, no holdout, no priorities.",
    )
    histogram_max_values: int | None = Field(
        None,
        exclude=True,  # no effect, so not in the config digest
        description="No longer used: recency and frequency thresholds are always exact. Accepted so that "
        "configs that still set it load; the segment job logs that it is ignored.",
    )


# Profile sections a config can pick whole; names as in gold/customer_profile.
FEATURE_SECTIONS: dict[str, list[str]] = {
    "lrfmp": ["length_days", "recency_days", "frequency", "monetary_amount", "periodicity_days"],
    "spend": ["gross_spend_window", "avg_receipt_amount", "max_receipt_amount_window", "spend_trend_ratio"],
    "basket": ["avg_items_per_order", "avg_item_amount", "categories_window"],
    "channels": ["store_order_share", "online_order_share", "app_order_share"],
    "promotions": ["coupon_order_share", "discount_share"],
    "returns": ["return_rate_count"],
}

# Skewed features that get signum(x) * log1p(|x|) (log1p for the non-negative ones).
DEFAULT_LOG_FEATURES = [
    "length_days",
    "recency_days",
    "frequency",
    "monetary_amount",
    "periodicity_days",
    "gross_spend_window",
    "avg_receipt_amount",
    "max_receipt_amount_window",
    "spend_trend_ratio",
    "avg_items_per_order",
    "avg_item_amount",
    "categories_window",
]

# Shares and rates: null only when the customer has no purchase in the window -> 0.
DEFAULT_ZERO_FILL = [
    "store_order_share",
    "online_order_share",
    "app_order_share",
    "coupon_order_share",
    "discount_share",
    "return_rate_count",
    "return_rate_amount",
]


class ClustersConfig(_Section):
    """k-means on gold/customer_profile (see transforms/clustering.py for the preparation)."""

    features: list[str] | None = Field(
        None, description="Profile columns to cluster on. Null: the columns of `sections`."
    )
    sections: list[str] = Field(
        default_factory=lambda: ["lrfmp", "spend", "basket", "channels", "promotions", "returns"],
        description="Whole profile sections (FEATURE_SECTIONS) when `features` is null.",
    )
    log_features: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LOG_FEATURES),
        description="Skewed features transformed by signum(x) * log1p(|x|) (those among the features).",
    )
    zero_fill: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ZERO_FILL),
        description="Features whose null means 'no purchase in the window' -> 0; other nulls -> median.",
    )
    k: int | None = Field(None, ge=2, description="Fixed number of clusters. Null: search k_min..k_max.")
    k_min: int = Field(3, ge=2)
    k_max: int = Field(10, ge=2)
    sample_rows: int = Field(
        100_000, ge=100, description="Customers sampled for the k search (its fits and silhouettes)."
    )
    seed: int = 42
    algorithm: Literal["kmeans", "bisecting_kmeans"] = "kmeans"
    max_iter: int = Field(20, ge=1)
    tol: float = Field(
        0.003,
        gt=0,
        description="KMeans stops when every centre moves less than this (standardised units); 0.003 is no "
        "looser than scikit-learn's default tol=1e-4 (sum of squared centre shifts over unit variance) for k <= 11.",
    )
    solver: Literal["auto", "row", "block"] = Field(
        "block", description="Solver of the KMeans fits: block (BLAS level 3), row or auto."
    )
    top_features: int = Field(3, ge=1, description="Top distinguishing features kept per cluster.")
    name_words: int = Field(3, ge=1, description="Words in a generated cluster name (more on a collision).")
    name_min_abs_z: float = Field(0.25, ge=0, description="|z| a feature needs to give a name word.")
    max_match_distance: float | None = Field(
        None, gt=0, description="Largest centroid distance that keeps a previous id. Null: no limit."
    )
    labels_file: str = Field(
        "conf/cluster_labels.yaml",
        description="Analyst names and notes by cluster id; a relative path is looked up in the working "
        "folder, then (conf/...) among the shipped files. A missing file means no labels.",
    )

    @model_validator(mode="after")
    def _valid_choices(self) -> ClustersConfig:
        if self.k_min > self.k_max:
            raise ValueError("k_min must not be above k_max")
        unknown = [s for s in self.sections if s not in FEATURE_SECTIONS]
        if unknown:
            raise ValueError(f"unknown section {unknown[0]} (one of {', '.join(FEATURE_SECTIONS)})")
        if self.features is not None and not self.features:
            raise ValueError("features must name at least one column (or be null to use sections)")
        if self.features is None and not self.sections:
            raise ValueError("sections must name at least one section when features is null")
        return self

    @property
    def feature_columns(self) -> list[str]:
        """The explicit ``features`` if given, else the columns of ``sections`` in order (no repeats)."""
        if self.features:
            return list(dict.fromkeys(self.features))
        return list(dict.fromkeys(name for section in self.sections for name in FEATURE_SECTIONS[section]))


class OffersConfig(_Section):
    """Next-best-offer (gold/next_best_offer, written by ``seglake segment``)."""

    method: Literal["group_lift", "item_cooccurrence"] = Field(
        "group_lift",
        description="'group_lift': the categories the customer's group (group_by) over-buys, for a few broad "
        "categories (departments); 'item_cooccurrence': per customer, the categories most often bought with the "
        "ones they bought (customers who bought x also bought y), for many fine categories such as products "
        "(BENCHMARKS.md 'offers-online-retail').",
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["category", "top_category"],
        min_length=1,
        description="What makes the groups whose over-bought categories are offered: 'category' (the RFM segment) "
        "and/or gold/customer_profile columns; default segment x top_category (the best grouping measured, "
        "BENCHMARKS.md 'offers').",
    )
    top_n: int = Field(3, ge=1, le=20, description="Offers per customer.")
    min_group_customers: int = Field(
        30, ge=1, description="Smaller groups offer the popular categories only (their shares are noise)."
    )
    min_category_buyers: int = Field(
        30, ge=1, description="A lift offer needs this many buyers of the category in the group (minimum support)."
    )
    neighbours: int = Field(
        50, ge=1, description="item_cooccurrence: each category's most similar categories that may be offered."
    )
    min_together: int = Field(
        2, ge=1, description="item_cooccurrence: a pair of categories counts when this many customers bought both."
    )
    enabled: bool = Field(True, description="false: no gold/next_best_offer, no offer_category in the audiences.")


class ValueConfig(_Section):
    """Customer lifetime value on gold/customer_profile: BG/NBD purchases x Gamma-Gamma spend (``seglake value``)."""

    horizon_days: int = Field(
        365, ge=1, description="CLV horizon: expected purchases and value over this many days after the as-of date."
    )
    time_unit_days: float = Field(
        7.0,
        gt=0,
        description="Days per model time unit (7 = weeks). The histories are rounded to whole units, so a longer "
        "unit means fewer distinct (x, t_x, T) triples to fit on (and coarser timing).",
    )
    spend_significant_digits: int = Field(
        3,
        ge=1,
        le=9,
        description="The Gamma-Gamma fit groups customers by mean spend rounded to this many significant digits "
        "(3: within 0.5%); scoring uses each customer's own mean spend.",
    )
    relative_error: float = Field(
        0.001, gt=0, lt=1, description="approxQuantile relative error of the clv_decile thresholds."
    )
    max_distinct_triples: int = Field(
        2_000_000,
        ge=1,
        description="Largest number of distinct (x, t_x, T) histories collected to the driver for the fit; "
        "above it the job stops and says to choose a longer time_unit_days.",
    )


class ReportConfig(_Section):
    root: str | None = Field(
        None,
        description="Folder or Hadoop URI (s3a://, abfss://, hdfs://) for segmentation_<as_of>.html. "
        "Null: <lake.root>/reports, so the report lives with the lake (not on the driver's disk).",
    )
    recent_cohorts: int = Field(12, ge=1, le=120, description="Cohorts (latest first) in the retention heatmap.")

    @model_validator(mode="before")
    @classmethod
    def _renamed_dir(cls, data: Any) -> Any:
        if isinstance(data, dict) and "dir" in data:
            raise ValueError("report.dir was renamed report.root (a folder or a Hadoop URI; null: <lake.root>/reports)")
        return data


class OpsConfig(_Section):
    """The lake's write lease (one writing run at a time; see :mod:`seglake.lease`)."""

    lease_seconds: int = Field(
        600,
        ge=10,
        description="A run's lease on the lake lasts this long after its start or last heartbeat; a driver "
        "that dies leaves the lake to others once it has lapsed (at once, on the same host).",
    )
    heartbeat_seconds: int = Field(
        60, ge=1, description="How often a running job renews its lease (a row in ops/leases)."
    )

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> OpsConfig:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError("heartbeat_seconds must be at most half of lease_seconds")
        return self


class SeglakeConfig(_Section):
    lake: LakeConfig = Field(default_factory=LakeConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    currency: CurrencyConfig = Field(default_factory=CurrencyConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    cleanse: CleanseConfig = Field(default_factory=CleanseConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    cohorts: CohortsConfig = Field(default_factory=CohortsConfig)
    value: ValueConfig = Field(default_factory=ValueConfig)
    rfm: RfmConfig = Field(default_factory=RfmConfig)
    offers: OffersConfig = Field(default_factory=OffersConfig)
    clusters: ClustersConfig = Field(default_factory=ClustersConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)

    # Where the config came from; not a key users set.
    source: str = Field("<defaults>", exclude=True)

    def digest(self) -> str:
        """Stable hash of the effective config, recorded in ops/runs."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so pydantic validates them (and names the key)."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YamlLoader)


def read_yaml_dict(path: Path | Traversable, shown: str, error: type[Exception]) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; ``error`` names ``shown`` and the line."""
    try:
        data = _load_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise error(f"{shown}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise error(f"{shown}: expected a mapping of keys at the top level")
    return data


_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: Any, source: str, path: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, source, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, source, (*path, str(i))) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"{source}: {'.'.join(path)}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV_PATTERN.sub(substitute, value)
    return value


def _apply_override(data: dict[str, Any], assignment: str) -> tuple[str, ...]:
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {assignment}: expected dotted.key=value")
    parts = tuple(key.split("."))
    try:
        value = _load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # Spark settings are flat keys with dots (spark.conf.spark.sql.x=1): no nested sections for them.
    if parts[:2] == ("spark", "conf") and len(parts) > 2:
        conf = data.setdefault("spark", {}).setdefault("conf", {})
        conf[".".join(parts[2:])] = raw
        return parts
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value
    return parts


def _describe(error: dict[str, Any]) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = message.removeprefix("Value error, ")
    if "input" in error and error["type"] not in ("missing",):
        shown = error["input"]
        if not isinstance(shown, dict | list):
            message += f" (got {shown!r})"
    return message


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> SeglakeConfig:
    """Read ``path`` (default: the shipped ``conf/local.yaml``), apply ``overrides``, validate.

    A relative ``path`` is read from the working directory; a ``conf/...`` one that is not
    there is the shipped file of that name (:func:`seglake.defaults.find`).
    """
    config_path = defaults.find(str(path)) if path else defaults.conf_file(DEFAULT_CONFIG)
    as_given = bool(path) and isinstance(config_path, Path) and config_path == Path(str(path)).expanduser()
    source = str(path) if as_given else defaults.shown(config_path)
    if not config_path.is_file():
        raise ConfigError(f"{source}: config file not found")
    data = read_yaml_dict(config_path, source, ConfigError)
    data = _expand_env(data, source, ())
    overridden: set[tuple[str, ...]] = set()
    for assignment in overrides or []:
        overridden.add(_apply_override(data, assignment))
    try:
        config = SeglakeConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        key = ".".join(loc) or "<top>"
        from_flag = any(loc[: len(o)] == o for o in overridden)
        origin = f"--set {key}" if from_flag else f"{source}: {key}"
        raise ConfigError(f"{origin}: {_describe(dict(first))}") from None
    config.source = source
    return config


def parse_as_of(value: str | None) -> dt.date | None:
    """``--as-of YYYY-MM-DD``; a clear error otherwise."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--as-of {value}: not a date, expected YYYY-MM-DD") from None
