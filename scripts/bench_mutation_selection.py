"""Benchmark the mutation gate's coverage-selected tests against mutmut run directly.

On a real project with its own interpreter (a venv that has pytest,
pytest-cov, pytest-reportlog and mutmut 3 besides the project's packages):

1. suite_health runs the test folder once, recording who tests what
   (`--cov-context=test`); reported, not counted: the assessment makes this
   run anyway;
2. the mutation gate mutates the module with the tests the coverage
   contexts select (cache off);
3. mutmut directly, configured the same way but handed the whole test
   folder: the time the gate is compared with (target: gate <= 0.5x);
4. mutmut directly, handed exactly the tests the gate selected: its
   killed / survived / timeout / no-test counts must equal the gate's.

mutmut's own runs use a copy built by `gates.mutation.workspace` (the copy a
user would otherwise have to set up by hand) and are timed from the start of
the `mutmut run` process. Wall and CPU time (this process and every child
it waited for) and the peak RSS of the whole process tree are printed.

    .venv/bin/python scripts/bench_mutation_selection.py --project ../distill \\
        --python ../distill-venv/bin/python --module training/losses.py \\
        --tests tests/training --sources training [--max-children 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gates.code.suite_health import Settings as HealthSettings  # noqa: E402
from gates.code.suite_health import SuiteHealthGate  # noqa: E402
from gates.engine.protocol import GateContext  # noqa: E402
from gates.engine.spec import CodeSpec, CriticalModule, ProjectSpec  # noqa: E402
from gates.mutation import runner, workspace  # noqa: E402
from gates.mutation.gate import MutationGate, Settings  # noqa: E402

BUCKETS = (("killed", "killed"), ("survived", "survived"), ("timeouts", "timeout"), ("no_tests", "no_tests"))


class Clock:
    """Wall time, CPU time (own and waited-for children) and the peak RSS of the process tree.

    The tree (this process and every descendant: mutmut, its fork server and
    workers) is summed twice a second by a sampling thread, since
    `ru_maxrss` only keeps the largest single process ever waited for.
    """

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), self._cpu_now()
        self._peak, self._done = 0, threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = self._cpu_now() - self._cpu
        self._done.set()
        self._sampler.join()
        self.peak_rss_mb = self._peak / 2**20

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._done.wait(0.5):
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass  # ended between listing and reading
            self._peak = max(self._peak, total)

    @staticmethod
    def _cpu_now() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def code_spec(args: argparse.Namespace) -> CodeSpec:
    return CodeSpec(root=args.project, sources=tuple(args.sources), tests=(args.tests,), python=str(args.python),
                    critical=(CriticalModule(path=args.module, tier="1"),), pytest_args=tuple(args.pytest_args))


def context(args: argparse.Namespace, settings: object, work: Path, results: dict | None = None) -> GateContext:
    code = code_spec(args)
    return GateContext(spec=ProjectSpec(name=args.project.name, root=args.project, code=code), settings=settings,
                       work_dir=work, results=dict(results or {}))


def mutmut_direct(args: argparse.Namespace, tests: tuple[str, ...], deselect: tuple[str, ...],
                  isolation: str, tmp: Path, label: str) -> dict:
    """A plain `mutmut run` in a copy configured for `tests`; its time and counts."""
    config = workspace.RunConfig(targets=(args.module,), tests=tests, deselect=deselect, process_isolation=isolation,
                                 pytest_args=tuple(args.pytest_args))
    copy_root = workspace.build(args.project, config, parent=tmp)
    log = tmp / f"mutmut-{label}.log"
    with Clock() as clock, log.open("w") as out:
        done = subprocess.run([str(args.python), "-m", "mutmut", "run", "--max-children", str(args.max_children)],
                              cwd=copy_root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=args.timeout_s)
    if done.returncode != 0:
        raise SystemExit(f"mutmut ({label}) exited with {done.returncode}; see {log}")
    buckets = [m.bucket for m in runner.read_mutants(copy_root, [args.module])]
    return {"wall_s": round(clock.wall_s, 1), "cpu_s": round(clock.cpu_s, 1), "peak_rss_mb": round(clock.peak_rss_mb),
            "counts": {key: buckets.count(bucket) for key, bucket in BUCKETS}, "mutants": len(buckets)}


def run(args: argparse.Namespace, tmp: Path) -> dict:
    work = args.project / ".readiness" / "bench-selection"
    with Clock() as suite_clock:
        settings = HealthSettings(timeout_s=args.timeout_s, test_contexts="always")
        health = SuiteHealthGate().check(context(args, settings, work / "suite_health"))
    if "coverage_data" not in health.evidence:
        raise SystemExit(f"suite_health gave no coverage data: {health.status.value}: {health.summary}")
    with Clock() as gate_clock:
        result = MutationGate().check(context(args, Settings(cache=False, max_children=args.max_children,
                                                             timeout_s=args.timeout_s,
                                                             process_isolation=args.isolation),
                                              work / "mutation", {"suite_health": health}))
    if result.score is None:
        raise SystemExit(f"the gate did not score: {result.status.value}: {result.summary}")
    selected = tuple(str(t) for t in _selected_tests(result, args, health))
    deselect = tuple(result.evidence["deselected_tests"])
    isolation = result.evidence["run"]["process_isolation"]
    whole = mutmut_direct(args, (args.tests,), deselect, isolation, tmp, "whole-folder")
    same = mutmut_direct(args, selected, deselect, isolation, tmp, "selected")
    gate = {"wall_s": round(gate_clock.wall_s, 1), "cpu_s": round(gate_clock.cpu_s, 1),
            "peak_rss_mb": round(gate_clock.peak_rss_mb), "mutants": result.metrics["mutants_total"],
            "counts": {key: result.metrics[key] for key, _bucket in BUCKETS}}
    return {"module": args.module, "tests": args.tests, "suite_wall_s": round(suite_clock.wall_s, 1),
            "suite_tests": health.metrics.get("tests_total"), "selected_tests": len(selected),
            "gate": gate, "mutmut_whole_folder": whole, "mutmut_selected": same,
            "wall_ratio": round(gate["wall_s"] / whole["wall_s"], 3),
            "cpu_ratio": round(gate["cpu_s"] / whole["cpu_s"], 3),
            "same_counts_as_selected": gate["counts"] == same["counts"]}


def _selected_tests(result, args: argparse.Namespace, health) -> list[str]:
    """The node ids the gate handed mutmut, read back from the coverage contexts it used."""
    from gates.mutation.selection import SelectTests, select

    data = Path(health.evidence["coverage_data"])
    chosen = select([args.module], configured=(args.tests,), overrides={}, mode=SelectTests.COVERAGE,
                    data_file=data, root=args.project)
    if len(chosen.tests) != result.evidence["run"]["test_selection"]["tests"]:
        raise SystemExit("the selection read back differs from the gate's")
    return list(chosen.tests)


def report(row: dict) -> None:
    gate, whole, same = row["gate"], row["mutmut_whole_folder"], row["mutmut_selected"]
    print(f"\n{row['module']} ({gate['mutants']} mutants), tests from {row['tests']} "
          f"({row['suite_tests']} tests; {row['selected_tests']} reach the module)")
    print(f"  suite_health run with test contexts: {row['suite_wall_s']} s (made by the assessment anyway)")
    for label, numbers in (("gate (selected tests)", gate), ("mutmut, whole test folder", whole),
                           ("mutmut, the selected tests", same)):
        print(f"  {label:28s} wall {numbers['wall_s']:8.1f} s  CPU {numbers['cpu_s']:8.1f} s  "
              f"peak RSS {numbers['peak_rss_mb']:6d} MB  {numbers['counts']}")
    print(f"  gate / mutmut whole folder: {row['wall_ratio']:.3f}x wall, {row['cpu_ratio']:.3f}x CPU (target <= 0.5x)")
    print(f"  gate counts equal mutmut given the selected tests: {row['same_counts_as_selected']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--python", type=Path, required=True, help="the project's own interpreter")
    parser.add_argument("--module", required=True)
    parser.add_argument("--tests", required=True)
    parser.add_argument("--sources", nargs="+", required=True)
    parser.add_argument("--pytest-args", nargs="*", default=["-o", "addopts="])
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--isolation", default="forkserver", choices=["fork", "forkserver"],
                        help="mutmut's process isolation in all three runs (torch needs forkserver)")
    parser.add_argument("--timeout-s", type=float, default=7200.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.project = args.project.resolve()
    args.python = args.python.absolute()
    with tempfile.TemporaryDirectory(prefix="bench-selection-") as tmp:
        row = run(args, Path(tmp))
    report(row)
    if args.json:
        args.json.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    return 0 if row["same_counts_as_selected"] else 1


if __name__ == "__main__":
    sys.exit(main())
