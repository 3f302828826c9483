"""Eager checks of a module model before anything is exported: does it run, and run sanely?

    >>> forward(model)           # Observation: the default shape runs, every output named and finite
    >>> determinism(model)       # the same input twice gives the same outputs
    >>> batch_independence(model)  # each row of a batch comes out as it does on its own

Two defects that no conversion check can see start here. A dropout left
active at inference (`F.dropout`'s `training=True` default, a module that
ignores `eval()`) makes the same input give different outputs; the ATen
ops that drew random numbers are recorded while the model runs, with the
submodule that ran them, so the finding names them. An output that depends
on the batch (statistics over the batch axis, a BatchNorm stuck in training
mode, a size hard-coded from the batch) changes a row's output when its
companions change: the largest declared batch is compared row by row with
the same rows run at the smallest declared batch. Each check returns an
`Observation`; `ok` is None when the check could not apply (with the
reason in `detail`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from torch.utils._python_dispatch import TorchDispatchMode

from pipeline.module_inputs import random_inputs
from pipeline.module_io import ShapeCase

RANDOM_OPS = ("dropout", "bernoulli", "rand", "normal", "uniform", "multinomial", "exponential",
              "geometric", "cauchy", "log_normal")
REL_TOL = 1e-5  # of each output's magnitude: batched kernels may sum in another order


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One check's outcome: `ok` None when it could not apply."""

    ok: bool | None
    detail: str
    max_abs_err: float | None = None


class _RandomOps(TorchDispatchMode):
    """Records ATen ops that draw random numbers, with the submodule running at the time."""

    def __init__(self, stack: list[str]) -> None:
        super().__init__()
        self.stack = stack
        self.seen: dict[str, str] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket.__name__)
        if any(word in name for word in RANDOM_OPS) and _draws(name, args, kwargs or {}):
            self.seen.setdefault(f"aten.{name}", self.stack[-1] if self.stack else "")
        return func(*args, **(kwargs or {}))


def _draws(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether the op draws random numbers: a dropout in eval mode (train=False, or p=0) does not."""
    if "dropout" not in name:
        return True
    train = args[2] if len(args) > 2 else kwargs.get("train", True)
    p = args[1] if len(args) > 1 else kwargs.get("p", 0.5)
    return bool(train) and bool(p)


def _run(model: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return model.run(inputs)


def _with_random_ops(model: Any, inputs: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    stack: list[str] = []
    names = {m: n or type(m).__name__ for n, m in model.module.named_modules()}

    def leave(*_: Any) -> None:  # a forward hook's return value would replace the output
        stack.pop()

    hooks = [m.register_forward_pre_hook(lambda mod, _args, n=n: stack.append(n)) for m, n in names.items()]
    hooks += [m.register_forward_hook(leave) for m in names]
    mode = _RandomOps(stack)
    try:
        with mode:
            out = _run(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return out, mode.seen


def _max_diff(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> tuple[float, str]:
    worst, where = 0.0, ""
    for name in a:
        diff = float(np.abs(a[name].astype(np.float64) - b[name].astype(np.float64)).max()) if a[name].size else 0.0
        if not diff <= worst:
            worst, where = diff, name
    return worst, where


def forward(model: Any, seed: int = 0) -> Observation:
    """The default shape runs; every named output is there and finite."""
    case = model.io.default_case()
    try:
        out = _run(model, random_inputs(model.io, case, seed, salt=3))
    except Exception as exc:  # the model's own code failed: that is the finding
        return Observation(ok=False, detail=f"{case.label}: the module raised {type(exc).__name__}: {exc}")
    bad = [n for n, v in out.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:
        return Observation(ok=False, detail=f"{case.label}: {', '.join(bad)} hold NaN or Inf")
    shapes = ", ".join(f"{n} {list(v.shape)}" for n, v in out.items())
    return Observation(ok=True, detail=f"{case.label}: {shapes}, all finite")


def determinism(model: Any, seed: int = 0) -> Observation:
    """Two runs on one input agree exactly; if not, name the random ops that ran."""
    inputs = random_inputs(model.io, model.io.default_case(), seed, salt=4)
    first, seen = _with_random_ops(model, inputs)
    second = _run(model, inputs)
    diff, where = _max_diff(first, second)
    if diff == 0.0 and not seen:
        return Observation(ok=True, detail="the same input twice gives identical outputs", max_abs_err=0.0)
    ops = ", ".join(f"{op} in {module!r}" for op, module in seen.items()) or "none recorded"
    what = f"the same input twice gives outputs differing by up to {diff:.3g} ({where})" if diff else \
        "the outputs agreed this time, but random numbers were drawn"
    return Observation(ok=False, detail=f"{what}: randomness at inference ({ops}); a dropout left active?",
                       max_abs_err=diff)


def batch_independence(model: Any, seed: int = 0) -> Observation:
    """The largest declared batch, row by row, against the same rows at the smallest batch."""
    io = model.io
    batch = io.batch
    if batch is None:
        return Observation(ok=None, detail=f"no batch dimension {io.batch_dim!r} is declared")
    small, large = batch.span
    if small == large:
        return Observation(ok=None, detail=f"the batch dimension {io.batch_dim!r} takes one size ({small})")
    leading = [i.name for i in io.inputs if i.shape[0] != io.batch_dim and io.batch_dim in i.dim_names]
    if leading:
        return Observation(ok=None, detail=f"inputs {leading} carry the batch on another axis than the first")
    env = {**io.default_case().env, io.batch_dim: large}
    inputs = random_inputs(io, ShapeCase(env=env), seed, salt=5)
    whole = _run(model, inputs)
    worst, where = 0.0, ""
    for start in range(0, large - small + 1, small):
        part = _run(model, {k: v[start:start + small] if i.shape[0] == io.batch_dim else v
                            for (k, v), i in zip(inputs.items(), io.inputs)})
        for name, value in part.items():
            if whole[name].shape[:1] != (large,):
                return Observation(ok=None, detail=f"output {name} has shape {list(whole[name].shape)}: "
                                                   f"no batch axis first")
            ref: np.ndarray = whole[name][start:start + small].astype(np.float64)
            diff = float(np.abs(ref - value.astype(np.float64)).max()) if value.size else 0.0
            scale = max(1.0, float(np.abs(ref).max()) if ref.size else 0.0)
            if diff / scale > worst:
                worst, where = diff / scale, name
    if worst > REL_TOL:
        return Observation(ok=False, max_abs_err=worst,
                           detail=f"rows of a batch of {large} differ from the same rows run as a batch of "
                                  f"{small} by up to {worst:.3g} ({where}, relative): the output depends on "
                                  "the batch it is in")
    return Observation(ok=True, max_abs_err=worst,
                       detail=f"a batch of {large} equals its rows run as batches of {small} (within {REL_TOL:g})")
