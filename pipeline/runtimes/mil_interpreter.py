"""A reference interpreter that runs a Core ML ML Program on Linux.

Core ML's `predict` exists only on macOS. The program inside a `.mlpackage`
is plain MIL, and coremltools' pyMIL objects know how to compute most of their
own values (`value_inference()`, used for constant folding). So:

    >>> interp = MilInterpreter.load("student_fp16.mlpackage")   # once
    >>> interp.run({"input_ids": ids})["logits"].shape             # many times
    (1, 64, 512)

`load` rebuilds the program with coremltools' milproto loader, evaluates
every `const` once and plans each op. `run` checks each input against the
package's enumerated or ranged shapes, then evaluates the ops in program
order on a fresh value table, dropping each value after the last op that
reads it (a run holds the live activations, not every op's output). Hot
ops run a numpy kernel on input values (`mil_fast`); any other op goes through coremltools' `value_inference()`:
its input vars are given the concrete values and shapes, and it is re-typed
with them (`type_inference`, so `shape` ops of dynamic programs do not yield
symbols). Arithmetic is float32; outputs of fp16-typed ops are rounded to
float16, which is how an fp16 program stores activations on device. Vars
touched on the slow path are restored afterwards, so nothing leaks from one
run into the next; a lock serialises runs on one instance.

`trace` is `run` that also returns every op's outputs, in order, for
localising a parity failure (`pipeline.runtimes.mil_localise`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline.runtimes.base import InputShapeError, UnsupportedOps
from pipeline.runtimes.mil_constexpr import CONSTEXPR_OPS, materialise
from pipeline.runtimes.mil_fast import DONATABLE, FAST, HALF_NATIVE, INTO, SLOW
from pipeline.runtimes.mil_ops import unsupported
from pipeline.runtimes.mil_package import InputContract, LoadedPackage, load_package
from pipeline.runtimes.mil_state import MilState, StateSpec, held


class _Value:
    """Stands in for a builtin value in `Var._sym_val`; ops read `.val`."""

    __slots__ = ("val",)

    def __init__(self, val: Any) -> None:
        self.val = val


@dataclass(frozen=True, slots=True, kw_only=True)
class Materialised:
    """A compressed weight expanded at load: the constexpr op that made it, and who reads it."""

    op_name: str
    op_type: str
    value: Any
    used_by: tuple[str, ...]  # "linear 'linear_14'", ...


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One evaluated op: its name, type and output values, in program order."""

    name: str
    op_type: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    outputs: tuple[Any, ...]


_FP16 = "fp16"  # stored rounded to float16, held as float32
# fp16 consts at least this large (weights) are held as float16, half the bytes, and widened
# to float32 for the op that reads them (`_widen`): the op computes as before.
HALF_CONST_MIN = 1024
_STATE_OPS = ("read_state", "coreml_update_state")


def _kind(var: Any) -> tuple[Any, bool]:
    """How `var` stores values: (fp16 marker or numpy dtype or None, is a tensor)."""
    from coremltools.converters.mil.mil import types

    dtype = var.dtype
    if dtype == types.fp16:
        kind: Any = _FP16
    elif dtype in (types.fp32, types.fp64):
        kind = np.float32
    elif dtype == types.bool:
        kind = np.bool_
    else:
        try:
            kind = types.nptype_from_builtin(dtype)
        except Exception:
            kind = None
    return kind, bool(types.is_tensor(var.sym_type))


def _round_fp16(value: Any, in_place: bool = False) -> np.ndarray:
    """float32 values rounded to the nearest float16 (inf past 65504), as float32;
    `in_place`: into `value` itself when it is a writeable contiguous float32 array.

    torch's conversion gives the same bits as numpy's astype round trip in a
    third of the time, and this runs after every fp16 op."""
    import torch

    array = np.asarray(value, np.float32)
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, np.float32, order="C")
    elif in_place and array is value:
        tensor = torch.from_numpy(array)
        tensor.copy_(tensor.to(torch.float16))
        return array
    return torch.from_numpy(array).to(torch.float16).to(torch.float32).numpy()


