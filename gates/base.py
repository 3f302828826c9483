"""The gate protocol and what a gate is handed when it runs.

A gate is any object with `name`, `needs`, `severity`, a `Settings` dataclass
and `check(ctx) -> GateResult`. It never prints and never exits; everything the
user should see goes into the result. It may raise: the engine turns the
exception into an `error` result, and the run goes on.

`ProjectSpec` describes what is assessed (the model and the code behind it)
in standard-library types, so gates never import the `readiness` package that
loads the configuration. A gate that wants its results cached also defines
`cache_inputs(ctx)`: the files and values its result depends on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Protocol, TypeVar, runtime_checkable

from gates.result import GateResult, Severity, Status

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Tier:
    """Minimum percentages a critical module of this tier must reach."""

    line_pct: float
    branch_pct: float
    mutation_pct: float


DEFAULT_TIERS: Mapping[str, Tier] = {
    "1": Tier(line_pct=85.0, branch_pct=90.0, mutation_pct=70.0),
    "2": Tier(line_pct=80.0, branch_pct=85.0, mutation_pct=60.0),
    "3": Tier(line_pct=70.0, branch_pct=75.0, mutation_pct=50.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CriticalModule:
    """A source file (relative to the code root) judged against a tier."""

    path: str
    tier: str = "1"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeSpec:
    """The code project behind the model: sources, tests, critical modules.

    `junit_xml` / `coverage_data` name results an earlier CI step produced;
    when set, the suite is not run again.
    """

    root: Path
    sources: tuple[str, ...] = ()
    tests: tuple[str, ...] = ("tests",)
    critical: tuple[CriticalModule, ...] = ()
    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    junit_xml: Path | None = None
    coverage_data: Path | None = None
    pytest_args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """The model under assessment and how to export it.

    `adapter` is `module:callable` returning an `nn.Module` or an adapter
    object (see `pipeline.adapter`); `builtin:student` is the bundled one.
    """

    adapter: str = "builtin:student"
    checkpoint: Path | None = None
    tokenizer: Path | None = None
    lengths: tuple[int, ...] = (64, 128, 256, 512)
    primary_length: int = 128
    precisions: tuple[str, ...] = ("fp32", "fp16")
    targets: tuple[str, ...] = ("coreml", "onnx")
    deployment_target: str = "iOS18"
    compressions: tuple[str, ...] = ()  # compressed fp16 packages: int8, int4_block32, palettize4, ...
    stateful: tuple[str, ...] = ()  # precisions/compressions that also get a stateful decode package


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectSpec:
    """Everything assessed in one run."""

    name: str
    root: Path
    model: ModelSpec | None = None
    code: CodeSpec | None = None


class Memo:
    """A per-run, thread-safe store for work several gates share.

    The first gate that asks for `key` builds it; later ones reuse it. A
    factory that raised is raised again for every later caller, so each gate
    that depends on it reports the same error.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._values: dict[str, Any] = {}
        self._errors: dict[str, BaseException] = {}

    def get(self, key: str, factory: Callable[[], T]) -> T:
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            if key in self._errors:
                raise self._errors[key]
            if key not in self._values:
                try:
                    self._values[key] = factory()
                except Exception as exc:
                    self._errors[key] = exc
                    raise
            return self._values[key]


@dataclass(frozen=True, slots=True, kw_only=True)
class GateContext:
    """What one gate sees: the project, its own settings, earlier results."""

    spec: ProjectSpec
    settings: Any
    work_dir: Path
    results: Mapping[str, GateResult] = field(default_factory=dict)
    memo: Memo = field(default_factory=Memo)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.spec.root


@dataclass(frozen=True, slots=True, kw_only=True)
class NoSettings:
    """For gates that take no settings."""


@runtime_checkable
class Gate(Protocol):
    """What the engine runs. See `gates.testing.StaticGate` for the smallest one."""

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]]
    severity: ClassVar[Severity]
    Settings: ClassVar[type]

    def check(self, ctx: GateContext) -> GateResult: ...


def no_model(gate: Gate) -> GateResult:
    """The result of a model gate run without a [model] section: never a pass."""
    return GateResult(name=gate.name, status=Status.NOT_EVALUABLE, severity=gate.severity,
                      summary="no model is configured",
                      remediation="Add a [model] section (adapter, checkpoint, tokenizer) to the configuration.")


class GateError(Exception):
    """Raised by a gate that could not do its work; becomes an `error` result."""
