"""History as one run sees it: preflight, the comparison before the verdict, the trend, the record."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness import config
from readiness.history import baseline, store
from tests.fixtures.history.documents import assessment, gate


def _load(root: Path, text: str = "project = 'demo'\n") -> config.LoadedConfig:
    (root / "readiness.toml").write_text(text, encoding="utf-8")
    return config.load(root / "readiness.toml")


def _measured(score: float, coverage: float, *, partial: bool = False) -> dict:
    doc = assessment(score=score, gates=[gate("coverage", score=coverage, line_pct=100 * coverage)],
                     left_out=["parity"] if partial else None)
    for key in ("verdict", "baseline", "trend"):  # what `document.measured` holds: no verdict yet
        doc.pop(key, None)
    return doc


def test_without_history_there_is_nothing_to_compare(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "project = 'demo'\n[history]\nenabled = false\n")
    assert baseline.compare(loaded, _measured(90.0, 0.9)) == baseline.Comparison()
    assert baseline.record(loaded, assessment()) is None
    assert not (tmp_path / ".readiness").exists()


def test_a_first_run_is_compared_with_nothing_under_its_policy(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "project = 'demo'\n[history]\nfirst_run_policy = 'fail'\n")
    found = baseline.compare(loaded, _measured(90.0, 0.9))
    assert found.baseline is not None and found.baseline["first_run"] is True
    assert found.reasons == (found.baseline["message"],)  # "fail": no ship without a baseline


def test_a_drop_against_the_shipped_baseline_is_a_reason_not_to_ship(tmp_path: Path) -> None:
    loaded = _load(tmp_path)
    db = baseline.db_path(loaded)
    shipped = baseline.record(loaded, assessment(score=90.0, gates=[gate("coverage", score=0.9, line_pct=90.0)]))
    assert shipped is not None
    store.mark_shipped(db, shipped)
    found = baseline.compare(loaded, _measured(80.0, 0.7))
    assert found.baseline is not None and found.baseline["source"] == f"history:{shipped}"
    assert found.reasons and all(r.startswith("regression: ") for r in found.reasons)
    assert baseline.compare(loaded, _measured(90.0, 0.9)).reasons == ()


def test_a_partial_run_is_not_compared_on_its_overall_score(tmp_path: Path) -> None:
    loaded = _load(tmp_path)
    store.mark_shipped(baseline.db_path(loaded), baseline.record(loaded, assessment(score=90.0)) or 0)
    found = baseline.compare(loaded, _measured(10.0, 0.9, partial=True))
    assert found.baseline is not None and found.baseline["partial"] is True
    assert found.baseline["score_delta"] is None


def test_the_trend_spans_stored_full_runs_and_this_one_but_not_a_partial_one(tmp_path: Path) -> None:
    loaded = _load(tmp_path)
    baseline.record(loaded, assessment(score=70.0, generated_at="2026-11-20T10:00:00Z"))
    found = baseline.compare(loaded, _measured(80.0, 0.8))
    now = assessment(score=80.0, generated_at="2026-11-21T10:00:00Z")
    assert [p["score"] for p in baseline.trend(found, now)] == [70.0, 80.0]
    assert baseline.trend(found, assessment(score=80.0, left_out=["parity"])) == []


def test_a_damaged_database_is_reported_before_any_gate_runs(tmp_path: Path) -> None:
    loaded = _load(tmp_path)
    db = baseline.db_path(loaded)
    db.parent.mkdir(parents=True)
    db.write_bytes(b"not a database at all, just text" * 10)
    with pytest.raises(store.HistoryError, match=r"set another path in \[history\], or run with --no-history"):
        baseline.preflight(loaded)
