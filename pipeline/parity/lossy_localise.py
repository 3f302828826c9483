"""Naming the op whose error a compression does not explain.

A compressed target differs from PyTorch everywhere, so "the first op that
diverges" is the first op at all. What a compression explains is bounded,
though: a k-means 4-bit LUT or an int4 block leaves about 10 % RMS error on a
weight, int8 under 1 %. So the interpreter's expanded weights
(`MilInterpreter.weights`, one per `constexpr_*` chain) are held against the
PyTorch parameters they replace, in program order, and the first whose
relative RMS error exceeds its kind's bound (`EXPLAINED_WEIGHT_ERROR`) is
named with the op that reads it: an LM head palettized to 2 bits, a LUT laid
out transposed. When every weight is within its bound, the activation-level
search (`pipeline.parity.localise`) runs with the compression's tolerance.

Parameters are matched by name: the converter names a lifted parameter
`p_<path>` (`p_model_lm_head_weight_to_fp16_palettized`), so the longest
parameter path (dots as underscores) inside the name, with the same shape,
is the weight it replaces.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

# Relative RMS weight error each kind leaves, measured on the demo model (int8 0.6 %,
# int4_block32 9.7 %, palettize4 9.6 %, palettize6 2.2 %, prune50 32 %), with 1.5-3x margin.
EXPLAINED_WEIGHT_ERROR = {"int8": 0.02, "int4_block32": 0.15, "palettize4": 0.15, "palettize6": 0.05,
                          "prune50": 0.5}
# Activation tolerance (relative to the tensor's largest value) when no weight explains the failure.
LOSSY_LOCALISE_TOL = {"int8": 0.1, "int4_block32": 0.5, "palettize4": 0.5, "palettize6": 0.2, "prune50": 1.0}


def match_parameter(var_name: str, shape: tuple[int, ...],
                    parameters: Mapping[str, np.ndarray]) -> str | None:
    """The parameter (dotted path) a compressed weight named `var_name` replaces, or None."""
    padded = f"_{var_name.removeprefix('p_')}_"
    found = [path for path, value in parameters.items()
             if f"_{path.replace('.', '_')}_" in padded and tuple(value.shape) == tuple(shape)]
    return max(found, key=len) if found else None


def weight_findings(weights: Mapping[str, Any], parameters: Mapping[str, np.ndarray], kind: str) -> list[dict]:
    """The first expanded weight whose error against PyTorch exceeds what `kind` explains."""
    bound = EXPLAINED_WEIGHT_ERROR[kind]
    for var, weight in weights.items():
        value = np.asarray(weight.value, np.float64)
        path = match_parameter(var, value.shape, parameters)
        if path is None:
            continue  # a LUT, scales or a sparse half: not a dense weight
        ref = np.asarray(parameters[path], np.float64)
        error = float(np.linalg.norm(value - ref) / (np.linalg.norm(ref) or 1.0))
        if error > bound:
            readers = ", ".join(weight.used_by) or "no op"
            return [{"kind": "weight", "op": weight.op_name, "op_type": weight.op_type, "var": var,
                     "detail": f"{weight.op_type} {weight.op_name!r} (the compressed {path}, read by {readers}) "
                               f"differs from PyTorch's weight by {error:.1%} RMS; {kind} explains up to "
                               f"{bound:.0%}"}]
    return []


def localise_lossy(failure: Any, adapter: Any, arts: Any, opened: dict[Any, Any], kind: str,
                   localise_tol: Mapping[str, float], *, seed: int, text_ids: Sequence[int]) -> list[dict]:
    """Weight findings for the failing package, else the activation search at `kind`'s tolerance."""
    from pipeline.parity.cases import Comparison
    from pipeline.parity.localise import localise_failure

    phase = "decode" if failure.phase == "decode" else "prefill"
    length = None if phase == "decode" else failure.length
    interpreter = opened.get(arts.coreml_package(phase, kind, length=length))
    parameters = {k: v.detach().float().numpy() for k, v in adapter.module.state_dict().items()}
    found = weight_findings(getattr(interpreter, "weights", {}), parameters, kind)
    if found:
        return [{"phase": phase, "T": str(failure.length), **f} for f in found]
    if failure.phase not in ("prefill", "decode"):  # a generation row: search the prompt's prefill
        failure = Comparison(phase="prefill", source=failure.source.split("+")[0], length=failure.length,
                             step=0, output="logits", metrics={}, misses=())
    tol = float(localise_tol.get(kind, LOSSY_LOCALISE_TOL[kind]))
    return localise_failure(failure, adapter, arts, opened, kind, tol, seed=seed, text_ids=text_ids)
