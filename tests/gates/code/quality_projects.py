"""Helpers for the code-quality gate tests: copy a seeded project, build a context.

The fixture projects under tests/fixtures/quality/ are copied to a temporary
folder before a gate runs on them, so their runs never write into the
repository and a test may edit a copy (the stale-coverage case does).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from gates.engine.protocol import GateContext
from gates.engine.spec import CodeSpec, CriticalModule, ProjectSpec

QUALITY = Path(__file__).resolve().parents[2] / "fixtures" / "quality"
EXAMPLE = Path(__file__).resolve().parents[3] / "readiness" / "data" / "example_project"


def copy_project(name: str, tmp_path: Path) -> Path:
    """A fresh copy of fixture project `name` (or "example") under tmp_path."""
    source = EXAMPLE if name == "example" else QUALITY / name
    target = tmp_path / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".coverage*"))
    return target


def context(root: Path, settings: Any, work_dir: Path, *, sources: tuple[str, ...] = ("calc",),
            critical: tuple[tuple[str, str], ...] = (("calc/core.py", "1"),),
            results: dict | None = None, **code: Any) -> GateContext:
    spec = CodeSpec(root=root, sources=sources,
                    critical=tuple(CriticalModule(path=p, tier=t) for p, t in critical), **code)
    return GateContext(spec=ProjectSpec(name=root.name, root=root, code=spec),
                       settings=settings, work_dir=work_dir, results=results or {})
