"""The segmentation report: one self-contained HTML page (charts embedded as PNG).

:class:`ReportData` holds small aggregates already collected from the gold tables
(lists of plain dicts, a few dozen rows each); :func:`render_report` turns them into
HTML. No Spark here: the job (``jobs/report.py``) aggregates and collects, this
module only draws and writes markup, so it is quick to test and to restyle.
A section whose data is ``None`` renders a short "not computed" note naming the job
to run instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from string import Template
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to PNG only

import matplotlib.pyplot as plt
import numpy as np

Rows = list[dict[str, Any]]

# ops/data_quality checks of a cleanse run that are not reject reasons (jobs/cleanse.py)
RUN_CHECKS = ("books_balance", "quarantine_rate", "row_count_drop")

# section key -> (title, short name for the contents line, the job that computes it)
SECTIONS: dict[str, tuple[str, str, str]] = {
    "segments": ("Segments: size and revenue share", "Segments", "segment"),
    "campaigns": ("Which campaign goes to whom", "Campaigns", "segment"),
    "offers": ("Next best offer", "Offers", "segment"),
    "rf_grid": ("Recency × frequency", "R × F", "segment"),
    "retention": ("Cohort retention", "Retention", "cohorts"),
    "value_tiers": ("Value tiers: how long with us × how recently seen", "Value tiers", "features"),
    "clusters": ("Customer clusters", "Clusters", "clusters"),
    "migration": ("Movement between segments since the previous as-of", "Migration", "segment"),
    "quality": ("Data quality of the latest cleanse", "Data quality", "cleanse"),
}


@dataclass
class ReportData:
    """What the report shows for one as-of date; ``None`` = not computed for that date."""

    as_of: dt.date
    currency: str
    window_days: int
    lake_root: str = ""
    headline: dict[str, Any] | None = None
    segments: Rows | None = None
    segment_map: str | None = None
    campaign_summary: Rows | None = None
    clv_horizon_days: int = 365
    offers: Rows | None = None  # to_offer_summary rows
    offers_coverage: dict[str, Any] | None = None  # customers, full, with_lift, top_n
    rf_grid: Rows | None = None
    tiles: int = 4
    retention: Rows | None = None
    period_unit: str = "month"
    value_tiers: Rows | None = None
    longevity_days: Sequence[int] = (365,)
    recency_days: Sequence[int] = (90,)
    clusters: Rows | None = None
    migration: Rows | None = None
    previous_as_of: dt.date | None = None
    quality: Rows | None = None
    quality_checked_at: dt.datetime | None = None
    notes: dict[str, str] = field(default_factory=dict)  # section -> why it is empty (overrides the default)


# ---------------------------------------------------------------- formatting


def fmt_int(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def fmt_money(value: Any, currency: str) -> str:
    if value is None:
        return "–"
    return f"{float(value):,.0f} {currency}"


def fmt_share(value: Any) -> str:
    if value is None:
        return "–"
    share = float(value) * 100
    return f"{share:.1f}%" if abs(share) >= 0.1 or share == 0 else f"{share:.2f}%"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    """An HTML table; cells are already escaped/formatted strings."""
    head = "".join(f'<th class="{"num" if n else ""}">{_esc(h)}</th>' for h, n in zip(headers, numeric, strict=True))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"num" if n else ""}">{c}</td>' for c, n in zip(row, numeric, strict=True))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------- charts


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{data}">'


def _heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    labels: Sequence[Sequence[str]],
    cmap: str,
    xlabel: str,
    ylabel: str,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: str | None = None,
    cell_inches: tuple[float, float] = (0.9, 0.45),
) -> str:
    rows, cols = values.shape
    width = max(4.5, cols * cell_inches[0] + 2.2)
    height = max(2.2, rows * cell_inches[1] + 1.4)
    fig, ax = plt.subplots(figsize=(width, height))
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax)
    rotate = max((len(str(label)) for label in col_labels), default=0) > 9
    ax.set_xticks(range(cols), labels=col_labels, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(range(rows), labels=row_labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    norm = image.norm
    colormap = image.get_cmap()
    fontsize = 9 if cols <= 14 else 7
    for i in range(rows):
        for j in range(cols):
            if not labels[i][j]:
                continue
            value = values[i, j]
            dark = bool(np.isfinite(value)) and sum(colormap(norm(value))[:3]) < 1.5
            ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=fontsize, color="white" if dark else "#222")
    if colorbar:
        fig.colorbar(image, ax=ax, label=colorbar, shrink=0.8)
    fig.tight_layout()
    return _png(fig)


def segments_chart(segments: Rows) -> str:
    ordered = sorted(segments, key=lambda r: r["customers"])
    names = [str(r["category"]) for r in ordered]
    customer_share = [float(r["customer_share"] or 0) * 100 for r in ordered]
    revenue_share = [float(r["revenue_share"] or 0) * 100 for r in ordered]
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8.5, max(2.2, 0.55 * len(names) + 1.0)))
    ax.barh(y + 0.2, customer_share, height=0.38, color="#4c78a8", label="share of customers")
    ax.barh(y - 0.2, revenue_share, height=0.38, color="#f58518", label="share of revenue")
    for yy, c, r in zip(y, customer_share, revenue_share, strict=True):
        ax.text(c + 0.5, yy + 0.2, f"{c:.1f}%", va="center", fontsize=8)
        ax.text(max(r, 0) + 0.5, yy - 0.2, f"{r:.1f}%", va="center", fontsize=8)
    ax.set_yticks(y, labels=names)
    ax.set_xlabel("% of all customers / of window revenue")
    ax.set_xlim(0, max([*customer_share, *revenue_share, 1]) * 1.15)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="lower right", frameon=False)
    fig.tight_layout()
    return _png(fig)


def rf_chart(grid: Rows, tiles: int) -> str:
    values = np.zeros((tiles, tiles))
    for row in grid:
        if row["r_score"] is None or row["f_score"] is None:
            continue  # not scored
        r, f = int(row["r_score"]), int(row["f_score"])
        if 1 <= r <= tiles and 1 <= f <= tiles:
            values[r - 1, f - 1] += int(row["customers"])
    total = values.sum() or 1
    labels = [[f"{int(v):,}\n{v / total:.0%}" if v else "0" for v in line] for line in values]
    return _heatmap(
        values,
        [f"R{r}" + (" (most recent)" if r == 1 else "") for r in range(1, tiles + 1)],
        [f"F{f}" + (" (most)" if f == 1 else "") for f in range(1, tiles + 1)],
        labels=labels,
        cmap="Blues",
        xlabel="frequency score (1 = most purchases)",
        ylabel="recency score",
        colorbar="customers",
        cell_inches=(1.0, 0.55),
    )


def retention_chart(retention: Rows) -> str:
    cohorts = sorted({(r["cohort_start_date"], r["cohort"]) for r in retention})
    offsets = sorted({int(r["period_offset"]) for r in retention})
    index = {c: i for i, c in enumerate(cohorts)}
    values = np.full((len(cohorts), len(offsets)), np.nan)
    partial = np.zeros_like(values, dtype=bool)
    for r in retention:
        i, j = index[(r["cohort_start_date"], r["cohort"])], offsets.index(int(r["period_offset"]))
        values[i, j] = float(r["retention_rate"]) if r["retention_rate"] is not None else np.nan
        partial[i, j] = bool(r["is_partial_period"])
    later = values[:, 1:] if values.shape[1] > 1 else values
    vmax = float(np.nanmax(later)) if np.isfinite(later).any() else 1.0
    labels = [
        [("" if np.isnan(v) else f"{v:.0%}" + ("*" if partial[i, j] else "")) for j, v in enumerate(line)]
        for i, line in enumerate(values)
    ]
    sizes = {(r["cohort_start_date"], r["cohort"]): int(r["cohort_size"]) for r in retention}
    return _heatmap(
        values,
        [f"{label} ({sizes[(start, label)]:,})" for start, label in cohorts],
        [str(o) for o in offsets],
        labels=labels,
        cmap="Greens",
        xlabel="periods since the first purchase (0 = the cohort's own period)",
        ylabel="cohort (customers)",
        vmin=0,
        vmax=max(vmax, 0.01),
        colorbar="retention rate",
        cell_inches=(0.62, 0.36),
    )


def cluster_chart(clusters: Rows) -> str:
    """Features down, clusters across (ids as in the table above): readable with 18+ features."""
    features = sorted({name for r in clusters for name in (r["feature_z_scores"] or {})})
    ordered = sorted(clusters, key=lambda r: int(r["cluster_id"]))
    values = np.array([[float((r["feature_z_scores"] or {}).get(f, np.nan) or 0) for r in ordered] for f in features])
    labels = [[f"{v:+.1f}" for v in line] for line in values]
    return _heatmap(
        values,
        features,
        [str(r["cluster_id"]) for r in ordered],
        labels=labels,
        cmap="RdBu_r",
        xlabel="cluster id (as in the table above)",
        ylabel="feature (z-score of the cluster mean vs all customers)",
        vmin=-2,
        vmax=2,
        colorbar="z-score",
        cell_inches=(0.75, 0.34),
    )


def migration_chart(migration: Rows) -> str:
    previous = sorted({str(r["previous_category"]) for r in migration}, key=lambda c: (c == "(new)", c))
    current = sorted({str(r["current_category"]) for r in migration}, key=lambda c: (c == "(gone)", c))
    values = np.zeros((len(previous), len(current)))
    for r in migration:
        values[previous.index(str(r["previous_category"])), current.index(str(r["current_category"]))] += int(
            r["customers"]
        )
    labels = [[f"{int(v):,}" if v else "" for v in line] for line in values]
    return _heatmap(
        np.where(values > 0, np.log10(np.maximum(values, 1)), np.nan),
        previous,
        current,
        labels=labels,
        cmap="Purples",
        xlabel="category now",
        ylabel="category at the previous as-of",
        cell_inches=(1.05, 0.5),
    )


def quality_chart(reasons: Rows) -> str:
    ordered = sorted(reasons, key=lambda r: r["rows_flagged"])
    fig, ax = plt.subplots(figsize=(7.5, max(1.6, 0.28 * len(ordered) + 0.8)))
    y = np.arange(len(ordered))
    counts = [int(r["rows_flagged"]) for r in ordered]
    ax.barh(y, counts, color="#e45756", height=0.7)
    for yy, c in zip(y, counts, strict=True):
        ax.text(c, float(yy), f" {c:,}", va="center", fontsize=8)
    ax.set_yticks(y, labels=[str(r["check_name"]) for r in ordered])
    ax.set_xlabel("rows quarantined")
    ax.set_xlim(0, max([*counts, 1]) * 1.15)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------- sections


def _not_computed(data: ReportData, key: str) -> str:
    if key in data.notes:
        return f'<p class="missing">{_esc(data.notes[key])}</p>'
    job = SECTIONS[key][2]
    command = f"seglake {job}" + ("" if job == "cleanse" else f" --as-of {data.as_of}")
    return f'<p class="missing">Not computed for {data.as_of} — run <code>{_esc(command)}</code>.</p>'


def headline_html(data: ReportData) -> str:
    h = data.headline or {}
    customers = int(h.get("customers") or 0)
    active = int(h.get("active_customers") or 0)
    cards = [
        ("Customers", fmt_int(customers), f"with a purchase on or before {data.as_of}"),
        (
            "Revenue in window",
            fmt_int(round(float(h.get("revenue_amount") or 0))),
            f"{data.currency}, net, last {data.window_days} days",
        ),
        ("Active share", fmt_share(active / customers if customers else None), f"{active:,} bought in the window"),
        ("Median recency", f"{fmt_int(h.get('median_recency_days'))} days", "since the last purchase"),
        ("Orders in window", fmt_int(h.get("orders")), f"last {data.window_days} days"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="label">{_esc(label)}</div><div class="value">{_esc(value)}</div>'
            f'<div class="sub">{_esc(sub)}</div></div>'
            for label, value, sub in cards
        )
        + "</div>"
    )


def segments_html(data: ReportData) -> str:
    if not data.segments:
        return _not_computed(data, "segments")
    ordered = sorted(data.segments, key=lambda r: -int(r["customers"]))
    has_clv = any(r.get("avg_clv_amount") is not None for r in ordered)
    rows = [
        [
            _esc(r["category"]),
            fmt_int(r["customers"]),
            fmt_share(r["customer_share"]),
            fmt_money(r["revenue_amount"], data.currency),
            fmt_share(r["revenue_share"]),
            *([fmt_money(r.get("avg_clv_amount"), data.currency), fmt_share(r.get("clv_share"))] if has_clv else []),
        ]
        for r in ordered
    ]
    used = f"<p>Segment map: <b>{_esc(data.segment_map)}</b>.</p>" if data.segment_map else ""
    clv_note = (
        "<p>CLV: expected value over the next "
        f"{_esc(data.clv_horizon_days)} days (BG/NBD purchases × Gamma-Gamma spend, <code>gold/customer_value</code>)."
        "</p>"
        if has_clv
        else ""
    )
    headers = ["category", "customers", "% customers", "revenue in window", "% revenue"]
    headers += ["mean CLV", "% of CLV"] if has_clv else []
    return (
        used + segments_chart(data.segments) + _table(headers, rows, [False, *[True] * (len(headers) - 1)]) + clv_note
    )


OFFER_GROUPS_SHOWN = 12  # rows of the offers table: the largest groups


def offers_html(data: ReportData) -> str:
    """Coverage of gold/next_best_offer and each group's most common first offer."""
    if not data.offers:
        return _not_computed(data, "offers")
    coverage = data.offers_coverage or {}
    customers = int((data.headline or {}).get("customers") or 0)
    with_offers = int(coverage.get("customers") or 0)
    share = with_offers / customers if customers else None
    by_group: dict[str, list[dict[str, Any]]] = {}
    for r in data.offers:
        by_group.setdefault(str(r["customer_group"]), []).append(r)
    rows = []
    largest = sorted(by_group.items(), key=lambda item: (-sum(int(r["customers"]) for r in item[1]), item[0]))
    for group, group_rows in largest[:OFFER_GROUPS_SHOWN]:
        top = sorted(group_rows, key=lambda r: -int(r["customers"]))[:3]
        total = sum(int(r["customers"]) for r in group_rows)
        rows.append(
            [
                _esc(group),
                fmt_int(total),
                ", ".join(
                    f"{_esc(r['offer_category'])} ({fmt_share(int(r['customers']) / total)}"
                    + (f", lift {float(r['lift']):.2f})" if r["source"] == "lift" and r["lift"] else ", popular)")
                    for r in top
                ),
            ]
        )
    return (
        f"<p>{fmt_int(with_offers)} of {fmt_int(customers)} customers ({fmt_share(share)}) have an offer, "
        f"{fmt_int(coverage.get('full'))} the full {fmt_int(coverage.get('top_n'))}; "
        f"{fmt_int(coverage.get('with_lift'))} have a category their group over-buys (lift &gt; 1), "
        "the others the most popular categories they have not bought. Lists: <code>gold/next_best_offer</code>; "
        "each audience row carries the first offer (<code>offer_category</code>).</p>"
        + _table(["group", "customers", "most common first offers"], rows, [False, True, False])
        + (
            f"<p>The {OFFER_GROUPS_SHOWN} largest of {len(by_group):,} groups.</p>"
            if len(by_group) > OFFER_GROUPS_SHOWN
            else ""
        )
    )


