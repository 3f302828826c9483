"""A `kind = "module"` model: any nn.Module, with its declared inputs and named outputs.

    >>> model = load_module_model(spec, root)    # spec: adapter, checkpoint, module_io
    >>> model.output_names
    ('position', 'uncertainty')
    >>> model.entry()(spectrogram)                # flat tuple in output_names order

`build_module` is the one place an adapter string becomes a module:
`hf:<folder>` loads a Hugging Face folder (`pipeline.hf.module`); anything
else is `pkg.module:callable`, called with `[model.args]` (the spec's
`args`, each of which it must accept) and the keyword arguments it accepts
among `checkpoint` and `root`, returning an `nn.Module`. An `hf:` module
takes no args.

Inputs are passed by name when the module's `forward` takes parameters of
those names (or `**kwargs`), else by position in declared order. Outputs
are named, in this order of preference, by the configuration
(`[[model.outputs]]`), by an `output_names` attribute of the module, or by
the keys of a mapping the module returns (a Hugging Face ModelOutput); a
single tensor is `output`. Several unnamed outputs are refused: a package
would otherwise expose names the converter made up.

`entry()` wraps the module in a module whose `forward` has one named
parameter per input and returns a flat tuple, so exported programs, Core ML
packages and ONNX models carry the declared names.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from pipeline.adapter import AdapterError, _call_user, _import_callable
from pipeline.module_inputs import model_inputs, random_inputs
from pipeline.module_io import ModuleIO


@dataclass(frozen=True, kw_only=True)
class ModuleModel:
    """A loaded module model and everything the gates need to drive it."""

    module: nn.Module
    io: ModuleIO
    output_names: tuple[str, ...]
    arch: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    by_name: bool = True  # inputs passed as keyword arguments

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.io.inputs)

    def entry(self) -> nn.Module:
        """forward(<each input by name>) -> tuple of outputs in `output_names` order."""
        return _entry_class(self.input_names)(self.module, self.output_names, self.by_name).eval()

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Eager outputs by name on package-domain inputs (images as pixels)."""
        feed = model_inputs(self.io, inputs)
        args = [torch.from_numpy(np.ascontiguousarray(feed[n])) for n in self.input_names]
        with torch.inference_mode():
            outs = self.entry()(*args)
        return {n: t.detach().float().numpy() for n, t in zip(self.output_names, outs)}


def _flatten(out: Any, names: Sequence[str]) -> tuple[torch.Tensor, ...]:
    if isinstance(out, Mapping):
        return tuple(out[n] for n in names)
    if isinstance(out, (tuple, list)):
        return tuple(out)
    return (out,)


class _EntryBase(nn.Module):
    def __init__(self, model: nn.Module, names: Sequence[str], by_name: bool) -> None:
        super().__init__()
        self.model = model
        self.names = tuple(names)
        self.by_name = by_name

    def call(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        out = self.model(**inputs) if self.by_name else self.model(*inputs.values())
        return _flatten(out, self.names)


_ENTRIES: dict[tuple[str, ...], type] = {}


def _entry_class(input_names: tuple[str, ...]) -> type:
    """A module class whose forward names every input (declared names are identifiers)."""
    if input_names not in _ENTRIES:
        params = ", ".join(input_names)
        items = ", ".join(f"{n!r}: {n}" for n in input_names)
        source = f"def forward(self, {params}):\n    return self.call({{{items}}})\n"
        namespace: dict[str, Any] = {}
        exec(compile(source, "<module_entry>", "exec"), namespace)  # identifiers only, checked at load
        _ENTRIES[input_names] = type("ModuleEntry", (_EntryBase,), {"forward": namespace["forward"]})
    return _ENTRIES[input_names]


def build_module(target: str, root: Path, checkpoint: Path | None,
                 args: Mapping[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The dispatch point: an adapter string -> (nn.Module, architecture fields)."""
    if target.startswith("hf:"):
        from pipeline.hf.module import load_hf_module

        if args:
            raise AdapterError(f"model adapter {target!r}: model.args {', '.join(sorted(args))}: "
                               'an hf: folder of kind = "module" takes no model.args')
        return load_hf_module(target, root)
    if target.startswith("builtin:"):
        raise AdapterError(f"model adapter {target!r} is a decoder; kind = \"module\" takes "
                           "'pkg.module:callable' or 'hf:<folder>'")
    fn = _import_callable(target, root)
    try:
        obj = _call_user(fn, target, {"checkpoint": checkpoint, "root": Path(root)}, args)
    except AdapterError:
        raise
    except Exception as exc:
        raise AdapterError(f"model adapter {target!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, nn.Module):
        raise AdapterError(f"model adapter {target!r} returned {type(obj).__name__}, not an nn.Module")
    return obj, dict(getattr(obj, "arch", None) or {})


def _takes_names(module: nn.Module, names: Sequence[str]) -> bool:
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return all(n in params for n in names)


def name_outputs(out: Any, io: ModuleIO, module: nn.Module, target: str) -> tuple[str, ...]:
    """The output names (see the module docstring); AdapterError when they cannot be known."""
    declared = tuple(o.name for o in io.outputs)
    own = tuple(getattr(module, "output_names", None) or ())
    if isinstance(out, Mapping):
        keys = tuple(k for k, v in out.items() if isinstance(v, torch.Tensor))
        missing = [n for n in declared if n not in keys]
        if missing:
            raise AdapterError(f"model adapter {target!r}: declared outputs {missing} are not among the "
                               f"module's outputs {list(keys)}")
        return declared or keys
    count = len(out) if isinstance(out, (tuple, list)) else 1
    names = declared or own or (("output",) if count == 1 else ())
    if not names:
        raise AdapterError(f"model adapter {target!r}: the module returns {count} unnamed outputs; name "
                           "them with [[model.outputs]] or an `output_names` attribute of the module")
    if len(names) != count:
        raise AdapterError(f"model adapter {target!r}: the module returns {count} outputs but "
                           f"{len(names)} are named ({', '.join(names)})")
    return names


def load_module_model(spec: Any, root: Path) -> ModuleModel:
    """Build the module, name its outputs from one eager run at the default shape."""
    io: ModuleIO = spec.module_io
    target = str(spec.adapter)
    checkpoint = Path(spec.checkpoint) if spec.checkpoint else None
    module, arch = build_module(target, root, checkpoint, getattr(spec, "args", None))
    module = module.float().eval()
    by_name = _takes_names(module, [i.name for i in io.inputs])
    feed = model_inputs(io, random_inputs(io, io.default_case(), seed=0, salt=99))
    tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
    try:
        with torch.inference_mode():
            out = module(**tensors) if by_name else module(*tensors.values())
    except Exception as exc:
        raise AdapterError(f"model adapter {target!r}: the module failed on inputs of the declared shapes "
                           f"({io.default_case().label}): {type(exc).__name__}: {exc}") from exc
    names = name_outputs(out, io, module, target)
    arch = {"class": f"{type(module).__module__}.{type(module).__qualname__}",
            "parameters": sum(p.numel() for p in module.parameters()), **arch}
    return ModuleModel(module=module, io=io, output_names=names, arch=arch, source=target, by_name=by_name)
