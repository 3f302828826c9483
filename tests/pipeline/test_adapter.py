"""load_adapter: the bundled student, user callables, and clear errors."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
import torch

from pipeline.adapter import AdapterError, ModelAdapter, ModuleAdapter, StudentAdapter, load_adapter
from pipeline.checkpoint import save_checkpoint
from pipeline.student import Student, StudentConfig

CFG = StudentConfig(vocab_size=50, max_seq_len=32)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adapter_project")
    torch.manual_seed(0)
    save_checkpoint(root / "ckpt" / "model.safetensors", Student(CFG), step=5)
    (root / "usermodels_adapter_test.py").write_text(textwrap.dedent("""
        from pipeline.student import Student, StudentConfig
        from pipeline.adapter import ModuleAdapter
        SEEN = {}
        def build(checkpoint=None):
            SEEN["checkpoint"] = checkpoint
            return Student(StudentConfig(vocab_size=30, max_seq_len=16, halt_head=False))
        def build_adapter(**kwargs):
            SEEN.update(kwargs)
            return ModuleAdapter(Student(StudentConfig(vocab_size=30, max_seq_len=16)))
        def build_nothing():
            return 42
        def build_broken():
            raise RuntimeError("weights missing")
        NOT_CALLABLE = 3
    """))
    return root


def test_builtin_student_loads_from_a_relative_checkpoint(project: Path) -> None:
    adapter = load_adapter({"adapter": "builtin:student", "checkpoint": "ckpt/model.safetensors"}, project)
    assert isinstance(adapter, StudentAdapter)
    assert isinstance(adapter, ModelAdapter)
    assert (adapter.n_layers, adapter.n_kv_heads, adapter.d_head, adapter.vocab_size) == (2, 2, 16, 50)
    assert adapter.has_halt_head and adapter.arch == CFG.model_arch
    assert not adapter.module.training


def test_names_follow_the_interface(project: Path) -> None:
    adapter = load_adapter({"checkpoint": "ckpt/model.safetensors"}, project)
    assert adapter.prefill_output_names() == ("logits", "halt_logits", "k_cache_0", "v_cache_0",
                                              "k_cache_1", "v_cache_1")
    assert adapter.decode_input_names() == ("input_ids", "position", "k_cache_0", "v_cache_0",
                                            "k_cache_1", "v_cache_1")
    assert adapter.decode_output_names() == ("logits", "k_cache_0_out", "v_cache_0_out",
                                             "k_cache_1_out", "v_cache_1_out")


def test_decode_module_forward_names_every_input(project: Path) -> None:
    adapter = load_adapter({"checkpoint": "ckpt/model.safetensors"}, project)
    params = tuple(inspect.signature(adapter.decode_module().forward).parameters)
    assert params == adapter.decode_input_names()


def test_entry_modules_match_the_model(project: Path) -> None:
    adapter = load_adapter({"checkpoint": "ckpt/model.safetensors"}, project)
    x = torch.randint(0, 50, (1, 5), dtype=torch.int32)
    with torch.no_grad():
        out = adapter.prefill_module()(x)
        assert torch.equal(out[0], adapter.module.prefill(x)[0])
        dec = adapter.decode_module()(x[:, :1], torch.tensor([5], dtype=torch.int32), *out[2:])
    assert len(dec) == len(adapter.decode_output_names())
    assert dec[1].shape == (1, 2, 6, 16)


def test_builtin_student_without_checkpoint_is_an_adapter_error(project: Path) -> None:
    with pytest.raises(AdapterError, match="needs a checkpoint"):
        load_adapter({"adapter": "builtin:student"}, project)


def test_missing_checkpoint_file_is_named(project: Path) -> None:
    with pytest.raises(AdapterError, match="nope.safetensors"):
        load_adapter({"checkpoint": "nope.safetensors"}, project)


def test_user_callable_returning_a_module_is_wrapped(project: Path) -> None:
    adapter = load_adapter({"adapter": "usermodels_adapter_test:build", "checkpoint": "w.bin"}, project)
    assert isinstance(adapter, ModuleAdapter)
    assert adapter.vocab_size == 30 and not adapter.has_halt_head
    assert adapter.prefill_output_names()[0:2] == ("logits", "k_cache_0")
    import usermodels_adapter_test as user  # type: ignore[import-not-found]
    assert user.SEEN["checkpoint"] == project / "w.bin"


def test_user_callable_returning_an_adapter_is_used_as_is(project: Path) -> None:
    adapter = load_adapter({"adapter": "usermodels_adapter_test:build_adapter"}, project)
    assert adapter.vocab_size == 30 and adapter.has_halt_head


@pytest.mark.parametrize(("target", "message"), [
    ("no_such_module_xyz:build", "cannot import 'no_such_module_xyz'"),
    ("usermodels_adapter_test:absent", "has no callable 'absent'"),
    ("usermodels_adapter_test:NOT_CALLABLE", "has no callable 'NOT_CALLABLE'"),
    ("usermodels_adapter_test", "not of the form"),
    ("usermodels_adapter_test:build_nothing", "returned int"),
    ("usermodels_adapter_test:build_broken", "raised RuntimeError: weights missing"),
    ("builtin:teacher", "unknown builtin model"),
])
def test_bad_adapter_specs_raise_a_clear_adapter_error(project: Path, target: str, message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        load_adapter({"adapter": target}, project)


def test_module_without_arch_fields_is_refused() -> None:
    class Bare(torch.nn.Module):
        arch = {"vocab_size": 3}

        def prefill(self, x):  # pragma: no cover - never called
            return (x,)

        def decode(self, x, p, *c):  # pragma: no cover - never called
            return (x,)

    with pytest.raises(AdapterError, match="n_layers, n_kv_heads, d_head"):
        ModuleAdapter(Bare())


# -- the documented custom callable: one callable, variants from [model.args] -------
# (it ships through `readiness assess` in tests/test_docs_snippets.py)

def test_documented_example_builds_each_variant_it_is_asked_for() -> None:
    pytest.importorskip("transformers")
    root = Path(__file__).resolve().parents[2]
    gqa = load_adapter({"adapter": "examples.hf_llama_adapter:build", "args": {"variant": "gqa"}}, root)
    mha = load_adapter({"adapter": "examples.hf_llama_adapter:build", "args": {"variant": "mha", "seed": 1}}, root)
    assert (gqa.n_kv_heads, mha.n_kv_heads, gqa.n_layers, gqa.vocab_size) == (2, 4, 2, 512)
    with pytest.raises(AdapterError, match="raised ValueError: variant 'moe' is not one of gqa, mha"):
        load_adapter({"adapter": "examples.hf_llama_adapter:build", "args": {"variant": "moe"}}, root)


# -- [model.args]: keyword arguments for a user's callable -------------------------

def test_model_args_reach_the_callable_as_keywords(project: Path) -> None:
    (project / "usermodels_args_test.py").write_text(textwrap.dedent("""
        from pipeline.student import Student, StudentConfig
        def build(vocab_size, halt_head=True, checkpoint=None):
            return Student(StudentConfig(vocab_size=vocab_size, max_seq_len=16, halt_head=halt_head))
    """))
    adapter = load_adapter({"adapter": "usermodels_args_test:build",
                            "args": {"vocab_size": 40, "halt_head": False}}, project)
    assert adapter.vocab_size == 40 and not adapter.has_halt_head
    other = load_adapter({"adapter": "usermodels_args_test:build", "args": {"vocab_size": 24}}, project)
    assert other.vocab_size == 24 and other.has_halt_head  # one callable, two variants


def test_a_model_arg_the_callable_does_not_take_is_named(project: Path) -> None:
    with pytest.raises(AdapterError, match=r"model.args variant not accepted by build\(checkpoint\)"):
        load_adapter({"adapter": "usermodels_adapter_test:build", "args": {"variant": "x"}}, project)
