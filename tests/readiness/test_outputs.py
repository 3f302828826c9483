"""What the CLI does with a finished assessment: exit codes, report files, one view per run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from readiness import outputs
from readiness.assessment import assess
from readiness.config import load
from readiness.exit_codes import ExitCode
from readiness.selection import Request
from reports import view
from tests.conftest import write_outcome


@pytest.mark.parametrize(("status", "request_", "code"), [
    ("pass", Request(), ExitCode.SHIP),
    ("fail", Request(), ExitCode.NO_SHIP),
    ("pass", Request(skip=("dependent_gate",)), ExitCode.SELECTED_PASSED),
    ("fail", Request(skip=("dependent_gate",)), ExitCode.NO_SHIP),
])
def test_the_exit_code_follows_the_verdict(core_project: Path, status: str, request_: Request,
                                            code: ExitCode) -> None:
    write_outcome(core_project, status=status, score=1.0 if status == "pass" else 0.1)
    done = assess(load(core_project / "readiness.toml"), request_)
    assert outputs.exit_code(done) is code
    assert done.verdict.ship is (code is ExitCode.SHIP and not request_.skip)


def test_a_single_gate_exits_on_that_gate_alone(core_project: Path) -> None:
    write_outcome(core_project, status="fail", score=0.1)
    done = assess(load(core_project / "readiness.toml"), Request(only=("file_gate",)))
    assert outputs.gate_exit_code(done, "file_gate") is ExitCode.NO_SHIP
    assert outputs.gate_exit_code(done, "no_such_gate") is ExitCode.NO_SHIP
    write_outcome(core_project, status="pass", score=1.0)
    done = assess(load(core_project / "readiness.toml"), Request(only=("file_gate",), no_cache=True))
    assert outputs.gate_exit_code(done, "file_gate") is ExitCode.SHIP


def test_every_format_is_written_from_one_view(core_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_outcome(core_project, status="pass", score=1.0)
    done = assess(load(core_project / "readiness.toml"))
    built: list[int] = []
    real = view.build
    monkeypatch.setattr(view, "build", lambda doc: built.append(1) or real(doc))
    out = io.StringIO()
    files = outputs.write_reports(done.document, core_project / "out", ["json", "html", "md", "junit"],
                                  Console(file=out, width=200))
    assert [f.name for f in files] == ["assessment.json", "report.html", "report.md", "junit.xml"]
    assert all(f.stat().st_size > 0 for f in files)
    assert len(built) == 1  # four formats and the terminal summary share it
    text = out.getvalue()
    assert f"Wrote HTML report to {core_project / 'out' / 'report.html'}" in text and "SHIP" in text
