"""Ship or not: the rules applied to a score and the gate results.

A model may ship only when all of these hold:
- the assessment is complete: every gate the configuration turns on ran (a
  partial run, `--gate` or `--skip` on the command line, is never a ship
  decision; its verdict says whether the selected gates passed);
- at least one gate produced positive evidence (an assessment that measured
  nothing is never a ship);
- no blocker gate is `fail`, `error`, `not_evaluable`, or skipped because a
  gate it needs did not pass (turned off by configuration is the only
  exception, and the report lists it);
- the score reaches the threshold, with the rounding the report shows;
- nothing regressed past tolerance against the baseline.
Every reason is collected, not just the first, and the gates that vetoed or
cost the most points are named.

The band every report shows follows the verdict, not the score alone: a
93.3 that may not ship is "blocked by suite_health", never "production
ready" (the score's own band is kept as `score_band`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from gates.result import GateResult, Severity
from readiness.history.regression import REGRESSION_PREFIX
from readiness.scoring import Score, is_off

PARTIAL_BAND = "partial run"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    ship: bool
    reasons: tuple[str, ...]
    vetoed_by: tuple[str, ...]
    capped_by: tuple[str, ...]
    threshold: float
    partial: bool = False
    band: str = ""  # what the reports show beside the score; see `verdict_band`

    @property
    def passed(self) -> bool:
        """Ship for a full assessment; for a partial one, "the selected gates passed"."""
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {"ship": self.ship, "reasons": list(self.reasons), "vetoed_by": list(self.vetoed_by),
                "capped_by": list(self.capped_by), "threshold": self.threshold, "partial": self.partial}


def display_score(value: float) -> float:
    """The score as every report shows it (one decimal); the verdict judges this."""
    return round(value, 1)


def verdict_band(*, ship: bool, partial: bool, score_band: str, vetoed_by: Sequence[str],
                 under_threshold: bool, regressed: bool, no_evidence: bool) -> str:
    """The band shown beside the score: the score's band only when the model may ship.

    A partial run is "partial run", followed by what held the selected gates
    back when something did ("partial run, blocked by coverage").
    """
    held = _held_back(vetoed_by=vetoed_by, under_threshold=under_threshold, regressed=regressed,
                      no_evidence=no_evidence)
    if partial:
        return f"{PARTIAL_BAND}, {held}" if held else PARTIAL_BAND
    if ship:
        return score_band
    return held or "held back (no baseline)"  # the one reason left: first_run_policy = "fail"


def _held_back(*, vetoed_by: Sequence[str], under_threshold: bool, regressed: bool, no_evidence: bool) -> str:
    if vetoed_by:
        more = f" and {len(vetoed_by) - 3} more" if len(vetoed_by) > 3 else ""
        return "blocked by " + ", ".join(vetoed_by[:3]) + more
    if no_evidence:
        return "no evidence"
    if regressed:
        return "regressed"
    if under_threshold:
        return "under the threshold"
    return ""


def decide(results: Sequence[GateResult], score: Score, threshold: float,
           history_reasons: Sequence[str] = (), *, partial: bool = False) -> Verdict:
    """Apply the ship rules; returns every reason that stops shipping.

    `history_reasons` are the baseline comparison's blockers
    (`regression.ship_blockers`): regressions, or a first run under the
    `fail` policy. With `partial`, the same rules judge the gates that ran,
    and `ship` is False whatever they say.
    """
    reasons: list[str] = []
    vetoed: list[str] = []
    no_evidence = not any(r.status.passed for r in results)
    if no_evidence:
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
    ship = not reasons and not partial
    band = verdict_band(ship=ship, partial=partial, score_band=score.band, vetoed_by=vetoed,
                        under_threshold=shown < threshold, no_evidence=no_evidence,
                        regressed=any(r.startswith(REGRESSION_PREFIX) for r in history_reasons))
    return Verdict(ship=ship, reasons=tuple(reasons), vetoed_by=tuple(vetoed), capped_by=tuple(capped),
                   threshold=threshold, partial=partial, band=band)
