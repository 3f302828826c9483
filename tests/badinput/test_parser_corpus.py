"""Bad inputs no CLI command reads directly, at the parser a gate calls.

Contracts (`pipeline.contract.load_contract`), Core ML packages
(`pipeline.to_coreml.read_package`) and unsafe pickles
(`pipeline.checkpoint.read_checkpoint`) are reached through the export,
conversion and contract gates only after a model was exported, so they are
fed to the parser here: every bad input must raise the parser's own error
with a one-line message naming the file, never anything else.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from tests.badinput import artifacts
from tests.badinput.project import CORPUS

CONTRACT_ROWS = [
    ("malformed", ("not valid JSON",)),
    ("newer_version", ("schema_version 2 is newer", "upgrade readiness")),
    ("primary_not_enumerated", ("inconsistent contract", "primary_length 96 is not in lengths")),
    ("kv_name_absent", ("inconsistent contract", "'k_cache_99', absent from decode.inputs")),
    ("layer_count_disagrees", ("inconsistent contract", "n_layers")),
    ("missing_field", ("'arch_hash' is a required property",)),
    ("wrong_type", ("lengths",)),
    ("not_an_object", ("a contract is a JSON object, got list",)),
]


def _one_line_naming(message: str, file: Path, fragments: tuple[str, ...]) -> None:
    assert "\n" not in message, message
    assert str(file) in message, f"{file} not named in {message!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_good_contract_of_the_corpus_loads() -> None:
    from pipeline.contract import load_contract

    assert load_contract(CORPUS / "contract" / "good.json").primary_length == 16


@pytest.mark.parametrize(("name", "fragments"), CONTRACT_ROWS, ids=[r[0] for r in CONTRACT_ROWS])
def test_bad_contract_is_a_contract_error_naming_the_file(name: str, fragments: tuple[str, ...]) -> None:
    from pipeline.contract import ContractError, load_contract

    path = CORPUS / "contract" / f"{name}.json"
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    _one_line_naming(str(caught.value), path, fragments)


def test_deeply_nested_contract_is_a_contract_error(tmp_path: Path) -> None:
    from pipeline.contract import ContractError, load_contract

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    _one_line_naming(str(caught.value), path, ())


def test_contract_path_that_is_a_folder_is_a_contract_error(tmp_path: Path) -> None:
    from pipeline.contract import ContractError, load_contract

    with pytest.raises(ContractError) as caught:
        load_contract(tmp_path)
    _one_line_naming(str(caught.value), tmp_path, ())


def test_every_contract_corpus_file_has_a_row() -> None:
    assert {p.stem for p in (CORPUS / "contract").glob("*.json")} == {r[0] for r in CONTRACT_ROWS} | {"good"}


# -- unsafe pickles ----------------------------------------------------------------

def test_the_unsafe_pickle_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    """The control: without the loader's refusal the side effect would appear."""
    marker = tmp_path / "PWNED"
    pickle.loads(artifacts.unsafe_pickle_bytes(marker))
    assert marker.exists()


@pytest.mark.parametrize("kind", ["torch_zip", "legacy_pickle"])
@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_checkpoint_pickle_needing_code_is_refused_and_never_runs(kind: str, suffix: str, tmp_path: Path) -> None:
    from pipeline.checkpoint import CheckpointError, read_checkpoint

    marker, path = tmp_path / "PWNED", tmp_path / f"model{suffix}"
    if kind == "torch_zip":
        artifacts.unsafe_torch_file(path, marker)
    else:
        path.write_bytes(artifacts.unsafe_pickle_bytes(marker))
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    _one_line_naming(str(caught.value), path, ("refused, unpickling it would need code execution",))
    assert not marker.exists(), "loading the checkpoint executed code from it"


def test_safetensors_named_checkpoint_holding_a_pickle_is_not_unpickled(tmp_path: Path) -> None:
    from pipeline.checkpoint import CheckpointError, read_checkpoint

    marker, path = tmp_path / "PWNED", tmp_path / "model.safetensors"
    path.write_bytes(artifacts.unsafe_pickle_bytes(marker))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_checkpoint(path)
    assert not marker.exists()


def test_architecture_metadata_missing_fields_cannot_build_a_model(tmp_path: Path) -> None:
    from pipeline.checkpoint import CheckpointError, load_student

    path = artifacts.tiny_checkpoint(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError) as caught:
        load_student(path)
    _one_line_naming(str(caught.value), path, ())


def test_checkpoint_without_model_arch_cannot_build_a_model(tmp_path: Path) -> None:
    from pipeline.checkpoint import CheckpointError, load_student

    path = artifacts.tiny_checkpoint(tmp_path / "model.safetensors", {"model_arch": {}})
    with pytest.raises(CheckpointError) as caught:
        load_student(path)
    _one_line_naming(str(caught.value), path, ("no model_arch",))


# -- Core ML packages --------------------------------------------------------------

