"""Bad or misleading command lines of `readiness assess`, as CI meets them: a subprocess each.

`--fail-under` outside 0..100 (or not a number), no configuration anywhere,
and partial runs (`--gate`, `--skip`). The first two are refused before any
gate runs, with one line and nothing written; a partial run is never a ship
decision: exit 0 only says the selected gates passed, and the document, the
reports and the history say it was partial.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.badinput.project import assert_no_traceback, assert_refused, run_cli
from tests.conftest import read_document

GOOD_JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest" tests="1"><testcase classname="tests.test_mod" name="test_ok" time="0.01"/>
</testsuite></testsuites>
"""
BAD_JUNIT = GOOD_JUNIT.replace('time="0.01"/>', 'time="0.01"><failure message="boom"/></testcase>')
CONFIG = """enable = ["suite_health", "hygiene"]

[code]
sources = ["src"]
junit_xml = "junit.xml"
"""


def _project(tmp_path: Path, junit: str = GOOD_JUNIT) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "mod.py").write_text("def f():\n    return 1\n")
    (root / "junit.xml").write_text(junit)
    (root / "readiness.toml").write_text(CONFIG)  # history on: partial runs must be marked there too
    return root


_doc = read_document


@pytest.mark.parametrize(("value", "fragment"), [
    ("-5", "--fail-under -5: the threshold must be a number in 0..100"),
    ("150", "--fail-under 150: the threshold must be a number in 0..100"),
    ("nan", "--fail-under nan: the threshold must be a number in 0..100"),
    ("inf", "--fail-under inf: the threshold must be a number in 0..100"),
    ("high", "--fail-under 'high': not a number; give a threshold in 0..100"),
])
def test_fail_under_outside_0_to_100_is_refused_before_any_gate_runs(tmp_path: Path, value: str,
                                                                     fragment: str) -> None:
    root = _project(tmp_path)
    proc = run_cli(["assess", "--fail-under", value, "-o", "out"], root)
    assert_refused(proc, "--fail-under", fragment)
    assert not (root / "out").exists() and not (root / ".readiness").exists()


def test_no_configuration_anywhere_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli(["assess"], empty)
    line = assert_refused(proc, str(empty.resolve()), "no configuration found", "readiness.toml",
                          "pyproject.toml", "run `readiness init`")
    assert "every folder above it" in line
    assert list(empty.iterdir()) == [], "an assessment without configuration wrote into the folder"


@pytest.mark.parametrize("selection", [["--gate", "suite_health"], ["--skip", "hygiene"]])
def test_a_partial_run_exits_0_only_for_the_selected_gates_and_never_ships(tmp_path: Path,
                                                                          selection: list[str]) -> None:
    root = _project(tmp_path)
    proc = run_cli(["assess", *selection, "-o", "out"], root)
    assert_no_traceback(proc)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "partial: 1 of 2 gates ran (left out: hygiene" in proc.stderr
    assert "not a ship decision" in proc.stderr and ": SHIP" not in proc.stderr
    doc = _doc(root)
    assert doc["verdict"]["ship"] is False and doc["partial"]["left_out"] == ["hygiene"]
    for name in ("report.html", "report.md", "junit.xml"):
        assert "PARTIAL: SELECTED GATES PASSED" in (root / "out" / name).read_text(encoding="utf-8")
    listed = run_cli(["history"], root)
    row = next(line for line in listed.stdout.splitlines() if line.lstrip().startswith("1 "))
    assert "partial" in row and "ship" not in row.replace("partial", "")


def test_a_partial_run_whose_selected_gate_fails_exits_1(tmp_path: Path) -> None:
    root = _project(tmp_path, junit=BAD_JUNIT)
    proc = run_cli(["assess", "--gate", "suite_health", "-o", "out"], root)
    assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "PARTIAL: SELECTED GATES FAILED" in proc.stderr
    assert _doc(root)["band"] == "partial run, blocked by suite_health"


def test_a_partial_run_is_not_compared_with_a_full_one_nor_made_the_baseline(tmp_path: Path) -> None:
    root = _project(tmp_path)
    full = run_cli(["assess", "-o", "out"], root)
    assert full.returncode == 0 and _doc(root)["verdict"]["ship"] is True, full.stderr[-3000:]
    partial = run_cli(["assess", "--gate", "suite_health", "-o", "out"], root)
    assert partial.returncode == 0, partial.stderr[-3000:]
    listed = run_cli(["history"], root).stdout
    row = next(line for line in listed.splitlines() if line.lstrip().startswith("2 "))
    assert "▲" not in row and "▼" not in row and "partial" in row
    refused = run_cli(["baseline", "set"], root)  # default: the latest, which is partial
    assert refused.returncode == 2
    assert "#2 is a partial assessment (hygiene left out)" in refused.stderr and "--force" in refused.stderr
    assert "no baseline" in run_cli(["baseline", "show"], root).stdout
