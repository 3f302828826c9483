"""PyTorch eager, onnxruntime and Core ML runtimes behind one interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.runtimes import open_coreml
from pipeline.runtimes.base import InputShapeError, NotEvaluable, Runtime
from pipeline.runtimes.coreml_runtime import MACOS_ONLY, CoreMLRuntime, can_predict
from pipeline.runtimes.eager import EagerRuntime
from pipeline.runtimes.mil_interpreter import MilInterpreter
from pipeline.runtimes.onnx_runtime import OnnxRuntime
from tests.fixtures.parity.build import case_dir
from tests.fixtures.parity.models import reference_and_converted

GOOD = case_dir(None)
NAMES = ("logits", "k_cache_0", "v_cache_0", "k_cache_1", "v_cache_1")
macos_only = pytest.mark.skipif(not can_predict(), reason=MACOS_ONLY)


class _Prefill(torch.nn.Module):
    def __init__(self, student):
        super().__init__()
        self.student = student

    def forward(self, input_ids):
        return self.student.prefill(input_ids)


@pytest.fixture(scope="module")
def eager():
    return EagerRuntime(_Prefill(reference_and_converted(None)[0]), ("input_ids",), NAMES)


def ids(length: int) -> np.ndarray:
    return np.random.default_rng(length).integers(0, 512, (1, length), dtype=np.int32)


def test_every_runtime_satisfies_the_protocol(eager):
    assert isinstance(eager, Runtime)
    assert isinstance(OnnxRuntime(GOOD / "prefill.onnx"), Runtime)
    assert isinstance(MilInterpreter.load(GOOD / "prefill_fp32.mlpackage"), Runtime)


def test_eager_names_outputs_in_order(eager):
    out = eager.run({"input_ids": ids(8)})
    assert tuple(out) == NAMES and out["logits"].shape == (1, 8, 512) and out["logits"].dtype == np.float32


def test_eager_refuses_missing_inputs_and_wrong_output_counts(eager):
    with pytest.raises(InputShapeError, match="input_ids"):
        eager.run({})
    short = EagerRuntime(eager.module, ("input_ids",), ("logits",))
    with pytest.raises(ValueError, match="returned 5 outputs; expected 1"):
        short.run({"input_ids": ids(8)})


@pytest.mark.parametrize("length", [8, 16])
def test_onnxruntime_matches_eager(eager, length):
    ort = OnnxRuntime(GOOD / "prefill.onnx")
    want, got = eager.run({"input_ids": ids(length)}), ort.run({"input_ids": ids(length)})
    assert set(got) == set(NAMES)
    for name in NAMES:
        assert np.abs(got[name] - want[name]).max() < 1e-5


def test_onnxruntime_refuses_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such ONNX model"):
        OnnxRuntime(tmp_path / "absent.onnx")


def test_open_coreml_uses_the_interpreter_when_asked_or_off_macos():
    assert isinstance(open_coreml(GOOD / "prefill_fp32.mlpackage", "mil"), MilInterpreter)
    if not can_predict():
        assert isinstance(open_coreml(GOOD / "prefill_fp32.mlpackage", "auto"), MilInterpreter)
    with pytest.raises(ValueError, match="unknown Core ML runtime"):
        open_coreml(GOOD / "prefill_fp32.mlpackage", "tflite")


def test_coreml_prediction_off_macos_is_not_evaluable():
    if can_predict():
        pytest.skip("Core ML can predict on this host")
    with pytest.raises(NotEvaluable, match=MACOS_ONLY):
        CoreMLRuntime(GOOD / "prefill_fp32.mlpackage")


@pytest.mark.macos
@macos_only
def test_coreml_prediction_agrees_with_the_mil_interpreter():
    coreml = CoreMLRuntime(GOOD / "prefill_fp32.mlpackage")
    mil = MilInterpreter.load(GOOD / "prefill_fp32.mlpackage")
    a, b = coreml.run({"input_ids": ids(8)}), mil.run({"input_ids": ids(8)})
    for name in NAMES:
        assert np.abs(a[name] - b[name]).max() < 1e-4
