"""What `readiness init` finds in a project before it writes a configuration.

A first configuration that names `my_package` and a checkpoint that does not
exist only teaches the user that Readiness fails. So `init` looks first:

- packages: folders with `__init__.py` at the root (flat layout), or under
  `src/` (src layout);
- a test folder: `tests/` or `test/` at the root;
- a model: a `.safetensors` file carrying Readiness checkpoint metadata (the
  bundled student's format, `builtin:student`), or a Hugging Face folder
  (`config.json` with a `model_type`, next to its weights), which needs an
  adapter of the user's;
- a `tokenizer.json`, preferably beside the model.

The walk stays inside the project: symbolic links are not followed, a file
whose real path lies outside the root is not read, and the folders tools
create (virtual environments, build output, caches) are pruned. Depth and
the number of folders visited are bounded so `init` is quick in a large
repository.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from gates.code.tracked_files import PRUNED_DIRS

MAX_DEPTH = 4  # folders below the root that the model search descends into
MAX_FOLDERS = 2000  # a bound on the walk, for very large trees
TEST_FOLDERS = ("tests", "test")
NOT_PACKAGES = frozenset({*TEST_FOLDERS, "docs", "examples", "scripts"})
HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
CHECKPOINT_KEY = "readiness"  # the metadata key of pipeline.checkpoint (not imported: it needs torch)


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundModel:
    """A model `init` can point `[model]` at; paths relative to the root (posix)."""

    kind: str  # "readiness" (a Readiness checkpoint) or "huggingface" (a folder)
    checkpoint: str
    tokenizer: str | None
    max_seq_len: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Survey:
    """What a project holds, as far as the configuration cares."""

    root: Path
    packages: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    model: FoundModel | None = None
    other_models: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()  # a few source modules, for the commented `critical` example

    @property
    def layout(self) -> str:
        if not self.packages:
            return "none"
        return "src" if all(p.startswith("src/") for p in self.packages) else "flat"


def survey(root: Path) -> Survey:
    """Look at `root` and say what is there."""
    root = root.resolve()
    packages = _packages(root)
    models = list(_models(root))
    return Survey(root=root, packages=packages, tests=_tests(root), model=models[0] if models else None,
                  other_models=tuple(m.checkpoint for m in models[1:]), modules=_modules(root, packages))


def _inside(root: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except OSError:
        return False


def _is_package(root: Path, folder: Path) -> bool:
    return (folder.is_dir() and not folder.is_symlink() and folder.name.isidentifier()
            and (folder / "__init__.py").is_file() and _inside(root, folder / "__init__.py"))


def _packages(root: Path) -> tuple[str, ...]:
    def under(base: Path) -> list[str]:
        if not base.is_dir() or base.is_symlink():
            return []
        return [p.relative_to(root).as_posix() for p in sorted(base.iterdir())
                if p.name not in NOT_PACKAGES and p.name not in PRUNED_DIRS and _is_package(root, p)]

    return tuple(under(root) or under(root / "src"))


def _tests(root: Path) -> tuple[str, ...]:
    for name in TEST_FOLDERS:
        folder = root / name
        if folder.is_dir() and not folder.is_symlink():
            return (name,)
    return ()


def _modules(root: Path, packages: tuple[str, ...]) -> tuple[str, ...]:
    modules = []
    for package in packages:
        modules += [p.relative_to(root).as_posix() for p in sorted((root / package).glob("*.py"))
                    if p.name != "__init__.py" and not p.is_symlink()]
    return tuple(modules[:2])


def _folders(root: Path) -> Iterator[tuple[Path, list[str]]]:
    """(folder, file names) breadth-first, pruned, bounded, symlinks not followed."""
    visited = 0
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if d not in PRUNED_DIRS and not d.startswith(".")
                         and not d.endswith(".egg-info") and depth < MAX_DEPTH
                         and not (here / d / "pyvenv.cfg").exists())
        visited += 1
        if visited > MAX_FOLDERS:
            return
        yield here, sorted(files)


def _models(root: Path) -> Iterator[FoundModel]:
    """Readiness checkpoints first, then Hugging Face folders, nearest the root first."""
    found: list[tuple[int, int, str, FoundModel]] = []
    for folder, files in _folders(root):
        depth = len(folder.relative_to(root).parts)
        if "config.json" in files and any(name in files for name in HF_WEIGHTS):
            hf = _huggingface(root, folder, files)
            if hf is not None:
                found.append((1, depth, hf.checkpoint, hf))
                continue  # its weights are not Readiness checkpoints
        for name in files:
            if name.endswith(".safetensors"):
                model = _readiness_checkpoint(root, folder / name, files)
                if model is not None:
                    found.append((0, depth, model.checkpoint, model))
    yield from (entry[-1] for entry in sorted(found, key=lambda e: e[:3]))


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() or "."


def _tokenizer_beside(root: Path, folder: Path, files: list[str]) -> str | None:
    path = folder / "tokenizer.json"
    return _relative(root, path) if "tokenizer.json" in files and _inside(root, path) else None


def _readiness_checkpoint(root: Path, path: Path, files: list[str]) -> FoundModel | None:
    meta = _safetensors_metadata(root, path)
    if meta is None or not isinstance(meta.get("model_arch"), dict):
        return None
    max_len = meta["model_arch"].get("max_seq_len")
    return FoundModel(kind="readiness", checkpoint=_relative(root, path),
                      tokenizer=_tokenizer_beside(root, path.parent, files),
                      max_seq_len=max_len if isinstance(max_len, int) and max_len > 0 else None)


def _safetensors_metadata(root: Path, path: Path) -> dict[str, Any] | None:
    """The Readiness metadata of a safetensors file; None for any other file."""
    if path.is_symlink() or not _inside(root, path):
        return None
    try:
        from safetensors import safe_open  # reads the header only; never unpickles

        with safe_open(str(path), framework="numpy") as handle:
            header = handle.metadata() or {}
        meta = json.loads(header.get(CHECKPOINT_KEY, "null"))
    except Exception:  # noqa: BLE001 - any unreadable file is simply not a checkpoint of ours
        return None
    return meta if isinstance(meta, dict) else None


def _huggingface(root: Path, folder: Path, files: list[str]) -> FoundModel | None:
    config = folder / "config.json"
    if config.is_symlink() or not _inside(root, config):
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        return None
    max_len = data.get("max_position_embeddings")
    return FoundModel(kind="huggingface", checkpoint=_relative(root, folder),
                      tokenizer=_tokenizer_beside(root, folder, files),
                      max_seq_len=max_len if isinstance(max_len, int) and max_len > 0 else None)
