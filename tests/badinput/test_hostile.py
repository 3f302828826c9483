"""Hostile content end to end: what a project's tests and comments say cannot break a report.

One real `readiness assess` (subprocess) on a project whose parametrized test
ids, failure messages and blocking TODO/FIXME texts carry `<script>`, quotes,
`]]>`, entities and control characters (BEL, ESC);
the project's name carries them too. Every payload must reach
the reports (they are findings) and be inert there: escaped in HTML and
Markdown, well-formed JUnit XML that defusedxml parses, and no control
characters in any report or in the terminal summary. (Whether a browser runs
a script is tests/reports/test_browser.py's business.)
"""

from __future__ import annotations

from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest

from tests.badinput.project import assert_no_traceback, run_cli, write_config

NAME_XSS = "<script>alert('xss-test-name')</script>"
FAIL_XSS = "<script>alert(\"xss-failure\")</script> ]]> &amp; \x07\x1b[2J"
TODO_XSS = "<script>alert('xss-todo')</script> \"q\" \x07\x1b[31m"
PROJECT_TOML = 'project = "<script>alert(\'xss-project\')</script> \\u001b[2J\\u0007"\n'
MARKERS = ("xss-test-name", "xss-failure", "xss-todo", "xss-project")
CONTROL = ("\x07", "\x1b")

TESTS = f'''
import pytest

@pytest.mark.parametrize("payload", [{NAME_XSS!r}])
def test_hostile_name(payload):
    pytest.fail("the id carries the payload")


def test_hostile_failure():
    assert False, {FAIL_XSS!r}
'''

SOURCE = f"""
def add(a, b):
    # FIXME {TODO_XSS}
    return a + b  # TODO(blocker) {TODO_XSS}
"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("hostile")
    (root / "src").mkdir()
    (root / "src" / "calc.py").write_text(SOURCE, encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text(TESTS, encoding="utf-8")
    write_config(root, PROJECT_TOML + '[code]\nsources = ["src"]\ntests = ["tests"]\n')
    proc = run_cli(["assess", "--gate", "suite_health", "--gate", "hygiene", "-o", "out"], cwd=root)
    assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stderr[-3000:]
    return root / "out", proc.stderr


def test_hostile_payloads_reach_every_report(reports: tuple[Path, str]) -> None:
    out, _ = reports
    for name in ("report.html", "report.md"):
        text = (out / name).read_text(encoding="utf-8")
        for marker in MARKERS:
            assert marker in text, f"{marker} missing from {name}: the finding was dropped"


def test_html_escapes_every_payload(reports: tuple[Path, str]) -> None:
    text = (reports[0] / "report.html").read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(" in text
    assert not any(c in text for c in CONTROL)


def test_markdown_escapes_every_payload(reports: tuple[Path, str]) -> None:
    text = (reports[0] / "report.md").read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not any(c in text for c in CONTROL)


def test_junit_parses_with_defusedxml_and_keeps_the_payload_as_text(reports: tuple[Path, str]) -> None:
    raw = (reports[0] / "junit.xml").read_bytes()
    root = SafeET.fromstring(raw)
    assert b"<script" not in raw.lower()
    assert not any(c.encode() in raw for c in CONTROL)
    texts = " ".join([*(e.text or "" for e in root.iter()), *(v for e in root.iter() for v in e.attrib.values())])
    assert "<script>alert(" in texts, "the payload should survive as text once parsed"


def test_terminal_summary_carries_no_control_characters(reports: tuple[Path, str]) -> None:
    assert "xss-project" in reports[1]
    assert not any(c in reports[1] for c in CONTROL)


# -- every string a stored document carries ------------------------------------------
# `readiness report` re-renders any stored document (a CI artifact, a merged
# partial), so every string in it is untrusted, not only test output.

DOC_PAYLOAD = "\x07\x1b<script>alert('doc')</script>\x07\x1b[2J"  # leading: survives truncation


def _set(path: str, value_of: object) -> object:
    def apply(doc: dict) -> None:
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value_of
    return apply


P = DOC_PAYLOAD
DOC_FIELDS = {
    "gate_name": _set("gates.0.name", P),
    "gate_summary": _set("gates.0.summary", P),
    "gate_remediation": _set("gates.0.remediation", P),
    "metric_key_and_value": _set("gates.0.metrics", {P: P}),
    "evidence_everything": _set("gates.0.evidence", {"files": [P], "failures": [{"title": P, "detail": P}],
                                                     "tables": [{"title": P, "columns": [P], "rows": [[P]]}]}),
    "component_name": _set("components.0.name", P),
    "component_notes": _set("components.0.notes", [P]),
    "verdict_reasons": _set("verdict.reasons", [P]),
    "git_branch": _set("git.branch", P),
    "git_commit": _set("git.commit", P),
    "host": _set("host", {P: P}),
    "tool_versions": _set("tool_versions", {P: P}),
    "model": _set("model", {P: P}),
    "project": _set("project", {"name": P, "root": P}),
    "generated_at": _set("generated_at", P),
    "baseline": _set("baseline", {P: P, "generated_at": P, "score": 50}),
    "trend": _set("trend", [{"score": 10, "generated_at": P}, {"score": 20, "generated_at": P, "commit": P}]),
}
LEAKS = {}


def _doc_param(field: str, fmt: str):
    leak = LEAKS.get((field, fmt))
    reason = f"bug: {field} reaches the {fmt} report with {leak}"
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if leak else []
    return pytest.param(field, fmt, id=f"{field}-{fmt}", marks=marks)


@pytest.mark.parametrize(("field", "fmt"), [_doc_param(f, m) for f in DOC_FIELDS for m in ("html", "md", "junit")])
def test_every_document_string_is_inert_in_every_report(field: str, fmt: str) -> None:
    import json

    from readiness.document import validate
    from reports import formats
    from tests.badinput.project import CORPUS

    doc = json.loads((CORPUS / "document" / "valid.json").read_text(encoding="utf-8"))
    DOC_FIELDS[field](doc)
    text = formats.render(validate(doc, "hostile.json"), fmt)
    if fmt == "junit":
        SafeET.fromstring(text.encode("utf-8"))
    if (field, fmt) != ("git_commit", "md"):  # the commit sits in a code span: `<script>` is inert there
        assert "<script" not in text.lower()
    assert not any(c in text for c in CONTROL)
