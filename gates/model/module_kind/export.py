"""The `export` gate for a module model: one torch.export program that agrees with eager at every shape.

Every shape case (each combination of the declared dimensions' enumerated
values and range ends) is run through the exported program on inputs other
than the export example: it runs, returns the named outputs with the
shapes eager gives, all finite, within `atol` of eager. Any failed case is
`fail` (a package promises every enumerated shape); a failed export fails
every case with the exporter's message and the model line it names.
Evidence: the per-shape table and a failure per failed case. `error`: no
case could be produced at all.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from gates.engine.protocol import Gate, GateContext
from gates.engine.spec import ModelSpec
from gates.model.shared import shared_module_artifacts
from gates.result import GateResult, Status


def shape_table(bundle: Any, default: str) -> dict[str, Any]:
    return {"title": "Export validation per shape",
            "columns": ["shape", "default", "status", "max_abs_err", "reason"],
            "rows": [[r.shape, "yes" if r.shape == default else "", r.status, r.max_abs_err, r.reason]
                     for r in bundle.rows]}


def judge(bundle: Any) -> tuple[Status, float | None, str]:
    rows = list(bundle.rows)
    if not rows:
        return Status.ERROR, None, "no shape case could be validated"
    ok = [r for r in rows if r.status == "ok"]
    score = round(len(ok) / len(rows), 4)
    failed = [r for r in rows if r.status != "ok"]
    if failed:
        finding = failed[0].finding.value if failed[0].finding is not None else failed[0].reason
        shapes = ", ".join(r.shape for r in failed[:4]) + (" and more" if len(failed) > 4 else "")
        return Status.FAIL, score, f"{len(failed)} of {len(rows)} shapes fail ({shapes}): {finding}"
    return Status.PASS, score, f"every shape matches eager ({len(ok)} shapes)"


def check(gate: Gate, ctx: GateContext, model: ModelSpec) -> GateResult:
    arts = shared_module_artifacts(ctx, ctx.settings)
    bundle = arts.export
    status, score, summary = judge(bundle)
    errs = [r.max_abs_err for r in bundle.rows if r.max_abs_err is not None]
    failures = [{"title": f"shape {r.shape}", "detail": r.detail or r.reason} for r in bundle.rows if r.status != "ok"]
    return GateResult(
        name=gate.name, status=status, severity=gate.severity, score=score, summary=summary,
        metrics={"shapes_checked": len(bundle.rows), "shapes_ok": sum(r.status == "ok" for r in bundle.rows),
                 "max_abs_err": max(errs) if errs else None},
        remediation="" if status is Status.PASS else
        "Fix what the failing shapes observed: an export failure names the model line; a shape that differs "
        "from eager points at shape-dependent code (a size read with .item(), a Python branch on a size).",
        evidence={"tables": [shape_table(bundle, model.module_io.default_case().label)],  # type: ignore[union-attr]
                  "failures": failures, "settings": asdict(ctx.settings)})
