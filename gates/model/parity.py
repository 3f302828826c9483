"""The parity gate: converted models agree with PyTorch at every enumerated length.

PyTorch eager (the adapter's prefill and decode modules) is the reference.
Each converted target is run on the same inputs: Core ML packages through
Core ML itself on macOS or the MIL reference interpreter elsewhere, ONNX
through onnxruntime. Every enumerated length is checked, prefill and decode
(`decode_steps` greedy steps with the KV cache threaded through), on token
ids from real text through the project's tokenizer and on seeded random ids.
Every output gets every metric of `pipeline.parity.metrics`; a miss on any bound
fails the gate, and all misses are listed.

Settings: `runtime` ("auto", "coreml", "mil", "onnx": which targets, run
how), `thresholds` (overrides keyed "fp16", "logits" or "fp16.logits", see
docs/gates/parity.md), `decode_steps`, `seed`, `sources`, `localise`,
`localise_tol` (relative tolerance per precision for naming the first
diverging MIL op).

Evidence: `targets` (per target: status, runtime, per-length rows,
localisation) from which `merge` rebuilds a result, a per-length table per
target in `tables`, and `failures`. When a Core ML target fails under the
MIL interpreter, the first MIL op that introduces NaN/Inf, or the first
matched op that diverges from the PyTorch graph, is named.

Status: `fail` when any evaluated target misses a bound; `not_evaluable`
when a requested target cannot run on this host (Core ML prediction off
macOS, MIL ops the interpreter lacks) and none failed, or when no model is
configured; `error` when the model or its artifacts cannot be loaded. `merge` folds a partial result
(e.g. `--runtime coreml` on a macOS runner) into a Linux one.
"""

from __future__ import annotations

import enum
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gates.engine.protocol import GateContext, GateError
from gates.engine.spec import ModelKind, ModelSpec
from gates.model.shared import (
    ModelGate,
    model_cache_inputs,
    resolve,
    shared_adapter,
    shared_artifacts,
    shared_mapped_weights,
)
from gates.result import GateResult, Severity, Status


class Runtime(enum.StrEnum):
    """The `runtime` setting: which targets to check, run how."""

    AUTO = "auto"  # Core ML through Core ML on macOS, the MIL interpreter elsewhere; ONNX
    COREML = "coreml"
    MIL = "mil"
    ONNX = "onnx"


RUNTIMES = tuple(r.value for r in Runtime)
SOURCES = ("text", "random")
TEXT_CHARS = 6000  # enough corpus text for the longest length


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    runtime: str = "auto"
    thresholds: dict = field(default_factory=dict)
    decode_steps: int = 3
    seed: int = 0
    sources: tuple[str, ...] = SOURCES
    localise: bool = True
    localise_tol: dict = field(default_factory=lambda: {"fp32": 1e-3, "fp16": 5e-2})
    generate_tokens: int = 16  # greedy generation agreement over this many tokens (0: off)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetPlan:
    """One converted model to hold against PyTorch, and how to run it here."""

    target: str  # "coreml" or "onnx"
    precision: str
    runtime: str  # "coreml", "mil" or "onnxruntime"

    @property
    def key(self) -> str:
        return f"{self.target}_{self.precision}"


