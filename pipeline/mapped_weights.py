"""A loaded torch model's weights kept in a file-backed memory map, out of the resident size between uses.

The parity gate needs the eager model for its reference outputs, then runs a
converted program that holds the same weights in its own copy: two copies
resident at once, the largest share of a large decoder's peak (3.4 GB of a
1B model's 11.7 GB). `MappedWeights(module, folder).park()` moves the
module's parameters and buffers into one shared memory map of a file it
writes once (`torch.save`, so the values are bit for bit the same; the file
is unlinked as soon as it is mapped, so nothing is left on disk). Pages of a
mapped file count toward the resident size only once touched: an eager pass
reads them in (or `resident()`), a later `park()` hands them back
(`heap.drop_pages`), and the next eager pass reads them again from the page
cache. The map is shared, not private, so a write into a weight goes to the
file and is never undone by a park.

The module's tensor objects stay the same (their `.data` is swapped), so
tied weights stay tied and whatever holds the module holds the mapped
weights. A module it cannot map (a tensor off the CPU, on the meta device, a
tensor subclass, a failed write) is left as it was: `park()` returns False
with `reason` saying why.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

import torch

from pipeline import heap

_PAGE = 4096


class MappedWeights:
    """Park one module's weights in a file-backed map (see the module docstring)."""

    def __init__(self, module: torch.nn.Module, folder: Path) -> None:
        self._module = module
        self._folder = Path(folder)
        self._tensors: list[torch.Tensor] = []
        self._map: list[torch.Tensor] = []  # the mapped copies: their pages are the file's
        self.reason = ""

    @property
    def mapped(self) -> bool:
        """Whether the module's weights are the map's now (nothing has put others in their place)."""
        return bool(self._map) and all(t.data_ptr() == m.data_ptr() for t, m in zip(self._tensors, self._map))

    def park(self) -> bool:
        """Leave the weights' pages out of the resident size until the module next runs."""
        if not self.mapped and not self._mapped_now():
            return False
        spans = [(m.untyped_storage().data_ptr(), m.untyped_storage().nbytes()) for m in self._map]
        spans = [(start, size) for start, size in spans if size]
        if spans:  # one range: the storages are slices of one map of the file
            heap.drop_pages(min(start for start, _ in spans), max(start + size for start, size in spans))
        return True

    def resident(self) -> bool:
        """Read every page of the map in (a parked model's next run then starts as a warm one)."""
        if not self.mapped:
            return False
        with torch.no_grad():
            for m in self._map:
                storage = m.untyped_storage()
                if storage.nbytes():  # one byte read per page of the tensor's storage, whatever its strides
                    torch.empty(0, dtype=torch.uint8).set_(storage)[::_PAGE].sum()
        return True

    def _mapped_now(self) -> bool:
        tensors = _weights(self._module)
        odd = [t for t in tensors if type(t) not in (torch.Tensor, torch.nn.Parameter)
               or t.device.type != "cpu" or t.layout != torch.strided]
        if not tensors or odd:
            self.reason = f"a {type(odd[0]).__name__} on {odd[0].device} is not mappable" if odd else "no weights"
            return False
        try:
            loaded = _written_and_mapped(tensors, self._folder)
        except (OSError, RuntimeError) as exc:
            self.reason = f"could not write the weights to {self._folder}: {exc}"
            return False
        for tensor, copy in zip(tensors, loaded):
            tensor.data = copy
        self._tensors, self._map = tensors, loaded
        heap.release()  # the module's own copy goes back to the OS now
        return True


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer of `module`, each once (tied ones are one object)."""
    seen: dict[int, torch.Tensor] = {}
    for tensor in (*module.parameters(), *module.buffers()):
        seen.setdefault(id(tensor), tensor)
    return list(seen.values())


def _written_and_mapped(tensors: list[torch.Tensor], folder: Path) -> list[torch.Tensor]:
    """`tensors` saved in `folder` and loaded back memory-mapped; the file is gone on return."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="mapped-weights-", dir=folder))
    path = staging / "weights.pt"
    try:
        torch.save([t.detach() for t in tensors], path)
        with torch.serialization.set_default_mmap_options(mmap.MAP_SHARED):  # writes kept: see the docstring
            loaded = torch.load(path, mmap=True, weights_only=True, map_location="cpu")
    finally:  # the map outlives the file's name (POSIX)
        path.unlink(missing_ok=True)
        os.rmdir(staging)
    return list(loaded)
