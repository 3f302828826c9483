"""`readiness init`: a configuration written from what the project holds.

`readiness.survey` finds the packages, the test folder and a model; this
module turns that into commented TOML and writes it:

- `readiness.toml`: tables at the top level; an existing file is replaced
  only with `--force` (it is Readiness's own file);
- `pyproject.toml`: the same tables under `[tool.readiness]`, appended to the
  user's file with every byte already there kept. A pyproject.toml that
  already has `[tool.readiness]` is refused, `--force` or not: init never
  rewrites a table of the user's file.

`[model]` is written only when a model was found or named with `--model`;
a Hugging Face folder becomes `adapter = "hf:<folder>"` unless `--model`
names a callable. The text is parsed and validated before anything is
written, and written atomically with the permissions of any new file (the
umask applies) or, when appending, those the file already had.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from readiness import config as configuration
from readiness.exit_codes import HarnessError
from readiness.survey import FoundModel, Survey, survey
from reports.writer import write_text

LENGTHS = (64, 128, 256, 512)
BUILTIN = "builtin:student"


@dataclass(frozen=True, slots=True, kw_only=True)
class Written:
    path: Path
    found: Survey
    notes: tuple[str, ...]  # what was found and what was left for the user, one line each


def toml_value(value: object) -> str:
    """A TOML literal: a basic string (JSON's escapes are valid TOML), a bool, a number, an
    array or an inline table of those. What `readiness init` and `readiness demo` write."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return str(value)



def _lengths(max_seq_len: int | None) -> tuple[list[int], int]:
    lengths = [n for n in LENGTHS if max_seq_len is None or n <= max_seq_len] or [max_seq_len or LENGTHS[0]]
    return lengths, 128 if 128 in lengths else lengths[-1]


def _model_lines(found: Survey, adapter: str | None, table: str) -> list[str]:
    model = found.model
    if adapter is None and model is not None and model.kind == "readiness":
        adapter = BUILTIN
    if adapter is not None:
        return [f"[{table}model]", f"adapter = {toml_value(adapter)}", *_model_body(model)]
    if model is not None:  # a Hugging Face folder: Readiness loads and wraps it itself
        return [f"[{table}model]", f"adapter = {toml_value('hf:' + model.checkpoint)}   # a Hugging Face folder "
                "(docs/user-models.md)", *_hf_body(model)]
    return ["# No model found (no Readiness checkpoint, no Hugging Face folder): the model",
            "# gates stay off. To gate a model (docs/user-models.md):",
            f"# [{table}model]", f'# adapter = "{BUILTIN}"        # or "my_package.models:build"',
            '# checkpoint = "checkpoints/student.safetensors"', '# tokenizer = "checkpoints/tokenizer.json"']


def _model_body(model: FoundModel | None) -> list[str]:
    if model is None:
        return ["# checkpoint = \"weights/model.safetensors\"   # handed to your adapter, if it takes one"]
    lengths, primary = _lengths(model.max_seq_len)
    lines = [f"checkpoint = {toml_value(model.checkpoint)}"]
    if model.tokenizer:
        lines.append(f"tokenizer = {toml_value(model.tokenizer)}")
    return lines + [f"lengths = {lengths}                # enumerated sequence lengths",
                    f"primary_length = {primary}", '# precisions = ["fp32", "fp16"]',
                    '# targets = ["coreml", "onnx"]', '# deployment_target = "iOS18"']


def _hf_body(model: FoundModel) -> list[str]:
    # the tables hold max_seq_len rows and must be longer than the longest prompt
    lengths, primary = _lengths(model.max_seq_len - 1 if model.max_seq_len else None)
    own = model.tokenizer == f"{model.checkpoint}/tokenizer.json"
    lines = [] if own or not model.tokenizer else [f"tokenizer = {toml_value(model.tokenizer)}"]
    return lines + [f"lengths = {lengths}                # enumerated sequence lengths",
                    f"primary_length = {primary}", '# precisions = ["fp32", "fp16"]',
                    '# targets = ["coreml", "onnx"]', '# deployment_target = "iOS18"']


def _code_lines(found: Survey, table: str) -> list[str]:
    if not found.packages and not found.tests:
        return ["# No package (a folder with __init__.py, at the root or under src/) and no tests/",
                "# folder found: the code gates stay off. To gate your code:",
                f"# [{table}code]", '# sources = ["my_package"]', '# tests = ["tests"]']
    lines = [f"[{table}code]"]
    if found.packages:
        lines.append(f"sources = {toml_value(found.packages)}   # measured by coverage and mutation")
    else:
        lines.append("sources = []   # no package found: list the folders coverage and mutation measure")
    if found.tests:
        lines.append(f"tests = {toml_value(found.tests)}")
    else:
        lines.append("tests = []     # no tests/ folder found: pytest collects from the project root")
    critical = ", ".join(f'{{ path = {toml_value(m)}, tier = "{i + 1}" }}' for i, m in enumerate(found.modules))
    if critical:
        lines.append(f"# critical = [{critical}]   # judged against a tier")
    return lines + ['# junit_xml = "build/junit.xml"      # ingest results CI already produced',
                    '# coverage_data = "build/.coverage"']


def render(found: Survey, *, adapter: str | None = None, pyproject: bool = False) -> str:
    """The configuration text for what was found; under [tool.readiness] for pyproject.toml."""
    table = "tool.readiness." if pyproject else ""
    lines = ["# Readiness configuration, written by `readiness init` from what it found in",
             "# this project. Reference: docs/configuration.md",
             *(["[tool.readiness]"] if pyproject else [""]),
             '# project = "my-model"         # default: the folder name',
             "fail_under = 80                # ship threshold (0..100)",
             '# skip = ["mutation"]          # turn gates off (the report lists them)',
             "# timeout_s = 3600             # per-gate timeout, seconds",
             "# jobs = 1                     # gates run at once",
             "", *_model_lines(found, adapter, table),
             "", *_code_lines(found, table),
             "", f"[{table}history]", 'path = ".readiness/history.sqlite"',
             'first_run_policy = "pass"      # or "fail": a first run without a baseline may not ship',
             "", f"# Per-gate settings: [{table}gates.<gate name>]; see docs/gates/<gate>.md",
             f"# [{table}gates.mutation]", "# sample = 50", ""]
    return "\n".join(lines)


def _notes(found: Survey, adapter: str | None) -> tuple[str, ...]:
    notes = [f"Found packages: {', '.join(found.packages)}" if found.packages else "No package found",
             f"Found tests: {', '.join(found.tests)}" if found.tests else "No tests/ folder found"]
    model = found.model
    if model is None:
        notes.append(f"No model found; [model] names {adapter} as asked" if adapter else "No model found")
    elif model.kind == "huggingface" and adapter is None:
        notes.append(f"Found a Hugging Face model in {model.checkpoint}: adapter = \"hf:{model.checkpoint}\"")
    else:
        notes.append(f"Found model: {model.checkpoint}" + (f", tokenizer {model.tokenizer}" if model.tokenizer else ""))
    if found.other_models:
        notes.append(f"Also found, not configured: {', '.join(found.other_models)}")
    return tuple(notes)


def write_config(path: Path, *, force: bool = False, adapter: str | None = None) -> Written:
    """Survey the folder `path` lies in and write its configuration to `path`."""
    if path.exists() and not path.is_file():
        raise HarnessError(f"{path}: not a file")
    found = survey(path.parent)
    if adapter == BUILTIN and (found.model is None or found.model.kind != "readiness"):
        raise HarnessError(f"--model {BUILTIN}: no Readiness checkpoint (.safetensors with Readiness "
                           f"metadata) found under {found.root}")
    if path.name == "pyproject.toml":
        data = _pyproject_bytes(path, render(found, adapter=adapter, pyproject=True))
    else:
        if path.exists() and not force:
            raise HarnessError(f"{path}: already exists (use --force to overwrite)")
        data = render(found, adapter=adapter).encode("utf-8")
        _validate(data, path, within=None)
    _write_atomic(path, data)
    return Written(path=path, found=found, notes=_notes(found, adapter))


def _pyproject_bytes(path: Path, table: str) -> bytes:
    """The user's pyproject.toml, every byte kept, with [tool.readiness] appended."""
    existing = path.read_bytes() if path.exists() else b""
    try:
        document = tomllib.loads(existing.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"{path}: not valid TOML ({exc}); fix it before adding [tool.readiness]") from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise HarnessError(f"{path}: tool = {tool!r}: must be a table; fix it before adding [tool.readiness]")
    if "readiness" in tool:
        raise HarnessError(f"{path}: already has [tool.readiness]; init never rewrites a table of "
                           "pyproject.toml (--force included): edit it, or remove it and run init again")
    newline = b"\r\n" if b"\r\n" in existing else b"\n"
    gap = b"" if not existing else (newline if existing.endswith(b"\n") else newline * 2)
    data = existing + gap + table.replace("\n", newline.decode()).encode("utf-8")
    _validate(data, path, within="tool.readiness")
    return data


def _validate(data: bytes, path: Path, within: str | None) -> None:
    """What init writes must load; a failure here is a bug of init, not of the user."""
    raw = tomllib.loads(data.decode("utf-8"))
    for key in (within.split(".") if within else ()):
        raw = raw[key]
    configuration.parse(raw, str(path), f"{within}." if within else "")


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` in one step (the reports' writer: umask respected, an old file's mode kept)."""
    write_text(data.decode("utf-8"), path.resolve() if path.is_symlink() else path)  # a linked pyproject stays a link
