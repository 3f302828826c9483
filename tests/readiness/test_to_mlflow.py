"""`--mlflow` logging: what is logged, and the alias set only for a shipping verdict."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from readiness.to_mlflow import MlflowSettings, TrackingError, log_assessment, metrics_of, params_of, tags_of
from tests.fixtures.history.documents import assessment, gate


def _doc(ship: bool = True) -> dict:
    doc = assessment(ship=ship, gates=[gate("coverage", line_pct=91.0, backend="x"),
                                       gate("parity", status="error", score=None,
                                            max_abs_err=float("nan"))])
    doc["baseline"] = {"first_run": False, "source": "history:3", "regressions": [{"gate": None}]}
    return doc


def test_metrics_hold_every_finite_number_with_mlflow_safe_keys() -> None:
    doc = _doc()
    doc["components"].append({"name": "critical path (tier 1)", "score": 50.0})
    assert metrics_of(doc) == {
        "score": 85.0, "regressions": 1.0, "component.tests": 90.0, "component.coverage": 80.0,
        "component.critical path _tier 1_": 50.0,
        "gate.coverage.score": 0.9, "gate.coverage.line_pct": 91.0}


def test_params_and_tags_describe_the_run() -> None:
    doc = _doc(ship=False)
    assert params_of(doc)["git.commit"] == "abc1234" and params_of(doc)["project"] == "demo"
    tags = tags_of(doc)
    assert (tags["readiness.ship"], tags["readiness.baseline"]) == ("false", "history:3")
    assert tags_of({**doc, "baseline": None})["readiness.baseline"] == "none (history off)"


def test_without_mlflow_installed_the_error_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(TrackingError, match="pip install mlflow"):
        log_assessment(_doc())


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowSettings:
    pytest.importorskip("mlflow", reason="MLflow logging tests need mlflow (pip install mlflow-skinny)")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores otherwise
    uri = (tmp_path / "mlruns").as_uri()
    return MlflowSettings(tracking_uri=uri, registered_model="demo-student")


def _client(settings: MlflowSettings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def test_a_shipping_assessment_is_logged_and_gets_the_alias(store: MlflowSettings, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text("<html></html>")
    logged = log_assessment(_doc(ship=True), store, artifacts=[report])
    client = _client(store)
    run = client.get_run(logged["run_id"])
    assert run.data.metrics["gate.coverage.line_pct"] == 91.0 and run.info.status == "FINISHED"
    assert run.data.tags["readiness.alias"] == "demo-student@ready -> version 1"
    assert sorted(a.path for a in client.list_artifacts(logged["run_id"])) == ["assessment.json", "reports"]
    assert str(client.get_model_version_by_alias("demo-student", "ready").version) == "1"


def test_a_refused_assessment_leaves_the_alias_where_it_was(store: MlflowSettings) -> None:
    log_assessment(_doc(ship=True), store)
    logged = log_assessment(_doc(ship=False), store)
    client = _client(store)
    assert logged["alias"] is None
    assert str(client.get_model_version_by_alias("demo-student", "ready").version) == "1"
    assert len(client.search_model_versions("name = 'demo-student'")) == 1
    assert "verdict is not ship" in client.get_run(logged["run_id"]).data.tags["readiness.alias"]


def test_an_unusable_tracking_uri_is_a_tracking_error(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="MLflow logging tests need mlflow (pip install mlflow-skinny)")
    with pytest.raises(TrackingError, match="MLflow"):
        log_assessment(_doc(), MlflowSettings(tracking_uri="nosuchscheme://x"))
