"""Whether a mutation backend can run here, and in the project's interpreter.

mutmut is the one backend the gate drives; `cosmic-ray` and `mutatest` are
recognised so that a configuration naming them gets a precise reason
(`not_evaluable`) instead of a crash. mutmut runs the tests in its own
process, so when a project interpreter is configured it is that interpreter,
not readiness's environment, that must have mutmut 3.
"""

from __future__ import annotations

import enum
import sys
from importlib.util import find_spec
from typing import Any, Mapping


class Backend(enum.StrEnum):
    MUTMUT = "mutmut"
    COSMIC_RAY = "cosmic-ray"
    MUTATEST = "mutatest"


BACKENDS = tuple(b.value for b in Backend)


def backend_problem(backend: str, *, own_interpreter: bool = True) -> str | None:
    """Why `backend` cannot run here, or None when it can.

    mutmut is looked for in readiness's environment only when it also runs
    the tests; a project interpreter is asked by `mutmut_problem`.
    """
    if backend not in BACKENDS:
        return f"unknown mutation backend {backend!r} (known: {', '.join(BACKENDS)})"
    if backend == Backend.MUTATEST and sys.version_info >= (3, 11):
        return "mutatest 3.1 crashes on Python 3.11+ (random.sample on a set) and pins coverage<6"
    module = {Backend.MUTMUT: "mutmut", Backend.COSMIC_RAY: "cosmic_ray",
              Backend.MUTATEST: "mutatest"}[Backend(backend)]
    if (backend != Backend.MUTMUT or own_interpreter) and find_spec(module) is None:
        return f"{backend} is not installed in this environment"
    if backend != Backend.MUTMUT:
        return f"the {backend} backend is not implemented by this gate; use backend = \"mutmut\""
    if sys.platform == "win32":
        return "mutmut 3 does not run on native Windows (use WSL)"
    return None


def mutmut_problem(interpreter: Mapping[str, Any]) -> str | None:
    """Why the project's interpreter cannot run mutmut 3, or None when it can."""
    executable = interpreter["executable"]
    if interpreter.get("error"):
        return str(interpreter["error"])
    found = interpreter["tools"].get("mutmut")
    if found is None:
        return f"mutmut is not installed for {executable} (it runs the tests in its own process)"
    if found.split(".")[0] != "3":
        return f"mutmut {found} is installed for {executable}; the gate drives mutmut 3"
    return None
