"""What a converted model weighs on disk, and how many parameters the PyTorch model has.

A `.mlpackage` is a folder: its size is the sum of the regular files in it.
An `.onnx` file may keep its tensors in external data files beside it: those
named by its initializers count too. Links are never followed and a file
outside the model's own folder is never read, so a package cannot make
Readiness measure (or reveal) anything outside the project.

    >>> disk_bytes(Path("decode_fp16.mlpackage"))     # doctest: +SKIP
    1310951
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def disk_bytes(path: Path) -> int:
    """Bytes of a file, or of every regular file under a folder (links not followed)."""
    path = Path(path)
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for folder, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            file = Path(folder) / name
            if not file.is_symlink() and file.is_file():
                total += file.stat().st_size
    return total


def external_locations(model: Any) -> set[str]:
    """The external data files an ONNX model's tensors name (as written: relative to the model)."""
    return {entry.value for tensor in model.graph.initializer for entry in tensor.external_data
            if entry.key == "location"}


def onnx_disk_bytes(path: Path, model: Any) -> int:
    """The `.onnx` file plus the external data files its tensors name, inside its folder."""
    path = Path(path)
    folder = path.parent.resolve()
    extra: set[Path] = set()
    for location in external_locations(model):
        target = path.parent / location
        if not target.is_symlink() and target.resolve().is_relative_to(folder) and target.is_file():
            extra.add(target.resolve())
    return disk_bytes(path) + sum(p.stat().st_size for p in extra)


def model_disk_bytes(path: Path) -> int:
    """A converted model's bytes on disk: a package's files, or an `.onnx` file and its data files."""
    path = Path(path)
    if path.suffix != ".onnx" or not path.is_file() or path.is_symlink():
        return disk_bytes(path)
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # unreadable: what the file itself weighs
        return disk_bytes(path)
    return onnx_disk_bytes(path, model)


def parameter_count(module: Any) -> int:
    """Elements of a module's parameters (buffers such as rotary tables are not parameters)."""
    return int(sum(p.numel() for p in module.parameters()))


def parameter_bytes(module: Any) -> int:
    return int(sum(p.numel() * p.element_size() for p in module.parameters()))
