"""`readiness merge`: fold partial results into an assessment.

A partial result is an assessment document written by `readiness gate NAME`
on another host (Core ML parity on a macOS runner) or by one mutation shard.
Each gate result in a partial is combined with the base's result of that
gate through the gate's `merge` hook: by default the newer replaces the
older; parity keeps every target it measured, mutation shards add up their
mutants. Gates the partial did not run leave the base
untouched. The score, verdict and document are then made as `assess` makes
them (`assessment.conclude`), with the base's own components, profile and
threshold, so no configuration is needed. A base
that was itself partial stays partial until the partials supply every gate
it left out. The baseline comparison is the base's: when the base was
partial, the gates it left out and the overall score were not compared.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from gates.engine import registry
from gates.result import GateResult, Status
from readiness import document
from readiness.assessment import Assessment, conclude, now_iso, score_results
from readiness.document import DocumentError
from readiness.history import regression

SETTLED = (Status.SKIPPED, Status.OFF)  # a partial's result of these never replaces the base's


def _combine(existing: GateResult | None, incoming: GateResult) -> GateResult:
    if existing is None or existing.status in SETTLED:
        return incoming
    try:
        cls = registry.gate_class(incoming.name)
    except registry.PluginError:
        return incoming
    return cls.merge([existing, incoming])


def _still_partial(base: Mapping[str, Any], results: Mapping[str, GateResult]) -> dict[str, Any] | None:
    """The base's `partial`, less the gates the merge supplied; None once nothing is left out."""
    left_out = regression.left_out_gates(base)
    missing = [n for n in left_out if n not in results or results[n].status in SETTLED]
    if not missing:
        return None
    ran = [n for n in results if n not in missing and results[n].status is not Status.OFF]
    return {"ran": ran, "left_out": missing, "request": base["partial"]["request"]}


def merge(base: Mapping[str, Any], partials: Sequence[Mapping[str, Any]],
          generated_at: str | None = None) -> Assessment:
    """Fold `partials` into `base`; the score, verdict and document are made as `assess` makes them."""
    results = {r.name: r for r in document.results_of(base)}
    name = base["project"]["name"]
    for piece in partials:
        if piece["project"]["name"] != name:
            raise DocumentError(f"partial result of project {piece['project']['name']!r} "
                                f"cannot be merged into an assessment of {name!r}")
        for result in document.results_of(piece):
            if result.status not in SETTLED:
                results[result.name] = _combine(results.get(result.name), result)
    ordered = [results[n] for n in dict.fromkeys([g["name"] for g in base["gates"]] + list(results))]
    components = {c["name"]: (float(c["weight"]), tuple(c["gates"])) for c in base["components"]}
    score = score_results(ordered, profile=base["profile"], components=components)
    still = _still_partial(base, results)
    baseline: Mapping[str, Any] | None = base.get("baseline")
    if still is None and isinstance(baseline, dict) and baseline.get("first_run"):
        baseline = {**baseline, "partial": False}  # complete now: first_run_policy applies again
    measured = document.measured(
        generated_at=generated_at or now_iso(), project=base["project"], model=base.get("model"),
        git=base["git"], host=base["host"], tool_versions=base["tool_versions"],
        config_digest=base["config_digest"], profile=base["profile"], results=ordered, score=score,
        partial=still)
    merged_from = [{"generated_at": p["generated_at"], "host": p.get("host", {}).get("platform"),
                    "gates": [g.name for g in document.results_of(p) if g.status not in SETTLED]}
                   for p in partials]
    return conclude(measured, ordered, score, float(base["verdict"]["threshold"]), baseline,
                    regression.ship_blockers(baseline), trend=lambda doc: base.get("trend") or (),
                    extra={"merged_from": merged_from})
