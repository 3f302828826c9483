"""Checking one converted target of a module model against PyTorch, shape by shape.

`run_module_target(plan, model, arts, ...)` opens the target (a Core ML
package through Core ML or the MIL interpreter, or the ONNX model through
onnxruntime), runs it on every shape case it covers with seeded random
inputs and on every real example (the `examples` callable: the "text"
source of a decoder, for any modality), compares every output, and folds
the comparisons into one row per (shape, output). It returns the same kind
of JSON-able evidence entry as `pipeline.parity.targets.run_target`, with
rows keyed by `shape` instead of phase and length:

    {"target": "coreml", "precision": "fp16", "runtime": "mil", "status": "fail", "reason": "",
     "comparisons": 24, "failed": 2, "rows": [{"shape": "B=1,T=64", "output": "position", ...}],
     "localisation": [{"kind": "inf", "op": "mul_3", "op_type": "mul", ...}], "files": [...]}

Bounds per output: the precision's defaults, then the output's declared
`tolerances` for that precision (a regression head in its own units),
then the gate's `thresholds` overrides. Class logits (`kind = "logits"`)
also get top-1, top-k (the declared `top_k`) and KL. A failing Core ML
target under the MIL interpreter is localised to the first MIL op that
introduces NaN/Inf or diverges from the converted PyTorch graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pipeline.module_convert import coreml_cases, decomposed
from pipeline.module_inputs import Example, model_inputs, random_inputs
from pipeline.module_io import ModuleIO, OutputKind, ShapeCase
from pipeline.parity.cases import CachedRuntime, worst
from pipeline.parity.metrics import DIRECTIONS, compare, judge, output_group, thresholds_for
from pipeline.parity.targets import ROW_METRICS, TargetStatus
from pipeline.runtimes.base import NotEvaluable

MODULE_ROW_METRICS = ROW_METRICS + ("topk_pct",)
PARITY_SALT = 2  # neither the export example nor the export check


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleComparison:
    """One output of one run at one shape case."""

    shape: str
    source: str  # "random" or "examples" (real inputs: the gate's "text" source)
    output: str
    metrics: Mapping[str, float]
    misses: tuple[str, ...]
    inputs: Mapping[str, np.ndarray]  # kept to localise a failure
    step: int = 0  # one forward pass: `cases.worst` reads a decode step here

    @property
    def passed(self) -> bool:
        return not self.misses


def output_bounds(precision: str, output: str, io: ModuleIO,
                  overrides: Mapping[str, Mapping[str, float]] | None) -> dict[str, float]:
    """Defaults, then the output's declared tolerances, then the gate's overrides (keyed as
    `thresholds_for` keys them: "fp16", "position", "fp16.position")."""
    decl = io.output(output)
    bounds = thresholds_for(precision, output, None)
    bounds.update(decl.tolerances.get(precision, {}) if decl is not None else {})
    group = output_group(output)
    for key in dict.fromkeys((precision, group, output, f"{precision}.{group}", f"{precision}.{output}")):
        bounds.update((overrides or {}).get(key, {}))
    unknown = sorted(set(bounds) - set(DIRECTIONS))
    if unknown:
        raise ValueError(f"unknown parity metric(s) {', '.join(unknown)} for output {output!r} "
                         f"(known: {', '.join(sorted(DIRECTIONS))})")
    return bounds


def _comparisons(io: ModuleIO, ref: Mapping[str, np.ndarray], cand: Mapping[str, np.ndarray],
                 names: Sequence[str], bounds: Any, shape: str, source: str,
                 inputs: Mapping[str, np.ndarray]) -> list[ModuleComparison]:
    rows = []
    for name in names:
        if name not in cand:
            rows.append(ModuleComparison(shape=shape, source=source, output=name, metrics={},
                                         misses=(f"output {name!r} is missing",), inputs=inputs))
            continue
        decl = io.output(name)
        top_k = decl.top_k if decl is not None and decl.kind is OutputKind.LOGITS else None
        metrics = compare(ref[name], np.asarray(cand[name], np.float32),
                          logits=decl is not None and decl.kind is OutputKind.LOGITS, top_k=top_k)
        rows.append(ModuleComparison(shape=shape, source=source, output=name, metrics=metrics,
                                     misses=tuple(judge(metrics, bounds(name))), inputs=inputs))
    return rows


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def fold_rows(comparisons: Sequence[ModuleComparison], runtime: str, order: Sequence[str]) -> list[dict]:
    """Per (shape, output): the worst metrics over sources, in shape-case order."""
    folded = worst(comparisons, lambda c: (c.shape, c.output))
    rank = {label: i for i, label in enumerate(order)}
    rows = []
    for (shape, output), entry in sorted(folded.items(), key=lambda kv: (rank.get(kv[0][0], 0), kv[0][1])):
        metrics = {k: _json_number(entry["metrics"].get(k)) for k in MODULE_ROW_METRICS}
        rows.append({"runtime": runtime, "shape": shape, "output": output, "runs": entry["runs"], **metrics,
                     "status": TargetStatus.FAIL if entry["misses"] else TargetStatus.PASS,
                     "misses": entry["misses"][:20]})
    return rows


def _feeds(io: ModuleIO, cases: Sequence[ShapeCase], sources: Sequence[str], examples: Sequence[Example],
           seed: int):
    """(shape label, source, package-domain inputs) for every run of one target."""
    labels = {c.label for c in cases}
    if "random" in sources:
        for case in cases:
            yield case.label, "random", random_inputs(io, case, seed, PARITY_SALT)
    if "text" in sources:
        for example in examples:
            if example.case.label in labels:  # the "text" setting: real inputs, whatever the modality
                yield example.case.label, "examples", dict(example.inputs)


def _open(plan: Any, arts: Any) -> tuple[Any, Any]:
    if plan.target == "onnx":
        from pipeline.runtimes.onnx_runtime import OnnxRuntime

        path = arts.onnx_model()
        return path, OnnxRuntime(path)
    from pipeline.runtimes import open_coreml

    path = arts.coreml_package(plan.precision)
    return path, open_coreml(path, plan.runtime)


def run_module_target(plan: Any, model: Any, arts: Any, *, thresholds: dict, seed: int,
                      sources: Sequence[str], examples: Sequence[Example], localise: bool,
                      localise_tol: dict, reference: CachedRuntime | None = None) -> dict[str, Any]:
    """The evidence entry for one target (see the module docstring)."""
    entry: dict[str, Any] = {"target": plan.target, "precision": plan.precision, "runtime": plan.runtime,
                             "status": TargetStatus.ERROR, "reason": "", "comparisons": 0, "failed": 0,
                             "rows": [], "localisation": [], "files": []}
    io = model.io
    cases = io.cases() if plan.target == "onnx" else coreml_cases(io)
    try:
        path, runtime = _open(plan, arts)
        ref = reference or CachedRuntime(_Eager(model))
        comparisons = []
        for label, source, inputs in _feeds(io, cases, sources, examples, seed):
            feed = model_inputs(io, inputs) if plan.target == "onnx" else inputs  # ONNX takes the module's own input
            comparisons += _comparisons(io, ref.run(inputs), runtime.run(feed), model.output_names,
                                        lambda n: output_bounds(plan.precision, n, io, thresholds),
                                        label, source, inputs)
    except NotEvaluable as exc:
        return {**entry, "status": TargetStatus.NOT_EVALUABLE, "reason": str(exc)}
    except Exception as exc:  # this target errs; the others still run
        return {**entry, "reason": f"{type(exc).__name__}: {exc}"}
    failed = [c for c in comparisons if not c.passed]
    entry.update(status=TargetStatus.FAIL if failed else TargetStatus.PASS, comparisons=len(comparisons),
                 failed=len(failed), rows=fold_rows(comparisons, plan.runtime, [c.label for c in cases]),
                 files=[str(path)])
    if not comparisons:
        entry.update(status=TargetStatus.ERROR, reason="nothing was compared")
    if failed and localise and plan.runtime == "mil":
        try:
            entry["localisation"] = localise_module(failed[0], model, arts, runtime, plan.precision,
                                                    float(localise_tol.get(plan.precision, 5e-2)))
        except Exception as exc:  # localising is a help, never the verdict
            entry["localisation"] = [{"kind": "unavailable", "detail": f"{type(exc).__name__}: {exc}"}]
    return entry


class _Eager:
    """PyTorch eager on package-domain inputs (the reference)."""

    name = "torch"

    def __init__(self, model: Any) -> None:
        self.model = model

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.model.run(inputs)


def reference_for(model: Any) -> CachedRuntime:
    """One cached eager reference that several targets share."""
    return CachedRuntime(_Eager(model))


def prime_reference(reference: CachedRuntime, model: Any, *, sources: Sequence[str],
                    examples: Sequence[Example], seed: int, park: Callable[[], Any] | None = None) -> None:
    """Run the reference on every input any target compares (each target's cases are a subset
    of the declared ones), then `park`: the eager weights' pages leave memory before a
    converted program's weights arrive. A reference that fails here is run again by each
    target, which reports the failure as its own."""
    try:
        for _label, _source, inputs in _feeds(model.io, model.io.cases(), sources, examples, seed):
            reference.run(inputs)
    except Exception:  # reported by the targets (see above)
        return
    if park is not None:
        park()


def localise_module(failure: ModuleComparison, model: Any, arts: Any, interpreter: Any, precision: str,
                    rel_tol: float) -> list[dict[str, str]]:
    """The first op introducing NaN/Inf, and the first matched op diverging from PyTorch."""
    import torch

    from pipeline.runtimes.mil_localise import first_divergence, first_nonfinite, torch_activations

    _, records = interpreter.trace(failure.inputs)
    findings = []
    nonfinite = first_nonfinite(records, failure.inputs)
    if nonfinite is not None:
        findings.append(nonfinite.to_dict())
    program = decomposed(arts.export.program, arts.decompositions.get(precision, "none"))
    feed = model_inputs(model.io, failure.inputs)
    args = tuple(torch.from_numpy(np.ascontiguousarray(feed[n])) for n in model.input_names)
    divergence, matched = first_divergence(records, torch_activations(program, args), rel_tol)
    if divergence is not None:
        findings.append({**divergence.to_dict(), "matched_ops": str(matched)})
    if not findings:
        findings.append({"kind": "none", "detail": f"no op introduced NaN/Inf and none of {matched} "
                                                   f"matched ops diverged beyond {rel_tol:g}"})
    return [{"shape": failure.shape, "source": failure.source, **f} for f in findings]
