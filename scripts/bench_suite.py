"""Benchmark suite_health + coverage against one direct pytest-cov run.

    .venv/bin/python scripts/bench_suite.py [--reps 5] [--scale 1] [--project PATH --sources PKG]

Runs, alternately and on the same copy of the project, (a) `python -m pytest
--cov=<sources> --cov-branch --junitxml=...` directly and (b) the
suite_health gate followed by the coverage gate, which together run the
suite once and read its JUnit, coverage data and streamed log. Prints the
median time of each and their ratio (target <= 1.1x). `--scale N` copies the
example's test modules N times, for a longer suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gates.code.coverage import CoverageGate
from gates.code.coverage import Settings as CoverageSettings
from gates.code.suite_health import Settings as HealthSettings
from gates.code.suite_health import SuiteHealthGate
from gates.engine.protocol import GateContext
from gates.engine.spec import CodeSpec, ProjectSpec

EXAMPLE = REPO / "readiness" / "data" / "example_project"


def prepare(project: Path, scale: int, into: Path) -> Path:
    root = into / "project"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns("__pycache__", ".coverage*"))
    for copy in range(1, scale):
        for test in sorted((root / "tests").rglob("test_*.py")):
            shutil.copy(test, test.with_name(f"{test.stem}_copy{copy}.py"))
    return root


def direct(root: Path, sources: list[str], work: Path) -> float:
    argv = [sys.executable, "-m", "pytest", *[f"--cov={s}" for s in sources], "--cov-branch",
            f"--junitxml={work / 'direct.xml'}", "tests"]
    env = {**os.environ, "COVERAGE_FILE": str(work / "direct.coverage")}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=root, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"direct pytest run failed with exit code {done.returncode}")
    return elapsed


def gates(root: Path, sources: list[str], work: Path) -> float:
    spec = ProjectSpec(name="bench", root=root, code=CodeSpec(root=root, sources=tuple(sources)))
    started = time.perf_counter()
    health = SuiteHealthGate().check(GateContext(spec=spec, settings=HealthSettings(), work_dir=work))
    coverage = CoverageGate().check(GateContext(spec=spec, settings=CoverageSettings(), work_dir=work,
                                                results={"suite_health": health}))
    elapsed = time.perf_counter() - started
    if not (health.status.passed and coverage.status.passed):
        raise SystemExit(f"gates did not pass: {health.summary} / {coverage.summary}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--project", type=Path, default=EXAMPLE)
    parser.add_argument("--sources", nargs="+", default=["textstats"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = prepare(args.project, args.scale, Path(tmp))
        work = Path(tmp) / "work"
        work.mkdir()
        direct(root, args.sources, work)  # warm caches (bytecode, page cache) for both
        plain, gated = [], []
        for _ in range(args.reps):
            plain.append(direct(root, args.sources, work))
            gated.append(gates(root, args.sources, work))
    a, b = statistics.median(plain), statistics.median(gated)
    print(f"project: {args.project} (scale {args.scale}), {args.reps} alternating runs each")
    print(f"direct pytest --cov --cov-branch --junitxml: median {a:.2f} s  {[round(x, 2) for x in plain]}")
    print(f"suite_health + coverage gates:              median {b:.2f} s  {[round(x, 2) for x in gated]}")
    print(f"ratio: {b / a:.2f}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
