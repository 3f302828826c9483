"""The configuration: `[tool.readiness]` in pyproject.toml, or readiness.toml.

Validated at load, before any gate runs. Every problem becomes one
`ConfigError` line naming the file, the key, the bad value and what is
allowed; an unknown key suggests the nearest known one. In readiness.toml the
tables sit at the top level (`[model]`, `[code]`, `[gates.parity]`); in
pyproject.toml they sit under `[tool.readiness]`.

Gate settings (`[gates.<name>]`) are checked against the gate's own
`Settings` dataclass, so a gate's field names are its setting names. Every
path the configuration names must exist and stay inside the project, so a
typo is refused at load instead of surfacing as a gate's error minutes later.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Iterable, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from readiness import module_config
from readiness.history.store import HistorySettings
from readiness.to_mlflow import MlflowSettings

CONFIG_NAMES = ("readiness.toml", "pyproject.toml")


class ConfigError(Exception):
    """A configuration problem, worded for the user in one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Precision = Literal["fp32", "fp16"]
Target = Literal["coreml", "onnx"]
Compression = Literal["int8", "int4_block32", "palettize4", "palettize6", "prune50"]
Variant = Literal["fp32", "fp16", "int8", "int4_block32", "palettize4", "palettize6", "prune50"]  # either


class ModelConfig(_Strict):
    kind: Literal["decoder", "module"] = "decoder"
    adapter: str = "builtin:student"
    checkpoint: str | None = None
    tokenizer: str | None = None
    # keyword arguments for a `pkg.module:callable` adapter (`max_seq_len` for `hf:`)
    args: dict[str, Any] = Field(default_factory=dict)
    lengths: list[pydantic.PositiveInt] = Field(default_factory=lambda: [64, 128, 256, 512], min_length=1)
    primary_length: pydantic.PositiveInt = 128
    precisions: list[Precision] = Field(default_factory=lambda: list[Precision](["fp32", "fp16"]), min_length=1)
    targets: list[Target] = Field(default_factory=lambda: list[Target](["coreml", "onnx"]))
    deployment_target: Literal["iOS15", "iOS16", "iOS17", "iOS18"] = "iOS18"
    # compressed fp16 packages (pipeline.compression) and stateful decode packages (iOS18)
    compressions: list[Compression] = Field(default_factory=list)
    stateful: list[Variant] = Field(default_factory=list)

    @pydantic.field_validator("compressions", "stateful")
    @classmethod
    def _needs_ios18(cls, value: list[str], info: pydantic.ValidationInfo) -> list[str]:
        # states and block-wise int4 exist from iOS18 on; iOS16 LUTs are per tensor only
        target = info.data.get("deployment_target", "iOS18")
        if value and target != "iOS18":
            prefix = (info.context or {}).get("prefix", "")  # our own message names the key (see _describe)
            raise ValueError(f"{prefix}model.{info.field_name} = {value!r}: "
                             f"needs deployment_target = \"iOS18\" (it is {target!r})")
        return value
    # kind = "module" (readiness.module_config checks these together)
    dims: dict[str, module_config.DimConfig] = Field(default_factory=dict)
    inputs: list[module_config.InputConfig] = Field(default_factory=list)
    outputs: list[module_config.OutputConfig] = Field(default_factory=list)
    examples: str | None = None


class CriticalConfig(_Strict):
    path: str
    tier: str = "1"
    mutate: bool = True  # false: judged by its coverage tier only, never mutated
    tests: list[str] = Field(default_factory=list)  # mutation: these tests, not the coverage-selected ones


class CodeConfig(_Strict):
    root: str = "."
    sources: list[str] = Field(default_factory=list)
    tests: list[str] = Field(default_factory=lambda: ["tests"])
    critical: list[CriticalConfig] = Field(default_factory=list)
    junit_xml: str | None = None
    coverage_data: str | None = None
    pytest_args: list[str] = Field(default_factory=list)
    python: str = ""  # the interpreter that runs the project's code (its own venv)


