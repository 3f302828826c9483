"""History as one assessment sees it: the baseline comparison, the trend, the record.

The bridge between a run and `store` / `regression`: before the verdict it
compares what the run measured (`document.measured`) with the project's
last shipped assessment, so a regression can veto; afterwards it records
the finished document. A damaged or newer database is reported by
`preflight` before any gate runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from readiness.config import LoadedConfig
from readiness.history import regression, store


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """This run against history: the document's `baseline` key, the trend rows, what stops shipping."""

    baseline: Mapping[str, Any] | None = None
    rows: Sequence[Mapping[str, Any]] = ()
    reasons: Sequence[str] = ()  # regressions, or a first run under first_run_policy "fail"


def db_path(loaded: LoadedConfig) -> Path:
    return loaded.config.history.db_path(loaded.root)


def history_table(loaded: LoadedConfig) -> str:
    """The table that configures history, as the user's configuration file spells it."""
    return "[tool.readiness.history]" if loaded.path and loaded.path.name == "pyproject.toml" else "[history]"


def preflight(loaded: LoadedConfig) -> None:
    """Read the history once so a damaged or newer database stops the run early."""
    if not loaded.config.history.enabled:
        return
    try:
        store.recent(db_path(loaded), loaded.project_name, 1)
    except store.HistoryError as exc:
        raise store.HistoryError(f"{exc}; move it aside, set another path in {history_table(loaded)}, "
                                 "or run with --no-history") from None


def compare(loaded: LoadedConfig, measured: Mapping[str, Any]) -> Comparison:
    """Compare what this run measured with the project's baseline and recent (full) assessments.

    A partial run (`measured["partial"]` set) is compared gate by gate on the
    gates it ran; its overall score is not compared with a full one.
    """
    settings = loaded.config.history
    if not settings.enabled:
        return Comparison()
    path, project = db_path(loaded), loaded.project_name
    rows = store.recent(path, project, settings.trend_n - 1, full_only=True)
    shipped = store.last_shipped(path, project) if path.exists() else None
    baseline = regression.compare(measured, shipped, settings.rules, first_run_policy=settings.first_run_policy,
                                  status_regressions=settings.status_regressions)
    return Comparison(baseline=baseline, rows=rows, reasons=tuple(regression.ship_blockers(baseline)))


def trend(comparison: Comparison, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The trend over the stored full assessments and this one (empty without history).

    A partial run has no point on it and shows no trend: its score measures
    only the gates it ran.
    """
    if not comparison.rows or regression.is_partial(doc):
        return []
    return regression.trend([*comparison.rows, doc])


def record(loaded: LoadedConfig, doc: Mapping[str, Any]) -> int | None:
    if not loaded.config.history.enabled:
        return None
    return store.record(db_path(loaded), dict(doc), keep=loaded.config.history.keep)
