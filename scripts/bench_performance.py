"""Benchmark the performance gate's timing against onnxruntime and torch called directly.

The gate's decode figure for onnxruntime and PyTorch eager must be what a
user measures calling the runtime directly. Both are measured here, side by
side, in one process, on the demo model's decode step at every cache length:
the gate's `pipeline.perf.measure.measure_timing` (interleaved rounds,
median) against `timeit` around `InferenceSession.run` and the eager
module's forward (best-of-N medians), with the same thread count:

    python scripts/bench_performance.py [--work DIR] [--repeat 15]

It prints the two medians per runtime and length and their ratio (target:
0.8-1.25; the gate adds only the numpy-to-tensor conversion every runtime
call pays). Tests never assert on these numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def direct_ms(fn, repeat: int) -> float:
    fn()
    return 1000 * statistics.median(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    import numpy as np
    import onnxruntime as ort
    import torch

    from pipeline.adapter import StudentAdapter
    from pipeline.artifacts import BuildOptions, build_artifacts
    from pipeline.demo_assets import build_demo_assets
    from pipeline.perf.decoder_timing import decoder_inputs
    from pipeline.perf.measure import TimingPlan, measure_timing

    with tempfile.TemporaryDirectory(prefix="readiness-bench-perf-") as tmp:
        work = args.work or Path(tmp)
        assets = build_demo_assets(work / "model", seed=0)
        adapter = StudentAdapter.from_checkpoint(assets.checkpoint)
        lengths = (64, 128, 256, 512)
        arts = build_artifacts(adapter, BuildOptions(lengths=lengths, targets=("onnx",), precisions=("fp32",)),
                               work / "artifacts")
        cache_range = arts.export.cache_range
        plans = [TimingPlan(key="torch", runtime="torch"),
                 TimingPlan(key="onnx_fp32", runtime="onnxruntime", prefill={None: arts.onnx_model("prefill")},
                            decode=arts.onnx_model("decode"))]
        gate = measure_timing(adapter, plans, lengths=lengths, cache_range=cache_range, trials=args.repeat,
                              min_trials=args.repeat, threads=1)
        inputs = decoder_inputs(adapter, lengths=lengths, cache_range=cache_range)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(arts.onnx_model("decode")), options, providers=["CPUExecutionProvider"])
        torch.set_num_threads(1)
        module = adapter.decode_module()
        names = adapter.decode_input_names()
        print(f"{'runtime':10} {'T':>4} {'gate ms':>9} {'direct ms':>9} {'gate/direct':>11}")
        for length in lengths:
            feed = inputs.decode[length]
            tensors = [torch.from_numpy(np.ascontiguousarray(feed[n])) for n in names]

            def eager(tensors: list[torch.Tensor] = tensors) -> None:
                with torch.inference_mode():
                    module(*tensors)

            def onnx(feed: dict = feed) -> None:
                session.run(None, feed)

            direct = {"onnx_fp32": direct_ms(onnx, args.repeat),
                      "torch": direct_ms(eager, args.repeat)}
            for key in ("torch", "onnx_fp32"):
                row = next(r for r in gate[key]["rows"] if r["phase"] == "decode" and r["T"] == length)
                ms = row["ms"]["median"]
                print(f"{key:10} {length:>4} {ms:9.4f} {direct[key]:9.4f} {ms / direct[key]:11.2f}")
    print(f"cpu cores: {os.cpu_count()}  load average {os.getloadavg()[0]:.1f} (comparable only on an idle machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