def campaign_summary_html(data: ReportData) -> str:
    """Per campaign: who the segments put in, who consent and priorities left out, the holdout."""
    summary = sorted(
        data.campaign_summary or [],
        key=lambda r: (r["priority"] is None, r["priority"] or 0, -int(r["audience_customers"])),
    )
    segments_of: dict[str, list[str]] = {}
    for r in data.segments or []:
        if r["campaign"] is not None:
            segments_of.setdefault(str(r["campaign"]), []).append(str(r["category"]))
    rows = [
        [
            _esc(r["campaign"]),
            _esc(", ".join(segments_of.get(str(r["campaign"]), [])) or "rules"),
            _esc(r["channel"] or "–"),
            _esc("–" if r["priority"] is None else r["priority"]),
            fmt_int(r["candidate_customers"]),
            fmt_int(r["no_consent_customers"]),
            fmt_int(r["excluded_customers"]),
            fmt_int(r["contact_customers"]),
            f"{fmt_int(r['holdout_customers'])} ({fmt_share(r['holdout_share'])})",
        ]
        for r in summary
    ]
    return (
        "<p>Candidates come from the segments (and the rules that name a campaign). A channel's consent "
        "column must be true; an exclusive campaign (a priority) keeps a customer from the ones after it; "
        "the holdout is the control group, not contacted. Lists: <code>gold/campaign_audiences</code> "
        "(<code>is_holdout</code>); counts: <code>gold/campaign_summary</code>.</p>"
        + _table(
            [
                "campaign",
                "segments",
                "channel",
                "priority",
                "candidates",
                "no consent",
                "excluded",
                "to contact",
                "holdout",
            ],
            rows,
            [False, False, False, True, True, True, True, True, True],
        )
    )


