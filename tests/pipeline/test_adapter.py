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


# -- the worked example: a tiny HF Llama as a user's model ------------------------

@pytest.fixture(scope="module")
def llama():
    pytest.importorskip("transformers")
    root = Path(__file__).resolve().parents[2]
    return load_adapter({"adapter": "examples.hf_llama_adapter:build"}, root)


@pytest.mark.heavy
def test_hf_llama_example_decodes_like_it_prefills(llama) -> None:
    x = torch.randint(0, 512, (2, 9), dtype=torch.int32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = llama.prefill_module()(x)
        caches = llama.prefill_module()(x[:, :4])[1:]
        decode = llama.decode_module()
        for pos in range(4, 9):
            out = decode(x[:, pos:pos + 1], torch.tensor([pos], dtype=torch.int32), *caches)
            caches = out[1:]
            assert torch.allclose(out[0][:, 0], full[0][:, pos], atol=1e-5)
    assert llama.prefill_output_names() == ("logits", "k_cache_0", "v_cache_0", "k_cache_1", "v_cache_1")
    assert caches[0].shape == (2, 4, 9, 16)


@pytest.mark.heavy
def test_hf_llama_example_passes_the_model_gates(llama, tmp_path: Path) -> None:
    from gates.engine.protocol import GateContext
    from gates.engine.spec import ModelSpec, ProjectSpec
    from gates.model import checkpoint, semantics, tokenizer
    from gates.result import Status
    from tests.fixtures.models import REPO_ROOT, demo

    spec = ModelSpec(adapter="examples.hf_llama_adapter:build", tokenizer=demo().tokenizer)
    for gate, settings in ((semantics.SemanticsGate(), semantics.Settings()),
                           (tokenizer.TokenizerGate(), tokenizer.Settings())):
        ctx = GateContext(spec=ProjectSpec(name="llama", root=REPO_ROOT, model=spec),
                          settings=settings, work_dir=tmp_path)
        result = gate.check(ctx)
        assert result.status is Status.PASS, (gate.name, result.summary)
    # Without a checkpoint file, "loads safely" cannot be shown: a warning, never a pass.
    ctx = GateContext(spec=ProjectSpec(name="llama", root=REPO_ROOT, model=spec),
                      settings=checkpoint.Settings(), work_dir=tmp_path)
    result = checkpoint.CheckpointGate().check(ctx)
    assert result.status is Status.WARN, result.summary
    assert result.metrics["checks_ok"] == result.metrics["checks"] == 3


@pytest.mark.heavy
def test_hf_llama_example_exports_and_converts_to_core_ml(llama) -> None:
    ct = pytest.importorskip("coremltools")
    import numpy as np
    from torch.export import Dim, export

    x = torch.randint(0, 512, (1, 16), dtype=torch.int32)
    program = export(llama.prefill_module(), (x,), dynamic_shapes=({1: Dim("T", min=2, max=512)},))
    assert program.module()(x[:, :7])[0].shape == (1, 7, 512)
    cache = Dim("cache", min=2, max=600)
    example = (x[:, :1], torch.tensor([3], dtype=torch.int32), *(torch.randn(1, 4, 3, 16) for _ in range(4)))
    export(llama.decode_module(), example,
           dynamic_shapes={"input_ids": None, "position": None,
                           **{n: {2: cache} for n in llama.decode_input_names()[2:]}})
    fixed = export(llama.prefill_module(), (x,)).run_decompositions({})
    model = ct.convert(fixed, inputs=[ct.TensorType(name="input_ids", shape=(1, 16), dtype=np.int32)],
                       outputs=[ct.TensorType(name=n) for n in llama.prefill_output_names()],
                       convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                       compute_precision=ct.precision.FLOAT32)
    assert [o.name for o in model.get_spec().description.output] == list(llama.prefill_output_names())
