"""Shape expressions, the peak-memory walk and sizes on disk."""

from __future__ import annotations

import os

import pytest

from pipeline.perf.footprint import disk_bytes, onnx_disk_bytes
from pipeline.perf.graph_cost import Step, evaluate_dim, peak_live_bytes


@pytest.mark.parametrize("text,value", [("T_cache + 1", 65), ("2*T", 128), ("(T + 1) // 2", 32), ("T / 2", 32),
                                        ("T / 3", None), ("s12", None), ("T ** 2", None),
                                        ("__import__('os').system('true')", None), ("T +", None)])
def test_shape_expressions_are_read_without_eval(text: str, value: int | None) -> None:
    assert evaluate_dim(text, {"T": 64, "T_cache": 64}) == value


def test_peak_counts_values_alive_together_and_frees_them_after_their_last_reader() -> None:
    steps = [Step(reads=("x",), makes=(("a", 100),)),     # x(10) + a(100)
             Step(reads=("a",), makes=(("b", 50),)),      # a(100) + b(50): peak 150, x freed at step 0
             Step(reads=("b", "a"), makes=(("c", 1),)),   # a + b + c = 151
             Step(reads=("c",), makes=(("out", 5),))]
    assert peak_live_bytes({"x": 10}, steps, ["out"]) == 151


def test_outputs_stay_alive_to_the_end() -> None:
    steps = [Step(reads=("x",), makes=(("y", 100),)), Step(reads=("x",), makes=(("z", 100),))]
    assert peak_live_bytes({"x": 1}, steps, ["y", "z"]) == 201
    assert peak_live_bytes({"x": 1}, steps, ["z"]) == 101  # y is never read: freed at once


def test_package_size_counts_its_files_and_never_follows_a_link(tmp_path) -> None:
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"x" * 1000)
    package = tmp_path / "m.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Data" / "model.mlmodel").write_bytes(b"y" * 30)
    (package / "Manifest.json").write_bytes(b"z" * 12)
    os.symlink(outside, package / "Data" / "weight.bin")
    assert disk_bytes(package) == 42


def test_onnx_external_data_counts_only_inside_the_models_folder(tmp_path) -> None:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    folder = tmp_path / "model"
    folder.mkdir()
    weight = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64])], [weight])
    model = helper.make_model(graph)
    onnx.save_model(model, str(folder / "m.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.data", size_threshold=0)
    loaded = onnx.load(str(folder / "m.onnx"), load_external_data=False)
    inside = onnx_disk_bytes(folder / "m.onnx", loaded)
    assert inside == (folder / "m.onnx").stat().st_size + 64 * 64 * 4
    loaded.graph.initializer[0].external_data[0].value = "../elsewhere.data"
    (tmp_path / "elsewhere.data").write_bytes(b"q" * 5000)
    assert onnx_disk_bytes(folder / "m.onnx", loaded) == (folder / "m.onnx").stat().st_size
