"""Naming the MIL op where a failing Core ML target first goes wrong.

Given the first failing comparison, re-create its inputs, trace the MIL
program on them, run the exported PyTorch program that was converted (in
the same decomposed form, so node names match the MIL op names), and report
the first op introducing NaN/Inf and the first matched op diverging beyond
`rel_tol`. The result is a list of JSON-able findings for the evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from pipeline.parity.cases import Comparison, decode_inputs_after_prefill, input_ids
from pipeline.runtimes.mil_localise import first_divergence, first_nonfinite, torch_activations

if TYPE_CHECKING:
    from pipeline.adapter import ModelAdapter

# Decomposing a program takes seconds; one gate run may localise several
# targets converted from the same program.
_DECOMPOSED: dict[int, tuple[Any, Any]] = {}


def _program(arts: Any, phase: str, length: int) -> Any:
    from pipeline.export import for_conversion

    program = arts.export.decode if phase == "decode" else arts.export.prefill.get(length)
    if program is None:
        raise ValueError(f"no exported {phase} program for T={length}")
    cached = _DECOMPOSED.get(id(program))
    if cached is None or cached[0] is not program:
        _DECOMPOSED.clear()  # keep one: programs are large
        cached = _DECOMPOSED[id(program)] = (program, for_conversion(program))
    return cached[1]


def localise_failure(failure: Comparison, adapter: ModelAdapter, arts: Any, opened: dict, precision: str,
                     rel_tol: float, *, seed: int, text_ids: Sequence[int]) -> list[dict[str, str]]:
    """Findings for `failure` (kind, op, op_type, var, detail), most telling first."""
    import torch

    ids = input_ids(failure.source, failure.length, vocab=adapter.vocab_size, seed=seed,
                    text_ids=text_ids)
    inputs = decode_inputs_after_prefill(adapter, ids) if failure.phase == "decode" else {"input_ids": ids}
    length = None if failure.phase == "decode" else failure.length
    interpreter = opened[arts.coreml_package(failure.phase, precision, length=length)]
    _, records = interpreter.trace(inputs)
    findings = []
    nonfinite = first_nonfinite(records, inputs)
    if nonfinite is not None:
        findings.append(nonfinite.to_dict())
    names = adapter.decode_input_names() if failure.phase == "decode" else ("input_ids",)
    args = tuple(torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in names)
    outputs = adapter.decode_output_names() if failure.phase == "decode" else adapter.prefill_output_names()
    reference = torch_activations(_program(arts, failure.phase, failure.length), args, outputs)
    divergence, matched = first_divergence(records, reference, rel_tol)
    if divergence is not None:
        findings.append({**divergence.to_dict(), "matched_ops": str(matched)})
    if not findings:
        findings.append({"kind": "none", "detail": f"no op introduced NaN/Inf and none of {matched} "
                                                   f"matched ops diverged beyond {rel_tol:g}"})
    return [{"phase": failure.phase, "T": str(failure.length), **f} for f in findings]
