"""Ship or not: the rules applied to a score and the gate results.

A model may ship only when all of these hold:
- at least one gate produced positive evidence (an assessment that measured
  nothing is never a ship);
- no blocker gate is `fail`, `error`, `not_evaluable`, or skipped because a
  gate it needs did not pass (turned off by configuration is the only
  exception, and the report lists it);
- the score reaches the threshold, with the rounding the report shows;
- nothing regressed past tolerance against the baseline.
Every reason is collected, not just the first, and the gates that vetoed or
cost the most points are named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from gates.result import GateResult, Severity
from readiness.scoring import Score, is_off


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    ship: bool
    reasons: tuple[str, ...]
    vetoed_by: tuple[str, ...]
    capped_by: tuple[str, ...]
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"ship": self.ship, "reasons": list(self.reasons), "vetoed_by": list(self.vetoed_by),
                "capped_by": list(self.capped_by), "threshold": self.threshold}


def display_score(value: float) -> float:
    """The score as every report shows it (one decimal); the verdict judges this."""
    return round(value, 1)


def decide(results: Sequence[GateResult], score: Score, threshold: float,
           history_reasons: Sequence[str] = ()) -> Verdict:
    """Apply the ship rules; returns every reason that stops shipping.

    `history_reasons` are the baseline comparison's blockers
    (`regression.ship_blockers`): regressions, or a first run under the
    `fail` policy.
    """
    reasons: list[str] = []
    vetoed: list[str] = []
    if not any(r.status.passed for r in results):
        reasons.append("no gate produced positive evidence")
    for result in results:
        if result.severity is Severity.BLOCKER and not result.status.passed and not is_off(result):
            vetoed.append(result.name)
            reasons.append(f"blocker gate {result.name!r} is {result.status.value}: {result.summary}")
    capped: list[str] = []
    shown = display_score(score.value)
    if shown < threshold:
        worst = sorted(score.lost_points.items(), key=lambda kv: (-kv[1], kv[0]))
        capped = [name for name, pts in worst[:3] if pts >= 0.05]
        detail = ", ".join(f"{n} -{score.lost_points[n]:.1f}" for n in capped)
        reasons.append(f"score {shown:.1f} is under the threshold {threshold:g}"
                       + (f" (most points lost: {detail})" if detail else ""))
    reasons.extend(history_reasons)
    return Verdict(ship=not reasons, reasons=tuple(reasons), vetoed_by=tuple(vetoed),
                   capped_by=tuple(capped), threshold=threshold)

