"""Checkpoints: safetensors weights with JSON metadata, loaded without pickle.

A checkpoint is one `.safetensors` file whose header metadata holds, under
the key `readiness`, a JSON object:

    {"model_arch": {...every StudentConfig field...},
     "arch_hash": "sha256 over sorted (name, shape, dtype) of the weights",
     "step": 120, "tokenizer_fingerprint": "sha256 of the tokenizer JSON"}

Loading checks the stored hash against the weights actually in the file, and
(for the bundled student) the weights against the architecture the metadata
describes, so a file whose metadata lies is refused with a message naming
it. Legacy `.pt` files go through `torch.load(weights_only=True)` only: a
pickle that needs code execution is refused, never run. Every failure is a
`CheckpointError` with a one-line message that names the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from pipeline.student import Student, StudentConfig

METADATA_KEY = "readiness"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint could not be loaded safely; the message names the file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """What a checkpoint file holds, after its hash was checked."""

    path: Path
    state_dict: Mapping[str, torch.Tensor]
    model_arch: Mapping[str, Any]
    arch_hash: str
    step: int = 0
    tokenizer_fingerprint: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def without_tensors(self) -> Checkpoint:
        """The same facts without the weights (their memory goes with the last reference)."""
        return replace(self, state_dict={})


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def arch_hash(state_dict: Mapping[str, torch.Tensor]) -> str:
    """sha256 over sorted parameter names, shapes and dtypes (never values)."""
    rows = [[name, list(t.shape), dtype_name(t.dtype)] for name, t in sorted(state_dict.items())]
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def first_difference(expected: Mapping[str, torch.Tensor], actual: Mapping[str, torch.Tensor]) -> str:
    """A short description of the first parameter that differs in name, shape or dtype."""
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            return f"{name} is missing from the weights"
        if name not in expected:
            return f"{name} is not a parameter of that architecture"
        e, a = expected[name], actual[name]
        if tuple(e.shape) != tuple(a.shape) or e.dtype != a.dtype:
            return (f"{name} is {tuple(a.shape)} {dtype_name(a.dtype)}, the architecture "
                    f"expects {tuple(e.shape)} {dtype_name(e.dtype)}")
    return "no parameter differs"


def atomic_write(path: Path, write: Any) -> Path:
    """Call write(tmp_path) and move the result onto `path`: no half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_checkpoint(path: Path, state_dict: Mapping[str, torch.Tensor],
                     metadata: Mapping[str, Any]) -> Path:
    """Write weights and metadata as given (tests use it to forge bad files)."""
    tensors = {name: t.detach().contiguous().cpu() for name, t in state_dict.items()}
    # One header key: safetensors writes metadata keys in hash-map order, so
    # several keys would make byte-identical builds differ between processes.
    header = {METADATA_KEY: json.dumps({"format_version": FORMAT_VERSION, **metadata}, sort_keys=True)}
    return atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=header))


def save_checkpoint(path: Path, model: Student, *, step: int = 0,
                    tokenizer_fingerprint: str = "") -> Path:
    """Save a student with complete metadata and its architecture hash."""
    state = model.state_dict()
    meta = {"model_arch": model.cfg.model_arch, "arch_hash": arch_hash(state),
            "step": int(step), "tokenizer_fingerprint": tokenizer_fingerprint}
    return write_checkpoint(path, state, meta)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # safetensors raises several types for bad files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason})") from None
    try:
        meta = json.loads(header[METADATA_KEY]) if METADATA_KEY in header else {}
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata is not valid JSON ({exc})") from None
    return tensors, meta


def _checked_metadata(path: Path, meta: Any) -> dict[str, Any]:
    """The metadata fields with the types the rest of the code relies on."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: metadata is {type(meta).__name__}, not a JSON object")
    if not isinstance(meta.get("model_arch") or {}, dict):
        raise CheckpointError(f"{path}: metadata model_arch is not an object")
    try:
        int(meta.get("step", 0) or 0)
    except (TypeError, ValueError):
        raise CheckpointError(f"{path}: metadata step {meta.get('step')!r} is not an integer") from None
    return meta


def _read_legacy(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        with warnings.catch_warnings():  # protocol notices are no concern of the user's
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unsafe pickle"
        raise CheckpointError(f"{path}: refused, unpickling it would need code execution "
                              f"({first[:160]})") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable torch file ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        meta = {k: v for k, v in obj.items() if k != "state_dict"}
        obj = obj["state_dict"]
    else:
        meta = {}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: holds no state dict of tensors")
    return dict(obj), meta


def read_checkpoint(path: Path) -> Checkpoint:
    """Load weights and metadata; refuse unsafe pickles and hash mismatches."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    reader = _read_legacy if path.suffix in (".pt", ".pth", ".bin") else _read_safetensors
    tensors, meta = reader(path)
    meta = _checked_metadata(path, meta)
    if not tensors:
        raise CheckpointError(f"{path}: holds no tensors")
    actual = arch_hash(tensors)
    stored = str(meta.get("arch_hash", "") or "")
    if stored and stored != actual:
        raise CheckpointError(f"{path}: architecture hash mismatch: metadata says {stored[:12]}, "
                              f"the weights hash to {actual[:12]}")
    return Checkpoint(path=path, state_dict=tensors, model_arch=dict(meta.get("model_arch") or {}),
                      arch_hash=actual, step=int(meta.get("step", 0) or 0),
                      tokenizer_fingerprint=str(meta.get("tokenizer_fingerprint", "") or ""),
                      metadata=meta)


def build_student(ckpt: Checkpoint, student_cls: type[Student] = Student) -> Student:
    """A student (or a subclass) built from the metadata and loaded with the weights."""
    if not ckpt.model_arch:
        raise CheckpointError(f"{ckpt.path}: no model_arch in the metadata")
    try:
        cfg = StudentConfig.from_arch(ckpt.model_arch)
        # Shapes first, on the meta device: metadata that lies about sizes
        # must not get to allocate them.
        with torch.device("meta"):
            expected = student_cls(cfg).state_dict()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt.path}: model_arch is invalid: {exc}") from None
    if arch_hash(expected) != ckpt.arch_hash:
        raise CheckpointError(f"{ckpt.path}: model_arch disagrees with the weights: "
                              f"{first_difference(expected, ckpt.state_dict)}")
    return _materialise(student_cls, cfg, ckpt.state_dict).float().eval()


def _materialise(student_cls: type[Student], cfg: StudentConfig, state_dict: Mapping[str, torch.Tensor]) -> Student:
    """The model holding the checkpoint's own tensors: built on the meta device and given
    the weights (one copy of them in memory, not a random one plus the file's), then the
    derived tables. A subclass with buffers of its own is built and loaded the plain way."""
    with torch.device("meta"):
        model = student_cls(cfg)
    model.load_state_dict(dict(state_dict), strict=True, assign=True)
    derived = student_cls.derived_buffers(cfg)
    for name, buffer in list(model.named_buffers()):
        if buffer.is_meta and name in derived:
            setattr(model, name, derived[name])
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        model = student_cls(cfg)
        model.load_state_dict(dict(state_dict), strict=True)
    return model


def load_student(path: Path, student_cls: type[Student] = Student) -> Student:
    """Read, check and build in one step."""
    return build_student(read_checkpoint(path), student_cls)
