"""Timing a decoder: prefill at each length and one decode step at each cache length, per runtime.

    >>> runners = [Runners(key="torch", prefill=eager_prefill, decode=eager_decode),
    ...            Runners(key="onnx_fp32", prefill=ort_prefill, decode=ort_decode)]   # doctest: +SKIP
    >>> inputs = decoder_inputs(adapter, lengths=(64, 512), cache_range=(1, 639))        # doctest: +SKIP
    >>> trials = run_trials(decoder_cells(runners, inputs), trials=9)                   # doctest: +SKIP
    >>> rows = timing_rows(trials, runners, inputs, reference="torch")                   # doctest: +SKIP

Prefill at length T is one call on T token ids (seeded random ids: timing
does not depend on which tokens). Decode at cache length L is one step with
the caches the eager prefill at L produced and `position = L`: the cost of
the (L+1)-th token. Every runtime gets the same numpy inputs and is called
through its `run`, as the parity gate calls it.

A row per (runtime, phase, length) holds the median time per call in
milliseconds with its interval, the throughput (prefill: tokens/s over T
tokens; decode: tokens/s of one token per step) and, for every runtime but
the reference, the round-by-round ratio reference time / runtime time
(above 1: faster than eager).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pipeline.perf.timing import Cell, Estimate, Trials, median_interval, paired_ratio

PREFILL, DECODE = "prefill", "decode"


@dataclass(frozen=True, slots=True, kw_only=True)
class Runners:
    """One runtime's prefill and decode (anything with `run(inputs) -> outputs`)."""

    key: str
    prefill: Any
    decode: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class DecoderInputs:
    prefill: Mapping[int, dict[str, np.ndarray]] = field(default_factory=dict)
    decode: Mapping[int, dict[str, np.ndarray]] = field(default_factory=dict)


def decoder_inputs(adapter: Any, *, lengths: Sequence[int], cache_range: tuple[int, int],
                   seed: int = 0, decode: bool = True) -> DecoderInputs:
    """Prefill inputs at every length; decode inputs (`with_decode`) unless `decode` is False."""
    rng = np.random.default_rng(seed)
    prefill = {length: {"input_ids": rng.integers(0, adapter.vocab_size, size=(1, length), dtype=np.int32)}
               for length in lengths}
    inputs = DecoderInputs(prefill=prefill)
    return with_decode(adapter, inputs, cache_range) if decode else inputs


def with_decode(adapter: Any, inputs: DecoderInputs, cache_range: tuple[int, int]) -> DecoderInputs:
    """`inputs` with decode inputs at every prefill length the cache range allows: the last token
    and the caches an eager prefill of the ids produced (a decoder's caches at T=2048 weigh
    tens of MB to GBs: a caller that times prefill first makes them after it)."""
    from pipeline.runtimes.eager import EagerRuntime

    eager = EagerRuntime(adapter.prefill_module(), ("input_ids",), adapter.prefill_output_names())
    cache_in = adapter.decode_input_names()[2:]  # input_ids, position, then the caches (docs/model-interface.md)
    cache_out = adapter.prefill_output_names()[-len(cache_in):] if cache_in else ()
    decode = {}
    for length, feed in inputs.prefill.items():
        if not cache_range[0] <= length <= cache_range[1]:
            continue
        ids = feed["input_ids"]
        outputs = eager.run({"input_ids": ids})
        decode[length] = {"input_ids": ids[:, -1:].copy(), "position": np.array([length], np.int32),
                          **{name: outputs[out] for name, out in zip(cache_in, cache_out)}}
        del outputs
    return DecoderInputs(prefill=inputs.prefill, decode=decode)


def cell_key(runtime: str, phase: str, length: int) -> str:
    return f"{runtime}|{phase}|{length}"


def decoder_cells(runners: Sequence[Runners], inputs: DecoderInputs,
                  before: Callable[[str, str], Callable[[], Any] | None] | None = None) -> list[Cell]:
    """One cell per runtime, phase and length, interleaved by length so each round spans them all;
    `before(runtime key, phase)` gives a cell's `Cell.before` (None: nothing). A cell with a
    `before` is in its runtime's group (its runtime's cells then run back to back in a round)."""
    cells = []
    for phase, table in ((PREFILL, inputs.prefill), (DECODE, inputs.decode)):
        for length, feed in table.items():
            for r in runners:
                runtime = r.prefill if phase == PREFILL else r.decode
                if runtime is not None:
                    ready = before(r.key, phase) if before is not None else None
                    cells.append(Cell(key=cell_key(r.key, phase, length), run=functools.partial(runtime.run, feed),
                                      before=ready, group=r.key if ready is not None else ""))
    return cells


def timing_rows(trials: Trials, runners: Sequence[Runners], inputs: DecoderInputs,
                reference: str | None = "torch") -> list[dict[str, Any]]:
    """One JSON-able row per timed (runtime, phase, length); see the module docstring."""
    rows = []
    for phase, table in ((PREFILL, inputs.prefill), (DECODE, inputs.decode)):
        for length in table:
            for r in runners:
                samples = trials.samples.get(cell_key(r.key, phase, length))
                if not samples:
                    continue
                ms = median_interval(samples).scaled(1000.0)
                tokens = length if phase == PREFILL else 1
                row = {"runtime": r.key, "phase": phase, "T": length, "ms": ms.to_dict(4),
                       "tokens_per_s": ms.inverted(1000.0 * tokens).to_dict(2)}
                ref = trials.samples.get(cell_key(reference, phase, length)) if reference else None
                if ref and r.key != reference:
                    row["vs_eager"] = paired_ratio(ref, samples).to_dict(4)
                rows.append(row)
    return rows


def decode_growth(trials: Trials, runtime: str, inputs: DecoderInputs) -> Estimate | None:
    """Decode time at the longest cache length over the shortest, round by round."""
    lengths = sorted(inputs.decode)
    if len(lengths) < 2:
        return None
    longest = trials.samples.get(cell_key(runtime, DECODE, lengths[-1]))
    shortest = trials.samples.get(cell_key(runtime, DECODE, lengths[0]))
    return paired_ratio(longest, shortest) if longest and shortest else None
