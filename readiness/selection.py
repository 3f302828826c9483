"""Which gates run, with which settings, on what: checked once, before any gate runs.

`select(loaded, request)` turns a loaded configuration and the command line
into a `Selection`: the `ProjectSpec` (paths made absolute), the gates that
run in report order, each one's validated `Settings`, every gate that does
not run with the reason it is turned off, and whether the run is *partial*
(the command line, `--gate` or `--skip`, leaves out a gate the
configuration turns on: never a ship decision). Every settings table is
validated here, the tables of gates that will not run included, so a typo
never hides until the day that gate is enabled.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gates.engine import registry
from gates.engine.protocol import Requires
from gates.engine.spec import DEFAULT_TIERS, CodeSpec, CriticalModule, ModelKind, ModelSpec, ProjectSpec, Tier
from readiness import config as configuration
from readiness import module_config
from readiness.config import ConfigError, LoadedConfig

# Why a gate that looks at a section the configuration lacks is off.
MISSING_SECTION = {Requires.MODEL: "no [model] section in the configuration",
                   Requires.CODE: "no [code] section in the configuration"}
# A model gate whose `kinds` leave out the configured kind: listed as not applicable, never "turned off".
NOT_APPLICABLE_PREFIX = "not applicable"


def not_applicable_reason(kind: str) -> str:
    return f'{NOT_APPLICABLE_PREFIX} to kind = "{kind}"'


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What the user asked for on the command line."""

    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    no_cache: bool = False
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    jobs: int | None = None

    def describe(self) -> str:
        """The selection as it was typed, e.g. `--gate hygiene --skip mutation`."""
        return " ".join([*(f"--gate {g}" for g in self.only), *(f"--skip {g}" for g in self.skip)])


@dataclass(frozen=True, slots=True, kw_only=True)
class Partial:
    """A run the command line narrowed: the gates that ran and the configured ones it left out."""

    ran: tuple[str, ...]
    left_out: tuple[str, ...]
    request: str

    def to_dict(self) -> dict[str, Any]:
        return {"ran": list(self.ran), "left_out": list(self.left_out), "request": self.request}


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """Everything decided before the first gate runs."""

    spec: ProjectSpec
    chosen: tuple[str, ...]
    off: Mapping[str, str]  # gate turned off -> why
    settings: Mapping[str, Any]  # gate that runs -> its validated Settings
    partial: Partial | None
    request: Request


def select(loaded: LoadedConfig, request: Request) -> Selection:
    """Check everything the configuration and the command line name, then choose the gates."""
    tables = _check_gate_tables(loaded)
    spec = build_spec(loaded)
    check_names(request.only, "--gate")
    check_names(request.skip, "--skip")
    enabled, turned_off = _configured(loaded, spec)
    configured = [n for n in enabled if n not in loaded.config.skip]
    chosen, off = _narrowed(loaded, enabled, turned_off, request)
    settings = {name: _settings(loaded, name, tables.get(name), request.overrides.get(name)) for name in chosen}
    for name in request.overrides:
        if name not in chosen:
            key = next(iter(request.overrides[name]), "…")
            raise ConfigError(f"--set {name}.{key}=…: gate {name!r} is not part of this run")
    left_out = tuple(name for name in configured if name not in chosen)
    partial = Partial(ran=tuple(chosen), left_out=left_out, request=request.describe()) \
        if (request.only or request.skip) and left_out else None
    return Selection(spec=spec, chosen=tuple(chosen), off=off, settings=settings, partial=partial,
                     request=request)


