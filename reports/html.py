"""One self-contained HTML report: inline CSS and SVG, no scripts, no network.

Autoescaped throughout (test names and failure messages are untrusted), with a
Content-Security-Policy that forbids any fetch. The trend chart comes from
`reports.trend` when the document carries a trend; an evidence table with a
`chart` hint gets a scatter chart from `reports.scatter`; a gate's own charts
(`evidence.charts`, e.g. latency against length) come from `reports.charts`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from markupsafe import Markup

from reports import view as views
from reports.templating import render as render_template
from reports.trend import trend_svg

RADIUS = 54.0
BAND_COLOUR = {"production ready": "#2e9b4f", "mostly ready": "#3b7dd8", "partial": "#d89b1f",
               "not ready": "#c43c3c"}
NO_SHIP_COLOUR, PARTIAL_COLOUR = "#c43c3c", "#5b6470"


def gauge(score: float, band: str, tone: str = "ship") -> dict[str, str]:
    """The score ring; its colour follows the verdict (the band's colour only for a ship)."""
    circumference = 2 * math.pi * RADIUS
    dash = circumference * max(0.0, min(100.0, score)) / 100.0
    colour = {"noship": NO_SHIP_COLOUR, "partial": PARTIAL_COLOUR}.get(tone) or BAND_COLOUR.get(band, "#5b6470")
    return {"dash": f"{dash:.2f}", "gap": f"{circumference - dash:.2f}", "colour": colour}


def _trend(trend: list[Mapping[str, Any]]) -> Markup | None:
    if len(trend) < 2:
        return None
    return Markup(trend_svg(trend))  # trend_svg escapes every text it writes


def _chart(table: Mapping[str, Any]) -> Markup | None:
    from reports.scatter import scatter_svg

    svg = scatter_svg(table["raw"]) if table.get("raw") else None
    return Markup(svg) if svg else None  # scatter_svg escapes every text it writes


def _with_charts(v: Mapping[str, Any]) -> dict[str, Any]:
    """The view with `chart_svg` on every table (None without a `chart` hint); the caller's view,
    which other formats may share, is left as it was."""
    gates = [{**g, "tables": [{**t, "chart_svg": _chart(t)} for t in g["tables"]]} for g in v["gates"]]
    return {**v, "gates": gates}


def _charts(gates: list[dict[str, Any]]) -> dict[str, list[Markup]]:
    """Each gate's charts as inline SVG, by gate name (chart_svg escapes every text it writes)."""
    from reports.charts import chart_svg

    return {g["name"]: [Markup(chart_svg(c)) for c in g["charts"]] for g in gates if g["charts"]}


def render(doc: Mapping[str, Any], v: Mapping[str, Any] | None = None) -> str:
    """The report; `v` is the document's view when the caller built it already."""
    v = _with_charts(v if v is not None else views.build(doc))
    return render_template("report.html", v=v, gauge=gauge(v["score_value"], v["band"], v["tone"]),
                           trend_svg=_trend(v["trend"]), baseline_delta=views.baseline_delta(v),
                           charts=_charts(v["gates"]))
