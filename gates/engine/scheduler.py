"""Runs gates in dependency order and turns every outcome into a result.

A gate runs only after the gates it `needs` have passed; when one of them did
not pass (or was not run), the dependent is `skipped` with a reason naming
it, never `pass`. A gate may also list gates it runs `after` without needing
them to pass (the mutation gate reads which tests the suite gate saw failing).

A summary says what happened and nothing else: the status and the gate's
name sit beside it in every report, the verdict's reasons and the gates that
quote it, so the engine never writes "error: " or "skipped: " into one.

Each check runs in its own daemon thread so that a per-gate timeout can be
enforced: a gate that raises becomes `error` carrying the message; one that
overruns becomes `error` saying so, and the run goes on. Up to `jobs` gates
whose dependencies are settled run at once. Results are cached by a hash of
each gate's inputs (see `gates.engine.cache`). Each gate that runs carries
its peak resident memory (`gates.engine.memory`).
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from gates.engine import children
from gates.engine.cache import ResultCache
from gates.engine.memory import PeakMeter
from gates.engine.protocol import Gate, GateContext
from gates.result import GateResult, Severity, Status

ContextFactory = Callable[[Gate, Mapping[str, GateResult]], GateContext]
Listener = Callable[[str, str, GateResult | None], None]


class DependencyCycle(ValueError):
    """The gates' `needs`/`after` declarations form a cycle."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    """How to run: per-gate timeouts, parallelism, the result cache."""

    timeout_s: float = 3600.0
    timeouts: Mapping[str, float] = field(default_factory=dict)
    jobs: int = 1
    cache: ResultCache | None = None

    def timeout_for(self, name: str) -> float:
        return float(self.timeouts.get(name, self.timeout_s))


def _deps(gate: Gate) -> tuple[str, ...]:
    return tuple(gate.needs) + tuple(gate.after)


def order(gates: Sequence[Gate]) -> list[Gate]:
    """Gates sorted so each comes after what it needs; stable otherwise."""
    by_name = {g.name: g for g in gates}
    done: list[Gate] = []
    state: dict[str, str] = {}

    def visit(gate: Gate, path: tuple[str, ...]) -> None:
        if state.get(gate.name) == "done":
            return
        if state.get(gate.name) == "visiting":
            raise DependencyCycle("gate dependency cycle: " + " -> ".join(path + (gate.name,)))
        state[gate.name] = "visiting"
        for dep in _deps(gate):
            if dep in by_name:
                visit(by_name[dep], path + (gate.name,))
        state[gate.name] = "done"
        done.append(gate)

    for gate in gates:
        visit(gate, ())
    return done


def blocked_by(gate: Gate, results: Mapping[str, GateResult]) -> str | None:
    """Why `gate` may not run given earlier results, or None if it may."""
    for dep in gate.needs:
        dep_result = results.get(dep)
        if dep_result is None:
            return f"needs gate {dep!r}, which was not run"
        if not dep_result.status.passed:
            return f"needs gate {dep!r}, which is {dep_result.status.value}"
    return None


def skipped(gate: Gate, reason: str, **evidence: Any) -> GateResult:
    return GateResult(name=gate.name, status=Status.SKIPPED, severity=gate.severity,
                      summary=reason, evidence={"skipped_because": reason, **evidence})


def _error(gate: Gate, message: str, duration_s: float, detail: str = "",
           severity: Severity | None = None) -> GateResult:
    evidence: dict[str, Any] = {"error": message}
    if detail:
        evidence["failures"] = [{"title": "exception", "detail": detail}]
    return GateResult(name=gate.name, status=Status.ERROR, severity=severity or gate.severity,
                      summary=message, evidence=evidence, duration_s=duration_s,
                      remediation="The gate could not measure anything; fix the cause and re-run.")


def _normalise(gate: Gate, result: Any, duration_s: float, severity: Severity) -> GateResult:
    if not isinstance(result, GateResult):
        return _error(gate, f"check() returned {type(result).__name__}, not a GateResult", duration_s,
                      severity=severity)
    try:
        return result.with_(name=gate.name, severity=severity, duration_s=duration_s).normalised()
    except (TypeError, ValueError) as exc:
        return _error(gate, f"check() returned an unserialisable result: {exc}", duration_s, severity=severity)


def _severity(gate: Gate, ctx: GateContext) -> Severity:
    try:
        return Severity(gate.severity_for(ctx.settings))
    except Exception:  # noqa: BLE001 - a broken hook must not take the run down; the declared one stands
        return Severity(gate.severity)


