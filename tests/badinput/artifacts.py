"""Bad binary artifacts, made at test time: checkpoints and coverage data.

Text corpus files live under corpus/; these are binary or depend on the
machine (absolute paths inside coverage data), so they are built here.
`UNSAFE_PICKLE_CODE` writes a side-effect file: a loader that runs it has
executed code from the checkpoint.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Callable

from coverage import CoverageData


class _RunsCode:
    """Pickles to `exec(code)`: whoever unpickles it runs `code`."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.code,))


def side_effect_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('code from a checkpoint ran')"


def unsafe_pickle_bytes(marker: Path) -> bytes:
    """A plain (legacy, non-zip) pickle of a state dict whose loading runs code."""
    return pickle.dumps({"state_dict": {"w": _RunsCode(side_effect_code(marker))}}, protocol=2)


def unsafe_torch_file(path: Path, marker: Path) -> Path:
    """A torch.save zip file whose pickle runs code when loaded without weights_only."""
    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2), "hook": _RunsCode(side_effect_code(marker))}, buffer)
    path.write_bytes(buffer.getvalue())
    return path


def tiny_checkpoint(path: Path, metadata: dict[str, Any] | None = None) -> Path:
    """A well-formed safetensors file with one tensor and a correct arch hash."""
    import torch

    from pipeline.checkpoint import arch_hash, write_checkpoint

    state = {"embed.weight": torch.zeros(64, 32)}
    meta = {"arch_hash": arch_hash(state), "model_arch": {"n_layers": 1}, **(metadata or {})}
    return write_checkpoint(path, state, meta)


def truncated_checkpoint(path: Path) -> Path:
    tiny_checkpoint(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def garbage_checkpoint(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return path


def bad_metadata_checkpoint(path: Path) -> Path:
    """Valid safetensors whose `readiness` metadata is not JSON."""
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(4)}, str(path), metadata={"readiness": "{not json"})
    return path


def coverage_file(path: Path, measured: dict[Path, list[tuple[int, int]]], *, arcs: bool = True) -> Path:
    """A coverage.py data file that claims to have measured `measured` (file -> arcs)."""
    data = CoverageData(basename=str(path))
    if arcs:
        data.add_arcs({str(f): set(a) for f, a in measured.items()})
    else:
        data.add_lines({str(f): sorted({b for _, b in a if b > 0}) for f, a in measured.items()})
    data.write()
    return path


MODULE_ARCS = [(-1, 1), (1, 2), (2, -1)]
Builder = Callable[[Path], Path]
