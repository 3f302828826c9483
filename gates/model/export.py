"""The export gate: torch.export programs that run, and agree with eager, at every length.

It exports prefill (one program with a dynamic `T`, or one per length) and
decode (KV cache in and out, a real position input), then validates each
enumerated length on inputs other than the export example: the program runs,
returns the named outputs with the declared shapes, no NaN/Inf, within `atol`
of eager. Decode runs `decode_steps` steps with the cache threaded through and
is compared with eager decode and with eager prefill of the whole sequence —
a decode that ignores its cache or position fails here even though it agrees
with itself.

Verdict: the primary length or decode failing is `fail` (this is a blocker
gate); only non-primary lengths failing is `warn`; a dynamic prefill export
that failed while every length exports and matches on its own is `warn` (the
model ships per length, not as one enumerated program); every row ok is
`pass`. The summary names what the failed rows observed (`the prefill is
not causal`, `it ignores its KV cache`, ...), never a guessed cause.
Evidence: the per-length table {T, status, reason, max_abs_err}, the decode
table, and a failure entry per failed row (the whole exception message and
the model's file:line when an export failed) plus one for a failed dynamic
prefill export. Settings: `atol` (program vs
eager), `decode_prefill_atol` (decode vs prefill), `decode_steps`,
`decode_prompt_length`, `per_length` (one static program per length, and one
Core ML package per length). Lengths, primary length, precisions, targets and
deployment target come from the model spec (`[tool.readiness.model]`).

`error` rather than `fail`: the model cannot be loaded, or no row at all could
be produced. `not_evaluable`: no model is configured.

Other gates get the same adapter and artifacts through
`gates.model.shared` (`shared_adapter(ctx)`, `shared_artifacts(ctx)`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Sequence

from gates.engine.protocol import GateContext
from gates.engine.spec import ModelKind, ModelSpec
from gates.model.shared import BuildSettings, ModelGate, shared_artifacts
from gates.result import GateResult, Status

# The export gate's settings decide how the shared artifacts are built, so they live with that memo.
Settings = BuildSettings


def length_table(rows: Sequence[Any], primary: int) -> dict[str, Any]:
    return {"title": "Prefill validation per length",
            "columns": ["T", "primary", "status", "max_abs_err", "reason"],
            "rows": [[r.T, "yes" if r.T == primary else "", r.status, r.max_abs_err, r.reason] for r in rows]}


def decode_table(rows: Sequence[Any]) -> dict[str, Any]:
    return {"title": "Decode validation (cache threaded through)",
            "columns": ["step", "position", "status", "max_abs_err vs eager decode",
                        "abs_err vs eager prefill", "reason"],
            "rows": [[r.step, r.position, r.status, r.max_abs_err, r.prefill_abs_err, r.reason] for r in rows]}


def measure(bundle: Any) -> dict[str, Any]:
    """Flat metrics of an ExportBundle."""
    ok = [r for r in bundle.rows if r.status == "ok"]
    decode_ok = [r for r in bundle.decode_rows if r.status == "ok"]
    errs = [r.max_abs_err for r in bundle.rows if r.max_abs_err is not None]
    d_errs = [r.prefill_abs_err for r in bundle.decode_rows if r.prefill_abs_err is not None]
    metrics = {"lengths_checked": len(bundle.rows), "lengths_ok": len(ok),
               "primary_length": bundle.options.primary_length, "primary_ok": int(bundle.primary_ok),
               "decode_steps_checked": len(bundle.decode_rows), "decode_steps_ok": len(decode_ok),
               "max_abs_err": max(errs) if errs else None,
               "decode_prefill_max_abs_err": max(d_errs) if d_errs else None}
    if bundle.options.dynamic_attempted:
        metrics["dynamic_prefill_ok"] = int(not bundle.dynamic_failed)
    return metrics


def _decode_findings(bundle: Any) -> str:
    """What the failed decode steps observed, each named once, in the order seen."""
    seen = dict.fromkeys(f.value for r in bundle.decode_rows if r.status != "ok" for f in r.findings)
    return ", ".join(seen) or "see its rows"


def judge(bundle: Any) -> tuple[Status, float | None, str]:
    """Primary or decode failing: fail; another length failing, or only the dynamic
    prefill export failing (every length exports on its own): warn; all ok: pass."""
    m = measure(bundle)
    total = m["lengths_checked"] + m["decode_steps_checked"]
    if not m["lengths_checked"] or not m["decode_steps_checked"]:
        return Status.ERROR, None, "no length or no decode step could be validated"
    # the one dynamic program counts as one more check when it was tried
    checks = total + ("dynamic_prefill_ok" in m)
    score = round((m["lengths_ok"] + m["decode_steps_ok"] + m.get("dynamic_prefill_ok", 0)) / checks, 4)
    failed = sorted(r.T for r in bundle.rows if r.status != "ok")
    decode_failed = m["decode_steps_ok"] < m["decode_steps_checked"]
    counts = (f"{m['lengths_ok']}/{m['lengths_checked']} lengths, "
              f"{m['decode_steps_ok']}/{m['decode_steps_checked']} decode steps ok")
    dynamic = "the dynamic prefill export failed" if bundle.dynamic_failed else ""
    if not bundle.primary_ok or decode_failed:
        what = []
        if not bundle.primary_ok:
            row = bundle.row(bundle.options.primary_length)
            finding = f": {row.finding.value}" if row is not None and row.finding is not None else ""
            what.append(f"primary length T={bundle.options.primary_length} failed{finding}")
        if decode_failed:
            what.append(f"decode failed: {_decode_findings(bundle)}")
        return Status.FAIL, score, f"{'; '.join(what + [dynamic] if dynamic else what)} ({counts})"
    if failed:
        return Status.WARN, score, f"lengths {failed} failed, primary ok{'; ' + dynamic if dynamic else ''} ({counts})"
    if dynamic:
        return Status.WARN, score, (f"{dynamic}; every length exports and matches eager on its own "
                                    f"({counts})")
    return Status.PASS, score, f"every length and decode step matches eager ({counts})"


def failures(bundle: Any) -> list[dict[str, str]]:
    out = [{"title": f"prefill T={r.T}", "detail": r.detail or r.reason} for r in bundle.rows if r.status != "ok"]
    out += [{"title": f"decode step {r.step} (position {r.position})", "detail": r.detail or r.reason}
            for r in bundle.decode_rows if r.status != "ok"]
    titles = {"prefill_dynamic": (f"prefill export with a dynamic T over [{min(bundle.options.lengths)}, "
                                  f"{max(bundle.options.lengths)}]")}
    # a failed decode export is already its decode row; the dynamic prefill export has no row of its own
    out += [{"title": titles.get(k, f"export {k}"), "detail": bundle.details.get(k, v)}
            for k, v in bundle.errors.items() if k != "decode" or not bundle.decode_rows]
    return out


def remediation(bundle: Any, status: Status) -> str:
    if status is Status.PASS:
        return ""
    if bundle.dynamic_failed and all(r.status == "ok" for r in bundle.rows):
        return ("One program with a dynamic length could not be exported (see its failure for the model line): "
                "fix that line, or set `per_length = true` to ship one program per length.")
    if status is Status.WARN:
        return "Non-primary lengths fail: drop them from `lengths` or fix the model for them."
    return ("Fix what the failing rows observed: an export failure names the model line; a prefill that is not "
            "causal needs its causal mask; a decode that ignores its cache or position needs them wired in.")


class ExportGate(ModelGate, name="export", needs=("checkpoint",), settings=Settings):

    def check_model(self, ctx: GateContext, model: ModelSpec) -> GateResult:
        if model.kind == ModelKind.MODULE:
            from gates.model.module_kind import export as module_kind

            return module_kind.check(self, ctx, model)
        bundle = shared_artifacts(ctx, ctx.settings).export
        status, score, summary = judge(bundle)
        return GateResult(name=self.name, status=status, severity=self.severity, score=score,
                          summary=summary, metrics=measure(bundle),
                          remediation=remediation(bundle, status),
                          evidence={"tables": [length_table(bundle.rows, bundle.options.primary_length),
                                               decode_table(bundle.decode_rows)],
                                    "failures": failures(bundle),
                                    # read back by shared_artifacts() when this result is cached
                                    "settings": asdict(ctx.settings)})
