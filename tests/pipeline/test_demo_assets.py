"""The demo build: consistent files, reused from the cache, deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.adapter import load_adapter
from pipeline.checkpoint import read_checkpoint
from pipeline.demo_assets import MANIFEST_NAME, build_demo_assets, cache_key
from pipeline.text_tokenizer import fingerprint, load_tokenizer
from tests.fixtures.models import demo
from tests.fixtures.processes import HANG_GUARD_S


@pytest.fixture(scope="module")
def assets():
    return demo()


def test_model_vocabulary_equals_the_tokenizer_size(assets) -> None:
    tok = load_tokenizer(assets.tokenizer)
    assert assets.arch["vocab_size"] == tok.get_vocab_size() == 512


def test_checkpoint_records_the_tokenizer_fingerprint_and_hash(assets) -> None:
    ckpt = read_checkpoint(assets.checkpoint)
    assert ckpt.tokenizer_fingerprint == fingerprint(load_tokenizer(assets.tokenizer))
    assert ckpt.arch_hash == assets.arch_hash
    assert ckpt.model_arch == assets.arch and ckpt.step == assets.step > 0


def test_demo_model_is_the_documented_tiny_student(assets) -> None:
    arch = assets.arch
    assert (arch["d_model"], arch["n_layers"], arch["n_heads"], arch["n_kv_heads"]) == (64, 2, 4, 2)
    assert arch["max_seq_len"] == 640 and arch["halt_head"] is True


def test_demo_model_learned_something(assets) -> None:
    assert assets.losses["student"] < 3.0  # uniform guessing over 512 tokens costs ln(512) = 6.2


def test_second_build_reuses_the_cache(assets) -> None:
    again = build_demo_assets(assets.directory.parent, seed=0)
    assert again.reused and again.checkpoint == assets.checkpoint


def test_loads_through_the_builtin_adapter(assets) -> None:
    adapter = load_adapter({"adapter": "builtin:student", "checkpoint": assets.checkpoint}, Path("."))
    assert adapter.vocab_size == 512


def test_cache_key_depends_on_the_seed() -> None:
    assert cache_key(0) != cache_key(1)


@pytest.mark.heavy
def test_a_build_without_manifest_is_rebuilt(assets, tmp_path: Path) -> None:
    # Copy the build but drop its manifest: it must not be trusted.
    key = cache_key(0)
    target = tmp_path / f"demo-{key[:16]}"
    target.mkdir()
    (target / "student.safetensors").write_bytes(b"half-written")
    (target / "tokenizer.json").write_bytes(assets.tokenizer.read_bytes())
    rebuilt = build_demo_assets(tmp_path, seed=0)
    assert not rebuilt.reused
    assert rebuilt.checkpoint.read_bytes() == assets.checkpoint.read_bytes()  # deterministic
    assert json.loads((target / MANIFEST_NAME).read_text())["key"] == key


def test_reusing_a_cached_build_never_imports_torch(assets) -> None:
    import subprocess
    import sys

    work = assets.directory.parent
    code = ("import sys; from pathlib import Path; from pipeline.demo_assets import build_demo_assets; "
            f"a = build_demo_assets(Path({str(work)!r})); print(a.reused, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD_S,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split() == ["True", "False"], done.stderr[-2000:]