def campaigns_html(data: ReportData) -> str:
    if data.campaign_summary:
        return campaign_summary_html(data)
    if not data.segments:
        return _not_computed(data, "campaigns")
    ordered = sorted(data.segments, key=lambda r: (r["campaign"] is None, -int(r["customers"])))
    rows = [
        [
            _esc(r["category"]),
            _esc(r["campaign"] or "— (no campaign)"),
            fmt_int(r["customers"]),
            f'<span class="cells">{_esc(r["rfm_cells"])}</span>',
        ]
        for r in ordered
    ]
    return (
        "<p>Audience sizes per campaign; the customer lists are in <code>gold/campaign_audiences</code>.</p>"
        + _table(["category", "campaign", "customers", "RFM cells"], rows, [False, False, True, False])
    )


def rf_html(data: ReportData) -> str:
    if not data.rf_grid:
        return _not_computed(data, "rf_grid")
    scored = sum(int(r["customers"]) for r in data.rf_grid)
    unscored = int((data.headline or {}).get("customers") or 0) - scored
    note = (
        f" {unscored:,} customers without a purchase in the window are not scored (the segment map names them "
        "by recency) and are not in the grid."
        if unscored > 0
        else ""
    )
    return (
        f"<p>Customers per recency score (rows) and frequency score (columns), {data.tiles} tiles each; "
        f"score 1 is the best tile. The top-left cell are the most recent and most frequent buyers.{note}</p>"
        + rf_chart(data.rf_grid, data.tiles)
    )


