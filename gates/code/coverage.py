"""The `coverage` gate: line and branch coverage, overall and per critical module.

Reads the branch coverage data `suite_health` wrote in the same run (its
`evidence["coverage_data"]`), or `code.coverage_data` from the configuration,
through coverage.py's own API (`gates.code.coverage_data`). Each critical module
is judged against its tier (`code.tiers`, shared with the mutation gate:
line_pct / branch_pct); the whole against `min_line_pct` / `min_branch_pct`.

Settings: `min_line_pct`, `min_branch_pct`, `diff_base` (a git ref; when set,
lines changed since it must reach `min_diff_pct`), `check_mtime` (a source
newer than the data makes it stale; turn off only where checkouts touch every
file after the data was written).

Evidence: a critical-module table, a per-file table, the data file, and the
diff coverage when asked for. A diff with no measurable changed lines is
reported `not_evaluable` in `metrics["diff_status"]`, never 100 %.

On one shard of a sharded suite the result is no verdict; `merge` judges
the shards' combined data (`gates.code.coverage_shards`).

`error` rather than `fail`: no data (suite_health did not produce any), data
recorded without branch measurement, stale data, data from another project,
nothing measured, a critical module that is not measured.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from gates.code import coverage_shards
from gates.code.coverage_data import CoverageDataError, FileCoverage, load, totals
from gates.code.diff_lines import DiffError, changed_lines
from gates.code.project_paths import ProjectPaths
from gates.engine.protocol import Gate, GateContext, GateError, Requires
from gates.engine.spec import CodeSpec, Tier
from gates.result import GateResult, Severity, Status


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    min_line_pct: float = 80.0
    min_branch_pct: float = 70.0
    diff_base: str = ""
    min_diff_pct: float = 80.0
    check_mtime: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffCoverage:
    base: str
    lines: int  # changed lines that are statements
    covered: int

    @property
    def pct(self) -> float | None:
        return 100.0 * self.covered / self.lines if self.lines else None


# -- measuring ------------------------------------------------------------------

def pct_text(value: float | None) -> str:
    """One decimal, never "100.0" unless it is exactly 100."""
    if value is None:
        return "n/a"
    shown = round(value, 1)
    return f"{99.9 if shown == 100.0 and value < 100.0 else shown:.1f}"


def diff_coverage(files: dict[str, FileCoverage], changed: dict[str, set[int]],
                  base: str) -> DiffCoverage:
    lines = covered = 0
    for path, numbers in changed.items():
        measured = files.get(path)
        if measured is None:
            continue
        lines += len(numbers & (measured.executed | measured.missing))
        covered += len(numbers & measured.executed)
    return DiffCoverage(base=base, lines=lines, covered=covered)


def below(value: float | None, minimum: float) -> bool:
    """Judged on the number as shown (one decimal); no branches is not below."""
    return value is not None and round(value, 1) < minimum


def module_rows(files: dict[str, FileCoverage], code: CodeSpec) -> list[list[Any]]:
    rows = []
    for module in code.critical:
        tier: Tier | None = code.tiers.get(module.tier)
        if tier is None:
            raise GateError(f"critical module {module.path}: unknown tier {module.tier!r} "
                            f"(known: {', '.join(sorted(code.tiers))})")
        numbers = files[module.path]
        ok = not below(numbers.line_pct, tier.line_pct) and not below(numbers.branch_pct, tier.branch_pct)
        rows.append([module.path, module.tier, pct_text(numbers.line_pct), tier.line_pct,
                     pct_text(numbers.branch_pct), tier.branch_pct, "ok" if ok else "below tier"])
    return rows


def file_rows(files: dict[str, FileCoverage], code: CodeSpec) -> list[list[Any]]:
    """The per-file table, worst first: critical modules, then by line coverage.

    Reports cut long tables (a pull-request comment shows 20 rows); in path
    order a project's worst module could sit below the cut. Files without
    statements have nothing to cover and come last.
    """
    tiers = {m.path: m.tier for m in code.critical}

    def worst_first(f: FileCoverage) -> tuple[bool, bool, float, float, str]:
        return (f.path not in tiers, f.line_pct is None, f.line_pct or 0.0,
                101.0 if f.branch_pct is None else f.branch_pct, f.path)

    return [[f.path, tiers.get(f.path, ""), f.statements, pct_text(f.line_pct), f.branches,
             pct_text(f.branch_pct)] for f in sorted(files.values(), key=worst_first)]


# -- judging --------------------------------------------------------------------

def judge(total: FileCoverage, rows: list[list[Any]], diff: DiffCoverage | None,
          settings: Settings) -> tuple[Status, float | None, list[str]]:
    """Status, score and the reasons it did not pass."""
    if total.statements == 0:
        return Status.ERROR, None, ["no statements were measured"]
    reasons = []
    if below(total.line_pct, settings.min_line_pct):
        reasons.append(f"line {pct_text(total.line_pct)} % < {settings.min_line_pct:g} %")
    if below(total.branch_pct, settings.min_branch_pct):
        reasons.append(f"branch {pct_text(total.branch_pct)} % < {settings.min_branch_pct:g} %")
    reasons += [f"{row[0]} below tier {row[1]}" for row in rows if row[-1] != "ok"]
    if diff is not None and below(diff.pct, settings.min_diff_pct):
        reasons.append(f"diff {pct_text(diff.pct)} % < {settings.min_diff_pct:g} %")
    parts = [p for p in (total.line_pct, total.branch_pct) if p is not None]
    score = sum(parts) / (100.0 * len(parts))
    return (Status.FAIL if reasons else Status.PASS), score, reasons


# -- the gate -------------------------------------------------------------------

# The class attribute `Settings` shadows the dataclass inside the class body.
GateSettings = Settings


class CoverageGate(Gate):
    name = "coverage"
    requires = Requires.CODE
    version = 1
    tools = ("coverage",)
    needs: tuple[str, ...] = ()
    after: tuple[str, ...] = ("suite_health",)
    severity = Severity.BLOCKER
    Settings = Settings

    def data_file(self, ctx: GateContext, code: CodeSpec) -> tuple[Path | None, str]:
        if code.coverage_data is not None:
            return code.coverage_data, ""
        health = ctx.results.get("suite_health")
        if health is None:
            return None, "no coverage data: suite_health did not run and code.coverage_data is not set"
        if "coverage_data" not in health.evidence:
            return None, (f"no coverage data: suite_health produced none "
                          f"({health.status.value}: {health.summary})")
        return Path(health.evidence["coverage_data"]), ""

    def cache_inputs(self, ctx: GateContext) -> dict[str, Any] | None:
        code = ctx.spec.code
        if code is None:
            return None
        data, _ = self.data_file(ctx, code)
        paths = ProjectPaths(code.root)
        sources = [p for s in code.sources for p in paths.files(code.root / s, suffix=".py").absolute()]
        return {"files": [str(p) for p in ([data] if data else []) + sources],
                "settings": dataclasses.asdict(ctx.settings),
                "critical": [[m.path, m.tier] for m in code.critical]}

    def check(self, ctx: GateContext) -> GateResult:
        code, settings = ctx.spec.code, ctx.settings
        if code is None:
            raise GateError("no [code] section: the coverage gate needs code.sources")
        shard = None if code.coverage_data is not None else coverage_shards.suite_part(ctx.results)
        data, problem = self.data_file(ctx, code)
        if data is None:
            result = self._error(problem, "Run suite_health (or set code.coverage_data) first.")
        else:
            result = self.judge_data(data, code, settings, report_path=ctx.work_dir / "coverage.json")
        return result if shard is None else coverage_shards.shard_result(result, shard, code, settings)

    def judge_data(self, data: Path, code: CodeSpec, settings: GateSettings, *, report_path: Path) -> GateResult:
        """The result for one coverage data file (a run's, or the shards' combined data)."""
        try:
            files = load(data, root=code.root, sources=code.sources, check_mtime=settings.check_mtime,
                         report_path=report_path)
        except CoverageDataError as exc:
            return self._error(str(exc), "Re-run the suite with branch coverage on this checkout "
                               "(suite_health does) and assess again.")
        missing = [m.path for m in code.critical if not (code.root / m.path).is_file()]
        if missing:
            return self._error(f"critical modules do not exist under {code.root}: {', '.join(missing)}",
                               "Fix the paths in code.critical (relative to code.root).")
        unmeasured = [m.path for m in code.critical if m.path not in files]
        if unmeasured:
            return self._error(f"critical modules not measured: {', '.join(unmeasured)}",
                               "Make code.sources cover every critical module.")
        diff = None
        if settings.diff_base:
            try:
                changed = changed_lines(code.root, settings.diff_base, code.sources)
            except DiffError as exc:
                return self._error(str(exc), "Set diff_base to a ref that exists in this clone.")
            diff = diff_coverage(files, changed, settings.diff_base)
        return self._judged(files, code, diff, settings, data)

    def _judged(self, files: dict[str, FileCoverage], code: CodeSpec, diff: DiffCoverage | None,
                settings: GateSettings, data: Path) -> GateResult:
        total = totals(files)
        rows = module_rows(files, code)
        status, score, reasons = judge(total, rows, diff, settings)
        metrics: dict[str, Any] = {
            "line_pct": round(total.line_pct or 0.0, 2),
            "statements": total.statements, "branches": total.branches,
            "files_measured": len(files), "critical_below_tier": sum(r[-1] != "ok" for r in rows)}
        if total.branch_pct is not None:  # absent, not 0, when the code has no branches
            metrics["branch_pct"] = round(total.branch_pct, 2)
        if diff is not None:
            metrics["diff_status"] = "evaluated" if diff.pct is not None else "not_evaluable"
            metrics["diff_lines"] = diff.lines
            if diff.pct is not None:
                metrics["diff_pct"] = round(diff.pct, 2)
        evidence = {"coverage_data": str(data), "files": [str(data)], "tables": [
            {"title": "Critical modules", "rows": rows,
             "columns": ["module", "tier", "line %", "line need", "branch %", "branch need", "verdict"]},
            {"title": "Files (worst first)", "rows": file_rows(files, code),
             "columns": ["file", "critical tier", "statements", "line %", "branches", "branch %"]}]}
        summary = (f"line {pct_text(total.line_pct)} %, branch {pct_text(total.branch_pct)} % over "
                   f"{len(files)} files; {len(rows) - metrics['critical_below_tier']}/{len(rows)} "
                   "critical modules meet their tier")
        if diff is not None:
            summary += (f"; diff vs {diff.base}: {pct_text(diff.pct)} %" if diff.pct is not None
                        else f"; diff vs {diff.base}: not evaluable (no measurable changed lines)")
        if status is Status.ERROR:
            return self._error("; ".join(reasons), "Make the suite import and run the sources.")
        return GateResult(name=self.name, status=status, severity=self.severity, score=score,
                          summary=summary + ("" if not reasons else " — " + "; ".join(reasons)),
                          metrics=metrics, evidence=evidence,
                          remediation="" if status is Status.PASS else
                          "Add tests that reach the missing lines and branches of the modules listed.")

    @classmethod
    def merge(cls, results: Sequence[GateResult]) -> GateResult:
        """Combine the coverage of suite shards (in the order produced): judged on their combined data."""
        return coverage_shards.merge(cls(), results)

    def _error(self, reason: str, remediation: str) -> GateResult:
        return GateResult(name=self.name, status=Status.ERROR, severity=self.severity,
                          summary=reason, remediation=remediation)
