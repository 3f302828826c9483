"""The artifacts API: one build, per-step errors, content-addressed reuse."""

from __future__ import annotations

import pytest

from gates.engine.spec import ModelSpec
from pipeline.artifacts import ArtifactError, BuildOptions, PackageKey, build_artifacts, model_key
from tests.fixtures.export import built
from tests.fixtures.export.tiny_model import TinyAdapter
from tests.fixtures.processes import HANG_GUARD_S


def test_good_build_has_every_package_onnx_model_and_a_valid_contract():
    arts = built.good_artifacts()
    assert arts.errors == {}
    assert set(arts.coreml) == set(arts.expected_packages())
    assert arts.coreml_package("prefill", "fp32").name == "prefill_fp32.mlpackage"
    assert arts.onnx_model("decode").suffix == ".onnx"
    assert arts.contract is not None and arts.contract.doc["gates_ok"] is True
    assert arts.contract_path.is_file() and arts.folder.name == arts.key[:20]


def test_warm_rebuild_reuses_every_package():
    arts = built.good_artifacts()
    again = build_artifacts(built.good_adapter(), built.build_options(), arts.folder.parent)
    assert again.folder == arts.folder
    assert set(again.reused) == {"coreml:prefill:fp32", "coreml:decode:fp32", "onnx:prefill", "onnx:decode"}


def test_no_reuse_converts_every_package_again(tmp_path):
    arts = built.good_artifacts()
    fresh = build_artifacts(built.good_adapter(), built.build_options(), arts.folder.parent, reuse=False)
    assert fresh.reused == () and fresh.errors == {}
    assert set(fresh.coreml) == set(arts.coreml)


def test_key_tells_apart_two_model_classes_of_one_module_with_the_same_weights():
    # Two seeded defects live in one module and load the same checkpoint: they differ only in
    # their class and in non-persistent buffers, and must never share converted packages.
    from pipeline.adapter import ModuleAdapter
    from tests.fixtures.models import perf_defects
    from tests.fixtures.parity.models import TINY, tiny_student

    weights = tiny_student(0).state_dict()
    models = []
    for cls in (perf_defects.DeadWeightStudent, perf_defects.ReprojectingCacheStudent):
        model = cls(TINY)
        model.load_state_dict(weights)
        models.append(ModuleAdapter(model))
    options = built.build_options()
    assert model_key(models[0], options) != model_key(models[1], options)
    wider = perf_defects.ReprojectingCacheStudent(TINY, width=64)
    wider.load_state_dict(weights)
    assert model_key(ModuleAdapter(wider), options) != model_key(models[1], options)  # buffers differ


def test_key_changes_with_weights_and_options():
    adapter = built.good_adapter()
    options = built.build_options()
    assert model_key(adapter, options) == model_key(adapter, options)
    assert model_key(TinyAdapter(seed=1), options) != model_key(adapter, options)
    assert model_key(adapter, built.build_options(precisions=("fp16",))) != model_key(adapter, options)


def test_missing_artifact_raises_with_the_recorded_reason():
    arts = built.ignoring_cache_artifacts()  # built with no conversion targets
    with pytest.raises(ArtifactError, match="no Core ML package coreml:prefill:fp32 was built"):
        arts.coreml_package("prefill", "fp32")
    with pytest.raises(ArtifactError, match="no ONNX decode model"):
        arts.onnx_model("decode")


def test_options_follow_the_model_spec_and_validate():
    spec = ModelSpec(lengths=(8, 16), primary_length=8, precisions=("fp16",), deployment_target="iOS17")
    options = BuildOptions.from_model_spec(spec, per_length=True)
    assert (options.lengths, options.primary_length, options.precisions) == ((8, 16), 8, ("fp16",))
    assert options.per_length and options.deployment_target == "iOS17"
    with pytest.raises(ValueError, match="precisions \\['int8'\\]"):
        BuildOptions(precisions=("int8",))
    with pytest.raises(ValueError, match="primary_length 7"):
        BuildOptions(lengths=(8,), primary_length=7)


def test_package_keys_name_their_step_and_file():
    key = PackageKey(kind="prefill", precision="fp16", length=64)
    assert (key.step, key.filename) == ("coreml:prefill:fp16:T64", "prefill_fp16_T64.mlpackage")


def test_key_changes_with_the_pipeline_sources(monkeypatch: pytest.MonkeyPatch):
    from pipeline import artifacts

    adapter, options = built.good_adapter(), built.build_options()
    before = model_key(adapter, options)
    monkeypatch.setattr(artifacts, "pipeline_digest", lambda: "a changed converter")
    assert model_key(adapter, options) != before


def test_key_is_the_same_in_another_process():
    # a warm re-run is another process: the key must not depend on ids or hash seeds
    import subprocess
    import sys

    code = ("import warnings; warnings.filterwarnings('ignore')\n"
            "from tests.fixtures.export import built\n"
            "from pipeline.artifacts import model_key\n"
            "print(model_key(built.good_adapter(), built.build_options()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=built.REPO_ROOT,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, timeout=HANG_GUARD_S)
    assert out.stdout.strip().splitlines()[-1] == model_key(built.good_adapter(), built.build_options())


def test_compressed_and_stateful_packages_are_built_and_listed_with_their_sizes():
    arts = built.compressed_stateful_artifacts()
    assert arts.errors == {}
    assert [k.filename for k in arts.expected_packages()] == [
        "prefill_fp16.mlpackage", "decode_fp16.mlpackage", "prefill_int4_block32.mlpackage",
        "decode_int4_block32.mlpackage", "decode_stateful_fp16.mlpackage", "decode_stateful_int4_block32.mlpackage"]
    entries = {p["file"]: p for p in arts.contract.doc["packages"]}
    assert set(entries) == {k.filename for k in arts.expected_packages()}
    assert entries["prefill_int4_block32.mlpackage"]["compression"] == "int4_block32"
    assert entries["prefill_int4_block32.mlpackage"]["precision"] == "fp16"
    assert entries["prefill_int4_block32.mlpackage"]["size_bytes"] < entries["prefill_fp16.mlpackage"]["size_bytes"]
    assert entries["decode_stateful_int4_block32.mlpackage"]["size_bytes"] < \
        entries["decode_stateful_fp16.mlpackage"]["size_bytes"]
    stateful = arts.contract.doc["decode_stateful"]
    assert [s["name"] for s in stateful["states"]] == ["k_cache_0", "v_cache_0", "k_cache_1", "v_cache_1"]
    assert stateful["states"][0]["shape"] == [1, 2, 80, 8] and stateful["cache_range"] == [1, 79]


def test_compressed_and_stateful_packages_are_reused_warm():
    arts = built.compressed_stateful_artifacts()
    again = build_artifacts(built.good_adapter(), arts.options, arts.folder.parent)
    assert set(again.reused) == {k.step for k in arts.expected_packages()}


def test_unknown_compression_or_stateful_variant_is_refused():
    with pytest.raises(ValueError, match="compressions \\['int3'\\] are not among int8, int4_block32"):
        BuildOptions(compressions=("int3",))
    with pytest.raises(ValueError, match="stateful \\['bf16'\\]: each must be a precision or a compression"):
        BuildOptions(stateful=("bf16",))
