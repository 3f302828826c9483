"""Safe checkpoints: hashes checked, pickles never executed, bad files named."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from pipeline.checkpoint import (
    CheckpointError,
    arch_hash,
    build_student,
    load_student,
    read_checkpoint,
    save_checkpoint,
    write_checkpoint,
)
from pipeline.student import Student, StudentConfig

CFG = StudentConfig(vocab_size=40, max_seq_len=24)


@pytest.fixture(scope="module")
def model() -> Student:
    torch.manual_seed(0)
    return Student(CFG).eval()


@pytest.fixture(scope="module")
def saved(model: Student, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.safetensors", model, step=7,
                           tokenizer_fingerprint="abc")


class Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_saved_checkpoint_round_trips_weights_and_metadata(model: Student, saved: Path) -> None:
    ckpt = read_checkpoint(saved)
    assert ckpt.model_arch == CFG.model_arch
    assert (ckpt.step, ckpt.tokenizer_fingerprint) == (7, "abc")
    assert ckpt.arch_hash == arch_hash(model.state_dict())
    loaded = load_student(saved)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)


def test_arch_hash_depends_on_shapes_not_values(model: Student) -> None:
    state = model.state_dict()
    zeros = {k: torch.zeros_like(v) for k, v in state.items()}
    assert arch_hash(zeros) == arch_hash(state)
    assert arch_hash(Student(StudentConfig(vocab_size=41, max_seq_len=24)).state_dict()) != arch_hash(state)


def test_stored_hash_that_disagrees_with_the_weights_is_refused(model: Student, tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "forged.safetensors", model.state_dict(),
                            {"model_arch": CFG.model_arch, "arch_hash": "0" * 64})
    with pytest.raises(CheckpointError, match=r"forged\.safetensors: architecture hash mismatch"):
        read_checkpoint(path)


def test_model_arch_that_disagrees_with_the_weights_is_refused(model: Student, tmp_path: Path) -> None:
    arch = {**CFG.model_arch, "d_ff": 256}
    path = write_checkpoint(tmp_path / "lying.safetensors", model.state_dict(),
                            {"model_arch": arch, "arch_hash": arch_hash(model.state_dict())})
    with pytest.raises(CheckpointError,
                       match=r"lying\.safetensors: model_arch disagrees .*down_proj.weight is \(64, 128\)"):
        load_student(path)


def test_incomplete_model_arch_is_refused(model: Student, tmp_path: Path) -> None:
    arch = {k: v for k, v in CFG.model_arch.items() if k != "rope_theta"}
    path = write_checkpoint(tmp_path / "partial.safetensors", model.state_dict(), {"model_arch": arch})
    with pytest.raises(CheckpointError, match="partial.safetensors: .*missing rope_theta"):
        load_student(path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_unreadable_safetensors_give_one_line_naming_the_file(saved: Path, tmp_path: Path,
                                                              damage: str) -> None:
    data = saved.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x07" * 300, "empty": b""}[damage])
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(bad)
    message = str(info.value)
    assert message.startswith(str(bad)) and "\n" not in message
    assert info.value.__cause__ is None


def test_legacy_state_dict_loads_through_weights_only(model: Student, tmp_path: Path) -> None:
    path = tmp_path / "legacy.pt"
    torch.save({"state_dict": model.state_dict(), "model_arch": CFG.model_arch}, path)
    loaded = load_student(path)
    assert torch.equal(loaded.embed.weight, model.embed.weight)


def test_pickle_needing_code_execution_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": Exploit(marker)}))
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused, unpickling it would need code"):
        read_checkpoint(path)
    assert not marker.exists()


def test_exploit_would_have_run_under_plain_pickle(tmp_path: Path) -> None:
    # Shows the fixture above is a real exploit, so its test can fail.
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Exploit(marker)))
    assert marker.exists()


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="absent.safetensors: checkpoint file not found"):
        read_checkpoint(tmp_path / "absent.safetensors")


def test_save_leaves_no_temporary_files(saved: Path) -> None:
    assert [p.name for p in saved.parent.iterdir()] == ["m.safetensors"]


@pytest.mark.parametrize(("meta", "message"), [
    ([1, 2], "metadata is list, not a JSON object"),
    ({"model_arch": "wide"}, "model_arch is not an object"),
    ({"step": "late"}, "step 'late' is not an integer"),
])
def test_metadata_of_the_wrong_shape_is_named(model: Student, tmp_path: Path, meta, message: str) -> None:
    import json

    from safetensors.torch import save_file

    path = tmp_path / "odd.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"readiness": json.dumps(meta)})
    with pytest.raises(CheckpointError, match=f"odd.safetensors: .*{message}"):
        read_checkpoint(path)


def test_metadata_claiming_huge_sizes_is_refused_without_allocating(model: Student, tmp_path: Path) -> None:
    arch = {**CFG.model_arch, "vocab_size": 10 ** 9}  # 10^9 x 64 floats: 256 GB if allocated
    path = write_checkpoint(tmp_path / "huge.safetensors", model.state_dict(),
                            {"model_arch": arch, "arch_hash": arch_hash(model.state_dict())})
    with pytest.raises(CheckpointError, match="huge.safetensors: model_arch disagrees .*embed.weight"):
        load_student(path)


def test_metadata_with_wrongly_typed_fields_is_refused(model: Student, tmp_path: Path) -> None:
    arch = {**CFG.model_arch, "d_ff": "128"}
    path = write_checkpoint(tmp_path / "typed.safetensors", model.state_dict(), {"model_arch": arch})
    with pytest.raises(CheckpointError, match="typed.safetensors: model_arch is invalid: .*d_ff"):
        load_student(path)


def test_a_loaded_student_holds_the_files_tensors_not_a_second_copy(model: Student, saved: Path) -> None:
    ckpt = read_checkpoint(saved)
    loaded = build_student(ckpt)
    shared = {t.data_ptr() for t in ckpt.state_dict.values()}
    assert all(p.data_ptr() in shared for p in loaded.parameters())  # the weights were not copied
    for name, table in model.named_buffers():  # the derived tables are real, and right
        assert torch.equal(dict(loaded.named_buffers())[name], table), name
    ids = torch.randint(0, model.cfg.vocab_size, (1, 12), dtype=torch.int32)
    with torch.no_grad():
        assert torch.equal(loaded(ids), model.eval()(ids))
