"""The `environment` gate: are Python and the model toolchain within supported windows?

Reads installed versions from package metadata (nothing is imported, so a
broken coremltools cannot take the gate down) and judges each against a
PEP 440 window from the settings: `python` and `packages` (name -> window).
A package that is not installed fails its row. Known incompatible pairs
(`KNOWN_BREAKS`) are named explicitly: coremltools 9.0 with numpy >= 2.4
fails conversion with "only 0-dimensional arrays can be converted to Python
scalars", even though each version alone sits inside its window.

Evidence: a table of component, installed version, window and verdict, and
one failure per problem. Metrics: `components_checked`, `components_ok`,
`components_ok_pct`, `known_breaks_hit`, and `<name>_version` strings.
`fail` on any row out of window or any known break; `error` only when the
settings hold a window that is not a valid version specifier.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any, Mapping

from gates.engine.protocol import Gate, GateContext, GateError, Requires
from gates.engine.tools import installed_version
from gates.result import GateResult, Severity, Status

# (package, window, other package, window, why): both inside their windows is a break.
KNOWN_BREAKS: tuple[tuple[str, str, str, str, str], ...] = (
    ("coremltools", "==9.0", "numpy", ">=2.4",
     "coremltools 9.0 with numpy >= 2.4 fails conversion "
     "('only 0-dimensional arrays can be converted to Python scalars'): install numpy<2.4"),
)


def _default_packages() -> dict[str, str]:
    return {"torch": ">=2.5,<2.14", "coremltools": ">=8.0,<9.1", "numpy": ">=1.26,<2.4"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    python: str = ">=3.11,<3.13"
    packages: dict[str, str] = field(default_factory=_default_packages)
    check_known_breaks: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    component: str
    installed: str | None
    window: str
    ok: bool
    problem: str = ""


# -- measuring ------------------------------------------------------------------

def installed_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Installed distribution versions, None where not installed."""
    return {name: installed_version(name) for name in names}


def within(version: str, window: str) -> bool:
    """Whether `version` satisfies the PEP 440 `window` (local tags such as +cpu ignored)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        spec = SpecifierSet(window)
    except InvalidSpecifier:
        raise GateError(f"setting window {window!r} is not a version specifier") from None
    try:
        public = Version(version).public
    except InvalidVersion:
        return False
    return spec.contains(public, prereleases=True)


def judge_rows(python_version: str, versions: Mapping[str, str | None], settings: Settings) -> list[Row]:
    rows = [Row(component="python", installed=python_version, window=settings.python,
                ok=within(python_version, settings.python),
                problem=f"python {python_version} is outside {settings.python}")]
    for name, window in settings.packages.items():
        version = versions.get(name)
        if version is None:
            rows.append(Row(component=name, installed=None, window=window, ok=False,
                            problem=f"{name} is not installed (supported: {window})"))
        else:
            rows.append(Row(component=name, installed=version, window=window, ok=within(version, window),
                            problem=f"{name} {version} is outside {window}"))
    return rows


def known_breaks(versions: Mapping[str, str | None]) -> list[str]:
    """The known incompatible pairs this environment hits."""
    hits = []
    for a, a_window, b, b_window, why in KNOWN_BREAKS:
        va, vb = versions.get(a), versions.get(b)
        if va and vb and within(va, a_window) and within(vb, b_window):
            hits.append(f"{a} {va} + {b} {vb}: {why}")
    return hits


# -- judging ----------------------------------------------------------------------

def judge(rows: list[Row], breaks: list[str]) -> tuple[Status, float, str]:
    ok = sum(r.ok for r in rows)
    score = ok / len(rows) if rows else 0.0
    if breaks:
        return Status.FAIL, score, f"known incompatible versions: {breaks[0].split(':')[0]}"
    if ok < len(rows):
        bad = ", ".join(r.component for r in rows if not r.ok)
        return Status.FAIL, score, f"{len(rows) - ok} of {len(rows)} components outside their window: {bad}"
    return Status.PASS, 1.0, f"{len(rows)} components within their supported windows"


class EnvironmentGate(Gate):
    name = "environment"
    needs: tuple[str, ...] = ()
    severity = Severity.BLOCKER
    requires = Requires.MODEL  # the model toolchain: off for a project without a model
    Settings = Settings

    def check(self, ctx: GateContext) -> GateResult:
        settings: Settings = ctx.settings
        versions = installed_versions(tuple(settings.packages) + tuple(
            n for brk in KNOWN_BREAKS for n in (brk[0], brk[2])))
        rows = judge_rows(platform.python_version(), versions, settings)
        breaks = known_breaks(versions) if settings.check_known_breaks else []
        status, score, summary = judge(rows, breaks)
        metrics: dict[str, Any] = {
            "components_checked": len(rows), "components_ok": sum(r.ok for r in rows),
            "components_ok_pct": round(100.0 * sum(r.ok for r in rows) / len(rows), 2),
            "known_breaks_hit": len(breaks)}
        metrics.update({f"{r.component}_version": r.installed or "missing" for r in rows})
        failures = [{"title": r.component, "detail": r.problem} for r in rows if not r.ok]
        failures += [{"title": "known break", "detail": b} for b in breaks]
        table = {"title": "Toolchain versions", "columns": ["component", "installed", "window", "status"],
                 "rows": [[r.component, r.installed or "missing", r.window, "ok" if r.ok else "failed"]
                          for r in rows]}
        return GateResult(
            name=self.name, status=status, severity=self.severity, score=score, summary=summary,
            metrics=metrics, evidence={"tables": [table], "failures": failures},
            remediation="" if status is Status.PASS else
            "Install versions inside the supported windows (see the table); "
            "pin numpy<2.4 while coremltools is 9.0.")
