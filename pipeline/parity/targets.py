"""Checking one converted target against PyTorch: every length, prefill and decode.

`run_target` opens the target's runtimes from a `pipeline.artifacts.
ModelArtifacts`, runs `pipeline.parity.cases` on every enumerated length and
input source, folds the comparisons into per-length rows and, for a failing
Core ML target under the MIL interpreter, localises the failure to a MIL op.
It returns a plain JSON-able dict (the gate's evidence entry):

    {"target": "coreml", "precision": "fp16", "runtime": "mil",
     "status": "pass" | "fail" | "not_evaluable" | "error", "reason": "...",
     "comparisons": 96, "failed": 0, "rows": [...], "localisation": [...], "files": [...]}

A runtime that cannot run here becomes `not_evaluable` with the reason; any
other exception becomes `error` for this target only, so the others still run.
"""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pipeline import heap
from pipeline.parity.cases import (
    CachedRuntime,
    Comparison,
    DecodeNames,
    decode_comparisons,
    input_ids,
    prefill_comparisons,
    reference_steps,
    worst,
)
from pipeline.parity.metrics import output_group, thresholds_for
from pipeline.runtimes.base import NotEvaluable

if TYPE_CHECKING:
    from pipeline.adapter import ModelAdapter


class TargetStatus(enum.StrEnum):
    """A target's (and a row's) outcome; the values are the gate statuses they become."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_EVALUABLE = "not_evaluable"


ROW_METRICS = ("max_abs", "max_rel", "mean_abs", "psnr_db", "cosine", "top1_pct", "top5_pct", "kl",
               "ppl_delta_pct", "greedy_match_pct", "nan_count", "inf_count")
STATEFUL_TARGET = "coreml_stateful"


class Programs(dict):
    """The target's programs by path, opened on first use; a released one (None) is opened
    again when asked for, so a finished length holds no memory until a localiser needs it."""

    def __init__(self, opener: Any) -> None:
        super().__init__()
        self._opener = opener

    def __getitem__(self, path: Any) -> Any:
        runtime = super().get(path)
        if runtime is None:
            runtime = self._opener(path)
            super().__setitem__(path, runtime)
        return runtime

    def get(self, path: Any, default: Any = None) -> Any:
        return self[path] if path in self else default

    def release(self, path: Any) -> None:
        if super().get(path) is not None:
            from pipeline.perf.footprint import model_disk_bytes

            super().__setitem__(path, None)
            # a large program's weights go back to the OS now, not at the next collection
            heap.release_dropped(model_disk_bytes(path))

    def close(self) -> None:
        """Let every program go (the paths stay: they are the evidence's file list)."""
        for path in list(self):
            self.release(path)


def _open(target: str, runtime: str, path: Any) -> Any:
    if target == "onnx":
        from pipeline.runtimes.onnx_runtime import OnnxRuntime

        return OnnxRuntime(path)
    from pipeline.runtimes import open_coreml

    return open_coreml(path, runtime)


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def fold_rows(comparisons: Sequence[Comparison], runtime: str) -> list[dict[str, Any]]:
    """Per (phase, T, output group): worst metrics over sources and steps."""
    folded = worst(comparisons, lambda c: (c.phase, c.length, output_group(c.output)))
    rows = []
    for (phase, length, group), entry in sorted(folded.items(), key=lambda kv: (kv[0][0] != "prefill",
                                                                               kv[0][1], kv[0][2])):
        metrics = {k: _json_number(entry["metrics"].get(k)) for k in ROW_METRICS}
        rows.append({"runtime": runtime, "phase": phase, "T": length, "output": group,
                     "runs": entry["runs"], **metrics,
                     "status": TargetStatus.FAIL if entry["misses"] else TargetStatus.PASS,
                     "misses": entry["misses"][:20]})
    return rows


def references(adapter: ModelAdapter, spill: Path | None = None) -> tuple[Any, Any]:
    """PyTorch eager prefill and decode, cached so several targets share their runs
    (in `spill`, a folder, when given: see `CachedRuntime`)."""
    from pipeline.runtimes.eager import EagerRuntime

    prefill = EagerRuntime(adapter.prefill_module(), ("input_ids",), adapter.prefill_output_names())
    decode = EagerRuntime(adapter.decode_module(), adapter.decode_input_names(), adapter.decode_output_names())
    return (CachedRuntime(prefill, spill and spill / "prefill"),
            CachedRuntime(decode, spill and spill / "decode"))


def prime_references(refs: tuple[Any, Any], adapter: ModelAdapter, arts: Any, *, sources: Sequence[str],
                     seed: int, text_ids: Sequence[int], decode_steps: int) -> None:
    """Run the reference's prefill at every length and its decode after each (cached by `refs`,
    kept on disk by a spilling one) before any converted program opens: an eager pass at the
    longest length and a program's weights never share memory, and once primed the eager
    model's weights may leave memory (`pipeline.mapped_weights`) while the programs run."""
    ref_prefill, ref_decode = refs
    low, high = arts.export.cache_range
    done = getattr(ref_prefill, "primed", None)  # a CachedRuntime's: the targets after the first skip it
    key = (tuple(arts.options.lengths), tuple(sources), seed, tuple(text_ids), decode_steps)
    if done is not None and key in done:
        return
    for length in arts.options.lengths:
        for source in sources:
            prefill = ref_prefill.run({"input_ids": input_ids(source, length, vocab=adapter.vocab_size, seed=seed,
                                                              text_ids=text_ids)})
            if low <= length and length + decode_steps <= high:
                for _ in reference_steps(prefill, ref_decode, length, steps=decode_steps, names=_names(adapter)):
                    pass
    if done is not None:
        done.add(key)


def run_target(plan: Any, adapter: ModelAdapter, arts: Any, *, thresholds: dict, decode_steps: int, seed: int,
               sources: Sequence[str], text_ids: Sequence[int], localise: bool,
               localise_tol: dict, refs: tuple[Any, Any] | None = None,
               generate_tokens: int = 0, park: Callable[[], Any] | None = None) -> dict[str, Any]:
    """The evidence entry for one target (see the module docstring). `park`, when given, is
    called once a spilling reference is primed, before the first program opens (the gate
    parks the eager model's weights with it: `pipeline.mapped_weights`)."""
    entry: dict[str, Any] = {"target": plan.target, "precision": plan.precision, "runtime": plan.runtime,
                             "status": TargetStatus.ERROR, "reason": "", "comparisons": 0, "failed": 0,
                             "rows": [], "localisation": [], "files": []}
    try:
        comparisons, opened = _compare_target(plan, adapter, arts, refs or references(adapter), thresholds,
                                              decode_steps, seed, sources, text_ids, generate_tokens, park)
    except NotEvaluable as exc:
        return {**entry, "status": TargetStatus.NOT_EVALUABLE, "reason": str(exc)}
    except Exception as exc:  # this target errs; the others still run
        return {**entry, "reason": f"{type(exc).__name__}: {exc}"}
    failed = [c for c in comparisons if not c.passed]
    entry.update(status=TargetStatus.FAIL if failed else TargetStatus.PASS, comparisons=len(comparisons),
                 failed=len(failed),
                 rows=fold_rows(comparisons, plan.runtime), files=[str(p) for p in opened])
    if not comparisons:
        entry.update(status=TargetStatus.ERROR, reason="nothing was compared")
    if failed and localise and plan.runtime == "mil":
        try:
            entry["localisation"] = _localise(plan, failed[0], adapter, arts, opened, localise_tol, seed,
                                              text_ids, refs or references(adapter))
        except Exception as exc:  # localising is a help, never the verdict
            entry["localisation"] = [{"kind": "unavailable", "detail": f"{type(exc).__name__}: {exc}"}]
    opened.close()
    return entry


def _localise(plan, failure, adapter, arts, opened, localise_tol, seed, text_ids, refs) -> list[dict]:
    from pipeline.compression import KINDS

    if plan.target == STATEFUL_TARGET:
        from pipeline.parity.lossy_localise import LOSSY_LOCALISE_TOL, weight_findings
        from pipeline.parity.stateful import localise_state

        ids = input_ids(failure.source.split("+")[0], failure.length, vocab=adapter.vocab_size, seed=seed,
                        text_ids=text_ids)
        interpreter = opened[arts.coreml_package("decode_stateful", plan.precision)]
        found = []
        if plan.precision in KINDS:  # a weight the compression does not explain comes first
            parameters = {k: v.detach().float().numpy() for k, v in adapter.module.state_dict().items()}
            found = weight_findings(interpreter.weights, parameters, plan.precision)
        tol = float(localise_tol.get(plan.precision, LOSSY_LOCALISE_TOL.get(plan.precision, 5e-2)))
        found = found or localise_state(refs[0], refs[1], interpreter, ids, _names(adapter), tol)
        return [{"phase": "decode", "T": str(failure.length), **f} for f in found]
    if plan.precision in KINDS:
        from pipeline.parity.lossy_localise import localise_lossy

        return localise_lossy(failure, adapter, arts, opened, plan.precision, localise_tol, seed=seed,
                              text_ids=text_ids)
    from pipeline.parity.localise import localise_failure

    return localise_failure(failure, adapter, arts, opened, plan.precision,
                            float(localise_tol.get(plan.precision, 5e-2)), seed=seed, text_ids=text_ids)


def primary_length(arts: Any) -> int:
    """The length that must work (the first enumerated one when the options do not say)."""
    return int(getattr(arts.options, "primary_length", arts.options.lengths[0]))


def _names(adapter: Any) -> DecodeNames:
    return DecodeNames(prefill_outputs=adapter.prefill_output_names(), decode_inputs=adapter.decode_input_names(),
                       decode_outputs=adapter.decode_output_names())


def _compare_target(plan, adapter, arts, refs, thresholds, decode_steps, seed, sources, text_ids,
                    generate_tokens=0, park=None):
    names = _names(adapter)
    ref_prefill, ref_decode = refs
    opened = Programs(lambda path: _open(plan.target, plan.runtime, path))

    def program(kind: str, length: int | None = None) -> Any:
        return (arts.onnx_model(kind) if plan.target == "onnx"
                else arts.coreml_package(kind, plan.precision, length=length))

    def runtime_for(kind: str, length: int | None = None) -> Any:
        return opened[program(kind, length)]

    def bounds(output: str) -> dict[str, float]:
        return thresholds_for(plan.precision, output, thresholds)

    from pipeline.compression import KINDS

    lossy = plan.precision in KINDS  # compressed: distribution metrics over runs of positions
    # Generation agreement is a lossy-target metric: fp32 and fp16 are held element-wise,
    # step by step, which is stricter and costs no extra decode runs.
    generate_tokens = generate_tokens if lossy else 0
    if plan.target == STATEFUL_TARGET:
        from pipeline.parity.stateful import stateful_rows

        return stateful_rows(ref_prefill, ref_decode, runtime_for("decode_stateful"), arts, adapter, bounds,
                             names=names, steps=decode_steps, seed=seed, sources=sources, text_ids=text_ids,
                             generate_tokens=generate_tokens, chain=lossy), opened
    low, high = arts.export.cache_range
    primary = primary_length(arts)  # generation runs on the primary length's prompts
    rows: list[Comparison] = []
    if getattr(ref_prefill, "spills", False):
        prime_references(refs, adapter, arts, sources=sources, seed=seed, text_ids=text_ids,
                         decode_steps=decode_steps)
        if park is not None:
            park()
    prompts: dict[int, list[tuple[str, Any]]] = {}
    # Prefill at every length first, then decode: decode starts from the reference's caches,
    # so the two programs (each the whole model's weights) never need to be open together,
    # except for the generation of a lossy target, which chains the candidate's own.
    for length in arts.options.lengths:
        cand_prefill = runtime_for("prefill", length)
        prompts[length] = []
        for source in sources:
            ids = input_ids(source, length, vocab=adapter.vocab_size, seed=seed, text_ids=text_ids)
            prompts[length].append((source, ids))
            rows += prefill_comparisons(ref_prefill, cand_prefill, ids, source, bounds,
                                        names.prefill_outputs)
        if generate_tokens and length == primary and length + generate_tokens <= high:
            rows.append(_generation(ref_prefill, ref_decode, cand_prefill, runtime_for("decode"), prompts[length],
                                    names, generate_tokens, bounds))
        # A length's program (the whole model's weights, for per-length packages) is let go once
        # its rows are in; the localiser opens the failing one again.
        later = {program("prefill", n) for n in arts.options.lengths[arts.options.lengths.index(length) + 1:]}
        path = program("prefill", length)
        cand_prefill = None  # `opened` its only holder now: the release's collection frees it
        if path not in later and path != program("decode"):
            opened.release(path)
    for length in arts.options.lengths:
        if not (low <= length and length + decode_steps <= high):
            continue
        for source, ids in prompts[length]:
            rows += decode_comparisons(ref_prefill, ref_decode, runtime_for("decode"), ids, source, bounds,
                                       steps=decode_steps, names=names, chain=lossy)
    return rows, opened


def _generation(ref_prefill, ref_decode, cand_prefill, cand_decode, prompts, names, tokens, bounds):
    from pipeline.parity.lossy import generation_comparison, greedy_tokens

    outs = names.decode_outputs[1:]
    return generation_comparison(
        lambda ids: greedy_tokens(ref_prefill, ref_decode, ids, tokens, names.cache_inputs, outs),
        lambda ids: greedy_tokens(cand_prefill, cand_decode, ids, tokens, names.cache_inputs, outs),
        prompts, tokens, bounds)
