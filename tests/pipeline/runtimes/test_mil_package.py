"""Loading a package: weights read from the weight file equal coremltools' own reading."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.runtimes import mil_package
from tests.fixtures.parity.build import case_dir

GOOD = case_dir(None)


def consts(package: mil_package.LoadedPackage) -> dict[str, np.ndarray]:
    return {op.outputs[0].name: np.asarray(op.outputs[0].val) for op in package.function.operations
            if op.op_type == "const" and isinstance(op.outputs[0].val, np.ndarray)}


@pytest.mark.parametrize("name", ["prefill_fp32", "prefill_fp16", "decode_fp16"])
def test_weights_read_here_equal_coremltools_reading(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = consts(mil_package.load_package(GOOD / f"{name}.mlpackage"))
    monkeypatch.setattr(mil_package, "_file_value_reader", lambda original: original)
    theirs = consts(mil_package.load_package(GOOD / f"{name}.mlpackage"))
    assert ours.keys() == theirs.keys() and sum(v.size for v in ours.values()) > 10_000  # the weights
    for key, value in theirs.items():
        assert ours[key].dtype == value.dtype and ours[key].shape == value.shape, key
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_a_weight_offset_that_is_not_a_blob_is_refused(tmp_path) -> None:
    path = tmp_path / "weight.bin"
    path.write_bytes(bytes(256))
    with pytest.raises(ValueError, match="no weight blob at offset 64"):
        mil_package._read_blob(str(path), 64, np.float32)


def test_a_weight_blob_cut_short_is_refused_naming_the_file(tmp_path) -> None:
    import struct

    path = tmp_path / "weight.bin"
    path.write_bytes(bytes(64) + struct.pack("<IIQQ", 0xDEADBEEF, 1, 4096, 128) + bytes(40) + bytes(100))
    with pytest.raises(ValueError, match=r"weight.bin: the weight blob at offset 64 is truncated"):
        mil_package._read_blob(str(path), 64, np.float32)
    with pytest.raises(ValueError, match="no weight blob at offset 250"):
        mil_package._read_blob(str(path), 250, np.float32)  # past the end
