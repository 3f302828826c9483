"""Every gate's summary says what happened, once: no status word or gate name in front.

Reports write `<status> <gate>: <summary>`, the verdict writes
"blocker gate '<gate>' is <status>: <summary>", and gates that quote another
gate write "(<status>: <summary>)". A summary that starts with its own status
or gate name is read twice ("error: error: tokenizer: no tokenizer ..."), so
the engine and the gates leave both out, whatever went wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gates.engine import registry
from gates.engine import scheduler as engine
from gates.engine.protocol import GateContext, GateError
from gates.engine.spec import ModelSpec, ProjectSpec
from gates.result import GateResult, Status
from readiness.scoring import score_components
from readiness.verdict import decide
from tests.fixtures.export.built import REPO_ROOT

TINY = "tests.fixtures.export.tiny_model:TinyAdapter"
STATUS_WORDS = tuple(s.value for s in Status) + ("not evaluable", "ERROR", "FAIL")


def doubled(result: GateResult) -> str | None:
    """The word the summary repeats from what is printed in front of it, if any."""
    for word in (*STATUS_WORDS, result.name):
        if re.match(rf"{re.escape(word)}\b", result.summary, flags=re.IGNORECASE):
            return word
    return None


def run_all(spec: ProjectSpec, tmp_path: Path, names: tuple[str, ...] | None = None) -> dict[str, GateResult]:
    gates = [registry.create(n) for n in names or tuple(registry.BUILTIN)]

    def make(gate, results) -> GateContext:
        return GateContext(spec=spec, settings=gate.Settings(), work_dir=tmp_path, results=results)

    return {r.name: r for r in engine.run(gates, make)}


def spec(model: ModelSpec | None) -> ProjectSpec:
    return ProjectSpec(name="summaries", root=REPO_ROOT, model=model, code=None)


def assert_said_once(results: dict[str, GateResult]) -> None:
    said = {name: (r.status.value, r.summary) for name, r in results.items() if doubled(r)}
    assert said == {}
    scored = score_components(results, {"all": (100.0, tuple(results))})
    for reason in decide(list(results.values()), scored, 80.0).reasons:
        assert not re.search(r"is (\w+): \1\b", reason), reason


def test_no_model_no_code_every_summary_is_said_once(tmp_path):
    results = run_all(spec(None), tmp_path)
    assert_said_once(results)
    model_gates = ("checkpoint", "tokenizer", "semantics", "export", "conversion", "contract", "parity")
    for name in model_gates:  # one rule for every model gate run without [model]
        assert (results[name].status, results[name].summary) in {
            (Status.NOT_EVALUABLE, "no model is configured"),
            (Status.SKIPPED, "needs gate 'checkpoint', which is not_evaluable"),
            (Status.SKIPPED, "needs gate 'export', which is skipped"),
            (Status.SKIPPED, "needs gate 'conversion', which is skipped"),
        }, name
    assert results["suite_health"].status is Status.ERROR


def test_decoder_without_tokenizer_or_checkpoint_every_summary_is_said_once(tmp_path):
    model = ModelSpec(adapter="builtin:student", checkpoint=tmp_path / "absent.safetensors", tokenizer=None,
                      lengths=(8, 16), primary_length=16)
    results = run_all(spec(model), tmp_path)
    assert_said_once(results)
    tokenizer = results["tokenizer"]
    assert tokenizer.status is Status.ERROR
    assert tokenizer.summary == "no tokenizer is configured (set the model's tokenizer path)"
    assert results["checkpoint"].status is Status.ERROR and "file not found" in results["checkpoint"].summary
    assert results["export"].summary == "needs gate 'checkpoint', which is error"


def test_loadable_decoder_without_tokenizer_names_the_problem_once(tmp_path):
    model = ModelSpec(adapter=TINY, tokenizer=None, lengths=(8, 16), primary_length=16)
    results = run_all(spec(model), tmp_path, ("checkpoint", "tokenizer"))
    assert_said_once(results)
    assert results["tokenizer"].status is Status.ERROR
    reasons = decide(list(results.values()), score_components(results, {"all": (100.0, tuple(results))}),
                     80.0).reasons
    assert ("blocker gate 'tokenizer' is error: no tokenizer is configured (set the model's tokenizer path)"
            in reasons)


def test_an_adapter_that_cannot_load_is_one_error_each(tmp_path):
    model = ModelSpec(adapter="tests.fixtures.no_such_module:build", tokenizer=None)
    results = run_all(spec(model), tmp_path)
    assert_said_once(results)
    assert results["checkpoint"].status is Status.ERROR
    assert results["checkpoint"].summary.startswith("model could not be loaded: ")
    assert results["semantics"].summary == "needs gate 'checkpoint', which is error"


@pytest.mark.parametrize("name, settings", [
    ("environment", {"python": "not a window"}),
    ("parity", {"runtime": "gpu"}),
    ("parity", {"decode_steps": 0}),
    ("mutation", {"shard": "3/2"}),
    ("semantics", {"prefix_length": 0}),
])
def test_bad_setting_errors_do_not_repeat_the_gate_name(name, settings):
    from gates.model import parity, semantics
    from gates.model.environment import within
    from gates.mutation import gate as mutation

    raise_for = {
        "environment": lambda s: within("1.0", s["python"]),
        "parity": lambda s: parity.validate(parity.Settings(**s), s.get("runtime", "auto")),
        "mutation": lambda s: mutation.parse_shard(s["shard"]),
        "semantics": lambda s: semantics.SemanticsGate().check(GateContext(
            spec=spec(ModelSpec(adapter=TINY)), settings=semantics.Settings(**s), work_dir=Path("."))),
    }
    with pytest.raises(GateError, match=r"^setting \w+[ :]") as caught:
        raise_for[name](settings)
    assert not str(caught.value).startswith(name)
