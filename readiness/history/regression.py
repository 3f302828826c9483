"""Baselines, regression rules and deltas between two assessment documents.

A rule bounds how far one number may move the wrong way, in the manner of TFX
change thresholds and MLflow's `MetricThreshold`: an absolute tolerance
(`max_drop`, in the metric's own units), a relative one (`max_drop_pct`, in
percent of the baseline value), and a direction (`higher_is_better`). A rule
names its number by key:

- `score`: the overall readiness score (0..100);
- `<gate>.score`: a gate's score (0..1);
- `<gate>.<metric>`: a number in a gate's `metrics`;

`*` and `?` match as in shell patterns (`*.score`). An exact key beats a
pattern; among patterns the first listed wins. The defaults: the overall
score may drop at most 2 points, each gate's score at most 0.05.

    >>> rule = Rule.from_dict({"metric": "coverage.line_pct", "max_drop": 1.0})
    >>> rule.violated(before=91.0, after=89.5), rule.violated(before=91.0, after=90.0)
    (True, False)

`compare(current, baseline_doc, rules)` builds the `baseline` key of the
current assessment document, exactly:

    null  (no comparison attempted: history is turned off)
    {"first_run": true, "policy": "pass" | "fail", "message": str, "partial": bool}
    {"first_run": false, "source": "history:<id>" | "file:<path>",
     "generated_at": str, "commit": str | null, "score": float | null,
     "score_delta": float | null, "partial": bool,
     "gates": {name: {"status_before": str | null, "status_after": str | null,
                      "score_delta": float | null, "regressed": bool,
                      "metrics": {metric: {"before", "after", "delta"}}}},
     "regressions": [{"gate": str | null, "metric": str, "before", "after",
                      "delta": float | null, "rule": str, "message": str}]}

Deltas are `after - before`, rounded to 6 decimals (the same rounding is
used to judge them, so a drop of exactly the tolerance passes). A metric that
both documents measured with an interval (a gate's `evidence.intervals`:
`{metric: [low, high]}`, e.g. the performance gate's latencies) is judged on
the interval ends nearest each other: a latency regressed only when even the
fastest plausible value now is slower than the slowest plausible baseline by
more than the tolerance, so noise between two runs is never a regression. A regression
with `"gate": null` is the overall score; `"metric": "status"` means a gate
that passed in the baseline no longer does (failed, errored, was skipped or
disappeared: lost evidence counts as a regression, never as silence).

When either side is a *partial* assessment (`"partial"` in the document:
gates left out with `--gate` / `--skip`), the two overall scores measure
different things: they are not compared (`score_delta` null, `"partial":
true`), and only the gates that ran on both sides are. A partial run is no
ship decision, so a first run under the `fail` policy blocks nothing there.
`trend(rows)` builds the `trend` key: see its docstring. `diff(a, b)` is
what `readiness diff` shows.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, Iterable, Mapping, Sequence

PASSED = frozenset({"pass", "warn"})
REGRESSION_PREFIX = "regression: "  # every regression reason of the verdict starts so
_STATUS_RANK = {"pass": 3, "warn": 2, "fail": 1}
_LOWER_TOKENS = frozenset({
    "error", "errors", "err", "fail", "failed", "failures", "nan", "inf", "kl", "survived",
    "timeout", "timeouts", "missing", "mismatch", "mismatches", "todo", "todos", "stub",
    "stubs", "skipped", "violations", "s", "ms", "latency", "bytes", "mb", "diff"})
_HIGHER_TOKENS = frozenset({
    "pct", "score", "ratio", "agreement", "cosine", "psnr", "passed", "covered", "killed",
    "accuracy", "rate", "count", "tests"})


class FirstRunPolicy(str, enum.Enum):
    """What a run with nothing to compare against does to the verdict."""

    PASS = "pass"  # ship on its own merits; the report says there was no baseline
    FAIL = "fail"  # refuse until a baseline is set (`readiness baseline set`)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """How far the number named `metric` may move the wrong way."""

    metric: str
    max_drop: float | None = None
    max_drop_pct: float | None = None
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if not self.metric or (self.metric != "score" and "." not in self.metric):
            raise ValueError(f"metric: {self.metric!r} must be 'score', '<gate>.score'"
                             " or '<gate>.<metric>'")
        if self.max_drop is None and self.max_drop_pct is None:
            raise ValueError(f"max_drop: rule {self.metric!r} sets neither max_drop nor"
                             " max_drop_pct; set one or both")
        for name in ("max_drop", "max_drop_pct"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"{name}: {value!r} must be a number >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, key: str = "rule") -> Rule:
        """Parse one rule from configuration; ValueError names `key` and the bad field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{key}: expected a table like {{metric = \"coverage.line_pct\","
                             f" max_drop = 1.0}}, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{key}.{unknown[0]}: unknown setting (allowed: {', '.join(sorted(known))})")
        if not isinstance(data.get("metric"), str):
            raise ValueError(f"{key}.metric: expected a string like \"coverage.line_pct\","
                             f" got {data.get('metric')!r}")
        for name in ("max_drop", "max_drop_pct"):
            value = data.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{key}.{name}: expected a number or nothing, got {value!r}")
        hib = data.get("higher_is_better", True)
        if not isinstance(hib, bool):
            raise ValueError(f"{key}.higher_is_better: expected true or false, got {hib!r}")
        try:
            return cls(metric=data["metric"], max_drop=_opt_float(data.get("max_drop")),
                       max_drop_pct=_opt_float(data.get("max_drop_pct")), higher_is_better=hib)
        except ValueError as exc:
            raise ValueError(f"{key}.{exc}") from None

    def matches(self, key: str) -> bool:
        return fnmatchcase(key, self.metric)

    def worsening(self, before: float, after: float) -> float:
        """How far the value moved the wrong way (negative: it improved)."""
        return round(before - after if self.higher_is_better else after - before, 6)

    def violated(self, *, before: float, after: float) -> bool:
        drop = self.worsening(before, after)
        if drop <= 0:
            return False
        if self.max_drop is not None and drop > self.max_drop:
            return True
        if self.max_drop_pct is not None:
            # Any worsening from zero is an infinite relative change.
            return before == 0 or round(drop / abs(before) * 100, 6) > self.max_drop_pct
        return False

    def describe(self) -> str:
        limits = [f"max_drop={_fmt(self.max_drop)}" if self.max_drop is not None else "",
                  f"max_drop_pct={_fmt(self.max_drop_pct)}" if self.max_drop_pct is not None else ""]
        direction = "" if self.higher_is_better else ", lower is better"
        return f"{self.metric}: {', '.join(filter(None, limits))}{direction}"


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(metric="score", max_drop=2.0),
    Rule(metric="*.score", max_drop=0.05),
)


