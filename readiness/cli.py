"""The `readiness` command: the composition root.

Each command parses its options, calls one function of the library
(`assessment.assess`, `merging.merge`, `document.load`, `scaffold`, `demo`)
and renders what it returns (`outputs`). `main` is the one place
exceptions become exit codes: 0 the model may ship, 1 it may not, 2 the
harness could not run (one line naming the file and the problem; a
traceback only for a bug in the harness).
"""

from __future__ import annotations

import math
import signal
import sys
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from gates.engine import children, registry
from pipeline import heap
from readiness import assessment, cli_history, document, merging, outputs
from readiness import config as configuration
from readiness.exit_codes import ExitCode, HarnessError
from readiness.selection import Request, check_names, parse_overrides
from reports import formats as report_formats
from reports.terminal import GateProgress, summary
from reports.writer import write_text

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Decide whether a distilled model may ship.")
err = Console(stderr=True)

# Help texts are plain text (rich_markup_mode=None above): "[mlflow]" is a table name, not Rich markup.
FORMATS_HELP = "Report formats to write (json, html, md, junit); repeat or comma-separate."
GATE_NAMES = ", ".join(registry.BUILTIN)
GATE_HELP = f"Run only this gate and what it needs and reads; repeat for more. Gates: {GATE_NAMES}."
CONFIG_HELP = "The configuration: readiness.toml or pyproject.toml (default: the nearest one)."
SET_HELP = "Gate setting GATE.KEY=VALUE for this run, e.g. mutation.sample=50; repeatable."
NO_CACHE_HELP = "Measure every gate afresh instead of reusing cached results."

# `readiness gate` options that set a gate's setting: option -> {gate: setting}.
GATE_OPTIONS = {"--runtime": {"parity": "runtime", "performance": "runtime"}, "--mutants": {"mutation": "sample"},
                "--shard": {"mutation": "shard", "suite_health": "shard"}}


def _formats(values: list[str] | None) -> tuple[str, ...]:
    chosen = [f.strip() for v in (values or ["json", "html", "md", "junit"]) for f in v.split(",") if f.strip()]
    for fmt in chosen:
        if fmt not in report_formats.RENDERERS:
            raise HarnessError(f"--format {fmt!r}: unknown format (choose from {', '.join(report_formats.RENDERERS)})")
    if "json" not in chosen:
        chosen.insert(0, "json")  # the document is always kept: every report re-renders from it
    return tuple(dict.fromkeys(chosen))


def _fail_under(text: str | None) -> float | None:
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"readiness {metadata.version('readiness')}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Decide whether a distilled model may ship."""


@app.command()
def assess(
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE", help=CONFIG_HELP),
    gate: Optional[list[str]] = typer.Option(None, "--gate", "-g", metavar="GATE", help=GATE_HELP),
    skip: Optional[list[str]] = typer.Option(None, "--skip", metavar="GATE",
                                             help="Turn this gate off (listed in the report); repeatable."),
    fmt: Optional[list[str]] = typer.Option(None, "--format", "-f", metavar="FORMAT", help=FORMATS_HELP),
    out: Path = typer.Option(Path("readiness-report"), "--out", "-o", metavar="FOLDER",
                             help="Folder for the reports."),
    fail_under: Optional[str] = typer.Option(None, "--fail-under", metavar="SCORE",
                                             help="Ship threshold, 0..100 (default: fail_under of the "
                                                  "configuration, else 80)."),
    no_cache: bool = typer.Option(False, "--no-cache", help=NO_CACHE_HELP),
    set_: Optional[list[str]] = typer.Option(None, "--set", metavar="GATE.KEY=VALUE", help=SET_HELP),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, metavar="N",
                                       help="Gates run at once (default: jobs of the configuration, else 1)."),
    no_history: bool = typer.Option(False, "--no-history", help="Neither compare with nor record into history."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log the assessment to MLflow ([mlflow] in the config)."),
) -> None:
    """Run the gates, score them and decide whether the model may ship.

    With --gate or --skip the run is partial: exit 0 then means the selected
    gates passed, never that the model may ship.
    """
    threshold = _fail_under(fail_under)  # checked like the configuration's, before anything runs
    formats = _formats(fmt)
    request = Request(only=tuple(gate or ()), skip=tuple(skip or ()), no_cache=no_cache,
                      overrides=parse_overrides(set_ or ()), jobs=jobs)
    loaded = configuration.load(config, required=True)
    with GateProgress(err) as progress:
        done = assessment.assess(loaded, request, fail_under=threshold, use_history=not no_history,
                                 progress=progress)
    files = outputs.write_reports(done.document, out, formats, err)
    if mlflow:
        outputs.log_to_mlflow(loaded, done.document, files, err)
    raise typer.Exit(int(outputs.exit_code(done)))


