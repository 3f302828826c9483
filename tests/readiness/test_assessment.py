"""`assess()`: one record whose parts agree, every step of the run done once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gates.result import Status
from readiness import assessment, config, document
from readiness.assessment import assess
from readiness.selection import Request
from tests.conftest import write_outcome


def _load(root: Path) -> config.LoadedConfig:
    return config.load(root / "readiness.toml")


def _clock() -> str:
    return "2026-11-23T12:00:00Z"


def test_the_record_and_its_document_agree(core_project: Path) -> None:
    write_outcome(core_project, status="pass", score=0.8)  # with dependent_gate's 1.0: 90
    done = assess(_load(core_project), clock=_clock)
    assert [r.name for r in done.results] == ["file_gate", "dependent_gate"]
    assert done.document["gates"] == [r.to_dict() for r in done.results]
    assert done.document["verdict"] == done.verdict.to_dict() and done.verdict.ship is True
    assert done.document["score"] == round(done.score.value, 4) == 90.0
    assert done.document["generated_at"] == "2026-11-23T12:00:00Z"
    assert done.partial is None and done.document["partial"] is None and done.baseline is None
    assert document.validate(dict(done.document)) is not None


def test_a_partial_run_says_which_gates_it_left_out_and_never_ships(core_project: Path) -> None:
    write_outcome(core_project, status="pass", score=1.0)
    done = assess(_load(core_project), Request(skip=("dependent_gate",)))
    assert done.partial is not None and done.partial.left_out == ("dependent_gate",)
    assert done.document["partial"] == {"ran": ["file_gate"], "left_out": ["dependent_gate"],
                                        "request": "--skip dependent_gate"}
    assert done.verdict.partial and done.verdict.passed and not done.verdict.ship
    assert done.result("dependent_gate").status is Status.OFF


def test_fail_under_replaces_the_configured_threshold(core_project: Path) -> None:
    write_outcome(core_project, status="pass", score=0.8)  # with dependent_gate's 1.0: 90
    assert assess(_load(core_project)).verdict.ship is True  # 90 >= the default 80
    strict = assess(_load(core_project), fail_under=95.0)
    assert strict.verdict.threshold == 95.0 and not strict.verdict.ship


def test_each_step_of_the_run_happens_once(core_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_outcome(core_project, status="pass", score=1.0)
    calls: dict[str, int] = {}

    def counted(module: Any, name: str) -> None:
        real = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for module, name in ((assessment, "select"), (assessment, "run_gates"), (assessment, "decide"),
                         (document, "measured"), (document, "decided"), (document, "validate"),
                         (assessment.history, "compare"), (assessment.history, "record")):
        counted(module, name)
    (core_project / "readiness.toml").write_text("project = 'p'\n")  # history on
    assess(_load(core_project))
    assert calls == {"select": 1, "run_gates": 1, "decide": 1, "measured": 1, "decided": 1, "validate": 1,
                     "compare": 1, "record": 1}


def test_history_is_compared_and_recorded(core_project: Path) -> None:
    (core_project / "readiness.toml").write_text("project = 'p'\n")
    write_outcome(core_project, status="pass", score=1.0)
    first = assess(_load(core_project))
    assert first.baseline is not None and first.baseline["first_run"] is True
    from readiness.history import store

    db = core_project / ".readiness" / "history.sqlite"
    store.mark_shipped(db, store.recent(db, "p", 1)[0]["id"])
    write_outcome(core_project, status="pass", score=0.5)
    second = assess(_load(core_project))
    assert second.baseline is not None and second.baseline["first_run"] is False
    assert any(r.startswith("regression: ") for r in second.verdict.reasons)
    assert not second.verdict.ship
    assert len(store.recent(db, "p", 10)) == 2


def test_without_history_nothing_is_compared_or_recorded(core_project: Path) -> None:
    (core_project / "readiness.toml").write_text("project = 'p'\n")
    write_outcome(core_project, status="pass", score=1.0)
    done = assess(_load(core_project), use_history=False)
    assert done.baseline is None and done.document["baseline"] is None
    assert not (core_project / ".readiness" / "history.sqlite").exists()


def test_a_bad_setting_stops_the_run_before_any_gate_runs(core_project: Path) -> None:
    (core_project / "readiness.toml").write_text("project = 'p'\n[gates.file_gate]\npaht = 'x'\n")
    with pytest.raises(config.ConfigError, match="unknown key 'gates.file_gate.paht'"):
        assess(_load(core_project))
    assert not (core_project / "calls.txt").exists()  # file_gate counts its runs there


def test_an_assessment_run_in_process_sets_the_allocator_as_the_cli_does(core_project: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Large freed blocks go back to the OS (pipeline/heap.py) whoever calls `assess`."""
    configured: list[bool] = []
    monkeypatch.setattr(assessment.heap, "configure", lambda: configured.append(True) or True)
    write_outcome(core_project, status="pass", score=1.0)
    assess(_load(core_project))
    assert configured == [True]
