"""The conversion gate: every Core ML package and ONNX model exists, loads, and matches the contract.

For each package the model spec asks for (prefill and decode, per precision,
per length in per-length mode) it reads the package back from its spec and
compares inputs and outputs with the contract: names in order (an output
named by the converter — `var_292`, `linear_14` — is called out by name),
dtypes (float16 for fp16 packages) and shapes at every enumerated length; the
prefill input must enumerate exactly the contract's lengths, and every decode
cache input must carry the same length range as the exported `T_cache`.
Each ONNX model must pass `onnx.checker`, use opset >= 17 and carry the
contract's names, dtypes and symbolic shapes (the exporter names its dynamic
axes after the export `Dim`s: "T", "T_cache", "T_cache+1").

Verdict: a failed conversion is `fail` with the converter's message (no
placeholder ever stands in); any mismatch is `fail`, except fp16 packages
when `fp16_required = false` and ONNX when `onnx_required = false`, which
`warn`. Evidence: a table per package/model and one failure entry per
problem. `error`: the artifacts (or the contract they are judged against)
could not be produced at all. `not_evaluable`: no model, or no target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from gates.engine.protocol import GateContext
from gates.engine.spec import ModelKind, ModelSpec
from gates.model.shared import ModelGate, shared_artifacts
from gates.result import GateResult, Status

GENERATED_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*_\d+$")
MIN_OPSET = 17


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    fp16_required: bool = True
    onnx_required: bool = True
    check_cache_ranges: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One converted model judged against the contract."""

    artifact: str
    kind: str
    precision: str
    lengths: str
    problems: tuple[str, ...]
    required: bool = True
    size_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def generated_names(names: Sequence[str], contract_names: Sequence[str]) -> list[str]:
    """Names the converter made up (var_292, linear_14) rather than the contract's."""
    return [n for n in names if n not in contract_names and GENERATED_NAME.match(n)]


def package_problems(contract: Any, kind: str, precision: str, length: int | None, info: Any,
                     cache_range: tuple[int, int] | None = None, deployment: str = "iOS18") -> list[str]:
    """How a read-back Core ML package differs from the contract."""
    from pipeline.contract import compare_tensors
    from pipeline.to_coreml import compute_precision, io_float_dtype

    if kind == "decode_stateful" and "decode_stateful" not in contract.doc:
        return ["the contract has no decode_stateful entry to judge this package against"]
    want_in, want_out = contract.tensors(kind, "inputs"), contract.tensors(kind, "outputs")
    got_in = [t.as_spec() for t in info.inputs]
    got_out = [t.as_spec() for t in info.outputs]
    float_dtype = io_float_dtype(compute_precision(precision), deployment)
    unnamed = generated_names([t.name for t in got_out], [t.name for t in want_out])
    problems = [f"outputs left unnamed by the converter: {', '.join(unnamed)}"] if unnamed else []
    # a per-length package is static: its input is the contract's at that length
    in_env = {"T": length} if kind == "prefill" and length else None
    problems += compare_tensors(want_in, got_in, what="inputs", float_dtype=float_dtype, env=in_env)
    if kind == "prefill":
        lengths = [length] if length else list(contract.lengths)
        problems += _enumeration_problems(info, lengths, contract.doc.get("batch", 1))
        for t in lengths:
            problems += compare_tensors(want_out, got_out, what=f"outputs at T={t}",
                                        float_dtype=float_dtype, env={"T": t})
            if problems:
                break
    elif kind == "decode_stateful":
        from gates.model.conversion_states import state_problems

        problems += compare_tensors(want_out, got_out, what="outputs", float_dtype=float_dtype)
        problems += state_problems(contract, info, float_dtype)
    else:
        problems += compare_tensors(want_out, got_out, what="outputs", float_dtype=float_dtype)
        if cache_range is not None:
            from pipeline.to_coreml import cache_range_problems

            names = [layer[k] for layer in contract.doc["kv_layout"]["layers"] for k in ("k", "v")]
            problems += cache_range_problems(info, names, cache_range)
    return problems


def _enumeration_problems(info: Any, lengths: Sequence[int], batch: int) -> list[str]:
    tensor = next((t for t in info.inputs if t.name == "input_ids"), None)
    if tensor is None:
        return []  # already reported as an input name mismatch
    if len(lengths) == 1:
        ok = tuple(tensor.shape) == (batch, lengths[0]) or (batch, lengths[0]) in tensor.enumerated
        return [] if ok else [f"input_ids has shape {list(tensor.shape)}, not [{batch}, {lengths[0]}]"]
    got = sorted(s[1] for s in tensor.enumerated if len(s) == 2)
    if got != sorted(lengths):
        return [f"input_ids enumerates lengths {got}, the contract {sorted(lengths)}"]
    return []