class TierConfig(_Strict):
    line_pct: float = Field(ge=0, le=100)
    branch_pct: float = Field(ge=0, le=100)
    mutation_pct: float = Field(ge=0, le=100)


class ComponentConfig(_Strict):
    weight: float = Field(ge=0)
    gates: list[str] = Field(min_length=1)


class Config(_Strict):
    """The whole validated configuration."""

    project: str | None = None
    profile: Literal["default", "distill"] = "default"
    fail_under: float = Field(default=80.0, ge=0, le=100)
    enable: list[str] | None = None
    skip: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=3600.0, gt=0)
    timeouts: dict[str, pydantic.PositiveFloat] = Field(default_factory=dict)
    jobs: int = Field(default=1, ge=1, le=64)
    cache_dir: str = ".readiness/cache"
    work_dir: str = ".readiness/work"
    model: ModelConfig | None = None
    code: CodeConfig | None = None
    tiers: dict[str, TierConfig] | None = None
    components: dict[str, ComponentConfig] | None = None
    history: HistorySettings = Field(default_factory=HistorySettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    # per-gate settings tables, checked against each gate's Settings by `gate_settings`
    gates: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LoadedConfig:
    """A validated configuration and where it came from."""

    config: Config
    path: Path | None
    root: Path
    raw: dict[str, Any]

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()

    def source(self) -> str:
        return str(self.path) if self.path else "<defaults>"

    @property
    def project_name(self) -> str:
        """The project's name in reports and history: `project`, else the folder's name."""
        return self.config.project or self.root.name


def suggest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"


def _describe(error: dict[str, Any], prefix: str, model: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    key = f"{prefix}{loc}" if loc else prefix.rstrip(".")
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])  # raised by our own validator, which names the key
    if error["type"] == "extra_forbidden":
        parent: Any = model
        for part in error["loc"][:-1]:
            field = getattr(parent, "model_fields", {}).get(str(part))
            if field is None:
                break
            parent = _inner_model(field.annotation) or parent
        known = list(getattr(parent, "model_fields", {}))
        return f"unknown key {key!r}{suggest(str(error['loc'][-1]), known)}"
    value = error.get("input")
    return f"{key} = {value!r}: {error['msg']}"


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        for inner in getattr(arg, "__args__", ()):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def parse(raw: dict[str, Any], source: str, prefix: str = "") -> Config:
    """Validate a configuration table; raises ConfigError on the first problem."""
    try:
        return Config.model_validate(raw, context={"key": f"{prefix}history", "prefix": prefix})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{source}: {_describe(dict(first), prefix, Config)}") from None


def _claims_readiness(pyproject: Path) -> bool:
    """Whether a pyproject.toml holds (or botches) a Readiness configuration.

    Besides a `[tool.readiness]` table, a `tool` or `tool.readiness` that is
    not a table counts, so `tool = 5` is refused instead of silently ignored.
    """
    text = pyproject.read_text(encoding="utf-8", errors="replace")
    try:
        tool = tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        return "tool.readiness" in text  # load() names the TOML error
    return not isinstance(tool, dict) or "readiness" in tool


def find(start: Path) -> Path | None:
    """The nearest readiness.toml, or a pyproject.toml with [tool.readiness]."""
    for folder in (start, *start.parents):
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file() and (name != "pyproject.toml" or _claims_readiness(candidate)):
                return candidate
    return None


