"""Benchmark the hygiene scan: lines per second on a large tree.

    .venv/bin/python scripts/bench_hygiene.py [PATH]

PATH defaults to the installed torch package (about 1.2 million lines of
Python). It is not a git checkout, so the tree is walked (`file_list =
"walk"`). Prints wall-clock and CPU lines per second: on a shared machine
the CPU figure is the one that says what the scan costs; the target is
50,000 lines a second.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gates.code.hygiene import Settings, counts, scan_tree


def default_tree() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        raise SystemExit("torch is not installed: pass a PATH to scan")
    return Path(spec.origin).parent


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path)
    args = parser.parse_args()
    root = args.path or default_tree()
    wall, cpu = time.perf_counter(), cpu_s()
    scan = scan_tree(root, Settings(file_list="walk"))
    wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
    numbers = counts(scan, ())
    print(f"tree: {root}")
    print(f"files: {scan.files}  lines: {scan.lines}  unparsable: {len(scan.unparsable)}")
    print(f"todo_total: {numbers['todo_total']}  stubs: {numbers['stubs']}")
    print(f"wall: {wall:.2f} s  -> {scan.lines / wall:,.0f} lines/s")
    print(f"cpu:  {cpu:.2f} s  -> {scan.lines / cpu:,.0f} lines/s (target >= 50,000)")


if __name__ == "__main__":
    main()
