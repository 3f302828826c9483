"""The `contract` gate for a module model: contract, exported program, declarations and packages agree.

It writes the module contract (`pipeline/schemas/contract-module-v1.json`)
to `ctx.work_dir / contract_name`, loads it back through the schema and the
consistency checks, then cross-checks:

- exported program vs contract: names, dtypes and symbolic shapes read from
  the exported graph;
- declarations vs contract: the configured dimensions, inputs (shape,
  value range, image preprocessing) and output kinds;
- identity: `arch_hash` vs the loaded weights, `model_arch` vs the
  checkpoint's metadata when it records one;
- every Core ML package vs contract (as the conversion gate judges it).

Any disagreement is `fail` naming both sides. `require_tokenizer_fingerprint`
does not apply to this kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gates.engine.protocol import Gate, GateContext
from gates.engine.spec import ModelSpec
from gates.model.contract import judge
from gates.model.module_kind.checkpoint import weights_file
from gates.model.module_kind.conversion import package_problems
from gates.model.shared import shared_module, shared_module_artifacts
from gates.result import GateResult, Status

FIXED_CHECKS = 4  # schema, exported program, declarations, identity; the rest are packages


def program_problems(contract: Any, bundle: Any) -> list[str]:
    from pipeline.contract import compare_tensors

    return (compare_tensors(contract.tensors("inputs"), bundle.inputs, what="exported inputs")
            + compare_tensors(contract.tensors("outputs"), bundle.outputs, what="exported outputs"))


def declaration_problems(contract: Any, io: Any) -> list[str]:
    declared = io.to_dict()
    doc, problems = contract.doc, []
    if doc["dims"] != declared["dims"]:
        problems.append(f"dims {doc['dims']} != configured {declared['dims']}")
    by_name = {i["name"]: {**i, "shape": _exported_shape(io, i["shape"])} for i in declared["inputs"]}
    for tensor in doc["inputs"]:
        want = by_name.get(tensor["name"], {})
        for key in ("shape", "value_range", "image"):
            if tensor.get(key) != want.get(key):
                problems.append(f"input {tensor['name']} {key}: contract {tensor.get(key)!r}, "
                                f"configured {want.get(key)!r}")
    kinds = {o["name"]: o["kind"] for o in declared["outputs"]}
    for tensor in doc["outputs"]:
        if tensor["name"] in kinds and tensor["kind"] != kinds[tensor["name"]]:
            problems.append(f"output {tensor['name']} kind: contract {tensor['kind']}, "
                            f"configured {kinds[tensor['name']]}")
    return problems


def _exported_shape(io: Any, shape: list) -> list:
    """A declared shape as the exported graph holds it: a dimension of one size is a constant."""
    return [io.dim(d).candidates[0] if isinstance(d, str) and len(io.dim(d).candidates) == 1 else d
            for d in shape]


def identity_problems(contract: Any, weights_hash: str, stored_arch: dict | None) -> list[str]:
    doc, problems = contract.doc, []
    if doc["arch_hash"] != weights_hash:
        problems.append(f"contract arch_hash {doc['arch_hash'][:12]} != loaded weights {weights_hash[:12]}")
    for key, value in (stored_arch or {}).items():
        if key in doc["model_arch"] and doc["model_arch"][key] != value:
            problems.append(f"model_arch {key}: contract {doc['model_arch'][key]!r}, checkpoint {value!r}")
    return problems


def _stored_arch(model: ModelSpec, root: Path) -> dict | None:
    from pipeline.checkpoint import CheckpointError, read_checkpoint

    path = weights_file(model, root)
    if path is None or not path.is_file():
        return None
    try:
        return dict(read_checkpoint(path).model_arch) or None
    except CheckpointError:
        return None  # the checkpoint gate reports it


def check(gate: Gate, ctx: GateContext, model: ModelSpec) -> GateResult:
    from pipeline.checkpoint import arch_hash
    from pipeline.contract import ContractError
    from pipeline.module_contract import load_module_contract, save_module_contract

    arts, loaded = shared_module_artifacts(ctx), shared_module(ctx)
    if arts.contract is None:
        return GateResult(name=gate.name, status=Status.ERROR, severity=gate.severity,
                          summary="no contract was built: " + arts.errors.get("contract", "unknown"))
    path = save_module_contract(arts.contract, Path(ctx.work_dir) / ctx.settings.contract_name)
    try:
        contract = load_module_contract(path)
    except ContractError as exc:
        return _result(gate, {"schema": [str(exc)]}, path)
    checks = {"schema": [], "exported program": program_problems(contract, arts.export),
              "declarations": declaration_problems(contract, model.module_io),
              "identity": identity_problems(contract, arch_hash(loaded.module.state_dict()),
                                            _stored_arch(model, ctx.root))}
    for precision, package in arts.coreml.items():
        checks[package.name] = package_problems(model.module_io, contract, package, precision,
                                                arts.options.deployment_target)
    return _result(gate, checks, path)


def _result(gate: Gate, checks: dict[str, list[str]], path: Path) -> GateResult:
    if len(checks) > 1:
        status, score, summary = judge(checks)
        if status is Status.PASS:
            summary = (f"module contract, exported program, declarations and "
                       f"{len(checks) - FIXED_CHECKS} packages agree")
    else:
        status, score, summary = Status.FAIL, 0.0, checks["schema"][0]
    table = {"title": "Module contract cross-checks", "columns": ["check", "status", "problems"],
             "rows": [[name, "failed" if p else "ok", "; ".join(p)] for name, p in checks.items()]}
    return GateResult(
        name=gate.name, status=status, severity=gate.severity, score=score, summary=summary,
        metrics={"checks": len(checks), "checks_ok": sum(not p for p in checks.values()),
                 "packages_checked": max(0, len(checks) - FIXED_CHECKS)},
        remediation="" if status is Status.PASS else
        "Re-export and re-convert from the same weights and declarations so names, shapes and hashes agree.",
        evidence={"tables": [table], "files": [str(path)],
                  "failures": [{"title": n, "detail": p} for n, problems in checks.items() for p in problems]})
