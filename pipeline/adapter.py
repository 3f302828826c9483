"""How any model plugs in: the `ModelAdapter` that export and parity program against.

An adapter exposes a model's two entry points as separate `nn.Module`s whose
`forward` takes and returns flat tensors, so each can be exported on its own:

    >>> adapter = load_adapter({"adapter": "builtin:student", "checkpoint": "demo.safetensors"}, root)
    >>> adapter.prefill_output_names()
    ('logits', 'halt_logits', 'k_cache_0', 'v_cache_0', 'k_cache_1', 'v_cache_1')
    >>> adapter.decode_input_names()
    ('input_ids', 'position', 'k_cache_0', 'v_cache_0', 'k_cache_1', 'v_cache_1')

A model spec's `adapter` is `builtin:student` (the bundled student, loaded
from a safetensors checkpoint with its hash checked), `hf:<folder>` (a local
Hugging Face checkpoint folder, see `pipeline.hf`) or `pkg.module:callable`.
The callable is called with the keyword arguments it accepts among
`checkpoint`, `tokenizer` and `root`, plus the spec's `args` (`[model.args]`
in the configuration: every one of them, a name it does not accept is an
error), and returns either an object that
already satisfies `ModelAdapter`, or an `nn.Module` with an `arch` dict and
methods `prefill(input_ids)` and `decode(input_ids, position, *caches)` that
follow the student's conventions (see docs/model-interface.md). The
decode entry module gets a generated `forward` with one named parameter per
cache tensor, so exported programs carry the contract's input names.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

import torch
from torch import nn

REQUIRED_ARCH = ("vocab_size", "n_layers", "n_kv_heads", "d_head")
ADAPTER_ATTRS = ("arch", "n_layers", "n_kv_heads", "d_head", "vocab_size", "has_halt_head",
                 "module", "prefill_module", "decode_module", "prefill_output_names",
                 "decode_input_names", "decode_output_names")


class AdapterError(Exception):
    """The model could not be plugged in; the message says which spec and why."""


@runtime_checkable
class ModelAdapter(Protocol):
    arch: dict
    n_layers: int
    n_kv_heads: int
    d_head: int
    vocab_size: int
    has_halt_head: bool
    module: nn.Module

    def prefill_module(self) -> nn.Module: ...
    def decode_module(self) -> nn.Module: ...
    def prefill_output_names(self) -> tuple[str, ...]: ...
    def decode_input_names(self) -> tuple[str, ...]: ...
    def decode_output_names(self) -> tuple[str, ...]: ...


def cache_names(n_layers: int, suffix: str = "") -> tuple[str, ...]:
    return tuple(f"{kind}_cache_{i}{suffix}" for i in range(n_layers) for kind in ("k", "v"))


class PrefillEntry(nn.Module):
    """forward(input_ids) -> model.prefill(input_ids)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.prefill(input_ids))


@functools.lru_cache(maxsize=None)
def decode_entry_class(n_layers: int) -> type[nn.Module]:
    """A module class whose forward names every cache input (input_ids, position, k_cache_0, ...)."""
    names = cache_names(n_layers)
    params = ", ".join(names)
    source = (f"def forward(self, input_ids, position, {params}):\n"
              f"    return tuple(self.model.decode(input_ids, position, {params}))\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<decode_entry_{n_layers}>", "exec"), namespace)  # names only, no input

    def __init__(self: nn.Module, model: nn.Module) -> None:
        nn.Module.__init__(self)
        self.model = model

    return type(f"DecodeEntry{n_layers}", (nn.Module,),
                {"__init__": __init__, "forward": namespace["forward"],
                 "__doc__": "forward(input_ids, position, k_cache_0, v_cache_0, ...) -> model.decode(...)"})


class ModuleAdapter:
    """An adapter over any module with `arch`, `prefill` and `decode`."""

    def __init__(self, module: nn.Module, arch: Mapping[str, Any] | None = None) -> None:
        arch = dict(arch if arch is not None else getattr(module, "arch", None)
                    or getattr(module, "model_arch", None) or {})
        missing = [key for key in REQUIRED_ARCH if key not in arch]
        if missing:
            raise AdapterError(f"model {type(module).__name__} has no arch fields {', '.join(missing)}")
        for method in ("prefill", "decode"):
            if not callable(getattr(module, method, None)):
                raise AdapterError(f"model {type(module).__name__} has no {method}() method")
        self.module = module.float().eval()
        self.arch = arch
        self.n_layers = int(arch["n_layers"])
        self.n_kv_heads = int(arch["n_kv_heads"])
        self.d_head = int(arch["d_head"])
        self.vocab_size = int(arch["vocab_size"])
        self.has_halt_head = bool(arch.get("halt_head", False))

    def prefill_module(self) -> nn.Module:
        return PrefillEntry(self.module).eval()

    def decode_module(self) -> nn.Module:
        return decode_entry_class(self.n_layers)(self.module).eval()

    def prefill_output_names(self) -> tuple[str, ...]:
        heads = ("logits", "halt_logits") if self.has_halt_head else ("logits",)
        return heads + cache_names(self.n_layers)

    def decode_input_names(self) -> tuple[str, ...]:
        return ("input_ids", "position") + cache_names(self.n_layers)

    def decode_output_names(self) -> tuple[str, ...]:
        return ("logits",) + cache_names(self.n_layers, "_out")


