"""Running one reference and one candidate side by side, prefill and decode.

The parity gate needs the same comparisons for every target (Core ML through
Core ML or the MIL interpreter, ONNX through onnxruntime); this module holds
them, free of gate machinery:

    >>> ids = input_ids("random", 64, vocab=512, seed=0)
    >>> rows = prefill_comparisons(torch_prefill, mil_prefill, ids, "random", bounds)
    >>> rows += decode_comparisons(torch_prefill, torch_decode, mil_decode, ids, "random",
    ...                            bounds, steps=3, names=names)

Decode starts from the *reference* prefill caches, so a decode defect is not
blamed on prefill, then threads each side's own caches through `steps`
greedy steps (the token fed to both is the reference's arg-max). Every
output of every step is one `Comparison`; `worst` folds them per
(phase, length, output) for the per-length table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from pipeline.parity.metrics import DIRECTIONS, compare, judge

if TYPE_CHECKING:
    from pipeline.adapter import ModelAdapter

Bounds = Callable[[str], Mapping[str, float]]  # output name -> thresholds


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeNames:
    """The adapter's decode and prefill names (see docs/model-interface.md)."""

    prefill_outputs: tuple[str, ...]
    decode_inputs: tuple[str, ...]
    decode_outputs: tuple[str, ...]

    @property
    def cache_inputs(self) -> tuple[str, ...]:
        return self.decode_inputs[2:]


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """One output of one run: where it came from, every metric, every miss."""

    phase: str  # "prefill" or "decode"
    source: str  # "text" or "random"
    length: int  # prompt length T
    step: int  # decode step (0 for prefill)
    output: str
    metrics: Mapping[str, float]
    misses: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.misses


class CachedRuntime:
    """A reference runtime that remembers its outputs by input content.

    Every target is compared on the same inputs, and decode starts from the
    reference's own caches, so the reference's runs repeat exactly across
    targets: computing them once keeps the gate's cost in the candidates.
    With `spill` (a folder) the outputs are kept there as .npy files and read
    back memory-mapped, so memory holds only the outputs in use, not those of
    every length (at T=2048 a 32k-vocabulary model's logits are 260 MB).
    """

    def __init__(self, runtime: Any, spill: Path | None = None) -> None:
        self.runtime = runtime
        self.name = getattr(runtime, "name", "reference")
        self._spill = spill
        self._seen: dict[Any, dict[str, np.ndarray] | tuple[Path, list[str]]] = {}
        self.primed: set[Any] = set()  # what `targets.prime_references` already ran through it

    @property
    def spills(self) -> bool:
        """Whether outputs are kept on disk (computing one ahead of its use then costs no memory)."""
        return self._spill is not None

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import hashlib

        key = tuple((name, np.asarray(v).shape, np.asarray(v).dtype.str,
                     hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest())
                    for name, v in sorted(inputs.items()))
        if key not in self._seen:
            outputs = self.runtime.run(inputs)
            if self._spill is None:
                self._seen[key] = outputs
                return outputs
            stem = self._spill / f"ref_{len(self._seen)}"
            stem.mkdir(parents=True)
            for i, value in enumerate(outputs.values()):
                np.save(stem / f"{i}.npy", np.asarray(value), allow_pickle=False)
            self._seen[key] = (stem, list(outputs))
            return outputs
        seen = self._seen[key]
        if isinstance(seen, dict):
            return seen
        stem, names = seen
        return {name: np.load(stem / f"{i}.npy", mmap_mode="r") for i, name in enumerate(names)}


