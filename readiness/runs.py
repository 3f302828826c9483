"""The assess and gate runs: gates, score, history, verdict, reports.

Called by the CLI (and the demo); each returns the exit code that matches the
verdict written into the document: 0 when the model may ship, or, for a
partial run (`--gate`, `--skip`), when every selected gate passed (the
document then says "partial: N of M gates ran; not a ship decision").
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from rich.console import Console

from gates.result import GateResult
from readiness import assessment
from readiness import document
from readiness import provenance
from readiness.history import baseline as tracking
from readiness.config import LoadedConfig
from readiness.exit_codes import ExitCode, HarnessError
from readiness.scoring import Score
from readiness.verdict import decide
from reports import formats as report_formats
from reports.terminal import GateProgress, summary
from reports.writer import write_text


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _model_info(loaded: LoadedConfig) -> dict[str, Any] | None:
    model = loaded.config.model
    if model is None:
        return None
    return {"adapter": model.adapter, "checkpoint": model.checkpoint, "tokenizer": model.tokenizer,
            "lengths": list(model.lengths), "primary_length": model.primary_length}


def _fingerprint(results: Sequence[GateResult]) -> str | None:
    for result in results:
        for key in ("arch_hash", "model_fingerprint"):
            value = result.metrics.get(key) or result.evidence.get(key)
            if isinstance(value, str):
                return value
    return None


def fail_under(text: str | None) -> float | None:
    """`--fail-under` checked as the configuration's `fail_under` is: a finite number in 0..100."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise HarnessError(f"--fail-under {text!r}: not a number; give a threshold in 0..100") from None
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise HarnessError(f"--fail-under {text}: the threshold must be a number in 0..100")
    return value


def build_document(loaded: LoadedConfig, results: Sequence[GateResult], score: Score, threshold: float,
                   history: tracking.HistoryView, generated_at: str,
                   partial: Mapping[str, Any] | None = None) -> dict[str, Any]:
    verdict = decide(results, score, threshold, history.reasons, partial=partial is not None)
    model = _model_info(loaded)
    if model is not None:
        model["fingerprint"] = _fingerprint(results)
    spec_name = loaded.config.project or loaded.root.name
    doc = document.build(
        generated_at=generated_at, project={"name": spec_name, "root": str(loaded.root)},
        model=model, git=provenance.git_info(loaded.root), host=provenance.host_info(),
        tool_versions=provenance.tool_versions(), config_digest=loaded.digest,
        profile=loaded.config.profile, results=results, score=score, verdict=verdict,
        baseline=history.baseline, partial=partial)
    doc["trend"] = tracking.trend(history, doc)
    doc["test_runtimes"] = provenance.interpreters_of(results)
    return document.validate(doc, "<new assessment>")


def write_reports(doc: Mapping[str, Any], out: Path, formats: Iterable[str], console: Console) -> list[Path]:
    """Write each format into `out`; returns the files written."""
    written = []
    for fmt in formats:
        path = write_text(report_formats.render(doc, fmt), out / report_formats.FILE_NAMES[fmt])
        console.print(f"Wrote {report_formats.LABELS[fmt]} to {path}", soft_wrap=True, highlight=False)
        written.append(path)
    summary(console, doc)
    return written


def exit_code(doc: Mapping[str, Any]) -> ExitCode:
    """The exit code that matches the document's verdict.

    A partial run exits 0 when the gates it ran pass the same rules: what a CI
    step running `assess --gate coverage` expects. It never says "ship": the
    document, every report and the history say it is partial.
    """
    verdict = doc["verdict"]
    if verdict["ship"]:
        return ExitCode.SHIP
    if verdict.get("partial") and not verdict["reasons"]:
        return ExitCode.SELECTED_PASSED
    return ExitCode.NO_SHIP


def log_to_mlflow(loaded: LoadedConfig, doc: Mapping[str, Any], files: Sequence[Path], console: Console) -> None:
    from readiness.to_mlflow import MlflowSettings, TrackingError, log_assessment

    try:
        run = log_assessment(doc, MlflowSettings(**loaded.config.mlflow.model_dump()), artifacts=files)
    except TrackingError as exc:
        raise HarnessError(str(exc)) from None
    console.print(f"Logged to MLflow run {run['run_id']}")


def _run(loaded: LoadedConfig, request: assessment.Request, console: Console,
         use_history: bool = False) -> tuple[list[GateResult], dict[str, Any] | None]:
    """Check everything the user gave us, then run the gates: (results, partial or None)."""
    assessment.check_gate_tables(loaded)
    spec = assessment.build_spec(loaded)
    if use_history:
        tracking.preflight(loaded)  # a damaged history is reported before minutes of gates
    chosen, _ = assessment.select(loaded, spec, request)
    partial = assessment.partial_run(loaded, spec, request)
    with GateProgress(console, len(chosen)) as progress:
        return assessment.run_gates(loaded, spec, request, listener=progress.event), partial


def assess(loaded: LoadedConfig, request: assessment.Request, *, out: Path, formats: Sequence[str],
           fail_under: float | None, use_history: bool, console: Console, mlflow: bool = False) -> ExitCode:
    results, partial = _run(loaded, request, console, use_history)
    score = assessment.score(loaded, results)
    threshold = loaded.config.fail_under if fail_under is None else fail_under
    generated_at = now_iso()
    history = tracking.view(loaded, score, results, generated_at, partial) if use_history \
        else tracking.HistoryView()
    doc = build_document(loaded, results, score, threshold, history, generated_at, partial)
    files = write_reports(doc, out, formats, console)
    if use_history:
        tracking.record(loaded, doc)
    if mlflow:
        log_to_mlflow(loaded, doc, files, console)
    return exit_code(doc)


def single_gate(loaded: LoadedConfig, request: assessment.Request, name: str, *, out: Path,
                console: Console) -> ExitCode:
    """Run one gate (and its needs) and write a partial assessment document."""
    results, partial = _run(loaded, request, console)
    score = assessment.score(loaded, results)
    doc = build_document(loaded, results, score, loaded.config.fail_under, tracking.HistoryView(), now_iso(),
                         partial)
    path = write_text(report_formats.render(doc, "json"), out)
    console.print(f"Wrote partial result to {path}")
    summary(console, doc)
    target = next((r for r in results if r.name == name), None)
    return ExitCode.SHIP if target is not None and target.status.passed else ExitCode.NO_SHIP
