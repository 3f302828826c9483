"""`readiness merge` as a function: partial results folded into a base, judged as `assess` judges."""

from __future__ import annotations

from typing import Any

import pytest

from gates.result import GateResult, Severity, Status
from readiness import document
from readiness.assessment import conclude, score_results
from readiness.document import DocumentError
from readiness.merging import merge

# "on_device" is no registered gate, so a newer result simply replaces an older one
# (a registered gate combines them through its `merge`: see the parity and mutation gates).
COMPONENTS = {"model": (50.0, ("checkpoint", "on_device")), "tests": (50.0, ("suite_health",))}


def _r(name: str, status: Status, score: float | None = None, **evidence: Any) -> GateResult:
    return GateResult(name=name, status=status, severity=Severity.BLOCKER, score=score,
                      summary=f"{name} {status.value}", evidence=evidence)


def _doc(results: list[GateResult], *, project: str = "demo", partial: dict[str, Any] | None = None,
         baseline: dict[str, Any] | None = None, when: str = "2026-11-20T10:00:00Z") -> dict[str, Any]:
    score = score_results(results, profile="default", components=COMPONENTS)
    measured = document.measured(generated_at=when, project={"name": project, "root": "/p"}, model=None,
                                 git={"commit": None, "dirty": None, "branch": None}, host={"platform": "Linux"},
                                 tool_versions={}, config_digest="d", profile="default", results=results,
                                 score=score, partial=partial)
    return dict(conclude(measured, results, score, 80.0, baseline, []).document)


BASE = [_r("checkpoint", Status.PASS, 1.0), _r("on_device", Status.NOT_EVALUABLE), _r("suite_health", Status.PASS, 1.0)]


def test_a_partial_result_replaces_the_base_result_and_the_verdict_is_made_again() -> None:
    base = _doc(BASE)
    assert base["verdict"]["ship"] is False and base["verdict"]["vetoed_by"] == ["on_device"]
    macos = _doc([_r("on_device", Status.PASS, 1.0)], when="2026-11-20T11:00:00Z")
    merged = merge(base, [macos], generated_at="2026-11-20T12:00:00Z")
    assert merged.result("on_device").status is Status.PASS
    assert merged.verdict.ship is True and merged.score.value == pytest.approx(100.0)
    assert merged.document["verdict"] == merged.verdict.to_dict()
    assert merged.document["generated_at"] == "2026-11-20T12:00:00Z"
    assert merged.document["merged_from"] == [{"generated_at": "2026-11-20T11:00:00Z", "host": "Linux",
                                               "gates": ["on_device"]}]


def test_the_base_threshold_and_components_are_kept() -> None:
    base = _doc([_r("checkpoint", Status.PASS, 1.0), _r("on_device", Status.NOT_EVALUABLE),
                 _r("suite_health", Status.PASS, 0.5)])
    merged = merge(base, [_doc([_r("on_device", Status.PASS, 1.0)])])
    # model (50): both pass = 100; tests (50): 50 -> 75, under the base's threshold of 80
    assert merged.score.value == pytest.approx(75.0)
    assert merged.verdict.threshold == 80.0 and not merged.verdict.ship
    assert [c["name"] for c in merged.document["components"]] == ["model", "tests"]


@pytest.mark.parametrize("status", [Status.SKIPPED, Status.OFF])
def test_a_partial_that_did_not_run_a_gate_leaves_the_base_result(status: Status) -> None:
    base = _doc(BASE)
    merged = merge(base, [_doc([_r("checkpoint", status), _r("on_device", Status.PASS, 1.0)])])
    assert merged.result("checkpoint").status is Status.PASS


def test_a_partial_of_another_project_is_refused_naming_both() -> None:
    with pytest.raises(DocumentError, match="partial result of project 'other' cannot be merged into an "
                                            "assessment of 'demo'"):
        merge(_doc(BASE), [_doc([_r("on_device", Status.PASS, 1.0)], project="other")])


def test_a_partial_base_stays_partial_until_every_left_out_gate_is_supplied() -> None:
    partial = {"ran": ["checkpoint", "on_device"], "left_out": ["suite_health"], "request": "--skip suite_health"}
    base = _doc([_r("checkpoint", Status.PASS, 1.0), _r("on_device", Status.PASS, 1.0),
                 _r("suite_health", Status.OFF)], partial=partial,
                baseline={"first_run": True, "policy": "pass", "message": "No baseline", "partial": True})
    still = merge(base, [_doc([_r("on_device", Status.PASS, 1.0)])])
    assert still.partial is not None and still.partial.left_out == ("suite_health",)
    assert still.verdict.partial and not still.verdict.ship
    done = merge(base, [_doc([_r("suite_health", Status.PASS, 1.0)])])
    assert done.partial is None and done.document["partial"] is None
    assert done.verdict.ship is True
    assert done.baseline is not None and done.baseline["partial"] is False  # first_run_policy applies again


def test_a_failed_gate_in_the_partial_replaces_a_pass() -> None:
    merged = merge(_doc(BASE), [_doc([_r("suite_health", Status.FAIL, 0.0)])])
    assert merged.result("suite_health").status is Status.FAIL
    assert "suite_health" in merged.verdict.vetoed_by


def test_a_registered_gate_combines_both_results_through_its_merge_hook() -> None:
    from gates.model.parity import summarise

    row = {"phase": "prefill", "T": 64, "output": "logits", "status": "pass"}

    def entry(target: str, status: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"target": target, "precision": "fp32", "runtime": target, "status": status, "reason": "", "rows": rows}

    linux = summarise("parity", Severity.BLOCKER, {"coreml_fp32": entry("coreml", "not_evaluable", []),
                                                   "onnx_fp32": entry("onnx", "pass", [row])})
    macos = summarise("parity", Severity.BLOCKER, {"coreml_fp32": entry("coreml", "pass", [row])})
    assert linux.status is Status.NOT_EVALUABLE
    merged = merge(_doc([*BASE[:1], linux, BASE[2]]), [_doc([macos])]).result("parity")
    assert merged is not None and merged.status is Status.PASS
    assert {k: e["status"] for k, e in merged.evidence["targets"].items()} == {"coreml_fp32": "pass",
                                                                               "onnx_fp32": "pass"}
