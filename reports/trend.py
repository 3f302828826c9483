"""An inline SVG line chart of the readiness score and its components over time.

`trend_svg(trend)` draws the `trend` key of an assessment document: one
point per assessment, oldest first, each
`{"generated_at", "score", "verdict_ship", "components": {name: score}}`
with scores on 0..100. The score is the thick line; its points are green
where the verdict was ship and red where it was not; each component is a thin
coloured line. A missing score leaves a gap rather than a line to zero.

Standard library only and a pure function: the same trend gives the same
bytes, so HTML gold files stay stable. The only text taken from the document
is the dates and the component names, and both are XML-escaped (characters
XML forbids are dropped); everything else in the markup is numbers or
fixed words, which is what lets the HTML report embed the result as-is.

    >>> svg = trend_svg([{"generated_at": "2026-11-23T10:00:00Z", "score": 80.0,
    ...                   "verdict_ship": True, "components": {"<tests>": 90.0}}])
    >>> svg.startswith("<svg") and "&lt;tests&gt;" in svg and "<tests>" not in svg
    True
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#F0E442")
DASHES = ("", "6 3", "2 3")  # cycled once the palette runs out
SCORE_COLOUR = "#1f2937"
SHIP_COLOUR, NO_SHIP_COLOUR = "#15803d", "#b91c1c"
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_XML_FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LEFT, _RIGHT, _TOP, _AXIS_H, _LEGEND_ROW_H = 34, 12, 10, 20, 16


def trend_svg(trend: Sequence[Mapping[str, Any]], width: int = 640, height: int = 240) -> str:
    """The chart as one `<svg>` element (no XML declaration), ready to inline."""
    points = [p for p in trend if isinstance(p, Mapping)]
    names = sorted({str(n) for p in points for n in _components(p)})
    legend = _legend(["score", *names], width)
    bottom = _AXIS_H + _LEGEND_ROW_H * (1 + max((row for row, _, _ in legend), default=0))
    box = (_LEFT, _TOP, max(width - _LEFT - _RIGHT, 10), max(height - _TOP - bottom, 10))
    label = f"Readiness score over the last {len(points)} assessments"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
             f' width="{width}" height="{height}" role="img" aria-label="{label}" {_FONT}>',
             f"<title>{label}</title>", *_grid(box)]
    if not points:
        parts.append(f'<text x="{_n(box[0] + box[2] / 2)}" y="{_n(box[1] + box[3] / 2)}"'
                     ' text-anchor="middle" fill="#6b7280">No assessments recorded yet</text>')
    xs = _xs(len(points), box)
    for i, name in enumerate(names):
        values = [_score(_components(p).get(name)) for p in points]
        parts += _series(xs, values, box, _colour(i), _dash(i), stroke_width=1.5)
    parts += _series(xs, [_score(p.get("score")) for p in points], box, SCORE_COLOUR, "",
                     stroke_width=2.5)
    parts += _score_points(points, xs, box)
    parts += _date_labels(points, xs, box)
    parts += _legend_marks(legend, names, height - bottom + _AXIS_H)
    parts.append("</svg>")
    return "\n".join(parts)


def _grid(box: tuple[float, float, float, float]) -> list[str]:
    left, _, w, _ = box
    out = []
    for value in range(0, 101, 20):
        y = _y(value, box)
        out.append(f'<line x1="{left}" y1="{_n(y)}" x2="{_n(left + w)}" y2="{_n(y)}"'
                   f' stroke="#e5e7eb" stroke-width="1"/>')
        out.append(f'<text x="{left - 6}" y="{_n(y + 4)}" text-anchor="end" fill="#6b7280">{value}</text>')
    return out


def _series(xs: list[float], values: list[float | None], box: tuple[float, ...], colour: str,
            dash: str, *, stroke_width: float) -> list[str]:
    """One polyline per run of measured values; a lone value is a dot."""
    out = []
    for run in _runs(values):
        coords = [(xs[i], _y(values[i], box)) for i in run]  # type: ignore[arg-type]
        if len(coords) == 1:
            (x, y), = coords
            out.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(stroke_width)}" fill="{colour}"/>')
            continue
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        text = " ".join(f"{_n(x)},{_n(y)}" for x, y in coords)
        out.append(f'<polyline points="{text}" fill="none" stroke="{colour}"'
                   f' stroke-width="{_n(stroke_width)}" stroke-linejoin="round"{dash_attr}/>')
    return out


def _score_points(points: Sequence[Mapping[str, Any]], xs: list[float],
                  box: tuple[float, ...]) -> list[str]:
    out = []
    for point, x in zip(points, xs):
        score = _score(point.get("score"))
        if score is None:
            continue
        ship = point.get("verdict_ship") is True
        tip = f"{_escape(_when(point.get('generated_at')))}: score {score:.1f} ({'ship' if ship else 'no ship'})"
        out.append(f'<circle cx="{_n(x)}" cy="{_n(_y(score, box))}" r="3.5"'
                   f' fill="{SHIP_COLOUR if ship else NO_SHIP_COLOUR}" stroke="#ffffff"'
                   f' stroke-width="1"><title>{tip}</title></circle>')
    return out


def _date_labels(points: Sequence[Mapping[str, Any]], xs: list[float],
                 box: tuple[float, ...]) -> list[str]:
    """The first and last dates only: more would overlap on a narrow chart."""
    if not points:
        return []
    y = _n(box[1] + box[3] + 14)
    ends = [(0, "middle")] if len(points) == 1 else [(0, "start"), (len(points) - 1, "end")]
    return [f'<text x="{_n(xs[i])}" y="{y}" text-anchor="{anchor}" fill="#374151">'
            f"{_escape(_when(points[i].get('generated_at'))[:10])}</text>" for i, anchor in ends]


def _legend(labels: list[str], width: int) -> list[tuple[int, float, str]]:
    """(row, x, label) for each legend entry, wrapping at the chart width."""
    out, row, x = [], 0, float(_LEFT)
    for label in labels:
        item_w = 26 + 6.5 * min(len(label), 40)
        if x + item_w > width - _RIGHT and x > _LEFT:
            row, x = row + 1, float(_LEFT)
        out.append((row, x, label))
        x += item_w
    return out


def _legend_marks(legend: list[tuple[int, float, str]], names: list[str], top: float) -> list[str]:
    out = []
    for row, x, label in legend:
        y = top + row * _LEGEND_ROW_H + 8
        if label == "score" and (row, x) == legend[0][:2]:
            colour, dash, w = SCORE_COLOUR, "", 2.5
        else:
            i = names.index(label)
            colour, dash, w = _colour(i), _dash(i), 1.5
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{_n(x)}" y1="{_n(y - 4)}" x2="{_n(x + 18)}" y2="{_n(y - 4)}"'
                   f' stroke="{colour}" stroke-width="{w}"{dash_attr}/>')
        out.append(f'<text x="{_n(x + 22)}" y="{_n(y)}" fill="#374151">{_escape(_clip(label))}</text>')
    return out


def _xs(count: int, box: tuple[float, ...]) -> list[float]:
    left, _, w, _ = box
    if count == 1:
        return [left + w / 2]
    inset = min(8.0, w / 4)  # keep the end points' dots inside the chart
    return [left + inset + (w - 2 * inset) * i / (count - 1) for i in range(count)]


def _y(value: float, box: tuple[float, ...]) -> float:
    _, top, _, h = box
    return top + h * (1 - value / 100)


def _runs(values: list[float | None]) -> Iterable[list[int]]:
    run: list[int] = []
    for i, value in enumerate(values):
        if value is None:
            if run:
                yield run
            run = []
        else:
            run.append(i)
    if run:
        yield run


def _components(point: Mapping[str, Any]) -> Mapping[str, Any]:
    components = point.get("components")
    return components if isinstance(components, Mapping) else {}


def _score(value: Any) -> float | None:
    """A drawable 0..100 value, or None for anything missing or not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return min(max(float(value), 0.0), 100.0)


def _when(value: Any) -> str:
    text = str(value) if value is not None else ""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text[:32]
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M")


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _dash(i: int) -> str:
    return DASHES[(i // len(PALETTE)) % len(DASHES)]


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    text = _XML_FORBIDDEN.sub("", text)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def _n(value: float) -> str:
    """Coordinates with one decimal: enough for a screen, stable across platforms."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
