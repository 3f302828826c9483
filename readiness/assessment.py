"""One assessment: `assess()` runs it and returns an `Assessment` record.

Each step happens once, in this order:

    select (settings checked) -> history preflight -> run the gates -> score
    -> compare with the baseline -> verdict -> document -> record in history

The CLI, `readiness demo` and `readiness merge` go through here: the first
two call `assess`, merge calls `conclude` (score, verdict and document from
results it already has). None of them prints; rendering the record and
mapping it to an exit code is the caller's. Gates that do not run are
listed with the status `off` and the reason, so no gate is dropped
silently; a run whose command line (`--gate`, `--skip`) leaves out a gate
the configuration turns on is *partial*: never a ship decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable, Mapping, Protocol, Sequence

from gates.engine import registry, scheduler
from gates.engine.cache import ResultCache
from gates.engine.protocol import Gate, GateContext, Memo
from gates.result import GateResult, Severity, Status
from pipeline import heap
from readiness import document, provenance
from readiness.config import LoadedConfig
from readiness.distill_profile import score_distill
from readiness.history import baseline as history
from readiness.scoring import DEFAULT_COMPONENTS, Score, score_components
from readiness.selection import NOT_APPLICABLE_PREFIX, Partial, Request, Selection, cache_dir, select, work_dir
from readiness.verdict import Verdict, decide

Components = Mapping[str, tuple[float, tuple[str, ...]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    """What one assessment found and decided, and the document that records it."""

    results: tuple[GateResult, ...]
    score: Score
    verdict: Verdict
    baseline: Mapping[str, Any] | None  # the comparison with the last shipped assessment; None without history
    partial: Partial | None  # the gates the command line left out; None for a full assessment
    document: Mapping[str, Any]

    def result(self, name: str) -> GateResult | None:
        return next((r for r in self.results if r.name == name), None)


class Progress(Protocol):
    """Told how many gates will run, then fed the engine's events (the terminal's progress bar)."""

    def planned(self, total: int) -> None: ...

    def event(self, kind: str, name: str, result: GateResult | None) -> None: ...


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def assess(loaded: LoadedConfig, request: Request = Request(), *, fail_under: float | None = None,
           use_history: bool = True, progress: Progress | None = None,
           clock: Callable[[], str] = now_iso) -> Assessment:
    """Run the assessment `request` asks for; raises ConfigError and friends before any gate runs."""
    heap.configure()  # the allocator settings the CLI sets, for a caller in its own process too
    selection = select(loaded, request)
    if use_history:
        history.preflight(loaded)  # a damaged history is reported before minutes of gates
    if progress is not None:
        progress.planned(len(selection.chosen))
    results = run_gates(loaded, selection, listener=progress.event if progress is not None else None)
    score = score_results(results, profile=loaded.config.profile, components=components_of(loaded, results))
    partial = selection.partial.to_dict() if selection.partial is not None else None
    measured = document.measured(
        generated_at=clock(), project={"name": loaded.project_name, "root": str(loaded.root)},
        model=_model_info(loaded, results), git=provenance.git_info(loaded.root), host=provenance.host_info(),
        tool_versions=provenance.tool_versions(), config_digest=loaded.digest, profile=loaded.config.profile,
        results=results, score=score, partial=partial)
    comparison = history.compare(loaded, measured) if use_history else history.Comparison()
    threshold = loaded.config.fail_under if fail_under is None else fail_under
    done = conclude(measured, results, score, threshold, comparison.baseline, comparison.reasons,
                    trend=lambda doc: history.trend(comparison, doc))
    if use_history:
        history.record(loaded, done.document)
    return done


def conclude(measured: Mapping[str, Any], results: Sequence[GateResult], score: Score, threshold: float,
             baseline: Mapping[str, Any] | None, blockers: Sequence[str], *,
             trend: Callable[[Mapping[str, Any]], Sequence[Mapping[str, Any]]] = lambda doc: (),
             extra: Mapping[str, Any] | None = None) -> Assessment:
    """The verdict and the finished, validated document for what was measured.

    `blockers` are the baseline comparison's reasons not to ship; `trend`
    builds the trend from the decided document; `extra` adds keys (a merge
    records what it merged).
    """
    partial = measured["partial"]
    verdict = decide(results, score, threshold, blockers, partial=partial is not None)
    doc = document.decided(measured, verdict, baseline)
    doc["trend"] = list(trend(doc))
    doc["test_runtimes"] = provenance.interpreters_of(results)
    doc.update(extra or {})
    document.validate(doc, "<new assessment>")
    return Assessment(results=tuple(results), score=score, verdict=verdict, baseline=baseline,
                      partial=None if partial is None else Partial(ran=tuple(partial["ran"]),
                                                                   left_out=tuple(partial["left_out"]),
                                                                   request=partial["request"]),
                      document=doc)


def run_gates(loaded: LoadedConfig, selection: Selection,
              listener: scheduler.Listener | None = None) -> list[GateResult]:
    """Run the selected gates; returns every known gate's result, in report order."""
    gates: list[Gate] = [registry.create(n) for n in selection.chosen]
    shared_dir = work_dir(loaded)
    memo = Memo()
    fresh = selection.request.no_cache

    def make_context(gate: Gate, results: Mapping[str, GateResult]) -> GateContext:
        gate_dir = shared_dir / gate.name
        gate_dir.mkdir(parents=True, exist_ok=True)
        return GateContext(spec=selection.spec, settings=selection.settings[gate.name], work_dir=gate_dir,
                           results=results, memo=memo, options={"shared_work_dir": str(shared_dir), "fresh": fresh,
                                                                "gates": tuple(selection.chosen)})

    cfg = loaded.config
    options = scheduler.EngineOptions(timeout_s=cfg.timeout_s, timeouts=cfg.timeouts,
                                      jobs=selection.request.jobs or cfg.jobs,
                                      cache=None if fresh else ResultCache(cache_dir(loaded)))
    ran = {r.name: r for r in scheduler.run(gates, make_context, options, listener)}
    order = list(registry.available())
    listed = [ran[n] for n in selection.chosen if n in ran] + [off_result(n, why) for n, why in selection.off.items()]
    return sorted(listed, key=lambda r: order.index(r.name) if r.name in order else len(order))


