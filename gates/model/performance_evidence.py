"""The performance gate's flat metrics, tables and charts, built from its target entries.

Metrics are what history compares: sizes (`<target>_package_mb`), compute
(`prefill_mmacs_T<n>`, `decode_mmacs_T<n>`), and per timed runtime the
median decode time (`<runtime>_decode_ms_T<n>`), prefill throughput
(`<runtime>_prefill_rate_T<n>`, tokens/s) and the speed-up over eager at
the primary length (`<runtime>_decode_speedup_ratio`). Every timed metric's
interval is in `intervals` under the same name, which is what lets a
regression rule judge intervals rather than single runs.

Charts are data (`{"title", "kind", "x_label", "y_label", "series": [{"name",
"points": [{"x", "y", "low", "high"}]}]}`); the HTML report draws them.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from gates.model.performance_judging import MB, REFERENCE, UNITS, Check

_LABEL = {"torch": "PyTorch eager", "onnx_fp32": "ONNX fp32 (onnxruntime)", "coreml_fp16": "Core ML fp16",
          "coreml_fp32": "Core ML fp32"}


def _mb(n: int | None) -> float | None:
    return None if n is None else round(n / MB, 3)


def _cost_source(targets: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The target whose counted cost the model-level figures quote (ONNX first: fp32 throughout)."""
    ordered = sorted(targets.items(), key=lambda kv: (not kv[0].startswith("onnx"), kv[0]))
    return next((e for k, e in ordered if k != REFERENCE and e.get("cost")), None)


def metrics(targets: Mapping[str, Mapping[str, Any]], model: Mapping[str, Any],
            primary: int | None) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """(flat metrics, intervals by metric name)."""
    out: dict[str, Any] = {k: v for k, v in model.items() if isinstance(v, (int, float))}
    intervals: dict[str, list[float]] = {}
    for key, entry in targets.items():
        if key == REFERENCE:
            continue
        if entry.get("package_bytes") is not None:
            out[f"{key}_package_mb"] = _mb(entry["package_bytes"])
            out[f"{key}_weight_mb"] = _mb(sum((entry.get("weight_bytes") or {}).values()))
        if entry.get("precision") == "fp16" and entry.get("fp16_ops_pct") is not None:
            out[f"{key}_fp16_ops_pct"] = entry["fp16_ops_pct"]
    source = _cost_source(targets)
    for row in (source or {}).get("cost") or []:
        out[f"{row['phase']}_mmacs_T{row['T']}"] = round(row["macs"] / 1e6, 4)
    prefill = [r for r in (source or {}).get("cost") or [] if r["phase"] == "prefill"]
    if prefill:
        longest = max(prefill, key=lambda r: r["T"])
        out[f"peak_activation_mb_T{longest['T']}"] = _mb(longest["peak_activation_bytes"])
    for key, entry in targets.items():
        for row in (entry.get("timing") or {}).get("rows") or []:
            name, est = ((f"{key}_decode_ms_T{row['T']}", row["ms"]) if row["phase"] == "decode"
                         else (f"{key}_prefill_rate_T{row['T']}", row["tokens_per_s"]))
            out[name], intervals[name] = est["median"], [est["low"], est["high"]]
            if row.get("vs_eager") and row["T"] == primary:
                ratio = f"{key}_{row['phase']}_speedup_ratio"
                out[ratio], intervals[ratio] = row["vs_eager"]["median"], [row["vs_eager"]["low"],
                                                                          row["vs_eager"]["high"]]
        growth = (entry.get("timing") or {}).get("decode_growth")
        if growth:
            out[f"{key}_decode_growth_x"] = growth["median"]
            intervals[f"{key}_decode_growth_x"] = [growth["low"], growth["high"]]
    return out, intervals


def _span(est: Mapping[str, Any] | None, digits: int = 3) -> str:
    if not est:
        return ""
    return f"{est['median']:.{digits}g} [{est['low']:.{digits}g}–{est['high']:.{digits}g}]"


