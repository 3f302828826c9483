"""`readiness merge`: fold partial results into an assessment.

A partial result is an assessment document written by `readiness gate NAME`
on another host (Core ML parity on a macOS runner) or by one mutation shard.
Each gate result in a partial replaces the base's result of that gate, or,
when the gate class defines `merge(results)`, is combined with it (mutation
shards add up their mutants). Gates the partial did not run leave the base
untouched. The score and verdict are then recomputed with the base's own
components, profile and threshold, so no configuration is needed.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from gates import registry
from gates.result import GateResult, Status
from readiness import document, provenance, regression
from readiness.document import DocumentError
from readiness.distill_profile import score_distill
from readiness.runs import now_iso
from readiness.scoring import is_off, score_components
from readiness.verdict import decide


def _combine(existing: GateResult | None, incoming: GateResult) -> GateResult:
    if existing is None or existing.status is Status.SKIPPED:
        return incoming
    try:
        cls = registry.gate_class(incoming.name)
    except registry.PluginError:
        return incoming
    combine = getattr(cls, "merge", None)
    return combine([existing, incoming]) if callable(combine) else incoming


def merge(base: Mapping[str, Any], partials: Sequence[Mapping[str, Any]],
          generated_at: str | None = None) -> dict[str, Any]:
    results = {r.name: r for r in document.results_of(base)}
    name = base["project"]["name"]
    for partial in partials:
        if partial["project"]["name"] != name:
            raise DocumentError(f"partial result of project {partial['project']['name']!r} "
                                f"cannot be merged into an assessment of {name!r}")
        for result in document.results_of(partial):
            if result.status is Status.SKIPPED or is_off(result):
                continue
            results[result.name] = _combine(results.get(result.name), result)
    ordered = [results[name] for name in dict.fromkeys([g["name"] for g in base["gates"]] + list(results))]
    if base.get("profile") == "distill":
        score = score_distill(results)
    else:
        score = score_components(results, {c["name"]: (float(c["weight"]), tuple(c["gates"]))
                                           for c in base["components"]})
    verdict = decide(ordered, score, float(base["verdict"]["threshold"]),
                     regression.ship_blockers(base.get("baseline")))
    merged = document.build(
        generated_at=generated_at or now_iso(), project=base["project"], model=base.get("model"),
        git=base["git"], host=base["host"], tool_versions=base["tool_versions"],
        config_digest=base["config_digest"], profile=base["profile"], results=ordered, score=score,
        verdict=verdict, baseline=base.get("baseline"), trend=base.get("trend") or ())
    merged["test_runtimes"] = provenance.interpreters_of(ordered)
    merged["merged_from"] = [{"generated_at": p["generated_at"], "host": p.get("host", {}).get("platform"),
                              "gates": [g["name"] for g in p["gates"] if g["status"] != "skipped"]}
                             for p in partials]
    return document.validate(merged, "<merged assessment>")
