"""Mutation gate: would the tests notice if the critical code were wrong?

Coverage says which lines ran; this gate mutates the critical modules with
mutmut 3 (in an isolated copy of the project, never in the user's tree) and
counts how many mutants the suite kills. Per critical module:

    score = (killed + timeouts) / (killed + timeouts + survived + no_tests)

judged against the `mutation_pct` of the module's tier (the tiers the
coverage gate uses). Without critical modules every file under the code
sources is scored together against tier `tier`.

Settings (`[tool.readiness.gates.mutation]`): `sample` (0 = every mutant, N =
a uniform sample of N drawn under `seed`, scored with a 95 % Wilson interval),
`judge` ("lower_bound" judges the interval's lower bound, "point" the score
itself; a full run is a census and is always judged on its score), `shard`
("i/N": a deterministic partition, combined with `MutationGate.merge`),
`cache` / `cache_dir` (per-mutant results, relative to the project; default
`<project>/.readiness/mutation-cache`), `process_isolation` ("auto" uses
mutmut's fork server when the code imports torch), `backend`, `also_copy`,
`max_children`, `timeout_multiplier`, `timeout_s`, `tier`, `keep_copy`,
`python`, `select_tests`, `suite_result` (a stored document whose
suite_health and coverage results stand in for this assessment's:
`gates.mutation.suite_facts`).

mutmut runs in the project's interpreter (setting `python`, else `[code]
python`, else readiness's own), which must have mutmut 3 installed: it runs
the tests in its own process, so it must see the project's packages. Each
mutated module gets the tests whose coverage context reached it in
suite_health's run (`select_tests = "coverage"`, the default; see
`gates.mutation.selection`), or the critical module's own `tests`; critical
modules marked `mutate = false` keep their coverage tier and are not mutated.

Tests that the `suite_health` gate saw failing are deselected (a failing
test aborts mutmut's stats run) and listed in the evidence. Evidence: every
survivor with file, line and diff (`survivors`; the first 20 also as a
table), timeouts, no-test mutants, per-module counts (`modules`, which is
what `merge` reads). The result is `error`, never a number, when there is no
mutant, when no mutant was tested (0 killed and 0 survived), or when mutmut
stops early; `not_evaluable` when the backend cannot run on this host.
"""

from __future__ import annotations

import enum
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from gates.code.interpreter import ask_interpreter, chosen_python, interpreter_path
from gates.code.project_paths import ProjectPaths
from gates.engine.protocol import Gate, GateContext, GateError, Requires
from gates.engine.sharding import parse_shard  # noqa: F401 (re-exported: the CLI checks --shard with it)
from gates.engine.spec import CodeSpec
from gates.mutation import suite_facts
from gates.mutation.backends import BACKENDS, Backend, backend_problem, mutmut_problem  # noqa: F401 (re-exported)
from gates.mutation.evidence import ModuleCounts, counts_by_module
from gates.mutation.judging import incomplete, result_of
from gates.mutation.runner import MutmutFailed
from gates.mutation.selection import Selection, SelectTests, select
from gates.mutation.session import Plan, collect
from gates.mutation.shards import merge_shards
from gates.mutation.suite_facts import SuiteFacts
from gates.result import GateResult, Severity, Status


class Judge(enum.StrEnum):
    """What a sample is judged on: its interval's lower bound, or its point score."""

    LOWER_BOUND = "lower_bound"
    POINT = "point"


class Isolation(enum.StrEnum):
    AUTO = "auto"  # mutmut's fork server when the code imports torch
    FORK = "fork"
    FORKSERVER = "forkserver"


JUDGES = tuple(j.value for j in Judge)
ISOLATIONS = tuple(i.value for i in Isolation)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    backend: str = "mutmut"
    sample: int = 0
    seed: int = 0
    judge: str = "lower_bound"
    shard: str = ""
    cache: bool = True
    cache_dir: str = ""
    process_isolation: str = "auto"
    also_copy: tuple[str, ...] = ()
    max_children: int = 0
    timeout_multiplier: float = 15.0
    timeout_s: float = 3600.0
    tier: str = "2"
    keep_copy: bool = False
    python: str = ""
    select_tests: str = "coverage"
    suite_result: str = ""


def validate(settings: Settings) -> None:
    """Raise GateError naming the first bad setting."""
    if settings.judge not in JUDGES:
        raise GateError(f"setting judge: {settings.judge!r} is not one of {', '.join(JUDGES)}")
    if settings.process_isolation not in ISOLATIONS:
        raise GateError(f"setting process_isolation: {settings.process_isolation!r} "
                        f"is not one of {', '.join(ISOLATIONS)}")
    if settings.sample < 0:
        raise GateError(f"setting sample: {settings.sample} is negative")
    if settings.select_tests not in {m.value for m in SelectTests}:
        raise GateError(f"setting select_tests: {settings.select_tests!r} is not one of "
                        f"{', '.join(m.value for m in SelectTests)}")
    parse_shard(settings.shard)


