"""Line and branch numbers from a coverage.py data file, through coverage.py itself.

The earlier harness read a JSON key coverage.py never writes and reported 0 %
branch coverage for every project. Here the numbers come from coverage.py's
own JSON report (format 3) of the data file: line % = covered_lines /
num_statements, branch % = covered_branches / num_branches. Data recorded
without branch measurement is refused rather than read as 0 %.

Data is also refused when it no longer describes the code: a measured file
was deleted, a source changed after the data was written (newer mtime, or an
executed line that is now blank, a comment or past the end of the file), or
nothing measured lies under the project root (data from another project).

Only measured files under the root are reported, so coverage.py never parses
a file outside the project. coverage.py records the files of a source folder
that never ran, links included; a link the walk refuses
(`gates.code.project_paths`: outside the root, dangling, a loop) is dropped from
the data before anything is checked, so `pkg/passwd.py -> /etc/passwd` is
neither parsed nor called stale.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import coverage
from coverage.exceptions import CoverageException

from gates.code.project_paths import ProjectPaths

MAX_NAMED = 5


class CoverageDataError(Exception):
    """The data cannot be used; the message says which file and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FileCoverage:
    """Numbers for one source file (path relative to the project root)."""

    path: str
    statements: int
    covered_lines: int
    branches: int
    covered_branches: int
    executed: frozenset[int]
    missing: frozenset[int]

    @property
    def line_pct(self) -> float | None:
        return 100.0 * self.covered_lines / self.statements if self.statements else None

    @property
    def branch_pct(self) -> float | None:
        return 100.0 * self.covered_branches / self.branches if self.branches else None


def _config_file(root: Path) -> str | bool:
    for name in (".coveragerc", "pyproject.toml"):
        if (root / name).is_file():
            return str(root / name)
    return False


def _named(paths: list[str]) -> str:
    more = f" and {len(paths) - MAX_NAMED} more" if len(paths) > MAX_NAMED else ""
    return ", ".join(paths[:MAX_NAMED]) + more


def _absolute(name: str, root: Path) -> Path:
    path = Path(name)
    return path if path.is_absolute() else root / path


def _never_executable(lines: list[str], line_no: int) -> bool:
    if line_no > len(lines):
        return True
    text = lines[line_no - 1].strip()
    return not text or text.startswith("#")


def refused_links(root: Path, sources: tuple[str, ...]) -> frozenset[str]:
    """Where coverage.py files the links of the sources a walk refuses (their realpath)."""
    paths = ProjectPaths(root)
    found: set[str] = set()
    for source in sources:
        walked = paths.files(root / source, suffix=".py")
        found.update(os.path.realpath(walked.base / refused.path) for refused in walked.refused)
    return frozenset(found)


def measured_files(data: coverage.CoverageData, root: Path, ignored: frozenset[str] = frozenset()) -> list[Path]:
    """The data's measured files, absolute, without the refused links."""
    return [p for p in (_absolute(name, root) for name in data.measured_files()) if str(p) not in ignored]


def check_fresh(data: coverage.CoverageData, data_file: Path, root: Path,
                *, check_mtime: bool, ignored: frozenset[str] = frozenset()) -> None:
    """Raise CoverageDataError when the data no longer describes the sources."""
    measured = measured_files(data, root, ignored)
    if not measured:
        raise CoverageDataError(f"coverage data {data_file} measured no files")
    gone = sorted(str(p) for p in measured if not p.exists())
    if gone:
        raise CoverageDataError(f"coverage data {data_file} is stale: measured files no longer "
                                f"exist: {_named(gone)}")
    root = root.resolve()
    folders = sorted(str(p) for p in measured if p.is_dir())
    if folders:
        raise CoverageDataError(f"coverage data {data_file} is damaged: it claims to have measured "
                                f"folders, not files: {_named(folders)}")
    inside = [p for p in measured if p.resolve().is_relative_to(root)]
    if not inside:
        raise CoverageDataError(f"coverage data {data_file} is from another project: none of its "
                                f"{len(measured)} measured files is under {root}")
    written = data_file.stat().st_mtime
    changed = sorted(str(p.relative_to(root)) for p in (q.resolve() for q in inside)
                     if check_mtime and p.stat().st_mtime > written)
    for path in inside:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if any(_never_executable(lines, n) for n in data.lines(str(path)) or ()):
            changed.append(str(path.resolve().relative_to(root)))
    if changed:
        raise CoverageDataError(f"coverage data {data_file} is stale: sources changed after it "
                                f"was written: {_named(sorted(set(changed)))}")


