"""Hugging Face decoders through `readiness assess`: every verified family ships, seeded defects do not.

Each project is a folder with a readiness.toml naming `adapter = "hf:model"`
and a tiny random `save_pretrained` folder `model/` (tests/fixtures/hf_models.py).
No `[code]` section: the code gates are turned off and listed as such; every
model gate runs, parity included (the MIL interpreter for Core ML fp32 and
fp16, onnxruntime for ONNX). Llama ships in tests/test_docs_snippets.py (the
documented example, as a subprocess); the other families run in-process and
are `heavy`. The defects run `assess --gate semantics` (fast) and, for one,
the whole assessment (heavy).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from readiness.cli import main
from tests.fixtures.hf_models import write_config

MODEL_GATES = ("environment", "checkpoint", "tokenizer", "semantics", "export", "conversion", "contract", "parity")


def _assess(project: Path, *extra: str) -> tuple[int, dict]:
    rc = main(["assess", "--config", str(project / "readiness.toml"), "-o", str(project / "out"), "-f", "json",
               *extra])
    return rc, json.loads((project / "out" / "assessment.json").read_text())


def _gates(doc: dict) -> dict[str, dict]:
    return {g["name"]: g for g in doc["gates"]}


# ONNX export is the slowest step (about 40 % of a family's run): the families
# whose graphs differ most from Llama (the documented example) also go to ONNX,
# the others to Core ML only, so the whole set stays within a few minutes.
FAMILY_TARGETS = {"llama3": ("coreml",), "smollm": ("coreml",), "mistral": ("coreml",), "qwen2": ("coreml",),
                  "qwen3": ("coreml",), "phi3": ("coreml",), "gemma2": ("coreml", "onnx"),
                  "gpt2": ("coreml", "onnx")}


@pytest.mark.heavy
@pytest.mark.parametrize("family", list(FAMILY_TARGETS))
def test_every_verified_family_ships_through_assess(tmp_path: Path, hf_zoo, family: str) -> None:
    targets = FAMILY_TARGETS[family]
    hf_zoo.copy_into(tmp_path, family)
    write_config(tmp_path, f'adapter = "hf:model"\ntargets = {list(targets)}'.replace("'", '"'))
    rc, doc = _assess(tmp_path)
    gates = _gates(doc)
    assert rc == 0, [(n, g["status"], g["summary"]) for n, g in gates.items() if g["status"] != "pass"]
    assert all(gates[n]["status"] == "pass" for n in MODEL_GATES)
    assert gates["suite_health"]["status"] == "off"  # no [code]: off, and said so
    parity = gates["parity"]["metrics"]
    ran = ("coreml_fp32", "coreml_fp16") + (("onnx_fp32",) if "onnx" in targets else ())
    for target in ran:  # really run, on every row
        assert parity[f"{target}_comparisons"] > 0 and parity[f"{target}_failed"] == 0
    assert parity["coreml_fp32_max_abs"] < 1e-4 and parity["coreml_fp16_top1_pct"] >= 90


DEFECTS = [
    # (adapter, family folder, what the semantics gate observes)
    ("drops_decode_mask", "gemma2", "decode logits at position 8 differ from prefill"),
    ("decode_rope_base", "llama", "decode logits at position 4 differ from prefill"),
    ("ignores_window_in_decode", "mistral", "decode logits at position 8 differ from prefill"),
]


def _defect_project(root: Path, hf_zoo, adapter: str, family: str) -> Path:
    hf_zoo.copy_into(root, family)
    write_config(root, f'adapter = "tests.fixtures.hf_defects:{adapter}"\ntokenizer = "model/tokenizer.json"',
                 extra='[model.args]\nfolder = "model"\n')
    return root


@pytest.mark.parametrize(("adapter", "family", "observed"), DEFECTS)
def test_seeded_hf_wrapper_defects_are_refused_by_the_semantics_gate(tmp_path: Path, hf_zoo, adapter: str,
                                                                    family: str, observed: str) -> None:
    rc, doc = _assess(_defect_project(tmp_path, hf_zoo, adapter, family), "--gate", "semantics")
    gates = _gates(doc)
    assert rc == 1
    assert gates["checkpoint"]["status"] == "warn"  # the callable supplies its weights: said, not passed
    assert gates["semantics"]["status"] == "fail" and observed in gates["semantics"]["summary"]


@pytest.mark.heavy
def test_a_window_ignored_in_decode_vetoes_the_whole_assessment(tmp_path: Path, hf_zoo) -> None:
    project = _defect_project(tmp_path, hf_zoo, "ignores_window_in_decode", "mistral")
    config = project / "readiness.toml"  # no conversion target: what refuses it runs before conversion
    config.write_text(config.read_text().replace("[model.args]", "targets = []\n\n[model.args]"))
    rc, doc = _assess(project)
    gates = _gates(doc)
    assert rc == 1 and doc["verdict"]["ship"] is False
    assert gates["semantics"]["status"] == "fail"
    assert gates["export"]["status"] == "fail" and "decode failed" in gates["export"]["summary"]
    assert "semantics" in doc["verdict"]["vetoed_by"]


def test_the_wrapped_model_without_defect_passes_the_same_checks(tmp_path: Path, hf_zoo) -> None:
    """The control: the shipping wrapper on the same Gemma 2 folder passes what the defects fail."""
    hf_zoo.copy_into(tmp_path, "gemma2")
    write_config(tmp_path, 'adapter = "hf:model"')
    rc, doc = _assess(tmp_path, "--gate", "semantics")
    gates = _gates(doc)
    assert rc == 0 and gates["semantics"]["status"] == gates["checkpoint"]["status"] == "pass"


def _cached(doc: dict) -> dict[str, bool]:
    return {n: g["cached"] for n, g in _gates(doc).items() if n in ("checkpoint", "semantics")}


def test_a_warm_rerun_of_a_hugging_face_folder_reuses_its_results_until_the_folder_changes(tmp_path: Path,
                                                                                          hf_zoo) -> None:
    folder = hf_zoo.copy_into(tmp_path, "llama")
    write_config(tmp_path, 'adapter = "hf:model"')
    first = _assess(tmp_path, "--gate", "semantics")
    again = _assess(tmp_path, "--gate", "semantics")
    assert first[0] == again[0] == 0
    assert _cached(first[1]) == {"checkpoint": False, "semantics": False}
    assert _cached(again[1]) == {"checkpoint": True, "semantics": True}
    statuses = [{n: g["status"] for n, g in _gates(doc).items()} for doc in (first[1], again[1])]
    assert statuses[0] == statuses[1]
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "rms_norm_eps": config["rms_norm_eps"] * 2}))
    changed = _assess(tmp_path, "--gate", "semantics")
    assert _cached(changed[1]) == {"checkpoint": False, "semantics": False}


def test_a_folder_holding_a_link_is_never_cached(tmp_path: Path, hf_zoo) -> None:
    """A link may point outside the project, which is never read: its results are measured every time."""
    folder = hf_zoo.copy_into(tmp_path, "llama")
    (folder / "notes.txt").symlink_to(folder / "config.json")
    write_config(tmp_path, 'adapter = "hf:model"')
    _assess(tmp_path, "--gate", "semantics")
    rc, doc = _assess(tmp_path, "--gate", "semantics")
    assert rc == 0 and _cached(doc) == {"checkpoint": False, "semantics": False}
