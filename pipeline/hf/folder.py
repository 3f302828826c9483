"""A local Hugging Face checkpoint folder: what it must hold, read without torch.

    >>> folder = read_folder(Path("model"))          # config.json + *.safetensors (+ tokenizer.json)
    >>> folder.model_type, [w.name for w in folder.weights], folder.tokenizer
    ('llama', ['model.safetensors'], PosixPath('model/tokenizer.json'))

`folder_problem(path)` says in one line what is wrong with a folder (or
None); the configuration calls it at load, so `adapter = "hf:typo"` is
refused before any gate runs. Only safetensors weights are accepted: a folder
holding nothing but pickled `pytorch_model.bin` files is refused, because
Readiness never unpickles a checkpoint. Nothing here imports torch or
transformers, so the configuration stays light.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HF_PREFIX = "hf:"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"


class FolderError(Exception):
    """A checkpoint folder that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HFFolder:
    """What a checkpoint folder holds: its config, its weight files, its tokenizer (if any)."""

    path: Path
    config: dict
    weights: tuple[Path, ...]
    tokenizer: Path | None

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))


def is_hf(adapter: str | None) -> bool:
    return bool(adapter) and str(adapter).startswith(HF_PREFIX)


def folder_name(adapter: str) -> str:
    """`hf:models/llama` -> `models/llama` (as written, relative to the project root)."""
    return str(adapter)[len(HF_PREFIX):]


def resolve_folder(adapter: str, root: Path) -> Path:
    folder = Path(folder_name(adapter)).expanduser()
    return folder if folder.is_absolute() else Path(root) / folder


def read_folder(path: Path) -> HFFolder:
    """The folder's contents, or FolderError naming what is missing or unreadable."""
    path = Path(path)
    if not path.is_dir():
        raise FolderError(f"{path}: no such checkpoint folder")
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise FolderError(f"{config_path}: missing (a Hugging Face checkpoint folder has a config.json)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FolderError(f"{config_path}: not a readable JSON file ({exc})") from None
    if not isinstance(config, dict) or not config.get("model_type"):
        raise FolderError(f"{config_path}: no model_type (not a transformers model config)")
    weights = tuple(sorted(p for p in path.glob("*.safetensors") if p.is_file()))
    if not weights:
        pickles = sorted(p.name for p in path.glob("*.bin"))
        why = (f"only pickled weights ({', '.join(pickles)}), which Readiness never loads; "
               "re-save with save_pretrained(safe_serialization=True)") if pickles else "no *.safetensors weights"
        raise FolderError(f"{path}: {why}")
    tokenizer = path / TOKENIZER_FILE
    return HFFolder(path=path, config=config, weights=weights, tokenizer=tokenizer if tokenizer.is_file() else None)


def folder_problem(path: Path) -> str | None:
    """One line saying why `path` is not a usable checkpoint folder, or None."""
    try:
        read_folder(path)
    except FolderError as exc:
        return str(exc)
    return None