def load(data_file: Path, *, root: Path, sources: tuple[str, ...], report_path: Path,
         check_mtime: bool = True) -> dict[str, FileCoverage]:
    """Per-file numbers for every source file, measured or not (then 0 %)."""
    if not data_file.is_file():
        raise CoverageDataError(f"coverage data {data_file} does not exist")
    folders = [str(root / s) for s in sources if (root / s).is_dir()]
    cov = coverage.Coverage(data_file=str(data_file), config_file=_config_file(root),
                            source=folders or None, branch=True)
    with warnings.catch_warnings():
        # coverage.py warns on stderr about files it cannot parse; a gate never prints
        warnings.simplefilter("ignore")
        return _load(cov, data_file, root=root, report_path=report_path, check_mtime=check_mtime,
                     ignored=refused_links(root, sources))


def _load(cov: coverage.Coverage, data_file: Path, *, root: Path, report_path: Path,
          check_mtime: bool, ignored: frozenset[str]) -> dict[str, FileCoverage]:
    try:
        cov.load()
        data = cov.get_data()
        if not data.measured_files():
            raise CoverageDataError(f"coverage data {data_file} measured no files")
        if not data.has_arcs():
            raise CoverageDataError(f"coverage data {data_file} has no branch data: branch "
                                    "measurement was off (run with --cov-branch / branch = true)")
        check_fresh(data, data_file, root, check_mtime=check_mtime, ignored=ignored)
        real_root = root.resolve()
        inside = [str(p) for p in measured_files(data, root, ignored) if p.resolve().is_relative_to(real_root)]
        report_path.parent.mkdir(parents=True, exist_ok=True)
        cov.json_report(morfs=inside, outfile=str(report_path))
    except CoverageException as exc:
        raise CoverageDataError(f"coverage data {data_file} could not be read: {exc}") from None
    return _per_file(json.loads(report_path.read_text()), root)


def _per_file(report: dict, root: Path) -> dict[str, FileCoverage]:
    root = root.resolve()
    files = {}
    for name, entry in report["files"].items():
        path = Path(name) if Path(name).is_absolute() else Path.cwd() / name
        try:
            rel = path.resolve().relative_to(root).as_posix()
        except ValueError:
            continue  # measured outside the project (a dependency): not ours to judge
        summary = entry["summary"]
        files[rel] = FileCoverage(
            path=rel, statements=summary["num_statements"], covered_lines=summary["covered_lines"],
            branches=summary.get("num_branches", 0),
            covered_branches=summary.get("covered_branches", 0),
            executed=frozenset(entry["executed_lines"]), missing=frozenset(entry["missing_lines"]))
    return files


def totals(files: dict[str, FileCoverage]) -> FileCoverage:
    """The sum over files, as one record named `TOTAL`."""
    values = list(files.values())
    return FileCoverage(path="TOTAL", statements=sum(f.statements for f in values),
                        covered_lines=sum(f.covered_lines for f in values),
                        branches=sum(f.branches for f in values),
                        covered_branches=sum(f.covered_branches for f in values),
                        executed=frozenset(), missing=frozenset())


def combine(data_files: list[Path], into: Path, *, root: Path) -> Path:
    """One data file holding every measurement of `data_files` (kept), via coverage.py's combine.

    Lines, arcs and test contexts are all merged, exactly as `coverage
    combine` does for parallel runs.
    """
    into.parent.mkdir(parents=True, exist_ok=True)
    into.unlink(missing_ok=True)
    cov = coverage.Coverage(data_file=str(into), config_file=_config_file(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no data was collected" notices: judged by the caller
        try:
            cov.combine([str(p) for p in data_files], strict=True, keep=True)
        except CoverageException as exc:
            raise CoverageDataError(f"coverage data of the shards could not be combined: {exc}") from None
    cov.save()
    return into