def _store(kind: tuple[Any, bool], value: Any, in_place: bool = False) -> Any:
    """`value` as a var of `kind` stores it: fp16 rounded (kept float32; `in_place`: into
    `value`, which nothing else sees), ints as declared, scalars as numpy scalars (ops pass
    them to numpy as axes and flags)."""
    if not isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        return value  # strings and lists pass through
    dtype, is_tensor = kind
    if dtype is _FP16:
        value = _round_fp16(value, in_place)
    else:
        value = np.asarray(value, dtype)
    if not is_tensor and value.ndim == 0:
        return bool(value) if value.dtype == bool else value[()]
    return value


def _storage(var: Any, value: Any) -> Any:
    return _store(_kind(var), value)


def _const_storage(var: Any, value: Any) -> Any:
    """A const as held between runs: a large fp16 const stays float16 (see HALF_CONST_MIN)."""
    kind = _kind(var)
    if kind[0] is _FP16 and isinstance(value, np.ndarray) and value.size >= HALF_CONST_MIN:
        return np.asarray(value, np.float16)  # the loaded weight itself, not a copy
    return _store(kind, value)


def _widen(value: Any) -> Any:
    """A float16 const as the float32 array an op computes with (a copy that lives for that op)."""
    return value.astype(np.float32) if isinstance(value, np.ndarray) and value.dtype == np.float16 else value


def _retype(var: Any, value: Any) -> None:
    """Trust the value's shape where the op's own type inference disagrees."""
    from coremltools.converters.mil.mil import types

    if not isinstance(value, np.ndarray) or types.is_list(var.sym_type):
        return
    if types.is_tensor(var.sym_type) and tuple(var.shape) == value.shape:
        return
    if value.ndim or types.is_tensor(var.sym_type):
        var._sym_type = types.tensor(var.dtype, value.shape)


class _Step:
    """One planned op: its kernel, where its inputs come from, what it stores."""

    __slots__ = ("op", "fast", "inputs", "outputs", "kinds", "memo", "record_inputs", "state", "halves",
                 "last", "donors")

    def __init__(self, op: Any) -> None:
        self.op = op
        self.fast = FAST.get(op.op_type)
        # read_state reads `input`, coreml_update_state writes `state`: the state's name
        state = op.inputs.get("input") if op.op_type == "read_state" else op.inputs.get("state")
        self.state: str | None = state.name if op.op_type in _STATE_OPS else None
        self.inputs = [(name, tuple(id(v) for v in var) if isinstance(var, (tuple, list)) else id(var))
                       for name, var in op.inputs.items()]
        self.outputs = list(op.outputs)
        self.kinds = [_kind(v) for v in op.outputs]  # the declared dtype never changes
        self.memo: dict = {}
        self.record_inputs = tuple(v.name for v in op.get_flattened_inputs())
        self.halves: frozenset[str] = frozenset()  # inputs that are float16 consts (set by the interpreter)
        self.last: frozenset[int] = frozenset()  # input values no later op reads (set by the interpreter)
        self.donors: tuple[tuple[str, int], ...] = ()  # inputs an INTO kernel may write over, when owned