def parse_rules(data: Sequence[Mapping[str, Any]], *, key: str = "rules") -> tuple[Rule, ...]:
    """User rules followed by the defaults they do not replace (same `metric` replaces)."""
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise ValueError(f"{key}: expected a list of rule tables, got {data!r}")
    user = tuple(Rule.from_dict(item, key=f"{key}[{i}]") for i, item in enumerate(data))
    taken = {rule.metric for rule in user}
    return user + tuple(rule for rule in DEFAULT_RULES if rule.metric not in taken)


def rule_for(key: str, rules: Iterable[Rule]) -> Rule | None:
    """The rule that governs `key`: an exact match, else the first matching pattern."""
    rules = tuple(rules)
    exact = [rule for rule in rules if rule.metric == key]
    return exact[0] if exact else next((rule for rule in rules if rule.matches(key)), None)


def first_run(policy: FirstRunPolicy | str, project: str = "") -> dict[str, Any]:
    """The `baseline` value of a run with nothing shipped to compare against."""
    policy = FirstRunPolicy(policy)
    subject = f"project {project!r}" if project else "this project"
    effect = ("first_run_policy = \"pass\": it is judged on its own merits" if policy is FirstRunPolicy.PASS
              else "first_run_policy = \"fail\": it may not ship until a baseline is set"
                   " with `readiness baseline set`")
    return {"first_run": True, "policy": policy.value,
            "message": f"No baseline: nothing of {subject} has been marked shipped yet, so no"
                       f" regression check was possible; {effect}."}


