"""Benchmark the mutation gate against mutmut run directly, side by side.

For each fixture project (a pure-Python module and one that imports torch),
in one process and alternating so machine load hits both alike:

- mutmut direct: the `mutmut run` console script in a copy configured
  exactly as the gate configures its own (same source_paths, also_copy,
  tests, isolation), timing only that process (a user's own run would not
  copy anything);
- gate full: `MutationGate.check` from a fresh copy of the project, cache
  empty, everything included (copy, run, reading results, writing the cache);
- gate warm: the same gate again with nothing changed (answered by the cache);
- gate sample: N mutants (default 50) under each seed, cache off; its time
  against the full run, and whether the full score lies in its 95 % interval;
- interval coverage: the gate's own selection replayed for 1,000 seeds over
  the full run's per-mutant verdicts (read back from its cache), counting
  how often the full score lies inside the sample's Wilson interval
  (nominally 95 %; sampling without replacement makes it a little higher).

Targets (DESIGN.md): full <= 1.1x direct; sample of 50 <= 0.25x full with
the full score inside the interval; warm <= 5 % of cold.

    .venv/bin/python scripts/bench_mutation.py [--projects pure torch]
        [--sample 50] [--seeds 1 2 3] [--repeat 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gates.engine.protocol import GateContext
from gates.engine.spec import CodeSpec, CriticalModule, ProjectSpec
from gates.mutation import runner, workspace
from gates.mutation.cache import MutationCache
from gates.mutation.gate import MutationGate, Settings
from gates.mutation.interval import wilson_interval
from gates.mutation.session import Plan, fingerprint, select, test_files

FIXTURES = ROOT / "tests" / "fixtures" / "mutation"
PROJECTS = {"pure": ("bench_pure", "textkit/stats.py", "fork"),
            "torch": ("bench_torch", "tinynn/layers.py", "forkserver"),
            "tiny": ("good", "mathlib/core.py", "fork")}  # a quick check of this script
MAX_CHILDREN = 2


class Clock:
    """Wall time and CPU time (this process plus every child it waited for).

    The machine is shared: wall time swings with other people's load, CPU
    time much less, so both are reported.
    """

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), self._cpu_now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = self._cpu_now() - self._cpu

    @staticmethod
    def _cpu_now() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def fresh_copy(name: str, tmp: Path) -> Path:
    target = Path(tempfile.mkdtemp(dir=tmp)) / name
    shutil.copytree(FIXTURES / name, target, ignore=shutil.ignore_patterns("__pycache__", ".readiness"))
    return target


def gate_context(root: Path, module: str, work: Path, **settings: object) -> GateContext:
    code = CodeSpec(root=root, sources=(module.split("/")[0],), tests=("tests",),
                    critical=(CriticalModule(path=module, tier="2"),))
    return GateContext(spec=ProjectSpec(name=root.name, root=root, code=code),
                       settings=Settings(max_children=MAX_CHILDREN, **settings), work_dir=work)


def run_direct(name: str, module: str, isolation: str, tmp: Path) -> tuple[Clock, float]:
    """(clock, score %) of a plain `mutmut run` on a configured copy."""
    root = fresh_copy(name, tmp)
    config = workspace.RunConfig(targets=(module,), tests=("tests",), process_isolation=isolation)
    copy_root = workspace.build(root, config, parent=tmp)
    log = tmp / f"direct-{name}.log"
    mutmut = Path(sys.executable).parent / "mutmut"
    with Clock() as clock, log.open("w") as out:
        subprocess.run([str(mutmut), "run", "--max-children", str(MAX_CHILDREN)], cwd=copy_root, stdout=out,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True, timeout=3600)
    buckets = [m.bucket for m in runner.read_mutants(copy_root, [module])]
    detected = sum(b in ("killed", "timeout") for b in buckets)
    scored = sum(b in ("killed", "timeout", "survived", "no_tests") for b in buckets)
    return clock, 100.0 * detected / scored


def run_gate(root: Path, module: str, work: Path, **settings: object) -> tuple[Clock, dict]:
    with Clock() as clock:
        result = MutationGate().check(gate_context(root, module, work, **settings))
    if result.score is None:
        raise SystemExit(f"gate did not score {root.name}: {result.status.value}: {result.summary}")
    return clock, dict(result.metrics)


def replayed_coverage(root: Path, module: str, sample: int, seeds: int = 1000) -> float:
    """Share of seeds whose sample interval holds the full score (from the full run's cache)."""
    plan = Plan(root=root, targets=(module,), tests=("tests",))
    cache = MutationCache(root / ".readiness" / "mutation-cache", root=root, fingerprint=fingerprint(plan),
                          test_files=test_files(root, ("tests",)))
    found = cache.lookup(module, (root / module).read_text(encoding="utf-8"))
    buckets = {name: result.bucket for name, result in found.results.items()}
    scoring = ("killed", "timeout", "survived", "no_tests")
    scored = [n for n in found.names or () if buckets.get(n) in scoring]
    full = sum(buckets[n] in ("killed", "timeout") for n in scored) / len(scored)
    inside = 0
    for seed in range(seeds):
        chosen = [n for n in select(found.names or (), sample, seed, (1, 1))[0] if buckets.get(n) in scoring]
        low, high = wilson_interval(sum(buckets[n] in ("killed", "timeout") for n in chosen), len(chosen))
        inside += round(low * 100, 2) <= round(full * 100, 2) <= round(high * 100, 2)
    return inside / seeds


def _gate_full(name: str, module: str, tmp: Path, gate: list, warm_runs: list) -> tuple[Path, dict]:
    """A cold gate run from a fresh copy, then a warm one with nothing changed."""
    root = fresh_copy(name, tmp)
    clock, full = run_gate(root, module, tmp / "work")
    gate.append(clock)
    clock, warm = run_gate(root, module, tmp / "work")
    warm_runs.append(clock)
    if warm["mutants_run"] != 0:
        raise SystemExit(f"warm run re-ran {warm['mutants_run']} mutants")
    return root, full


def bench(project: str, args: argparse.Namespace, tmp: Path) -> dict:
    name, module, isolation = PROJECTS[project]
    direct, gate, warm_runs = [], [], []
    for attempt in range(args.repeat):
        # Alternate which runs first, so a load spike does not always hit the same side.
        if attempt % 2:
            root, full = _gate_full(name, module, tmp, gate, warm_runs)
            clock, direct_score = run_direct(name, module, isolation, tmp)
            direct.append(clock)
        else:
            clock, direct_score = run_direct(name, module, isolation, tmp)
            direct.append(clock)
            root, full = _gate_full(name, module, tmp, gate, warm_runs)
        coverage = replayed_coverage(root, module, args.sample)
    gate_wall = statistics.median(c.wall_s for c in gate)
    gate_cpu = statistics.median(c.cpu_s for c in gate)
    samples = []
    for seed in args.seeds:
        clock, metrics = run_gate(fresh_copy(name, tmp), module, tmp / "work", sample=args.sample, seed=seed,
                                  cache=False)
        inside = metrics["ci_low_pct"] <= full["mutation_score_pct"] <= metrics["ci_high_pct"]
        samples.append({"seed": seed, "seconds": round(clock.wall_s, 2), "cpu_s": round(clock.cpu_s, 2),
                        "score_pct": metrics["mutation_score_pct"],
                        "ci_low_pct": metrics["ci_low_pct"], "ci_high_pct": metrics["ci_high_pct"],
                        "full_inside": inside, "ratio_to_full": round(clock.wall_s / gate_wall, 3),
                        "cpu_ratio_to_full": round(clock.cpu_s / gate_cpu, 3)})
    return {
        "project": project, "module": module, "mutants": full["mutants_total"],
        "direct_s": [round(c.wall_s, 2) for c in direct], "gate_full_s": [round(c.wall_s, 2) for c in gate],
        "direct_cpu_s": [round(c.cpu_s, 2) for c in direct], "gate_full_cpu_s": [round(c.cpu_s, 2) for c in gate],
        "gate_warm_s": [round(c.wall_s, 3) for c in warm_runs],
        "full_ratio": round(gate_wall / statistics.median(c.wall_s for c in direct), 3),
        "full_ratio_min": round(min(c.wall_s for c in gate) / min(c.wall_s for c in direct), 3),
        "full_cpu_ratio": round(gate_cpu / statistics.median(c.cpu_s for c in direct), 3),
        "warm_ratio": round(statistics.median(c.wall_s for c in warm_runs) / gate_wall, 4),
        "direct_score_pct": round(direct_score, 2), "gate_score_pct": full["mutation_score_pct"],
        "samples": samples, "replayed_interval_coverage": coverage,
    }


def print_report(rows: list[dict], sample: int) -> None:
    for row in rows:
        print(f"\n{row['project']}: {row['module']} ({row['mutants']} mutants)")
        print(f"  score: mutmut direct {row['direct_score_pct']:.2f} %, gate {row['gate_score_pct']:.2f} %")
        print(f"  full run: gate {row['gate_full_s']} s vs mutmut {row['direct_s']} s "
              f"-> {row['full_ratio']:.3f}x median, {row['full_ratio_min']:.3f}x best (target <= 1.1x)")
        print(f"  full run CPU: gate {row['gate_full_cpu_s']} s vs mutmut {row['direct_cpu_s']} s "
              f"-> {row['full_cpu_ratio']:.3f}x")
        print(f"  warm re-run: {row['gate_warm_s']} s -> {100 * row['warm_ratio']:.2f} % of cold (target <= 5 %)")
        print(f"  interval coverage replayed over 1000 seeds: {100 * row['replayed_interval_coverage']:.1f} % "
              "(nominal 95 %)")
        for s in row["samples"]:
            print(f"  sample {sample} seed {s['seed']}: {s['seconds']} s -> {s['ratio_to_full']:.3f}x of full, "
                  f"CPU {s['cpu_ratio_to_full']:.3f}x (target <= 0.25x); {s['score_pct']:.1f} % "
                  f"in [{s['ci_low_pct']:.1f}, {s['ci_high_pct']:.1f}], "
                  f"full score {'inside' if s['full_inside'] else 'OUTSIDE'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", nargs="+", choices=sorted(PROJECTS), default=["pure", "torch"])
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-mutation-") as tmp:
        rows = [bench(project, args, Path(tmp)) for project in args.projects]
    print_report(rows, args.sample)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
