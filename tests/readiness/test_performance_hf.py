"""The performance gate on a Hugging Face decoder: `adapter = "hf:model"`, a tiny random Llama.

The folder is the session's `hf_zoo` Llama (tests/fixtures/hf_models.py:
hidden 64, 2 layers, 4 heads of 16, 2 KV heads, MLP 128, untied head). Its
counted figures are checked against numbers taken from transformers' own
model, so they hold on any machine: the parameter count is the model's, and
the weight MACs of one decode step are the weights of its Linear layers
(each used once per token) — the same in the ONNX and both Core ML programs.
Timing budgets are impossible to miss (1e9 ms), so load cannot fail the test.
"""

from __future__ import annotations

import json
from pathlib import Path

from readiness.cli import main
from tests.fixtures.hf_models import write_config

BUDGETS = ("[gates.performance]\nmax_package_mb = 1000.0\nmax_decode_ms = { onnx_fp32 = 1e9 }\n"
           "trials = 5\nmin_trials = 5\nwarmup = 1\n")


def _transformers_figures(folder: Path) -> tuple[int, int, object]:
    """(parameters, Linear weights, config) of the folder's model, as transformers loads it."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder))
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return sum(p.numel() for p in model.parameters()), linear, model.config


def test_an_hf_llama_is_sized_counted_and_timed_under_budgets(tmp_path: Path, hf_zoo) -> None:
    folder = hf_zoo.copy_into(tmp_path, "llama")
    write_config(tmp_path, 'adapter = "hf:model"', extra=BUDGETS)
    rc = main(["assess", "--config", str(tmp_path / "readiness.toml"), "-o", str(tmp_path / "out"), "-f", "json",
               "--gate", "performance"])
    doc = json.loads((tmp_path / "out" / "assessment.json").read_text())
    gate = next(g for g in doc["gates"] if g["name"] == "performance")
    assert rc == 0, (gate["summary"], gate["evidence"].get("failures"))
    assert gate["status"] == "pass" and gate["severity"] == "blocker"  # budgets set: a blocker

    params, linear, config = _transformers_figures(folder)
    assert gate["metrics"]["params"] == params
    attention = 2 * config.num_hidden_layers * config.num_attention_heads * config.head_dim  # QK^T and AV per key
    targets = gate["evidence"]["targets"]
    assert set(targets) == {"torch", "onnx_fp32", "coreml_fp32", "coreml_fp16"}
    for key in ("onnx_fp32", "coreml_fp32", "coreml_fp16"):
        rows = {(r["phase"], r["T"]): r for r in targets[key]["cost"]}
        for length in (16, 32):
            decode, prefill = rows[("decode", length)], rows[("prefill", length)]
            assert decode["weight_macs"] == linear, key
            assert prefill["weight_macs"] == length * linear, key
            assert decode["activation_macs"] == attention * (length + 1), key  # the cache plus the new token
            assert decode["uncounted"] == prefill["uncounted"] == []
        assert targets[key]["package_bytes"] > 0
    assert targets["coreml_fp16"]["package_bytes"] < targets["coreml_fp32"]["package_bytes"]

    onnx = targets["onnx_fp32"]["timing"]
    assert onnx["status"] == "measured" and onnx["rounds"] == 5
    assert {(r["phase"], r["T"]) for r in onnx["rows"]} == {(p, t) for p in ("prefill", "decode") for t in (16, 32)}
    checks = {(c["target"], c["budget"]): c["outcome"] for c in gate["evidence"]["checks"]}
    assert checks[("onnx_fp32", "max_decode_ms")] == "met"
    assert {checks[(t, "max_package_mb")] for t in ("onnx_fp32", "coreml_fp32", "coreml_fp16")} == {"met"}
