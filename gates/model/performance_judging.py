"""Judging the performance gate's evidence: budgets, findings, the verdict.

Pure functions over the JSON-able evidence the gate writes (and `merge`
rebuilds), so a merged result is judged exactly as a fresh one.

A budget is a number for every target (`max_decode_ms = 20`) or a table of
numbers by target key (`max_decode_ms = {onnx_fp32 = 20}`). Each budget a
target has is one `Check` with an `Outcome`:

- size is deterministic: `missed` when the size, rounded as the report shows
  it (two decimals of MB), exceeds the limit;
- a timing is an interval, never one run: `missed` only when the whole
  interval is past the limit, `met` only when the whole interval is inside
  it, `undecided` (a warning: measure again on a quieter machine) when the
  limit falls inside the interval;
- `unjudged` when the figure was not measured here (Core ML latency off
  macOS): never a pass.

Findings need no budget: a decode step whose *weight* MACs grow with the
cache length re-projects its cache every step (only attention over the
cache should grow with it).
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

TARGET_KEYS = ("coreml_fp32", "coreml_fp16", "onnx_fp32")
REFERENCE = "torch"
MB = 1_000_000


class Budget(enum.StrEnum):
    MAX_PACKAGE_MB = "max_package_mb"
    MAX_DECODE_MS = "max_decode_ms"
    MIN_PREFILL_TOKENS_PER_S = "min_prefill_tokens_per_s"
    MAX_DECODE_GROWTH = "max_decode_growth"


class Outcome(enum.StrEnum):
    MET = "met"
    MISSED = "missed"
    UNDECIDED = "undecided"
    UNJUDGED = "unjudged"


UNITS = {Budget.MAX_PACKAGE_MB: "MB", Budget.MAX_DECODE_MS: "ms",
         Budget.MIN_PREFILL_TOKENS_PER_S: "tokens/s", Budget.MAX_DECODE_GROWTH: "×"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One budget against one target."""

    budget: Budget
    target: str
    limit: float
    outcome: Outcome
    where: str = ""  # "decode at T=512", "prefill at T=64"
    value: float | None = None
    low: float | None = None
    high: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget.value, "target": self.target, "limit": self.limit,
                "outcome": self.outcome.value, "where": self.where, "value": self.value, "low": self.low,
                "high": self.high, "detail": self.detail}


