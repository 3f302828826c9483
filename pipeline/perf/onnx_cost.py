"""The cost of an ONNX graph at one input length, counted from the graph.

    >>> graph = OnnxGraph.load("decode.onnx")          # doctest: +SKIP
    >>> graph.cost(512).macs, graph.weight_bytes()     # doctest: +SKIP
    (237824, {"fp32": 2283348, "int64": 120})

Shapes at a length come from two sources, the first complete one winning per
value: onnx's own shape inference over a copy whose symbolic input
dimensions are set to `length` (with `data_prop`, so shape arithmetic
folds), and the exporter's `value_info`, whose symbolic dimensions are
expressions of the input symbols ("T_cache + 1") read by
`graph_cost.evaluate_dim`. Every symbolic input dimension takes `length`:
the models Readiness builds have one dynamic axis per input (T, T_cache).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

from pipeline.perf.graph_cost import CostTally, ProgramCost, Step, evaluate_dim, numel, peak_live_bytes, tensor_bytes
from pipeline.perf.mil_cost import CostError

# onnx TensorProto data types -> the dtype names ProgramCost and the reports use
_DTYPES = {1: "fp32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
           10: "fp16", 11: "fp64", 12: "uint32", 13: "uint64", 16: "bf16", 21: "uint4", 22: "int4"}
MATRIX_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose", "MatMulInteger", "QLinearMatMul", "Einsum")
_OPERANDS = {"QLinearMatMul": (0, 3)}  # the others multiply inputs 0 and 1


def _type_shape(value_type: Any, env: Mapping[str, int]) -> tuple[tuple[int, ...] | None, str | None]:
    tensor = value_type.tensor_type
    dtype = _DTYPES.get(tensor.elem_type)
    if not tensor.HasField("shape"):
        return None, dtype
    dims: list[int] = []
    for dim in tensor.shape.dim:
        size = int(dim.dim_value) if dim.HasField("dim_value") else \
            evaluate_dim(dim.dim_param, env) if dim.HasField("dim_param") else None
        if size is None:
            return None, dtype
        dims.append(size)
    return tuple(dims), dtype


# An initializer of more elements than this is a weight, never a shape that data propagation
# reads: its values are dropped once loaded, so neither the graph nor the copies shape
# inference makes hold the model's weights (gigabytes, for a large decoder).
VALUES_KEPT = 4096
_DATA_FIELDS = ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


class OnnxGraph:
    """One ONNX model, loaded once and costed at any length (thread-safe)."""

    def __init__(self, model: Any, path: Path) -> None:
        self.path = path
        self.model = model
        graph = model.graph
        for tensor in graph.initializer:  # weights: counting needs their dims and types, not their values
            if (numel(tuple(tensor.dims)) or 0) > VALUES_KEPT:
                for field in _DATA_FIELDS:
                    tensor.ClearField(field)
        self._initializers = {t.name: t for t in graph.initializer}
        self._const = self._constants(graph)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path) -> OnnxGraph:
        import onnx

        path = Path(path)
        try:
            return cls(onnx.load(str(path), load_external_data=False), path)
        except Exception as exc:  # a damaged file is the conversion gate's to judge; here it is a cost error
            raise CostError(f"{path.name}: cannot read the ONNX model: {exc}") from None

    def _constants(self, graph: Any) -> set[str]:
        const = set(self._initializers)
        for node in graph.node:
            if node.op_type == "Constant" or (node.input and all(i in const or not i for i in node.input)):
                const.update(node.output)
        return const

    def input_symbols(self) -> set[str]:
        return {d.dim_param for i in self.model.graph.input if i.name not in self._initializers
                for d in i.type.tensor_type.shape.dim if d.HasField("dim_param")}

    def weight_bytes(self) -> dict[str, int]:
        """Bytes of initializers and Constant tensors by dtype."""
        import onnx

        out: dict[str, int] = {}
        tensors = list(self._initializers.values()) + [a.t for n in self.model.graph.node if n.op_type == "Constant"
                                                       for a in n.attribute if a.name == "value"]
        for tensor in tensors:
            dtype = _DTYPES.get(tensor.data_type, str(tensor.data_type))
            count = numel(tuple(tensor.dims)) or (1 if not tensor.dims else 0)
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize \
                if tensor.data_type in _DTYPES else 0
            out[dtype] = out.get(dtype, 0) + count * itemsize
        return out

    def shapes(self, length: int) -> dict[str, tuple[tuple[int, ...] | None, str | None]]:
        """Every value's (shape, dtype) at `length`; a shape is None where neither source knows it."""
        env = {name: length for name in self.input_symbols()}
        with self._lock:
            inferred = self._inferred(length)
        declared = {}
        graph = self.model.graph
        for info in [*graph.input, *graph.value_info, *graph.output]:
            declared[info.name] = _type_shape(info.type, env)
        merged = {}
        for name in {*declared, *inferred}:
            (ds, dd), (is_, id_) = declared.get(name, (None, None)), inferred.get(name, (None, None))
            merged[name] = (is_ if is_ is not None else ds, id_ or dd)
        return merged

    def _inferred(self, length: int) -> dict[str, tuple[tuple[int, ...] | None, str | None]]:
        import onnx
        from onnx import shape_inference

        copy = onnx.ModelProto()
        copy.CopyFrom(self.model)
        del copy.graph.value_info[:]
        for value in copy.graph.output:
            value.type.tensor_type.ClearField("shape")
        for value in copy.graph.input:
            for dim in value.type.tensor_type.shape.dim:
                if dim.HasField("dim_param"):
                    dim.Clear()
                    dim.dim_value = length
        try:
            done = shape_inference.infer_shapes(copy, data_prop=True)
        except Exception:
            return {}  # the exporter's value_info may still know every shape
        return {info.name: _type_shape(info.type, {}) for info in
                [*done.graph.input, *done.graph.value_info, *done.graph.output]}

    def cost(self, length: int) -> ProgramCost:
        """The cost with every symbolic input dimension at `length`."""
        shapes = self.shapes(length)
        tally, steps = CostTally(), []

        def shape(name: str) -> tuple[int, ...] | None:
            if name in self._initializers:
                return tuple(self._initializers[name].dims)
            return shapes.get(name, (None, None))[0]

        for node in self.model.graph.node:
            if all(o in self._const for o in node.output):
                continue
            if node.op_type in MATRIX_OPS:
                operands = [node.input[i] for i in _OPERANDS.get(node.op_type, (0, 1)) if i < len(node.input)]
                tally.product(_macs(node, shape), node.op_type, weight=any(i in self._const for i in operands))
            out_dtype = shapes.get(node.output[0], (None, None))[1] if node.output else None
            tally.output_dtype(out_dtype)
            steps.append(Step(reads=tuple(i for i in node.input if i and i not in self._const),
                              makes=tuple((o, tensor_bytes(*shapes.get(o, (None, None)))) for o in node.output)))
        graph = self.model.graph
        inputs = {i.name: tensor_bytes(*shapes.get(i.name, (None, None))) for i in graph.input
                  if i.name not in self._initializers}
        return tally.cost(peak_live_bytes(inputs, steps, [o.name for o in graph.output]))


def _macs(node: Any, shape: Any) -> int | None:
    """Multiply-accumulates of one matrix node, None when a shape is unknown."""
    out = numel(shape(node.output[0])) if node.output else None
    a = shape(node.input[0]) if node.input else None
    if out is None or not a:
        return None
    if node.op_type in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        return out * a[-1]
    if node.op_type == "Gemm":
        trans_a = next((int(x.i) for x in node.attribute if x.name == "transA"), 0)
        return out * (a[0] if trans_a else a[1])
    if node.op_type in ("Conv", "ConvTranspose"):
        weight = shape(node.input[1])
        per = numel(weight[1:]) if weight else None
        base = out if node.op_type == "Conv" else numel(a)
        return None if per is None or base is None else base * per
    return None  # Einsum: not counted
