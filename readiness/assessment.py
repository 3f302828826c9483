"""One assessment: which gates run, with what settings, and what they found.

Turns a loaded configuration into a `ProjectSpec`, picks the gates (what is
configured, `--gate` with the gates those need, less `--skip`), runs them
through the engine and scores the results. Gates that do not run are still
listed, as `skipped` with the reason they were turned off, so the report
never drops one silently. A run whose command line (`--gate`, `--skip`)
leaves out a gate the configuration turns on is *partial* (`partial_run`):
never a ship decision.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gates.engine import scheduler as engine, registry
from gates.engine.protocol import Gate, GateContext, Memo
from gates.engine.spec import CodeSpec, CriticalModule, DEFAULT_TIERS, ModelSpec, ProjectSpec, Tier
from gates.engine.cache import ResultCache
from gates.result import GateResult, Severity, Status
from readiness import config as configuration
from readiness.config import ConfigError, LoadedConfig
from readiness.distill_profile import score_distill
from readiness.scoring import DEFAULT_COMPONENTS, OFF, Score, score_components

MODEL_GATES = ("environment", "checkpoint", "tokenizer", "semantics", "export", "conversion", "contract", "parity")
CODE_GATES = ("suite_health", "coverage", "hygiene", "mutation")


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
        if m.primary_length not in m.lengths:
            raise ConfigError(f"{loaded.source()}: model.primary_length = {m.primary_length}: "
                              f"must be one of model.lengths {m.lengths}")
        model = ModelSpec(adapter=m.adapter, checkpoint=_path(root, m.checkpoint),
                          tokenizer=_path(root, m.tokenizer), lengths=tuple(sorted(set(m.lengths))),
                          primary_length=m.primary_length, precisions=tuple(m.precisions),
                          targets=tuple(m.targets), deployment_target=m.deployment_target)
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
    name = cfg.project or root.name
    return ProjectSpec(name=name, root=root, model=model, code=code)


def _applicable(spec: ProjectSpec) -> tuple[list[str], dict[str, str]]:
    """Gates that apply to what is configured, and why the others are off."""
    known = list(registry.available())
    chosen, off = [], {}
    for name in known:
        if name in MODEL_GATES and spec.model is None:
            off[name] = "no [model] section in the configuration"
        elif name in CODE_GATES and spec.code is None:
            off[name] = "no [code] section in the configuration"
        else:
            chosen.append(name)
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
        for dep in getattr(gate, "after", ()):  # optional, as the engine reads it
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


def _skip_reason(name: str, configured: Sequence[str]) -> str:
    """Why a skipped gate is off; the summary adds "turned off: "."""
    return "listed in `skip`" if name in configured else "with --skip"


def select(loaded: LoadedConfig, spec: ProjectSpec, request: Request) -> tuple[list[str], dict[str, str]]:
    """(gates to run, {gate turned off: why})."""
    cfg = loaded.config
    if cfg.enable is not None:
        for name in cfg.enable:
            registry.gate_class(name)
        chosen, off = list(cfg.enable), {n: "not in `enable` in the configuration"
                                         for n in registry.available() if n not in cfg.enable}
    else:
        chosen, off = _applicable(spec)
    check_names(request.only, "--gate")
    check_names(request.skip, "--skip")
    if request.only:
        skipped = {*cfg.skip, *request.skip}
        wanted = _with_prerequisites(request.only, [n for n in chosen if n not in skipped])
        off.update({n: _skip_reason(n, cfg.skip) if n in skipped else "not selected with --gate"
                    for n in chosen if n not in wanted})
        chosen = list(wanted)
        for name in chosen:
            off.pop(name, None)
    skips = [(n, _skip_reason(n, cfg.skip)) for n in (*cfg.skip, *request.skip)]
    for name, reason in skips:
        registry.gate_class(name)
        if name in chosen:
            chosen.remove(name)
            off[name] = reason
    _check_overrides(loaded, chosen, request.overrides)
    return chosen, off


def _check_overrides(loaded: LoadedConfig, chosen: Sequence[str],
                     overrides: Mapping[str, Mapping[str, Any]]) -> None:
    """`--set` names a gate of this run and values its settings accept, before any gate runs."""
    for name, values in overrides.items():
        if name not in chosen:
            raise ConfigError(f"--set {name}.{next(iter(values), '…')}=…: gate {name!r} is not part of this run")
        settings_for(loaded, registry.gate_class(name), values)


def partial_run(loaded: LoadedConfig, spec: ProjectSpec, request: Request) -> dict[str, Any] | None:
    """None for a full run; else the gates that run and the configured ones the command line leaves out."""
    if not request.only and not request.skip:
        return None
    configured, _ = select(loaded, spec, Request())
    chosen, _ = select(loaded, spec, request)
    left_out = [name for name in configured if name not in chosen]
    if not left_out:
        return None
    return {"ran": chosen, "left_out": left_out, "request": request.describe()}


def settings_for(loaded: LoadedConfig, gate: type, overrides: Mapping[str, Any]) -> Any:
    """The gate's Settings from its table, then with `--set` overrides applied."""
    table = dict(loaded.config.gates.get(gate.name, {}))
    settings = configuration.gate_settings(gate.Settings, table, gate.name, loaded.source())
    if overrides:
        settings = configuration.gate_settings(gate.Settings, {**table, **overrides}, gate.name, "--set")
    return settings


