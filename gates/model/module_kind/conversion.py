"""The `conversion` gate for a module model: every Core ML package and the ONNX model match the contract.

Each package is read back from its spec and compared with the module
contract: input and output names in order (a name the converter made up is
called out), input kinds (an image input must be a Core ML image), dtypes
(float inputs float32, integer inputs int32; float outputs float16 in fp16
packages from iOS16), every Core ML shape case accepted by each input and
no shape beyond them enumerated, and each output's shape at every case.
The ONNX model must pass `onnx.checker`, use opset >= 17 and carry the
contract's names, dtypes and ranks, with a symbolic axis wherever the
contract's is. The gate's settings (`fp16_required`, `onnx_required`) apply
as for decoders.
"""

from __future__ import annotations

from typing import Any, Sequence

from gates.engine.protocol import Gate, GateContext
from gates.engine.spec import ModelSpec
from gates.model.conversion import MIN_OPSET, Check, generated_names, judge
from gates.model.shared import shared_module_artifacts
from gates.result import GateResult, Status


def _accepts(tensor: Any, shape: tuple[int, ...]) -> bool:
    if tensor.enumerated:
        return shape in tensor.enumerated
    if tensor.ranges:
        return len(shape) == len(tensor.ranges) and all(
            lo <= d and (hi < 0 or d <= hi) for d, (lo, hi) in zip(shape, tensor.ranges))
    return tuple(tensor.shape) == shape


def _names(want: Sequence[str], got: Sequence[str], side: str) -> list[str]:
    if list(want) == list(got):
        return []
    unnamed = generated_names(got, want)
    extra = f"; left unnamed by the converter: {', '.join(unnamed)}" if unnamed else ""
    return [f"{side} {list(got)} differ from the contract's {list(want)}{extra}"]


def _input_problems(io: Any, contract: Any, info: Any, images: dict, cases: Sequence[Any]) -> list[str]:
    problems = []
    for decl in io.inputs:
        tensor = next((t for t in info.inputs if t.name == decl.name), None)
        shapes = list(dict.fromkeys(io.input_shape(decl, c.env) for c in cases))
        if decl.image is not None:
            if decl.name not in images:
                problems.append(f"input {decl.name} is declared an image but the package takes a tensor")
                continue
            missing = [s for s in shapes if s[2:] not in images[decl.name]]
            problems += [f"image input {decl.name} does not accept {s[2]}x{s[3]}" for s in missing]
            continue
        if tensor is None or decl.name in images:
            problems.append(f"input {decl.name} is not a tensor input of the package")
            continue
        want = "float32" if decl.dtype.startswith("float") else "int32"
        if tensor.dtype != want:
            problems.append(f"input {decl.name} is {tensor.dtype}, expected {want}")
        problems += [f"input {decl.name} does not accept shape {list(s)}" for s in shapes if not _accepts(tensor, s)]
        beyond = [list(s) for s in tensor.enumerated if tuple(s) not in shapes]
        if beyond:
            problems.append(f"input {decl.name} enumerates shapes {beyond} no shape case declares")
    return problems


def _output_problems(contract: Any, info: Any, float_dtype: str, cases: Sequence[Any]) -> list[str]:
    problems = []
    for want in contract.doc["outputs"]:
        tensor = next((t for t in info.outputs if t.name == want["name"]), None)
        if tensor is None:
            continue  # reported with the names
        dtype = float_dtype if want["dtype"].startswith("float") else want["dtype"]
        if tensor.dtype != dtype:
            problems.append(f"output {tensor.name} is {tensor.dtype}, expected {dtype}")
        for case in cases:
            shape = contract.case(case.label)["outputs"].get(tensor.name)
            if shape is not None and (len(shape) != len(tensor.shape) or any(
                    g is not None and g != w for g, w in zip(tensor.shape, shape))):
                problems.append(f"output {tensor.name} has shape {list(tensor.shape)}, the contract "
                                f"{shape} at {case.label}")
                break
    return problems


