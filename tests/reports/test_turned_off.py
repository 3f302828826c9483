"""Gates turned off by configuration: one line per reason, not a row per gate.

A project without a model has eight model gates off for the same reason;
as rows they read like eight findings. Terminal, HTML and Markdown group
them; JUnit keeps one skipped case per gate, since CI systems count cases.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from gates.engine import registry
from gates.engine.protocol import Requires
from gates.result import LEGACY_OFF_FLAG, GateResult, Severity, Status
from readiness import document
from readiness.assessment import off_result
from readiness.scoring import score_components
from readiness.verdict import decide
from reports import formats, view
from reports.terminal import summary

MODEL_GATES = registry.requiring(Requires.MODEL)
NO_MODEL = "no [model] section in the configuration"
LINE = f"Turned off: {', '.join(MODEL_GATES)} — {NO_MODEL}"


def _code_only_document() -> dict:
    results = [off_result(name, NO_MODEL) for name in MODEL_GATES] + [
        GateResult(name="suite_health", status=Status.PASS, severity=Severity.BLOCKER, score=1.0,
                   summary="12/12 executed tests passed"),
        GateResult(name="hygiene", status=Status.SKIPPED, severity=Severity.WARNING,
                   summary="needs suite_health, which did not pass"),
        off_result("mutation", "with --skip")]
    score = score_components({r.name: r for r in results},
                             {"model": (50.0, MODEL_GATES), "tests": (50.0, ("suite_health", "mutation"))})
    return document.build(generated_at="2026-11-23T12:00:00Z", project={"name": "code-only"}, model=None,
                          git={"commit": None, "dirty": None, "branch": None}, host={}, tool_versions={},
                          config_digest="d", profile="default", results=results, score=score,
                          verdict=decide(results, score, 80.0))


def test_view_flag_matches_the_scoring_flag() -> None:
    assert view.TURNED_OFF == LEGACY_OFF_FLAG


def test_view_groups_turned_off_gates_by_reason_in_gate_order() -> None:
    v = view.build(_code_only_document())
    assert [g["line"] for g in v["turned_off"]] == [LINE, "Turned off: mutation — with --skip"]
    assert [g["name"] for g in v["gates"]] == ["suite_health", "hygiene"]  # a skip for a failed need stays a row
    assert len(v["every_gate"]) == len(MODEL_GATES) + 3


def test_html_shows_one_line_and_no_row_for_turned_off_gates() -> None:
    html = formats.render(_code_only_document(), "html")
    assert html.count('class="meta turned-off"') == 2
    assert LINE in html
    rows = re.findall(r'<tr class="gate-row" data-gate="([^"]+)"', html)
    assert rows == ["suite_health", "hygiene"]
    assert all(f"</span> {name}:" not in html for name in MODEL_GATES)  # no details block either


def test_markdown_shows_one_line_and_no_row_for_turned_off_gates() -> None:
    md = formats.render(_code_only_document(), "md")
    assert f"⏭️ {LINE}" in md.splitlines()
    table_rows = [line.split(" | ")[0].lstrip("| ") for line in md.splitlines() if line.startswith("| ")]
    assert not set(MODEL_GATES) & set(table_rows)


def test_terminal_shows_one_line_and_no_row_for_turned_off_gates() -> None:
    out = io.StringIO()
    summary(Console(file=out, width=300, color_system=None), _code_only_document())
    text = out.getvalue()
    assert LINE in text.splitlines()
    assert not [line for line in text.splitlines() if re.match(r"\W*environment\s+│", line)]


def test_junit_keeps_one_skipped_case_per_turned_off_gate() -> None:
    root = ET.fromstring(formats.render(_code_only_document(), "junit").encode())
    cases = {c.get("name"): c for c in root.findall("testcase")}
    assert set(MODEL_GATES) | {"suite_health", "hygiene", "mutation"} == set(cases)
    for name in MODEL_GATES:
        assert cases[name].find("skipped").get("message") == f"turned off: {NO_MODEL}"
    assert root.get("tests") == str(len(MODEL_GATES) + 3) and root.get("skipped") == str(len(MODEL_GATES) + 2)


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_every_turned_off_gate_is_still_named(fmt: str) -> None:
    text = formats.render(_code_only_document(), fmt)
    for name in MODEL_GATES:
        assert name in text


def _as_schema_2(doc: dict) -> dict:
    """The same document as schema 2 wrote it: a turned-off gate is `skipped` with a flag."""
    old = json.loads(json.dumps(doc))
    old["schema_version"] = 2
    for gate in old["gates"]:
        if gate["status"] == "off":
            reason = gate["evidence"].pop("off_because")
            gate.update(status="skipped", evidence={LEGACY_OFF_FLAG: True, "skipped_because": reason})
    return old


def test_new_documents_give_turned_off_gates_their_own_status() -> None:
    statuses = {g["name"]: g["status"] for g in _code_only_document()["gates"]}
    assert {statuses[n] for n in MODEL_GATES} == {"off"} and statuses["mutation"] == "off"
    assert statuses["hygiene"] == "skipped"  # a need that did not pass is still `skipped`


@pytest.mark.parametrize("fmt", ["html", "md", "junit", "json"])
def test_a_schema_2_document_renders_as_its_schema_3_form_does(fmt: str) -> None:
    new = _code_only_document()
    old = document.validate(_as_schema_2(new), "old.json")
    if fmt == "json":  # the stored form differs; what it means does not
        assert [(r.name, r.status) for r in document.results_of(old)] == \
               [(r.name, r.status) for r in document.results_of(new)]
        assert Status.OFF in {r.status for r in document.results_of(old)}
    else:
        assert formats.render(old, fmt) == formats.render(new, fmt)


def test_a_schema_2_document_cannot_carry_the_off_status() -> None:
    doc = _code_only_document()
    doc["schema_version"] = 2
    with pytest.raises(document.DocumentError,
                       match=r"old.json: invalid assessment document at gates/\d+/status: 'off' is not one of"):
        document.validate(doc, "old.json")
