"""Behaviour common to every report format, and byte-stable gold files."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reports import formats
from reports.view import pct
from tests.reports import sample

GOLD = Path(__file__).parent / "gold"
FORMAT_FILES = {"json": "report.json", "html": "report.html", "md": "report.md", "junit": "report.xml"}


@pytest.mark.parametrize("fmt", sorted(FORMAT_FILES))
def test_output_matches_gold_file(fmt: str) -> None:
    text = formats.render(sample.build(), fmt)
    gold = GOLD / FORMAT_FILES[fmt]
    if os.environ.get("READINESS_REGENERATE_GOLD"):
        gold.write_text(text, encoding="utf-8")
    assert text == gold.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", sorted(FORMAT_FILES))
def test_rendering_is_byte_stable(fmt: str) -> None:
    assert formats.render(sample.build(), fmt) == formats.render(sample.build(), fmt)


@pytest.mark.parametrize("fmt", ["html", "md", "junit"])
def test_every_format_shows_verdict_score_and_every_gate(fmt: str) -> None:
    doc = sample.build()
    text = formats.render(doc, fmt)
    for gate in doc["gates"]:
        assert gate["name"] in text
    assert pct(doc["score"]) in text
    assert "DO NOT SHIP" in text


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_hostile_text_is_escaped(fmt: str) -> None:
    text = formats.render(sample.build(), fmt)
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert "\x07" not in text


def test_junit_is_well_formed_with_one_case_per_gate() -> None:
    doc = sample.build()
    root = ET.fromstring(formats.render(doc, "junit").encode())
    cases = root.findall("testcase")
    assert [c.get("name") for c in cases] == [g["name"] for g in doc["gates"]]
    by_name = {c.get("name"): c for c in cases}
    assert by_name["suite_health"].find("failure") is not None
    assert by_name["parity"].find("error") is not None  # not_evaluable is never a pass
    assert by_name["mutation"].find("skipped") is not None
    assert root.get("failures") == "1" and root.get("errors") == "1"


def test_markdown_stays_under_a_pull_request_comment_limit() -> None:
    doc = sample.build()
    huge = {"title": "t", "detail": "x" * 5000}
    for gate in doc["gates"]:
        gate["evidence"] = {"failures": [huge] * 200,
                            "tables": [{"title": "big", "columns": ["a"], "rows": [["y" * 400]] * 500}]}
        gate["status"] = "fail"
    assert len(formats.render(doc, "md").encode()) <= 65_000


def test_markdown_table_cells_escape_pipes_and_newlines() -> None:
    text = formats.render(sample.build(), "md")
    row = next(line for line in text.splitlines() if line.startswith("| suite_health"))
    assert "\\|" in row and row.count(" | ") >= 5


def test_html_is_self_contained() -> None:
    text = formats.render(sample.build(), "html")
    assert "<script" not in text.lower()
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "@import" not in text


@pytest.mark.parametrize("value,expected", [(100.0, "100.0"), (99.96, "99.9"), (0.01, "0.1"), (0.0, "0.0"),
                                            (53.64, "53.6"), (None, "—")])
def test_percent_never_claims_100_or_0_unless_exact(value, expected) -> None:
    assert pct(value) == expected


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        formats.render(sample.build(), "pdf")


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_hostile_text_in_test_runtimes_is_escaped(fmt: str) -> None:
    runtimes = [{"executable": sample.HOSTILE, "python": sample.HOSTILE, "tools": {sample.HOSTILE: sample.HOSTILE},
                 "gates": [sample.HOSTILE], "error": sample.HOSTILE}]
    text = formats.render(sample.build(test_runtimes=runtimes), fmt)
    assert "<script>" not in text and "\x07" not in text
    assert text.count("&lt;script&gt;") > len(formats.render(sample.build(), fmt).split("&lt;script&gt;")) - 1
