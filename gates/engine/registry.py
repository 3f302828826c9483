"""Where gates come from: the built-in ones and third-party plugins.

Built-ins are loaded through the same path as plugins (pluggy's habit): a
name mapped to `module:Class`, imported only when the gate is used, so
`readiness --help` needs neither torch nor coremltools. Plugins register in
the entry-point group `readiness.gates`; one that fails to import or does not
look like a gate is rejected with a message naming it. A plugin class that
does not subclass `Gate` gets the optional hooks' defaults here, so nothing
downstream has to ask whether a hook exists.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from gates.engine.protocol import Gate, Requires, with_defaults

ENTRY_POINT_GROUP = "readiness.gates"

# name -> "module:Class", in the order the report lists them.
BUILTIN: dict[str, str] = {
    "environment": "gates.model.environment:EnvironmentGate",
    "checkpoint": "gates.model.checkpoint:CheckpointGate",
    "tokenizer": "gates.model.tokenizer:TokenizerGate",
    "semantics": "gates.model.semantics:SemanticsGate",
    "export": "gates.model.export:ExportGate",
    "conversion": "gates.model.conversion:ConversionGate",
    "contract": "gates.model.contract:ContractGate",
    "parity": "gates.model.parity:ParityGate",
    "performance": "gates.model.performance:PerformanceGate",
    "suite_health": "gates.code.suite_health:SuiteHealthGate",
    "coverage": "gates.code.coverage:CoverageGate",
    "hygiene": "gates.code.hygiene:HygieneGate",
    "mutation": "gates.mutation.gate:MutationGate",
}


class PluginError(Exception):
    """A gate could not be loaded; the message names it."""


def _load_target(name: str, target: str) -> type:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except Exception as exc:  # a broken plugin must not take the harness down
        raise PluginError(f"gate {name!r} ({target}) could not be loaded: {exc}") from exc


REQUIRED = ("name", "needs", "severity", "check", "Settings")


def _validate(name: str, cls: Any) -> type[Gate]:
    missing = [a for a in REQUIRED if not hasattr(cls, a)]
    if missing:
        raise PluginError(f"gate {name!r} is not a gate: it lacks {', '.join(missing)}")
    if cls.name != name:
        raise PluginError(f"gate {name!r} declares the name {cls.name!r}")
    return with_defaults(cls)


def plugin_targets() -> dict[str, str]:
    """Third-party gates registered as entry points, by name."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, str]:
    """Every known gate name and where it lives; built-ins win over plugins."""
    return {**plugin_targets(), **BUILTIN}


def gate_class(name: str) -> type[Gate]:
    """The class of gate `name`; raises PluginError if unknown or broken."""
    targets = available()
    if name not in targets:
        known = ", ".join(sorted(targets)) or "none"
        raise PluginError(f"unknown gate {name!r} (known: {known})")
    return _validate(name, _load_target(name, targets[name]))


def create(name: str) -> Gate:
    """An instance of gate `name`."""
    return gate_class(name)()


def requiring(section: Requires) -> tuple[str, ...]:
    """The known gates that look at `section` of the project (turned off without it)."""
    return tuple(name for name in available() if gate_class(name).requires is section)