def compare(current: Mapping[str, Any], baseline_doc: Mapping[str, Any] | None,
            rules: Iterable[Rule] = DEFAULT_RULES, *, source: str = "",
            first_run_policy: FirstRunPolicy | str = FirstRunPolicy.PASS,
            status_regressions: bool = True) -> dict[str, Any]:
    """The `baseline` key for `current` (see the module docstring for its shape).

    `baseline_doc` None means a first run. `source` says where the baseline came
    from: "history:<id>" or "file:<path>". A history entry (as returned by
    `history.last_shipped`) may be passed instead of its document: it is
    unwrapped and, without an explicit `source`, named "history:<id>".
    """
    if baseline_doc is None:
        return {**first_run(first_run_policy, _project(current)), "partial": is_partial(current)}
    if isinstance(baseline_doc.get("document"), Mapping) and "id" in baseline_doc:
        source = source or f"history:{baseline_doc['id']}"
        baseline_doc = baseline_doc["document"]
    rules = tuple(rules)
    partial = is_partial(current) or is_partial(baseline_doc)
    left_out = set(left_out_gates(current)) | set(left_out_gates(baseline_doc))
    before_gates, after_gates = _gates(baseline_doc), _gates(current)
    regressions = [] if partial else \
        _check(None, "score", baseline_doc.get("score"), current.get("score"), rules)
    gates: dict[str, Any] = {}
    for name in [n for n in _union(after_gates, before_gates) if n not in left_out]:
        entry, found = _gate_delta(name, before_gates.get(name, {}), after_gates.get(name, {}),
                                   rules, status_regressions)
        gates[name] = entry
        regressions += found
    return {"first_run": False, "source": source,
            "generated_at": baseline_doc.get("generated_at"),
            "commit": _table(baseline_doc, "git").get("commit"),
            "score": _num(baseline_doc.get("score")),
            "score_delta": None if partial else _delta(baseline_doc.get("score"), current.get("score")),
            "partial": partial, "gates": gates, "regressions": regressions}


def is_partial(doc: Mapping[str, Any]) -> bool:
    """Whether an assessment document is partial (documents before schema 2 never say so)."""
    return isinstance(doc.get("partial"), Mapping) or _table(doc, "verdict").get("partial") is True


def left_out_gates(doc: Mapping[str, Any]) -> list[str]:
    """The configured gates a partial assessment did not run (none for a full one)."""
    left_out = _table(doc, "partial").get("left_out")
    return [str(name) for name in left_out] if isinstance(left_out, list) else []


def ship_blockers(baseline: Mapping[str, Any] | None) -> list[str]:
    """Verdict reasons the comparison adds: every regression, or a first run under `fail`."""
    if not baseline:
        return []
    if baseline.get("first_run"):
        blocks = baseline.get("policy") == FirstRunPolicy.FAIL.value and not baseline.get("partial")
        return [baseline["message"]] if blocks else []
    return [f"{REGRESSION_PREFIX}{item['message']}" for item in baseline.get("regressions", ())]


def _gate_delta(name: str, before: Mapping[str, Any], after: Mapping[str, Any],
                rules: tuple[Rule, ...], status_regressions: bool) -> tuple[dict[str, Any], list]:
    found: list[dict[str, Any]] = []
    status_before, status_after = before.get("status"), after.get("status")
    lost = status_before in PASSED and status_after not in PASSED
    if status_regressions and lost:
        found.append({"gate": name, "metric": "status", "before": status_before,
                      "after": status_after, "delta": None, "rule": "status",
                      "message": f"gate {name} passed in the baseline ({status_before}) and now is"
                                 f" {status_after or 'missing'}"})
    # A gate that lost its status already says its numbers are gone; only real drops add to it.
    found += _check(name, "score", before.get("score"), after.get("score"), rules,
                    report_missing=not (status_regressions and lost))
    metrics_before, metrics_after = _table(before, "metrics"), _table(after, "metrics")
    intervals_before, intervals_after = _intervals(before), _intervals(after)
    metrics = {}
    for metric in sorted(_union(metrics_before, metrics_after)):
        b, a = metrics_before.get(metric), metrics_after.get(metric)
        metrics[metric] = {"before": b, "after": a, "delta": _delta(b, a)}
        found += _check(name, metric, b, a, rules, report_missing=not (status_regressions and lost),
                        intervals=(intervals_before.get(metric), intervals_after.get(metric)))
    entry = {"status_before": status_before, "status_after": status_after,
             "score_delta": _delta(before.get("score"), after.get("score")),
             "regressed": bool(found), "metrics": metrics}
    return entry, found