def retention_html(data: ReportData) -> str:
    if not data.retention:
        return _not_computed(data, "retention")
    cohorts = len({r["cohort"] for r in data.retention})
    return (
        f"<p>Share of each {data.period_unit} cohort (customers by the {data.period_unit} of their first purchase) "
        f"who bought again N {data.period_unit}s later; the latest {cohorts} cohorts. "
        "* = a period the as-of date cuts short. Colours are scaled to the later periods "
        "(period 0 is always 100%).</p>" + retention_chart(data.retention)
    )


def _band_labels(bounds: Sequence[int], unit: str) -> list[str]:
    labels = [f"< {bounds[0]:,} {unit}"] if bounds else ["all"]
    labels += [f"{a:,}–{b - 1:,} {unit}" for a, b in itertools.pairwise(bounds)]
    if bounds:
        labels.append(f"≥ {bounds[-1]:,} {unit}")
    return labels


def value_tiers_html(data: ReportData) -> str:
    if not data.value_tiers:
        return _not_computed(data, "value_tiers")
    longevity = _band_labels(list(data.longevity_days), "days")
    recency = _band_labels(list(data.recency_days), "days")
    cells = {(int(r["longevity_band"]), int(r["recency_band"])): r for r in data.value_tiers}
    top = max((float(r["customer_share"] or 0) for r in data.value_tiers), default=1) or 1
    head = "<tr><th>with us for ↓ / last seen →</th>" + "".join(f"<th>{_esc(x)} ago</th>" for x in recency) + "</tr>"
    body = ""
    for i, lon in enumerate(longevity):
        body += f"<tr><th>{_esc(lon)}</th>"
        for j in range(len(recency)):
            r = cells.get((i, j))
            if r is None:
                body += '<td class="tier">–</td>'
                continue
            alpha = 0.08 + 0.5 * float(r["customer_share"] or 0) / top
            body += (
                f'<td class="tier" style="background: rgba(76,120,168,{alpha:.2f})">'
                f"<b>{_esc(r['value_tier'])}</b><br>{fmt_int(r['customers'])} customers "
                f"({fmt_share(r['customer_share'])})<br>{fmt_money(r['revenue_amount'], data.currency)} "
                f"({fmt_share(r['revenue_share'])} of revenue)</td>"
            )
        body += "</tr>"
    return (
        "<p>Customers by how long ago they first bought (rows) and how recently they bought (columns); "
        "the grid and tier names are config (<code>features.value_tiers</code>).</p>"
        f'<table class="grid"><thead>{head}</thead><tbody>{body}</tbody></table>'
    )