class _Running:
    """One gate executing in a daemon thread."""

    def __init__(self, gate: Gate, ctx: GateContext, wake: threading.Event, cache_key: str | None,
                 meter: PeakMeter) -> None:
        self.gate = gate
        self.cache_key = cache_key
        self.started = time.monotonic()
        self.severity = _severity(gate, ctx)
        self.result: GateResult | None = None
        self._wake = wake
        self._meter = meter
        meter.start(gate.name)
        self.thread = threading.Thread(target=self._run, args=(ctx,), daemon=True,
                                       name=f"gate-{gate.name}")
        self.thread.start()

    def _run(self, ctx: GateContext) -> None:
        try:
            try:
                outcome = self.gate.check(ctx)
                result = _normalise(self.gate, outcome, time.monotonic() - self.started, self.severity)
            except BaseException as exc:  # noqa: BLE001 - any failure is this gate's error
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                result = _error(self.gate, message, time.monotonic() - self.started,
                                "".join(traceback.format_exception(exc))[-4000:], self.severity)
            self.result = result.with_(peak_rss_mb=self._meter.stop(self.gate.name))
            from pipeline import heap  # standard library only (C allocator calls)

            heap.release()  # what the gate freed goes back to the OS before the next one starts
        finally:
            self._meter.stop(self.gate.name)  # already stopped unless something above raised
            self._wake.set()

    def timed_out(self, limit: float) -> GateResult:
        peak = self._meter.stop(self.gate.name)
        return _error(self.gate, f"timed out after {limit:g} s (per-gate timeout)",
                      time.monotonic() - self.started, severity=self.severity).with_(peak_rss_mb=peak)


# How long a stopped run waits for its running gates to store what they decided (the
# mutation gate keeps decided mutants) once their child processes are stopped: a hang
# guard, not a timing; a second Ctrl-C ends the wait at once.
STOP_GRACE_S = 60.0


def _let_running_gates_settle(running: Iterable[_Running]) -> None:
    deadline = time.monotonic() + STOP_GRACE_S
    for job in running:
        job.thread.join(timeout=max(0.0, deadline - time.monotonic()))


def run(gates: Sequence[Gate], make_context: ContextFactory, options: EngineOptions = EngineOptions(),
        listener: Listener | None = None) -> list[GateResult]:
    """Run `gates`; returns one result per gate, in dependency order."""
    ordered = order(gates)
    results: dict[str, GateResult] = {}
    pending = list(ordered)
    running: dict[str, _Running] = {}
    wake = threading.Event()
    meter = PeakMeter()
    notify = listener or (lambda event, name, result: None)
    digests: dict[tuple[str, int, int, int], str] = {}  # declared files hashed once in this run

    def settle(name: str, result: GateResult, event: str = "done") -> None:
        results[name] = result
        notify(event, name, result)

    while pending or running:
        for gate in list(pending):
            if len(running) >= max(1, options.jobs):
                break
            if any(d in running or d in {p.name for p in pending} for d in _deps(gate)):
                continue
            pending.remove(gate)
            reason = blocked_by(gate, results)
            if reason is not None:
                settle(gate.name, skipped(gate, reason))
                continue
            ctx = make_context(gate, dict(results))
            cache = options.cache
            try:
                cache_key = cache.key(gate, ctx, results, digests) if cache else None
            except Exception as exc:  # noqa: BLE001 - cache_inputs is gate code: its failure is the gate's error
                settle(gate.name, _error(gate, str(exc).strip().splitlines()[0] if str(exc).strip()
                                         else type(exc).__name__, 0.0))
                continue
            hit = cache.load(gate.name, cache_key) if cache and cache_key else None
            if hit is not None:
                settle(gate.name, hit, "cached")
                continue
            notify("start", gate.name, None)
            running[gate.name] = _Running(gate, ctx, wake, cache_key, meter)
        wake.wait(timeout=0.05)
        wake.clear()
        if children.stop_requested.is_set():
            _let_running_gates_settle(running.values())
            children.raise_if_stopped()
        for name, job in list(running.items()):
            limit = options.timeout_for(name)
            if job.result is not None:
                del running[name]
                if options.cache and job.cache_key:
                    options.cache.store(name, job.cache_key, job.result)
                settle(name, job.result)
            elif time.monotonic() - job.started > limit:
                del running[name]
                settle(name, job.timed_out(limit))
    return [results[g.name] for g in ordered]
