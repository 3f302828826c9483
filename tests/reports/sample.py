"""A fixed assessment document for report tests (clock and host passed in)."""

from __future__ import annotations

from typing import Any

from gates.result import GateResult, Severity, Status
from readiness import document
from readiness.scoring import score_components
from readiness.verdict import decide

HOSTILE = "<script>alert('x')</script> | \"quoted\" & `tick`\x07\nsecond line"


def results() -> list[GateResult]:
    return [
        GateResult(name="checkpoint", status=Status.PASS, severity=Severity.BLOCKER, score=1.0,
                   summary="loaded 0.4 M parameters; arch hash matches", metrics={"params": 412_000},
                   duration_s=0.25),
        GateResult(name="export", status=Status.WARN, severity=Severity.BLOCKER, score=0.75,
                   summary="3 of 4 lengths validated", metrics={"lengths_ok": 3, "max_abs_err": 3.2e-6},
                   evidence={"tables": [{"title": "Per-length validation", "columns": ["T", "status", "max_abs_err"],
                                         "rows": [[64, "pass", 1e-6], [128, "pass", 2e-6], [256, "pass", 3.2e-6],
                                                  [512, "fail", None]]}]},
                   remediation="Lengthen the rotary table.", duration_s=3.5),
        GateResult(name="suite_health", status=Status.FAIL, severity=Severity.BLOCKER, score=0.9995,
                   summary=f"1 of 2000 tests failed: {HOSTILE}",
                   metrics={"tests_total": 2000, "pass_pct": 99.95, "wall_s": 12.5},
                   evidence={"failures": [{"title": f"tests/test_x.py::test_{HOSTILE}", "detail": HOSTILE * 3}]},
                   duration_s=12.5),
        GateResult(name="parity", status=Status.NOT_EVALUABLE, severity=Severity.BLOCKER,
                   summary="Core ML prediction needs macOS", duration_s=0.0),
        GateResult(name="mutation", status=Status.OFF, severity=Severity.WARNING,
                   summary="turned off: with --skip", evidence={"off_because": "with --skip"}),
    ]


COMPONENTS = {"model": (50.0, ("checkpoint", "export", "parity")), "tests": (30.0, ("suite_health",)),
              "mutation": (20.0, ("mutation",))}


def build(**overrides: Any) -> dict[str, Any]:
    res = results()
    score = score_components({r.name: r for r in res}, COMPONENTS)
    verdict = decide(res, score, 80.0)
    doc = document.build(generated_at="2026-11-23T12:00:00Z", project={"name": "demo <model>", "root": "/p"},
                         model={"adapter": "builtin:student", "checkpoint": "ckpt.safetensors"},
                         git={"commit": "0123456789abcdef", "dirty": False, "branch": "main"},
                         host={"platform": "Linux-test", "python": "3.11.7"},
                         tool_versions={"readiness": "0.1.0", "torch": "2.13.0"}, config_digest="abc",
                         profile="default", results=res, score=score, verdict=verdict)
    doc["test_runtimes"] = [{"executable": "/p/.venv/bin/python", "python": "3.12.1", "prefix": "/p/.venv",
                             "tools": {"pytest": "8.3.3", "coverage": "7.6.1", "pytest-cov": None},
                             "gates": ["suite_health"]}]
    doc.update(overrides)
    return doc


PARTIAL = {"ran": ["checkpoint"], "left_out": ["export", "suite_health", "parity"],
           "request": "--gate checkpoint"}
_PARTIAL_DEFAULT: Any = object()


def build_partial(partial: Any = _PARTIAL_DEFAULT, *, passed: bool = True) -> dict[str, Any]:
    """A partial run (`--gate checkpoint`): the selected gate passed, or failed with `passed=False`."""
    selected = GateResult(name="checkpoint", status=Status.PASS if passed else Status.FAIL,
                          severity=Severity.BLOCKER, score=1.0 if passed else 0.2, summary="checked")
    off = [GateResult(name=n, status=Status.OFF, severity=Severity.BLOCKER,
                      summary="turned off: not selected with --gate")
           for n in PARTIAL["left_out"]]
    res = [selected, *off, results()[-1]]
    score = score_components({r.name: r for r in res}, COMPONENTS)
    verdict = decide(res, score, 80.0, partial=True)
    return document.build(generated_at="2026-11-23T12:00:00Z", project={"name": "demo", "root": "/p"},
                          model=None, git={"commit": None, "dirty": None}, host={}, tool_versions={},
                          config_digest="abc", profile="default", results=res, score=score, verdict=verdict,
                          partial=PARTIAL if partial is _PARTIAL_DEFAULT else partial)