def validate(settings: Settings, runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise GateError(f"setting runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    bad = [s for s in settings.sources if s not in SOURCES]
    if bad or not settings.sources:
        raise GateError(f"setting sources {list(settings.sources)} must be among {', '.join(SOURCES)}")
    if settings.decode_steps < 1:
        raise GateError("setting decode_steps must be >= 1")
    if isinstance(settings.generate_tokens, bool) or not isinstance(settings.generate_tokens, int) \
            or settings.generate_tokens < 0:
        raise GateError(f"setting generate_tokens must be an integer >= 0, got {settings.generate_tokens!r}")
    from pipeline.parity.metrics import DIRECTIONS

    for key, bounds in dict(settings.thresholds).items():
        if not isinstance(bounds, dict):
            raise GateError(f"setting thresholds.{key} must be a table of metric bounds, got {bounds!r}")
        for metric, value in bounds.items():
            if metric not in DIRECTIONS:
                raise GateError(f"setting thresholds.{key}.{metric} is not a metric "
                                f"(known: {', '.join(sorted(DIRECTIONS))})")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise GateError(f"setting thresholds.{key}.{metric} must be a number, got {value!r}")


def plan(runtime: str, targets: Sequence[str], precisions: Sequence[str], macos: bool,
         compressions: Sequence[str] = (), stateful: Sequence[str] = ()) -> list[TargetPlan]:
    """The targets to check under `runtime`, each with the runtime that runs it: every precision
    and compression, then every stateful decode (target "coreml_stateful")."""
    plans = []
    if "coreml" in targets and runtime in ("auto", "coreml", "mil"):
        how = "mil" if runtime == "mil" or (runtime == "auto" and not macos) else "coreml"
        plans += [TargetPlan(target="coreml", precision=p, runtime=how) for p in (*precisions, *compressions)]
        plans += [TargetPlan(target="coreml_stateful", precision=v, runtime=how) for v in stateful]
    if "onnx" in targets and runtime in ("auto", "onnx"):
        plans.append(TargetPlan(target="onnx", precision="fp32", runtime="onnxruntime"))
    return plans


def planned(runtime: str, targets: Sequence[str], precisions: Sequence[str],
            compressions: Sequence[str] = (), stateful: Sequence[str] = ()) -> list[TargetPlan]:
    """`plan` on this host; GateError when the runtime selects none of the built targets."""
    from pipeline.runtimes.coreml_runtime import can_predict

    plans = plan(runtime, targets, precisions, can_predict(), compressions, stateful)
    if not plans:
        raise GateError(f"runtime {runtime!r} selects none of the targets {list(targets)}")
    return plans


def text_token_ids(tokenizer_path: Any, vocab: int) -> tuple[list[int], str]:
    """Corpus token ids through the project's tokenizer, or ([], why not)."""
    from pipeline import text_tokenizer

    if tokenizer_path is None:
        return [], "no tokenizer configured"
    try:
        tok = text_tokenizer.load_tokenizer(tokenizer_path)
    except text_tokenizer.TokenizerError as exc:
        raise GateError(str(exc)) from None
    ids = text_tokenizer.encode(tok, text_tokenizer.corpus_text()[:TEXT_CHARS])
    if not ids:
        return [], "the tokenizer produced no tokens"
    if max(ids) >= vocab:
        raise GateError(f"{tokenizer_path}: token id {max(ids)} is outside the model's vocabulary "
                        f"({vocab})")
    return ids, ""


TABLE_COLUMNS = ["runtime", "phase", "T", "output", "runs", "max_abs", "max_rel", "mean_abs", "psnr_db",
                 "cosine", "top1_pct", "top5_pct", "kl", "ppl_delta_pct", "greedy_match_pct", "nan_count",
                 "inf_count", "status"]
# kind = "module": a row per shape case and output (pipeline.parity.module_targets)
SHAPE_COLUMNS = ["runtime", "shape", "output", "runs", "max_abs", "max_rel", "mean_abs", "psnr_db",
                 "cosine", "top1_pct", "topk_pct", "kl", "nan_count", "inf_count", "status"]
_WORST = {"max_rel": max, "kl": max, "max_abs": max, "mean_abs": max, "cosine": min, "psnr_db": min,
          "top1_pct": min, "top5_pct": min, "topk_pct": min, "ppl_delta_pct": max, "greedy_match_pct": min}
_LABELS = {"coreml": "Core ML", "coreml_stateful": "Core ML stateful decode", "onnx": "ONNX",
           "mil": "MIL interpreter", "onnxruntime": "onnxruntime"}


def _target_metrics(key: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = {f"{key}_comparisons": entry.get("comparisons", 0),
                               f"{key}_failed": entry.get("failed", 0)}
    rows = entry.get("rows") or []
    for name, pick in _WORST.items():
        values = [r[name] for r in rows if r.get(name) is not None]
        if values:
            metrics[f"{key}_{name}"] = pick(values)
    metrics[f"{key}_nonfinite"] = sum((r.get("nan_count") or 0) + (r.get("inf_count") or 0) for r in rows)
    return metrics


def _where(row: Mapping[str, Any]) -> str:
    return f"shape {row['shape']}" if "shape" in row else f"{row['phase']} T={row['T']}"


def _table(key: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    per_shape = any("shape" in r for r in entry["rows"])
    columns = SHAPE_COLUMNS if per_shape else TABLE_COLUMNS
    return {"title": f"{_LABELS.get(entry['target'], key)} {entry['precision']} vs PyTorch, "
                     f"per {'shape' if per_shape else 'length'}",
            "columns": columns, "rows": [[r.get(c) for c in columns] for r in entry["rows"]]}


def _failures(key: str, entry: Mapping[str, Any]) -> list[dict[str, str]]:
    label = f"{_LABELS.get(entry['target'], key)} {entry['precision']}"
    if entry["status"] in (Status.ERROR, Status.NOT_EVALUABLE):
        return [{"title": f"{label}: {entry['status']}", "detail": entry.get("reason", "")}]
    found = [{"title": f"{label} {_where(r)} {r['output']}", "detail": "; ".join(r["misses"])}
             for r in entry.get("rows", []) if r.get("status") == Status.FAIL]
    found += [{"title": f"{label}: first failing MIL op ({f.get('kind')})", "detail": f.get("detail", "")}
              for f in entry.get("localisation", [])]
    return found


def summarise(name: str, severity: Severity, targets: Mapping[str, Mapping[str, Any]]) -> GateResult:
    """The verdict over every target's evidence entry (also what `merge` rebuilds)."""
    by_status = {s: sorted(k for k, e in targets.items() if e["status"] == s)
                 for s in (Status.PASS, Status.FAIL, Status.ERROR, Status.NOT_EVALUABLE)}
    rows = [r for e in targets.values() for r in e.get("rows", [])]
    unit = "shape" if any("shape" in r for r in rows) else "length"
    passed_rows = sum(r["status"] == Status.PASS for r in rows)
    metrics: dict[str, Any] = {"targets_passed": len(by_status[Status.PASS]),
                               "targets_failed": len(by_status[Status.FAIL]),
                               "targets_not_evaluable": len(by_status[Status.NOT_EVALUABLE]),
                               "targets_error": len(by_status[Status.ERROR]),
                               "rows_checked": len(rows), "rows_failed": len(rows) - passed_rows,
                               "comparisons": sum(e.get("comparisons", 0) for e in targets.values())}
    for key, entry in targets.items():
        metrics.update(_target_metrics(key, entry))
    tables = [_table(k, e) for k, e in targets.items() if e.get("rows")]
    from gates.model.parity_tradeoff import tradeoff_table

    tradeoff = tradeoff_table(targets)
    tables += [tradeoff] if tradeoff else []
    failures = [f for k, e in targets.items() for f in _failures(k, e)]
    evidence = {"targets": dict(targets), "tables": tables, "failures": failures,
                "files": sorted({f for e in targets.values() for f in e.get("files", [])})}
    score = round(passed_rows / len(rows), 4) if rows else None
    if by_status[Status.FAIL]:
        status = Status.FAIL
        summary = (f"{', '.join(by_status[Status.FAIL])} out of parity "
                   f"({len(rows) - passed_rows} of {len(rows)} {unit}/output rows miss)")
        remediation = ("Read the failing rows and the named MIL op: NaN/Inf in fp16 means an activation "
                       "overflows (rescale or keep that op in fp32); a large divergence points at the op "
                       "the conversion changed.")
    elif by_status[Status.ERROR]:
        status, summary = Status.ERROR, f"parity could not be measured for {', '.join(by_status[Status.ERROR])}"
        remediation = "See the failure entries for what could not be run."
    elif by_status[Status.NOT_EVALUABLE] or not rows:
        status = Status.NOT_EVALUABLE
        done = f"; {', '.join(by_status[Status.PASS])} passed" if by_status[Status.PASS] else ""
        summary = f"{', '.join(by_status[Status.NOT_EVALUABLE])} cannot run here{done}"
        remediation = ("Run `readiness gate parity --runtime coreml` on macOS and merge the result, "
                       "or use the MIL interpreter (`runtime = \"mil\"`).")
    else:
        status, remediation = Status.PASS, ""
        summary = f"{', '.join(by_status[Status.PASS])} match PyTorch on {len(rows)} {unit}/output rows"
    return GateResult(name=name, status=status, severity=severity, score=score, summary=summary,
                      metrics=metrics, evidence=evidence, remediation=remediation)


# A target entry's status is a Status value; worse first when two evaluated runs merge.
_RANK = {Status.FAIL: 0, Status.ERROR: 1, Status.PASS: 2, Status.NOT_EVALUABLE: 3}


def merge_targets(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """One target's entry from two runs: evaluated beats not evaluable; else worse status wins."""
    if old is None or old["status"] == Status.NOT_EVALUABLE:
        return dict(new)
    if new["status"] == Status.NOT_EVALUABLE:
        return dict(old)
    first, second = sorted((old, new), key=lambda e: _RANK[Status(e["status"])])
    runtimes = sorted({str(old.get("runtime")), str(new.get("runtime"))})
    return {**first, "runtime": "+".join(runtimes), "rows": list(old["rows"]) + list(new["rows"]),
            "comparisons": old.get("comparisons", 0) + new.get("comparisons", 0),
            "failed": old.get("failed", 0) + new.get("failed", 0),
            "localisation": list(old.get("localisation", [])) + list(new.get("localisation", [])),
            "files": sorted(set(old.get("files", [])) | set(new.get("files", [])))}


class ParityGate(ModelGate, name="parity", needs=("conversion",), settings=Settings):

    def cache_inputs(self, ctx: GateContext) -> dict[str, Any] | None:
        """The model gates' key (spec, checkpoint, tokenizer) plus this gate's settings and
        the host kind: "auto" runs Core ML on macOS and the interpreter elsewhere."""
        base = model_cache_inputs(ctx)
        if base is None:
            return None
        settings = ctx.settings or Settings()
        return {**base, "parity": {**asdict(settings), "sources": list(settings.sources),
                                   "runtime": str(ctx.options.get("runtime") or settings.runtime),
                                   "host": platform.system()}}

    def check_model(self, ctx: GateContext, model: ModelSpec) -> GateResult:
        from pipeline.parity.targets import references, run_target

        settings: Settings = ctx.settings or Settings()
        runtime = str(ctx.options.get("runtime") or settings.runtime)
        validate(settings, runtime)
        if model.kind == ModelKind.MODULE:
            from gates.model.module_kind import parity as module_kind

            return module_kind.check(self, ctx, model, runtime)
        adapter, arts = shared_adapter(ctx), shared_artifacts(ctx)
        plans = planned(runtime, arts.options.targets, arts.options.precisions,
                        getattr(arts.options, "compressions", ()), getattr(arts.options, "stateful", ()))
        path = resolve(model.tokenizer, ctx.root)
        text_ids, why = text_token_ids(path, adapter.vocab_size) if "text" in settings.sources else ([], "")
        sources = tuple(s for s in settings.sources if s != "text" or text_ids)
        if not sources:
            raise GateError(f"no inputs to compare on ({why})")
        # The reference outputs wait on disk between targets (removed when the gate ends).
        Path(ctx.work_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="references-", dir=ctx.work_dir) as spill:
            refs = references(adapter, spill=Path(spill))
            # once the reference is on disk the eager weights leave memory while programs run
            park = shared_mapped_weights(ctx, adapter.module).park
            targets = {p.key: run_target(p, adapter, arts, refs=refs, thresholds=dict(settings.thresholds),
                                         decode_steps=settings.decode_steps, seed=settings.seed,
                                         sources=sources, text_ids=text_ids, localise=settings.localise,
                                         localise_tol=dict(settings.localise_tol),
                                         generate_tokens=settings.generate_tokens, park=park)
                       for p in plans}
        from gates.model.parity_tradeoff import package_sizes

        for p in plans:
            if p.target != "onnx":  # the size/quality table (gates/model/parity_tradeoff.py)
                size, base = package_sizes(arts, p.target, p.precision)
                targets[p.key] = {**targets[p.key], "size_bytes": size, "baseline_bytes": base}
        result = summarise(self.name, self.severity, targets)
        notes = [f"text inputs skipped: {why}"] if why and "text" in settings.sources else []
        return result.with_(evidence={**result.evidence, "notes": notes,
                                      "settings": {"runtime": runtime, "seed": settings.seed,
                                                   "decode_steps": settings.decode_steps,
                                                   "generate_tokens": settings.generate_tokens,
                                                   "sources": list(sources)}})

    @classmethod
    def merge(cls, results: Sequence[GateResult]) -> GateResult:
        """One result from several partial parity results (e.g. Linux + a macOS runner).

        Per target, an evaluated entry beats a not-evaluable one; two evaluated
        entries are combined (their rows kept side by side, the worse status wins).
        """
        if not results:
            raise ValueError("parity merge needs at least one result")
        targets: dict[str, Mapping[str, Any]] = {}
        for i, result in enumerate(results):
            entries = dict(result.evidence.get("targets") or {})
            if not entries and result.status in (Status.ERROR, Status.FAIL):
                # a run that measured nothing still counts: it must not vanish into a pass
                entries = {f"run_{i}": {"target": f"run {i}", "precision": "", "runtime": "",
                                        "status": Status.ERROR.value, "reason": result.summary, "rows": []}}
            for key, entry in entries.items():
                targets[key] = merge_targets(targets.get(key), entry)
        if not targets:
            return results[0]
        merged = summarise(cls.name, results[0].severity, targets)
        return merged.with_(duration_s=sum(r.duration_s for r in results),
                            evidence={**merged.evidence, "merged_from": len(results)})
