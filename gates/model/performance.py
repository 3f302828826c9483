"""The performance gate: size, compute, memory and latency of what ships, against PyTorch.

For every converted target (`coreml_fp32`, `coreml_fp16`, `onnx_fp32`) it
reports, from the files alone: size on disk, weight bytes by dtype, MACs of
prefill at every length and of one decode step at every cache length
(weight products and attention apart), an estimate of peak activation memory
and, for fp16 targets, the share of ops that stay in fp16. Where a runtime
runs here it times prefill and one decode step at every length, PyTorch
eager in the same interleaved rounds, and reports medians with an interval
and the ratio to eager (`pipeline.perf`). The MIL interpreter is a
reference, not a runtime: it is never timed. Core ML is timed on macOS
(`runtime = "coreml"` or "auto" there), with `compute_units`; elsewhere its
timing is `not_evaluable` and `readiness merge` folds in a macOS result.

Settings: `runtime` ("auto", "onnx", "coreml"), `compute_units`,
`warmup`, `trials`, `min_trials`, `max_measure_s` (a cap on the rounds past
`min_trials`), `threads` (torch and onnxruntime; 0: the libraries' defaults),
`seed`, and the budgets `max_package_mb`, `max_decode_ms` (at the longest
cache length), `min_prefill_tokens_per_s` (at every length) and
`max_decode_growth` (decode time at the longest cache over the shortest),
each a number for every target or a table by target.

Severity: `warning`; any budget set makes it a `blocker` (`severity_for`).
Status: `fail` when a budget is missed (`gates.model.performance_judging`),
`warn` for an undecided budget or a structural finding (a decode step that
re-projects its cache), `not_evaluable` when a budgeted or requested figure
cannot be measured here, `error` when a target cannot be measured at all.
"""

from __future__ import annotations

import enum
import math
import os
import platform
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from gates.engine.protocol import GateContext, GateError
from gates.engine.spec import ModelSpec
from gates.model import performance_evidence as evidence_of
from gates.model.performance_judging import REFERENCE, TARGET_KEYS, Budget, budgets_set, checks, findings, judge
from gates.model.shared import (
    ModelGate,
    model_cache_inputs,
    shared_adapter,
    shared_artifacts,
    shared_mapped_weights,
)
from gates.result import GateResult, Severity, Status


class Runtime(enum.StrEnum):
    AUTO = "auto"  # onnxruntime, plus Core ML on macOS
    ONNX = "onnx"
    COREML = "coreml"


COMPUTE_UNITS = ("CPU_ONLY", "CPU_AND_GPU", "ALL", "CPU_AND_NE")  # coremltools.ComputeUnit
Limit = float | dict[str, float] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    runtime: str = "auto"
    compute_units: str = "ALL"
    warmup: int = 2
    trials: int = 15  # the 4th and 12th fastest bound the median: two load spikes move nothing
    min_trials: int = 7
    max_measure_s: float = 30.0
    threads: int = 1
    seed: int = 0
    max_package_mb: Limit = None
    max_decode_ms: Limit = None
    min_prefill_tokens_per_s: Limit = None
    max_decode_growth: Limit = None

    def __post_init__(self) -> None:
        if self.runtime not in tuple(Runtime):
            raise ValueError(f"runtime {self.runtime!r} is not one of {', '.join(Runtime)}")
        if self.compute_units not in COMPUTE_UNITS:
            raise ValueError(f"compute_units {self.compute_units!r} is not one of {', '.join(COMPUTE_UNITS)}")
        if not 1 <= self.min_trials <= self.trials:
            raise ValueError(f"need 1 <= min_trials ({self.min_trials}) <= trials ({self.trials})")
        if self.warmup < 0 or self.threads < 0:
            raise ValueError("warmup and threads must be >= 0")
        for budget in Budget:
            value = getattr(self, budget.value)
            table = value if isinstance(value, dict) else {"": value} if value is not None else {}
            for key, limit in table.items():
                if key and key not in TARGET_KEYS:
                    raise ValueError(f"{budget.value}: {key!r} is not a target (one of {', '.join(TARGET_KEYS)})")
                if not math.isfinite(limit) or limit <= 0:
                    raise ValueError(f"{budget.value}: {limit!r} must be a number above 0")


def host() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"


