"""What a converted model weighs on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.perf.footprint import disk_bytes, model_disk_bytes


def _onnx_with_external_data(folder: Path) -> Path:
    import onnx
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((256, 256), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 256])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 256])], [weight])
    path = folder / "m.onnx"
    onnx.save_model(helper.make_model(graph), str(path), save_as_external_data=True, location="m.onnx.data",
                    size_threshold=0)
    return path


def test_an_onnx_model_weighs_its_file_and_the_data_files_it_names(tmp_path: Path) -> None:
    path = _onnx_with_external_data(tmp_path)
    (tmp_path / "unrelated.bin").write_bytes(b"x" * 10_000)  # beside it, not named by it
    data = (tmp_path / "m.onnx.data").stat().st_size
    assert data == 256 * 256 * 4
    assert model_disk_bytes(path) == path.stat().st_size + data


def test_a_package_folder_weighs_its_files_and_an_unreadable_onnx_itself(tmp_path: Path) -> None:
    package = tmp_path / "p.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Data" / "weight.bin").write_bytes(b"w" * 5000)
    (package / "Manifest.json").write_text("{}")
    assert model_disk_bytes(package) == disk_bytes(package) == 5002
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf at all" * 10)
    assert model_disk_bytes(broken) == 210
