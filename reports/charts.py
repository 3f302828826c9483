"""Inline SVG charts of a gate's `charts` evidence: lines with interval whiskers, and bars.

A chart arrives as view data (`reports.view.chart_view`: finite numbers,
clipped text):

    {"title": str, "kind": "line" | "bar", "x_label": str, "y_label": str,
     "series": [{"name": str, "points": [{"x": number | str, "y": number,
                                          "low": number | None, "high": number | None}]}]}

A line chart puts numeric x at their values (cache lengths 64..512 on a
linear axis, so growth with the length looks like what it is); each point's
interval is a whisker. The y axis starts at 0 and spans the medians with
room to spare; a whisker reaching past the top is cut at the top edge and
ends in an open cap, so one noisy trial does not flatten every line. A bar
chart draws one bar per point of its first series. Every text is
XML-escaped; the SVG has a viewBox and width 100 %, so it shrinks with the
window. Standard library only, and a pure function: the same chart, the
same bytes.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from reports.trend import PALETTE, _escape, _n

_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_LEFT, _RIGHT, _TOP, _BOTTOM, _LEGEND_ROW = 52, 14, 28, 40, 16


def _ticks(top: float) -> tuple[float, list[float]]:
    """A rounded axis top and its ticks, 0 included."""
    if top <= 0:
        return 1.0, [0.0, 0.5, 1.0]
    raw = top / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    count = math.ceil(top / step)
    return step * count, [step * i for i in range(count + 1)]


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10000:
        return f"{value / 1000:.0f}k"
    return f"{value:.3g}"


def chart_svg(chart: Mapping[str, Any], width: int = 560, height: int = 260) -> str:
    """One `<svg>` element for `chart` (see the module docstring)."""
    series = list(chart.get("series") or [])
    legend_rows = _legend_rows(series, width) if chart.get("kind") != "bar" else []
    legend_h = _LEGEND_ROW * (1 + max((r for r, _, _ in legend_rows), default=-1))
    box = (_LEFT, _TOP, width - _LEFT - _RIGHT, height - _TOP - _BOTTOM - legend_h)
    title = _escape(str(chart.get("title", "")))
    medians = [p["y"] for s in series for p in s["points"]]
    top, ticks = _ticks(max(medians, default=0.0) * 1.15)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%"'
           f' style="max-width:{width}px" role="img" aria-label="{title}" {_FONT}>', f"<title>{title}</title>",
           f'<text x="{_LEFT}" y="16" font-weight="600" fill="#1d232b">{title}</text>']
    out += _axes(box, ticks, top, chart)
    if chart.get("kind") == "bar":
        out += _bars(series[0]["points"] if series else [], box, top)
    else:
        xs = sorted({p["x"] for s in series for p in s["points"] if isinstance(p["x"], (int, float))})
        out += _x_ticks(xs, box)
        for i, s in enumerate(series):
            out += _line(s["points"], xs, box, top, PALETTE[i % len(PALETTE)])
        out += _legend(legend_rows, height - legend_h + 4)
    out.append("</svg>")
    return "\n".join(out)


def _x_of(x: float, xs: Sequence[float], box: tuple[float, float, float, float]) -> float:
    left, _, w, _ = box
    lo, hi = (xs[0], xs[-1]) if xs else (0.0, 1.0)
    inset = 10.0
    return left + inset + (w - 2 * inset) * ((x - lo) / (hi - lo) if hi > lo else 0.5)


def _y_of(y: float, box: tuple[float, float, float, float], top: float) -> float:
    _, t, _, h = box
    return t + h * (1 - min(max(y, 0.0), top) / top)


def _axes(box: tuple[float, float, float, float], ticks: list[float], top: float,
          chart: Mapping[str, Any]) -> list[str]:
    left, t, w, h = box
    out = []
    for value in ticks:
        y = _y_of(value, box, top)
        out.append(f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(left + w)}" y2="{_n(y)}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{_n(left - 6)}" y="{_n(y + 4)}" text-anchor="end" fill="#6b7280">{_label(value)}</text>')
    out.append(f'<text x="12" y="{_n(t + h / 2)}" text-anchor="middle" fill="#374151"'
               f' transform="rotate(-90 12 {_n(t + h / 2)})">{_escape(str(chart.get("y_label", "")))}</text>')
    out.append(f'<text x="{_n(left + w / 2)}" y="{_n(t + h + 32)}" text-anchor="middle" fill="#374151">'
               f'{_escape(str(chart.get("x_label", "")))}</text>')
    return out


def _x_ticks(xs: Sequence[float], box: tuple[float, float, float, float]) -> list[str]:
    _, t, _, h = box
    return [f'<text x="{_n(_x_of(x, xs, box))}" y="{_n(t + h + 14)}" text-anchor="middle" fill="#6b7280">'
            f'{_label(x)}</text>' for x in xs]


def _line(points: Sequence[Mapping[str, Any]], xs: Sequence[float], box: tuple[float, float, float, float],
          top: float, colour: str) -> list[str]:
    placed = sorted(((_x_of(p["x"], xs, box), p) for p in points if isinstance(p["x"], (int, float))),
                    key=lambda item: item[0])
    out = []
    if len(placed) > 1:
        coords = " ".join(f"{_n(x)},{_n(_y_of(p['y'], box, top))}" for x, p in placed)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for x, p in placed:
        if p.get("low") is not None and p.get("high") is not None:
            cut = p["high"] > top
            y_hi, y_lo = _y_of(p["high"], box, top), _y_of(p["low"], box, top)
            out.append(f'<line x1="{_n(x)}" y1="{_n(y_hi)}" x2="{_n(x)}" y2="{_n(y_lo)}" stroke="{colour}"/>')
            for y in (y_lo,) if cut else (y_lo, y_hi):
                out.append(f'<line x1="{_n(x - 4)}" y1="{_n(y)}" x2="{_n(x + 4)}" y2="{_n(y)}" stroke="{colour}"/>')
        tip = _escape(f"{_label(p['x'])}: {p['y']:.4g}" + (f" [{p['low']:.4g}–{p['high']:.4g}]"
                                                            if p.get("low") is not None else ""))
        out.append(f'<circle cx="{_n(x)}" cy="{_n(_y_of(p["y"], box, top))}" r="3" fill="{colour}">'
                   f"<title>{tip}</title></circle>")
    return out


def _bars(points: Sequence[Mapping[str, Any]], box: tuple[float, float, float, float], top: float) -> list[str]:
    left, t, w, h = box
    if not points:
        return []
    slot = w / len(points)
    out = []
    for i, p in enumerate(points):
        x, y = left + slot * i + slot * 0.2, _y_of(p["y"], box, top)
        out.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(slot * 0.6)}" height="{_n(t + h - y)}"'
                   f' fill="{PALETTE[0]}"><title>{_escape(str(p["x"]))}: {p["y"]:.4g}</title></rect>')
        out.append(f'<text x="{_n(x + slot * 0.3)}" y="{_n(y - 4)}" text-anchor="middle" fill="#374151">'
                   f'{p["y"]:.3g}</text>')
        out.append(f'<text x="{_n(x + slot * 0.3)}" y="{_n(t + h + 14)}" text-anchor="middle" fill="#6b7280">'
                   f'{_escape(str(p["x"])[:24])}</text>')
    return out


def _legend_rows(series: Sequence[Mapping[str, Any]], width: int) -> list[tuple[int, float, str]]:
    out, row, x = [], 0, float(_LEFT)
    for s in series:
        label = str(s.get("name", ""))[:40]
        item = 26 + 6.5 * len(label)
        if x + item > width - _RIGHT and x > _LEFT:
            row, x = row + 1, float(_LEFT)
        out.append((row, x, label))
        x += item
    return out


def _legend(rows: Sequence[tuple[int, float, str]], top: float) -> list[str]:
    out = []
    for i, (row, x, label) in enumerate(rows):
        y = top + row * _LEGEND_ROW + 8
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<line x1="{_n(x)}" y1="{_n(y - 4)}" x2="{_n(x + 18)}" y2="{_n(y - 4)}" stroke="{colour}"'
                   ' stroke-width="2"/>')
        out.append(f'<text x="{_n(x + 22)}" y="{_n(y)}" fill="#374151">{_escape(label)}</text>')
    return out
