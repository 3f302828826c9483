"""The `readiness` command: the composition root.

The only module that wires configuration, engine, scoring, history and
reports together, and the one place exceptions become exit codes:
0 the model may ship, 1 it may not, 2 the harness could not run (one line
naming the file and the problem; a traceback only for a bug in the harness).
"""

from __future__ import annotations

import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from gates.children import Interrupted
from readiness import assessment, config as configuration, document, merging, runs
from readiness.exit_codes import ExitCode, HarnessError
from reports import formats as report_formats
from reports.writer import write_text

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Decide whether a distilled model may ship.")
err = Console(stderr=True)

FORMATS_HELP = "Report formats to write (json, html, md, junit); repeat or comma-separate."


def _formats(values: list[str] | None) -> tuple[str, ...]:
    chosen = [f.strip() for v in (values or ["json", "html", "md", "junit"]) for f in v.split(",") if f.strip()]
    for fmt in chosen:
        if fmt not in report_formats.RENDERERS:
            raise HarnessError(f"--format {fmt!r}: unknown format (choose from {', '.join(report_formats.RENDERERS)})")
    if "json" not in chosen:
        chosen.insert(0, "json")  # the document is always kept: every report re-renders from it
    return tuple(dict.fromkeys(chosen))


def _overrides(values: list[str] | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for text in values or []:
        gate, key, value = assessment.parse_override(text)
        out.setdefault(gate, {})[key] = value
    return out


@app.command()
def assess(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="readiness.toml or pyproject.toml"),
    gate: Optional[list[str]] = typer.Option(None, "--gate", "-g", help="Run only these gates (and what they need)."),
    skip: Optional[list[str]] = typer.Option(None, "--skip", help="Turn these gates off."),
    fmt: Optional[list[str]] = typer.Option(None, "--format", "-f", help=FORMATS_HELP),
    out: Path = typer.Option(Path("readiness-report"), "--out", "-o", help="Folder for the reports."),
    fail_under: Optional[float] = typer.Option(None, "--fail-under", help="Ship threshold, 0..100 (default 80)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Measure every gate afresh."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Gate setting GATE.KEY=VALUE, e.g. mutation.sample=50."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Gates run at once."),
    no_history: bool = typer.Option(False, "--no-history", help="Neither compare with nor record into history."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log the assessment to MLflow ([mlflow] in the config)."),
) -> None:
    """Run the gates, score them and decide whether the model may ship."""
    request = assessment.Request(only=tuple(gate or ()), skip=tuple(skip or ()), no_cache=no_cache,
                                 overrides=_overrides(set_), jobs=jobs)
    code = runs.assess(configuration.load(config), request, out=out, formats=_formats(fmt),
                       fail_under=fail_under, use_history=not no_history, console=err, mlflow=mlflow)
    raise typer.Exit(int(code))


@app.command(name="gate")
def gate_command(
    name: str = typer.Argument(..., help="The gate to run (its needs run first)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Partial assessment JSON (default readiness-gate-NAME.json)."),
    no_cache: bool = typer.Option(False, "--no-cache"),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Gate setting GATE.KEY=VALUE."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="parity: the runtime to check (coreml, mil, onnx)."),
    mutants: Optional[int] = typer.Option(None, "--mutants", min=1, help="mutation: sample this many mutants."),
    shard: Optional[str] = typer.Option(None, "--shard", help="mutation: run shard i/N."),
) -> None:
    """Run one gate and write a partial result that `readiness merge` can fold in."""
    overrides = _overrides(set_)
    for gate, key, value in (("parity", "runtime", runtime), ("mutation", "sample", mutants),
                             ("mutation", "shard", shard)):
        if value is not None:
            overrides.setdefault(gate, {})[key] = value
    request = assessment.Request(only=(name,), no_cache=no_cache, overrides=overrides)
    code = runs.single_gate(configuration.load(config), request, name,
                            out=out or Path(f"readiness-gate-{name}.json"), console=err)
    raise typer.Exit(int(code))


@app.command()
def report(
    assessment_file: Path = typer.Argument(..., metavar="ASSESSMENT.json"),
    fmt: str = typer.Option("html", "--format", "-f", help="html, md, junit or json"),
    out: str = typer.Option("-", "--out", "-o", help="Output file; - for stdout."),
) -> None:
    """Re-render a stored assessment document."""
    doc = document.load(assessment_file)
    if fmt not in report_formats.RENDERERS:
        raise HarnessError(f"--format {fmt!r}: unknown format (choose from {', '.join(report_formats.RENDERERS)})")
    written = write_text(report_formats.render(doc, fmt), out)
    if written is not None:
        err.print(f"Wrote {report_formats.LABELS[fmt]} to {written}")


@app.command()
def merge(
    base: Path = typer.Argument(..., metavar="BASE.json", help="The assessment to fold results into."),
    partials: list[Path] = typer.Argument(..., metavar="PARTIAL.json...", help="Partial results (readiness gate ...)."),
    out: Path = typer.Option(Path("readiness-report"), "--out", "-o", help="Folder for the merged reports."),
) -> None:
    """Fold partial gate results (another host, mutation shards) into an assessment."""
    docs = [document.load(p) for p in partials]
    merged = merging.merge(document.load(base), docs)
    runs.write_reports(merged, out, report_formats.FILE_NAMES.keys(), err)
    raise typer.Exit(int(runs.exit_code(merged)))


@app.command()
def init(
    path: Path = typer.Argument(Path("readiness.toml"), help="Where to write the configuration."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented configuration to start from."""
    from readiness.scaffold import write_config

    write_config(path, force=force)
    err.print(f"Wrote configuration to {path}")


@app.command()
def demo(
    out: Path = typer.Option(Path("readiness-report"), "--out", "-o", help="Folder for the reports."),
    work: Optional[Path] = typer.Option(None, "--work", help="Work folder for the demo model and project."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild and re-measure everything."),
) -> None:
    """Assess the bundled demo model and example project end to end."""
    from readiness.demo import run_demo

    code = run_demo(out=out, work=work, no_cache=no_cache, console=err)
    raise typer.Exit(int(code))


def _register_plugins() -> None:
    try:
        from readiness import cli_history
    except ImportError:
        return
    cli_history.register(app)


def _on_stop_signal(signum: int, frame: object) -> None:
    """First SIGINT/SIGTERM: stop at the next safe point; a second one acts at once."""
    from gates import children

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    children.request_stop(signum)


def _quiet_third_party() -> None:
    """Keep converter chatter (progress bars, untested-version and macOS-only
    notices, deprecation warnings) out of the user's terminal; what matters
    reaches the report through the gates."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TQDM_DISABLE", "1")
    for name in ("coremltools", "torch", "onnxscript", "onnx_ir", "torch.onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every outcome to an exit code."""
    from gates import children

    _quiet_third_party()
    _register_plugins()
    children.reset()
    previous = {sig: signal.signal(sig, _on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _dispatch(argv)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _dispatch(argv: list[str] | None) -> int:
    try:
        result = app(args=argv, standalone_mode=False)
        return int(result or 0)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:  # usage errors
        exc.show()
        return int(ExitCode.HARNESS)
    except (KeyboardInterrupt, typer.Abort, Interrupted):

        from gates import children

        children.terminate_all()
        children.remove_folders()  # after the gates stored what they had decided
        sys.stderr.write("readiness: interrupted: child processes stopped; no report or history entry "
                         "was written for this run\n")
        return int(ExitCode.TERMINATED if children.stop_signal() == signal.SIGTERM else ExitCode.INTERRUPTED)
    except HarnessError.expected() as exc:
        sys.stderr.write(f"readiness: {exc}\n")
        return int(ExitCode.HARNESS)
    except Exception:
        traceback.print_exc()
        err.print("readiness: internal error (a bug in the harness; please report it with the traceback above)")
        return int(ExitCode.HARNESS)


if __name__ == "__main__":
    sys.exit(main())