class StudentAdapter(ModuleAdapter):
    """The bundled student, loaded from a checked checkpoint."""

    def __init__(self, module: nn.Module, checkpoint: Path | None = None) -> None:
        super().__init__(module)
        self.checkpoint = checkpoint

    @classmethod
    def from_checkpoint(cls, path: Path, student_cls: type | None = None) -> StudentAdapter:
        from pipeline.checkpoint import CheckpointError, load_student
        from pipeline.student import Student

        try:
            return cls(load_student(Path(path), student_cls or Student), Path(path))
        except CheckpointError as exc:
            raise AdapterError(str(exc)) from None


def _field(spec: Any, name: str) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(name)
    return getattr(spec, name, None)


def _resolve(path: Any, root: Path) -> Path | None:
    if path in (None, ""):
        return None
    path = Path(path)
    return path if path.is_absolute() else Path(root) / path


def _import_callable(target: str, root: Path) -> Any:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise AdapterError(f"model adapter {target!r} is not of the form 'pkg.module:callable'")
    root_str = str(Path(root).resolve())
    if root_str not in sys.path:
        sys.path.insert(0, root_str)  # the user's model lives in the assessed project
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterError(f"model adapter {target!r}: cannot import {module_name!r} ({exc})") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise AdapterError(f"model adapter {target!r}: {module_name} has no callable {attr!r}")
    return fn


def _call_user(fn: Any, target: str, offered: Mapping[str, Any], args: Mapping[str, Any] | None = None) -> Any:
    """Call with the offered keywords it accepts, and every configured arg (which it must accept)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    args = dict(args or {})
    refused = sorted(k for k in args if not takes_any and k not in params)
    if refused:
        accepted = [n for n, p in params.items()
                    if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
        raise AdapterError(f"model adapter {target!r}: model.args {', '.join(refused)} not accepted by "
                           f"{getattr(fn, '__name__', target)}({', '.join(accepted)})")
    kwargs = {k: v for k, v in offered.items() if (takes_any or k in params) and k not in args}
    return fn(**kwargs, **args)


def as_adapter(obj: Any, target: str = "model") -> ModelAdapter:
    """Accept a ready adapter, or wrap a conforming nn.Module."""
    if all(hasattr(obj, attr) for attr in ADAPTER_ATTRS):
        return obj
    if isinstance(obj, nn.Module):
        return ModuleAdapter(obj)
    raise AdapterError(f"model adapter {target!r} returned {type(obj).__name__}, "
                       "neither an nn.Module nor an adapter")


def load_adapter(spec: Any, root: Path) -> ModelAdapter:
    """The adapter a model spec (gates.engine.spec.ModelSpec or a mapping) names."""
    target = str(_field(spec, "adapter") or "builtin:student")
    checkpoint = _resolve(_field(spec, "checkpoint"), root)
    tokenizer = _resolve(_field(spec, "tokenizer"), root)
    if target == "builtin:student":
        if checkpoint is None:
            raise AdapterError("model adapter 'builtin:student' needs a checkpoint path")
        return StudentAdapter.from_checkpoint(checkpoint)
    if target.startswith("builtin:"):
        raise AdapterError(f"unknown builtin model {target!r} (known: builtin:student)")
    args = _field(spec, "args") or {}
    if target.startswith("hf:"):
        from pipeline.hf.loading import load_hf_adapter

        return load_hf_adapter(target, root, args)
    fn = _import_callable(target, root)
    try:
        obj = _call_user(fn, target, {"checkpoint": checkpoint, "tokenizer": tokenizer, "root": Path(root)}, args)
    except AdapterError:
        raise
    except Exception as exc:
        raise AdapterError(f"model adapter {target!r} raised {type(exc).__name__}: {exc}") from exc
    return as_adapter(obj, target)
