"""Hugging Face decoders by name: `adapter = "hf:<folder>"`.

Public pieces:
- `load_hf_adapter(target, root, args)`: the adapter of a local checkpoint
  folder (`pipeline.hf.loading`);
- `HFDecoder(model)`: any transformers *ForCausalLM behind the prefill/decode
  conventions, for a user's own callable (`pipeline.hf.decoder`);
- `read_folder`, `folder_problem`, `is_hf`: what a folder must hold, without
  torch (`pipeline.hf.folder`);
- `VERIFIED`: the families tested end to end (`pipeline.hf.families`).

Importing this package imports neither torch nor transformers: the
configuration checks a folder at load, and a re-rendered report needs no
torch. The heavy pieces load on first use.
"""

from __future__ import annotations

from typing import Any

from pipeline.hf.folder import HF_PREFIX, FolderError, folder_problem, is_hf, read_folder

_LAZY = {"HFDecoder": "pipeline.hf.decoder", "load_hf_adapter": "pipeline.hf.loading",
         "HFAdapter": "pipeline.hf.loading", "VERIFIED": "pipeline.hf.families"}

__all__ = ["HF_PREFIX", "FolderError", "folder_problem", "is_hf", "read_folder", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline.hf' has no attribute {name!r}")