def off_result(name: str, reason: str) -> GateResult:
    """The result listed for a gate that is turned off: status `off`, the reason as evidence."""
    try:
        severity = registry.gate_class(name).severity
    except registry.PluginError:
        severity = Severity.OPTIONAL
    if reason.startswith(NOT_APPLICABLE_PREFIX):  # said as it is, never "turned off"
        return GateResult(name=name, status=Status.OFF, severity=severity, summary=reason,
                          evidence={"off_because": reason, "not_applicable": True})
    return GateResult(name=name, status=Status.OFF, severity=severity, summary=f"turned off: {reason}",
                      evidence={"off_because": reason})


def components_of(loaded: LoadedConfig, results: Sequence[GateResult]) -> dict[str, tuple[float, tuple[str, ...]]]:
    """The configured components, else the defaults narrowed to the gates this install has.

    Plugins join the default score as their own component.
    """
    if loaded.config.components is not None:  # its gate names were checked by `select`
        return {n: (c.weight, tuple(c.gates)) for n, c in loaded.config.components.items()}
    present = {r.name for r in results}
    components = {n: (w, tuple(g for g in gates if g in present)) for n, (w, gates) in DEFAULT_COMPONENTS.items()}
    components = {n: c for n, c in components.items() if c[1]}
    known = {g for _, gates in components.values() for g in gates}
    extra = tuple(r.name for r in results if r.name not in known)
    return {**components, "plugins": (10.0, extra)} if extra else components


def score_results(results: Sequence[GateResult], *, profile: str, components: Components) -> Score:
    """The score under `profile`: the weighted components, or the distill formula."""
    by_name = {r.name: r for r in results}
    return score_distill(by_name) if profile == "distill" else score_components(by_name, components)


def _model_info(loaded: LoadedConfig, results: Sequence[GateResult]) -> dict[str, Any] | None:
    model = loaded.config.model
    if model is None:
        return None
    return {"adapter": model.adapter, "checkpoint": model.checkpoint, "tokenizer": model.tokenizer,
            "lengths": list(model.lengths), "primary_length": model.primary_length,
            "fingerprint": _fingerprint(results)}


def _fingerprint(results: Sequence[GateResult]) -> str | None:
    for result in results:
        for key in ("arch_hash", "model_fingerprint"):
            value = result.metrics.get(key) or result.evidence.get(key)
            if isinstance(value, str):
                return value
    return None