def check_gate_tables(loaded: LoadedConfig) -> None:
    """Every gate the configuration names exists and every settings table is valid.

    Checked before any gate runs, including the tables of gates that will not
    run this time, so a typo never hides until the day that gate is enabled.
    """
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
    for name, table in cfg.gates.items():
        configuration.gate_settings(registry.gate_class(name).Settings, dict(table), name, source)


def off_result(name: str, reason: str) -> GateResult:
    try:
        severity = registry.gate_class(name).severity
    except registry.PluginError:
        severity = Severity.OPTIONAL
    return GateResult(name=name, status=Status.SKIPPED, severity=severity, summary=f"turned off: {reason}",
                      evidence={OFF: True, "skipped_because": reason})


def run_gates(loaded: LoadedConfig, spec: ProjectSpec, request: Request,
              listener: engine.Listener | None = None) -> list[GateResult]:
    """Run the selected gates; returns every known gate's result."""
    chosen, off = select(loaded, spec, request)
    gates: list[Gate] = [registry.create(n) for n in chosen]
    settings = {g.name: settings_for(loaded, type(g), request.overrides.get(g.name, {})) for g in gates}
    work_dir = _path(loaded.root, loaded.config.work_dir)
    memo = Memo()

    def make_context(gate: Gate, results: Mapping[str, GateResult]) -> GateContext:
        gate_dir = work_dir / gate.name
        gate_dir.mkdir(parents=True, exist_ok=True)
        return GateContext(spec=spec, settings=settings[gate.name], work_dir=gate_dir, results=results,
                           memo=memo, options={"shared_work_dir": str(work_dir), "fresh": request.no_cache,
                                               "gates": tuple(chosen)})

    cfg = loaded.config
    cache = None if request.no_cache else ResultCache(_path(loaded.root, cfg.cache_dir))
    options = engine.EngineOptions(timeout_s=cfg.timeout_s, timeouts=cfg.timeouts,
                                   jobs=request.jobs or cfg.jobs, cache=cache)
    results = engine.run(gates, make_context, options, listener)
    by_name = {r.name: r for r in results}
    order = list(registry.available())
    listed = [by_name[n] for n in chosen if n in by_name] + [off_result(n, off[n]) for n in off]
    return sorted(listed, key=lambda r: order.index(r.name) if r.name in order else len(order))


def score(loaded: LoadedConfig, results: Sequence[GateResult]) -> Score:
    by_name = {r.name: r for r in results}
    if loaded.config.profile == "distill":
        return score_distill(by_name)
    components = DEFAULT_COMPONENTS
    if loaded.config.components is not None:  # checked by check_gate_tables before the run
        components = {n: (c.weight, tuple(c.gates)) for n, c in loaded.config.components.items()}
    else:  # the defaults name every built-in gate; keep those this install has
        components = {n: (w, tuple(g for g in gates if g in by_name)) for n, (w, gates) in components.items()}
        components = {n: c for n, c in components.items() if c[1]}
        known = set().union(*(g for _, g in components.values()))
        extra = tuple(r.name for r in results if r.name not in known)
        if extra:  # plugins join the score as their own component
            components = {**components, "plugins": (10.0, extra)}
    return score_components(by_name, components)


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