def timing_plans(arts: Any, runtime: str, macos: bool) -> list[Any]:
    """What to time here: eager always; ONNX unless `coreml`; Core ML on macOS unless `onnx`."""
    from pipeline.artifacts import ArtifactError
    from pipeline.perf.measure import TimingPlan

    plans = [TimingPlan(key=REFERENCE, runtime="torch")]
    wanted = [("onnx_fp32", "onnxruntime", None)] if "onnx" in arts.options.targets else []
    if "coreml" in arts.options.targets:
        wanted += [(f"coreml_{p}", "coreml", p) for p in arts.options.precisions]
    for key, how, precision in wanted:
        skip = {Runtime.COREML: "onnxruntime", Runtime.ONNX: "coreml"}.get(Runtime(runtime))
        if how == skip:
            plans.append(TimingPlan(key=key, runtime=how, skip_reason=f"runtime = {runtime}"))
        elif how == "coreml" and not macos:
            plans.append(TimingPlan(key=key, runtime=how, skip_status="not_evaluable",
                                    skip_reason="Core ML prediction needs macOS"))
        else:
            try:
                files = _files(arts, key, precision)
            except ArtifactError as exc:  # not built: the conversion gate says why
                plans.append(TimingPlan(key=key, runtime=how, skip_status="error", skip_reason=str(exc)))
                continue
            plans.append(TimingPlan(key=key, runtime=how, prefill={t: p for kind, p, t in files if kind == "prefill"},
                                    decode=next(p for kind, p, _ in files if kind == "decode")))
    return plans


def _files(arts: Any, key: str, precision: str | None) -> list[tuple[str, Any, int | None]]:
    """(kind, path, own length) of a target's files; ArtifactError when one was not built."""
    if precision is None:
        return [(k, arts.onnx_model(k), None) for k in ("prefill", "decode")]
    files: list[tuple[str, Any, int | None]] = [("prefill", p, t) for t, p in _prefills(arts, precision).items()]
    return files + [("decode", arts.coreml_package("decode", precision), None)]


def _prefills(arts: Any, precision: str) -> dict[int | None, Any]:
    if arts.options.per_length:
        return {t: arts.coreml_package("prefill", precision, length=t) for t in arts.options.lengths}
    return {None: arts.coreml_package("prefill", precision)}


def static_targets(arts: Any) -> dict[str, dict[str, Any]]:
    """Static figures of every converted target; one that was not built carries the error."""
    from pipeline.artifacts import ArtifactError
    from pipeline.perf.measure import static_figures

    lengths, cache_range = arts.options.lengths, arts.export.cache_range
    wanted = [("onnx_fp32", "onnx", None)] if "onnx" in arts.options.targets else []
    if "coreml" in arts.options.targets:
        wanted += [(f"coreml_{p}", "coreml", p) for p in arts.options.precisions]
    out = {}
    for key, target, precision in wanted:
        try:
            files = _files(arts, key, precision)
        except ArtifactError as exc:
            out[key] = {"target": target, "precision": precision or "fp32", "error": f"not built: {exc}"}
            continue
        out[key] = static_figures(target, precision or "fp32", files, lengths=lengths, cache_range=cache_range)
    return out


def summarise(name: str, severity: Severity, targets: Mapping[str, Mapping[str, Any]],
              settings: Mapping[str, Any], model: Mapping[str, Any]) -> GateResult:
    """The verdict over the target entries (also what `merge` rebuilds)."""
    judged = checks(settings, targets)
    found = findings(targets)
    found += [{"title": f"{k}: compute not counted", "detail": e["cost_error"]}
              for k, e in targets.items() if e.get("cost_error")]
    requested = [k for k, e in targets.items() if (e.get("timing") or {}).get("status") == "not_evaluable"
                 and settings.get("runtime") == Runtime.COREML]
    verdict = judge(judged, found, targets, requested)
    metrics, intervals = evidence_of.metrics(targets, model, settings.get("primary_length"))
    failures = [{"title": f"{c.target}: {c.budget.value} {c.outcome.value}", "detail":
                 f"{c.where}: {c.value} (interval {c.low}–{c.high}) against {c.limit}" if c.value is not None
                 else c.detail} for c in judged if c.outcome.value != "met"]
    failures += [{"title": f"{k}: not measured", "detail": e["error"]} for k, e in targets.items() if e.get("error")]
    failures += list(found)
    failures += [{"title": f"{k}: not timed", "detail": (e.get("timing") or {}).get("reason", "")}
                 for k, e in targets.items() if (e.get("timing") or {}).get("status") in ("error", "not_evaluable")]
    evidence = {"targets": dict(targets), "model": dict(model), "settings": dict(settings),
                "checks": [c.to_dict() for c in judged], "findings": found, "failures": failures,
                "intervals": intervals, "tables": evidence_of.tables(targets, judged),
                "charts": evidence_of.charts(targets), "host": host(),
                "show_details": True}  # the figures are the point even when every budget is met
    summary = verdict.summary + _headline(metrics, settings)
    return GateResult(name=name, status=Status(verdict.status), severity=severity, score=verdict.score,
                      summary=summary, metrics=metrics, evidence=evidence, remediation=verdict.remediation)


