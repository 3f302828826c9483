"""History as one assessment sees it: the baseline, the trend, regressions.

A thin bridge between a run and `readiness.history` / `readiness.regression`:
it reads the stored assessments of this project before the verdict (so a
regression can veto) and records the new document afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gates.result import GateResult
from readiness.config import LoadedConfig
from readiness.scoring import Score


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryView:
    baseline: Mapping[str, Any] | None = None
    trend: Sequence[Mapping[str, Any]] = ()
    regressions: Sequence[Mapping[str, Any]] = ()
    first_run_failure: str | None = None


def db_path(loaded: LoadedConfig) -> Path:
    path = Path(loaded.config.history.path).expanduser()
    return path if path.is_absolute() else loaded.root / path


def project_name(loaded: LoadedConfig) -> str:
    return loaded.config.project or loaded.root.name


def view(loaded: LoadedConfig, score: Score, results: Sequence[GateResult]) -> HistoryView:
    """Compare this run with the project's baseline and recent assessments."""
    cfg = loaded.config.history
    if not cfg.enabled:
        return HistoryView()
    try:
        from readiness import history, regression
    except ImportError:  # history lands separately; until then there is none
        return HistoryView()

    path = db_path(loaded)
    project = project_name(loaded)
    rows = history.recent(path, project, cfg.keep) if path.exists() else []
    baseline_doc = history.last_shipped(path, project) if path.exists() else None
    current = {"score": score.value, "gates": [r.to_dict() for r in results],
               "components": [c.to_dict() for c in score.components]}
    baseline = regression.compare(current, baseline_doc, regression.parse_rules(cfg.rules),
                                  first_run_policy=cfg.first_run_policy)
    first_run_failure = None
    if baseline.get("first_run") and baseline.get("policy") == "fail":
        first_run_failure = "no baseline to compare with, and history.first_run_policy is 'fail'"
    trend = regression.trend([*rows, {**current, "generated_at": "now", "verdict": {"ship": None}}])
    return HistoryView(baseline=baseline, trend=trend, regressions=baseline.get("regressions", ()),
                       first_run_failure=first_run_failure)


def record(loaded: LoadedConfig, doc: Mapping[str, Any]) -> int | None:
    if not loaded.config.history.enabled:
        return None
    try:
        from readiness import history
    except ImportError:
        return None
    return history.record(db_path(loaded), dict(doc))
