"""Core ML conversion: named outputs, enumerated lengths, cache ranges, and reading packages back."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.to_coreml import (
    ConversionError,
    PackageError,
    cache_range_problems,
    convert_decode,
    deployment_target,
    read_package,
)
from tests.fixtures.export import built


def _package(kind: str) -> Path:
    arts = built.good_artifacts()
    return next(p for k, p in arts.coreml.items() if k.kind == kind)


def test_prefill_package_names_outputs_and_enumerates_lengths():
    info = read_package(_package("prefill"))
    assert [t.name for t in info.outputs] == list(built.good_adapter().prefill_output_names())
    ids = info.input("input_ids")
    assert ids.dtype == "int32" and sorted(s[1] for s in ids.enumerated) == [8, 16]
    assert info.outputs[0].shape == (1, None, 97) and info.outputs[0].dtype == "float32"


def test_decode_package_gives_every_cache_input_the_exported_range():
    arts = built.good_artifacts()
    info = read_package(_package("decode"))
    assert [t.name for t in info.outputs] == list(built.good_adapter().decode_output_names())
    cache_names = built.good_adapter().decode_input_names()[2:]
    assert cache_range_problems(info, cache_names, arts.export.cache_range) == []
    assert info.input("k_cache_0").ranges[2] == arts.export.cache_range


def test_cache_range_disagreement_is_reported():
    info = read_package(_package("decode"))
    inputs = list(info.inputs)
    inputs[3] = type(inputs[3])(name=inputs[3].name, dtype=inputs[3].dtype, shape=inputs[3].shape,
                                ranges=((1, 1), (2, 2), (1, 5), (8, 8)))
    skewed = type(info)(path=info.path, inputs=tuple(inputs), outputs=info.outputs,
                        spec_version=info.spec_version, deployment_opset=info.deployment_opset)
    problems = cache_range_problems(skewed, [t.name for t in inputs[2:]])
    assert problems and "disagree on their length range" in problems[0]


def test_unnamed_conversion_exposes_converter_names():
    names = [t.name for t in read_package(built.unnamed_package()).outputs]
    assert "logits" not in names and all(n[-1].isdigit() for n in names)


def test_truncated_package_names_the_missing_weight_file():
    with pytest.raises(PackageError, match=r"weights/weight.bin: weight file referenced .* is missing"):
        read_package(built.truncated_package())


def test_corrupt_spec_names_the_spec_file():
    with pytest.raises(PackageError, match=r"model.mlmodel: not a readable Core ML spec"):
        read_package(built.corrupt_package())


def test_missing_manifest_and_missing_folder_are_package_errors(tmp_path):
    (tmp_path / "empty.mlpackage").mkdir()
    with pytest.raises(PackageError, match="Manifest.json: missing"):
        read_package(tmp_path / "empty.mlpackage")
    with pytest.raises(PackageError, match="no such .mlpackage folder"):
        read_package(tmp_path / "absent.mlpackage")


def test_failed_conversion_raises_with_the_converter_message_and_leaves_nothing(tmp_path):
    arts = built.good_artifacts()
    # a raw (not decomposed) program given the wrong number of inputs is refused by the converter
    with pytest.raises(ConversionError, match=r"Core ML conversion of decode \(fp32, iOS18\) failed: \w+"):
        convert_decode(arts.export.decode, input_specs=arts.export.decode_io[0][:3],
                       output_names=built.good_adapter().decode_output_names(), cache_range=(1, 10),
                       default_cache=4, precision="fp32", out_path=tmp_path / "d.mlpackage")
    assert list(tmp_path.iterdir()) == []


def test_deployment_target_below_ios15_is_refused():
    assert deployment_target("iOS18") is not None
    with pytest.raises(ValueError, match="deployment_target 'iOS14' is not one of"):
        deployment_target("iOS14")


@pytest.mark.heavy
def test_fp16_packages_declare_float16_cache_inputs_and_outputs():
    arts = built.good_artifacts()
    from pipeline.artifacts import build_artifacts

    fp16 = build_artifacts(built.good_adapter(), built.build_options(precisions=("fp16",), targets=("coreml",)),
                           built.scratch() / "fp16")
    assert not fp16.errors
    info = read_package(fp16.coreml_package("decode", "fp16"))
    assert {t.dtype for t in info.inputs[2:]} == {"float16"}
    assert {t.dtype for t in info.outputs} == {"float16"}
    assert cache_range_problems(info, [t.name for t in info.inputs[2:]], arts.export.cache_range) == []


@pytest.mark.heavy
def test_per_length_mode_builds_one_static_package_per_length():
    from pipeline.artifacts import build_artifacts

    arts = build_artifacts(built.good_adapter(), built.build_options(per_length=True, targets=("coreml",)),
                           built.scratch() / "per_length")
    assert not arts.errors
    for t in built.LENGTHS:
        info = read_package(arts.coreml_package("prefill", "fp32", length=t))
        assert info.input("input_ids").shape == (1, t)
        assert info.outputs[0].shape == (1, t, 97)


def test_float16_io_needs_ios16():
    from pipeline.to_coreml import io_float_dtype

    assert io_float_dtype("fp16", "iOS18") == "float16"
    assert io_float_dtype("fp16", "iOS16") == "float16"
    assert io_float_dtype("fp16", "iOS15") == "float32"
    assert io_float_dtype("fp32", "iOS18") == "float32"


@pytest.mark.heavy
def test_fp16_decode_converts_for_ios15_with_float32_io(tmp_path):
    from pipeline.export import for_conversion

    arts = built.good_artifacts()
    path = convert_decode(for_conversion(arts.export.decode), input_specs=arts.export.decode_io[0],
                          output_names=built.good_adapter().decode_output_names(),
                          cache_range=arts.export.cache_range, default_cache=8, precision="fp16",
                          out_path=tmp_path / "d.mlpackage", deployment="iOS15")
    info = read_package(path)
    assert {t.dtype for t in info.inputs[2:]} == {"float32"} and {t.dtype for t in info.outputs} == {"float32"}


def test_cut_weight_file_is_a_package_error_naming_it():
    path = built._copy_good("cut.mlpackage")
    weights = path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(PackageError, match=r"weight.bin: truncated"):
        read_package(path)
