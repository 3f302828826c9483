"""View data shared by every report format, built from the document alone.

Templates only loop and branch; every number is formatted here, once, so the
HTML, Markdown, JUnit and terminal reports agree to the digit. Text that came
from a gate (test names, failure messages, TODO lines) is untrusted: it is
passed on as plain strings for each renderer to escape its own way.

The band and the verdict's colour (`tone`: ship, noship, partial) follow the
verdict, never the score alone: a no-ship assessment never shows a "ready"
band, and a partial run (`--gate`, `--skip`) always says it is partial.
Documents of schema 1 carry a score band only; their shown band is derived
from their verdict here.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

STATUS_ORDER = ("fail", "error", "not_evaluable", "warn", "skipped", "off", "pass")
STATUS_LABEL = {"pass": "pass", "warn": "warn", "fail": "FAIL", "error": "ERROR",
                "not_evaluable": "not evaluable", "skipped": "skipped", "off": "turned off"}
STATUS_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "error": "💥",
               "not_evaluable": "❔", "skipped": "⏭️", "off": "⏸️"}
MAX_TABLE_ROWS = 200
MAX_TEXT = 4000
# Schema 3 gives a gate turned off its own status, "off"; schemas 1 and 2 wrote
# `skipped` with this evidence flag (gates.result.LEGACY_OFF_FLAG, written as a
# string here: reports read the document and never import the engine).
TURNED_OFF = "configured_off"
# A model gate that does not apply to the model's kind (semantics for kind = "module") is `off` with
# this evidence flag: listed as "not applicable", never as turned off or passed.
NOT_APPLICABLE = "not_applicable"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def pct(value: float | None, digits: int = 1) -> str:
    """A 0..100 number as text; never "100" unless exactly 100, never "0" unless 0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:.{digits}f}"
    step = 10 ** -digits
    if float(text) == 100.0 and value < 100.0:
        text = f"{100.0 - step:.{digits}f}"
    elif float(text) == 0.0 and value > 0.0:
        text = f"{step:.{digits}f}"
    return text


def number(value: Any) -> str:
    """A metric value as text."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return clip(str(value), 200)


def metric_text(name: str, value: Any) -> str:
    if name.endswith("_pct") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return pct(float(value)) + " %"
    if name.endswith("_s") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.2f} s"
    return number(value)


def strip_control(text: str) -> str:
    """`text` without the control characters no report format should carry (tab, LF, CR stay)."""
    return _CONTROL.sub("", text)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Untrusted text without control characters, cut at `limit`."""
    text = strip_control(text)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def diff_lines(text: str) -> list[tuple[str, str]]:
    """A unified diff as (kind, line) pairs: kind is add, del, hunk, file or context.

    Kept line by line so each format can show it as a diff (a `<pre>` with
    marked lines, a fenced `diff` block) instead of one run-together cell.
    """
    out = []
    text = clip(text).replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    for line in text.split("\n"):
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = {"+": "add", "-": "del"}.get(line[:1], "context")
        out.append((kind, line))
    return out


def _cell(value: Any) -> str:
    return number(value) if not isinstance(value, str) else clip(value, 500)


