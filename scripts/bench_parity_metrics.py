"""Parity metrics of one logits output: `compare` against the whole-tensor numpy formulas.

The parity gate compares every output of every run with its reference; at a
125M decoder's T=2048 one logits output is [2048, 32000]. This times
`pipeline.parity.metrics.compare(..., logits=True)` and the metrics written
out over the whole tensor at once in numpy (float64, as the module docstring
defines them: the alternative), each in its own child process under
Readiness's allocator settings (`pipeline.heap.configure`), and prints:

- seconds of each (fastest of `--repeat`) and their ratio;
- the peak resident MB each added on top of the two float32 inputs;
- the largest relative difference between the two sets of figures.

    .venv/bin/python scripts/bench_parity_metrics.py [--rows 2048] [--vocab 32000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
import numpy as np
import torch  # loaded in every assessment before parity runs: not part of either figure
sys.path.insert(0, sys.argv[1])
from pipeline import heap
heap.configure()
from pipeline.parity.metrics import compare
from tests.pipeline.parity.whole_tensor import whole_tensor_metrics

which, rows, vocab, repeat = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(0)
ref = rng.standard_normal((1, rows, vocab), dtype=np.float32) * 3
cand = ref + rng.standard_normal(ref.shape, dtype=np.float32) * np.float32(1e-2)
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
base = rss_mb()
fn = (lambda: compare(ref, cand, logits=True)) if which == "compare" else (lambda: whole_tensor_metrics(ref, cand))
best = float("inf")
for _ in range(repeat):
    start = time.perf_counter()
    figures = fn()
    best = min(best, time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": best, "added_mb": peak - base,
                  "figures": {k: float(v) for k, v in figures.items() if k not in ("nan_count", "inf_count")}}))
"""


def run(which: str, rows: int, vocab: int, repeat: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), which, str(rows), str(vocab), str(repeat)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ours = run("compare", args.rows, args.vocab, args.repeat)
    numpy_whole = run("whole", args.rows, args.vocab, args.repeat)
    differs = max(abs(ours["figures"][k] - v) / max(abs(v), 1e-300) for k, v in numpy_whole["figures"].items())
    print(f"logits [{args.rows}, {args.vocab}] float32, fastest of {args.repeat}")
    print(f"{'':24}{'seconds':>10}{'peak +MB':>10}")
    print(f"{'compare (blocks, torch)':24}{ours['seconds']:10.2f}{ours['added_mb']:10.0f}")
    print(f"{'whole tensor (numpy)':24}{numpy_whole['seconds']:10.2f}{numpy_whole['added_mb']:10.0f}")
    print(f"time ratio whole / compare   {numpy_whole['seconds'] / ours['seconds']:.2f}")
    print(f"largest relative difference  {differs:.1e} (figures are reported to 6 significant digits)")


if __name__ == "__main__":
    main()