def limit_for(value: Any, target: str) -> float | None:
    """The limit a budget setting gives `target` (a number for all, or a table by target)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        found = value.get(target)
        return None if found is None else float(found)
    return float(value)


def budgets_set(settings: Mapping[str, Any]) -> bool:
    return any(settings.get(b.value) not in (None, {}) for b in Budget)


def _interval(limit: float, est: Mapping[str, Any], *, upper: bool) -> Outcome:
    """An interval against an upper (`upper`) or lower limit."""
    low, high = float(est["low"]), float(est["high"])
    if upper:
        return Outcome.MISSED if low > limit else Outcome.MET if high <= limit else Outcome.UNDECIDED
    return Outcome.MISSED if high < limit else Outcome.MET if low >= limit else Outcome.UNDECIDED


def _rows(entry: Mapping[str, Any], phase: str) -> list[Mapping[str, Any]]:
    timing = entry.get("timing") or {}
    return sorted((r for r in timing.get("rows") or [] if r.get("phase") == phase), key=lambda r: r["T"])


def _not_timed(entry: Mapping[str, Any]) -> str:
    timing = entry.get("timing") or {}
    return str(timing.get("reason") or f"not timed ({timing.get('status', 'no timing')})")


def _check(budget: Budget, key: str, limit: float, entry: Mapping[str, Any]) -> Check:
    made = functools.partial(Check, budget=budget, target=key, limit=limit)
    if budget is Budget.MAX_PACKAGE_MB:
        size = entry.get("package_bytes")
        if size is None:
            return made(outcome=Outcome.UNJUDGED, detail="size not measured")
        value = round(size / MB, 2)
        return made(outcome=Outcome.MISSED if value > limit else Outcome.MET, value=value,
                     where="all files")
    if budget is Budget.MAX_DECODE_GROWTH:
        growth = (entry.get("timing") or {}).get("decode_growth")
        if not growth:
            return made(outcome=Outcome.UNJUDGED, detail=_not_timed(entry))
        return made(outcome=_interval(limit, growth, upper=True), value=growth["median"],
                     low=growth["low"], high=growth["high"], where=growth.get("where", ""))
    phase = "decode" if budget is Budget.MAX_DECODE_MS else "prefill"
    rows = _rows(entry, phase)
    if not rows:
        return made(outcome=Outcome.UNJUDGED, detail=_not_timed(entry))
    if budget is Budget.MAX_DECODE_MS:
        row = rows[-1]  # the longest cache: decode only gets slower with it
        est = row["ms"]
        return made(outcome=_interval(limit, est, upper=True), value=est["median"], low=est["low"],
                     high=est["high"], where=f"decode at T={row['T']}")
    judged = [(row, _interval(limit, row["tokens_per_s"], upper=False)) for row in rows]
    rank = (Outcome.MISSED, Outcome.UNDECIDED, Outcome.MET)
    row, outcome = min(judged, key=lambda item: (rank.index(item[1]), item[0]["tokens_per_s"]["median"]))
    est = row["tokens_per_s"]
    return made(outcome=outcome, value=est["median"], low=est["low"], high=est["high"],
                 where=f"prefill at T={row['T']}")


def checks(settings: Mapping[str, Any], targets: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    """Every budget the settings give every shipped target, judged."""
    out = []
    for budget in Budget:
        for key, entry in targets.items():
            if key == REFERENCE:
                continue
            limit = limit_for(settings.get(budget.value), key)
            if limit is not None:
                out.append(_check(budget, key, limit, entry))
    return out


def cache_reprojection(entry: Mapping[str, Any]) -> str | None:
    """Why the decode step re-projects its cache, or None when only attention grows with it."""
    rows = sorted((r for r in entry.get("cost") or [] if r["phase"] == "decode"), key=lambda r: r["T"])
    if len(rows) < 2:
        return None
    first, last = rows[0], rows[-1]
    weight_growth = last["weight_macs"] - first["weight_macs"]
    if weight_growth <= 0:
        return None
    tokens = last["T"] - first["T"]
    attention = (last["activation_macs"] - first["activation_macs"]) / tokens
    per_token = weight_growth / tokens
    factor = (per_token + attention) / attention if attention > 0 else math.inf
    return (f"decode weight MACs grow with the cache: {first['weight_macs']:,} at T={first['T']}, "
            f"{last['weight_macs']:,} at T={last['T']} (+{per_token:,.0f} per cached token); attention over "
            f"the cache costs {attention:,.0f} per cached token, so each cached token costs "
            f"{factor:,.1f}× what attention needs: the step re-projects its whole cache")


def findings(targets: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for key, entry in targets.items():
        why = cache_reprojection(entry)
        if why:
            out.append({"title": f"{key}: decode re-projects its cache every step", "detail": why})
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    status: str  # a Status value
    score: float | None
    summary: str
    remediation: str


def judge(checks_: Sequence[Check], found: Sequence[Mapping[str, str]], targets: Mapping[str, Mapping[str, Any]],
          requested_missing: Sequence[str]) -> Judgement:
    """The status over the checks, the findings and what could not be measured.

    `requested_missing`: targets whose timing was asked for (`--runtime
    coreml`) and could not be measured here.
    """
    errors = [k for k, e in targets.items() if e.get("error") or (e.get("timing") or {}).get("status") == "error"]
    missed = [c for c in checks_ if c.outcome is Outcome.MISSED]
    unjudged = [c for c in checks_ if c.outcome is Outcome.UNJUDGED]
    undecided = [c for c in checks_ if c.outcome is Outcome.UNDECIDED]
    met = sum(c.outcome is Outcome.MET for c in checks_)
    total = len(checks_) + len(found)
    score = round((met + 0.5 * len(undecided)) / total, 4) if total else 1.0
    if not [k for k in targets if k != REFERENCE]:
        return Judgement(status="not_evaluable", score=None, summary="no converted model to measure",
                         remediation="Configure a conversion target ([model] targets).")
    if missed:
        names = ", ".join(f"{c.target} {c.budget.value}" for c in missed)
        return Judgement(status="fail", score=score, summary=f"{len(missed)} of {len(checks_)} budgets missed: {names}",
                         remediation="See the budget table: shrink what ships (drop unused constants, compress "
                                     "weights) or fix what makes it slow; findings name structural causes.")
    if errors:
        return Judgement(status="error", score=None, summary=f"could not measure {', '.join(errors)}",
                         remediation="See the failure entries for what could not be measured.")
    if unjudged or requested_missing:
        untimed = sorted({c.target for c in unjudged} | set(requested_missing))
        return Judgement(status="not_evaluable", score=None if not met else score,
                         summary=f"{', '.join(untimed)} cannot be timed here",
                         remediation="Run `readiness gate performance --runtime coreml` on macOS and merge the "
                                     "result, or scope the timing budgets to targets timed here "
                                     "(`max_decode_ms = {onnx_fp32 = 20}`).")
    if undecided or found:
        parts = [f"{len(undecided)} budgets undecided (the interval straddles the limit)"] if undecided else []
        parts += [f["title"] for f in found]
        return Judgement(status="warn", score=score, summary="; ".join(parts),
                         remediation="Measure again on a quieter machine (more `trials`) for undecided budgets; "
                                     "read the findings for structural causes.")
    what = f"{len(checks_)} budgets met" if checks_ else "measured, no budgets set"
    return Judgement(status="pass", score=score, summary=what, remediation="")