def load(path: Path | None = None, start: Path | None = None, *, required: bool = False) -> LoadedConfig:
    """Load and validate the configuration at `path` (or the nearest one).

    Without one, the defaults; with `required` (an assessment: gates and
    reports need to know the project), a ConfigError saying where it looked.
    """
    folder = (start or Path.cwd()).resolve()
    path = path or find(folder)
    if path is None and required:
        raise ConfigError(f"no configuration found: looked for {' or '.join(CONFIG_NAMES)} (with "
                          f"[tool.readiness]) in {folder} and every folder above it; "
                          "run `readiness init` to write one")
    if path is None:
        return LoadedConfig(config=Config(), path=None, root=folder, raw={})
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        tool = document.get("tool", {})
        if not isinstance(tool, dict):
            raise ConfigError(f"{path}: tool = {tool!r}: must be a table (Readiness reads [tool.readiness])")
        raw, prefix = tool.get("readiness", {}), "tool.readiness."
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: tool.readiness = {raw!r}: must be a table")
    else:
        raw, prefix = document, ""
    config = parse(raw, str(path), prefix)
    root = path.parent.resolve()
    _check_paths(config, root, str(path))
    _check_exist(config, root, str(path), prefix)
    config = _hf_defaults(config, root, str(path), prefix)
    return LoadedConfig(config=config, path=path, root=root, raw=raw)


def _hf_defaults(config: Config, root: Path, source: str, prefix: str) -> Config:
    """An `hf:<folder>` model: the folder must hold a checkpoint; its tokenizer.json is the default tokenizer."""
    from pipeline.hf.folder import TOKENIZER_FILE, folder_name, folder_problem, is_hf

    model = config.model
    if model is None or not is_hf(model.adapter):
        return config
    name = folder_name(model.adapter)
    problem = folder_problem(_under(root, name)) if name else "name a folder: adapter = \"hf:<folder>\""
    if problem:
        raise ConfigError(f"{source}: {prefix}model.adapter = {model.adapter!r}: {problem}")
    # a module (an encoder) takes no tokenizer key: its token ids are inputs it declares
    if model.kind == "decoder" and model.tokenizer is None and (_under(root, name) / TOKENIZER_FILE).is_file():
        model = model.model_copy(update={"tokenizer": str(Path(name) / TOKENIZER_FILE)})
        config = config.model_copy(update={"model": model})
    return config


def _inside(root: Path, value: str) -> bool:
    return (root / Path(value).expanduser()).resolve().is_relative_to(root)


def _check_paths(config: Config, root: Path, source: str) -> None:
    # gates write and delete under these folders: keep them inside the project
    for key, value in (("work_dir", config.work_dir), ("cache_dir", config.cache_dir)):
        if not _inside(root, value):
            raise ConfigError(f"{source}: {key} = {value!r}: escapes the project folder {root}")
    if config.model is not None:
        _check_links(((f"model.{key}", getattr(config.model, key)) for key in ("checkpoint", "tokenizer")),
                     root, source)
        _check_links([("model.adapter", _hf_folder(config.model.adapter))], root, source)
    if config.code is None:
        return
    code_root = (root / config.code.root).resolve()
    if not code_root.is_relative_to(root):
        raise ConfigError(f"{source}: code.root = {config.code.root!r}: escapes the project folder {root}")
    _check_links(((f"code.{key}", getattr(config.code, key)) for key in ("junit_xml", "coverage_data")),
                 code_root, source)
    listed = [("code.sources", s) for s in config.code.sources] + \
             [("code.tests", t) for t in config.code.tests] + \
             [("code.critical.path", c.path) for c in config.code.critical] + \
             [("code.critical.tests", t.split("::")[0]) for c in config.code.critical for t in c.tests]
    for key, rel in listed:
        if not (code_root / rel).resolve().is_relative_to(code_root):
            raise ConfigError(f"{source}: {key} = {rel!r}: escapes the code root {code_root}")


def _hf_folder(adapter: str) -> str | None:
    """The folder an `hf:<folder>` adapter names, else None."""
    return adapter[3:] or None if adapter.startswith("hf:") else None


def _under(base: Path, value: str) -> Path:
    return base / Path(value).expanduser()  # an absolute value stays as it is


