"""The `hygiene` gate: TODO markers and stub functions, above all in critical paths.

Scans the Python files git tracks under the code root (`gates.code.tracked_files`;
outside git, a walk that skips build, venv and mutants folders, and the
evidence says so): comments through `tokenize` (`gates.code.todo_markers`), stubs
through `ast` (`gates.code.stubs`).

Settings: `blocking_tags` (tags that make a marker blocking, as in
`TODO(blocker)`), `blocking_markers` (markers that always block, e.g.
"FIXME"), `min_confidence` (heuristic findings below it are not counted),
`critical_paths` (extra files or folders treated as critical, besides
`code.critical`), `exclude` (glob patterns of paths not to scan),
`fail_on_critical_stubs`, `file_list` ("git", or "walk" to scan a tree git
does not track, such as an installed package).

Links: a listed file or folder that is a link leading outside the code
root, to nothing, or to itself is never read (`gates.code.project_paths`); it is
reported once, by name and link text, in the "Links not followed" table and
`metrics["links_not_followed"]`, and makes an otherwise clean scan `warn`.

Verdict: `fail` when a blocking marker or (by default) a stub sits in a
critical path; `warn` for blocking markers or stubs elsewhere, or for links
not followed; `error` when there was nothing to scan. Evidence:
per-critical-path counts, the blocking items, the stubs, suppressions that
gave no reason, the links not followed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates.code.project_paths import WHY, Refused
from gates.code.source_index import SourceIndex
from gates.code.stubs import find_stubs
from gates.code.todo_markers import Finding, Suppression, scan_comments
from gates.code.tracked_files import list_files
from gates.engine.protocol import Gate, GateContext, GateError, Requires
from gates.result import GateResult, Severity, Status


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    blocking_tags: tuple[str, ...] = ("blocker",)
    blocking_markers: tuple[str, ...] = ()
    min_confidence: float = 0.5
    critical_paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    fail_on_critical_stubs: bool = True
    max_items_listed: int = 200
    file_list: str = "git"  # "git": tracked files only; "walk": every file, pruning tool folders


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    """What one scan of the tracked files found, and how much it read."""

    findings: tuple[Finding, ...]
    files: int
    lines: int
    file_source: str
    unparsable: tuple[str, ...]
    unjustified: tuple[str, ...]  # "path:line" of suppressions without a reason
    refused: tuple[Refused, ...] = ()  # links not followed


# -- measuring ------------------------------------------------------------------

def _suppressed(finding: Finding, last_line: int, marks: dict[int, Suppression]) -> bool | None:
    """True if suppressed with a reason, None if only without one, False otherwise."""
    lines = range(finding.line, last_line + 1)
    hits = [marks[n] for n in lines if n in marks and finding.kind in marks[n].kinds]
    if any(h.reason for h in hits):
        return True
    return None if hits else False


def scan_file(path: str, text: str, settings: Settings) -> tuple[list[Finding], list[str], bool]:
    """Findings in one file, unjustified suppressions, and whether it parsed."""
    built: list[SourceIndex] = []

    def index_of() -> SourceIndex:  # built once, and only for files with a candidate
        if not built:
            built.append(SourceIndex(text))
        return built[0]

    scanned = scan_comments(path, text, blocking_tags=frozenset(t.lower() for t in settings.blocking_tags),
                            blocking_markers=frozenset(settings.blocking_markers), index_of=index_of)
    stubs = find_stubs(path, text, index_of)
    todos, marks = scanned if scanned is not None else ([], {})
    found, unjustified = [], []
    for finding, last in [(f, f.line) for f in todos] + (stubs or []):
        if finding.confidence < settings.min_confidence:
            continue
        state = _suppressed(finding, last, marks)
        if state is None:
            unjustified.append(f"{path}:{finding.line}")
        found.append(dataclasses.replace(finding, suppressed=bool(state)))
    return found, unjustified, scanned is not None and stubs is not None


def scan_tree(root: Path, settings: Settings) -> Scan:
    listed = list_files(root, use_git=settings.file_list == "git")
    excluded = lambda path: any(fnmatch.fnmatch(path, pat) for pat in settings.exclude)  # noqa: E731
    paths = [p for p in listed.paths if not excluded(p)]
    refused = tuple(r for r in listed.refused if not excluded(r.path))
    findings, unparsable, unjustified, lines = [], [], [], 0
    for path in paths:
        try:
            text = (root / path).read_bytes().decode("utf-8", "replace")
        except OSError:
            unparsable.append(path)  # unreadable: reported like a file that does not parse
            continue
        lines += text.count("\n") + (not text.endswith("\n") and bool(text))
        found, bad_marks, parsed = scan_file(path, text, settings)
        findings += found
        unjustified += bad_marks
        if not parsed:
            unparsable.append(path)
    return Scan(findings=tuple(findings), files=len(paths), lines=lines, file_source=listed.source,
                unparsable=tuple(unparsable), unjustified=tuple(unjustified), refused=refused)


def critical_path_of(path: str, critical: tuple[str, ...]) -> str | None:
    for prefix in critical:
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return prefix
    return None


def counts(scan: Scan, critical: tuple[str, ...]) -> dict[str, int]:
    live = [f for f in scan.findings if not f.suppressed]
    todos = [f for f in live if f.kind == "todo"]
    stubs = [f for f in live if f.kind == "stub"]
    in_critical = lambda f: critical_path_of(f.path, critical) is not None  # noqa: E731
    return {
        "todo_total": len(todos), "todo_explicit": sum(f.confidence >= 1.0 for f in todos),
        "todo_blocking": sum(f.blocking for f in todos),
        "todo_critical": sum(map(in_critical, todos)),
        "todo_blocking_critical": sum(f.blocking and in_critical(f) for f in todos),
        "stubs": len(stubs), "stubs_critical": sum(map(in_critical, stubs)),
        "suppressed": sum(f.suppressed for f in scan.findings),
        "lines_scanned": scan.lines, "files_scanned": scan.files,
        "links_not_followed": len(scan.refused)}


# -- judging --------------------------------------------------------------------

def judge(metrics: dict[str, int], settings: Settings,
          file_source: str = "git ls-files") -> tuple[Status, float | None, str]:
    if metrics["files_scanned"] == 0:
        return Status.ERROR, None, f"no Python files to scan (files listed by {file_source})"
    blocking = metrics["todo_blocking"] + metrics["stubs"]
    score = 1.0 - blocking / max(metrics["todo_total"] + metrics["stubs"], 1)
    summary = (f"{metrics['todo_total']} TODOs ({metrics['todo_blocking']} blocking, "
               f"{metrics['todo_blocking_critical']} blocking in critical paths), "
               f"{metrics['stubs']} stubs ({metrics['stubs_critical']} critical) in "
               f"{metrics['files_scanned']} files, {metrics['lines_scanned']} lines")
    links = metrics.get("links_not_followed", 0)
    if links:
        summary += f"; {links} link{'s' if links != 1 else ''} not followed"
    critical_stubs = settings.fail_on_critical_stubs and metrics["stubs_critical"] > 0
    if metrics["todo_blocking_critical"] or critical_stubs:
        return Status.FAIL, score, summary
    if blocking or links:
        return Status.WARN, score, summary
    return Status.PASS, score, summary


# -- the gate -------------------------------------------------------------------

def _row(f: Finding) -> list[Any]:
    return [f"{f.path}:{f.line}", f.label, f.text, f.confidence]


class HygieneGate(Gate):
    name = "hygiene"
    requires = Requires.CODE
    version = 1
    needs: tuple[str, ...] = ()
    severity = Severity.BLOCKER
    Settings = Settings

    def _root_and_critical(self, ctx: GateContext) -> tuple[Path, tuple[str, ...]]:
        code = ctx.spec.code
        if code is None:
            raise GateError("no [code] section: the hygiene gate needs code.root")
        return code.root, tuple(m.path for m in code.critical) + tuple(ctx.settings.critical_paths)

    def cache_inputs(self, ctx: GateContext) -> dict[str, Any] | None:
        root, critical = self._root_and_critical(ctx)
        listed = list_files(root, use_git=ctx.settings.file_list == "git")
        return {"files": [str(root / p) for p in listed.paths], "critical": list(critical),
                "settings": dataclasses.asdict(ctx.settings), "file_source": listed.source,
                "links_not_followed": [r.describe() for r in listed.refused]}

    def check(self, ctx: GateContext) -> GateResult:
        settings: Settings = ctx.settings
        root, critical = self._root_and_critical(ctx)
        scan = scan_tree(root, settings)
        metrics = counts(scan, critical)
        status, score, summary = judge(metrics, settings, scan.file_source)
        live = [f for f in scan.findings if not f.suppressed]
        blocking = [f for f in live if f.blocking or (f.kind == "stub" and critical_path_of(f.path, critical))]
        per_path = [[p, sum(f.kind == "todo" and critical_path_of(f.path, (p,)) is not None for f in live),
                     sum(f.blocking and critical_path_of(f.path, (p,)) is not None for f in live),
                     sum(f.kind == "stub" and critical_path_of(f.path, (p,)) is not None for f in live)]
                    for p in critical]
        cap = settings.max_items_listed
        evidence: dict[str, Any] = {
            "file_source": scan.file_source, "unparsable": list(scan.unparsable),
            "suppressions_without_reason": list(scan.unjustified),
            "tables": [
                {"title": "Critical paths", "columns": ["path", "TODOs", "blocking", "stubs"],
                 "rows": per_path},
                {"title": "Blocking items", "columns": ["where", "marker", "text", "confidence"],
                 "rows": [_row(f) for f in blocking[:cap]]},
                {"title": "Stubs", "columns": ["where", "kind", "function", "confidence"],
                 "rows": [_row(f) for f in live if f.kind == "stub"][:cap]},
                {"title": "TODO markers", "columns": ["where", "marker", "text", "confidence"],
                 "rows": [_row(f) for f in live if f.kind == "todo"][:cap]}],
            "failures": [{"title": f"{f.path}:{f.line}",
                          "detail": f.text if f.kind == "todo" else f"{f.label}: {f.text}"}
                         for f in blocking if critical_path_of(f.path, critical)][:cap]}
        if scan.refused:
            evidence["tables"].append({"title": "Links not followed", "columns": ["link", "points to", "why"],
                                       "rows": [[r.path, r.target, WHY[r.kind]] for r in scan.refused][:cap]})
        remediation = {Status.FAIL: "Resolve the blocking items and stubs in critical paths, or "
                                    "suppress one with `# readiness: ignore[todo] <reason>`.",
                       Status.WARN: "Resolve the blocking TODOs and stubs listed before shipping; "
                                    "remove or repair links that lead outside the project or nowhere.",
                       Status.ERROR: "Point code.root at the project and make sure git tracks its files."}
        return GateResult(name=self.name, status=status, severity=self.severity, score=score,
                          summary=summary, metrics=metrics, evidence=evidence,
                          remediation=remediation.get(status, ""))
