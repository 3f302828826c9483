"""One mutation run: which mutants to decide, where each verdict comes from.

The steps, cheapest first:

1. ask the cache about every target file; when it knows every mutant of every
   file and holds a valid result for each one selected, nothing runs at all;
2. otherwise build the isolated copy. With nothing cached and no sample or
   shard, a single `mutmut run` decides everything (as fast as mutmut alone);
3. otherwise generate the mutants first, pick the sample / shard, pre-fill
   the cached and the unselected ones, and let one `mutmut run` decide the
   rest.

Selection is deterministic: the sample is `random.Random(seed).sample` over
the sorted mutant names, and shard i of N takes every N-th selected name,
so every shard of a CI matrix agrees on the partition without talking.

A run that is stopped (Ctrl-C, SIGTERM, `timeout_s`) still stores the
verdicts mutmut had saved, so the next run starts where this one stopped;
the isolated copy is tracked by `gates.engine.children`, so it is removed even when
the process exits before this gate's thread returns.
"""

from __future__ import annotations

import random
import signal
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterable, Mapping

from gates.code.project_paths import ProjectPaths
from gates.engine import children
from gates.mutation import diagnosis, runner, workspace
from gates.mutation.cache import CachedResult, MutationCache, digest, function_lines
from gates.mutation.needed_files import file_of_test, with_packages

PYTEST_CONFIG_FILES = ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py")
# exit codes that say a mutant was not decided: never run, skipped, or ended by the stop itself
STOP_EXIT_CODES = frozenset({None, runner.SKIPPED_EXIT_CODE, -signal.SIGTERM, -signal.SIGKILL, -signal.SIGINT})


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What to run and how; built by the gate from its settings and the spec."""

    root: Path
    targets: tuple[str, ...]
    tests: tuple[str, ...]
    deselect: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    also_copy: tuple[str, ...] = ()
    sample: int = 0
    seed: int = 0
    shard: tuple[int, int] = (1, 1)
    process_isolation: str = "auto"
    timeout_multiplier: float = 15.0
    max_children: int = 2
    timeout_s: float = 3600.0
    cache_dir: Path | None = None
    log: Path = Path("mutmut.log")
    keep_copy: bool = False
    python: str = sys.executable  # the project's interpreter: mutmut runs the tests in it
    mutmut_version: str = ""  # as that interpreter reports it; "" = readiness's own


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The verdict on one selected mutant."""

    name: str
    path: str
    bucket: str
    exit_code: int | None
    line: int | None = None
    diff: str = ""
    cached: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """Everything a run decided, for scoring and evidence."""

    outcomes: tuple[Outcome, ...]
    population: Mapping[str, int]  # path -> number of mutants in the file
    sampled: bool
    mutants_run: int
    process_isolation: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def select(universe: Iterable[str], sample: int, seed: int, shard: tuple[int, int]) -> tuple[list[str], bool]:
    """(the mutant names this run decides, whether they are a sample)."""
    names = sorted(universe)
    sampled = 0 < sample < len(names)
    if sampled:
        names = sorted(random.Random(seed).sample(names, sample))
    index, count = shard
    return names[index - 1::count], sampled


def test_files(root: Path, tests: Iterable[str]) -> list[str]:
    """Every file whose change may change a test verdict: test sources, the
    conftests and packages on the way to them, and the pytest configuration."""
    paths = ProjectPaths(root)  # these files are hashed: none may lead outside the project
    files = [name for name in PYTEST_CONFIG_FILES if paths.is_inside(root / name) and (root / name).is_file()]
    for test_path in tests:
        base = root / file_of_test(test_path)
        found = paths.files(base, suffix=".py", prune=lambda name: name == "__pycache__")
        files += [p.relative_to(root).as_posix() for p in found.absolute()]
        files += [p.relative_to(root).as_posix() for p in with_packages(root, base)[1:] if paths.is_inside(p)]
    return sorted(set(files))


def fingerprint(plan: Plan) -> str:
    return digest(["mutmut", plan.mutmut_version or version("mutmut"), *plan.tests, "|", *plan.deselect, "|",
                    *plan.pytest_args, "|", repr(plan.timeout_multiplier)])


