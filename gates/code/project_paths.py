"""Which paths of a project Readiness may open: never one that leads outside it.

A project may commit symbolic links: `pkg/link.py -> ../../outside/secret.py`,
`pkg/passwd.py -> /etc/passwd`, `pkg/etc -> /etc`, a link to `/`, a link to
nothing, a link to itself. Every walker of the code gates (hygiene's file
list, coverage's file list, the mutation workspace, the cache inputs of the
suite) asks this module instead of `rglob`/`os.walk`, so the rule holds in
one place: a path that resolves outside the root is never opened, parsed,
copied or quoted, and a dangling link or a link loop never crashes a walk.

    >>> paths = ProjectPaths(Path("project"))
    >>> paths.classify(Path("project/pkg/passwd.py"))
    <PathKind.ESCAPES: 'escapes'>

A refused link is described by its own text (`os.readlink`), never by what
it leads to. A regular file in a folder reached without links is inside by
construction, so only links cost a `realpath`: the hygiene scan stays fast.
A folder link whose target holds the link itself (`pkg/up -> ..`, or two
links pointing at each other's folders) is a loop, so a walker that follows
folder links inside the root cannot recurse forever.
"""

from __future__ import annotations

import enum
import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator


class PathKind(enum.Enum):
    INSIDE = "inside"
    ESCAPES = "escapes"  # resolves outside the root
    DANGLING = "dangling"  # a link to nothing
    LOOP = "loop"  # a link cycle, or a folder link to a folder above it


