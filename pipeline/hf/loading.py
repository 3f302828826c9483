"""`adapter = "hf:<folder>"`: a local checkpoint folder, loaded offline and wrapped.

    >>> adapter = load_hf_adapter("hf:model", root, args={"max_seq_len": 256})
    >>> adapter.folder.model_type, adapter.load_report.tensors, adapter.arch["n_kv_heads"]
    ('qwen2', 26, 2)

The model is loaded with transformers' Auto classes from the folder alone:
`local_files_only=True` (no hub, `HF_HUB_OFFLINE=1`), safetensors only (no
pickle is ever loaded), no remote code, fp32. The loading report keeps what
transformers said about the weights — keys the config expects but the files
lack, keys the files hold that the model has no place for, tensors whose
shape differs from the config's — for the checkpoint gate; mismatched
tensors are left at their initial values so the gate can report them rather
than the load failing.

`[model.args]` for an `hf:` model: `max_seq_len` (rows of the rotary and
mask tables: the longest prompt plus generated tokens the exported model
serves; default the config's `max_position_embeddings`, at most 2048).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pipeline.adapter import AdapterError, ModuleAdapter
from pipeline.hf.families import FamilyError
from pipeline.hf.folder import FolderError, HFFolder, read_folder, resolve_folder

HF_ARGS = ("max_seq_len",)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadReport:
    """What loading the folder's weights into the config's model found."""

    files: tuple[str, ...]
    tensors: int
    params: int
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


class HFAdapter(ModuleAdapter):
    """A `ModuleAdapter` over an `HFDecoder`, with the folder it came from and its loading report."""

    def __init__(self, module: Any, folder: HFFolder, report: LoadReport) -> None:
        super().__init__(module)
        self.folder = folder
        self.load_report = report


def _tensor_count(weights: tuple[Path, ...]) -> int:
    from safetensors import safe_open

    count = 0
    for path in weights:
        with safe_open(str(path), framework="pt") as handle:
            count += len(list(handle.keys()))
    return count


def load_model(folder: HFFolder) -> tuple[Any, LoadReport]:
    """The folder's *ForCausalLM in fp32, eval mode, and what loading its weights found."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    # transformers prints its own load report and progress bars; the checkpoint gate reports the findings
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            str(folder.path), local_files_only=True, use_safetensors=True, trust_remote_code=False,
            dtype=torch.float32, ignore_mismatched_sizes=True, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    mismatched = tuple(sorted(_mismatch_line(m) for m in info.get("mismatched_keys", ())))
    report = LoadReport(files=tuple(p.name for p in folder.weights), tensors=_tensor_count(folder.weights),
                        params=sum(p.numel() for p in model.parameters()),
                        missing=tuple(sorted(info.get("missing_keys", ()))),
                        unexpected=tuple(sorted(info.get("unexpected_keys", ()))), mismatched=mismatched)
    return model.eval(), report


def _mismatch_line(entry: Any) -> str:
    if isinstance(entry, (tuple, list)) and len(entry) == 3:
        name, stored, expected = entry
        return f"{name}: file {list(stored)}, config {list(expected)}"
    return str(entry)


def hf_args(args: Mapping[str, Any] | None, target: str) -> dict[str, Any]:
    args = dict(args or {})
    unknown = sorted(set(args) - set(HF_ARGS))
    if unknown:
        raise AdapterError(f"model adapter {target!r}: unknown model.args {', '.join(unknown)} "
                           f"(an hf: model takes {', '.join(HF_ARGS)})")
    value = args.get("max_seq_len")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
        raise AdapterError(f"model adapter {target!r}: model.args.max_seq_len must be an integer >= 2, "
                           f"got {value!r}")
    return args


def load_hf_adapter(target: str, root: Path, args: Mapping[str, Any] | None = None) -> HFAdapter:
    """The adapter of `hf:<folder>`; AdapterError with one line naming the folder and the reason."""
    from pipeline.hf.decoder import HFDecoder

    options = hf_args(args, target)
    try:
        import transformers  # noqa: F401 - an optional extra
    except ImportError:
        raise AdapterError(f"model adapter {target!r} needs transformers: pip install 'readiness[hf]'") from None
    try:
        folder = read_folder(resolve_folder(target, root))
    except FolderError as exc:
        raise AdapterError(f"model adapter {target!r}: {exc}") from None
    try:
        model, report = load_model(folder)
        return HFAdapter(HFDecoder(model, max_seq_len=options.get("max_seq_len")), folder, report)
    except FamilyError as exc:
        raise AdapterError(f"model adapter {target!r}: {folder.path / 'config.json'}: {exc}") from None
    except Exception as exc:  # transformers' own words: an unknown model_type, a broken file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise AdapterError(f"model adapter {target!r}: transformers could not load {folder.path} "
                           f"({type(exc).__name__}: {first})") from exc
