"""The CLI in-process: exit codes match the verdict, errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from readiness.cli import main
from tests.conftest import read_document, write_outcome


@pytest.fixture
def project(core_project: Path) -> Path:
    return core_project


_outcome, _doc = write_outcome, read_document


def test_passing_gates_ship_with_exit_0(project: Path) -> None:
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out"]) == 0
    doc = _doc(project)
    assert doc["verdict"]["ship"] is True
    assert {g["name"]: g["status"] for g in doc["gates"]} == {"file_gate": "pass", "dependent_gate": "pass"}
    for name in ("assessment.json", "report.html", "report.md", "junit.xml"):
        assert (project / "out" / name).is_file()


def test_failing_blocker_exits_1_and_document_agrees(project: Path) -> None:
    _outcome(project, status="fail", score=0.9)
    assert main(["assess", "-o", "out"]) == 1
    doc = _doc(project)
    assert doc["verdict"]["ship"] is False and doc["verdict"]["vetoed_by"] == ["file_gate"]
    assert next(g for g in doc["gates"] if g["name"] == "dependent_gate")["status"] == "skipped"


def test_crashing_gate_is_error_and_never_ships(project: Path) -> None:
    _outcome(project, **{"raise": "weights truncated"})
    assert main(["assess", "-o", "out"]) == 1
    gate = next(g for g in _doc(project)["gates"] if g["name"] == "file_gate")
    assert gate["status"] == "error" and "weights truncated" in gate["summary"]


def test_fail_under_overrides_the_threshold(project: Path) -> None:
    _outcome(project, status="pass", score=0.5)  # (0.5 + 1.0) / 2 = 75
    assert main(["assess", "-o", "out"]) == 1
    assert main(["assess", "-o", "out", "--fail-under", "70"]) == 0


def test_second_run_reuses_cached_result(project: Path) -> None:
    _outcome(project, status="pass", score=1.0)
    main(["assess", "-o", "out"])
    main(["assess", "-o", "out"])
    assert (project / "calls.txt").read_text() == "1"
    assert next(g for g in _doc(project)["gates"] if g["name"] == "file_gate")["cached"] is True
    main(["assess", "-o", "out", "--no-cache"])
    assert (project / "calls.txt").read_text() == "2"


def test_skip_turns_a_gate_off_and_lists_it(project: Path) -> None:
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out", "--skip", "dependent_gate"]) == 0
    gate = next(g for g in _doc(project)["gates"] if g["name"] == "dependent_gate")
    assert gate["status"] == "off" and gate["summary"] == "turned off: with --skip"


def test_bad_config_is_one_line_and_exit_2(project: Path, capsys: pytest.CaptureFixture) -> None:
    (project / "readiness.toml").write_text("fail_undr = 3\n")
    assert main(["assess", "-o", "out"]) == 2
    err = capsys.readouterr().err
    assert "readiness.toml" in err and "fail_under" in err and "Traceback" not in err
    assert not (project / "out").exists()


def test_unknown_gate_is_exit_2(project: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["assess", "--gate", "nope"]) == 2
    assert "unknown gate 'nope'" in capsys.readouterr().err


def test_bad_gate_setting_names_the_key(project: Path, capsys: pytest.CaptureFixture) -> None:
    (project / "readiness.toml").write_text("[gates.file_gate]\npaht = 'x'\n")
    assert main(["assess"]) == 2
    assert "gates.file_gate.paht" in capsys.readouterr().err


def test_report_rerenders_a_stored_document(project: Path, capsys: pytest.CaptureFixture) -> None:
    _outcome(project, status="pass", score=1.0)
    main(["assess", "-o", "out", "--format", "json"])
    assert main(["report", "out/assessment.json", "--format", "md", "--out", "again.md"]) == 0
    assert "file_gate" in (project / "again.md").read_text()


def test_report_on_corrupt_document_is_exit_2(project: Path, capsys: pytest.CaptureFixture) -> None:
    (project / "bad.json").write_text("{")
    assert main(["report", "bad.json"]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_gate_command_writes_a_partial_that_merge_folds_in(project: Path) -> None:
    _outcome(project, status="fail", score=0.2)
    assert main(["assess", "-o", "base"]) == 1
    _outcome(project, status="pass", score=1.0)
    assert main(["gate", "dependent_gate", "--no-cache", "-o", "partial.json"]) == 0
    assert main(["merge", "base/assessment.json", "partial.json", "-o", "merged"]) == 0
    merged = _doc(project, "merged")
    statuses = {g["name"]: g["status"] for g in merged["gates"]}
    assert statuses == {"file_gate": "pass", "dependent_gate": "pass"}
    assert merged["verdict"]["ship"] is True and merged["merged_from"]


def test_init_writes_a_loadable_config_and_refuses_to_overwrite(project: Path) -> None:
    target = project / "sub" / "readiness.toml"
    assert main(["init", str(target)]) == 0
    from readiness import config
    assert config.load(target).config.fail_under == 80
    assert main(["init", str(target)]) == 2


def test_set_overrides_a_gate_setting(project: Path) -> None:
    (project / "other.json").write_text(json.dumps({"status": "pass", "score": 1.0}))
    _outcome(project, status="fail", score=0.0)
    assert main(["assess", "-o", "out", "--set", "file_gate.path=other.json"]) == 0


def test_merge_keeps_base_results_the_partial_did_not_run(project: Path) -> None:
    _outcome(project, status="fail", score=0.2)
    main(["assess", "-o", "base"])
    _outcome(project, status="pass", score=1.0)
    main(["gate", "file_gate", "--no-cache", "-o", "partial.json"])
    assert main(["merge", "base/assessment.json", "partial.json", "-o", "merged"]) == 1
    statuses = {g["name"]: g["status"] for g in _doc(project, "merged")["gates"]}
    assert statuses == {"file_gate": "pass", "dependent_gate": "skipped"}


@pytest.mark.parametrize("argv", [["report"], ["assess", "--bogus"], ["nonsense"]])
def test_usage_errors_are_exit_2_without_traceback(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_history_gives_trend_baseline_and_regression_veto(project: Path) -> None:
    (project / "readiness.toml").write_text("project = 'p'\nfail_under = 50\n")
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out"]) == 0
    first = _doc(project)
    assert first["baseline"]["first_run"] is True and first["trend"] == []
    assert main(["baseline", "set"]) == 0
    _outcome(project, status="pass", score=0.6)  # still above fail_under, but a drop of 20 points
    assert main(["assess", "-o", "out", "--no-cache"]) == 1
    second = _doc(project)
    assert len(second["trend"]) == 2 and second["trend"][-1]["verdict_ship"] is False
    assert second["baseline"]["first_run"] is False and second["baseline"]["regressions"]
    assert any(r.startswith("regression") for r in second["verdict"]["reasons"])


def test_first_run_policy_fail_blocks_without_baseline(project: Path) -> None:
    (project / "readiness.toml").write_text("[history]\nfirst_run_policy = 'fail'\n")
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out"]) == 1
    assert any("No baseline" in r for r in _doc(project)["verdict"]["reasons"])


def test_mlflow_flag_logs_the_assessment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow", reason="MLflow logging needs mlflow (pip install mlflow-skinny)")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (project / "mlruns").as_uri()
    (project / "readiness.toml").write_text(f"[history]\nenabled = false\n[mlflow]\ntracking_uri = '{uri}'\n")
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out", "--mlflow"]) == 0
    client = MlflowClient(tracking_uri=uri)
    [experiment] = [e for e in client.search_experiments() if e.name.startswith("readiness/")]
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["score"] == pytest.approx(100.0)
    assert run.data.tags["readiness.ship"] in ("true", "True")


def test_merge_refuses_a_partial_of_another_project(project: Path, capsys: pytest.CaptureFixture) -> None:
    _outcome(project, status="pass", score=1.0)
    main(["assess", "-o", "base"])
    other = json.loads((project / "base" / "assessment.json").read_text())
    other["project"]["name"] = "someone-else"
    (project / "other.json").write_text(json.dumps(other))
    assert main(["merge", "base/assessment.json", "other.json", "-o", "merged"]) == 2
    assert "someone-else" in capsys.readouterr().err
    assert not (project / "merged").exists()


# --- partial runs, --fail-under, no configuration -------------------------------------------

def test_skip_on_the_command_line_is_a_partial_run_that_never_ships(project: Path) -> None:
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out", "--skip", "dependent_gate"]) == 0  # the selected gates passed
    doc = _doc(project)
    assert doc["verdict"]["ship"] is False and doc["verdict"]["partial"] is True
    assert doc["partial"] == {"ran": ["file_gate"], "left_out": ["dependent_gate"],
                              "request": "--skip dependent_gate"}
    assert doc["band"] == "partial run"


def test_a_partial_run_whose_selected_gate_fails_exits_1(project: Path) -> None:
    _outcome(project, status="fail", score=0.2)
    assert main(["assess", "-o", "out", "--gate", "file_gate"]) == 1
    assert _doc(project)["band"] == "partial run, blocked by file_gate"


def test_gates_turned_off_by_the_configuration_leave_a_full_run(project: Path) -> None:
    (project / "readiness.toml").write_text("skip = ['dependent_gate']\n[history]\nenabled = false\n")
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out"]) == 0
    doc = _doc(project)
    assert doc["verdict"]["ship"] is True and doc["partial"] is None


def test_a_gate_selection_that_covers_every_configured_gate_is_a_full_run(project: Path) -> None:
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out", "--gate", "dependent_gate"]) == 0  # its need is the other gate
    assert _doc(project)["partial"] is None and _doc(project)["verdict"]["ship"] is True


def test_a_partial_run_in_history_is_not_a_baseline_nor_a_trend_point(project: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    (project / "readiness.toml").write_text("project = 'p'\n")
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out"]) == 0
    full = _doc(project)
    assert main(["assess", "-o", "out", "--skip", "dependent_gate"]) == 0
    partial = _doc(project)
    assert partial["trend"] == [] and partial["baseline"]["partial"] is True
    capsys.readouterr()
    assert main(["baseline", "set"]) == 2  # the latest is the partial run
    assert "#2 is a partial assessment" in capsys.readouterr().err
    assert main(["baseline", "set", "#1"]) == 0
    assert main(["assess", "-o", "out"]) == 0
    third = _doc(project)
    assert [p["generated_at"] for p in third["trend"]] == [full["generated_at"], third["generated_at"]]
    assert third["baseline"]["source"] == "history:1" and third["baseline"]["partial"] is False


def test_merge_completes_a_partial_base_with_the_gates_it_left_out(project: Path) -> None:
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "base", "--skip", "dependent_gate"]) == 0
    assert _doc(project, "base")["partial"] is not None
    assert main(["gate", "dependent_gate", "-o", "dep.json"]) == 0
    assert main(["merge", "base/assessment.json", "dep.json", "-o", "merged"]) == 0
    merged = _doc(project, "merged")
    assert merged["partial"] is None and merged["verdict"]["ship"] is True


@pytest.mark.parametrize(("value", "message"), [
    ("-5", "--fail-under -5: the threshold must be a number in 0..100"),
    ("150", "--fail-under 150: the threshold must be a number in 0..100"),
    ("nan", "--fail-under nan: the threshold must be a number in 0..100"),
    ("inf", "--fail-under inf: the threshold must be a number in 0..100"),
    ("high", "--fail-under 'high': not a number"),
])
def test_fail_under_out_of_range_is_refused_before_any_gate_runs(
        project: Path, capsys: pytest.CaptureFixture, value: str, message: str) -> None:
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "out", f"--fail-under={value}"]) == 2
    err = capsys.readouterr().err
    assert f"readiness: {message}" in err and len(err.strip().splitlines()) == 1
    assert not (project / "calls.txt").exists() and not (project / "out").exists()


@pytest.mark.parametrize("argv", [["assess"], ["gate", "hygiene"]])
def test_assess_without_any_configuration_is_exit_2_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, argv: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no configuration found" in err and str(tmp_path.resolve()) in err and "readiness init" in err
    assert list(tmp_path.iterdir()) == []


def test_merging_a_partial_base_whole_again_restores_first_run_policy_fail(project: Path) -> None:
    (project / "readiness.toml").write_text("project = 'p'\n[history]\nfirst_run_policy = 'fail'\n")
    _outcome(project, status="pass", score=1.0)
    assert main(["assess", "-o", "base", "--skip", "dependent_gate"]) == 0  # partial: no ship decision
    assert main(["gate", "dependent_gate", "-o", "dep.json"]) == 0
    assert main(["merge", "base/assessment.json", "dep.json", "-o", "merged"]) == 1
    merged = _doc(project, "merged")
    assert merged["partial"] is None and any("No baseline" in r for r in merged["verdict"]["reasons"])
