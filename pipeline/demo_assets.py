"""The demo checkpoint and tokenizer, built once and reused from a cache.

    >>> assets = build_demo_assets(Path("work"), seed=0)
    >>> assets.checkpoint.name, assets.tokenizer.name
    ('student.safetensors', 'tokenizer.json')

The cache key is a sha256 over everything the files depend on: the student
and distillation configs, the seed, the torch and tokenizers versions, and
the source of the modules and corpus that produce them. A build lives in
`work_dir/demo-<key>/`; its `manifest.json` is written last (atomically,
like every file here), so a folder without a manifest is an interrupted
build and is simply rebuilt. The model vocabulary equals the tokenizer size:
no padding rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from importlib import metadata, util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pipeline import text_tokenizer
from pipeline.model_configs import DistillConfig, StudentConfig

if TYPE_CHECKING:  # torch is imported only to build: a cache hit never loads it
    import tokenizers
    import torch

# Modules whose source decides the demo files (found without importing them).
SOURCE_MODULES = ("pipeline.student", "pipeline.distill", "pipeline.checkpoint", "pipeline.model_configs",
                  "pipeline.text_tokenizer")

DEMO_STUDENT = StudentConfig(vocab_size=text_tokenizer.DEFAULT_VOCAB_SIZE, d_model=64, n_layers=2,
                             n_heads=4, n_kv_heads=2, d_head=16, d_ff=128, max_seq_len=640,
                             halt_head=True)
DEMO_DISTILL = DistillConfig()
CHECKPOINT_NAME = "student.safetensors"
TOKENIZER_NAME = "tokenizer.json"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoAssets:
    """Where the demo model lives and what it is."""

    directory: Path
    checkpoint: Path
    tokenizer: Path
    arch: Mapping[str, Any]
    arch_hash: str
    tokenizer_fingerprint: str
    step: int
    reused: bool = False
    build_s: float = 0.0
    losses: Mapping[str, float] = field(default_factory=dict)


def code_version() -> str:
    """sha256 over the sources and corpus that determine the demo files."""
    digest = hashlib.sha256()
    for name in SOURCE_MODULES:
        spec = util.find_spec(name)
        digest.update(Path(spec.origin if spec and spec.origin else "").read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(text_tokenizer.corpus_path().read_bytes())
    return digest.hexdigest()


def cache_key(seed: int, student_cfg: StudentConfig = DEMO_STUDENT,
              distill_cfg: DistillConfig = DEMO_DISTILL) -> str:
    payload = {"seed": seed, "student": student_cfg.model_arch,
               "distill": dataclasses.asdict(distill_cfg), "code": code_version(),
               "torch": metadata.version("torch"), "tokenizers": metadata.version("tokenizers")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def special_id(tok: tokenizers.Tokenizer, token: str) -> int:
    """The id of a special token the bundled tokenizer always has."""
    found = tok.token_to_id(token)
    if found is None:
        raise ValueError(f"the tokenizer has no {token} token")
    return int(found)


def token_stream(tok: tokenizers.Tokenizer) -> torch.Tensor:
    """The corpus as one stream: <bos> paragraph <eos> <bos> paragraph <eos> ..."""
    import torch

    bos, eos = special_id(tok, text_tokenizer.BOS), special_id(tok, text_tokenizer.EOS)
    ids: list[int] = []
    for paragraph in text_tokenizer.corpus_lines():
        ids += [bos, *text_tokenizer.encode(tok, paragraph), eos]
    return torch.tensor(ids, dtype=torch.int64)


def _from_manifest(directory: Path, key: str) -> DemoAssets | None:
    manifest = directory / MANIFEST_NAME
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    ckpt, tok = directory / CHECKPOINT_NAME, directory / TOKENIZER_NAME
    if data.get("key") != key or not ckpt.is_file() or not tok.is_file():
        return None
    return DemoAssets(directory=directory, checkpoint=ckpt, tokenizer=tok, arch=data["arch"],
                      arch_hash=data["arch_hash"], tokenizer_fingerprint=data["tokenizer_fingerprint"],
                      step=int(data["step"]), reused=True, build_s=float(data.get("build_s", 0.0)),
                      losses=data.get("losses", {}))


def _build(directory: Path, key: str, seed: int) -> DemoAssets:
    from pipeline import distill
    from pipeline.checkpoint import arch_hash, atomic_write, save_checkpoint

    started = time.perf_counter()
    tok = text_tokenizer.train_tokenizer(vocab_size=DEMO_STUDENT.vocab_size)
    cfg = dataclasses.replace(DEMO_STUDENT, vocab_size=tok.get_vocab_size())
    result = distill.distill(token_stream(tok), cfg, eos_id=special_id(tok, text_tokenizer.EOS),
                             seed=seed, cfg=DEMO_DISTILL)
    fp = text_tokenizer.fingerprint(tok)
    tok_path = text_tokenizer.save_tokenizer(tok, directory / TOKENIZER_NAME)
    ckpt_path = save_checkpoint(directory / CHECKPOINT_NAME, result.student, step=result.steps,
                                tokenizer_fingerprint=fp)
    assets = DemoAssets(directory=directory, checkpoint=ckpt_path, tokenizer=tok_path,
                        arch=cfg.model_arch, arch_hash=arch_hash(result.student.state_dict()),
                        tokenizer_fingerprint=fp, step=result.steps,
                        build_s=time.perf_counter() - started,
                        losses={"teacher": result.teacher_loss, "student": result.student_loss})
    manifest = {"key": key, "seed": seed, "arch": dict(assets.arch), "arch_hash": assets.arch_hash,
                "tokenizer_fingerprint": fp, "step": assets.step, "build_s": round(assets.build_s, 3),
                "losses": dict(assets.losses)}
    atomic_write(directory / MANIFEST_NAME,
                 lambda tmp: tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True)))
    return assets


def build_demo_assets(work_dir: Path, seed: int = 0) -> DemoAssets:
    """Build the demo checkpoint and tokenizer under work_dir, or reuse a cached build."""
    key = cache_key(seed)
    directory = Path(work_dir) / f"demo-{key[:16]}"
    cached = _from_manifest(directory, key)
    if cached is not None:
        return cached
    directory.mkdir(parents=True, exist_ok=True)
    return _build(directory, key, seed)
