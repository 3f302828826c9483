"""Time and peak memory of export + Core ML conversion of the demo model, per length.

For each length T it measures, each in a fresh subprocess (so peak memory is
the phase's own, not whatever an earlier phase left behind):

- readiness: `pipeline.export.export_model` (prefill + decode export *and*
  their validation against eager) then `pipeline.to_coreml` conversion of
  prefill (length T) and decode, fp32;
- direct: `torch.export.export` of the same two modules,
  `run_decompositions({})`, and `ct.convert` with the same named inputs and
  outputs — the work a user would do by hand, with no validation.

It prints one row per length with both times, the ratio, and peak RSS above
the post-import baseline (sampled every 5 ms with psutil). Both paths count
`run_decompositions` as conversion. With `--repeat N` each cell is the
fastest of N runs (on a shared machine other load only ever adds time).

    .venv/bin/python scripts/bench_export.py [--lengths 64 128 256 512] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class PeakRss:
    """Samples this process's RSS on a thread; `peak_mib` is the max above the start."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.start = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def peak_mib(self) -> float:
        return (self.peak - self.start) / 2**20


def child(mode: str, length: int, checkpoint: str, out_dir: str) -> dict:
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(ROOT))
    import coremltools as ct  # noqa: F401  (imported before the baseline)
    import torch

    from pipeline.adapter import load_adapter
    from pipeline.export import ExportOptions, export_model, for_conversion
    from pipeline.to_coreml import convert_decode, convert_prefill

    adapter = load_adapter({"adapter": "builtin:student", "checkpoint": checkpoint}, ROOT)
    out = Path(out_dir)
    with PeakRss() as mem:
        t0 = time.perf_counter()
        if mode == "readiness":
            bundle = export_model(adapter, ExportOptions(lengths=(length,), primary_length=length))
            t1 = time.perf_counter()
            convert_prefill(for_conversion(bundle.prefill[length]), input_name="input_ids",
                            output_names=adapter.prefill_output_names(), lengths=(length,),
                            default_length=length, precision="fp32", out_path=out / f"r_prefill_{length}.mlpackage")
            convert_decode(for_conversion(bundle.decode), input_specs=bundle.decode_io[0],
                           output_names=adapter.decode_output_names(), cache_range=bundle.cache_range,
                           default_cache=8, precision="fp32", out_path=out / f"r_decode_{length}.mlpackage")
            ok = bundle.primary_ok and bundle.decode_ok
        else:
            t1 = direct(adapter, length, out, torch, ct)
            ok = True
        t2 = time.perf_counter()
    return {"export_s": t1 - t0, "convert_s": t2 - t1, "total_s": t2 - t0, "peak_mib": mem.peak_mib, "ok": ok}


def direct(adapter, length: int, out: Path, torch, ct) -> float:
    """Plain torch.export + ct.convert of prefill (length T) and decode; returns the export end time."""
    import numpy as np

    ids = torch.randint(0, adapter.vocab_size, (1, length), dtype=torch.int32)
    prefill = torch.export.export(adapter.prefill_module(), (ids,))
    n = 2 * adapter.n_layers
    cache = [torch.randn(1, adapter.n_kv_heads, 8, adapter.d_head) for _ in range(n)]
    dim = torch.export.Dim("T_cache", min=1, max=int(adapter.arch["max_seq_len"]) - 1)
    from pipeline.export import decode_dynamic_shapes

    module = adapter.decode_module()
    decode = torch.export.export(module, (ids[:, :1], torch.tensor([8], dtype=torch.int32), *cache),
                                 dynamic_shapes=decode_dynamic_shapes(module, n, dim))
    t1 = time.perf_counter()  # decomposition counts as conversion, as in the readiness path
    prefill, decode = prefill.run_decompositions({}), decode.run_decompositions({})
    ct.convert(prefill, inputs=[ct.TensorType(name="input_ids", shape=(1, length), dtype=np.int32)],
               outputs=[ct.TensorType(name=x) for x in adapter.prefill_output_names()],
               convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
               compute_precision=ct.precision.FLOAT32,
               skip_model_load=True).save(str(out / f"d_prefill_{length}.mlpackage"))
    rng = ct.RangeDim(lower_bound=1, upper_bound=int(adapter.arch["max_seq_len"]) - 1, default=8)
    inputs = [ct.TensorType(name="input_ids", shape=(1, 1), dtype=np.int32),
              ct.TensorType(name="position", shape=(1,), dtype=np.int32)]
    inputs += [ct.TensorType(name=x, shape=(1, adapter.n_kv_heads, rng, adapter.d_head), dtype=np.float32)
               for x in adapter.decode_input_names()[2:]]
    ct.convert(decode, inputs=inputs, outputs=[ct.TensorType(name=x) for x in adapter.decode_output_names()],
               convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
               compute_precision=ct.precision.FLOAT32,
               skip_model_load=True).save(str(out / f"d_decode_{length}.mlpackage"))
    return t1


def run_child(mode: str, length: int, checkpoint: Path, out_dir: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(length), str(checkpoint), str(out_dir)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"{mode} T={length} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def best(runs) -> dict:
    """The fastest run (least disturbed by other load on a shared machine)."""
    return min(runs, key=lambda r: r["total_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the fastest is shown")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, length, checkpoint, out_dir = args.child
        print(json.dumps(child(mode, int(length), checkpoint, out_dir)))
        return
    sys.path.insert(0, str(ROOT))
    from pipeline.demo_assets import build_demo_assets

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-export-"))
    assets = build_demo_assets(work)
    print(f"demo model: {dict(assets.arch)}\n")
    header = (f"{'T':>5} | {'readiness export+validate':>25} {'convert':>8} {'total':>7} {'peak MiB':>9} | "
              f"{'direct export':>13} {'convert':>8} {'total':>7} {'peak MiB':>9} | {'ratio':>5}")
    print(header)
    print("-" * len(header))
    for length in args.lengths:
        ours = best(run_child("readiness", length, assets.checkpoint, work / "bench") for _ in range(args.repeat))
        base = best(run_child("direct", length, assets.checkpoint, work / "bench") for _ in range(args.repeat))
        print(f"{length:>5} | {ours['export_s']:>25.2f} {ours['convert_s']:>8.2f} {ours['total_s']:>7.2f} "
              f"{ours['peak_mib']:>9.0f} | {base['export_s']:>13.2f} {base['convert_s']:>8.2f} "
              f"{base['total_s']:>7.2f} {base['peak_mib']:>9.0f} | {ours['total_s'] / base['total_s']:>5.2f}"
              + ("" if ours["ok"] else "  (validation failed)"))


if __name__ == "__main__":
    main()