def package_problems(io: Any, contract: Any, path: Any, precision: str, deployment: str) -> list[str]:
    """How one saved Core ML package differs from the module contract."""
    from pipeline.module_convert import coreml_cases, image_input_sizes
    from pipeline.to_coreml import PackageError, io_float_dtype, read_package

    try:
        info = read_package(path)
        images = image_input_sizes(path)
    except PackageError as exc:
        return [str(exc)]
    cases = coreml_cases(io)
    problems = _names([t["name"] for t in contract.doc["inputs"]], [t.name for t in info.inputs], "inputs")
    problems += _names([t["name"] for t in contract.doc["outputs"]], [t.name for t in info.outputs], "outputs")
    problems += _input_problems(io, contract, info, images, cases)
    problems += _output_problems(contract, info, io_float_dtype(precision, deployment), cases)
    return problems


def onnx_problems(contract: Any, path: Any) -> list[str]:
    from pipeline.to_onnx import OnnxError, read_onnx

    try:
        info = read_onnx(path)
    except OnnxError as exc:
        return [str(exc)]
    problems = [] if info.opset >= MIN_OPSET else [f"opset {info.opset} is below {MIN_OPSET}"]
    for side, got in (("inputs", info.inputs), ("outputs", info.outputs)):
        want = contract.tensors(side)
        problems += _names([t.name for t in want], [t.name for t in got], f"ONNX {side}")
        for w, g in zip(want, got):
            if w.dtype != g.dtype:
                problems.append(f"ONNX {g.name} is {g.dtype}, the contract says {w.dtype}")
            if len(w.shape) != len(g.shape) or any(
                    isinstance(a, int) != isinstance(b, int) or (isinstance(a, int) and a != b)
                    for a, b in zip(w.shape, g.shape)):
                problems.append(f"ONNX {g.name} has shape {list(g.shape)}, the contract says {list(w.shape)}")
    return problems


def measure(arts: Any, io: Any, settings: Any) -> list[Check]:
    from pipeline.module_convert import coreml_cases

    checks, shapes = [], f"{len(coreml_cases(io))} shapes"
    for precision in arts.expected_packages():
        path = arts.coreml.get(precision)
        problems = (package_problems(io, arts.contract, path, precision, arts.options.deployment_target)
                    if path is not None else [arts.errors.get(f"coreml:{precision}", "not built")])
        checks.append(Check(artifact=f"module_{precision}.mlpackage", kind="module", precision=precision,
                            lengths=shapes, problems=tuple(problems),
                            required=settings.fp16_required or precision != "fp16"))
    if "onnx" in arts.options.targets:
        problems = onnx_problems(arts.contract, arts.onnx) if arts.onnx else [arts.errors.get("onnx", "not built")]
        checks.append(Check(artifact="module.onnx", kind="module", precision="fp32", lengths="dynamic",
                            problems=tuple(problems), required=settings.onnx_required))
    return checks


def check(gate: Gate, ctx: GateContext, model: ModelSpec) -> GateResult:
    arts = shared_module_artifacts(ctx)
    if arts.contract is None:
        return GateResult(name=gate.name, status=Status.ERROR, severity=gate.severity,
                          summary="no contract to judge the packages against: "
                          + arts.errors.get("contract", "not built"))
    checks = measure(arts, model.module_io, ctx.settings)
    status, score, summary = judge(checks)
    table = {"title": "Converted models against the module contract",
             "columns": ["artifact", "precision", "status", "problems"],
             "rows": [[c.artifact, c.precision, "ok" if c.ok else "failed", "; ".join(c.problems)] for c in checks]}
    files = [str(p) for p in list(arts.coreml.values()) + ([arts.onnx] if arts.onnx else [])]
    return GateResult(
        name=gate.name, status=status, severity=gate.severity, score=score, summary=summary,
        metrics={"models_checked": len(checks), "models_ok": sum(c.ok for c in checks),
                 "coreml_packages": len(arts.expected_packages()), "packages_reused": len(arts.reused),
                 "conversion_errors": sum(1 for k in arts.errors if k.startswith(("coreml:", "onnx")))},
        remediation="" if status is Status.PASS else
        "Fix the converter errors shown and declare inputs the package can take; never ship a placeholder.",
        evidence={"tables": [table], "files": files,
                  "failures": [{"title": c.artifact, "detail": p} for c in checks for p in c.problems]})
