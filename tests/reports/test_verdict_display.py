"""The band, colour and partial marking every format shows follow the verdict.

A no-ship assessment never shows a "ready" band or a green ring, whatever its
score; a partial run (`--gate`, `--skip`) says so in every format; documents
of schema 1 (a score band beside any verdict) render without the contradiction.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from rich.console import Console

from reports import formats, html, view
from reports.terminal import summary
from tests.reports import sample

GREEN = html.BAND_COLOUR["production ready"]


def _blocked_at_99() -> dict[str, Any]:
    """99.0 points, but the one blocker that failed vetoes shipping."""
    doc = sample.build()
    doc["score"], doc["score_band"] = 99.0, "production ready"
    doc["band"] = "blocked by suite_health"
    return doc


def _schema_1(doc: dict[str, Any]) -> dict[str, Any]:
    old = json.loads(json.dumps(doc))
    old["schema_version"] = 1
    old["band"] = old.pop("score_band")
    del old["partial"], old["verdict"]["partial"]
    return old


def _terminal(doc: dict[str, Any]) -> str:
    buffer = io.StringIO()
    summary(Console(file=buffer, width=200, color_system="truecolor", force_terminal=True), doc)
    return buffer.getvalue()


def _verdict_line(text: str) -> str:
    return next(line for line in text.splitlines() if "threshold" in line)


@pytest.mark.parametrize("make", [_blocked_at_99, lambda: _schema_1(_blocked_at_99())], ids=["schema2", "schema1"])
@pytest.mark.parametrize("fmt", ["html", "md", "junit"])
def test_no_ship_never_shows_a_ready_band(fmt: str, make) -> None:
    text = formats.render(make(), fmt)
    assert "DO NOT SHIP" in text
    assert "production ready" not in text and "mostly ready" not in text
    assert "blocked by suite_health" in text


def test_json_band_follows_the_verdict_and_keeps_the_score_band() -> None:
    doc = json.loads(formats.render(sample.build(), "json"))
    assert doc["verdict"]["ship"] is False
    assert doc["band"] == "blocked by suite_health, parity" and doc["score_band"] == "mostly ready"


@pytest.mark.parametrize("make", [_blocked_at_99, lambda: _schema_1(_blocked_at_99())], ids=["schema2", "schema1"])
def test_the_html_ring_is_never_green_beside_do_not_ship(make) -> None:
    text = formats.render(make(), "html")
    assert GREEN not in text
    assert f'stroke="{html.NO_SHIP_COLOUR}"' in text


def test_a_shipping_report_keeps_its_band_and_green_ring() -> None:
    doc = sample.build()
    for gate in doc["gates"]:
        if gate["status"] in ("fail", "not_evaluable", "warn"):
            gate.update(status="pass", score=1.0)
    doc.update(score=95.0, band="production ready", score_band="production ready")
    doc["verdict"].update(ship=True, reasons=[], vetoed_by=[])
    text = formats.render(doc, "html")
    assert f'stroke="{GREEN}"' in text and "production ready" in text and ">SHIP<" in text


@pytest.mark.parametrize("make", [_blocked_at_99, lambda: _schema_1(_blocked_at_99())], ids=["schema2", "schema1"])
def test_terminal_band_and_colour_follow_the_verdict(make) -> None:
    line = _verdict_line(_terminal(make()))
    assert "blocked by suite_health" in line and "production ready" not in line
    assert "DO NOT SHIP" in line and "\x1b[1;31m" in line  # bold red


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_a_partial_run_says_so_and_never_says_ship(fmt: str) -> None:
    text = formats.render(sample.build_partial(), fmt)
    assert "PARTIAL: SELECTED GATES PASSED" in text
    assert "partial: 1 of 4 gates ran (left out: export, suite_health, parity; --gate checkpoint);" \
           " not a ship decision" in text
    assert ">SHIP<" not in text and "**SHIP**" not in text
    assert "production ready" not in text


def test_a_partial_run_whose_gate_failed_is_red_and_says_it_failed() -> None:
    doc = sample.build_partial(passed=False)
    text = formats.render(doc, "html")
    assert "PARTIAL: SELECTED GATES FAILED" in text and f'stroke="{html.NO_SHIP_COLOUR}"' in text
    assert "partial run, blocked by checkpoint" in text


def test_a_partial_ring_is_neutral_not_green() -> None:
    text = formats.render(sample.build_partial(), "html")
    assert f'stroke="{html.PARTIAL_COLOUR}"' in text and GREEN not in text


def _properties(doc: dict[str, Any]) -> dict[str, str | None]:
    return {p.get("name"): p.get("value") for p in ET.fromstring(formats.render(doc, "junit")).iter("property")}


def test_junit_properties_mark_a_partial_run() -> None:
    props = _properties(sample.build_partial())
    assert props["partial"] == "true" and props["partial_note"].startswith("partial: 1 of 4 gates ran")
    assert props["verdict"] == "PARTIAL: SELECTED GATES PASSED" and props["band"] == "partial run"
    full = _properties(sample.build())
    assert full["partial"] == "false" and "partial_note" not in full


def test_json_marks_a_partial_run() -> None:
    doc = json.loads(formats.render(sample.build_partial(), "json"))
    assert doc["partial"]["left_out"] == ["export", "suite_health", "parity"]
    assert doc["verdict"]["partial"] is True and doc["verdict"]["ship"] is False


def test_terminal_marks_a_partial_run() -> None:
    text = _terminal(sample.build_partial())
    assert "PARTIAL: SELECTED GATES PASSED" in _verdict_line(text) and "partial run" in _verdict_line(text)
    assert "not a ship decision" in text


def test_a_partial_run_against_a_baseline_shows_no_score_arrow() -> None:
    doc = sample.build_partial()
    doc["baseline"] = {"first_run": False, "source": "history:1", "score": 70.0, "score_delta": None,
                       "partial": True, "gates": {}, "regressions": []}
    assert view.baseline_delta(view.build(doc)).startswith("not compared")
    for fmt in ("html", "md"):
        text = formats.render(doc, fmt)
        assert "▲" not in text and "not compared (a partial run" in text
