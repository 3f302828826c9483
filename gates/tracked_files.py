"""Which files a scan may look at: what git tracks, never what tools left behind.

The earlier harness counted 4,400 of its 4,505 TODOs in a copy of the source
that a mutation tool had left in `mutants/`. Here the list comes from
`git ls-files` (tracked files only, so build output, virtual environments and
tool copies are out by construction). Outside a git repository the tree is
walked instead, pruning the folders such tools create, and the caller is told
which way the list was made so the report can say so. A root inside a git
checkout that tracks nothing under it (a copy made in someone's working
tree) is walked too: git has no opinion about it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

PRUNED_DIRS = frozenset({
    ".git", ".hg", ".svn", "build", "dist", "venv", ".venv", "env", ".env", "mutants",
    "__pycache__", "node_modules", ".tox", ".nox", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", "site-packages", ".eggs", "htmlcov", ".readiness",
})


@dataclass(frozen=True, slots=True, kw_only=True)
class FileList:
    """Paths relative to the root (posix), and how they were found."""

    paths: tuple[str, ...]
    source: str  # "git ls-files" or "walk (not a git repository)"


def _git_files(root: Path, suffix: str) -> list[str] | None:
    """Tracked files under root, or None when root is not in a git work tree."""
    try:
        done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--", f"*{suffix}"],
                              capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [name for name in done.stdout.decode("utf-8", "surrogateescape").split("\0") if name]


def _walk(root: Path, suffix: str) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in PRUNED_DIRS and not d.endswith(".egg-info"))
        rel = Path(folder).relative_to(root)
        found += [(rel / name).as_posix() for name in sorted(files) if name.endswith(suffix)]
    return found


def list_files(root: Path, suffix: str = ".py", *, use_git: bool = True) -> FileList:
    """Files ending in `suffix` that a scan of `root` should read."""
    if not use_git:
        return FileList(paths=tuple(_walk(root, suffix)), source="walk (git not used, by setting)")
    tracked = _git_files(root, suffix)
    if tracked is None:
        return FileList(paths=tuple(_walk(root, suffix)), source="walk (not a git repository)")
    if not tracked and not _git_files(root, ""):
        # a copy inside someone else's checkout (the demo's project folder):
        # git tracks nothing here, so git cannot say what belongs to it
        return FileList(paths=tuple(_walk(root, suffix)),
                        source="walk (git tracks no file under the root)")
    existing = tuple(p for p in tracked if (root / p).is_file())  # deleted but not staged
    return FileList(paths=existing, source="git ls-files")