def targets_of(code: CodeSpec, tier: str) -> dict[str, float]:
    """Source file (relative to the code root) -> mutation threshold in percent.

    Critical modules marked `mutate = false` are left out (they keep their
    coverage tier); when every one of them is, there is nothing to mutate.
    """
    paths = ProjectPaths(code.root)  # a link out of the project is never a target
    if code.critical:
        mutated = [m for m in code.critical if m.mutate]
        if not mutated:
            raise GateError("every critical module is marked mutate = false: nothing to mutate (turn the "
                            "mutation gate off, or mark a module mutate = true)")
        targets: dict[str, float] = {}
        for module in mutated:
            found = code.tiers.get(module.tier)
            if found is None:
                raise GateError(f"critical module {module.path}: unknown tier {module.tier!r}")
            refused = paths.refusal(code.root / module.path)
            if refused is not None:
                raise GateError(f"critical module {refused.describe()}")
            if not (code.root / module.path).is_file():
                raise GateError(f"critical module {module.path} does not exist under {code.root}")
            targets[module.path] = found.mutation_pct
        return targets
    if tier not in code.tiers:
        raise GateError(f"setting tier: unknown tier {tier!r}")
    files = sorted({p.relative_to(code.root).as_posix() for source in code.sources
                    for p in paths.files(code.root / source, suffix=".py",
                                         prune=lambda name: name == "__pycache__").absolute()})
    if not files:
        raise GateError(f"no Python source under {', '.join(code.sources) or '(no sources configured)'}")
    return {f: code.tiers[tier].mutation_pct for f in files}


def facts_of(settings: Settings, code: CodeSpec, results: Mapping[str, GateResult],
             project_root: Path) -> SuiteFacts:
    """The failing tests and the coverage data: from this assessment, or from `suite_result`."""
    if settings.suite_result:
        return suite_facts.from_document(settings.suite_result, code, project_root)
    return suite_facts.from_results(code, results)


def selection_of(settings: Settings, code: CodeSpec, targets: Mapping[str, float], facts: SuiteFacts) -> Selection:
    overrides = {m.path: m.tests for m in code.critical if m.mutate and m.tests}
    return select(targets, configured=tuple(code.tests), overrides=overrides,
                  mode=SelectTests(settings.select_tests), data_file=facts.coverage_data, root=code.root,
                  why_no_data=facts.why_no_data)


def plan_of(settings: Settings, code: CodeSpec, targets: tuple[str, ...], deselect: tuple[str, ...],
            log: Path, project_root: Path | None = None, *, tests: tuple[str, ...] | None = None,
            python: str = "", mutmut_version: str = "") -> Plan:
    """What the session runs, from the settings and the code spec.

    The per-mutant cache lives under the project's `.readiness/` (where the
    configuration is), or at `cache_dir`, read relative to the project.
    """
    base = project_root or code.root
    cache_dir = base / settings.cache_dir if settings.cache_dir else base / ".readiness" / "mutation-cache"
    return Plan(root=code.root, targets=targets, tests=tuple(code.tests) if tests is None else tests,
                deselect=deselect, python=python or sys.executable, mutmut_version=mutmut_version,
                pytest_args=tuple(code.pytest_args), also_copy=tuple(settings.also_copy),
                sample=settings.sample, seed=settings.seed, shard=parse_shard(settings.shard),
                process_isolation=settings.process_isolation, timeout_multiplier=settings.timeout_multiplier,
                max_children=settings.max_children or os.cpu_count() or 2, timeout_s=settings.timeout_s,
                cache_dir=cache_dir if settings.cache else None, log=log, keep_copy=settings.keep_copy)


