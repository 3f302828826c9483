"""What the command line does with a finished assessment: reports, summary, MLflow, exit code.

Rendering only: the assessment itself (`readiness.assessment`) has already
run, scored, decided and been recorded. Every format is rendered from one
view of the document, and the terminal summary reuses that view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from rich.console import Console

from readiness.assessment import Assessment
from readiness.config import LoadedConfig
from readiness.exit_codes import ExitCode, HarnessError
from reports import formats as report_formats
from reports.terminal import summary
from reports.writer import write_text


def write_reports(doc: Mapping[str, Any], out: Path, formats: Iterable[str], console: Console) -> list[Path]:
    """Write each format into `out`, say so, then print the summary; returns the files written."""
    texts, view = report_formats.render_all(doc, formats)
    written = []
    for fmt, text in texts.items():
        path = out / report_formats.FILE_NAMES[fmt]
        write_text(text, path)
        console.print(f"Wrote {report_formats.LABELS[fmt]} to {path}", soft_wrap=True, highlight=False)
        written.append(path)
    summary(console, doc, view)
    return written


def exit_code(done: Assessment) -> ExitCode:
    """The exit code that matches the verdict.

    A partial run exits 0 when the gates it ran pass the same rules: what a CI
    step running `assess --gate coverage` expects. It never says "ship": the
    document, every report and the history say it is partial.
    """
    if done.verdict.ship:
        return ExitCode.SHIP
    if done.verdict.partial and done.verdict.passed:
        return ExitCode.SELECTED_PASSED
    return ExitCode.NO_SHIP


def gate_exit_code(done: Assessment, name: str) -> ExitCode:
    """`readiness gate NAME`: 0 when that gate passed, else 1."""
    result = done.result(name)
    return ExitCode.SHIP if result is not None and result.status.passed else ExitCode.NO_SHIP


def log_to_mlflow(loaded: LoadedConfig, doc: Mapping[str, Any], files: Iterable[Path], console: Console) -> None:
    from readiness.to_mlflow import TrackingError, log_assessment

    try:
        run = log_assessment(doc, loaded.config.mlflow, artifacts=list(files))
    except TrackingError as exc:
        raise HarnessError(str(exc)) from None
    console.print(f"Logged to MLflow run {run['run_id']}")