def onnx_problems(contract: Any, kind: str, path: Any) -> list[str]:
    from pipeline.contract import compare_tensors
    from pipeline.to_onnx import OnnxError, read_onnx

    try:
        info = read_onnx(path)
    except OnnxError as exc:
        return [str(exc)]
    problems = [] if info.opset >= MIN_OPSET else [f"opset {info.opset} is below {MIN_OPSET}"]
    for side, got in (("inputs", info.inputs), ("outputs", info.outputs)):
        want = contract.tensors(kind, side)
        problems += compare_tensors(want, got, what=f"ONNX {side}")
    return problems


def measure(arts: Any, contract: Any, settings: Settings) -> list[Check]:
    """One Check per expected package and ONNX model."""
    from pipeline.to_coreml import PackageError, read_package

    checks = []
    for key in arts.expected_packages():
        required = settings.fp16_required or key.precision != "fp16"
        lengths = str(key.length) if key.length else ",".join(map(str, arts.options.lengths))
        path = arts.coreml.get(key)
        if path is None:
            problems = [arts.errors.get(key.step, "not built")]
        else:
            try:
                info = read_package(path)
                problems = package_problems(contract, key.kind, key.precision, key.length, info,
                                            arts.export.cache_range if settings.check_cache_ranges else None,
                                            arts.options.deployment_target)
            except PackageError as exc:
                problems = [str(exc)]
        checks.append(Check(artifact=key.filename, kind=key.kind, precision=key.precision,
                            lengths=lengths if key.kind == "prefill" else "T_cache range",
                            problems=tuple(problems), required=required,
                            size_bytes=_size(path) if path is not None else None))
    if "onnx" in arts.options.targets:
        for kind in ("prefill", "decode"):
            path = arts.onnx.get(kind)
            problems = onnx_problems(contract, kind, path) if path else [arts.errors.get(f"onnx:{kind}", "not built")]
            checks.append(Check(artifact=f"{kind}.onnx", kind=kind, precision="fp32", lengths="dynamic",
                                problems=tuple(problems), required=settings.onnx_required))
    return checks


def _size(path: Any) -> int:
    from pipeline.compression import package_bytes

    return package_bytes(path)


def judge(checks: Sequence[Check]) -> tuple[Status, float | None, str]:
    if not checks:
        return Status.NOT_EVALUABLE, None, "no conversion target is configured"
    ok = sum(c.ok for c in checks)
    score = round(ok / len(checks), 4)
    blocking = [c.artifact for c in checks if not c.ok and c.required]
    optional = [c.artifact for c in checks if not c.ok and not c.required]
    if blocking:
        return Status.FAIL, score, f"{len(blocking)} of {len(checks)} converted models fail: {', '.join(blocking)}"
    if optional:
        return Status.WARN, score, f"optional models fail: {', '.join(optional)} ({ok}/{len(checks)} ok)"
    return Status.PASS, score, f"{ok} converted models load and match the contract"


class ConversionGate(ModelGate, name="conversion", needs=("export",), settings=Settings):

    def check_model(self, ctx: GateContext, model: ModelSpec) -> GateResult:
        if model.kind == ModelKind.MODULE:
            from gates.model.module_kind import conversion as module_kind

            return module_kind.check(self, ctx, model)
        arts = shared_artifacts(ctx)
        if arts.contract is None:
            return GateResult(name=self.name, status=Status.ERROR, severity=self.severity,
                              summary="no contract to judge the packages against: "
                              + arts.errors.get("contract", "not built"))
        checks = measure(arts, arts.contract, ctx.settings)
        status, score, summary = judge(checks)
        table = {"title": "Converted models against the contract",
                 "columns": ["artifact", "kind", "precision", "lengths", "size_bytes", "status", "problems"],
                 "rows": [[c.artifact, c.kind, c.precision, c.lengths, c.size_bytes, "ok" if c.ok else "failed",
                           "; ".join(c.problems)] for c in checks]}
        failures = [{"title": c.artifact, "detail": p} for c in checks for p in c.problems]
        files = [str(p) for p in list(arts.coreml.values()) + list(arts.onnx.values())]
        metrics = {"models_checked": len(checks), "models_ok": sum(c.ok for c in checks),
                   "coreml_packages": sum(1 for c in checks if c.artifact.endswith(".mlpackage")),
                   "conversion_errors": sum(1 for k in arts.errors if k.startswith(("coreml:", "onnx:"))),
                   "packages_reused": len(arts.reused)}
        return GateResult(name=self.name, status=status, severity=self.severity, score=score,
                          summary=summary, metrics=metrics,
                          remediation="" if status is Status.PASS else
                          "Name every output at conversion (ct.TensorType(name=...)) and fix the converter "
                          "errors shown; never ship a placeholder package.",
                          evidence={"tables": [table], "failures": failures, "files": files})