class MilInterpreter:
    """Executes one function of a loaded ML Program on numpy inputs."""

    name = "mil"

    def __init__(self, package: LoadedPackage) -> None:
        function = package.function
        self.path = package.path
        self.inputs: tuple[InputContract, ...] = package.inputs
        self.output_names = package.output_names or tuple(v.name for v in function.outputs)
        self._function = function
        self.states = _state_specs(function)
        self._input_vars = {n: v for n, v in function.inputs.items() if n not in self.states}
        self._ops = [op for op in function.operations if op.op_type != "const" and op.op_type not in CONSTEXPR_OPS]
        missing = unsupported([op.op_type for op in function.operations] + self._nested_ops())
        if missing:
            raise UnsupportedOps(missing, str(package.path))
        self.weights: dict[str, Materialised] = {}  # every expanded compressed weight, by var name
        self._consts = self._freeze_consts(function, self.weights)
        self._steps = [_Step(op) for op in self._ops]
        for step in self._steps:
            step.halves = frozenset(name for name, key in step.inputs if not isinstance(key, tuple)
                                    and getattr(self._consts.get(key), "dtype", None) == np.float16
                                    and name not in HALF_NATIVE.get(step.op.op_type, ()))
        self._saved = {id(v): (v, v._sym_type, v._sym_val) for v in self._touched_vars()}
        self._out_vars = {v.name: v for v in function.outputs}
        self._release = self._plan_release()
        self._plan_donors()
        self._lock = threading.Lock()

    def _plan_donors(self) -> None:
        """Which inputs each op may overwrite: read last here, and neither a const nor a
        program input (whether the array is owned is known only while running)."""
        bound = {id(v) for v in self._input_vars.values()}
        for step, release in zip(self._steps, self._release):
            step.last = frozenset(release)
            if step.fast is None or step.op.op_type not in INTO:
                continue
            step.donors = tuple((name, key) for name, key in step.inputs
                                if name in DONATABLE[step.op.op_type] and not isinstance(key, tuple)
                                and key in step.last and key not in self._consts and key not in bound)

    def _plan_release(self) -> list[tuple[int, ...]]:
        """For each step, the values no later step reads: dropped right after it (a run that
        is not traced holds only live activations, not every op's output of the program)."""
        last: dict[int, int] = {}
        for index, step in enumerate(self._steps):
            for var in step.outputs:
                last[id(var)] = index  # an output nobody reads is dropped where it is made
            for _, key in step.inputs:
                for var_id in key if isinstance(key, tuple) else (key,):
                    if var_id not in self._consts:
                        last[var_id] = index
        kept = {id(v) for v in self._out_vars.values()}
        release: list[list[int]] = [[] for _ in self._steps]
        for var_id, index in last.items():
            if var_id not in kept:
                release[index].append(var_id)
        return [tuple(ids) for ids in release]

    @classmethod
    def load(cls, path: str | Path, function_name: str | None = None) -> MilInterpreter:
        """Load a `.mlpackage` once; raise UnsupportedOps when it cannot be run."""
        return cls(load_package(path, function_name))

    @classmethod
    def from_function(cls, function: Any, inputs: tuple[InputContract, ...] = ()) -> MilInterpreter:
        """Wrap an in-memory pyMIL function (tests build programs with `mb`)."""
        return cls(LoadedPackage(path=Path("<memory>"), function=function, inputs=inputs,
                                 output_names=tuple(v.name for v in function.outputs),
                                 spec_version=0))

    def _nested_ops(self) -> list[str]:
        return [op.op_type for op in self._function.operations if op.blocks]

    @staticmethod
    def _freeze_consts(function: Any, weights: dict[str, Materialised]) -> dict[int, Any]:
        # Consts are evaluated once, as float32 (fp16 weights exactly), so fp16
        # programs compute in float32 without re-casting weights every run.
        # Compressed weights (constexpr_* chains) are expanded here, once, in
        # program order, as Core ML does when it loads the model.
        consts: dict[int, Any] = {}
        for op in function.operations:
            if op.op_type == "const":
                values: tuple[Any, ...] = tuple(var.val if var.val is not None else var.sym_val
                                                for var in op.outputs)
            elif op.op_type in CONSTEXPR_OPS:
                args = {name: _widen(consts[id(var)]) if id(var) in consts else var.val
                        for name, var in op.inputs.items()}
                result = materialise(op.op_type, args)
                values = result if isinstance(result, tuple) else (result,)
            else:
                continue
            for var, value in zip(op.outputs, values):
                value = _const_storage(var, value) if op.op_type == "const" else _storage(var, value)
                var._sym_val = _Value(value)
                consts[id(var)] = value
                if op.op_type != "const":
                    users = tuple(f"{u.op_type} {u.name!r}" for u in var.child_ops
                                  if not u.op_type.startswith("constexpr_"))
                    weights[var.name] = Materialised(op_name=op.name, op_type=op.op_type, value=value,
                                                     used_by=users)
        return consts

    def _touched_vars(self) -> list[Any]:
        touched = list(self._input_vars.values())
        for op in self._ops:
            touched.extend(op.outputs)
        return touched

    def _bind_inputs(self, inputs: Mapping[str, np.ndarray], values: dict[int, Any]) -> None:
        contracts = {c.name: c for c in self.inputs}
        unknown = set(inputs) - set(self._input_vars)
        missing = set(self._input_vars) - set(inputs)
        if unknown or missing:
            raise InputShapeError(f"inputs {sorted(inputs)} do not match the program's "
                                  f"{sorted(self._input_vars)}")
        for name, var in self._input_vars.items():
            value = np.asarray(inputs[name])
            if name in contracts:
                contracts[name].check(value)
            elif value.ndim != len(var.shape):
                raise InputShapeError(f"input {name!r} has rank {value.ndim}; expected {len(var.shape)}")
            values[id(var)] = _storage(var, value)

    def _slow(self, step: _Step, values: dict[int, Any]) -> Any:
        """coremltools' value_inference(), on vars given this run's values and shapes."""
        op = step.op
        widened = []  # float16 consts given as float32 for this op: their own value is put back
        for var in op.get_flattened_inputs():
            value = values[id(var)]
            if getattr(value, "dtype", None) == np.float16:
                widened.append((var, var._sym_val))
                value = _widen(value)
            _retype(var, value)
            var._sym_val = _Value(value)
        try:
            out_types = op.type_inference()
            out_types = out_types if isinstance(out_types, tuple) else (out_types,)
            for var, sym_type in zip(op.outputs, out_types):
                var._sym_type = sym_type
            return op.value_inference()
        finally:
            for var, sym_val in widened:
                var._sym_val = sym_val

    def _evaluate(self, step: _Step, values: dict[int, Any], states: dict[str, np.ndarray],
                  owned: set[int] | None = None) -> tuple[Any, ...]:
        """One op's outputs, stored. `owned` (None while tracing: records keep every value)
        holds the vars whose array nothing else references; see `_own`."""
        result, fast = SLOW, False
        # Overflow to inf is a finding (fp16), not a reason to warn.
        with np.errstate(all="ignore"):
            if step.state is not None:
                result = self._state_op(step, step.state, values, states)
            elif step.fast is not None:
                args = {name: tuple(values[k] for k in key) if isinstance(key, tuple) else values[key]
                        for name, key in step.inputs}
                for name in step.halves:
                    args[name] = _widen(args[name])
                for name, key in step.donors:
                    if owned is not None and key in owned:
                        result = INTO[step.op.op_type](args, step.memo, name)
                        if result is not SLOW:
                            break
                if result is SLOW:
                    result = step.fast(args, step.memo)
                fast = result is not SLOW
            if result is SLOW:
                result = self._slow(step, values)
        results = result if isinstance(result, (tuple, list)) and len(step.outputs) > 1 else (result,)
        if any(v is None for v in results):
            raise RuntimeError(f"MIL op {step.op.name!r} ({step.op.op_type}) could not be evaluated")
        if owned is None:
            stored = tuple(_store(kind, v) for kind, v in zip(step.kinds, results))
        else:
            stored = self._own(step, results, values, owned, fast and step.state is None)
        for var, value in zip(step.outputs, stored):
            values[id(var)] = value
        return stored

    @staticmethod
    def _own(step: _Step, results: Sequence[Any], values: dict[int, Any], owned: set[int],
             may_own: bool) -> tuple[Any, ...]:
        """Store `results`, keeping `owned` true: an output is owned when it shares memory with
        no input, or only with owned inputs read last here (a view takes the array over);
        an input an output shares memory with is owned no more. Only fast kernels' results
        are owned (coremltools' value_inference may hand out arrays it keeps)."""
        shared_inputs = [(k, values[k]) for _, key in step.inputs for k in (key if isinstance(key, tuple) else (key,))
                         if isinstance(values.get(k), np.ndarray)]
        stored = []
        for kind, value in zip(step.kinds, results):
            sharing = [k for k, array in shared_inputs
                       if isinstance(value, np.ndarray) and np.may_share_memory(value, array)]
            mine = may_own and isinstance(value, np.ndarray) and value.flags.writeable and (
                not sharing or (len(step.outputs) == 1 and all(k in owned and k in step.last for k in sharing)))
            kept = _store(kind, value, in_place=mine)
            stored.append(kept)
            owned.difference_update(sharing)
            if mine and isinstance(kept, np.ndarray):  # a scalar is stored as a numpy scalar
                owned.add(id(step.outputs[len(stored) - 1]))
        return tuple(stored)

    def _state_op(self, step: _Step, name: str, values: dict[int, Any], states: dict[str, np.ndarray]) -> Any:
        """read_state copies state `name`'s value out of the session; coreml_update_state writes one in."""
        if step.op.op_type == "read_state":
            return states[name]
        value = values[id(step.op.inputs["value"])]
        states[name] = held(self.states[name], value)
        return value

    def state_ops(self, name: str) -> tuple[str, ...]:
        """The ops that read and write state `name`, in program order, as findings name them:
        "read_state 'read_state_0'", "coreml_update_state 'x' of slice_update 'y'"."""
        found = []
        for step in self._steps:
            if step.state != name:
                continue
            if step.op.op_type == "read_state":
                found.append(f"read_state {step.op.name!r}")
            else:
                source = step.op.inputs["value"].op
                origin = f" of {source.op_type} {source.name!r}" if source is not None else ""
                found.append(f"coreml_update_state {step.op.name!r}{origin}")
        return tuple(found)

    def make_state(self) -> MilState:
        """A fresh state for this program (zeros), as `MLModel.make_state()`."""
        return MilState(self.states)

    def _restore(self) -> None:
        for var, sym_type, sym_val in self._saved.values():
            var._sym_type, var._sym_val = sym_type, sym_val

    def _execute(self, inputs: Mapping[str, np.ndarray], records: list[OpRecord] | None,
                 state: MilState | None) -> dict[str, np.ndarray]:
        if self.states and state is None:
            raise InputShapeError(f"the program keeps state ({', '.join(self.states)}): "
                                  "pass state=interpreter.make_state()")
        if state is not None and set(state.specs) != set(self.states):
            raise InputShapeError(f"the state holds {sorted(state.specs)}; the program keeps "
                                  f"{sorted(self.states)}")
        with self._lock:
            values = dict(self._consts)
            session = state.session() if state is not None else {}
            owned: set[int] | None = set() if records is None else None
            try:
                self._bind_inputs(inputs, values)
                for step, release in zip(self._steps, self._release):
                    outs = self._evaluate(step, values, session, owned)
                    if records is not None:
                        records.append(OpRecord(
                            name=step.op.name, op_type=step.op.op_type, input_names=step.record_inputs,
                            output_names=tuple(v.name for v in step.outputs), outputs=outs))
                    for var_id in release:
                        values.pop(var_id, None)
                        if owned is not None:
                            owned.discard(var_id)
                outputs = {name: self._output(var, values[id(var)], owned is not None and id(var) in owned)
                           for name, var in self._out_vars.items()}
                if state is not None:
                    state.commit(session)  # only a run that finished updates the state
                return outputs
            finally:
                self._restore()

    @staticmethod
    def _output(var: Any, value: Any, owned: bool = False) -> np.ndarray:
        """An output as the caller gets it: its own array (an owned one already is)."""
        from coremltools.converters.mil.mil import types

        value = np.asarray(value)
        if var.dtype == types.fp16:
            return value.astype(np.float16)
        return value if owned else value.copy()

    def run(self, inputs: Mapping[str, np.ndarray], state: MilState | None = None) -> dict[str, np.ndarray]:
        """The program's outputs by name; raises InputShapeError for a refused input.

        A stateful program needs `state` (from `make_state()`); the run reads
        and updates it, as `MLModel.predict(inputs, state=state)` does."""
        return self._execute(inputs, None, state)

    def trace(self, inputs: Mapping[str, np.ndarray],
              state: MilState | None = None) -> tuple[dict[str, np.ndarray], list[OpRecord]]:
        """Like `run`, also returning every non-const op's outputs in program order."""
        records: list[OpRecord] = []
        return self._execute(inputs, records, state), records


def _state_specs(function: Any) -> dict[str, StateSpec]:
    """The program's state inputs: name, shape and dtype of the tensor each wraps."""
    from coremltools.converters.mil.mil import types

    specs = {}
    for name, var in function.inputs.items():
        if types.is_state(var.sym_type):
            wrapped = var.sym_type.wrapped_type()
            dtype = np.float16 if wrapped.get_primitive() == types.fp16 else \
                types.nptype_from_builtin(wrapped.get_primitive())
            specs[name] = StateSpec(name=name, shape=tuple(int(d) for d in wrapped.get_shape()), dtype=dtype)
    return specs

