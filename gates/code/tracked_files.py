"""Which files a scan may look at: what git tracks, never what tools left behind.

The earlier harness counted 4,400 of its 4,505 TODOs in a copy of the source
that a mutation tool had left in `mutants/`. Here the list comes from
`git ls-files` (tracked files only, so build output, virtual environments and
tool copies are out by construction). Outside a git repository the tree is
walked instead, pruning the folders such tools create, and the caller is told
which way the list was made so the report can say so. A root inside a git
checkout that tracks nothing under it (a copy made in someone's working
tree) is walked too: git has no opinion about it.

Either way the list goes through `gates.code.project_paths`: a tracked link that
leads outside the root, to nothing or to itself is left out and returned in
`refused`, so the scan reports it by name and never reads what it points to.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gates.code.project_paths import PathKind, ProjectPaths, Refused

PRUNED_DIRS = frozenset({
    ".git", ".hg", ".svn", "build", "dist", "venv", ".venv", "env", ".env", "mutants",
    "__pycache__", "node_modules", ".tox", ".nox", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", "site-packages", ".eggs", "htmlcov", ".readiness",
})
GIT_LINK_MODE = "120000"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileList:
    """Paths relative to the root (posix), how they were found, and the links left out."""

    paths: tuple[str, ...]
    source: str  # "git ls-files" or "walk (not a git repository)"
    refused: tuple[Refused, ...] = ()


def _git_entries(root: Path) -> list[tuple[str, bool]] | None:
    """(tracked path, is a link) under root, or None when root is not in a git work tree."""
    try:
        done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--stage"],
                              capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    entries = []
    for record in done.stdout.decode("utf-8", "surrogateescape").split("\0"):
        meta, tab, name = record.partition("\t")
        if tab:
            entries.append((name, meta.split(" ", 1)[0] == GIT_LINK_MODE))
    return entries


def _pruned(name: str) -> bool:
    return name in PRUNED_DIRS or name.endswith(".egg-info")


def _walk(root: Path, suffix: str) -> tuple[list[str], tuple[Refused, ...]]:
    found = ProjectPaths(root).files(root, suffix=suffix, prune=_pruned)
    return list(found.paths), found.refused


def _from_git(root: Path, entries: list[tuple[str, bool]], suffix: str) -> FileList:
    paths = ProjectPaths(root)
    selected = paths.select(root, [name for name, _ in entries if name.endswith(suffix)])
    # a tracked link to a folder outside (or a loop) hides files the scan would have read
    folders = [paths.refusal(root / name) for name, link in entries if link and not name.endswith(suffix)]
    refused = selected.refused + tuple(r for r in folders if r is not None and (
        r.kind is PathKind.LOOP or (r.kind is PathKind.ESCAPES and os.path.isdir(root / r.path))))
    existing = tuple(p for p in selected.paths if (root / p).is_file())  # deleted but not staged
    return FileList(paths=existing, source="git ls-files", refused=tuple(sorted(refused, key=lambda r: r.path)))


def list_files(root: Path, suffix: str = ".py", *, use_git: bool = True) -> FileList:
    """Files ending in `suffix` that a scan of `root` should read."""
    if not use_git:
        found, refused = _walk(root, suffix)
        return FileList(paths=tuple(found), source="walk (git not used, by setting)", refused=refused)
    entries = _git_entries(root)
    if entries is None:
        found, refused = _walk(root, suffix)
        return FileList(paths=tuple(found), source="walk (not a git repository)", refused=refused)
    if not entries:
        # a copy inside someone else's checkout (the demo's project folder):
        # git tracks nothing here, so git cannot say what belongs to it
        found, refused = _walk(root, suffix)
        return FileList(paths=tuple(found), source="walk (git tracks no file under the root)", refused=refused)
    return _from_git(root, entries, suffix)
