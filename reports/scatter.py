"""An inline SVG scatter chart of one evidence table: one point per row.

A gate asks for it by putting a `chart` hint on a table of its evidence:

    {"type": "scatter", "x": "size_saving_pct", "y": "kl", "label": "target",
     "y_scale": "log", "x_title": "...", "y_title": "..."}

`scatter_svg(table)` draws the rows whose x and y cells are numbers (a log
y axis drops values <= 0; they would sit at minus infinity), each point
labelled with its `label` cell; `None` when nothing can be drawn or the hint
is not one this module knows, so the HTML report simply shows the table.
The parity gate uses it for the quality cost of each compression against its
size saving.

Standard library only and a pure function (the same table gives the same
bytes). Text from the document (labels, titles) is XML-escaped and stripped
of characters XML forbids, so the HTML report can embed the result as-is.

    >>> svg = scatter_svg({"columns": ["t", "x", "y"], "rows": [["<a>", 10.0, 0.5]],
    ...                    "chart": {"type": "scatter", "x": "x", "y": "y", "label": "t"}})
    >>> svg.startswith("<svg") and "&lt;a&gt;" in svg and "<a>" not in svg
    True
"""

from __future__ import annotations

import math
from typing import Any, Mapping
from xml.sax.saxutils import escape

from reports.trend import _XML_FORBIDDEN, PALETTE

_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 12, 40


def _text(value: Any, limit: int = 60) -> str:
    return escape(_XML_FORBIDDEN.sub("", str(value))[:limit], {'"': "&quot;"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _points(table: Mapping[str, Any], hint: Mapping[str, Any], log_y: bool) -> list[tuple[str, float, float]]:
    columns = list(table.get("columns") or [])
    try:
        xi, yi, li = (columns.index(hint[k]) for k in ("x", "y", "label"))
    except (KeyError, ValueError):
        return []
    points = []
    for row in table.get("rows") or []:
        if not isinstance(row, (list, tuple)) or len(row) <= max(xi, yi, li):
            continue
        x, y = _number(row[xi]), _number(row[yi])
        if x is None or y is None or (log_y and y <= 0):
            continue
        points.append((str(row[li]), x, math.log10(y) if log_y else y))
    return points


def _span(values: list[float], pad: float) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - pad, hi + pad
    return lo - (hi - lo) * 0.08, hi + (hi - lo) * 0.08


def scatter_svg(table: Mapping[str, Any], width: int = 560, height: int = 260) -> str | None:
    """The chart of `table` as one `<svg>` element, or None."""
    hint = table.get("chart")
    if not isinstance(hint, Mapping) or hint.get("type") != "scatter":
        return None
    log_y = hint.get("y_scale") == "log"
    points = _points(table, hint, log_y)
    if not points:
        return None
    x_lo, x_hi = _span([p[1] for p in points] + [0.0], 5.0)
    y_lo, y_hi = _span([p[2] for p in points], 1.0)
    w, h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def px(x: float) -> str:
        return f"{_LEFT + w * (x - x_lo) / (x_hi - x_lo):.1f}"

    def py(y: float) -> str:
        return f"{_TOP + h * (y_hi - y) / (y_hi - y_lo):.1f}"

    title = _text(table.get("title", "chart"), 200)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%"'
             f' style="max-width:{width}px" role="img" aria-label="{title}" {_FONT}>', f"<title>{title}</title>",
             f'<rect x="{_LEFT}" y="{_TOP}" width="{w}" height="{h}" fill="none" stroke="#d1d5db"/>']
    for value, label in ((y_lo, y_lo), (y_hi, y_hi)):
        shown = f"{10 ** label:.2g}" if log_y else f"{label:.3g}"
        parts.append(f'<text x="{_LEFT - 4}" y="{py(value)}" text-anchor="end" dominant-baseline="middle"'
                     f' fill="#6b7280">{shown}</text>')
    for value in (x_lo, x_hi):
        parts.append(f'<text x="{px(value)}" y="{_TOP + h + 14}" text-anchor="middle" fill="#6b7280">'
                     f"{value:.3g}</text>")
    parts.append(f'<text x="{_LEFT + w / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="#374151">'
                 f'{_text(hint.get("x_title", hint.get("x")), 80)}</text>')
    parts.append(f'<text x="12" y="{_TOP + h / 2:.1f}" text-anchor="middle" fill="#374151"'
                 f' transform="rotate(-90 12 {_TOP + h / 2:.1f})">'
                 f'{_text(hint.get("y_title", hint.get("y")), 80)}{" (log)" if log_y else ""}</text>')
    for i, (name, x, y) in enumerate(points):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<circle cx="{px(x)}" cy="{py(y)}" r="5" fill="{colour}"><title>{_text(name)}</title>'
                     "</circle>")
        parts.append(f'<text x="{float(px(x)) + 8:.1f}" y="{py(y)}" dominant-baseline="middle" fill="#111827">'
                     f"{_text(name)}</text>")
    parts.append("</svg>")
    return "\n".join(parts)
