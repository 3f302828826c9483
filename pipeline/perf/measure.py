"""The performance figures of one model's converted targets, as JSON-able evidence entries.

    >>> entry = static_figures("coreml", "fp16", [("prefill", p1), ("decode", p2)],
    ...                        lengths=(64, 512), cache_range=(1, 639))               # doctest: +SKIP
    >>> entry["package_bytes"], entry["cost"][0]["macs"], entry["fp16_ops_pct"]      # doctest: +SKIP
    >>> timings = measure_timing(adapter, plans, lengths=(64, 512), cache_range=(1, 639))  # doctest: +SKIP
    >>> timings["onnx_fp32"]["rows"][0]["ms"]["median"]                               # doctest: +SKIP

`static_figures` reads the files only (size on disk, weight bytes by dtype,
MACs and peak activations at every length, fp16 share). `measure_timing`
times prefill, then decode: for each phase it opens that phase's runtime of
every plan (only those: each holds the whole model's weights), calls each
once on its own (a runtime that fails there is reported and left out, the
others go on), and times them together in interleaved rounds
(`pipeline.perf.timing`),
with torch and onnxruntime held to `threads` threads so both are compared on
equal terms and the figures hold on a busy runner. A runtime that cannot run
here (Core ML off macOS) is `not_evaluable` with the reason.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pipeline import heap
from pipeline.perf.decoder_timing import (
    DECODE,
    PREFILL,
    DecoderInputs,
    Runners,
    cell_key,
    decode_growth,
    decoder_cells,
    decoder_inputs,
    timing_rows,
    with_decode,
)
from pipeline.perf.footprint import disk_bytes, model_disk_bytes, onnx_disk_bytes
from pipeline.perf.mil_cost import CostError, MilProgram
from pipeline.perf.onnx_cost import OnnxGraph
from pipeline.perf.timing import SELF_WARMING_S, Trials, run_trials
from pipeline.runtimes.base import NotEvaluable

_THREADS = threading.Lock()  # torch's thread count is process-wide
EAGER = "torch"  # the eager plan's key


def _program(path: Path) -> Any:
    return OnnxGraph.load(path) if Path(path).suffix == ".onnx" else MilProgram.load(path)


def _lengths_for(kind: str, lengths: Sequence[int], cache_range: tuple[int, int], own: int | None) -> list[int]:
    if kind == PREFILL:
        return [own] if own else list(lengths)
    return [t for t in lengths if cache_range[0] <= t <= cache_range[1]]


def static_figures(target: str, precision: str, files: Sequence[tuple[str, Path, int | None]], *,
                   lengths: Sequence[int], cache_range: tuple[int, int]) -> dict[str, Any]:
    """Sizes, weights, compute and fp16 share of one target's files ((kind, path, own length))."""
    entry: dict[str, Any] = {"target": target, "precision": precision, "files": [], "weight_bytes": {},
                             "cost": [], "cost_error": ""}
    float_ops = fp16_ops = 0
    for kind, path, own in files:
        path = Path(path)
        try:
            program = _program(path)
        except CostError as exc:
            entry["files"].append({"file": path.name, "kind": kind, "bytes": disk_bytes(path)})
            entry["cost_error"] = str(exc)
            continue
        size = onnx_disk_bytes(path, program.model) if isinstance(program, OnnxGraph) else disk_bytes(path)
        entry["files"].append({"file": path.name, "kind": kind, "bytes": size})
        for dtype, n in program.weight_bytes().items():
            entry["weight_bytes"][dtype] = entry["weight_bytes"].get(dtype, 0) + n
        try:
            for i, length in enumerate(_lengths_for(kind, lengths, cache_range, own)):
                cost = program.cost(length)
                entry["cost"].append({"phase": kind, "T": length, "macs": cost.macs, "weight_macs": cost.weight_macs,
                                      "activation_macs": cost.activation_macs,
                                      "peak_activation_bytes": cost.peak_activation_bytes,
                                      "uncounted": list(cost.uncounted)})
                if i == 0:  # the share of fp16 ops does not change with the length
                    float_ops, fp16_ops = float_ops + cost.float_ops, fp16_ops + cost.fp16_ops
        except CostError as exc:
            entry["cost_error"] = str(exc)
        del program
        heap.release_dropped(size)  # a loaded MIL program sits in reference cycles: large weights go now
    entry["package_bytes"] = sum(f["bytes"] for f in entry["files"])
    entry["fp16_ops_pct"] = round(100.0 * fp16_ops / float_ops, 2) if float_ops else None
    entry["cost"].sort(key=lambda r: (r["phase"] != PREFILL, r["T"]))
    return entry


@dataclass(frozen=True, slots=True, kw_only=True)
class TimingPlan:
    """What to time for one key: its runtime and files, or why it is not timed here."""

    key: str  # "torch", "onnx_fp32", "coreml_fp16", ...
    runtime: str  # "torch", "onnxruntime", "coreml"
    prefill: Mapping[int | None, Path] | None = None  # by own length (None: every length)
    decode: Path | None = None
    skip_reason: str = ""  # set: not timed here, and why
    skip_status: str = "not_requested"