def clusters_html(data: ReportData) -> str:
    if not data.clusters:
        return _not_computed(data, "clusters")
    ordered = sorted(data.clusters, key=lambda r: int(r["cluster_id"]))
    rows = [
        [
            _esc(r["cluster_id"]),
            f"<b>{_esc(r['cluster_name'])}</b>",
            fmt_int(r["customers"]),
            fmt_share(r["customer_share"]),
            fmt_share(r["revenue_share"]),
            _esc(", ".join(r.get("top_features") or [])),
        ]
        for r in ordered
    ]
    return (
        "<p>k-means clusters on the profile's features. The heatmap shows how far each cluster's mean lies "
        "from all customers' mean, in standard deviations (red above, blue below).</p>"
        + _table(
            ["id", "name", "customers", "% customers", "% revenue", "distinguishing features"],
            rows,
            [True, False, True, True, True, False],
        )
        + cluster_chart(ordered)
    )


def migration_html(data: ReportData) -> str:
    if not data.migration:
        return _not_computed(data, "migration")
    moved = [r for r in data.migration if r["previous_category"] != r["current_category"]]
    moved.sort(key=lambda r: -int(r["customers"]))
    rows = [
        [
            _esc(r["previous_category"]),
            _esc(r["current_category"]),
            fmt_int(r["customers"]),
            fmt_money(r["revenue_amount"], data.currency),
        ]
        for r in moved[:12]
    ]
    since = f" since {data.previous_as_of}" if data.previous_as_of else ""
    return (
        f"<p>Customers per category at the previous as-of (rows) and now (columns){_esc(since)}. "
        "(new) = first bought since then; (gone) = no longer in the population.</p>"
        + migration_chart(data.migration)
        + "<h3>Largest moves</h3>"
        + _table(["from", "to", "customers", "revenue in window"], rows, [False, False, True, True])
    )


