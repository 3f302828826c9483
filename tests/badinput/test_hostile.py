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
