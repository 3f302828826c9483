"""`readiness history`, `readiness diff` and `readiness baseline set|show` through Typer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from readiness.cli_history import register
from readiness.history import store as history
from readiness.history.store import HistorySettings
from tests.fixtures.history.documents import assessment, gate

BEFORE = assessment(generated_at="2026-11-20T10:00:00Z", score=80.0, commit="aaaa1111",
                    gates=[gate("coverage", score=0.8, line_pct=90.0),
                           gate("parity", max_abs_err=1e-5)])
AFTER = assessment(generated_at="2026-11-21T10:00:00Z", score=84.0, commit="bbbb2222",
                   gates=[gate("coverage", score=0.9, line_pct=88.0),
                          gate("parity", status="fail", max_abs_err=1e-3),
                          gate("[bold]tokenizer")])


def _app(root: Path | None = None, settings: HistorySettings | None = None) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Readiness (test double of the main CLI)."""

    loader = None if root is None else (lambda: (root, settings or HistorySettings()))
    register(app, settings_loader=loader)
    return app


def _run(app: typer.Typer, *args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160", "NO_COLOR": "1"})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "h.sqlite"
    history.record(path, BEFORE)
    history.record(path, AFTER)
    return path


def test_history_lists_newest_first_with_score_delta_and_baseline_marker(db: Path) -> None:
    history.mark_shipped(db, 1)
    result = _run(_app(), "history", "--db", str(db))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "2026-11" in line]
    assert "bbbb2222" in lines[0] and "84.0" in lines[0] and "▲ +4" in lines[0]
    assert "aaaa1111" in lines[1] and "★ baseline" in lines[1]


def test_history_n_limits_the_rows(db: Path) -> None:
    result = _run(_app(), "history", "--db", str(db), "-n", "1")
    assert "bbbb2222" in result.output and "aaaa1111" not in result.output


def test_history_reads_the_configured_path_relative_to_the_project_root(tmp_path: Path) -> None:
    settings = HistorySettings.from_mapping({"path": "store/h.sqlite"})
    history.record(tmp_path / "store" / "h.sqlite", AFTER)
    result = _run(_app(tmp_path, settings), "history")
    assert result.exit_code == 0 and "bbbb2222" in result.output


def test_history_of_an_empty_store_says_so_and_creates_nothing(tmp_path: Path) -> None:
    settings = HistorySettings.from_mapping({"path": "store/none.sqlite"})
    result = _run(_app(tmp_path, settings), "history")
    assert result.exit_code == 0 and "No assessments recorded" in result.output
    assert not (tmp_path / "store" / "none.sqlite").exists()