def _intervals(gate: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """A gate's measured intervals by metric (`evidence.intervals`: {metric: [low, high]})."""
    raw = _table(_table(gate, "evidence"), "intervals")
    out: dict[str, tuple[float, float]] = {}
    for metric, pair in raw.items():
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        lo, hi = _num(pair[0]), _num(pair[1])
        if lo is not None and hi is not None:
            out[str(metric)] = (min(lo, hi), max(lo, hi))
    return out


def _interval_edges(rule: Rule, before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    """The ends of two intervals nearest each other in the rule's direction: a measured
    number regressed only when even the best of now is worse than the worst of the baseline."""
    if rule.higher_is_better:
        return before[0], after[1]
    return before[1], after[0]


def _check(gate: str | None, metric: str, before: Any, after: Any, rules: tuple[Rule, ...],
           *, report_missing: bool = True,
           intervals: tuple[tuple[float, float] | None, tuple[float, float] | None] = (None, None),
           ) -> list[dict[str, Any]]:
    key = metric if gate is None else f"{gate}.{metric}"
    rule = rule_for(key, rules)
    b, a = _num(before), _num(after)
    if rule is None or b is None:
        return []
    label = "readiness score" if gate is None else key
    if a is None:
        if not report_missing:
            return []
        message = f"{label} was {_fmt(b)} in the baseline and is not measured now"
    elif intervals[0] is not None and intervals[1] is not None:
        (b_lo, b_hi), (a_lo, a_hi) = intervals[0], intervals[1]
        edge_b, edge_a = _interval_edges(rule, intervals[0], intervals[1])
        if not rule.violated(before=edge_b, after=edge_a):
            return []
        verb = "dropped" if rule.higher_is_better else "rose"
        message = (f"{label} {verb} beyond its interval: now {_fmt(a)} [{_fmt(a_lo)}–{_fmt(a_hi)}], baseline "
                   f"{_fmt(b)} [{_fmt(b_lo)}–{_fmt(b_hi)}]; rule {rule.describe()}, judged on the interval ends")
    elif rule.violated(before=b, after=a):
        verb = "dropped" if rule.higher_is_better else "rose"
        message = (f"{label} {verb} {_fmt(abs(a - b))} ({_fmt(b)} → {_fmt(a)});"
                   f" rule {rule.describe()}")
    else:
        return []
    return [{"gate": gate, "metric": metric, "before": before, "after": after,
             "delta": _delta(b, a), "rule": rule.describe(), "message": message}]


def trend(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The `trend` key: one point per assessment, oldest first.

    `rows` are history entries (with a "document") or assessment documents,
    in any order; one without a readable `generated_at` counts as the newest.
    Partial assessments are left out: their scores are not comparable. Each point is exactly
    `{"generated_at": str, "score": float | null, "verdict_ship": bool,
    "components": {component name: score 0..100 | null}}`.
    """
    docs = [row["document"] if "document" in row else row for row in rows]
    docs = [doc for doc in docs if not is_partial(doc)]
    ordered = sorted(enumerate(docs), key=lambda item: (_when(item[1]), item[0]))
    return [{"generated_at": doc.get("generated_at"), "score": _num(doc.get("score")),
             "verdict_ship": _table(doc, "verdict").get("ship") is True,
             "components": {str(c.get("name")): _num(c.get("score"))
                            for c in doc.get("components") or () if isinstance(c, Mapping)}}
            for _, doc in ordered]


def diff(a: Mapping[str, Any], b: Mapping[str, Any],
         rules: Iterable[Rule] = DEFAULT_RULES) -> dict[str, Any]:
    """Per-gate and per-metric changes from assessment `a` to assessment `b`.

    Every change is classified: "better" / "worse" (the direction is known
    from a rule or from the metric's name: `*_pct`, `score` … higher is better;
    `*_err`, `*_s`, `failures` … lower is), "same", "changed" (moved, direction
    unknown, or not a number), "new" (only in b) or "gone" (only in a).
    `counts` tallies those classes over the gate scores and gate metrics.
    When either side is partial (`"partial": {"before", "after"}`), the
    overall score's change is "partial" (not compared) and gates a partial
    side left out are not listed.
    """
    rules = tuple(rules)
    before_gates, after_gates = _gates(a), _gates(b)
    left_out = set(left_out_gates(a)) | set(left_out_gates(b))
    gates = []
    for name in [n for n in _union(after_gates, before_gates) if n not in left_out]:
        ga, gb = before_gates.get(name, {}), after_gates.get(name, {})
        metrics_a, metrics_b = _table(ga, "metrics"), _table(gb, "metrics")
        gates.append({
            "name": name, "status_before": ga.get("status"), "status_after": gb.get("status"),
            "status_change": _status_change(ga.get("status"), gb.get("status")),
            "score": _change(ga.get("score"), gb.get("score"), _direction(f"{name}.score", rules)),
            "metrics": [{"metric": m, **_change(metrics_a.get(m), metrics_b.get(m),
                                                 _direction(f"{name}.{m}", rules))}
                        for m in sorted(_union(metrics_a, metrics_b))]})
    partial = {"before": is_partial(a), "after": is_partial(b)}
    score = _change(a.get("score"), b.get("score"), _direction("score", rules))
    if partial["before"] or partial["after"]:
        score = {**score, "delta": None, "change": "partial"}
    result = {"score": score, "verdict": {"before": _ship(a), "after": _ship(b)}, "gates": gates,
              "partial": partial}
    result["counts"] = _count(result)
    return result


def _count(result: Mapping[str, Any]) -> dict[str, int]:
    counts = dict.fromkeys(("better", "worse", "same", "changed", "new", "gone"), 0)
    for gate in result["gates"]:
        for item in (gate["score"], *gate["metrics"]):
            counts[item["change"]] += 1
    return counts


def _change(before: Any, after: Any, higher_is_better: bool | None) -> dict[str, Any]:
    delta = _delta(before, after)
    if before is None and after is not None:
        change = "new"
    elif after is None and before is not None:
        change = "gone"
    elif before == after or delta == 0:
        change = "same"
    elif delta is None or higher_is_better is None:
        change = "changed"
    else:
        change = "better" if (delta > 0) == higher_is_better else "worse"
    return {"before": before, "after": after, "delta": delta, "change": change}


def _status_change(before: str | None, after: str | None) -> str:
    if before == after:
        return "same"
    if before is None or after is None:
        return "new" if before is None else "gone"
    if before in PASSED and after not in PASSED:
        return "worse"
    if after in PASSED and before not in PASSED:
        return "better"
    rank_b, rank_a = _STATUS_RANK.get(before), _STATUS_RANK.get(after)
    if rank_b is None or rank_a is None:
        return "changed"
    return "better" if rank_a > rank_b else "worse"


def _direction(key: str, rules: tuple[Rule, ...]) -> bool | None:
    """Whether higher is better for `key`: from a rule, else from the metric's name."""
    rule = rule_for(key, rules)
    if rule is not None:
        return rule.higher_is_better
    tokens = set(key.rsplit(".", 1)[-1].lower().split("_"))
    if tokens & _LOWER_TOKENS:
        return False
    return True if tokens & _HIGHER_TOKENS else None


def _gates(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    gates = doc.get("gates")
    if gates is None:
        return {}
    if not isinstance(gates, list):
        raise ValueError(f"gates: expected a list of gate results, got {type(gates).__name__}")
    out = {}
    for i, gate in enumerate(gates):
        if not isinstance(gate, Mapping) or not isinstance(gate.get("name"), str):
            raise ValueError(f"gates[{i}]: expected a gate result with a name")
        out[gate["name"]] = gate
    return out


def _union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Keys of `first` in order, then those only in `second`."""
    seen = dict.fromkeys(first)
    seen.update(dict.fromkeys(k for k in second if k not in seen))
    return list(seen)


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """doc[key] when it is a table; an empty one when missing or malformed."""
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _delta(before: Any, after: Any) -> float | None:
    b, a = _num(before), _num(after)
    return None if a is None or b is None else round(a - b, 6)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _project(doc: Mapping[str, Any]) -> str:
    return str(_table(doc, "project").get("name") or "")


def _ship(doc: Mapping[str, Any]) -> bool | None:
    verdict = _table(doc, "verdict")
    return verdict.get("ship") if isinstance(verdict.get("ship"), bool) else None


def _when(doc: Mapping[str, Any]) -> datetime:
    """A sortable time; naive times count as UTC.

    A missing or unreadable time sorts last: it is the run being assessed now,
    which has no stored time yet.
    """
    try:
        when = datetime.fromisoformat(str(doc.get("generated_at")))
    except ValueError:
        return datetime.max
    return when if when.tzinfo is None else when.astimezone(UTC).replace(tzinfo=None)