@pytest.fixture(scope="module")
def mlpackage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ML Program package converted from a 2-layer torch MLP."""
    import warnings

    ct = pytest.importorskip("coremltools")
    import torch

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()
    traced = torch.jit.trace(mlp, torch.randn(1, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=(1, 8))],
                           outputs=[ct.TensorType(name="y")], convert_to="mlprogram",
                           minimum_deployment_target=ct.target.iOS16,
                           compute_precision=ct.precision.FLOAT32)
    path = tmp_path_factory.mktemp("coreml") / "mlp.mlpackage"
    model.save(str(path))
    return path


SPEC = Path("Data/com.apple.CoreML/model.mlmodel")
WEIGHTS = Path("Data/com.apple.CoreML/weights/weight.bin")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\xde\xad\xbe\xef" * 64)


PACKAGE_ROWS = {
    "weights_missing": (lambda p: (p / WEIGHTS).unlink(), WEIGHTS, "weight file referenced by the program is missing"),
    "weights_folder_missing": (lambda p: shutil.rmtree(p / WEIGHTS.parent), WEIGHTS,
                               "weight file referenced by the program is missing"),
    "weights_truncated": (lambda p: _truncate(p / WEIGHTS), WEIGHTS, "truncated"),
    "weights_garbage": (lambda p: (p / WEIGHTS).write_bytes(b"\x00" * (p / WEIGHTS).stat().st_size), WEIGHTS,
                        "corrupt weights"),
    "spec_garbage": (lambda p: _garbage(p / SPEC), SPEC, "not a readable Core ML spec"),
    "spec_truncated": (lambda p: _truncate(p / SPEC), SPEC, "not a readable Core ML spec"),
    "spec_empty": (lambda p: (p / SPEC).write_bytes(b""), SPEC, "declares no outputs"),
    "spec_missing": (lambda p: (p / SPEC).unlink(), SPEC, "the model spec named by the manifest is missing"),
    "manifest_missing": (lambda p: (p / "Manifest.json").unlink(), Path("Manifest.json"), "missing"),
    "manifest_garbage": (lambda p: (p / "Manifest.json").write_text("{\"itemInfoEntries\": ["),
                         Path("Manifest.json"), "unreadable manifest"),
    "manifest_wrong_shape": (lambda p: (p / "Manifest.json").write_text("[1, 2, 3]"),
                             Path("Manifest.json"), "unreadable manifest"),
}


def test_the_undamaged_package_reads(mlpackage: Path) -> None:
    from pipeline.to_coreml import read_package

    info = read_package(mlpackage)
    assert [t.name for t in info.inputs] == ["x"] and [t.name for t in info.outputs] == ["y"]


@pytest.mark.parametrize("name", list(PACKAGE_ROWS))
def test_damaged_package_is_a_package_error_naming_the_file(name: str, mlpackage: Path, tmp_path: Path) -> None:
    from pipeline.to_coreml import PackageError, read_package

    damage, named, fragment = PACKAGE_ROWS[name]
    copy = shutil.copytree(mlpackage, tmp_path / "mlp.mlpackage")
    damage(copy)
    with pytest.raises(PackageError) as caught:
        read_package(copy)
    _one_line_naming(str(caught.value), copy / named, (fragment,))


def test_package_path_that_is_a_file_is_a_package_error(tmp_path: Path) -> None:
    from pipeline.to_coreml import PackageError, read_package

    path = tmp_path / "model.mlpackage"
    path.write_bytes(b"PK\x03\x04 a zip, not a package folder")
    with pytest.raises(PackageError, match="no such .mlpackage folder"):
        read_package(path)


# -- coverage data ------------------------------------------------------------------

def test_coverage_data_measuring_a_folder_is_a_coverage_data_error(tmp_path: Path) -> None:
    from gates.code.coverage_data import CoverageDataError, load

    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("x = 1\n")
    data = artifacts.coverage_file(root / ".coverage", {root / "src": artifacts.MODULE_ARCS})
    with pytest.raises(CoverageDataError, match=".coverage"):
        load(data, root=root, sources=("src",), report_path=root / "cov.json", check_mtime=False)


# -- tokenizer files ------------------------------------------------------------------

TOKENIZER_ROWS = {
    "garbage": b"\x00\xff garbage",
    "empty": b"",
    "a_list": b"[1, 2]",
    "truncated": b'{"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0',
    "unknown_model_type": b'{"version": "1.0", "model": {"type": "Nope"}}',
    "deeply_nested": b"[" * 100_000,
}


@pytest.mark.parametrize("name", list(TOKENIZER_ROWS))
def test_bad_tokenizer_file_is_a_tokenizer_error_naming_the_file(name: str, tmp_path: Path) -> None:
    from pipeline.text_tokenizer import TokenizerError, load_tokenizer

    path = tmp_path / f"{name}.json"
    path.write_bytes(TOKENIZER_ROWS[name])
    with pytest.raises(TokenizerError) as caught:
        load_tokenizer(path)
    _one_line_naming(str(caught.value), path, ("not a readable tokenizer.json",))