def _path(root: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def build_spec(loaded: LoadedConfig) -> ProjectSpec:
    """The project described by the configuration, paths made absolute."""
    cfg, root = loaded.config, loaded.root
    model = None
    if cfg.model is not None:
        m = cfg.model
        module_io = module_config.module_io(m, loaded.source())  # a module's keys first: lengths may not apply
        if m.primary_length not in m.lengths:
            raise ConfigError(f"{loaded.source()}: model.primary_length = {m.primary_length}: "
                              f"must be one of model.lengths {m.lengths}")
        model = ModelSpec(kind=ModelKind(m.kind), module_io=module_io, adapter=m.adapter, args=dict(m.args),
                          checkpoint=_path(root, m.checkpoint),
                          tokenizer=_path(root, m.tokenizer), lengths=tuple(sorted(set(m.lengths))),
                          primary_length=m.primary_length, precisions=tuple(m.precisions),
                          targets=tuple(m.targets), deployment_target=m.deployment_target,
                          compressions=tuple(m.compressions), stateful=tuple(m.stateful))
    code = None
    if cfg.code is not None:
        c = cfg.code
        tiers = dict(DEFAULT_TIERS)
        if cfg.tiers:
            tiers = {k: Tier(line_pct=t.line_pct, branch_pct=t.branch_pct, mutation_pct=t.mutation_pct)
                     for k, t in cfg.tiers.items()}
        for module in c.critical:
            if module.tier not in tiers:
                raise ConfigError(f"{loaded.source()}: code.critical tier = {module.tier!r} for {module.path}: "
                                  f"unknown tier (defined: {', '.join(sorted(tiers))})")
        code_root = (root / c.root).resolve()
        code = CodeSpec(root=code_root, sources=tuple(c.sources), tests=tuple(c.tests),
                        critical=tuple(CriticalModule(path=m.path, tier=m.tier, mutate=m.mutate,
                                                      tests=tuple(m.tests)) for m in c.critical),
                        tiers=tiers, junit_xml=_path(code_root, c.junit_xml),
                        coverage_data=_path(code_root, c.coverage_data), pytest_args=tuple(c.pytest_args),
                        python=c.python)
    return ProjectSpec(name=loaded.project_name, root=root, model=model, code=code)


def work_dir(loaded: LoadedConfig) -> Path:
    return _path(loaded.root, loaded.config.work_dir) or loaded.root


def cache_dir(loaded: LoadedConfig) -> Path:
    return _path(loaded.root, loaded.config.cache_dir) or loaded.root


def _configured(loaded: LoadedConfig, spec: ProjectSpec) -> tuple[list[str], dict[str, str]]:
    """The gates `enable` (or, without it, the sections present) turns on, and why the others are off."""
    cfg = loaded.config
    if cfg.enable is not None:
        for name in cfg.enable:
            registry.gate_class(name)
        return list(cfg.enable), {n: "not in `enable` in the configuration"
                                  for n in registry.available() if n not in cfg.enable}
    present = {Requires.NOTHING: True, Requires.MODEL: spec.model is not None, Requires.CODE: spec.code is not None}
    chosen, off = [], {}
    for name in registry.available():
        gate = registry.gate_class(name)
        if not present[gate.requires]:
            off[name] = MISSING_SECTION[gate.requires]
        elif gate.requires is Requires.MODEL and spec.model is not None and spec.model.kind not in gate.kinds:
            off[name] = not_applicable_reason(spec.model.kind)
        else:
            chosen.append(name)
    return chosen, off


def _narrowed(loaded: LoadedConfig, chosen: list[str], off: dict[str, str],
              request: Request) -> tuple[list[str], dict[str, str]]:
    """The gates that run: `--gate` (with what those need and read), less `skip` and `--skip`."""
    configured_skip = loaded.config.skip
    skipped = {*configured_skip, *request.skip}

    def why(name: str) -> str:
        return "listed in `skip`" if name in configured_skip else "with --skip"

    chosen, off = list(chosen), dict(off)
    if request.only:
        wanted = _with_prerequisites(request.only, [n for n in chosen if n not in skipped])
        off.update({n: why(n) if n in skipped else "not selected with --gate" for n in chosen if n not in wanted})
        chosen = list(wanted)
        for name in chosen:
            off.pop(name, None)
    for name in (*configured_skip, *request.skip):
        registry.gate_class(name)
        if name in chosen:
            chosen.remove(name)
            off[name] = why(name)
    return chosen, off


def _with_prerequisites(names: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """`names`, the gates they need, and the gates they read (`after`) among `allowed`.

    A gate's `needs` always join: it cannot run without them. What it runs
    `after` (coverage reads suite_health's data, mutation deselects the tests
    suite_health saw failing) joins when the configuration lets that gate run,
    so `readiness gate coverage` measures instead of erroring.
    """
    out: list[str] = []

    def add(name: str) -> None:
        if name in out:
            return
        gate = registry.gate_class(name)
        for dep in gate.needs:
            add(dep)
        for dep in gate.after:
            if dep in allowed:
                add(dep)
        out.append(name)

    for name in names:
        add(name)
    return out


def unknown_gate(name: str) -> str:
    """`unknown gate 'x'` with the nearest known name, or the list of them."""
    known = list(registry.available())
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"unknown gate {name!r}" + (f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})")


def check_names(names: Sequence[str], option: str) -> None:
    """Every gate named on the command line exists; a misspelt one gets a suggestion."""
    known = registry.available()
    for name in names:
        if name not in known:
            raise ConfigError(f"{option} {name}: {unknown_gate(name)}")


def _check_gate_tables(loaded: LoadedConfig) -> dict[str, Any]:
    """Every gate the configuration names exists; every settings table, validated once."""
    cfg, source = loaded.config, loaded.source()
    known = registry.available()
    named = [("gates", n) for n in cfg.gates] + [("timeouts", n) for n in cfg.timeouts] + \
            [("enable", n) for n in cfg.enable or ()] + [("skip", n) for n in cfg.skip] + \
            [(f"components.{c}.gates", g) for c, comp in (cfg.components or {}).items() for g in comp.gates]
    for key, name in named:
        if name not in known:
            hint = configuration.suggest(name, list(known))
            raise ConfigError(f"{source}: {key}: unknown gate {name!r}{hint}")
    if cfg.components is not None and sum(c.weight for c in cfg.components.values()) <= 0:
        raise ConfigError(f"{source}: components: the weights add up to 0; at least one must be above 0")
    return {name: configuration.gate_settings(registry.gate_class(name).Settings, dict(table), name, source)
            for name, table in cfg.gates.items()}


def _settings(loaded: LoadedConfig, name: str, validated: Any, overrides: Mapping[str, Any] | None) -> Any:
    """A gate's Settings: its validated table, or with `--set` overrides applied to that table."""
    settings_type = registry.gate_class(name).Settings
    if overrides:
        table = {**loaded.config.gates.get(name, {}), **overrides}
        return configuration.gate_settings(settings_type, table, name, "--set")
    if validated is not None:
        return validated
    return configuration.gate_settings(settings_type, {}, name, loaded.source())


def parse_override(text: str) -> tuple[str, str, Any]:
    """`gate.key=value` (value read as TOML, else as a string)."""
    key, sep, raw = text.partition("=")
    gate, dot, setting = key.strip().partition(".")
    if not sep or not dot or not gate or not setting:
        raise ConfigError(f"--set {text!r}: expected GATE.KEY=VALUE")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return gate, setting, value


def parse_overrides(texts: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`--set` values by gate, each gate and setting name checked, in the user's own words."""
    out: dict[str, dict[str, Any]] = {}
    known = list(registry.available())
    for text in texts:
        gate, key, value = parse_override(text)
        if gate not in known:
            raise ConfigError(f"--set {text}: {unknown_gate(gate)}")
        settings_type = registry.gate_class(gate).Settings
        fields = [f.name for f in dataclasses.fields(settings_type)] if dataclasses.is_dataclass(settings_type) else []
        if key not in fields:
            hint = configuration.suggest(key, fields) if fields else "; this gate takes no settings"
            raise ConfigError(f"--set {text}: gate {gate} has no setting {key!r}{hint}")
        out.setdefault(gate, {})[key] = value
    return out