def _headline(metrics: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    longest = max((int(k.rsplit("_T", 1)[1]) for k in metrics if k.startswith("onnx_fp32_decode_ms_T")), default=None)
    parts = []
    if longest is not None:
        parts.append(f"ONNX decode {metrics[f'onnx_fp32_decode_ms_T{longest}']:.3g} ms at T={longest}")
    if "onnx_fp32_decode_speedup_ratio" in metrics:
        parts.append(f"{metrics['onnx_fp32_decode_speedup_ratio']:.2g}× eager")
    sizes = [f"{k.removesuffix('_package_mb')} {v:.3g} MB" for k, v in sorted(metrics.items())
             if k.endswith("_package_mb")]
    return f" ({'; '.join(parts + sizes)})" if parts or sizes else ""


# Per target, a measured timing beats one that could not run here.
_TIMED = {"measured": 0, "error": 1, "not_evaluable": 2, "not_requested": 3}


def merge_targets(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    if old is None:
        return dict(new)
    rank = lambda e: _TIMED.get((e.get("timing") or {}).get("status", "not_requested"), 3)  # noqa: E731
    return dict(new) if rank(new) < rank(old) else dict(old)  # a tie keeps the base's


class PerformanceGate(ModelGate, name="performance", needs=("conversion",), settings=Settings):
    severity = Severity.WARNING  # a blocker once a budget is set (severity_for)

    def severity_for(self, settings: Any) -> Severity:
        """A blocker once any budget is set: the user made performance a requirement."""
        if settings is not None and budgets_set(asdict(settings)):
            return Severity.BLOCKER
        return self.severity

    def cache_inputs(self, ctx: GateContext) -> dict[str, Any] | None:
        """The model gates' key plus this gate's settings and the host: timings belong to a machine."""
        base = model_cache_inputs(ctx)
        if base is None:
            return None
        settings = ctx.settings or Settings()
        return {**base, "performance": {**asdict(settings), "runtime": self._runtime(ctx, settings),
                                        "host": host(), "node": platform.node()}}

    @staticmethod
    def _runtime(ctx: GateContext, settings: Settings) -> str:
        return str(ctx.options.get("runtime") or settings.runtime)

    def check_model(self, ctx: GateContext, model: ModelSpec) -> GateResult:
        from pipeline.perf.footprint import parameter_bytes, parameter_count
        from pipeline.perf.measure import measure_timing
        from pipeline.runtimes.coreml_runtime import can_predict

        settings: Settings = ctx.settings or Settings()
        runtime = self._runtime(ctx, settings)
        if runtime not in tuple(Runtime):
            raise GateError(f"setting runtime {runtime!r} is not one of {', '.join(Runtime)}")
        adapter, arts = shared_adapter(ctx), shared_artifacts(ctx)
        targets = static_targets(arts)
        timings = measure_timing(adapter, timing_plans(arts, runtime, can_predict()), lengths=arts.options.lengths,
                                 cache_range=arts.export.cache_range, warmup=settings.warmup,
                                 trials=settings.trials, min_trials=settings.min_trials,
                                 max_s=settings.max_measure_s, threads=settings.threads,
                                 compute_units=settings.compute_units, seed=settings.seed,
                                 weights=shared_mapped_weights(ctx, adapter.module))
        targets = {REFERENCE: {"target": "torch", "precision": "fp32"}, **targets}
        for key, timing in timings.items():
            targets.setdefault(key, {"target": key.split("_")[0], "precision": key.split("_")[-1]})["timing"] = \
                {**timing, "host": host()}
        recorded = {**asdict(settings), "runtime": runtime, "primary_length": model.primary_length}
        figures = {"params": parameter_count(adapter.module),
                   "param_mb": round(parameter_bytes(adapter.module) / 1e6, 3)}
        return summarise(self.name, self.severity_for(settings), targets, recorded, figures)

    @classmethod
    def merge(cls, results: Sequence[GateResult]) -> GateResult:
        """One result from a Linux run and a macOS `--runtime coreml` run: per target, measured timing wins."""
        if not results:
            raise ValueError("performance merge needs at least one result")
        targets: dict[str, Mapping[str, Any]] = {}
        for result in results:
            for key, entry in dict(result.evidence.get("targets") or {}).items():
                targets[key] = merge_targets(targets.get(key), entry)
        if not targets:
            return results[-1]
        base = results[0]  # the assessment's own budgets judge the merged figures
        settings = {**dict(base.evidence.get("settings") or {}), "runtime": "merged"}
        severity = Severity.BLOCKER if any(r.severity is Severity.BLOCKER for r in results) else base.severity
        merged = summarise(cls.name, severity, targets, settings, dict(base.evidence.get("model") or {}))
        return merged.with_(duration_s=sum(r.duration_s for r in results),
                            evidence={**merged.evidence, "merged_from": len(results)})
