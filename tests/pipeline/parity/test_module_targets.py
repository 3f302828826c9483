"""A module model's parity targets: the eager reference runs ahead and its weights are parked."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from gates.engine.protocol import GateContext
from gates.engine.spec import ModelKind, ModelSpec, ProjectSpec
from gates.model.shared import MAPPED_WEIGHTS, shared_mapped_weights, shared_module
from pipeline.parity import module_targets
from pipeline.parity.module_targets import prime_reference, reference_for, run_module_target
from pipeline.parity.targets import TargetStatus
from tests.pipeline.test_module_artifacts import IO


class Recorder:
    """An eager model and a converted program that agree, each noting its calls in `events`."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[str] = []
        self.io, self.output_names, self.fail = IO, ("position", "frames"), fail

    def run(self, inputs):  # the eager model
        self.events.append("eager")
        if self.fail:
            raise RuntimeError("the model's own code failed")
        return self.outputs(inputs)

    @staticmethod
    def outputs(inputs):
        x = np.asarray(inputs["spectrogram"], dtype=np.float32)
        return {"position": x.sum(axis=(1, 2, 3))[:, None].repeat(2, 1), "frames": x[:, 0, :4, :]}

    def program(self):
        recorder = self

        class Program:
            def run(self, feed):
                recorder.events.append("program")
                return recorder.outputs(feed)

        return Program()


PLAN = SimpleNamespace(target="coreml", precision="fp32", runtime="mil", key="coreml_fp32")


def _run(model: Recorder, reference, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setattr(module_targets, "_open", lambda plan, arts: (Path("module_fp32.mlpackage"), model.program()))
    return run_module_target(PLAN, model, None, thresholds={}, seed=0, sources=("random",), examples=(),
                             localise=False, localise_tol={}, reference=reference)


def test_every_reference_runs_before_the_weights_are_parked_and_no_program_opens_before(monkeypatch) -> None:
    model = Recorder()
    reference = reference_for(model)
    prime_reference(reference, model, sources=("random",), examples=(), seed=0,
                    park=lambda: model.events.append("park"))
    entry = _run(model, reference, monkeypatch)
    assert entry["status"] == TargetStatus.PASS and entry["comparisons"] > 0
    cases = len(IO.cases())
    assert model.events[:cases + 1] == ["eager"] * cases + ["park"]
    assert "eager" not in model.events[cases + 1:]  # every comparison found its reference ahead
    assert model.events.count("program") == len(module_targets.coreml_cases(IO))


def test_a_reference_that_fails_ahead_parks_nothing_and_the_target_reports_it(monkeypatch) -> None:
    model = Recorder(fail=True)
    reference = reference_for(model)
    prime_reference(reference, model, sources=("random",), examples=(), seed=0,
                    park=lambda: model.events.append("park"))
    assert model.events == ["eager"]
    entry = _run(model, reference, monkeypatch)
    assert entry["status"] == TargetStatus.ERROR and "the model's own code failed" in entry["reason"]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, spectrogram):
        h = torch.relu(self.conv(spectrogram))
        return self.head(h.mean(dim=(2, 3))), h.mean(1)


def test_a_loaded_module_model_has_its_weights_mapped_bit_for_bit(tmp_path: Path, monkeypatch, request) -> None:
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader puts the project on it: not for later tests
    request.addfinalizer(lambda: sys.modules.pop("user_net_mapped", None))
    (tmp_path / "user_net_mapped.py").write_text("from tests.pipeline.parity.test_module_targets import Net\n"
                                          "def build():\n    import torch\n    torch.manual_seed(0)\n"
                                          "    return Net()\n")
    spec = ModelSpec(kind=ModelKind.MODULE, module_io=IO, adapter="user_net_mapped:build")
    ctx = GateContext(spec=ProjectSpec(name="m", root=tmp_path, model=spec), settings=None,
                      work_dir=tmp_path / "work")
    loaded = shared_module(ctx)
    weights = ctx.memo.get(MAPPED_WEIGHTS, lambda: pytest.fail("the weights were not mapped as the module loaded"))
    assert weights is shared_mapped_weights(ctx, loaded.module)
    assert weights.mapped, weights.reason
    torch.manual_seed(0)
    fresh = Net()
    assert all(torch.equal(a, b) for a, b in zip(loaded.module.state_dict().values(), fresh.state_dict().values()))
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 16)).astype(np.float32)
    expected = fresh(torch.from_numpy(x))
    out = loaded.run({"spectrogram": x})
    assert np.array_equal(out["position"], expected[0].detach().numpy())