def quality_html(data: ReportData) -> str:
    if not data.quality:
        return _not_computed(data, "quality")
    books = next((r for r in data.quality if r["check_name"] == "books_balance"), None)
    reasons = [r for r in data.quality if r["check_name"] not in RUN_CHECKS and int(r["rows_flagged"] or 0) > 0]
    rows_in = int(books["rows_checked"]) if books else int(max((r["rows_checked"] for r in data.quality), default=0))
    quarantined = sum(int(r["rows_flagged"]) for r in reasons)
    balanced = "balanced" if books is None or books["passed"] else "NOT balanced"
    when = f" at {data.quality_checked_at:%Y-%m-%d %H:%M} UTC" if data.quality_checked_at else ""
    text = (
        f"<p>The latest cleanse{_esc(when)} read <b>{rows_in:,}</b> source rows: "
        f"<b>{rows_in - quarantined:,}</b> clean, <b>{quarantined:,}</b> quarantined "
        f"({fmt_share(quarantined / rows_in if rows_in else 0)}); books {balanced}. "
        "The rejected rows and their reasons are in <code>silver/receipts_quarantine</code>.</p>"
    )
    if not reasons:
        return text
    ordered = sorted(reasons, key=lambda r: -int(r["rows_flagged"]))
    rows = [[_esc(r["check_name"]), fmt_int(r["rows_flagged"]), _esc(r["detail"])] for r in ordered]
    table = _table(["reason", "rows", "what it means"], rows, [False, True, False])
    return text + quality_chart(reasons) + table


PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Customer segmentation — $as_of</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2933;
         background: #f5f7fa; margin: 0; line-height: 1.45; }
  main { max-width: 1080px; margin: 0 auto; padding: 28px 32px 60px; }
  header h1 { margin: 0 0 4px; font-size: 28px; }
  header p { margin: 0; color: #52606d; }
  nav { margin: 14px 0 6px; font-size: 13px; }
  nav a { color: #2f6fab; margin-right: 14px; text-decoration: none; }
  section { background: #fff; border-radius: 10px; padding: 18px 24px 20px; margin: 18px 0;
            box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  h2 { font-size: 20px; margin: 0 0 10px; }
  h3 { font-size: 15px; margin: 16px 0 6px; }
  .cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin-top: 18px; }
  .card { background: #fff; border-radius: 10px; padding: 14px 16px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  .card .label { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #52606d; }
  .card .value { font-size: 24px; font-weight: 650; margin: 4px 0 2px; white-space: nowrap; }
  .card .sub { font-size: 12px; color: #7b8794; }
  table { border-collapse: collapse; width: 100%; font-size: 14px; margin-top: 8px; }
  th, td { padding: 6px 10px; border-bottom: 1px solid #e4e7eb; text-align: left; vertical-align: top; }
  th { background: #f0f4f8; font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  table.grid td.tier { text-align: center; padding: 12px; }
  .cells { font-family: ui-monospace, Menlo, monospace; font-size: 12px; color: #52606d; }
  .missing { color: #7b8794; font-style: italic; }
  img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
  code { background: #f0f4f8; padding: 1px 5px; border-radius: 4px; font-size: 13px; }
  footer { color: #7b8794; font-size: 12px; margin-top: 24px; }
</style></head>
<body><main>
<header><h1>Customer segmentation</h1>
<p>As of <b>$as_of</b> · review window $window_days days · amounts in $currency</p>
<nav>$nav</nav></header>
$headline
$sections
<footer>Generated by seglake $version from the lake at $lake_root. All figures are aggregates of the
gold tables for as_of_date = $as_of.</footer>
</main></body></html>
""")

RENDERERS = {
    "segments": segments_html,
    "campaigns": campaigns_html,
    "offers": offers_html,
    "rf_grid": rf_html,
    "retention": retention_html,
    "value_tiers": value_tiers_html,
    "clusters": clusters_html,
    "migration": migration_html,
    "quality": quality_html,
}


def render_report(data: ReportData, *, version: str = "") -> str:
    """The whole page as one string (images inline)."""
    sections = "\n".join(
        f'<section id="{key}"><h2>{_esc(SECTIONS[key][0])}</h2>{render(data)}</section>'
        for key, render in RENDERERS.items()
    )
    nav = "".join(f'<a href="#{key}">{_esc(SECTIONS[key][1])}</a>' for key in RENDERERS)
    return PAGE.substitute(
        as_of=_esc(data.as_of),
        window_days=f"{data.window_days:,}",
        currency=_esc(data.currency),
        nav=nav,
        headline=headline_html(data),
        sections=sections,
        version=_esc(version),
        lake_root=_esc(data.lake_root),
    )
