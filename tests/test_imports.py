"""The import direction of docs/architecture.md, checked on every module's source.

    pipeline  <-  gates  <-  readiness (the CLI composes)  ->  reports

`pipeline` imports nothing of the project; `gates` import `pipeline` only
inside functions (so `readiness --help` and re-rendering need no torch) and
never `readiness` or `reports`; `reports` read the document and import no
other package of the project. Inside `gates`, the engine imports no gate
room, and a room imports no other room except what the mutation room reads
of the code room (the project-path check, the interpreter query).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("pipeline", "gates", "readiness", "reports")
ROOMS = ("gates.engine", "gates.model", "gates.code", "gates.mutation")
# room -> the other rooms it may import (every room may import gates.engine, gates.result, gates.testing)
ROOM_MAY_IMPORT = {"gates.engine": set(), "gates.model": set(), "gates.code": set(),
                   "gates.mutation": {"gates.code"}}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py") if "data" not in p.relative_to(REPO).parts)


def _name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import of the project's packages."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only: nothing is imported when the code runs
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.extend((f"{child.module}.{alias.name}", top) for alias in child.names)
            visit(child, top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, True)
    return [(name, top) for name, top in found if name.split(".")[0] in PACKAGES]


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _room(module: str) -> str | None:
    return next((room for room in ROOMS if _in(module, room)), None)


def _violations(path: Path) -> list[str]:
    me, problems = _name(path), []
    for target, top in _imports(path):
        top_pkg = target.split(".")[0]
        if _in(me, "pipeline") and top_pkg != "pipeline":
            problems.append(f"pipeline imports {target}")
        if _in(me, "reports") and top_pkg != "reports":
            problems.append(f"reports import {target}")
        if _in(me, "gates") and top_pkg in ("readiness", "reports"):
            problems.append(f"gates import {target}")
        if _in(me, "gates") and top_pkg == "pipeline" and top:
            problems.append(f"gates import {target} at module level (import it inside the function)")
        mine, theirs = _room(me), _room(target)
        if mine and theirs and mine != theirs and theirs not in ROOM_MAY_IMPORT[mine] and theirs != "gates.engine":
            problems.append(f"{mine} imports the room {target}")
        if mine == "gates.engine" and theirs and theirs != "gates.engine":
            problems.append(f"the engine imports the gate room {target}")
        if _in(me, "gates.result") and top_pkg in PACKAGES:
            problems.append(f"gates.result imports {target} (it holds standard-library value types only)")
        if _in(me, "readiness.history") and _in(target, "readiness") and not _in(target, "readiness.history") \
                and not _in(target, "readiness.config"):
            problems.append(f"history imports {target} (it knows no run, only the configuration)")
    return [f"{path.relative_to(REPO)}: {p}" for p in problems]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_follow_the_flow(path: Path) -> None:
    assert _violations(path) == []


def test_the_check_sees_a_wrong_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = REPO / "reports" / "_wrong_direction.py"
    monkeypatch.setattr("tests.test_imports._name", lambda p: "reports._wrong_direction" if p == wrong else _name(p))
    source = "from gates.model.parity import summarise\nimport readiness.cli\n"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source if self == wrong
                        else Path.read_bytes(self).decode())
    assert _violations(wrong) == [f"reports/_wrong_direction.py: reports import {m}"
                                  for m in ("gates.model.parity.summarise", "readiness.cli")]
