"""Benchmark `readiness demo`: cold run, warm re-run, peak memory.

Targets (DESIGN.md): cold <= 3 minutes on 2 cores with peak memory <= 2 GiB;
a warm re-run with nothing changed <= 5 % of the cold run. Both runs are
measured here, side by side, in fresh processes:

    python scripts/bench_demo.py [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_demo(work: Path, out: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB of the slowest-growing child tree member, exit code)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "readiness.cli", "demo", "--work", str(work), "-o", str(out)],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr[-3000:])
    return wall, max(peak_kib, before) / 1024, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a fresh temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="readiness-bench-") as tmp:
        work = args.work or Path(tmp) / "work"
        cold_s, cold_mib, cold_rc = run_demo(work, Path(tmp) / "cold")
        warm_s, warm_mib, warm_rc = run_demo(work, Path(tmp) / "warm")
    print(f"cold run : {cold_s:7.1f} s  exit {cold_rc}  peak RSS {cold_mib:7.0f} MiB  (target <= 180 s, <= 2048 MiB)")
    print(f"warm run : {warm_s:7.1f} s  exit {warm_rc}")
    print(f"warm/cold: {warm_s / cold_s:7.3f}   (target <= 0.05)")
    print(f"cpu cores: {os.cpu_count()}  load average {os.getloadavg()[0]:.1f} "
          "(numbers are only comparable on an idle machine)")
    return 0 if cold_rc == 0 and warm_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
