"""A gate's charts: drawn inline in HTML (escaped, responsive), left to tables elsewhere."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from reports import formats
from reports.charts import chart_svg
from reports.view import chart_view
from tests.reports import sample

HOSTILE = sample.HOSTILE
LATENCY = {"title": f"Decode time {HOSTILE}", "kind": "line", "x_label": "cache length", "y_label": "ms",
           "series": [{"name": f"eager {HOSTILE}", "points": [{"x": 64, "y": 1.0, "low": 0.9, "high": 1.2},
                                                             {"x": 512, "y": 2.0, "low": 1.8, "high": 50.0}]},
                      {"name": "onnx", "points": [{"x": 64, "y": 0.3, "low": 0.2, "high": 0.4},
                                                  {"x": 512, "y": "nan", "low": None, "high": None},
                                                  {"x": 256, "y": math.inf}]}]}
SIZES = {"title": "Package size per target", "kind": "bar", "x_label": "target", "y_label": "MB",
         "series": [{"name": "package", "points": [{"x": "coreml_fp16", "y": 2.47}, {"x": f"<b>{HOSTILE}", "y": 4.8}]}]}


def performance_doc() -> dict:
    doc = sample.build()
    doc["gates"].append({"name": "performance", "status": "pass", "severity": "warning", "score": 1.0,
                         "summary": "measured", "metrics": {"onnx_fp32_decode_ms_T512": 0.28}, "remediation": "",
                         "duration_s": 2.0, "cached": False,
                         "evidence": {"show_details": True, "charts": [LATENCY, SIZES, "not a chart", {"series": []}],
                                      "tables": [{"title": "Latency per length", "columns": ["runtime", "ms"],
                                                  "rows": [["onnx_fp32", "0.28 [0.25–0.3]"]]}]}})
    return doc


def test_view_keeps_finite_points_and_drops_what_cannot_be_drawn() -> None:
    view = chart_view(LATENCY)
    assert [len(s["points"]) for s in view["series"]] == [2, 1]
    assert chart_view("not a chart") is None and chart_view({"series": [{"points": [{"y": "x"}]}]}) is None


def test_svg_is_well_formed_escaped_and_shrinks_with_the_window() -> None:
    for chart in (LATENCY, SIZES):
        svg = chart_svg(chart_view(chart))
        root = ET.fromstring(svg)  # well formed: hostile text did not break out
        assert root.get("width") == "100%" and root.get("viewBox", "").startswith("0 0 ")
        assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_a_whisker_past_the_top_is_cut_at_the_edge_not_the_axis_stretched() -> None:
    svg = chart_svg(chart_view(LATENCY))
    ticks = [float(t.text.rstrip("k")) for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")
             if t.get("text-anchor") == "end"]
    assert max(ticks) < 10  # medians reach 2.0; the 50.0 whisker does not set the scale


def test_html_shows_the_charts_beside_the_tables_and_other_formats_keep_the_tables() -> None:
    doc = performance_doc()
    html = formats.render(doc, "html")
    assert html.count('<div class="chart">') == 2 and 'aria-label="Package size per target"' in html
    assert html.index('<div class="charts">') < html.index("Latency per length")
    md = formats.render(doc, "md")
    assert "<svg" not in md
    assert "Latency per length" in md and "0.28 [0.25–0.3]" in md  # a passing gate that asks to show its figures
    doc["gates"][-1]["evidence"]["show_details"] = False
    assert "Latency per length" not in formats.render(doc, "md")
