"""The gates: the engine that runs them and one room per kind of gate.

Rooms: `gates.engine` (protocol, specs, scheduler, registry, cache, child
processes), `gates.model` (the model gates), `gates.code` (suite health,
coverage, hygiene), `gates.mutation` (the mutation gate). See
docs/architecture.md.

What a third-party gate needs is importable from here, and `gates.result`
and `gates.testing` keep their paths for plugins and reports:

    from gates import GateContext, GateError, GateResult, Severity, Status
"""

from gates.engine.protocol import Gate, GateContext, GateError, Memo, NoSettings
from gates.engine.spec import CodeSpec, ModelSpec, ProjectSpec
from gates.result import GateResult, Severity, Status

__all__ = ["CodeSpec", "Gate", "GateContext", "GateError", "GateResult", "Memo", "ModelSpec", "NoSettings",
           "ProjectSpec", "Severity", "Status"]
