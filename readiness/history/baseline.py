"""History as one assessment sees it: the baseline, the trend, regressions.

A thin bridge between a run and `readiness.history.store` / `readiness.history.regression`:
it reads the stored assessments of this project before the verdict (so a
regression can veto) and records the new document afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from gates.result import GateResult
from readiness.history import store as history, regression
from readiness.config import ConfigError, LoadedConfig
from readiness.scoring import Score


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryView:
    baseline: Mapping[str, Any] | None = None
    rows: Sequence[Mapping[str, Any]] = ()
    reasons: Sequence[str] = ()  # what stops shipping: regressions, a first run under "fail"


def db_path(loaded: LoadedConfig) -> Path:
    path = Path(loaded.config.history.path).expanduser()
    return path if path.is_absolute() else loaded.root / path


def project_name(loaded: LoadedConfig) -> str:
    return loaded.config.project or loaded.root.name


def _rules(loaded: LoadedConfig) -> tuple[regression.Rule, ...]:
    prefix = "tool.readiness.history.rules" if loaded.path and loaded.path.name == "pyproject.toml" \
        else "history.rules"
    try:
        return regression.parse_rules(loaded.config.history.rules, key=prefix)
    except ValueError as exc:
        raise ConfigError(f"{loaded.source()}: {exc}") from None


def history_table(loaded: LoadedConfig) -> str:
    """The table that configures history, as the user's configuration file spells it."""
    return "[tool.readiness.history]" if loaded.path and loaded.path.name == "pyproject.toml" else "[history]"


def preflight(loaded: LoadedConfig) -> None:
    """Read the history once so a damaged or newer database stops the run early."""
    if not loaded.config.history.enabled:
        return
    try:
        history.recent(db_path(loaded), project_name(loaded), 1)
    except history.HistoryError as exc:
        raise history.HistoryError(f"{exc}; move it aside, set another path in {history_table(loaded)}, "
                                   "or run with --no-history") from None


def view(loaded: LoadedConfig, score: Score, results: Sequence[GateResult], generated_at: str,
         partial: Mapping[str, Any] | None = None) -> HistoryView:
    """Compare this run with the project's baseline and recent (full) assessments.

    A partial run (`partial` not None) is compared gate by gate on the gates
    it ran; its overall score is not compared with a full one.
    """
    cfg = loaded.config.history
    if not cfg.enabled:
        return HistoryView()
    path, project = db_path(loaded), project_name(loaded)
    rules = _rules(loaded)
    rows = history.recent(path, project, cfg.trend_n - 1, full_only=True)
    shipped = history.last_shipped(path, project) if path.exists() else None
    current = {"project": {"name": project}, "generated_at": generated_at, "score": round(score.value, 4),
               "gates": [r.to_dict() for r in results], "components": [c.to_dict() for c in score.components],
               "verdict": {"ship": None}, "partial": partial}
    baseline = regression.compare(current, shipped, rules, first_run_policy=cfg.first_run_policy,
                                  status_regressions=cfg.status_regressions)
    return HistoryView(baseline=baseline, rows=rows, reasons=tuple(regression.ship_blockers(baseline)))


def trend(view: HistoryView, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The trend over the stored full assessments and this one (empty without history).

    A partial run has no point on it and shows no trend: its score measures
    only the gates it ran.
    """
    if not view.rows or regression.is_partial(doc):
        return []
    return regression.trend([*view.rows, doc])


def record(loaded: LoadedConfig, doc: Mapping[str, Any]) -> int | None:
    if not loaded.config.history.enabled:
        return None
    return history.record(db_path(loaded), dict(doc), keep=loaded.config.history.keep)
