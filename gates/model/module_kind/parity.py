"""The `parity` gate for a module model: converted models agree with PyTorch at every shape.

Each target the settings select (Core ML fp32/fp16 through Core ML on macOS
or the MIL interpreter elsewhere, ONNX through onnxruntime) runs every shape
case it covers on seeded random inputs (`random`) and on the real inputs of
the `examples` callable (`text`: the real-input source, whatever the
modality). Every output gets the metrics that fit it: the precision's
bounds, its declared `tolerances` (a regression head in its own units),
top-1/top-k agreement and KL for declared class logits, and the gate's
`thresholds` overrides keyed by precision and output name. A failing Core ML
target under the interpreter names the first MIL op that overflows to
Inf/NaN or diverges from the converted graph.

The verdict, evidence shape and `merge` are the decoder parity gate's
(`gates.model.parity.summarise`), with rows per shape instead of per length.
`decode_steps` does not apply. `error` when the examples cannot be loaded.
"""

from __future__ import annotations

from typing import Any

from gates.engine.protocol import Gate, GateContext, GateError
from gates.engine.spec import ModelSpec
from gates.model.shared import shared_mapped_weights, shared_module, shared_module_artifacts
from gates.result import GateResult


def real_examples(model: Any, root: Any, sources: tuple[str, ...]) -> tuple[list[Any], str]:
    """(examples, why there are none) for the `text` source."""
    from pipeline.module_inputs import ExampleError, load_examples

    if "text" not in sources:
        return [], ""
    if model.io.examples is None:
        return [], "no examples callable is configured ([model] examples)"
    try:
        return load_examples(model.io, root), ""
    except ExampleError as exc:
        raise GateError(str(exc)) from None


def check(gate: Gate, ctx: GateContext, model: ModelSpec, runtime: str) -> GateResult:
    from gates.model.parity import planned, summarise
    from pipeline.parity.module_targets import prime_reference, reference_for, run_module_target

    settings = ctx.settings
    loaded, arts = shared_module(ctx), shared_module_artifacts(ctx)
    plans = planned(runtime, arts.options.targets, arts.options.precisions)
    examples, why = real_examples(loaded, ctx.root, tuple(settings.sources))
    sources = tuple(s for s in settings.sources if s != "text" or examples)
    if not sources:
        raise GateError(f"no inputs to compare on ({why})")
    reference = reference_for(loaded)
    prime_reference(reference, loaded, sources=sources, examples=examples, seed=settings.seed,
                    park=shared_mapped_weights(ctx, loaded.module).park)
    targets = {p.key: run_module_target(p, loaded, arts, thresholds=dict(settings.thresholds), seed=settings.seed,
                                        sources=sources, examples=examples, localise=settings.localise,
                                        localise_tol=dict(settings.localise_tol), reference=reference)
               for p in plans}
    result = summarise(gate.name, gate.severity, targets)
    notes = [f"real inputs (text source) skipped: {why}"] if why else []
    return result.with_(evidence={**result.evidence, "notes": notes,
                                  "settings": {"runtime": runtime, "seed": settings.seed,
                                               "sources": ["examples" if s == "text" else s for s in sources],
                                               "examples": len(examples)}})