def _named_paths(config: Config, root: Path) -> list[tuple[str, str, Path]]:
    """(key, value as written, where it points) for every path the configuration names."""
    named: list[tuple[str, str, Path]] = []
    if config.model is not None:
        named += [(f"model.{key}", value, _under(root, value)) for key in ("checkpoint", "tokenizer")
                  if (value := getattr(config.model, key))]
        if folder := _hf_folder(config.model.adapter):
            named.append(("model.adapter", config.model.adapter, _under(root, folder)))
    if config.code is not None:
        code, code_root = config.code, _under(root, config.code.root)
        named.append(("code.root", code.root, code_root))
        named += [("code.sources", s, _under(code_root, s)) for s in code.sources]
        if "tests" in code.model_fields_set:  # the default ["tests"] is no typo of the user's
            # a test may be named by node id (tests/test_a.py::test_x): its file must exist
            named += [("code.tests", t, _under(code_root, t.split("::")[0])) for t in code.tests]
        named += [("code.critical.path", c.path, _under(code_root, c.path)) for c in code.critical]
        named += [("code.critical.tests", t, _under(code_root, t.split("::")[0]))
                  for c in code.critical for t in c.tests]
        if code.python and os.sep in code.python:  # a bare name (python3.11) is looked up on PATH
            named.append(("code.python", code.python, _under(code_root, code.python)))
        named += [(f"code.{key}", value, _under(code_root, value)) for key in ("junit_xml", "coverage_data")
                  if (value := getattr(code, key))]
    return named


def _check_exist(config: Config, root: Path, source: str, prefix: str) -> None:
    """Every path the configuration names exists, so a typo never reaches a gate."""
    for key, value, path in _named_paths(config, root):
        if not path.exists():
            raise ConfigError(f"{source}: {prefix}{key} = {value!r}: no such file or folder ({path})")


def _check_links(paths: Iterable[tuple[str, str | None]], root: Path, source: str) -> None:
    """An input path written inside the project must not leave it through a link.

    A checkpoint or JUnit file the user names outside the project
    (`/models/ckpt`, `../shared/ckpt`) is their choice; `ckpt` that is a
    link to elsewhere would be followed silently, so it is refused and the
    target named.
    """
    for key, value in paths:
        if not value or Path(value).expanduser().is_absolute():
            continue
        written = Path(os.path.normpath(root / value))
        if written.is_relative_to(root) and not written.resolve().is_relative_to(root):
            raise ConfigError(f"{source}: {key} = {value!r}: a link inside the project that leads outside "
                              f"it (to {written.resolve()}); name that path in the configuration if it is "
                              "meant")


def gate_settings(settings_type: type, table: dict[str, Any], gate: str, source: str) -> Any:
    """Build a gate's Settings dataclass from its table, naming bad keys."""
    fields = {f.name for f in dataclasses.fields(settings_type)} if dataclasses.is_dataclass(settings_type) else set()
    for key in table:
        if key not in fields:
            known = sorted(fields)
            hint = suggest(key, known) if known else "; this gate takes no settings"
            raise ConfigError(f"{source}: unknown key 'gates.{gate}.{key}'{hint}")
    try:
        settings: Any = pydantic.TypeAdapter(settings_type).validate_python(table)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        if not loc:  # raised by the Settings' own checks, whose message names the key
            raise ConfigError(f"{source}: gates.{gate}: {first['msg'].removeprefix('Value error, ')}") from None
        raise ConfigError(f"{source}: gates.{gate}.{loc} = {first.get('input')!r}: {first['msg']}") from None
    _check_ranges(settings, gate, source)
    return settings


def _check_ranges(settings: Any, gate: str, source: str) -> None:
    """Percentages lie in 0..100 and durations are positive, by the naming convention."""
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if field.name.endswith("_pct") and not 0 <= value <= 100:
            raise ConfigError(f"{source}: gates.{gate}.{field.name} = {value!r}: a percentage must lie in 0..100")
        if field.name.endswith("_s") and not value > 0:
            raise ConfigError(f"{source}: gates.{gate}.{field.name} = {value!r}: a duration must be above 0")