def _table(raw: Any) -> dict[str, Any] | None:
    """A table for display; a column named `diff` is split off into `diffs`.

    `diffs` holds one `diff_lines` list per row (empty when the table has no
    diff column), so templates show the diff under or beside its row.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("rows"), list):
        return None
    columns = [clip(str(c), 200) for c in raw.get("columns") or []]
    at = columns.index("diff") if "diff" in columns else None
    rows = [list(row) for row in raw["rows"][:MAX_TABLE_ROWS] if isinstance(row, (list, tuple))]
    diffs = []
    if at is not None:
        diffs = [diff_lines(str(row[at] if len(row) > at and row[at] is not None else "")) for row in rows]
        rows = [row[:at] + row[at + 1:] for row in rows]
        columns = columns[:at] + columns[at + 1:]
    return {"title": clip(str(raw.get("title", "")), 200), "columns": columns,
            "rows": [[_cell(c) for c in row] for row in rows], "diffs": diffs,
            "total": len(raw["rows"]), "omitted": max(0, len(raw["rows"]) - MAX_TABLE_ROWS),
            "raw": raw if isinstance(raw.get("chart"), Mapping) else None}  # for a chart (reports.scatter)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def chart_view(raw: Any) -> dict[str, Any] | None:
    """A gate's chart (`evidence.charts[i]`) with finite numbers and clipped text, or None.

    See `reports.charts` for the shape; points without a finite y are dropped,
    and a chart left with nothing to draw is no chart.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("series"), list):
        return None
    series = []
    for item in raw["series"][:12]:
        if not isinstance(item, Mapping) or not isinstance(item.get("points"), list):
            continue
        points = []
        for p in item["points"][:MAX_TABLE_ROWS]:
            y = _finite(p.get("y")) if isinstance(p, Mapping) else None
            if y is None:
                continue
            x = _finite(p.get("x"))
            points.append({"x": x if x is not None else clip(str(p.get("x")), 40), "y": max(0.0, y),
                           "low": _finite(p.get("low")), "high": _finite(p.get("high"))})
        if points:
            series.append({"name": clip(str(item.get("name", "")), 60), "points": points})
    if not series:
        return None
    return {"title": clip(str(raw.get("title", "")), 200), "kind": "bar" if raw.get("kind") == "bar" else "line",
            "x_label": clip(str(raw.get("x_label", "")), 80), "y_label": clip(str(raw.get("y_label", "")), 80),
            "series": series}


