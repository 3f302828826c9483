"""Which project paths the isolated mutation copy must hold for the tests to run.

Named tests alone are not enough: pytest also needs every `conftest.py` on
the way from the root to a test (distill's `tests/conftest.py` defines the
`device` fixture its training tests use) and the `__init__.py` files that make
`tests.training` a package, and a conftest often imports a helper module of
the test tree (`from .conftest_mock_utils import ...`, or
`from tests.training.conftest_mock_utils import ...`). Found without being
told:

- the targets and the whole top-level package around each;
- each test path (a file, a folder, or the file of a node id
  `tests/test_a.py::test_x`), and every `conftest.py` and `__init__.py` in
  the folders from the root down to it;
- what those files import, followed transitively: a module of a folder that
  holds tests is copied on its own (with the `__init__.py` files above it);
  any other top-level module or package of the project is copied whole,
  since source packages are also reached by strings (`mock.patch("pkg.mod.f")`);
- the root's pytest configuration files and the extra paths the user names.

    >>> imported_modules_of("from .helpers import make", package="tests.unit")
    {'tests.unit.helpers', 'tests.unit.helpers.make'}

Every path is checked with `gates.code.project_paths`, so a link leading out
of the project is never copied, read or followed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable

from gates.code.project_paths import ProjectPaths

SKIPPED_NAMES = frozenset({
    "__pycache__", ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", "mutants", ".readiness", ".eggs", "build", "dist",
})
CONFIG_FILES = ("setup.cfg", "pytest.ini", "tox.ini", "conftest.py")
PACKAGE_FILES = ("conftest.py", "__init__.py")


def skip(path: Path) -> bool:
    """Paths never copied: caches, virtual environments, build output, compiled files."""
    return path.name in SKIPPED_NAMES or path.suffix in (".pyc", ".pyo") or path.name.endswith(".egg-info")


def files_under(root: Path, path: Path) -> list[Path]:
    """The Python files the copy of `path` will hold."""
    found = ProjectPaths(root).files(path, suffix=".py", prune=lambda name: skip(Path(name)),
                                     follow_links=True)
    return found.absolute()


def file_of_test(test: str) -> str:
    """The path part of a test argument: `tests/a.py::T::t[1]` -> `tests/a.py`."""
    return test.split("::", 1)[0]


def imported_modules_of(source: str, *, package: str) -> set[str]:
    """Dotted names a module imports, relative imports resolved against `package`.

    For `from a import b` both `a` and `a.b` are named: `b` may be a submodule.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                kept = parts[:len(parts) - node.level + 1]  # level 1 is the package itself
                base = ".".join([*kept, *([node.module] if node.module else [])])
            if not base:
                continue
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _package_name(root: Path, file: Path) -> str:
    """The dotted package a file sits in, judged from the `__init__.py` files above it."""
    parts: list[str] = []
    folder = file.parent
    while folder != root and (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def _package_of(root: Path, target: Path) -> Path:
    """The outermost package directory holding `target` (or the file itself)."""
    top = target
    parent = target.parent
    while parent != root and (parent / "__init__.py").exists():
        top, parent = parent, parent.parent
    return top


def _top_level(root: Path, name: str) -> Path | None:
    """Where top-level module `name` of the project lives, if it is the project's."""
    paths = ProjectPaths(root)
    for base in (root, root / "src"):
        for candidate in (base / name, base / f"{name}.py"):
            if paths.is_inside(candidate) and candidate.exists() and not skip(candidate):
                return candidate
    return None


def with_packages(root: Path, path: Path) -> list[Path]:
    """`path` and the `conftest.py` / `__init__.py` of every folder from the root down to it."""
    found = [path]
    folder = path if path.is_dir() else path.parent
    while folder != root and folder.is_relative_to(root):
        found += [folder / name for name in PACKAGE_FILES if (folder / name).is_file()]
        folder = folder.parent
    return found


def _module_paths(root: Path, dotted: str, test_tops: set[str]) -> list[Path]:
    """What to copy for an imported module of the project (nothing for a foreign one)."""
    parts = dotted.split(".")
    if parts[0] not in test_tops:
        top = _top_level(root, parts[0])
        return [top] if top is not None else []
    base = root.joinpath(*parts)
    # a package of the test tree brings its __init__.py, not every test under it;
    # `from tests import helpers` also names `tests.helpers`, which is resolved on its own
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file() and ProjectPaths(root).is_inside(candidate) and not skip(candidate):
            return with_packages(root, candidate)
    return []


def paths_to_copy(root: Path, targets: Iterable[str], tests: Iterable[str],
                  extra: Iterable[str] = ()) -> list[Path]:
    """Project paths the isolated copy needs, found by following conftests and imports."""
    test_paths = [root / file_of_test(t) for t in tests]
    test_tops = {p.relative_to(root).parts[0] for p in test_paths if p != root and p.is_relative_to(root)}
    wanted: list[Path] = [_package_of(root, root / t) for t in targets]
    for path in test_paths:
        wanted += with_packages(root, path)
    wanted += [root / e for e in extra]
    wanted += [root / name for name in CONFIG_FILES if (root / name).exists()]
    paths = ProjectPaths(root)
    wanted = [p for p in wanted if paths.is_inside(p)]  # links out of the project stay out
    missing = [p for p in wanted if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{missing[0]} does not exist")
    seen: set[Path] = set()
    read: set[Path] = set()
    queue = list(wanted)
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for file in files_under(root, path):
            if file in read:
                continue
            read.add(file)
            source = file.read_text(encoding="utf-8", errors="replace")
            for name in imported_modules_of(source, package=_package_name(root, file)):
                queue += [p for p in _module_paths(root, name, test_tops) if p not in seen]
    return _outermost(seen)


def _outermost(paths: set[Path]) -> list[Path]:
    """Sorted, without paths that a copied folder already holds."""
    folders = [p for p in paths if p.is_dir()]
    return sorted(p for p in paths if not any(f != p and p.is_relative_to(f) for f in folders))
