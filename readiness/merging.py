"""`readiness merge`: fold partial results into an assessment.

A partial result is an assessment document written by `readiness gate NAME`
on another host (Core ML parity on a macOS runner) or by one mutation shard.
Each gate result in a partial replaces the base's result of that gate, or,
when the gate class defines `merge(results)`, is combined with it (mutation
shards add up their mutants). Gates the partial did not run leave the base
untouched. The score and verdict are then recomputed with the base's own
components, profile and threshold, so no configuration is needed. A base
that was itself partial stays partial until the partials supply every gate
it left out. The baseline comparison is the base's: when the base was
partial, the gates it left out and the overall score were not compared.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from gates.engine import registry
from gates.result import GateResult, Status
from readiness import document
from readiness import provenance
from readiness.history import regression
from readiness.document import DocumentError
from readiness.distill_profile import score_distill
from readiness.runs import now_iso
from readiness.scoring import is_off, score_components
from readiness.verdict import decide


def _combine(existing: GateResult | None, incoming: GateResult) -> GateResult:
    if existing is None or existing.status in (Status.SKIPPED, Status.OFF):
        return incoming
    try:
        cls = registry.gate_class(incoming.name)
    except registry.PluginError:
        return incoming
    return cls.merge([existing, incoming])


def _still_partial(base: Mapping[str, Any], results: Mapping[str, GateResult]) -> dict[str, Any] | None:
    """The base's `partial`, less the gates the merge supplied; None once nothing is left out."""
    left_out = regression.left_out_gates(base)
    missing = [n for n in left_out if n not in results or results[n].status is Status.SKIPPED]
    if not missing:
        return None
    ran = [n for n in results if n not in missing and not is_off(results[n])]
    return {"ran": ran, "left_out": missing, "request": base["partial"]["request"]}


def merge(base: Mapping[str, Any], partials: Sequence[Mapping[str, Any]],
          generated_at: str | None = None) -> dict[str, Any]:
    results = {r.name: r for r in document.results_of(base)}
    name = base["project"]["name"]
    for partial in partials:
        if partial["project"]["name"] != name:
            raise DocumentError(f"partial result of project {partial['project']['name']!r} "
                                f"cannot be merged into an assessment of {name!r}")
        for result in document.results_of(partial):
            if result.status in (Status.SKIPPED, Status.OFF):
                continue
            results[result.name] = _combine(results.get(result.name), result)
    ordered = [results[name] for name in dict.fromkeys([g["name"] for g in base["gates"]] + list(results))]
    if base.get("profile") == "distill":
        score = score_distill(results)
    else:
        score = score_components(results, {c["name"]: (float(c["weight"]), tuple(c["gates"]))
                                           for c in base["components"]})
    partial = _still_partial(base, results)
    baseline = base.get("baseline")
    if partial is None and isinstance(baseline, dict) and baseline.get("first_run"):
        baseline = {**baseline, "partial": False}  # complete now: first_run_policy applies again
    verdict = decide(ordered, score, float(base["verdict"]["threshold"]),
                     regression.ship_blockers(baseline), partial=partial is not None)
    merged = document.build(
        generated_at=generated_at or now_iso(), project=base["project"], model=base.get("model"),
        git=base["git"], host=base["host"], tool_versions=base["tool_versions"],
        config_digest=base["config_digest"], profile=base["profile"], results=ordered, score=score,
        verdict=verdict, baseline=baseline, trend=base.get("trend") or (), partial=partial)
    merged["test_runtimes"] = provenance.interpreters_of(ordered)
    merged["merged_from"] = [{"generated_at": p["generated_at"], "host": p.get("host", {}).get("platform"),
                              "gates": [g.name for g in document.results_of(p)
                                        if g.status not in (Status.SKIPPED, Status.OFF)]}
                             for p in partials]
    return document.validate(merged, "<merged assessment>")
