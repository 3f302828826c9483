"""`readiness demo`: the bundled demo model and example project, assessed end to end.

Builds (or reuses) the demo checkpoint and tokenizer, copies the bundled
example code project next to them, writes a configuration for both into the
work folder and runs a full assessment, so that every gate has something real
to measure. The work folder (default `.readiness/demo`) keeps the model
build, the gate cache and the history between runs.
"""

from __future__ import annotations

import shutil
import tomllib
from importlib import resources
from pathlib import Path

from rich.console import Console

from readiness import assessment, outputs
from readiness import config as configuration
from readiness.exit_codes import ExitCode
from readiness.scaffold import toml_value
from readiness.selection import Request
from reports import formats as report_formats
from reports.terminal import GateProgress
from reports.writer import write_text

DEFAULT_WORK = Path(".readiness/demo")
EXAMPLE = "data/example_project"


def _example_code_table() -> dict:
    source = resources.files("readiness").joinpath(EXAMPLE, "readiness.toml").read_text(encoding="utf-8")
    return tomllib.loads(source).get("code", {})


def copy_example(target: Path) -> Path:
    """A fresh copy of the bundled example project at `target`."""
    source = Path(str(resources.files("readiness").joinpath(EXAMPLE)))
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".coverage*"))
    return target


def demo_config(checkpoint: Path, tokenizer: Path) -> str:
    code = _example_code_table()
    lines = [
        "# Written by `readiness demo`: the demo model and the bundled example project.",
        'project = "readiness-demo"',
        "",
        "[model]",
        'adapter = "builtin:student"',
        f"checkpoint = {toml_value(str(checkpoint))}",
        f"tokenizer = {toml_value(str(tokenizer))}",
        "lengths = [64, 128, 256, 512]",
        "primary_length = 128",
        'compressions = ["int4_block32"]',
        'stateful = ["fp16"]',
        "",
        "[gates.performance]",
        "# Budgets make the performance gate a blocker. Sizes are bytes on disk; a timing fails only",
        "# when its whole interval is past the budget (docs/gates/performance.md).",
        "max_package_mb = 16.0",
        "max_decode_ms = { onnx_fp32 = 50.0 }",
        "",
        "[code]",
        'root = "project"',
        *(f"{key} = {toml_value(value)}" for key, value in code.items() if key != "root"),
        "",
        "[history]",
        'path = "history.sqlite"',
        "",
    ]
    return "\n".join(lines)


def run_demo(*, out: Path, work: Path | None, no_cache: bool, console: Console) -> ExitCode:
    from pipeline.demo_assets import build_demo_assets

    work = (work or DEFAULT_WORK).resolve()
    with console.status("Building the demo model and tokenizer (reused when cached)…"):
        assets = build_demo_assets(work / "model", seed=0)
    console.print(f"Demo model: {assets.checkpoint} ({'reused' if assets.reused else 'built'})", soft_wrap=True)
    copy_example(work / "project")
    config_path = write_text(demo_config(assets.checkpoint, assets.tokenizer), work / "readiness.toml")
    loaded = configuration.load(config_path)
    with GateProgress(console) as progress:
        done = assessment.assess(loaded, Request(no_cache=no_cache), progress=progress)
    outputs.write_reports(done.document, out, report_formats.RENDERERS, console)
    return outputs.exit_code(done)
