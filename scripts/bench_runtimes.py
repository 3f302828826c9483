"""MIL interpreter and onnxruntime against PyTorch eager on the demo model, per length.

Builds (or reuses) the demo checkpoint and its artifacts, then for every
length T runs prefill on the same seeded ids through PyTorch eager, the MIL
interpreter (fp32 and fp16 packages) and onnxruntime, and prints per length:

- MIL fp32 / fp16 time divided by eager time, and max abs error of logits
  and caches against eager (the design target: <= 10x, fp32 error <= 1e-5);
- onnxruntime time divided by eager time (< 1 means ONNX is faster).

Each time is the fastest of `--repeat` runs, measured side by side in one
process (other load on a shared machine only ever adds time).

    .venv/bin/python scripts/bench_runtimes.py [--lengths 64 128 256 512] [--repeat 5]
                                               [--work-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fastest(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def max_err(ref: dict, got: dict) -> float:
    import numpy as np

    return max(float(np.abs(ref[n] - np.asarray(got[n], np.float32)).max()) for n in ref)


def build(work_dir: Path, lengths: tuple[int, ...]):
    from pipeline.adapter import load_adapter
    from pipeline.artifacts import BuildOptions, build_artifacts
    from pipeline.demo_assets import build_demo_assets

    assets = build_demo_assets(work_dir)
    adapter = load_adapter({"adapter": "builtin:student", "checkpoint": assets.checkpoint}, work_dir)
    options = BuildOptions(lengths=lengths, primary_length=lengths[0], precisions=("fp32", "fp16"),
                           targets=("coreml", "onnx"))
    arts = build_artifacts(adapter, options, work_dir / "artifacts")
    if arts.errors:
        raise SystemExit(f"artifacts failed: {arts.errors}")
    return adapter, arts


def bench(work_dir: Path, lengths: tuple[int, ...], repeat: int) -> list[dict]:
    import numpy as np
    import torch

    from pipeline.runtimes.eager import EagerRuntime
    from pipeline.runtimes.mil_interpreter import MilInterpreter
    from pipeline.runtimes.onnx_runtime import OnnxRuntime

    torch.set_num_threads(1)  # one thread for every runtime: a like-for-like ratio
    adapter, arts = build(work_dir, lengths)
    names = adapter.prefill_output_names()
    eager = EagerRuntime(adapter.prefill_module(), ("input_ids",), names)
    mil = {p: MilInterpreter.load(arts.coreml_package("prefill", p)) for p in ("fp32", "fp16")}
    ort = OnnxRuntime(arts.onnx_model("prefill"), threads=1)
    rows = []
    for length in lengths:
        feed = {"input_ids": np.random.default_rng(length).integers(0, adapter.vocab_size, (1, length),
                                                                    dtype=np.int32)}
        ref = eager.run(feed)
        t_eager = fastest(lambda feed=feed: eager.run(feed), repeat)
        row = {"T": length, "eager_s": round(t_eager, 5)}
        for precision, interp in mil.items():
            row[f"mil_{precision}_ratio"] = round(fastest(lambda f=feed, i=interp: i.run(f), repeat) / t_eager, 2)
            row[f"mil_{precision}_max_abs"] = float(f"{max_err(ref, interp.run(feed)):.3g}")
        row["onnx_ratio"] = round(fastest(lambda feed=feed: ort.run(feed), repeat) / t_eager, 2)
        row["onnx_max_abs"] = float(f"{max_err(ref, ort.run(feed)):.3g}")
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".readiness" / "bench-runtimes")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = bench(args.work_dir, tuple(args.lengths), args.repeat)
    cols = list(rows[0])
    print(" | ".join(f"{c:>16}" for c in cols))
    for row in rows:
        print(" | ".join(f"{row[c]:>16}" for c in cols))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