def _isolation(plan: Plan) -> str:
    if plan.process_isolation != "auto":
        return plan.process_isolation
    copied = workspace.paths_to_copy(plan.root, plan.targets, plan.tests, plan.also_copy)
    files = [f for p in copied for f in workspace.files_under(plan.root, p)]
    return "forkserver" if workspace.imports_torch(files) else "fork"


def _reach_by_function(copy_root: Path) -> dict[str, set[str]]:
    """Function key -> test files that ran it (node ids reduced to their file)."""
    reach: dict[str, set[str]] = {}
    for function_id, nodes in runner.read_reach(copy_root).items():
        key = function_id.rpartition(".")[2]
        reach.setdefault(key, set()).update(node.split("::")[0] for node in nodes)
    return reach


def _decide(plan: Plan, copy_root: Path, sources: Mapping[str, str], lookups: Mapping,
            fresh: bool) -> tuple[list[runner.Mutant], list[str], bool, int]:
    """Run mutmut in the copy; returns (all mutants, selected names, sampled, number run)."""
    full = fresh and plan.sample == 0 and plan.shard == (1, 1)
    process = runner.MutmutProcess(copy_root, plan.log, max_children=plan.max_children,
                                   timeout_s=plan.timeout_s, staged=not full, python=plan.python)
    try:
        if full:
            process.finish()
            mutants = runner.read_mutants(copy_root, list(plan.targets))
            return mutants, [m.name for m in mutants], False, len(mutants)
        process.wait_generated()
        mutants = runner.read_mutants(copy_root, list(plan.targets))
        selected, sampled = select((m.name for m in mutants), plan.sample, plan.seed, plan.shard)
        chosen = set(selected)
        presets: dict[str, dict[str, int]] = {}
        for m in mutants:
            cached = lookups[m.path].results.get(m.name)
            if m.name not in chosen:
                presets.setdefault(m.path, {})[m.name] = runner.SKIPPED_EXIT_CODE
            elif cached is not None:
                presets.setdefault(m.path, {})[m.name] = cached.exit_code
        runner.preset(copy_root, presets)
        to_run = sum(1 for m in mutants if m.name in chosen and lookups[m.path].results.get(m.name) is None)
        process.finish(run=to_run > 0)
    finally:
        process.kill()
    if to_run:
        mutants = runner.read_mutants(copy_root, list(plan.targets))
    return mutants, selected, sampled, to_run


def _cached_session(plan: Plan, lookups: Mapping[str, Any], isolation: str) -> Session | None:
    """The session straight from the cache when it knows every mutant and holds every selected one."""
    names: dict[str, tuple[str, ...]] = {}
    for path, lookup in lookups.items():
        if lookup.names is None:
            return None
        names[path] = lookup.names
    universe = [n for listed in names.values() for n in listed]
    selected, sampled = select(universe, plan.sample, plan.seed, plan.shard)
    cached = {n: r for lookup in lookups.values() for n, r in lookup.results.items()}
    if not all(n in cached for n in selected):
        return None
    paths = {n: p for p, listed in names.items() for n in listed}
    outcomes = [_from_cache(n, paths[n], cached[n]) for n in selected]
    return Session(outcomes=tuple(outcomes), population={p: len(listed) for p, listed in names.items()},
                   sampled=sampled, mutants_run=0, process_isolation=isolation)


