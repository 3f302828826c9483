"""The gate protocol and what a gate is handed when it runs.

A gate is a class with `name`, `needs`, `severity`, a `Settings` dataclass
and `check(ctx) -> GateResult`. It never prints and never exits; everything the
user should see goes into the result. It may raise: the engine turns the
exception into an `error` result, and the run goes on.

Every optional hook is declared on `Gate` with its default, so the engine,
the cache and `merge` read them as plain attributes:

- `after`: gates whose results it reads without needing them to pass;
- `requires`: what of the project it looks at (`Requires.MODEL`, `.CODE`),
  so a project without that section has the gate turned off;
- `kinds`: the model kinds it applies to (`ModelKind`); for another kind it
  is listed as not applicable, outside the score;
- `cache_inputs(ctx)`: the files and values its result depends on (None:
  never cached), with `version` (bump it when the judging changes) and
  `tools` (packages whose versions the result depends on);
- `merge(results)`: one result from several partial ones (`readiness merge`);
  the default keeps the newest;
- `severity_for(settings)`: the severity a run with these settings carries
  (the performance gate is a blocker once a budget is set); by default the
  class's `severity`. The engine stamps it on the gate's result, its error
  and its timeout.

Built-in gates subclass `Gate`; a plugin class that does not is given the
defaults by the registry (`with_defaults`). What is assessed arrives as a
`ProjectSpec` (`gates.engine.spec`).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Protocol, Sequence, TypeVar

from gates.engine.spec import ModelKind, ProjectSpec
from gates.result import GateResult, Severity

T = TypeVar("T")


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


class Requires(enum.StrEnum):
    """What of the project a gate looks at; without it the gate is turned off."""

    NOTHING = "nothing"
    MODEL = "model"  # the [model] section
    CODE = "code"  # the [code] section


class Gate(Protocol):
    """What the engine runs: the required members, then every optional hook with its default.

    See `gates.testing.StaticGate` for the smallest gate.
    """

    name: str
    needs: tuple[str, ...]
    severity: Severity
    Settings: ClassVar[type]
    after: tuple[str, ...] = ()
    requires: Requires = Requires.NOTHING
    kinds: tuple[ModelKind, ...] = tuple(ModelKind)
    version: int = 1
    tools: tuple[str, ...] = ()

    def check(self, ctx: GateContext) -> GateResult: ...

    def cache_inputs(self, ctx: GateContext) -> Mapping[str, Any] | None:
        """JSON-able values plus an optional "files" list the result depends on; None: never cached."""
        return None

    def severity_for(self, settings: Any) -> Severity:
        """The severity of a run with `settings`; by default the class's own."""
        return self.severity

    @classmethod
    def merge(cls, results: Sequence[GateResult]) -> GateResult:
        """One result from partial results in the order produced; by default the newest wins."""
        return results[-1]


def with_defaults(cls: type) -> type[Gate]:
    """`cls` itself when it subclasses `Gate`, else a subclass that adds the hooks' defaults."""
    if Gate in cls.__mro__:
        return cls
    return type(cls.__name__, (cls, Gate), {"__module__": cls.__module__, "__doc__": cls.__doc__,
                                            "__qualname__": cls.__qualname__})


class GateError(Exception):
    """Raised by a gate that could not do its work; becomes an `error` result."""
