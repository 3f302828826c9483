"""The contract gate: contract, exported program and converted packages agree, and match the checkpoint.

It writes the model's contract (pipeline/schemas/contract-v1.json) to
`ctx.work_dir / contract_name`, loads it back through the schema and the
consistency checks, and then cross-checks:

- exported program vs contract: the names, dtypes and symbolic shapes read
  from the exported graphs equal the contract's, prefill and decode;
- every converted Core ML package vs contract: names, dtypes (float16 in fp16
  packages) and shapes; the KV layout (per-layer k/v names present in the
  decode package with [B, n_kv_heads, T_cache, d_head]);
- the model adapter's names vs the contract's KV layout;
- `arch_hash` vs the checkpoint file read afresh (and vs the loaded weights),
  `model_arch` vs the checkpoint's metadata, and the tokenizer fingerprint vs
  the tokenizer file when one is configured.

Verdict: any disagreement is `fail` naming both sides; all checks agreeing is
`pass`. Settings: `contract_name`, `require_tokenizer_fingerprint` (a missing
fingerprint fails instead of being skipped). Evidence: a table of checks, a
failure per problem, the contract file in `files`. `error`: no contract could
be built (the message says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from gates.engine.protocol import GateContext
from gates.engine.spec import ModelKind, ModelSpec
from gates.model.conversion import package_problems
from gates.model.shared import ModelGate, resolve, shared_adapter, shared_artifacts
from gates.result import GateResult, Status

if TYPE_CHECKING:
    from pipeline.adapter import ModelAdapter


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    contract_name: str = "contract.json"
    require_tokenizer_fingerprint: bool = False


def program_problems(contract: Any, bundle: Any) -> list[str]:
    """The exported graphs' tensors against the contract's (exact, symbolic)."""
    from pipeline.contract import compare_tensors

    problems = []
    for kind, io in (("prefill", bundle.prefill_io), ("decode", bundle.decode_io)):
        for side, got in zip(("inputs", "outputs"), io):
            problems += compare_tensors(contract.tensors(kind, side), got, what=f"exported {kind} {side}")
    return problems


def layout_problems(contract: Any, adapter: ModelAdapter) -> list[str]:
    """The adapter's cache names against the contract's KV layout."""
    layout = contract.doc["kv_layout"]
    names_in = [n for layer in layout["layers"] for n in (layer["k"], layer["v"])]
    names_out = [n for layer in layout["layers"] for n in (layer["k_out"], layer["v_out"])]
    problems = []
    if list(adapter.decode_input_names())[2:] != names_in:
        problems.append(f"decode cache inputs {list(adapter.decode_input_names())[2:]} != kv_layout {names_in}")
    if list(adapter.decode_output_names())[1:] != names_out:
        problems.append(f"decode cache outputs {list(adapter.decode_output_names())[1:]} != kv_layout {names_out}")
    for key in ("n_layers", "n_kv_heads", "d_head"):
        if getattr(adapter, key) != layout[key]:
            problems.append(f"adapter {key}={getattr(adapter, key)} but kv_layout {key}={layout[key]}")
    return problems


def identity_problems(contract: Any, arch_hash: str, weights_hash: str, model_arch: Mapping[str, Any] | None,
                      tokenizer_fp: str | None, require_fp: bool) -> list[str]:
    doc, problems = contract.doc, []
    if doc["arch_hash"] != arch_hash:
        problems.append(f"contract arch_hash {doc['arch_hash'][:12]} != checkpoint {arch_hash[:12]}")
    if doc["arch_hash"] != weights_hash:
        problems.append(f"contract arch_hash {doc['arch_hash'][:12]} != loaded weights {weights_hash[:12]}")
    for key, value in (model_arch or {}).items():
        if doc["model_arch"].get(key) != value:
            problems.append(f"model_arch {key}: contract {doc['model_arch'].get(key)!r}, checkpoint {value!r}")
    if tokenizer_fp is not None and doc["tokenizer_fingerprint"] != tokenizer_fp:
        problems.append(f"tokenizer fingerprint {str(doc['tokenizer_fingerprint'])[:12]} != "
                        f"tokenizer file {tokenizer_fp[:12]}")
    if require_fp and not doc["tokenizer_fingerprint"]:
        problems.append("the contract carries no tokenizer fingerprint")
    return problems


def judge(checks: dict[str, list[str]]) -> tuple[Status, float | None, str]:
    if not checks:
        return Status.ERROR, None, "nothing was cross-checked"
    bad = [name for name, problems in checks.items() if problems]
    score = round(1 - len(bad) / len(checks), 4)
    if bad:
        return Status.FAIL, score, f"contract disagrees: {', '.join(bad)}"
    return Status.PASS, score, f"contract, exported programs and {len(checks) - 4} packages agree"


class ContractGate(ModelGate, name="contract", needs=("conversion",), settings=Settings):

    def check_model(self, ctx: GateContext, model: ModelSpec) -> GateResult:
        from pipeline.artifacts import model_identity, weights_arch_hash
        from pipeline.contract import ContractError, load_contract, save_contract
        from pipeline.to_coreml import PackageError, read_package

        if model.kind == ModelKind.MODULE:
            from gates.model.module_kind import contract as module_kind

            return module_kind.check(self, ctx, model)
        arts, adapter = shared_artifacts(ctx), shared_adapter(ctx)
        if arts.contract is None:
            return GateResult(name=self.name, status=Status.ERROR, severity=self.severity,
                              summary="no contract was built: " + arts.errors.get("contract", "unknown"))
        path = save_contract(arts.contract, Path(ctx.work_dir) / ctx.settings.contract_name)
        try:
            contract = load_contract(path)
        except ContractError as exc:
            return self._result({"schema": [str(exc)]}, path)
        arch_hash, tokenizer_fp = model_identity(resolve(model.checkpoint, ctx.root),
                                                 resolve(model.tokenizer, ctx.root), adapter)
        checks = {
            "schema": [],
            "exported program": program_problems(contract, arts.export),
            "kv layout": layout_problems(contract, adapter),
            "identity": identity_problems(contract, arch_hash, weights_arch_hash(adapter.module),
                                          _checkpoint_arch(model, ctx.root), tokenizer_fp,
                                          ctx.settings.require_tokenizer_fingerprint),
        }
        for key, pkg in arts.coreml.items():
            try:
                checks[key.filename] = package_problems(contract, key.kind, key.precision, key.length,
                                                        read_package(pkg), arts.export.cache_range,
                                                        arts.options.deployment_target)
            except PackageError as exc:
                checks[key.filename] = [str(exc)]
        return self._result(checks, path)

    def _result(self, checks: dict[str, list[str]], path: Path) -> GateResult:
        status, score, summary = judge(checks) if len(checks) > 1 else (Status.FAIL, 0.0, checks["schema"][0])
        table = {"title": "Contract cross-checks", "columns": ["check", "status", "problems"],
                 "rows": [[name, "failed" if p else "ok", "; ".join(p)] for name, p in checks.items()]}
        failures = [{"title": name, "detail": p} for name, problems in checks.items() for p in problems]
        return GateResult(name=self.name, status=status, severity=self.severity, score=score, summary=summary,
                          metrics={"checks": len(checks), "checks_ok": sum(not p for p in checks.values()),
                                   "packages_checked": max(0, len(checks) - 4)},
                          remediation="" if status is Status.PASS else
                          "Re-export and re-convert from the same checkpoint so names, shapes and hashes agree.",
                          evidence={"tables": [table], "failures": failures, "files": [str(path)]})


def _checkpoint_arch(model: ModelSpec, root: Path) -> Mapping[str, Any] | None:
    from pipeline.checkpoint import read_checkpoint

    path = resolve(model.checkpoint, root)
    if path is None or not path.is_file():
        return None
    return read_checkpoint(path).model_arch or None
