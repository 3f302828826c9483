"""The `semantics` gate: does the model behave like a causal decoder with a working cache?

Runs the eager model (the adapter shared under `ctx.memo["adapter"]`) on a
seeded batch of `batch_size` sequences of `sample_length` tokens:
- `causality`: for several cut points t, replacing every token after t
  never changes logits at or before t (max abs difference <= `causal_atol`);
- `prefill/decode`: prefill `prefix_length` tokens, then decode the rest one
  token at a time through the returned cache at its true position; each
  step's logits must match full-prefill logits within `decode_atol`, and each
  step's cache must grow by exactly one position;
- `determinism`: the same prefill twice gives identical outputs;
- `finite`: no NaN or Inf in any output of any run.

Metrics: `checks`, `checks_ok`, `checks_ok_pct`, `causality_max_abs_err`,
`decode_max_abs_err`, `determinism_max_abs_err`, `nonfinite_values`,
`decode_steps`, `cut_points`. Evidence: a row per check with its worst error,
and failures naming the first offending position.

`fail` when any check fails (an exception raised by the model's own code
fails its check); `error` when the model cannot load or a setting is out of
range; `not_evaluable` when no model is configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gates.engine.protocol import GateContext, GateError
from gates.engine.spec import ModelKind, ModelSpec
from gates.model.shared import ModelGate, judge_checks, resolve, sample_ids, shared_adapter
from gates.result import GateResult, Status

if TYPE_CHECKING:
    from pipeline.adapter import ModelAdapter


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    sample_length: int = 24
    prefix_length: int = 4
    batch_size: int = 2
    causal_atol: float = 1e-5
    decode_atol: float = 1e-4
    seed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    name: str
    ok: bool
    max_abs_err: float | None
    detail: str
    nonfinite: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# -- measuring ------------------------------------------------------------------

def _nonfinite(tensors: Any) -> int:
    import torch

    return sum(int((~torch.isfinite(t)).sum()) for t in tensors if t.is_floating_point())


def _prefill(adapter: ModelAdapter, ids: Any) -> tuple[Any, ...]:
    import torch

    with torch.no_grad():
        return tuple(adapter.prefill_module()(ids))


def causality(adapter: ModelAdapter, ids: Any, atol: float, seed: int) -> Outcome:
    """Change tokens after each cut point; earlier logits must not move."""
    import torch

    t = ids.shape[1]
    cuts = sorted({0, t // 4, t // 2, t - 2} - {-1})
    gen = torch.Generator().manual_seed(seed + 1)
    base = _prefill(adapter, ids)
    worst, first_bad, nonfinite = 0.0, "", _nonfinite(base)
    for cut in cuts:
        changed = ids.clone()
        noise = torch.randint(1, adapter.vocab_size, changed[:, cut + 1:].shape, generator=gen, dtype=torch.int32)
        changed[:, cut + 1:] = (changed[:, cut + 1:] + noise) % adapter.vocab_size
        out = _prefill(adapter, changed)
        nonfinite += _nonfinite(out)
        err = float((out[0][:, :cut + 1] - base[0][:, :cut + 1]).abs().max())
        if err > worst:
            worst = err
        if err > atol and not first_bad:
            first_bad = f"changing tokens after position {cut} moved logits at or before it by {err:.3g}"
    ok = worst <= atol
    return Outcome(name="causality", ok=ok, max_abs_err=worst, nonfinite=nonfinite,
                   detail=first_bad or f"{len(cuts)} cut points, max change {worst:.3g} <= {atol:g}",
                   extra={"cut_points": len(cuts)})


def decode_consistency(adapter: ModelAdapter, ids: Any, prefix: int, atol: float) -> Outcome:
    """Prefill a prefix, decode the rest through the cache, compare with full prefill."""
    import torch

    heads = 2 if adapter.has_halt_head else 1
    full = _prefill(adapter, ids)
    caches = _prefill(adapter, ids[:, :prefix])[heads:]
    decode = adapter.decode_module()
    worst, first_bad, nonfinite, steps = 0.0, "", _nonfinite(full), 0
    for pos in range(prefix, ids.shape[1]):
        with torch.no_grad():
            out = tuple(decode(ids[:, pos:pos + 1], torch.tensor([pos], dtype=torch.int32), *caches))
        logits, caches = out[0], out[1:]
        nonfinite += _nonfinite(out)
        steps += 1
        lengths = {int(c.shape[2]) for c in caches}
        if lengths != {pos + 1}:
            return Outcome(name="prefill/decode", ok=False, max_abs_err=None, nonfinite=nonfinite,
                           detail=f"decode at position {pos} returned cache lengths {sorted(lengths)}, "
                                  f"expected {pos + 1}", extra={"decode_steps": steps})
        err = float((logits[:, 0] - full[0][:, pos]).abs().max())
        worst = max(worst, err)
        if err > atol and not first_bad:
            first_bad = f"decode logits at position {pos} differ from prefill by {err:.3g}"
    return Outcome(name="prefill/decode", ok=worst <= atol, max_abs_err=worst, nonfinite=nonfinite,
                   detail=first_bad or f"{steps} decode steps, max error {worst:.3g} <= {atol:g}",
                   extra={"decode_steps": steps})


def determinism(adapter: ModelAdapter, ids: Any) -> Outcome:
    first, second = _prefill(adapter, ids), _prefill(adapter, ids)
    worst = max(float((a - b).abs().max()) for a, b in zip(first, second))
    ok = worst == 0.0
    return Outcome(name="determinism", ok=ok, max_abs_err=worst, nonfinite=_nonfinite(first),
                   detail="two prefills are identical" if ok else f"two prefills differ by {worst:.3g}")


def guarded(name: str, run: Any) -> Outcome:
    """Run one check; an exception from the model's code is that check's failure."""
    try:
        return run()
    except GateError:
        raise
    except Exception as exc:
        return Outcome(name=name, ok=False, max_abs_err=None,
                       detail=f"model raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


# -- judging ----------------------------------------------------------------------

def judge(outcomes: list[Outcome]) -> tuple[Status, float, str]:
    return judge_checks(outcomes, "semantic checks")


class SemanticsGate(ModelGate, name="semantics", needs=("checkpoint",), settings=Settings,
                    kinds=(ModelKind.DECODER,)):  # kind = "module": not applicable, reported as such

    def check_model(self, ctx: GateContext, model: ModelSpec) -> GateResult:
        import torch

        s = ctx.settings
        if not 1 <= s.prefix_length < s.sample_length - 1:
            raise GateError(f"setting prefix_length {s.prefix_length} must be in 1..sample_length-2")
        adapter = shared_adapter(ctx)
        tok = resolve(model.tokenizer, ctx.root)
        rows = [sample_ids(tok if b == 0 and tok and tok.is_file() else None, adapter.vocab_size,
                           s.sample_length, seed=s.seed + b) for b in range(s.batch_size)]
        ids = torch.tensor(rows, dtype=torch.int32)
        outcomes = [guarded("causality", lambda: causality(adapter, ids, s.causal_atol, s.seed)),
                    guarded("prefill/decode", lambda: decode_consistency(adapter, ids, s.prefix_length,
                                                                         s.decode_atol)),
                    guarded("determinism", lambda: determinism(adapter, ids))]
        nonfinite = sum(o.nonfinite for o in outcomes)
        outcomes.append(Outcome(name="finite", ok=nonfinite == 0, max_abs_err=None,
                                detail=f"{nonfinite} NaN/Inf values in the outputs" if nonfinite
                                else "no NaN/Inf in any output"))
        return self._result(outcomes, nonfinite, tuple(ids.shape))

    def _result(self, outcomes: list[Outcome], nonfinite: int, shape: tuple[int, ...]) -> GateResult:
        status, score, summary = judge(outcomes)
        ok = sum(o.ok for o in outcomes)
        by_name = {o.name: o for o in outcomes}
        metrics: dict[str, Any] = {"checks": len(outcomes), "checks_ok": ok,
                                   "checks_ok_pct": round(100.0 * ok / len(outcomes), 2),
                                   "nonfinite_values": nonfinite}
        for key, name in (("causality", "causality"), ("decode", "prefill/decode"),
                          ("determinism", "determinism")):
            err = by_name[name].max_abs_err
            if err is not None:
                metrics[f"{key}_max_abs_err"] = err
        for o in outcomes:
            metrics.update(o.extra)
        table = {"title": f"Semantic checks on input {list(shape)}",
                 "columns": ["check", "status", "max abs err", "detail"],
                 "rows": [[o.name, "ok" if o.ok else "failed", o.max_abs_err, o.detail] for o in outcomes]}
        return GateResult(
            name=self.name, status=status, severity=self.severity, score=score, summary=summary,
            metrics=metrics, evidence={"tables": [table], "failures": [
                {"title": o.name, "detail": o.detail} for o in outcomes if not o.ok]},
            remediation="" if status is Status.PASS else
            "A causality failure means a missing or wrong causal mask; a prefill/decode mismatch means "
            "decode ignores its cache or its position (check the rotary gather and the mask row).")
