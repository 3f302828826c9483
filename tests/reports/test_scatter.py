"""The scatter chart an evidence table can ask for, and where the HTML report puts it."""

from __future__ import annotations

from reports.scatter import scatter_svg

TABLE = {"title": "Core ML variants: quality cost against size saving",
         "columns": ["target", "size_saving_pct", "kl"],
         "rows": [["coreml_int4_block32", 38.5, 0.016], ["<script>alert(1)</script>", 20.0, 0.001],
                  ["coreml_fp16", 0.0, 0.0], ["coreml_broken", None, 0.2]],
         "chart": {"type": "scatter", "x": "size_saving_pct", "y": "kl", "label": "target", "y_scale": "log"}}


def test_each_plottable_row_is_a_labelled_point_and_labels_are_escaped():
    svg = scatter_svg(TABLE)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 2  # KL 0 has no place on a log axis; a missing size none at all
    assert "coreml_int4_block32" in svg and "&lt;script&gt;" in svg and "<script>" not in svg


def test_no_chart_without_a_known_hint_or_plottable_rows():
    assert scatter_svg({**TABLE, "chart": {"type": "pie"}}) is None
    assert scatter_svg({**TABLE, "chart": {**TABLE["chart"], "y": "absent"}}) is None
    assert scatter_svg({**TABLE, "rows": [["a", None, None]]}) is None


def test_html_report_draws_the_chart_beside_its_table_and_markdown_keeps_the_table():
    from reports import html, markdown
    from tests.reports.sample import build

    doc = build()
    gate = next(g for g in doc["gates"] if g["name"] == "parity")
    gate["evidence"] = {**(gate.get("evidence") or {}), "tables": [TABLE]}
    page = html.render(doc)
    assert page.count('aria-label="Core ML variants: quality cost against size saving"') == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "coreml_int4_block32" in markdown.render(doc) and "<svg" not in markdown.render(doc)