WHY = {PathKind.ESCAPES: "leads outside the project", PathKind.DANGLING: "points to nothing",
       PathKind.LOOP: "is a link loop"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """A link no gate follows: where it is (relative, posix), what it says, why."""

    path: str
    target: str  # the link's own text, never the content it leads to
    kind: PathKind

    def describe(self) -> str:
        return f"{self.path} -> {self.target} ({WHY[self.kind]}; not followed)"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectFiles:
    """Files a walk may open (relative to `base`, posix) and the links it refused.

    `base` is the folder walked, or the folder holding the one file asked for.
    """

    base: Path
    paths: tuple[str, ...]
    refused: tuple[Refused, ...] = ()

    def absolute(self) -> list[Path]:
        return [self.base / p for p in self.paths]


def _link_text(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


class ProjectPaths:
    """Classifies paths against one root and walks it without leaving it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.real_root = Path(os.path.realpath(self.root))

    def _lexical(self, path: Path) -> Path:
        return Path(os.path.normpath(path if Path(path).is_absolute() else self.root / path))

    def classify(self, path: Path | str) -> PathKind:
        """Where `path` (absolute, or relative to the root) really leads."""
        lexical = self._lexical(Path(path))
        try:
            real = Path(os.path.realpath(lexical, strict=True))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return PathKind.LOOP
            if os.path.lexists(lexical):
                return PathKind.DANGLING
            return PathKind.DANGLING if self._through_link(lexical) else PathKind.INSIDE
        if not real.is_relative_to(self.real_root):
            return PathKind.ESCAPES
        if real.is_dir() and os.path.islink(lexical) and self._holds(real, lexical):
            return PathKind.LOOP
        return PathKind.INSIDE

    def _through_link(self, lexical: Path) -> bool:
        """Whether a missing path lies under a dangling link (else it is simply missing)."""
        return any(os.path.islink(parent) for parent in lexical.parents
                   if parent.is_relative_to(self.root) and parent != self.root)

    def _holds(self, real: Path, lexical: Path) -> bool:
        """Whether the folder a link leads to holds the link itself (walking it never ends)."""
        for parent in lexical.parents:
            if os.path.realpath(parent) == str(real):
                return True
            if parent == self.root or not parent.is_relative_to(self.root):
                break
        return False

    def is_inside(self, path: Path | str) -> bool:
        return self.classify(path) is PathKind.INSIDE

    def refusal(self, path: Path | str, base: Path | None = None) -> Refused | None:
        """A `Refused` record when `path` may not be followed, else None."""
        kind = self.classify(path)
        if kind is PathKind.INSIDE:
            return None
        lexical = self._lexical(Path(path))
        shown = lexical.relative_to(base or self.root) if lexical.is_relative_to(base or self.root) else lexical
        # the link that failed may be a folder above the path: name that one
        link = next((p for p in (lexical, *lexical.parents) if os.path.islink(p)), lexical)
        return Refused(path=Path(shown).as_posix(), target=_link_text(link), kind=kind)

    def select(self, base: Path, relative: Iterable[str]) -> ProjectFiles:
        """Keep the listed paths (relative to `base`) that may be opened.

        For lists made without walking (git ls-files): git tracks no path
        through a folder link, so only the listed entry itself can be a link.
        """
        kept, refused = [], []
        for rel in relative:
            path = base / rel
            if os.path.islink(path) or not os.path.lexists(path):
                gone = self.refusal(path, base)
                if gone is not None:
                    refused.append(gone)
                    continue
            kept.append(rel)
        return ProjectFiles(base=base, paths=tuple(kept), refused=tuple(refused))

    def files(self, base: Path, *, suffix: str = "", prune: Callable[[str], bool] = lambda _n: False,
              follow_links: bool = False) -> ProjectFiles:
        """Files under folder `base` (or the file `base`) ending in `suffix`.

        Folder links are not entered unless `follow_links` (and never when
        they are refused); refused links that end in `suffix` or lead to a
        folder are reported, other refused links are not this walk's business.
        """
        base = self._lexical(base)
        refused = self.refusal(base, base.parent)
        if refused is not None:
            return ProjectFiles(base=base.parent, paths=(), refused=(refused,))
        if base.is_file():
            return ProjectFiles(base=base.parent, paths=(base.name,) if base.name.endswith(suffix) else ())
        kept: list[str] = []
        notes: list[Refused] = []
        for path, is_link in self._walk(base, prune, follow_links, notes, suffix):
            if path.name.endswith(suffix):
                if is_link:
                    gone = self.refusal(path, base)
                    if gone is not None:
                        notes.append(gone)
                        continue
                kept.append(path.relative_to(base).as_posix())
        return ProjectFiles(base=base, paths=tuple(kept), refused=tuple(notes))

    def _walk(self, folder: Path, prune: Callable[[str], bool], follow: bool, notes: list[Refused],
              suffix: str, base: Path | None = None) -> Iterator[tuple[Path, bool]]:
        base = base or folder
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return  # unreadable folder: nothing in it can be opened either
        for entry in entries:
            if prune(entry.name):
                continue
            path = Path(entry.path)
            if not entry.is_symlink():
                if entry.is_dir(follow_symlinks=False):
                    yield from self._walk(path, prune, follow, notes, suffix, base)
                else:
                    yield path, False
                continue
            kind = self.classify(path)
            if kind is PathKind.INSIDE and path.is_dir():
                if follow:
                    yield from self._walk(path, prune, follow, notes, suffix, base)
            elif kind is PathKind.INSIDE or entry.name.endswith(suffix):
                yield path, True  # the caller keeps it or records the refusal
            elif kind is PathKind.ESCAPES and path.is_dir() or kind is PathKind.LOOP:
                notes.append(Refused(path=path.relative_to(base).as_posix(), target=_link_text(path),
                                     kind=kind))

    def copy_filter(self, skip: Callable[[str], bool] = lambda _n: False) -> Callable[[str, list[str]], list[str]]:
        """An `ignore` callable for `shutil.copytree`: drops skipped names and refused links."""
        def ignore(folder: str, names: list[str]) -> list[str]:
            return [name for name in names
                    if skip(name) or (os.path.islink(os.path.join(folder, name))
                                      and not self.is_inside(os.path.join(folder, name)))]
        return ignore