@pytest.mark.parametrize("command", [["history"], ["baseline", "show"], ["diff", "#1", "#2"]])
def test_a_missing_db_named_with_db_is_one_line_naming_it(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nonexistent.sqlite"
    result = CliRunner().invoke(_app(), [*command, "--db", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {missing}: no such history database (--db)"]
    assert "No assessments recorded" not in result.output and not missing.exists()


def test_diff_of_two_history_ids_shows_what_got_better_and_worse(db: Path) -> None:
    result = _run(_app(), "diff", "#1", "#2", "--db", str(db))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "#1 → #2: score 80.0 → 84.0 ▲ +4" in out
    assert "▼ worse" in out  # parity pass -> fail
    assert "▼ -2" in out  # coverage line_pct
    assert "[bold]tokenizer" in out  # document text is shown literally, never as markup
    assert "1 better, 2 worse" in out


def test_diff_hides_unchanged_rows_unless_all(db: Path, tmp_path: Path) -> None:
    file_a = tmp_path / "a.json"
    file_a.write_text(json.dumps(BEFORE))
    terse = _run(_app(), "diff", str(file_a), "#1", "--db", str(db))
    assert terse.exit_code == 0 and "line_pct" not in terse.output
    full = _run(_app(), "diff", str(file_a), "#1", "--db", str(db), "--all")
    assert "line_pct" in full.output


@pytest.mark.parametrize("args, message", [
    (("diff", "missing.json", "#1"), "missing.json: no such file"),
    (("diff", "#1", "#99"), "no assessment #99"),
    (("diff", "#1", "#bogus"), "#bogus: not a history reference"),
    (("diff", "#baseline", "#1"), "project demo has no baseline"),
    (("baseline", "set", "#42"), "no assessment #42"),
])
def test_usage_errors_are_one_line_on_stderr_with_exit_code_2(
        db: Path, args: tuple[str, ...], message: str) -> None:
    result = CliRunner().invoke(_app(), [*args, "--db", str(db)])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_file_that_is_not_an_assessment_is_refused(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    result = CliRunner().invoke(_app(), ["diff", str(bad), "#1", "--db", str(db)])
    assert result.exit_code == 2 and "not valid JSON" in result.stderr


def test_a_damaged_database_is_an_exit_code_2_naming_the_file(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    db.write_bytes(b"garbage" * 10)
    result = CliRunner().invoke(_app(), ["history", "--db", str(db)])
    assert result.exit_code == 2 and str(db) in result.stderr


def test_baseline_set_defaults_to_the_latest_and_show_reports_it(db: Path) -> None:
    assert "no baseline" in _run(_app(), "baseline", "show", "--db", str(db)).output
    result = _run(_app(), "baseline", "set", "--db", str(db))
    assert result.exit_code == 0 and "now #2" in result.output
    assert history.last_shipped(db, "demo")["id"] == 2
    shown = _run(_app(), "baseline", "show", "--db", str(db), "--project", "demo")
    assert "baseline #2" in shown.output and "bbbb2222" in shown.output


def test_baseline_set_from_a_file_stores_it_once_and_marks_it(db: Path, tmp_path: Path) -> None:
    doc = assessment(generated_at="2026-11-22T10:00:00Z", commit="cccc3333")
    path = tmp_path / "shipped.json"
    path.write_text(json.dumps(doc))
    for _ in range(2):
        assert _run(_app(), "baseline", "set", str(path), "--db", str(db)).exit_code == 0
    assert len(history.recent(db, "demo", 10)) == 3
    assert history.last_shipped(db, "demo")["commit"] == "cccc3333"


def test_diff_against_the_baseline_reference(db: Path) -> None:
    history.mark_shipped(db, 1)
    result = _run(_app(), "diff", "#baseline", "#latest", "--db", str(db))
    assert result.exit_code == 0 and "#1 → #2" in result.output


def test_without_a_loader_the_nearest_configuration_names_the_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "readiness.toml").write_text('[history]\npath = "store/h.sqlite"\n')
    history.record(tmp_path / "store" / "h.sqlite", AFTER)
    monkeypatch.chdir(tmp_path)
    result = _run(_app(), "history")
    assert result.exit_code == 0, result.output
    assert "bbbb2222" in result.output


def test_a_broken_configuration_is_exit_code_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "readiness.toml").write_text("[history\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(_app(), ["history"])
    assert result.exit_code == 2 and "readiness.toml" in result.stderr


def test_diff_of_identical_assessments_says_nothing_changed(db: Path, tmp_path: Path) -> None:
    file_b = tmp_path / "b.json"
    file_b.write_text(json.dumps(BEFORE))
    result = _run(_app(), "diff", "#1", str(file_b), "--db", str(db))
    assert result.exit_code == 0 and "No gate status, score or metric changed." in result.output
    assert "0 better, 0 worse, 4 same" in result.output


# --- partial and no-ship assessments ----------------------------------------------------------

PARTIAL = assessment(generated_at="2026-11-22T10:00:00Z", score=100.0, commit="cccc3333",
                     gates=[gate("coverage", score=1.0, line_pct=99.0), gate("parity", "skipped", None)],
                     left_out=["parity"])
NO_SHIP = assessment(generated_at="2026-11-23T10:00:00Z", score=93.3, commit="dddd4444", ship=False)
NO_SHIP["verdict"].update(reasons=["blocker gate 'parity' is fail: max_abs_err 0.2"], vetoed_by=["parity"])


def _entry_line(output: str, commit: str) -> str:
    return next(line for line in output.splitlines() if commit in line)


def test_history_marks_a_partial_run_and_shows_no_delta_against_full_runs(db: Path) -> None:
    history.record(db, PARTIAL)
    history.record(db, assessment(generated_at="2026-11-24T10:00:00Z", score=85.0, commit="eeee5555"))
    output = _run(_app(), "history", "--db", str(db)).output
    partial = _entry_line(output, "cccc3333")
    assert "partial" in partial and "▲" not in partial and " ship" not in partial
    # the next full run is compared with the last full one (84.0), not with the partial 100.0
    assert "▲ +1" in _entry_line(output, "eeee5555")


@pytest.mark.parametrize(("doc", "why"), [
    (PARTIAL, "#3 is a partial assessment (parity left out): its score covers only the gates it ran"),
    (NO_SHIP, "#3 was not a ship verdict: blocker gate 'parity' is fail"),
])
def test_baseline_set_refuses_a_partial_or_no_ship_assessment_without_force(
        db: Path, doc: dict, why: str) -> None:
    history.record(db, doc)
    result = CliRunner().invoke(_app(), ["baseline", "set", "--db", str(db)])  # default: the latest
    assert result.exit_code == 2
    assert why in result.stderr and "--force" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert history.last_shipped(db, "demo") is None
    forced = _run(_app(), "baseline", "set", "#3", "--force", "--db", str(db))
    assert forced.exit_code == 0 and history.last_shipped(db, "demo")["id"] == 3


def test_baseline_set_refuses_a_partial_assessment_file(db: Path, tmp_path: Path) -> None:
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(PARTIAL))
    result = CliRunner().invoke(_app(), ["baseline", "set", str(path), "--db", str(db)])
    assert result.exit_code == 2 and f"{path} is a partial assessment" in result.stderr
    assert len(history.recent(db, "demo", 10)) == 2  # not stored either


def test_baseline_set_accepts_a_first_run_held_back_only_for_want_of_a_baseline(db: Path) -> None:
    message = "No baseline: nothing of project 'demo' has been marked shipped yet"
    doc = assessment(generated_at="2026-11-22T10:00:00Z", ship=False)
    doc["verdict"]["reasons"] = [message]
    doc["baseline"] = {"first_run": True, "policy": "fail", "message": message}
    history.record(db, doc)
    assert _run(_app(), "baseline", "set", "--db", str(db)).exit_code == 0


def test_diff_with_a_partial_side_says_so_instead_of_an_arrow(db: Path) -> None:
    history.record(db, PARTIAL)
    result = _run(_app(), "diff", "#1", "#3", "--db", str(db))
    header = result.output.splitlines()[0]
    assert result.exit_code == 0 and "not compared: #3 is a partial assessment" in header
    assert "▲" not in header and "▼" not in header
