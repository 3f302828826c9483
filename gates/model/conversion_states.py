"""A stateful decode package's states against the contract's KV layout.

Core ML holds a stateful package's KV cache in `MLState` buffers the
package declares (`spec.description.state`). An app seeds them from the
prefill outputs and the program appends to them, so each must be exactly
what the contract's `decode_stateful.states` says: one per cache tensor of
the KV layout, in order, shaped [B, n_kv_heads, state_length, d_head], in
the package's float dtype, and the `kv_window` input must range over the
contract's cache lengths + 1. A problem names the state and the ops that read
and write it (`read_state 'read_state_0'`), so a wrong layout points at the
program, not only at the declaration.
"""

from __future__ import annotations

from typing import Any


def _ops(info: Any, name: str) -> str:
    ops = info.state_ops.get(name, ())
    return f" (read and written by {', '.join(ops)})" if ops else " (no op reads or writes it)"


def state_problems(contract: Any, info: Any, float_dtype: str) -> list[str]:
    """Every way the package's states and window differ from `contract.doc["decode_stateful"]`."""
    from pipeline.stateful_decode import WINDOW_INPUT

    entry = contract.doc["decode_stateful"]
    layout = contract.doc["kv_layout"]
    want = {t["name"]: t for t in entry["states"]}
    got = {t.name: t for t in info.states}
    problems = []
    if list(got) != list(want):
        problems.append(f"states {list(got)} are not the contract's {list(want)} (KV layout order)")
    axes = ", ".join(layout["axes"][:2] + ["T_state"] + layout["axes"][3:])
    for name, spec in want.items():
        state = got.get(name)
        if state is None:
            continue
        if list(state.shape) != list(spec["shape"]):
            problems.append(f"state {name} is declared {list(state.shape)}; the contract's KV layout "
                            f"[{axes}] is {spec['shape']}{_ops(info, name)}")
        if state.dtype != float_dtype:
            problems.append(f"state {name} is {state.dtype}, the package computes in {float_dtype}")
        if not any(op.startswith("write_state") for op in info.state_ops.get(name, ())):
            problems.append(f"state {name} is never written: the program has no write_state for it"
                            f"{_ops(info, name)}")
    window = next((t for t in info.inputs if t.name == WINDOW_INPUT), None)
    low, high = entry["cache_range"]
    if window is not None and window.ranges and tuple(window.ranges[-1]) != (low + 1, high + 1):
        problems.append(f"{WINDOW_INPUT} ranges over {tuple(window.ranges[-1])}, not the cache lengths + 1 "
                        f"({low + 1}, {high + 1})")
    return problems
