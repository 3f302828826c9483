"""The isolated copy of a project that mutmut runs in, and its configuration.

mutmut 3 writes `mutants/` next to the code it mutates and, out of the box,
copies only the mutated files and `tests/` into it, so a `conftest.py` that
imports another package of the project fails there. This module builds a
temporary copy holding what the run needs and nothing of the user's tree is
touched:

- the target files and the packages around them;
- the test paths, every `conftest.py` and `__init__.py` on the way to them,
  the pytest configuration files, and whatever those import from the
  project (`gates.mutation.needed_files` follows the imports);
- extra paths named by the user (`also_copy`).

It then writes a `[tool.mutmut]` section into the copy's `pyproject.toml`
(replacing one the user had) or a `[mutmut]` section into `setup.cfg`,
listing every copied file except the targets under `also_copy`, so mutmut
neither misses an import nor re-copies a target over its mutants.

Nothing outside the project enters the copy: every path is checked with
`gates.code.project_paths`, so a link to a file or folder outside the root (or
to `/`), a dangling link and a link loop are left out, never copied, read
or followed.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from gates.code.project_paths import ProjectPaths
from gates.engine import children
from gates.mutation.needed_files import files_under, imported_modules_of, paths_to_copy, skip  # noqa: F401


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """How mutmut is configured inside the copy."""

    targets: tuple[str, ...]
    tests: tuple[str, ...]
    deselect: tuple[str, ...] = ()
    process_isolation: str = "fork"
    timeout_multiplier: float = 15.0
    pytest_args: tuple[str, ...] = ()


def imports_torch(files: Iterable[Path]) -> bool:
    """Whether any of these files imports torch (mutmut then needs a fork server)."""
    return any(name.split(".")[0] == "torch"
               for f in files if f.suffix == ".py"
               for name in imported_modules_of(f.read_text(encoding="utf-8", errors="replace"), package=""))


def _strip_mutmut_section(text: str) -> str:
    """The TOML text without `[tool.mutmut]` (and its sub-tables)."""
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        header = re.match(r"\s*\[+\s*([^\]]+?)\s*\]+\s*(#.*)?$", line)
        if header:
            inside = header.group(1) == "tool.mutmut" or header.group(1).startswith("tool.mutmut.")
        if not inside:
            out.append(line)
    return "\n".join(out) + "\n"


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def mutmut_section(config: RunConfig, also_copy: Iterable[str]) -> str:
    """The `[tool.mutmut]` TOML section for a run (JSON strings are valid TOML)."""
    pytest_args = list(config.pytest_args)
    for node in config.deselect:
        pytest_args += ["--deselect", node]
    return "\n".join([
        "[tool.mutmut]",
        f"source_paths = {_toml_list(config.targets)}",
        f"also_copy = {_toml_list(also_copy)}",
        f"pytest_add_cli_args_test_selection = {_toml_list(config.tests)}",
        f"pytest_add_cli_args = {_toml_list(pytest_args)}",
        f"process_isolation = {json.dumps(config.process_isolation)}",
        f"timeout_multiplier = {float(config.timeout_multiplier)}",
        "use_git_change_detection = false",
        "use_setproctitle = false",
        "",
    ])


def _also_copy(copy_root: Path, targets: set[str]) -> list[str]:
    """Copied paths mutmut must bring into mutants/: whole folders, except
    that folders holding a target are listed file by file, target excluded."""
    entries: list[str] = []

    def visit(path: Path) -> None:
        rel = path.relative_to(copy_root).as_posix()
        if rel in targets or rel == "pyproject.toml":
            return
        if path.is_dir() and any(t.startswith(rel + "/") for t in targets):
            for child in sorted(path.iterdir()):
                visit(child)
        else:
            entries.append(rel)

    for child in sorted(copy_root.iterdir()):
        visit(child)
    return entries


def build(root: Path, config: RunConfig, *, extra: Iterable[str] = (),
          parent: Path | None = None) -> Path:
    """Create the isolated copy of `root` configured for `config`; returns it."""
    wanted = paths_to_copy(root, config.targets, config.tests, extra)
    # tracked: an interrupted run removes it even though this gate's thread dies with the process
    copy_root = children.track(Path(tempfile.mkdtemp(prefix="readiness-mutation-", dir=parent)))
    try:
        _fill(root, copy_root, wanted, config)
    except BaseException:
        children.release(copy_root)
        raise
    return copy_root


def _fill(root: Path, copy_root: Path, wanted: list[Path], config: RunConfig) -> None:
    ignore = ProjectPaths(root).copy_filter(lambda name: skip(Path(name)))
    for path in wanted:
        destination = copy_root / path.relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, destination, dirs_exist_ok=True, ignore=ignore)
        else:
            shutil.copy2(path, destination)
    section = mutmut_section(config, _also_copy(copy_root, set(config.targets)))
    pyproject = root / "pyproject.toml"
    if pyproject.exists() and ProjectPaths(root).is_inside(pyproject):
        text = _strip_mutmut_section(pyproject.read_text(encoding="utf-8"))
        (copy_root / "pyproject.toml").write_text(text + "\n" + section, encoding="utf-8")
    else:
        # Without a pyproject.toml mutmut reads setup.cfg; adding pyproject.toml
        # could change how pytest finds its configuration.
        setup_cfg = copy_root / "setup.cfg"
        existing = setup_cfg.read_text(encoding="utf-8") if setup_cfg.exists() else ""
        setup_cfg.write_text(existing + "\n" + _setup_cfg_section(config, section), encoding="utf-8")


def _setup_cfg_section(config: RunConfig, toml_section: str) -> str:
    """The same configuration in setup.cfg's form (lists one value a line)."""
    lines = ["[mutmut]"]
    for line in toml_section.splitlines()[1:]:
        if not line:
            continue
        key, _, value = line.partition(" = ")
        parsed = json.loads(value)
        if isinstance(parsed, list):
            if parsed:  # an empty value would read back as [""]
                lines.append(f"{key} =" + "".join(f"\n    {v}" for v in parsed))
        elif isinstance(parsed, bool):
            lines.append(f"{key} = {'true' if parsed else 'false'}")
        else:
            lines.append(f"{key} = {parsed}")
    return "\n".join(lines) + "\n"
