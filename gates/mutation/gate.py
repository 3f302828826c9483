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
`max_children`, `timeout_multiplier`, `timeout_s`, `tier`, `keep_copy`.

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
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Mapping, Sequence

from gates.code.project_paths import ProjectPaths
from gates.code.suite_run import ask_interpreter
from gates.engine.protocol import Gate, GateContext, GateError, Requires
from gates.engine.spec import CodeSpec
from gates.mutation.evidence import ModuleCounts, counts_by_module
from gates.mutation.judging import incomplete, result_of
from gates.mutation.runner import MutmutFailed
from gates.mutation.session import Plan, collect
from gates.mutation.shards import merge_shards
from gates.result import GateResult, Severity, Status


class Backend(enum.StrEnum):
    MUTMUT = "mutmut"
    COSMIC_RAY = "cosmic-ray"
    MUTATEST = "mutatest"


class Judge(enum.StrEnum):
    """What a sample is judged on: its interval's lower bound, or its point score."""

    LOWER_BOUND = "lower_bound"
    POINT = "point"


class Isolation(enum.StrEnum):
    AUTO = "auto"  # mutmut's fork server when the code imports torch
    FORK = "fork"
    FORKSERVER = "forkserver"


BACKENDS = tuple(b.value for b in Backend)
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


def parse_shard(text: str) -> tuple[int, int]:
    """"2/4" -> (2, 4); "" -> (1, 1). Raises GateError on anything else."""
    if not text:
        return 1, 1
    index, sep, count = text.partition("/")
    if not (sep and index.strip().isdigit() and count.strip().isdigit()) or not 1 <= int(index) <= int(count):
        raise GateError(f"setting shard: {text!r} is not i/N with 1 <= i <= N")
    return int(index), int(count)


def validate(settings: Settings) -> None:
    """Raise GateError naming the first bad setting."""
    if settings.judge not in JUDGES:
        raise GateError(f"setting judge: {settings.judge!r} is not one of {', '.join(JUDGES)}")
    if settings.process_isolation not in ISOLATIONS:
        raise GateError(f"setting process_isolation: {settings.process_isolation!r} "
                        f"is not one of {', '.join(ISOLATIONS)}")
    if settings.sample < 0:
        raise GateError(f"setting sample: {settings.sample} is negative")
    parse_shard(settings.shard)


def backend_problem(backend: str) -> str | None:
    """Why `backend` cannot run here, or None when it can."""
    if backend not in BACKENDS:
        return f"unknown mutation backend {backend!r} (known: {', '.join(BACKENDS)})"
    if backend == Backend.MUTATEST and sys.version_info >= (3, 11):
        return "mutatest 3.1 crashes on Python 3.11+ (random.sample on a set) and pins coverage<6"
    module = {Backend.MUTMUT: "mutmut", Backend.COSMIC_RAY: "cosmic_ray",
              Backend.MUTATEST: "mutatest"}[Backend(backend)]
    if find_spec(module) is None:
        return f"{backend} is not installed in this environment"
    if backend != Backend.MUTMUT:
        return f"the {backend} backend is not implemented by this gate; use backend = \"mutmut\""
    if sys.platform == "win32":
        return "mutmut 3 does not run on native Windows (use WSL)"
    return None


def targets_of(code: CodeSpec, tier: str) -> dict[str, float]:
    """Source file (relative to the code root) -> mutation threshold in percent."""
    paths = ProjectPaths(code.root)  # a link out of the project is never a target
    if code.critical:
        targets: dict[str, float] = {}
        for module in code.critical:
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


def failing_tests(results: Mapping[str, GateResult]) -> tuple[str, ...]:
    """Node ids the suite_health gate saw failing (empty when it did not run)."""
    health = results.get("suite_health")
    found = health.evidence.get("failing_tests", []) if health is not None else []
    return tuple(sorted({str(node) for node in found}))


def plan_of(settings: Settings, code: CodeSpec, targets: tuple[str, ...], deselect: tuple[str, ...],
            log: Path, project_root: Path | None = None) -> Plan:
    """What the session runs, from the settings and the code spec.

    The per-mutant cache lives under the project's `.readiness/` (where the
    configuration is), or at `cache_dir`, read relative to the project.
    """
    base = project_root or code.root
    cache_dir = base / settings.cache_dir if settings.cache_dir else base / ".readiness" / "mutation-cache"
    return Plan(root=code.root, targets=targets, tests=tuple(code.tests), deselect=deselect,
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
        problem = backend_problem(settings.backend)
        if problem:
            return GateResult(name=self.name, status=Status.NOT_EVALUABLE, severity=self.severity,
                              summary=problem, evidence={"backend": settings.backend})
        targets = targets_of(code, settings.tier)
        deselect = failing_tests(ctx.results)
        out_dir = Path(ctx.work_dir) / "mutation"
        out_dir.mkdir(parents=True, exist_ok=True)
        log = out_dir / "mutmut.log"
        log.write_text("", encoding="utf-8")
        if ctx.options.get("fresh"):  # --no-cache: measure every mutant again
            settings = replace(settings, cache=False)
        plan = plan_of(settings, code, tuple(targets), deselect, log, ctx.root)
        try:
            session = collect(plan)
        except MutmutFailed as exc:
            return self._failed_run(str(exc), exc.log_tail, deselect, log)
        index, count = parse_shard(settings.shard)
        run_info = {"shard": f"{index}/{count}", "shard_count": count, "sample": settings.sample,
                    "seed": settings.seed, "judge": settings.judge, "sampled": session.sampled,
                    "process_isolation": session.process_isolation,
                    "mutants_total": sum(session.population.values()), "mutants_run": session.mutants_run,
                    "deselected_tests": list(deselect), "log": str(log)}
        # mutmut and the tests it runs live in readiness's own interpreter (mutation_runner)
        run_info["interpreter"] = ask_interpreter(sys.executable, ("mutmut", "pytest"), cwd=code.root)
        modules = counts_by_module(session.outcomes, targets, session.population, sampled=session.sampled)
        result = result_of(self.name, self.severity, modules,
                           [_outcome_dict(o, index) for o in session.outcomes], run_info)
        if count > 1 and result.status in (Status.PASS, Status.FAIL):
            # One shard is a partial measurement, never a verdict of its own.
            result = incomplete(result, [index], count)
        return result

    def _failed_run(self, message: str, tail: str, deselect: tuple[str, ...], log: Path) -> GateResult:
        hint = (" Deselected as failing: " + ", ".join(deselect) + ".") if deselect else (
            " If tests fail, run the suite_health gate first so they are deselected.")
        return GateResult(name=self.name, status=Status.ERROR, severity=self.severity, summary=message,
                          evidence={"failures": [{"title": message, "detail": tail}], "files": [str(log)],
                                    "deselected_tests": list(deselect)},
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