def _gate_options(name: str, given: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The gate-specific options as settings, checked before anything runs."""
    out: dict[str, dict[str, Any]] = {}
    for option, value in given.items():
        if value is None:
            continue
        gates = GATE_OPTIONS[option]
        if name not in gates:
            only = " or ".join(f"`readiness gate {g}`" for g in gates)
            raise HarnessError(f"{option} applies to {only} only, not to `readiness gate {name}`")
        out.setdefault(name, {})[gates[name]] = value
    if given.get("--runtime") is not None:
        from gates.model.parity import RUNTIMES
        from gates.model.performance import Runtime

        allowed = RUNTIMES if name == "parity" else tuple(Runtime)
        if given["--runtime"] not in allowed:
            raise HarnessError(f"--runtime {given['--runtime']}: unknown runtime (choose from {', '.join(allowed)})")
    if given.get("--shard") is not None:
        from gates.engine.protocol import GateError
        from gates.mutation.gate import parse_shard

        try:
            parse_shard(given["--shard"])
        except GateError:
            raise HarnessError(f"--shard {given['--shard']}: expected I/N with 1 <= I <= N, e.g. 2/4") from None
    return out


def _with_shard_coverage(name: str, shard: str | None, loaded: configuration.LoadedConfig) -> tuple[str, ...]:
    """A suite shard also judges its coverage data: the merge combines every shard's (CoverageGate.merge)."""
    cfg = loaded.config
    wanted = cfg.enable is None or "coverage" in cfg.enable
    if name == "suite_health" and shard is not None and wanted and "coverage" not in cfg.skip:
        return (name, "coverage")
    return (name,)


@app.command(name="gate")
def gate_command(
    name: str = typer.Argument(..., metavar="GATE", help=f"The gate to run (what it needs and reads run first): "
                                                         f"{GATE_NAMES}."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE", help=CONFIG_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE",
                                       help="Partial assessment JSON (default readiness-gate-GATE.json)."),
    no_cache: bool = typer.Option(False, "--no-cache", help=NO_CACHE_HELP),
    set_: Optional[list[str]] = typer.Option(None, "--set", metavar="GATE.KEY=VALUE", help=SET_HELP),
    runtime: Optional[str] = typer.Option(None, "--runtime", metavar="RUNTIME",
                                          help="parity: the runtime to check (auto, coreml, mil, onnx); "
                                               "performance: the runtime to time (auto, onnx, coreml)."),
    mutants: Optional[int] = typer.Option(None, "--mutants", min=1, metavar="N",
                                          help="mutation only: sample this many mutants."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="I/N",
                                        help="mutation and suite_health only: run shard I of N."),
) -> None:
    """Run one gate and write a partial result that `readiness merge` can fold in."""
    check_names([name], "readiness gate")
    overrides = parse_overrides(set_ or ())
    for gate, values in _gate_options(name, {"--runtime": runtime, "--mutants": mutants, "--shard": shard}).items():
        overrides.setdefault(gate, {}).update(values)
    loaded = configuration.load(config, required=True)
    request = Request(only=_with_shard_coverage(name, shard, loaded), no_cache=no_cache, overrides=overrides)
    with GateProgress(err) as progress:
        done = assessment.assess(loaded, request, use_history=False, progress=progress)
    path = write_text(report_formats.render(done.document, "json"), out or Path(f"readiness-gate-{name}.json"))
    err.print(f"Wrote partial result to {path}")
    summary(err, done.document)
    raise typer.Exit(int(outputs.gate_exit_code(done, name)))


@app.command()
def report(
    assessment_file: Path = typer.Argument(..., metavar="ASSESSMENT.json",
                                           help="A stored assessment document (assessment.json)."),
    fmt: str = typer.Option("html", "--format", "-f", metavar="FORMAT", help="html, md, junit or json."),
    out: str = typer.Option("-", "--out", "-o", metavar="FILE", help="Output file; - for stdout."),
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
    out: Path = typer.Option(Path("readiness-report"), "--out", "-o", metavar="FOLDER",
                             help="Folder for the merged reports."),
) -> None:
    """Fold partial gate results (another host, mutation shards) into an assessment."""
    docs = [document.load(p) for p in partials]
    merged = merging.merge(document.load(base), docs)
    outputs.write_reports(merged.document, out, report_formats.FILE_NAMES.keys(), err)
    raise typer.Exit(int(outputs.exit_code(merged)))


@app.command()
def init(
    path: Path = typer.Argument(Path("readiness.toml"), metavar="FILE",
                                help="Where to write: readiness.toml, or pyproject.toml to append [tool.readiness]."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing readiness.toml (never a pyproject.toml)."),
    model: Optional[str] = typer.Option(None, "--model", metavar="ADAPTER",
                                        help="Write [model] with this adapter (builtin:student or "
                                             "pkg.module:callable) even if no model was found."),
) -> None:
    """Write a configuration for this project from what it holds (packages, tests, a model)."""
    from readiness.scaffold import write_config

    written = write_config(path, force=force, adapter=model)
    for note in written.notes:
        err.print(note, soft_wrap=True, highlight=False, markup=False)
    err.print(f"Wrote configuration to {written.path}", soft_wrap=True, highlight=False, markup=False)


@app.command()
def demo(
    out: Path = typer.Option(Path("readiness-report"), "--out", "-o", metavar="FOLDER",
                             help="Folder for the reports."),
    work: Optional[Path] = typer.Option(None, "--work", metavar="FOLDER",
                                        help="Work folder for the demo model and project (default .readiness/demo)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild and re-measure everything."),
) -> None:
    """Assess the bundled demo model and example project end to end."""
    from readiness.demo import run_demo

    code = run_demo(out=out, work=work, no_cache=no_cache, console=err)
    raise typer.Exit(int(code))


def _register_plugins() -> None:
    cli_history.register(app)


def _on_stop_signal(signum: int, frame: object) -> None:
    """First SIGINT/SIGTERM: stop at the next safe point; a second one acts at once."""
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
    _quiet_third_party()
    heap.configure()  # large blocks go back to the OS when freed (pipeline/heap.py)
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
    except typer.TyperException as exc:  # usage errors: Typer's own click exceptions, which show themselves
        exc.show()  # type: ignore[attr-defined]
        return int(ExitCode.HARNESS)
    except (KeyboardInterrupt, typer.Abort, children.Interrupted):
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