def tables(targets: Mapping[str, Mapping[str, Any]], checks: Sequence[Check]) -> list[dict[str, Any]]:
    size = {"title": "Size per target (MB = 10^6 bytes)",
            "columns": ["target", "files", "package_mb", "weight_mb", "weights_by_dtype", "fp16_ops_pct"],
            "rows": [[k, ", ".join(f"{f['file']} {_mb(f['bytes'])}" for f in e.get("files") or []),
                      _mb(e.get("package_bytes")), _mb(sum((e.get("weight_bytes") or {}).values())),
                      ", ".join(f"{d} {_mb(b)}" for d, b in sorted((e.get("weight_bytes") or {}).items())),
                      e.get("fp16_ops_pct")]
                     for k, e in targets.items() if k != REFERENCE]}
    compute = {"title": "Compute per length, counted from each program (MMACs; peak activations estimated)",
               "columns": ["target", "phase", "T", "mmacs", "weight_mmacs", "attention_mmacs", "peak_activation_mb"],
               "rows": [[k, r["phase"], r["T"], round(r["macs"] / 1e6, 4), round(r["weight_macs"] / 1e6, 4),
                         round(r["activation_macs"] / 1e6, 4), _mb(r["peak_activation_bytes"])]
                        for k, e in targets.items() for r in e.get("cost") or []]}
    latency = {"title": "Latency per length: median [interval] over interleaved trials",
               "columns": ["runtime", "phase", "T", "ms", "tokens_per_s", "x_eager", "trials", "confidence_pct"],
               "rows": [[k, r["phase"], r["T"], _span(r["ms"]), _span(r["tokens_per_s"]), _span(r.get("vs_eager")),
                         r["ms"]["trials"], round(100 * r["ms"]["confidence"], 1)]
                        for k, e in targets.items() for r in (e.get("timing") or {}).get("rows") or []]}
    out = [t for t in (size, compute, latency) if t["rows"]]
    if checks:
        out.append({"title": "Budgets", "columns": ["budget", "target", "where", "limit", "measured", "outcome"],
                    "rows": [[c.budget.value, c.target, c.where, f"{c.limit:g} {UNITS[c.budget]}",
                              (f"{c.value:.4g}" + (f" [{c.low:.4g}–{c.high:.4g}]" if c.low is not None else "")
                               if c.value is not None else c.detail), c.outcome.value] for c in checks]})
    return out


def _series(targets: Mapping[str, Mapping[str, Any]], phase: str, field: str) -> list[dict[str, Any]]:
    series = []
    for key, entry in targets.items():
        rows = sorted((r for r in (entry.get("timing") or {}).get("rows") or [] if r["phase"] == phase),
                      key=lambda r: r["T"])
        if rows:
            series.append({"name": _LABEL.get(key, key),
                           "points": [{"x": r["T"], "y": r[field]["median"], "low": r[field]["low"],
                                       "high": r[field]["high"]} for r in rows]})
    return series


def charts(targets: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    decode = _series(targets, "decode", "ms")
    if decode:
        out.append({"title": "Decode time per token against cache length", "kind": "line",
                    "x_label": "cache length (tokens)", "y_label": "ms per token", "series": decode})
    prefill = _series(targets, "prefill", "tokens_per_s")
    if prefill:
        out.append({"title": "Prefill throughput against length", "kind": "line",
                    "x_label": "prompt length (tokens)", "y_label": "tokens/s", "series": prefill})
    source = _cost_source(targets)
    rows = sorted((r for r in (source or {}).get("cost") or [] if r["phase"] == "decode"), key=lambda r: r["T"])
    if rows:
        out.append({"title": "Decode compute per token against cache length (counted)", "kind": "line",
                    "x_label": "cache length (tokens)", "y_label": "MMACs per token",
                    "series": [{"name": "all MACs", "points": [{"x": r["T"], "y": r["macs"] / 1e6} for r in rows]},
                               {"name": "attention over the cache",
                                "points": [{"x": r["T"], "y": r["activation_macs"] / 1e6} for r in rows]}]})
    sizes = [{"x": k, "y": round(e["package_bytes"] / MB, 3)} for k, e in targets.items()
             if k != REFERENCE and e.get("package_bytes") is not None]
    if sizes:
        out.append({"title": "Package size per target", "kind": "bar", "x_label": "target", "y_label": "MB",
                    "series": [{"name": "package", "points": sizes}]})
    return out