def collect(plan: Plan) -> Session:
    """Decide the selected mutants of `plan.targets`, reusing the cache where valid."""
    sources = {path: (plan.root / path).read_text(encoding="utf-8") for path in plan.targets}
    cache = None if plan.cache_dir is None else MutationCache(
        plan.cache_dir, root=plan.root, fingerprint=fingerprint(plan),
        test_files=test_files(plan.root, plan.tests))
    lookups = {p: cache.lookup(p, s) if cache else _EMPTY for p, s in sources.items()}
    isolation = _isolation(plan)
    warm = _cached_session(plan, lookups, isolation)
    if warm is not None:
        return warm
    fresh = not any(lookup.results for lookup in lookups.values())
    config = workspace.RunConfig(targets=plan.targets, tests=plan.tests, deselect=plan.deselect,
                                 process_isolation=isolation, timeout_multiplier=plan.timeout_multiplier,
                                 pytest_args=plan.pytest_args)
    copy_root = workspace.build(plan.root, config, extra=plan.also_copy)
    try:
        try:
            mutants, selected, sampled, run_count = _decide(plan, copy_root, sources, lookups, fresh)
        except runner.MutmutFailed as exc:
            if exc.pytest_failed:  # mutmut may not have shown pytest's output: let pytest say it
                exc.diagnosis = diagnosis.diagnose(copy_root, python=plan.python, tests=plan.tests,
                                                   deselect=plan.deselect, pytest_args=plan.pytest_args,
                                                   log=plan.log.with_name("pytest-diagnosis.log"))
            if cache is not None:
                _keep_decided(cache, copy_root, plan, sources, lookups)
            raise
        except BaseException:
            if cache is not None:  # stopped (interrupt, timeout): keep what was decided
                _keep_decided(cache, copy_root, plan, sources, lookups)
            raise
        outcomes = _outcomes(copy_root, mutants, set(selected), lookups, sources)
        if cache is not None:
            _store(cache, sources, mutants, outcomes, lookups, _reach_by_function(copy_root))
    finally:
        children.release(copy_root, remove=not plan.keep_copy)
    population: dict[str, int] = {p: 0 for p in plan.targets}
    for m in mutants:
        population[m.path] += 1
    return Session(outcomes=tuple(outcomes), population=population, sampled=sampled,
                   mutants_run=run_count, process_isolation=isolation)


def _keep_decided(cache: MutationCache, copy_root: Path, plan: Plan, sources: Mapping[str, str],
                  lookups: Mapping) -> None:
    """Store the mutants a stopped run had decided, so the next run does not measure them again.

    mutmut saves each verdict as it comes, so `.meta` holds them. A verdict
    that is the stop itself (the test process ended by SIGTERM, SIGKILL or
    SIGINT) is not one. Any decided mutant means every mutant was generated,
    so the names stored for each file are complete.
    """
    try:
        mutants = runner.read_mutants(copy_root, list(plan.targets))
    except (OSError, ValueError, KeyError):
        return  # a `.meta` cut short by the stop: nothing trustworthy to keep
    decided = {m.name for m in mutants if m.exit_code not in STOP_EXIT_CODES}
    if decided:
        outcomes = _outcomes(copy_root, mutants, decided, lookups, sources)
        _store(cache, sources, mutants, outcomes, lookups, _reach_by_function(copy_root))


def _from_cache(name: str, path: str, result: CachedResult) -> Outcome:
    return Outcome(name=name, path=path, bucket=result.bucket, exit_code=result.exit_code,
                   line=result.line, diff=result.diff, cached=True)


def _outcomes(copy_root: Path, mutants: list[runner.Mutant], chosen: set[str],
              lookups: Mapping, sources: Mapping[str, str]) -> list[Outcome]:
    lines = {path: function_lines(source) for path, source in sources.items()}
    mutated: dict[str, tuple] = {}
    outcomes: list[Outcome] = []
    for m in mutants:
        if m.name not in chosen:
            continue
        cached = lookups[m.path].results.get(m.name)
        if cached is not None:
            outcomes.append(_from_cache(m.name, m.path, cached))
            continue
        if m.bucket == "killed":
            line, diff = None, ""
        else:
            if m.path not in mutated:
                mutated[m.path] = runner.load_mutated(copy_root, m.path)
            line, diff = runner.diff_of(mutated[m.path], m, lines[m.path].get(m.function))
        outcomes.append(Outcome(name=m.name, path=m.path, bucket=m.bucket, exit_code=m.exit_code,
                                line=line, diff=diff))
    return outcomes


def _store(cache: MutationCache, sources: Mapping[str, str], mutants: list[runner.Mutant],
           outcomes: list[Outcome], lookups: Mapping, reach: Mapping[str, set[str]]) -> None:
    decided = {o.name: CachedResult(exit_code=o.exit_code, line=o.line, diff=o.diff)
               for o in outcomes if o.exit_code is not None and o.bucket not in ("skipped", "not_checked")}
    for path, source in sources.items():
        names = [m.name for m in mutants if m.path == path]
        results = {**lookups[path].results, **{n: r for n, r in decided.items() if n in set(names)}}
        cache.store(path, source, names, results, reach)


class _NoCache:
    names = None
    results: Mapping[str, CachedResult] = {}


_EMPTY = _NoCache()
