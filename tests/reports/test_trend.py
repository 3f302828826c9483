"""The SVG trend chart: well-formed, deterministic, escaped, honest about gaps."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reports.trend import MIN_SPAN, NO_SHIP_COLOUR, SCORE_COLOUR, SHIP_COLOUR, trend_svg

SVG = "{http://www.w3.org/2000/svg}"


def _point(day: int, score: float | None, ship: bool = True, **components: float | None) -> dict:
    return {"generated_at": f"2026-11-{day:02d}T10:00:00Z", "score": score, "verdict_ship": ship,
            "components": components or {"tests": 90.0, "coverage": 70.0}}


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _polylines(root: ET.Element, colour: str) -> list[list[tuple[float, float]]]:
    return [[tuple(map(float, xy.split(","))) for xy in p.get("points").split()]
            for p in root.iter(f"{SVG}polyline") if p.get("stroke") == colour]


def test_chart_is_well_formed_svg_that_scales_to_its_container() -> None:
    root = _parse(trend_svg([_point(1, 80.0), _point(2, 85.0)], width=500, height=200))
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("100%", None, "0 0 500 200")
    assert root.get("style") == "max-width:500px"  # never drawn larger than designed


def test_same_trend_gives_the_same_bytes() -> None:
    trend = [_point(1, 80.0), _point(2, 70.5, ship=False), _point(3, 90.0)]
    assert trend_svg(trend) == trend_svg([dict(p) for p in trend])


def test_higher_scores_are_drawn_higher_and_later_points_further_right() -> None:
    root = _parse(trend_svg([_point(1, 20.0), _point(2, 90.0)]))
    [[(x1, y1), (x2, y2)]] = _polylines(root, SCORE_COLOUR)
    assert x2 > x1 and y2 < y1


def test_score_points_are_coloured_by_verdict() -> None:
    root = _parse(trend_svg([_point(1, 80.0, ship=True), _point(2, 60.0, ship=False)]))
    fills = [c.get("fill") for c in root.iter(f"{SVG}circle") if c.get("r") == "3.5"]
    assert fills == [SHIP_COLOUR, NO_SHIP_COLOUR]


def test_a_missing_score_leaves_a_gap_not_a_drop_to_zero() -> None:
    root = _parse(trend_svg([_point(1, 80.0), _point(2, 82.0), _point(3, None), _point(4, 85.0),
                             _point(5, 86.0)]))
    runs = _polylines(root, SCORE_COLOUR)
    assert [len(run) for run in runs] == [2, 2]


def test_each_component_gets_its_own_line_and_legend_entry() -> None:
    root = _parse(trend_svg([_point(1, 80.0), _point(2, 85.0)]))
    lines = [p for p in root.iter(f"{SVG}polyline") if p.get("stroke") != SCORE_COLOUR]
    assert len(lines) == 2
    legend = [t.text for t in root.iter(f"{SVG}text")]
    assert {"score", "coverage", "tests"} <= set(legend)


def test_document_text_is_escaped_and_forbidden_characters_dropped() -> None:
    nasty = '<script>alert("x")</script>&\x00\x07'
    svg = trend_svg([{"generated_at": "<b>2026</b>", "score": 50.0, "verdict_ship": True,
                      "components": {nasty: 40.0}}])
    assert "<script>" not in svg and "<b>" not in svg
    root = _parse(svg)  # parses: nothing forbidden in XML is left
    assert '<script>alert("x")</script>&' in [t.text for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("score", [float("nan"), float("inf"), "85", True, None])
def test_values_that_are_not_finite_numbers_are_not_drawn(score: object) -> None:
    root = _parse(trend_svg([_point(1, score), _point(2, score)]))  # type: ignore[arg-type]
    assert _polylines(root, SCORE_COLOUR) == []
    assert "nan" not in trend_svg([_point(1, score)]).lower()  # type: ignore[arg-type]


def test_scores_outside_0_to_100_are_clamped_to_the_chart() -> None:
    root = _parse(trend_svg([_point(1, -5.0), _point(2, 150.0)], height=240))
    [[(_, y1), (_, y2)]] = _polylines(root, SCORE_COLOUR)
    assert 0 <= y2 < y1 <= 240


def test_an_empty_trend_says_there_is_nothing_yet() -> None:
    root = _parse(trend_svg([]))
    assert "No assessments recorded yet" in [t.text for t in root.iter(f"{SVG}text")]


def test_a_single_assessment_is_a_dot() -> None:
    root = _parse(trend_svg([_point(1, 80.0)]))
    assert _polylines(root, SCORE_COLOUR) == []
    assert any(c.get("fill") == SHIP_COLOUR for c in root.iter(f"{SVG}circle"))


def test_only_numbers_and_fixed_words_appear_besides_dates_and_component_names() -> None:
    svg = trend_svg([_point(1, 80.0, tests=1.0), _point(2, 81.0, tests=2.0)])
    texts = [t.text for t in _parse(svg).iter(f"{SVG}text")]
    allowed = {"score", "tests", "2026-11-01", "2026-11-02"}
    assert all(t in allowed or re.fullmatch(r"\d+", t) for t in texts), texts


def test_trend_module_imports_only_the_standard_library() -> None:
    source = Path(__file__).parents[2].joinpath("reports", "trend.py").read_text()
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "math", "re", "dataclasses", "datetime", "typing"}


def _ticks(root: ET.Element) -> dict[int, float]:
    """y-axis labels: value -> y of the label."""
    return {int(t.text): float(t.get("y")) for t in root.iter(f"{SVG}text")
            if t.get("text-anchor") == "end" and re.fullmatch(r"\d+", t.text or "")}


def test_y_axis_spans_the_data_so_close_scores_are_not_one_flat_line() -> None:
    root = _parse(trend_svg([_point(1, 95.0, tests=96.0), _point(2, 97.0, tests=96.5),
                             _point(3, 96.0, tests=97.0)], height=240))
    [[(_, y1), (_, y2), (_, y3)]] = _polylines(root, SCORE_COLOUR)
    ticks = _ticks(root)
    plot_h = max(ticks.values()) - min(ticks.values())
    assert abs(y1 - y2) > 0.15 * plot_h  # two points apart on a 0..100 axis would be 2 % of it
    assert 0 not in ticks and min(ticks) <= 95 and max(ticks) >= 97
    assert y2 < y3 < y1


def test_y_axis_ticks_are_evenly_spaced_labelled_round_numbers() -> None:
    ticks = _ticks(_parse(trend_svg([_point(1, 62.0), _point(2, 81.0)])))
    values = sorted(ticks)
    steps = {b - a for a, b in zip(values, values[1:])}
    assert len(values) >= 3 and len(steps) == 1 and steps.pop() in (1, 2, 5, 10, 20)
    gaps = {round(ticks[a] - ticks[b], 1) for a, b in zip(values, values[1:])}
    assert len(gaps) == 1  # equal steps are equal distances
    assert values[0] <= 62 and values[-1] >= 81


def test_identical_scores_still_get_a_sensible_span() -> None:
    ticks = _ticks(_parse(trend_svg([_point(1, 88.0), _point(2, 88.0)])))
    assert max(ticks) - min(ticks) >= MIN_SPAN and min(ticks) < 88 < max(ticks)


def test_scores_at_the_ends_keep_the_axis_inside_0_to_100() -> None:
    for score in (0.0, 100.0):
        ticks = _ticks(_parse(trend_svg([_point(1, score), _point(2, score)])))
        assert min(ticks) >= 0 and max(ticks) <= 100 and max(ticks) - min(ticks) >= MIN_SPAN


def test_assessments_of_one_day_are_labelled_by_time() -> None:
    trend = [{"generated_at": f"2026-11-23T{hh_mm}:00Z", "score": 80.0, "verdict_ship": True, "components": {}}
             for hh_mm in ("09:15", "11:00", "17:40")]
    texts = [t.text for t in _parse(trend_svg(trend)).iter(f"{SVG}text")]
    assert "2026-11-23 09:15" in texts and "17:40" in texts


def test_assessments_of_several_days_are_labelled_by_date() -> None:
    texts = [t.text for t in _parse(trend_svg([_point(1, 80.0), _point(3, 81.0)])).iter(f"{SVG}text")]
    assert "2026-11-01" in texts and "2026-11-03" in texts and not any(":" in (t or "") for t in texts)