def input_ids(source: str, length: int, *, vocab: int, seed: int,
              text_ids: Sequence[int] = ()) -> np.ndarray:
    """int32 [1, length]: real text (tiled to length) or seeded random ids."""
    if source == "text":
        if not text_ids:
            raise ValueError("text inputs need token ids from the tokenizer")
        reps = -(-length // len(text_ids))
        return np.asarray((list(text_ids) * reps)[:length], np.int32)[None, :]
    if source == "random":
        rng = np.random.default_rng(seed * 100_003 + length)
        return rng.integers(0, vocab, size=(1, length), dtype=np.int32)
    raise ValueError(f"unknown input source {source!r} (known: text, random)")


def _compare_all(ref: Mapping[str, np.ndarray], cand: Mapping[str, np.ndarray],
                 outputs: Sequence[str], bounds: Bounds, labels: np.ndarray | None = None,
                 **where: Any) -> list[Comparison]:
    rows = []
    for name in outputs:
        if name not in cand:
            rows.append(Comparison(output=name, metrics={}, misses=(f"output {name!r} is missing",),
                                   **where))
            continue
        metrics = compare(ref[name], np.asarray(cand[name], np.float32),
                          logits=name.startswith("logits"))
        finite = "kl" in metrics and not (metrics["nan_count"] or metrics["inf_count"])
        if labels is not None and name.startswith("logits") and finite:
            from pipeline.parity.lossy import perplexity_delta_pct

            delta = perplexity_delta_pct(ref[name], np.asarray(cand[name]), labels)
            metrics["ppl_delta_pct"] = float(f"{delta:.6g}")  # six significant digits, as compare()
        rows.append(Comparison(output=name, metrics=metrics,
                               misses=tuple(judge(metrics, bounds(name))), **where))
    return rows


def prefill_comparisons(reference: Any, candidate: Any, ids: np.ndarray, source: str,
                        bounds: Bounds, outputs: Sequence[str] | None = None) -> list[Comparison]:
    """Every prefill output of `candidate` against `reference` on `ids`; on real text, the
    logits also get the perplexity difference (`pipeline.parity.lossy`)."""
    ref = reference.run({"input_ids": ids})
    cand = candidate.run({"input_ids": ids})
    return _compare_all(ref, cand, outputs or tuple(ref), bounds, labels=ids if source == "text" else None,
                        phase="prefill", source=source, length=int(ids.shape[1]), step=0)


def chain_comparison(ref_logits: Sequence[np.ndarray], cand_logits: Sequence[np.ndarray], bounds: Bounds,
                     output: str, **where: Any) -> Comparison:
    """The logits of every chained step as one run of positions, for a lossy target.

    A compressed model flips some next tokens by design, so top-1 agreement is
    a rate over many positions (the prefill's), not a pass/fail per decode step:
    the chain is judged on its mean KL and on non-finite values."""
    ref = np.concatenate([np.asarray(r, np.float32) for r in ref_logits], axis=-2)
    cand = np.concatenate([np.asarray(c, np.float32) for c in cand_logits], axis=-2)
    metrics = compare(ref, cand, logits=True)
    chain_bounds = {k: v for k, v in bounds(output).items() if k not in ("top1_pct", "top5_pct")}
    return Comparison(output=output, metrics=metrics, misses=tuple(judge(metrics, chain_bounds)), **where)


def reference_steps(prefill: Mapping[str, np.ndarray], ref_decode: Any, length: int, *, steps: int,
                    names: DecodeNames) -> Iterator[tuple[int, dict[str, np.ndarray], Mapping[str, np.ndarray]]]:
    """The reference's own greedy decode after its `prefill` outputs of a `length`-token prompt:
    per step, its number, the token and position fed, and the reference's outputs (its caches
    threaded, its arg-max fed). It depends on the reference alone, so a `CachedRuntime` can
    run it ahead of any candidate."""
    caches = {n: prefill[n] for n in names.cache_inputs}
    token = int(np.argmax(prefill["logits"][0, -1]))
    position = length
    for step in range(1, steps + 1):
        head = {"input_ids": np.array([[token]], np.int32), "position": np.array([position], np.int32)}
        ref = ref_decode.run({**head, **caches})
        yield step, head, ref
        caches = {i: ref[o] for i, o in zip(names.cache_inputs, names.decode_outputs[1:])}
        token = int(np.argmax(ref["logits"][0, -1]))
        position += 1


def decode_comparisons(ref_prefill: Any, ref_decode: Any, cand_decode: Any, ids: np.ndarray,
                       source: str, bounds: Bounds, *, steps: int, names: DecodeNames,
                       chain: bool = False) -> list[Comparison]:
    """`steps` greedy decode steps after a reference prefill of `ids`, caches threaded.

    With `chain` (lossy targets) the logits of all steps are one comparison
    (`chain_comparison`); every other output is still compared step by step."""
    prefill = ref_prefill.run({"input_ids": ids})
    cand_caches = {n: prefill[n].copy() for n in names.cache_inputs}
    rows: list[Comparison] = []
    logits_name = names.decode_outputs[0]
    chained: tuple[list, list] = ([], [])
    for step, head, ref in reference_steps(prefill, ref_decode, int(ids.shape[1]), steps=steps, names=names):
        cand = cand_decode.run({**head, **cand_caches})
        outputs = names.decode_outputs
        if chain and logits_name in cand:
            chained[0].append(ref[logits_name])
            chained[1].append(cand[logits_name])
            outputs = outputs[1:]
        rows += _compare_all(ref, cand, outputs, bounds, phase="decode", source=source,
                             length=int(ids.shape[1]), step=step)
        cand_caches = {i: cand[o] for i, o in zip(names.cache_inputs, names.decode_outputs[1:]) if o in cand}
        if len(cand_caches) != len(names.cache_inputs):
            break  # a missing cache output is already a miss; nothing to thread
    if chained[0]:
        rows.append(chain_comparison(*chained, bounds, logits_name, phase="decode", source=source,
                                     length=int(ids.shape[1]), step=len(chained[0])))
    return rows


def _worse(a: float | None, b: float | None, direction: str) -> float | None:
    if a is None or (isinstance(a, float) and np.isnan(a)):
        return b if a is None else a
    if b is None or (isinstance(b, float) and np.isnan(b)):
        return b if b is not None else a
    return max(a, b) if direction == "max" else min(a, b)


class Run(Protocol):
    """What `worst` reads of a comparison: a decoder's `Comparison` or a module's (`module_targets`)."""

    @property
    def source(self) -> str: ...

    @property
    def step(self) -> int: ...

    @property
    def output(self) -> str: ...

    @property
    def metrics(self) -> Mapping[str, float]: ...

    @property
    def misses(self) -> tuple[str, ...]: ...


R = TypeVar("R", bound=Run)


def worst(rows: Sequence[R], group: Callable[[R], Any]) -> dict[Any, dict[str, Any]]:
    """Per group key: the worst value of every metric, the misses, and how many runs."""
    folded: dict[Any, dict[str, Any]] = {}
    for row in rows:
        entry = folded.setdefault(group(row), {"metrics": {}, "misses": [], "runs": 0,
                                               "outputs": set()})
        entry["runs"] += 1
        entry["outputs"].add(row.output)
        for name, value in row.metrics.items():
            if name in ("nan_count", "inf_count"):
                entry["metrics"][name] = entry["metrics"].get(name, 0) + value
            else:
                entry["metrics"][name] = _worse(entry["metrics"].get(name), value, DIRECTIONS[name])
        entry["misses"] += [f"{row.output} ({row.source}, step {row.step}): {m}" if row.step
                            else f"{row.output} ({row.source}): {m}" for m in row.misses]
    return folded


def decode_inputs_after_prefill(adapter: ModelAdapter, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The first decode step's inputs after a reference prefill of `ids`."""
    from pipeline.runtimes.eager import EagerRuntime

    prefill = EagerRuntime(adapter.prefill_module(), ("input_ids",), adapter.prefill_output_names())
    out = prefill.run({"input_ids": ids})
    names = adapter.decode_input_names()
    token = int(np.argmax(out["logits"][0, -1]))
    return {"input_ids": np.array([[token]], np.int32), "position": np.array([ids.shape[1]], np.int32),
            **{n: out[n] for n in names[2:]}}