class _ByLength:
    """Per-length prefill packages behind one `run`."""

    def __init__(self, runtimes: Mapping[int | None, Any]) -> None:
        self._runtimes = dict(runtimes)

    def run(self, inputs: Mapping[str, Any]) -> Any:
        length = int(inputs["input_ids"].shape[1])
        return self._runtimes.get(length, self._runtimes.get(None)).run(inputs)  # type: ignore[union-attr]


REOPEN_BYTES = heap.COLLECT_DROPPED  # a converted prefill this large is closed while another runtime runs


class _Reopening:
    """A converted prefill that is closed (its sessions and their weights freed) while another
    runtime's prefill runs, and opened again, off the clock, ahead of its own next call."""

    def __init__(self, open_: Callable[[], Any]) -> None:
        self._open = open_
        self._runtime: Any = open_()

    def run(self, inputs: Mapping[str, Any]) -> Any:
        self.resume()
        return self._runtime.run(inputs)

    def park(self) -> None:
        if self._runtime is not None:
            self._runtime = None
            heap.release()  # its weights (onnxruntime prepacks them on the heap) leave now

    def resume(self) -> None:
        if self._runtime is None:
            self._runtime = self._open()


class _Residency:
    """Which runtime's weights are in memory in the prefill rounds: only the one about to run.
    Each member is parked (the eager weights' pages dropped, a converted prefill closed) when
    another's call comes, and brought back ahead of its own; both off the clock."""

    def __init__(self, weights: Any) -> None:
        self._members: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {}
        self._resident: set[str] = set()
        if weights is not None and weights.mapped:
            self.add(EAGER, weights.park, weights.resident)

    def add(self, key: str, park: Callable[[], Any], resume: Callable[[], Any]) -> None:
        self._members[key] = (park, resume)
        self._resident.add(key)

    def ready(self, key: str) -> None:
        for other, (park, _) in self._members.items():
            if other != key and other in self._resident:
                park()
                self._resident.discard(other)
        if key in self._members and key not in self._resident:
            self._members[key][1]()
            self._resident.add(key)

    def before(self, key: str, phase: str) -> Callable[[], Any] | None:
        """A prefill cell's `Cell.before`; decode cells (short calls, small activations) get none."""
        return functools.partial(self.ready, key) if phase == PREFILL and self._members else None


def _open(plan: TimingPlan, phase: str, adapter: Any, threads: int, compute_units: str) -> Runners:
    """The plan's runtime for one phase (the other phase's is None)."""
    if plan.runtime == "torch":
        from pipeline.runtimes.eager import EagerRuntime

        if phase == PREFILL:
            runtime: Any = EagerRuntime(adapter.prefill_module(), ("input_ids",), adapter.prefill_output_names())
        else:
            runtime = EagerRuntime(adapter.decode_module(), adapter.decode_input_names(),
                                   adapter.decode_output_names())
        return Runners(key=plan.key, prefill=runtime if phase == PREFILL else None,
                       decode=runtime if phase == DECODE else None)
    if plan.runtime == "onnxruntime":
        from pipeline.runtimes.onnx_runtime import OnnxRuntime

        def opener(p: Path) -> Any:
            return OnnxRuntime(p, threads=threads)
    else:
        from pipeline.runtimes.coreml_runtime import CoreMLRuntime

        def opener(p: Path) -> Any:
            return CoreMLRuntime(p, compute_units=compute_units)
    if phase == PREFILL:
        files = dict(plan.prefill or {})
        if not files:
            return Runners(key=plan.key, prefill=None, decode=None)

        def open_all() -> _ByLength:
            return _ByLength({t: opener(p) for t, p in files.items()})

        big = plan.runtime == "onnxruntime" and sum(model_disk_bytes(p) for p in files.values()) >= REOPEN_BYTES
        return Runners(key=plan.key, prefill=_Reopening(open_all) if big else open_all(), decode=None)
    return Runners(key=plan.key, prefill=None, decode=opener(plan.decode) if plan.decode else None)


def _probe(runners: Runners, inputs: DecoderInputs, long_calls: set[str],
           clock: Callable[[], float] = time.perf_counter) -> str:
    """Run each of a runtime's calls once; the first failure's message, or "".
    Cells whose call took `SELF_WARMING_S` or longer are added to `long_calls`: the probe
    was their warm-up."""
    for phase, table, runtime in ((PREFILL, inputs.prefill, runners.prefill), (DECODE, inputs.decode, runners.decode)):
        for length, feed in table.items():
            if runtime is None:
                continue
            began = clock()
            try:
                runtime.run(feed)
            except Exception as exc:  # this runtime errs; the others are still timed
                return f"{phase} at T={length}: {type(exc).__name__}: {exc}"
            if clock() - began >= SELF_WARMING_S:
                long_calls.add(cell_key(runners.key, phase, length))
    return ""


