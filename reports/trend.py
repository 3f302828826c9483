"""An inline SVG line chart of the readiness score and its components over time.

`trend_svg(trend)` draws the `trend` key of an assessment document: one
point per assessment, oldest first, each
`{"generated_at", "score", "verdict_ship", "components": {name: score}}`
with scores on 0..100. The score is the thick line; its points are green
where the verdict was ship and red where it was not; each component is a thin
coloured line. A missing score leaves a gap rather than a line to zero.

The y axis spans the data, not 0..100 (scores of 95-97 on a 0..100 axis are
one flat line at the top), with at least `MIN_SPAN` points and labelled ticks
at round steps. The x axis names the first and last assessment by date, or
by time of day when all of them fall on one day. The chart has a viewBox and
width 100 %, so it shrinks with a narrow window instead of widening the page.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Iterable, Mapping, Sequence

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#F0E442")
DASHES = ("", "6 3", "2 3")  # cycled once the palette runs out
SCORE_COLOUR = "#1f2937"
SHIP_COLOUR, NO_SHIP_COLOUR = "#15803d", "#b91c1c"
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'
_XML_FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LEFT, _RIGHT, _TOP, _AXIS_H, _LEGEND_ROW_H = 34, 12, 10, 20, 16
MIN_SPAN = 10.0  # points: a smaller span would turn noise into cliffs
_STEPS = (1, 2, 5, 10, 20)  # tick steps, smallest first
_MAX_TICKS = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class Plot:
    """The plotting area in SVG units and the score range the y axis spans."""

    left: float
    top: float
    w: float
    h: float
    lo: float = 0.0
    hi: float = 100.0
    step: float = 20.0

    def y(self, value: float) -> float:
        return self.top + self.h * (self.hi - value) / (self.hi - self.lo)


def y_range(values: Sequence[float]) -> tuple[float, float, float]:
    """(low, high, tick step) of an axis that shows `values` within 0..100.

    >>> y_range([95.0, 96.5, 97.0])
    (88.0, 100.0, 2.0)
    >>> y_range([])
    (0.0, 100.0, 20.0)
    """
    if not values:
        return 0.0, 100.0, 20.0
    lo, hi = min(values), max(values)
    pad = max(MIN_SPAN - (hi - lo), 0.0) / 2 + (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad
    if lo < 0.0:
        lo, hi = 0.0, min(100.0, hi - lo)
    if hi > 100.0:
        lo, hi = max(0.0, lo - (hi - 100.0)), 100.0
    step = next((s for s in _STEPS if (hi - lo) / s <= _MAX_TICKS - 1), _STEPS[-1])
    lo, hi = max(0.0, math.floor(lo / step) * step), min(100.0, math.ceil(hi / step) * step)
    return float(lo), float(hi), float(step)


def trend_svg(trend: Sequence[Mapping[str, Any]], width: int = 640, height: int = 240) -> str:
    """The chart as one `<svg>` element (no XML declaration), ready to inline."""
    points = [p for p in trend if isinstance(p, Mapping)]
    names = sorted({str(n) for p in points for n in _components(p)})
    legend = _legend(["score", *names], width)
    bottom = _AXIS_H + _LEGEND_ROW_H * (1 + max((row for row, _, _ in legend), default=0))
    drawn = [v for p in points for v in (_score(p.get("score")), *map(_score, _components(p).values()))
             if v is not None]
    lo, hi, step = y_range(drawn)
    box = Plot(left=_LEFT, top=_TOP, w=max(width - _LEFT - _RIGHT, 10), h=max(height - _TOP - bottom, 10),
               lo=lo, hi=hi, step=step)
    label = f"Readiness score over the last {len(points)} assessments"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
             f' width="100%" style="max-width:{width}px" role="img" aria-label="{label}" {_FONT}>',
             f"<title>{label}</title>", *_grid(box)]
    if not points:
        parts.append(f'<text x="{_n(box.left + box.w / 2)}" y="{_n(box.top + box.h / 2)}"'
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


def _grid(box: Plot) -> list[str]:
    out = []
    for i in range(round((box.hi - box.lo) / box.step) + 1):
        value = box.lo + i * box.step
        y = box.y(value)
        out.append(f'<line x1="{_n(box.left)}" y1="{_n(y)}" x2="{_n(box.left + box.w)}" y2="{_n(y)}"'
                   f' stroke="#e5e7eb" stroke-width="1"/>')
        out.append(f'<text x="{_n(box.left - 6)}" y="{_n(y + 4)}" text-anchor="end" fill="#6b7280">'
                   f"{value:.0f}</text>")
    return out


def _series(xs: list[float], values: list[float | None], box: Plot, colour: str,
            dash: str, *, stroke_width: float) -> list[str]:
    """One polyline per run of measured values; a lone value is a dot."""
    out = []
    for run in _runs(values):
        coords = [(xs[i], box.y(values[i])) for i in run]  # type: ignore[arg-type]
        if len(coords) == 1:
            (x, y), = coords
            out.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(stroke_width)}" fill="{colour}"/>')
            continue
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        text = " ".join(f"{_n(x)},{_n(y)}" for x, y in coords)
        out.append(f'<polyline points="{text}" fill="none" stroke="{colour}"'
                   f' stroke-width="{_n(stroke_width)}" stroke-linejoin="round"{dash_attr}/>')
    return out


def _score_points(points: Sequence[Mapping[str, Any]], xs: list[float], box: Plot) -> list[str]:
    out = []
    for point, x in zip(points, xs):
        score = _score(point.get("score"))
        if score is None:
            continue
        ship = point.get("verdict_ship") is True
        tip = f"{_escape(_when(point.get('generated_at')))}: score {score:.1f} ({'ship' if ship else 'no ship'})"
        out.append(f'<circle cx="{_n(x)}" cy="{_n(box.y(score))}" r="3.5"'
                   f' fill="{SHIP_COLOUR if ship else NO_SHIP_COLOUR}" stroke="#ffffff"'
                   f' stroke-width="1"><title>{tip}</title></circle>')
    return out


def _date_labels(points: Sequence[Mapping[str, Any]], xs: list[float], box: Plot) -> list[str]:
    """The first and last only (more would overlap on a narrow chart): dates,
    or the day and then times of day when every assessment was made that day."""
    if not points:
        return []
    y = _n(box.top + box.h + 14)
    if len(points) == 1:
        ends = [(0, "middle", _when(points[0].get("generated_at"))[:10])]
    else:
        first, last = _when(points[0].get("generated_at")), _when(points[-1].get("generated_at"))
        instants = [_instant(p.get("generated_at")) for p in points]
        if None not in instants and len({i.date() for i in instants if i is not None}) == 1:
            last = last[11:]  # "2026-11-23 09:12" … "17:40"
        else:
            first, last = first[:10], last[:10]
        ends = [(0, "start", first), (len(points) - 1, "end", last)]
    return [f'<text x="{_n(xs[i])}" y="{y}" text-anchor="{anchor}" fill="#374151">{_escape(text)}</text>'
            for i, anchor, text in ends]


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


def _xs(count: int, box: Plot) -> list[float]:
    if count == 1:
        return [box.left + box.w / 2]
    inset = min(8.0, box.w / 4)  # keep the end points' dots inside the chart
    return [box.left + inset + (box.w - 2 * inset) * i / (count - 1) for i in range(count)]


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


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 time in UTC, or None when it is not one."""
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo is not None else when


def _when(value: Any) -> str:
    when = _instant(value)
    if when is None:
        return (str(value) if value is not None else "")[:32]
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