def _failures(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw:
        if isinstance(item, Mapping):
            out.append({"title": clip(str(item.get("title", "")), 300), "detail": clip(str(item.get("detail", "")))})
        else:
            out.append({"title": clip(str(item), 300), "detail": ""})
    return out


def _delta(doc: Mapping[str, Any], gate: str) -> str:
    baseline = doc.get("baseline") or {}
    entry = (baseline.get("gates") or {}).get(gate) if isinstance(baseline, Mapping) else None
    if not isinstance(entry, Mapping) or not isinstance(entry.get("score_delta"), (int, float)):
        return ""
    delta = 100.0 * float(entry["score_delta"])
    if abs(delta) < 0.05:
        return "→ 0.0"
    return ("▲ +" if delta > 0 else "▼ ") + f"{delta:.1f}"


def baseline_delta(v: Mapping[str, Any]) -> str:
    """The score's change against the baseline, with an arrow ("—" without one)."""
    baseline = v.get("baseline") or {}
    if baseline.get("partial") or v.get("partial"):
        return "not compared (a partial run's score covers only the gates it ran)"
    delta = baseline.get("score_delta")
    if not isinstance(delta, (int, float)):
        return "—"
    arrow = "▲" if delta > 0.05 else "▼" if delta < -0.05 else "→"
    return f"{arrow} {delta:+.1f}"


def _memory(peak_mb: Any) -> str:
    """A gate's peak resident memory as read in a table ("—" when it did not run here)."""
    if not isinstance(peak_mb, (int, float)) or isinstance(peak_mb, bool) or not peak_mb >= 0:
        return "—"
    return f"{peak_mb / 1024:.2f} GiB" if peak_mb >= 1024 else f"{peak_mb:.0f} MiB"


def gate_view(doc: Mapping[str, Any], gate: Mapping[str, Any]) -> dict[str, Any]:
    evidence = gate.get("evidence") or {}
    tables = [t for t in (_table(x) for x in evidence.get("tables") or []) if t]
    files = [clip(str(f), 500) for f in evidence.get("files") or []] if isinstance(evidence.get("files"), list) else []
    status = str(gate.get("status"))
    label = "not applicable" if is_not_applicable(gate) else STATUS_LABEL.get(status, clip(status, 50))
    return {
        "name": clip(str(gate.get("name")), 200),
        "status": clip(status, 50),
        "status_label": label,
        "icon": STATUS_ICON.get(status, "?"),
        "severity": clip(str(gate.get("severity")), 50),
        "score": pct(100.0 * gate["score"]) if isinstance(gate.get("score"), (int, float)) else "—",
        "summary": clip(str(gate.get("summary", "")), 1000),
        "remediation": clip(str(gate.get("remediation", "") or "")),
        "duration": f"{float(gate.get('duration_s') or 0):.2f} s",
        "memory": _memory(gate.get("peak_rss_mb")),
        "cached": bool(gate.get("cached")),
        "metrics": [(clip(str(k), 100), metric_text(str(k), v))
                    for k, v in sorted((gate.get("metrics") or {}).items())],
        "tables": tables,
        "charts": [c for c in (chart_view(x) for x in evidence.get("charts") or []) if c]
        if isinstance(evidence.get("charts"), list) else [],
        "failures": _failures(evidence.get("failures")),
        "show_details": evidence.get("show_details") is True,
        "files": files,
        "delta": _delta(doc, str(gate.get("name"))),
    }


def _band(doc: Mapping[str, Any], verdict: Mapping[str, Any], partial: bool) -> str:
    """The band shown beside the score (schema 2 stores it; schema 1 is derived here)."""
    if "score_band" in doc or (verdict["ship"] and not partial):
        return clip(str(doc["band"]), 200)
    if partial:
        return "partial run"
    vetoed = [str(v) for v in verdict.get("vetoed_by") or []]
    reasons = [str(r) for r in verdict.get("reasons") or []]
    if vetoed:
        return clip("blocked by " + ", ".join(vetoed[:3]) + (" and more" if len(vetoed) > 3 else ""), 200)
    if any(r.startswith("regression: ") for r in reasons):
        return "regressed"
    if any("under the threshold" in r for r in reasons):
        return "under the threshold"
    return "may not ship"


def _partial(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = doc.get("partial")
    if not isinstance(raw, Mapping):
        return None
    ran = [clip(str(g), 200) for g in raw.get("ran") or []]
    left_out = [clip(str(g), 200) for g in raw.get("left_out") or []]
    request = clip(str(raw.get("request") or ""), 300)
    return {"ran": len(ran), "total": len(ran) + len(left_out), "left_out": ", ".join(left_out),
            "request": request}


def _verdict_text(ship: bool, partial: dict[str, Any] | None, passed: bool) -> tuple[str, str, str]:
    """(label, tone, note): what the verdict badge says, its colour and the partial-run sentence."""
    if partial is None:
        return ("SHIP", "ship", "") if ship else ("DO NOT SHIP", "noship", "")
    how = f"; {partial['request']}" if partial["request"] else ""
    note = (f"partial: {partial['ran']} of {partial['total']} gates ran (left out: {partial['left_out']}{how});"
            " not a ship decision")
    if passed:
        return "PARTIAL: SELECTED GATES PASSED", "partial", note
    return "PARTIAL: SELECTED GATES FAILED", "noship", note


def is_turned_off(gate: Mapping[str, Any]) -> bool:
    """Turned off by the configuration or the command line (not skipped because a need failed)."""
    if gate.get("status") == "off":
        return True
    evidence = gate.get("evidence")
    return gate.get("status") == "skipped" and isinstance(evidence, Mapping) and evidence.get(TURNED_OFF) is True


def is_not_applicable(gate: Mapping[str, Any]) -> bool:
    """Off because it does not apply to the model's kind."""
    evidence = gate.get("evidence")
    return gate.get("status") == "off" and isinstance(evidence, Mapping) and bool(evidence.get(NOT_APPLICABLE))


def _off_reason(gate: Mapping[str, Any]) -> str:
    evidence = gate.get("evidence") or {}
    reason = evidence.get("off_because") or evidence.get("skipped_because")
    if not isinstance(reason, str) or not reason.strip():
        reason = str(gate.get("summary", "")).removeprefix("turned off:").strip()
    # older documents say "turned off with skip": "Turned off: mutation — turned off with skip" says it twice
    return clip(reason.strip().removeprefix("turned off ").strip() or "by the configuration", 300)


def turned_off(gates: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Gates turned off by configuration, one group per reason, in gate order.

    A project without a model has eight model gates off for one reason; one
    line says so instead of eight rows that read like findings.
    """
    groups: dict[tuple[str, bool], list[str]] = {}
    for gate in gates:
        if is_turned_off(gate):
            key = (_off_reason(gate), is_not_applicable(gate))
            groups.setdefault(key, []).append(clip(str(gate.get("name")), 200))
    return [{"reason": reason, "names": names,
             "line": (f"{reason[:1].upper()}{reason[1:]}: {', '.join(names)}" if na
                      else f"Turned off: {', '.join(names)} — {reason}")}
            for (reason, na), names in groups.items()]


def _versions(tools: Any) -> list[tuple[str, str]]:
    if not isinstance(tools, Mapping):
        return []
    return sorted((clip(str(k), 100), clip(str(v), 100) if v is not None else "not installed")
                  for k, v in tools.items())


def interpreter_views(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The interpreters that ran the project's tests (see readiness.provenance)."""
    out = []
    for entry in doc.get("test_runtimes") or []:
        if not isinstance(entry, Mapping):
            continue
        gates = ", ".join(clip(str(g), 100) for g in entry.get("gates") or [])
        python = clip(str(entry.get("python")), 50) if entry.get("python") else "unknown"
        tools = _versions(entry.get("tools"))
        out.append({"gates": gates, "python": python, "executable": clip(str(entry.get("executable", "")), 500),
                    "tools": tools, "error": clip(str(entry.get("error") or ""), 500),
                    "line": f"Tests run by {gates} under Python {python} "
                            f"({clip(str(entry.get('executable', '')), 500)})"
                            + (": " + ", ".join(f"{n} {v}" for n, v in tools) if tools else "")})
    return out


def own_runtime(doc: Mapping[str, Any]) -> str:
    """Readiness's own interpreter, which `tool_versions` describes."""
    host: Mapping[str, Any] = doc["host"] if isinstance(doc.get("host"), Mapping) else {}
    python = clip(str(host.get("python")), 50) if host.get("python") else "unknown"
    where = f" ({clip(str(host['executable']), 500)})" if host.get("executable") else ""
    return f"Python {python}{where}"


def build(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a renderer needs, as plain strings and numbers.

    `gates` holds the gates a table shows; gates turned off by configuration
    are grouped into `turned_off` lines instead. `every_gate` keeps them all,
    in document order, for formats that list each gate (JUnit).
    """
    verdict = doc["verdict"]
    every_gate = [gate_view(doc, g) for g in doc["gates"]]
    gates = [view for view, raw in zip(every_gate, doc["gates"]) if not is_turned_off(raw)]
    counts = {s: sum(1 for g in every_gate if g["status"] == s) for s in STATUS_ORDER}
    score = float(doc["score"])
    components = []
    for comp in doc["components"]:
        value = comp.get("score")
        components.append({
            "name": clip(str(comp["name"]), 200), "weight": number(comp["weight"]),
            "score": pct(value) if value is not None else "—",
            "width": max(0.0, min(100.0, float(value))) if value is not None else 0.0,
            "notes": [clip(str(n), 300) for n in comp.get("notes") or []],
            "gates": clip(", ".join(str(g) for g in comp.get("gates") or []), 1000),
        })
    git = doc.get("git") or {}
    baseline = doc.get("baseline") if isinstance(doc.get("baseline"), Mapping) else None
    partial = _partial(doc)
    ship = bool(verdict["ship"]) and partial is None
    label, tone, note = _verdict_text(ship, partial, not verdict.get("reasons"))
    return {
        "project": clip(str((doc.get("project") or {}).get("name", "")), 200),
        "generated_at": clip(str(doc["generated_at"]), 64),
        "commit": clip(str(git["commit"]))[:12] if git.get("commit") else "none (not a git repository)",
        "dirty": bool(git.get("dirty")),
        "profile": clip(str(doc.get("profile", "default")), 50),
        "score": pct(score),
        "score_value": max(0.0, min(100.0, score)),
        "band": _band(doc, verdict, partial is not None),
        "ship": ship,
        "tone": tone,
        "partial": partial,
        "partial_note": note,
        "verdict_label": label,
        "threshold": number(verdict.get("threshold")),
        "reasons": [clip(str(r), 1000) for r in verdict.get("reasons") or []],
        "vetoed_by": [clip(str(v), 200) for v in verdict.get("vetoed_by") or []],
        "capped_by": [clip(str(v), 200) for v in verdict.get("capped_by") or []],
        "gates": gates,
        "every_gate": every_gate,
        "turned_off": turned_off(doc["gates"]),
        "counts": counts,
        "components": components,
        "tool_versions": _versions(doc.get("tool_versions")),
        "own_runtime": own_runtime(doc),
        "test_runtimes": interpreter_views(doc),
        "host": clip(str((doc.get("host") or {}).get("platform", "")), 200),
        "baseline": baseline,
        "trend": list(doc.get("trend") or []),
    }