def measure_timing(adapter: Any, plans: Sequence[TimingPlan], *, lengths: Sequence[int],
                   cache_range: tuple[int, int], warmup: int = 2, trials: int = 15, min_trials: int = 7,
                   max_s: float = 30.0, threads: int = 1, compute_units: str = "ALL", seed: int = 0,
                   clock: Callable[[], float] = time.perf_counter, weights: Any = None) -> dict[str, dict[str, Any]]:
    """The timing entry of every plan, keyed like the plans (see the module docstring).

    Prefill is timed first, then decode, each phase in its own rounds with only its own
    runtimes open: a converted prefill and decode each hold the whole model's weights, and
    every ratio (a runtime against eager, decode at one cache length against another) is
    taken within a phase. In the prefill rounds only the runtime about to run holds its
    weights in memory (`_Residency`): `weights`, the eager model's
    `pipeline.mapped_weights.MappedWeights` when they are mapped, are parked ahead of every
    converted call and read back in ahead of every eager one, and an onnxruntime prefill of
    `REOPEN_BYTES` or more is closed ahead of every other runtime's call and opened again
    ahead of its own, all off the clock; a runtime's cells run back to back within a round,
    the runtimes in counterbalanced order (`pipeline.perf.timing.round_order`), so each is
    readied once per round. A model's longest activations and another runtime's weights are
    then never resident together."""
    out: dict[str, dict[str, Any]] = {}
    inputs = decoder_inputs(adapter, lengths=lengths, cache_range=cache_range, seed=seed, decode=False)
    live = []
    for plan in plans:
        if plan.skip_reason:
            out[plan.key] = {"status": plan.skip_status, "reason": plan.skip_reason, "rows": []}
        else:
            live.append(plan)
    phases = []
    with _THREADS, heap.plain_allocation():  # timed as in a user's process (see `heap.plain_allocation`)
        import torch

        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            for phase in (PREFILL, DECODE):
                if phase == DECODE:  # its caches are made after the prefill rounds, not held through them
                    torch.set_num_threads(before)  # untimed: on the threads the process had
                    inputs = with_decode(adapter, inputs, cache_range)
                    if threads:
                        torch.set_num_threads(threads)
                runners, opened = [], None
                warm: set[str] = set()
                residency = _Residency(weights) if phase == PREFILL else None
                for plan in live:
                    if plan.key in out:  # it failed in an earlier phase
                        continue
                    try:
                        opened = _open(plan, phase, adapter, threads, compute_units)
                    except NotEvaluable as exc:
                        out[plan.key] = {"status": "not_evaluable", "reason": str(exc), "rows": []}
                        continue
                    except Exception as exc:
                        out[plan.key] = {"status": "error", "reason": f"{type(exc).__name__}: {exc}", "rows": []}
                        continue
                    if residency is not None:  # the probe runs at every length too
                        if isinstance(opened.prefill, _Reopening):
                            residency.add(plan.key, opened.prefill.park, opened.prefill.resume)
                        residency.ready(plan.key)
                    failed = _probe(opened, inputs, warm, clock)
                    if failed:
                        out[plan.key] = {"status": "error", "reason": failed, "rows": []}
                    else:
                        runners.append(opened)
                cells = decoder_cells(runners, inputs, residency.before if residency is not None else None)
                phases.append(run_trials(cells, warmup=max(0, warmup - 1), trials=trials, min_trials=min_trials,
                                         max_s=max_s, clock=clock, seed=seed, warm=frozenset(warm)))
                if residency is not None:  # eager runs next (decode's inputs): its weights back in
                    residency.ready(EAGER)
                del runners, opened, residency, cells
                heap.release()  # this phase's sessions (each the whole model's weights) are gone
        finally:
            torch.set_num_threads(before)
    done = Trials(samples={k: v for t in phases for k, v in t.samples.items()},
                  rounds=max(t.rounds for t in phases), capped=any(t.capped for t in phases),
                  elapsed_s=sum(t.elapsed_s for t in phases))
    timed = [p for p in live if p.key not in out]
    keys = [Runners(key=p.key, prefill=None, decode=None) for p in timed]
    rows = timing_rows(done, keys, inputs, reference="torch")
    decode_lengths = sorted(inputs.decode)
    for plan in timed:
        growth = decode_growth(done, plan.key, inputs)
        out[plan.key] = {"status": "measured", "runtime": plan.runtime, "reason": "",
                         "threads": threads, "rounds": done.rounds, "capped": done.capped,
                         "elapsed_s": round(done.elapsed_s, 3),
                         **({"compute_units": compute_units} if plan.runtime == "coreml" else {}),
                         "rows": [r for r in rows if r["runtime"] == plan.key],
                         "decode_growth": None if growth is None else
                         {**growth.to_dict(4), "where": f"decode at T={decode_lengths[-1]} over T={decode_lengths[0]}"}}
    return {p.key: out[p.key] for p in plans}


__all__ = ["CostError", "TimingPlan", "cell_key", "measure_timing", "static_figures"]
