"""coremltools' fp16 cast pass with an overflow check that needs no full-size temporaries.

`ct.convert(..., compute_precision=FLOAT16)` runs `common::add_fp16_cast`,
which first asks of every fp32 const an op reads whether a finite value
(|x| < 1e38) lies beyond fp16's 65504. coremltools answers with `np.where` over
the whole array: three int64 index arrays for a 2-D weight, so the 32k x 768
embedding of a 125M decoder costs 0.8 GB for a moment, half again its whole
model's weights (measured; 2 GB at 1B). `readiness::add_fp16_cast` is the same
pass, subclassed, with the same question answered piece by piece.
`fp16_pipeline` puts it where coremltools' pass stands; the converted
package is byte-identical (tests/pipeline/test_fp16_cast.py).

    pipeline = fp16_pipeline(ct.PassPipeline.DEFAULT)
    ct.convert(program, compute_precision=ct.precision.FLOAT16, pass_pipeline=pipeline, ...)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from coremltools.converters.mil.mil.passes.defs import quantization
from coremltools.converters.mil.mil.passes.pass_registry import register_pass

COREMLTOOLS_PASS = "common::add_fp16_cast"
PASS = "readiness::add_fp16_cast"
FP16_MAX = 65504.0
INFINITE = 1e38  # coremltools' own line: beyond it a value is an infinity, which fp16 keeps
PIECE = 1 << 22  # elements checked at a time


def overflows_fp16(value: Any) -> bool:
    """Whether a finite value of `value` lies beyond fp16's range (NaN and +-inf do not count)."""
    flat = np.asarray(value).reshape(-1)
    for start in range(0, flat.size, PIECE):
        magnitude = np.abs(flat[start:start + PIECE])
        if np.any((magnitude > FP16_MAX) & (magnitude < INFINITE)):
            return True
    return False


@register_pass(namespace="readiness")
class add_fp16_cast(quantization.add_fp16_cast):  # noqa: N801 (coremltools names passes so)
    """`common::add_fp16_cast` with `overflows_fp16` as its overflow check."""

    @staticmethod
    def fp16_overflow(op: Any) -> bool:
        for inputs in op.inputs.values():
            for var in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
                if (var.op is not None and var.op.op_type == "const"
                        and var.is_tensor_or_scalar_of(dtype="fp32") and overflows_fp16(var.op.val.val)):
                    return True
        return False


def fp16_pipeline(pipeline: Any) -> Any:
    """`pipeline` with coremltools' fp16 cast pass replaced by ours, in the same place."""
    passes = list(pipeline.passes)
    if COREMLTOOLS_PASS in passes:
        at = passes.index(COREMLTOOLS_PASS)
        pipeline.remove_passes([COREMLTOOLS_PASS])
        pipeline.insert_pass(at, PASS)
    return pipeline