class MutationGate(Gate):
    """Scores the critical modules' tests by the mutants they kill."""

    name = "mutation"
    requires = Requires.CODE
    needs: tuple[str, ...] = ()
    after: tuple[str, ...] = ("suite_health",)
    severity = Severity.BLOCKER
    Settings = Settings

    def check(self, ctx: GateContext) -> GateResult:
        settings: Settings = ctx.settings if ctx.settings is not None else Settings()
        validate(settings)
        code = ctx.spec.code
        if code is None:
            raise GateError("the mutation gate needs a [code] section (root, sources, tests)")
        python = chosen_python(settings.python, code.python)
        problem = backend_problem(settings.backend, own_interpreter=not python)
        if problem:
            return GateResult(name=self.name, status=Status.NOT_EVALUABLE, severity=self.severity,
                              summary=problem, evidence={"backend": settings.backend})
        # mutmut and the tests it runs live in the project's interpreter: record what it says it has
        executable = interpreter_path(python, code.root)
        interpreter = ask_interpreter(executable, ("mutmut", "pytest", "coverage"), cwd=code.root)
        problem = mutmut_problem(interpreter)
        if problem:
            return self._error(problem, {"run": {"interpreter": interpreter}},
                               f"Install mutmut 3 into the environment of {executable}, or point the "
                               "mutation gate's `python` (or [code] python) at one that has it.")
        targets = targets_of(code, settings.tier)
        facts = facts_of(settings, code, ctx.results, ctx.root)
        selection = selection_of(settings, code, targets, facts)
        chosen = {"note": selection.note, "tests": len(selection.tests),
                  "modules": [{"path": m.path, "source": m.source.value, "tests": len(m.tests)}
                              for m in selection.modules]}
        if not selection.tests:
            return self._error(f"no test reaches any mutated module ({', '.join(selection.unreached())}) "
                               "in the coverage contexts of the suite run: no mutant can be tested",
                               {"run": {"interpreter": interpreter, "test_selection": chosen}},
                               "Add tests that exercise these modules, or name them in the critical "
                               "module's `tests`.")
        deselect = facts.failing
        out_dir = Path(ctx.work_dir) / "mutation"
        out_dir.mkdir(parents=True, exist_ok=True)
        log = out_dir / "mutmut.log"
        log.write_text("", encoding="utf-8")
        if ctx.options.get("fresh"):  # --no-cache: measure every mutant again
            settings = replace(settings, cache=False)
        plan = plan_of(settings, code, tuple(targets), deselect, log, ctx.root, tests=selection.tests,
                       python=executable, mutmut_version=str(interpreter["tools"]["mutmut"]))
        try:
            session = collect(plan)
        except MutmutFailed as exc:
            return self._failed_run(exc, deselect, log, interpreter, chosen)
        index, count = parse_shard(settings.shard)
        run_info = {"shard": f"{index}/{count}", "shard_count": count, "sample": settings.sample,
                    "seed": settings.seed, "judge": settings.judge, "sampled": session.sampled,
                    "process_isolation": session.process_isolation,
                    "mutants_total": sum(session.population.values()), "mutants_run": session.mutants_run,
                    "deselected_tests": list(deselect), "log": str(log), "interpreter": interpreter,
                    "test_selection": chosen}
        modules = counts_by_module(session.outcomes, targets, session.population, sampled=session.sampled)
        result = self.result_of(modules, [_outcome_dict(o, index) for o in session.outcomes], run_info)
        if count > 1 and result.status in (Status.PASS, Status.FAIL):
            # One shard is a partial measurement, never a verdict of its own.
            result = incomplete(result, [index], count)
        return result

    def _error(self, summary: str, evidence: dict[str, Any], remediation: str) -> GateResult:
        return GateResult(name=self.name, status=Status.ERROR, severity=self.severity, summary=summary,
                          evidence=evidence, remediation=remediation)

    def _failed_run(self, exc: MutmutFailed, deselect: tuple[str, ...], log: Path,
                    interpreter: Mapping[str, Any], chosen: Mapping[str, Any]) -> GateResult:
        hint = (" Deselected as failing: " + ", ".join(deselect) + ".") if deselect else (
            " If tests fail, run the suite_health gate first so they are deselected.")
        summary = str(exc)
        failures = [{"title": summary, "detail": exc.log_tail}]
        files = [str(log)]
        found = exc.diagnosis
        if found is not None:  # what pytest itself said about the tests mutmut could not run
            if found.first_error:
                summary += f"; pytest says: {found.first_error}"
            failures.append({"title": f"pytest in the isolated copy (exit {found.returncode}): {found.command}",
                             "detail": found.output_tail})
            files.append(str(log.with_name("pytest-diagnosis.log")))
        return GateResult(name=self.name, status=Status.ERROR, severity=self.severity, summary=summary,
                          evidence={"failures": failures, "files": files, "deselected_tests": list(deselect),
                                    "run": {"interpreter": dict(interpreter), "test_selection": dict(chosen)}},
                          remediation="Make the suite pass in a clean copy of the project." + hint)

    @classmethod
    def result_of(cls, modules: list[ModuleCounts], outcomes: Sequence[Mapping[str, Any]],
                  run_info: dict[str, Any]) -> GateResult:
        """Judge per-module counts and build this gate's result (see `judging.result_of`)."""
        return result_of(cls.name, cls.severity, modules, outcomes, run_info)

    @classmethod
    def merge(cls, results: Sequence[GateResult]) -> GateResult:
        """Combine shard results (in the order produced) into one gate result.

        `readiness merge` folds partial results pairwise, so a merge of some
        shards is itself mergeable: it is an `error` naming the missing shards
        until all N are in, then judged exactly as one run would be.
        """
        return merge_shards(cls.name, cls.severity, results)


def _outcome_dict(outcome: Any, shard: int) -> dict[str, Any]:
    return {"mutant": outcome.name, "file": outcome.path, "bucket": outcome.bucket, "line": outcome.line,
            "diff": outcome.diff, "cached": outcome.cached, "shard": shard}
