"""Test doubles shipped with the package, for our tests and for plugin authors.

`StaticGate` returns a fixed result (or raises a fixed exception), so engine,
scoring and report behaviour can be tested without running any real check:

    >>> from gates.result import Status
    >>> gate = StaticGate.passing("coverage", score=0.9)
    >>> gate.check(None).status is Status.PASS
    True
"""

from __future__ import annotations

import time
from typing import Any

from gates.engine.protocol import Gate, GateContext, NoSettings
from gates.result import GateResult, Severity, Status


class StaticGate(Gate):
    """A gate whose outcome is decided up front."""

    Settings = NoSettings

    def __init__(
        self,
        name: str,
        result: GateResult | None = None,
        *,
        needs: tuple[str, ...] = (),
        after: tuple[str, ...] = (),
        severity: Severity = Severity.BLOCKER,
        raises: BaseException | None = None,
        sleep_s: float = 0.0,
        inputs: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.needs = needs
        self.after = after
        self.severity = severity
        self._result = result
        self._raises = raises
        self._sleep_s = sleep_s
        self._inputs = inputs
        self.calls = 0

    @classmethod
    def passing(cls, name: str, score: float = 1.0, **kwargs: Any) -> StaticGate:
        severity = kwargs.pop("severity", Severity.BLOCKER)
        result = GateResult(name=name, status=Status.PASS, severity=severity, score=score,
                            summary=f"{name} passed", metrics={"checked": 1})
        return cls(name, result, severity=severity, **kwargs)

    @classmethod
    def with_status(cls, name: str, status: Status, score: float | None = None,
                    **kwargs: Any) -> StaticGate:
        severity = kwargs.pop("severity", Severity.BLOCKER)
        result = GateResult(name=name, status=status, severity=severity, score=score,
                            summary=f"{name}: {status.value}")
        return cls(name, result, severity=severity, **kwargs)

    def cache_inputs(self, ctx: GateContext) -> dict[str, Any] | None:
        return self._inputs

    def check(self, ctx: GateContext | None) -> GateResult:
        self.calls += 1
        if self._sleep_s:
            time.sleep(self._sleep_s)
        if self._raises is not None:
            raise self._raises
        if self._result is None:
            raise ValueError(f"StaticGate {self.name!r} needs a result or an exception")
        return self._result.with_(name=self.name, severity=self.severity)
