"""The `checkpoint` gate for a module model: does it load safely, run, and run sanely?

Checks, one evidence row each:
- `loads safely`: the checkpoint file (or an `hf:` folder's
  `model.safetensors`) reads without pickle, its stored arch hash matching
  its weights; not checked when the adapter supplies its own weights;
- `outputs named`: where the output names come from;
- `forward pass`: the default shape runs and every output is finite;
- `deterministic`: the same input twice gives the same outputs; a failure
  names the random ATen ops that ran and the submodule that ran them (a
  dropout left active at inference);
- `batch independent`: the largest declared batch equals its rows run as
  the smallest batch (an output that depends on its batch companions fails
  here); not checked without a batch dimension of two sizes.

Metrics: `checks`, `checks_ok`, `checks_ok_pct`, `params`, `arch_hash`,
`weights_mapped` (and the *Memory* table, as for a decoder),
`determinism_max_abs_err`, `batch_max_rel_err`. `fail` on a failed check,
`warn` when one could not apply; the gate's decoder settings do not apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gates.engine.protocol import Gate, GateContext, GateError
from gates.engine.spec import ModelSpec
from gates.model.checkpoint import FAILED, NOT_CHECKED, OK, Check, judge, memory_table, read_weights
from gates.model.shared import resolve, shared_mapped_weights, shared_module
from gates.result import GateResult, Status


def weights_file(model: ModelSpec, root: Path) -> Path | None:
    """The weights file to read: the configured checkpoint, else an `hf:` folder's safetensors."""
    path = resolve(model.checkpoint, root)
    if path is None and model.adapter.startswith("hf:"):
        folder = resolve(model.adapter.removeprefix("hf:"), root)
        path = folder / "model.safetensors" if folder is not None else None
    return path


def as_check(name: str, observation: Any) -> Check:
    status = NOT_CHECKED if observation.ok is None else OK if observation.ok else FAILED
    return Check(name=name, status=status, detail=observation.detail)


def check(gate: Gate, ctx: GateContext, model: ModelSpec) -> GateResult:
    from pipeline import module_checks
    from pipeline.checkpoint import arch_hash

    path = weights_file(model, ctx.root)
    if path is not None and not path.is_file():
        raise GateError(f"{path}: checkpoint file not found")
    checks = []
    if path is None:
        checks.append(Check(name="loads safely", status=NOT_CHECKED,
                            detail="no checkpoint file configured: the adapter supplies the weights"))
    else:
        loaded, _ = read_weights(path)
        checks.append(loaded)
        if loaded.status == FAILED:
            return _result(gate, checks, {}, path)
    module = shared_module(ctx)
    declared = [o.name for o in model.module_io.outputs]  # type: ignore[union-attr]
    source = "the configuration" if declared else "the module"
    checks.append(Check(name="outputs named", status=OK, detail=f"{', '.join(module.output_names)} (from {source})"))
    observations = {"forward pass": module_checks.forward(module)}
    if observations["forward pass"].ok:
        observations["deterministic"] = module_checks.determinism(module)
        observations["batch independent"] = module_checks.batch_independence(module)
    checks += [as_check(name, obs) for name, obs in observations.items()]
    weights = shared_mapped_weights(ctx, module.module)
    metrics = {"params": sum(p.numel() for p in module.module.parameters()),
               "arch_hash": arch_hash(module.module.state_dict()), "weights_mapped": weights.mapped}
    for key, name in (("determinism_max_abs_err", "deterministic"), ("batch_max_rel_err", "batch independent")):
        if name in observations and observations[name].max_abs_err is not None:
            metrics[key] = observations[name].max_abs_err
    return _result(gate, checks, metrics, path, dict(module.arch), memory_table(weights))


def _result(gate: Gate, checks: list[Check], metrics: dict[str, Any], path: Path | None,
            arch: dict[str, Any] | None = None, memory: dict[str, Any] | None = None) -> GateResult:
    status, score, summary = judge(checks)
    ok = sum(c.status == OK for c in checks)
    evaluated = sum(c.status != NOT_CHECKED for c in checks)
    metrics = {"checks": evaluated, "checks_ok": ok,
               "checks_ok_pct": round(100.0 * ok / evaluated, 2) if evaluated else 0.0, **metrics}
    tables: list[dict[str, Any]] = [{"title": "Checkpoint checks (kind = module)",
                                     "columns": ["check", "status", "detail"],
                                     "rows": [[c.name, c.status, c.detail] for c in checks]}]
    if arch:
        tables.append({"title": "Architecture", "columns": ["field", "value"],
                       "rows": [[k, v if isinstance(v, (int, float, str)) or v is None else str(v)]
                                for k, v in sorted(arch.items())]})
    if memory:
        tables.append(memory)
    return GateResult(
        name=gate.name, status=status, severity=gate.severity, score=score, summary=summary, metrics=metrics,
        remediation="" if status is Status.PASS else
        "Put every dropout and batch statistic in inference mode (model.eval() must reach them; "
        "F.dropout defaults to training=True), and save the weights as safetensors.",
        evidence={"tables": tables, "files": [str(path)] if path else [],
                  "failures": [{"title": c.name, "detail": c.detail} for c in checks if c.status == FAILED]})
