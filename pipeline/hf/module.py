"""`kind = "module"` with `adapter = "hf:<folder>"`: a non-causal model (an encoder, a classifier).

    >>> module, arch = load_hf_module("hf:models/minilm", root)    # offline, from the folder only
    >>> module(input_ids=ids, attention_mask=mask).keys()          # a ModelOutput: named outputs
    odict_keys(['last_hidden_state', 'pooler_output'])

The folder's `config.json` picks the class: its first `architectures` entry
when transformers has it (so a `...ForSequenceClassification` keeps its
head), else `AutoModel`. A causal language model is refused here: it is a
decoder, assessed with `kind = "decoder"` (`pipeline.hf.loading`). The
folder is checked as a decoder's is (`pipeline.hf.folder`: a config.json,
safetensors weights only, since Readiness never unpickles weights), and it
must lie inside the project. Integer inputs are widened to int64 before the
model sees them, since Core ML feeds int32 and embedding lookups in
transformers expect int64.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.adapter import AdapterError
from pipeline.hf.folder import FolderError, read_folder, resolve_folder


class HFModule(nn.Module):
    """forward(**inputs) -> the model's ModelOutput (a mapping of named tensors)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **inputs: torch.Tensor) -> Any:
        wide = {k: v.long() if not v.is_floating_point() and v.dtype != torch.bool else v
                for k, v in inputs.items()}
        return self.model(**wide, return_dict=True)


def hf_folder(target: str, root: Path) -> Path:
    """The folder an `hf:<folder>` adapter names, inside the project, holding a usable checkpoint."""
    folder = resolve_folder(target, root)
    if not folder.resolve().is_relative_to(Path(root).resolve()):
        raise AdapterError(f"model adapter {target!r}: {folder} lies outside the project")
    try:
        return read_folder(folder).path
    except FolderError as exc:
        raise AdapterError(f"model adapter {target!r}: {exc}") from None


def _is_causal(config: Any) -> bool:
    names = list(getattr(config, "architectures", None) or [])
    return bool(getattr(config, "is_decoder", False)) or any(n.endswith("ForCausalLM") for n in names)


def load_hf_module(target: str, root: Path) -> tuple[nn.Module, dict[str, Any]]:
    """(the wrapped model, its architecture fields) from an `hf:<folder>` adapter."""
    folder = hf_folder(target, root)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub
    try:
        import transformers
    except ImportError:
        raise AdapterError(f"model adapter {target!r} needs transformers (pip install 'readiness[hf]')") from None
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise AdapterError(f"model adapter {target!r}: {folder / 'config.json'} is unreadable ({exc})") from None
    if _is_causal(config):
        raise AdapterError(f"model adapter {target!r} is a causal language model "
                           f"({', '.join(config.architectures or [config.model_type])}): "
                           'assess it with kind = "decoder"')
    names = [n for n in (config.architectures or []) if hasattr(transformers, n)]
    cls = getattr(transformers, names[0]) if names else transformers.AutoModel
    try:
        model = cls.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
    except Exception as exc:
        raise AdapterError(f"model adapter {target!r}: {cls.__name__} could not load {folder} "
                           f"({type(exc).__name__}: {exc})") from None
    simple = {k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str, bool))}
    return HFModule(model), {"hf_class": type(model).__name__, **simple}
