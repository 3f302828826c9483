"""Which tests mutmut runs: per mutated module, those that reach it.

mutmut runs its whole test selection three times before deciding the first
mutant (a stats run that maps tests to functions, a clean run, a forced-fail
run). Handed a 1,764-test suite to mutate one module that 120 of them reach,
it spends most of its time on tests that can never kill a mutant. So each
mutated module gets the tests whose coverage context executed a line of it
in the suite run readiness already made (`gates.code.coverage_contexts`),
unless the critical module names its own `tests`; mutmut is handed the union
(one run, one copy, one stats pass: cheaper than one run per module, and the
per-mutant runs are the same since mutmut itself maps each function to the
tests that call it).

Where the data has no test contexts (an ingested run, coverage off, an older
data file) or `select_tests = "all"`, every module gets the configured
`[code] tests` and the evidence says why.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from gates.code.coverage_contexts import ReachError, reach_by_file
from gates.mutation.needed_files import file_of_test


class TestSource(str, enum.Enum):
    """Where a module's tests came from."""

    __test__ = False  # not a pytest test class, whatever its name

    COVERAGE = "coverage"  # the tests whose coverage context reached the module
    CONFIGURED = "configured"  # the critical module's own `tests`
    ALL = "all"  # every configured test (`[code] tests`)


class SelectTests(str, enum.Enum):
    """The `select_tests` setting."""

    COVERAGE = "coverage"
    ALL = "all"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleTests:
    path: str
    source: TestSource
    tests: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The tests of every mutated module, and why contexts were not used (if so)."""

    modules: tuple[ModuleTests, ...]
    note: str = ""

    @property
    def tests(self) -> tuple[str, ...]:
        """What mutmut is handed: the union, without node ids a listed path already holds."""
        everything = sorted({t for m in self.modules for t in m.tests})
        paths = [t for t in everything if "::" not in t]
        return tuple(t for t in everything
                     if "::" not in t or not any(_holds(p, file_of_test(t)) for p in paths))

    def unreached(self) -> list[str]:
        return [m.path for m in self.modules if not m.tests]

    def rows(self) -> list[list[object]]:
        return [[m.path, m.source.value, len(m.tests)] for m in self.modules]


def _holds(path: str, file: str) -> bool:
    path = path.rstrip("/")
    return path in (".", "") or file == path or file.startswith(path + "/")


def select(targets: Iterable[str], *, configured: tuple[str, ...], overrides: Mapping[str, tuple[str, ...]],
           mode: SelectTests, data_file: Path | None, root: Path, why_no_data: str = "") -> Selection:
    """The tests for each target module (`overrides`: module -> its own tests)."""
    targets = list(targets)
    reach: dict[str, frozenset[str]] = {}
    note = ""
    if mode is SelectTests.ALL:
        note = "select_tests = \"all\": every configured test"
    elif data_file is None:
        note = why_no_data or "no coverage data to select tests from"
    else:
        try:
            reach = reach_by_file(data_file, root, [t for t in targets if t not in overrides])
        except ReachError as exc:
            note = str(exc)
    modules = []
    for path in targets:
        if path in overrides:
            modules.append(ModuleTests(path=path, source=TestSource.CONFIGURED, tests=overrides[path]))
        elif path in reach:
            modules.append(ModuleTests(path=path, source=TestSource.COVERAGE,
                                       tests=tuple(sorted(_within(reach[path], configured)))))
        else:
            modules.append(ModuleTests(path=path, source=TestSource.ALL, tests=configured))
    return Selection(modules=tuple(modules), note=note)


def _within(nodes: Iterable[str], configured: tuple[str, ...]) -> set[str]:
    """The node ids that lie inside the configured test paths (mutmut runs nothing else)."""
    return {n for n in nodes if any(_holds(c, file_of_test(n)) if "::" not in c else _is_node(n, c)
                                    for c in configured)}


def _is_node(node: str, named: str) -> bool:
    """`node` is the test `named`, one of its parameter sets, or a test inside it (a class)."""
    return node == named or node.startswith((named + "[", named + "::"))
