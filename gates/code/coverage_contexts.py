"""Who tests what: per source file, the tests whose run executed a line of it.

suite_health runs pytest-cov with `--cov-context=test`, so coverage.py
records, next to each executed line, the test that was running
(`tests/test_a.py::test_x|run`, `|setup` while its fixtures were built,
`|teardown`). Read back through coverage.py's own API, that gives the
mutation gate the tests worth running against a mutated module, instead of
the whole suite:

    >>> node_of("tests/training/test_losses.py::TestKD::test_temp[2]|setup")
    'tests/training/test_losses.py::TestKD::test_temp[2]'

Lines run while no test was active (imports during collection) carry the
empty context and name no test. A node id whose file is not under the root
(pytest's rootdir above the code root) cannot be handed to mutmut and is
left out; the caller then falls back to the configured tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import coverage
from coverage.exceptions import CoverageException

PHASES = ("setup", "run", "teardown")


class ReachError(Exception):
    """The coverage data cannot say which tests reach which file; the message says why."""


def node_of(context: str) -> str:
    """The pytest node id of a pytest-cov test context ("" for the empty context)."""
    node, sep, phase = context.rpartition("|")
    return node if sep and phase in PHASES else context


def reach_by_file(data_file: Path, root: Path, paths: Iterable[str]) -> dict[str, frozenset[str]]:
    """Source file (relative to `root`) -> node ids of the tests that executed a line of it.

    Every file asked for gets an entry (empty when no test reached it).
    Raises ReachError when the data is missing, unreadable or was recorded
    without test contexts.
    """
    wanted: dict[str, set[str]] = {p: set() for p in paths}
    if not data_file.is_file():
        raise ReachError(f"coverage data {data_file} does not exist")
    data = coverage.CoverageData(basename=str(data_file))
    try:
        data.read()
        if not {node_of(c) for c in data.measured_contexts()} - {""}:
            raise ReachError(f"coverage data {data_file} has no test contexts (it was recorded without "
                             "pytest-cov's --cov-context=test)")
        real_root = Path(os.path.realpath(root))
        for measured in data.measured_files():
            rel = _relative(measured, root, real_root)
            if rel in wanted:
                for contexts in data.contexts_by_lineno(measured).values():
                    wanted[rel].update(node_of(c) for c in contexts)
    except CoverageException as exc:
        raise ReachError(f"coverage data {data_file} could not be read: {exc}") from None
    return {path: frozenset(n for n in nodes if n and (root / n.split("::", 1)[0]).is_file())
            for path, nodes in wanted.items()}


def _relative(measured: str, root: Path, real_root: Path) -> str | None:
    path = Path(measured) if Path(measured).is_absolute() else root / measured
    for base in (root, real_root):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return None
