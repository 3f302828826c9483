"""Stateful decode parity: chained steps through Core ML state, held against eager decode.

    >>> rows = stateful_comparisons(ref_prefill, ref_decode, candidate, ids, "text", bounds,
    ...                             steps=3, names=names)                          # doctest: +SKIP

For one prompt the reference prefills it; a fresh state
(`candidate.make_state()`, an `MLState` or the interpreter's) is seeded with
those caches (`write_state`, zeros past the prompt), as an app seeds its
state from the prefill package; then `steps` greedy decode steps run through
the state (the reference's arg-max token is fed to both sides, as in plain
decode parity) and each step's logits are compared with eager decode on the
reference's own threaded caches. After the last step the state itself is
read back and compared, rows [0, T + steps), with the reference's caches
(rows named after the caches, in the "cache" group): a state never updated,
or updated in the wrong row, fails there even where a step's logits still
look plausible. A state whose shape is not the KV layout's fails before any
step, naming both shapes.

`localise_state` names the op behind a failure: it seeds a state, runs one
step and finds the first state whose new row is not the reference's new k/v
(or whose prompt rows changed), naming the ops that read and write it.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from pipeline.parity.cases import Bounds, Comparison, DecodeNames, chain_comparison
from pipeline.parity.metrics import compare, judge
from pipeline.stateful_decode import WINDOW_INPUT

_OP = re.compile(r"^(\w+) '([^']+)'")  # "coreml_update_state 'name' of ..." -> type, name


def layout_problem(name: str, state_shape: Sequence[int], cache_shape: Sequence[int], rows: int) -> str | None:
    """Why a state cannot hold `rows` rows of a cache laid out [B, n_kv_heads, T, d_head], or None."""
    state, cache = list(state_shape), list(cache_shape)
    if len(state) == 4 and state[:2] == cache[:2] and state[3] == cache[3] and state[2] >= rows:
        return None
    return (f"state {name} is {state}; the KV layout [B, n_kv_heads, T, d_head] needs "
            f"[{cache[0]}, {cache[1]}, >= {rows}, {cache[3]}]")


def seed_state(candidate: Any, caches: dict[str, np.ndarray], rows: int) -> tuple[Any, list[str]]:
    """A fresh state holding `caches` in its first rows; or the layout problems that prevent it."""
    state = candidate.make_state()
    problems = []
    for name, cache in caches.items():
        held = state.read_state(name)  # a fresh state: zeros, in the package's shape and dtype
        problem = layout_problem(name, held.shape, cache.shape, rows)
        if problem:
            problems.append(problem)
            continue
        held = np.zeros_like(held)
        held[:, :, :cache.shape[2]] = cache
        state.write_state(name, held)
    return state, problems


def _window(length: int) -> np.ndarray:
    return np.zeros((1, length + 1), np.int32)  # only its length is read: T_cache + 1


def stateful_comparisons(ref_prefill: Any, ref_decode: Any, candidate: Any, ids: np.ndarray, source: str,
                         bounds: Bounds, *, steps: int, names: DecodeNames, chain: bool = False) -> list[Comparison]:
    """`steps` chained steps through the candidate's state, then the state against the caches.

    With `chain` (a compressed package) the steps' logits are judged as one run
    (`pipeline.parity.cases.chain_comparison`)."""
    prefill = ref_prefill.run({"input_ids": ids})
    caches = {n: prefill[n] for n in names.cache_inputs}
    length = int(ids.shape[1])
    state, problems = seed_state(candidate, caches, length + steps)
    where: dict[str, Any] = {"phase": "decode", "source": source, "length": length}
    if problems:
        return [Comparison(output=names.cache_inputs[0], step=0, metrics={}, misses=tuple(problems), **where)]
    logits_name = names.decode_outputs[0]
    token, rows = int(np.argmax(prefill["logits"][0, -1])), []
    chained: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for step in range(1, steps + 1):
        position = length + step - 1
        head = {"input_ids": np.array([[token]], np.int32)}
        ref = ref_decode.run({**head, "position": np.array([position], np.int32), **caches})
        cand = candidate.run({**head, WINDOW_INPUT: _window(position)}, state=state)
        if chain:
            chained[0].append(ref[logits_name])
            chained[1].append(cand[logits_name])
        else:
            metrics = compare(ref[logits_name], np.asarray(cand[logits_name], np.float32), logits=True)
            rows.append(Comparison(output=logits_name, step=step, metrics=metrics,
                                   misses=tuple(judge(metrics, bounds(logits_name))), **where))
        caches = {i: ref[o] for i, o in zip(names.cache_inputs, names.decode_outputs[1:])}
        token = int(np.argmax(ref[logits_name][0, -1]))
    if chain:
        rows.append(chain_comparison(*chained, bounds, logits_name, step=steps, **where))
    for name, cache in caches.items():
        held = np.asarray(state.read_state(name), np.float32)[:, :, :cache.shape[2]]
        metrics = compare(cache, held)
        rows.append(Comparison(output=name, step=steps, metrics=metrics,
                               misses=tuple(judge(metrics, bounds(name))), **where))
    return rows


def stateful_tokens(ref_prefill: Any, candidate: Any, ids: np.ndarray, tokens: int,
                    names: DecodeNames) -> list[int]:
    """`tokens` greedy tokens generated through the candidate's state after the reference prefill."""
    prefill = ref_prefill.run({"input_ids": ids})
    length = int(ids.shape[1])
    state, problems = seed_state(candidate, {n: prefill[n] for n in names.cache_inputs}, length + tokens)
    if problems:
        return []
    token, found = int(np.argmax(prefill["logits"][0, -1])), []
    while True:
        found.append(token)
        if len(found) == tokens:
            return found
        out = candidate.run({"input_ids": np.array([[token]], np.int32),
                             WINDOW_INPUT: _window(length + len(found) - 1)}, state=state)
        token = int(np.argmax(out[names.decode_outputs[0]][0, -1]))


def stateful_rows(ref_prefill: Any, ref_decode: Any, candidate: Any, arts: Any, adapter: Any, bounds: Bounds, *,
                  names: DecodeNames, steps: int, seed: int, sources: Sequence[str], text_ids: Sequence[int],
                  generate_tokens: int, chain: bool = False) -> list[Comparison]:
    """Every enumerated length and source: chained steps and the state; greedy generation
    on the primary length."""
    from pipeline.parity.cases import input_ids
    from pipeline.parity.lossy import generation_comparison, greedy_tokens
    from pipeline.parity.targets import primary_length

    low, high = arts.export.cache_range
    outs = names.decode_outputs[1:]

    def reference_tokens(ids: np.ndarray) -> list[int]:
        return greedy_tokens(ref_prefill, ref_decode, ids, generate_tokens, names.cache_inputs, outs)

    def candidate_tokens(ids: np.ndarray) -> list[int]:
        return stateful_tokens(ref_prefill, candidate, ids, generate_tokens, names)

    rows: list[Comparison] = []
    for length in arts.options.lengths:
        if not (low <= length and length + steps <= high):
            continue
        prompts = [(source, input_ids(source, length, vocab=adapter.vocab_size, seed=seed, text_ids=text_ids))
                   for source in sources]
        for source, ids in prompts:
            rows += stateful_comparisons(ref_prefill, ref_decode, candidate, ids, source, bounds, steps=steps,
                                         names=names, chain=chain)
        if generate_tokens and length == primary_length(arts) and length + generate_tokens <= high:
            rows.append(generation_comparison(reference_tokens, candidate_tokens, prompts, generate_tokens, bounds))
    return rows


def localise_state(ref_prefill: Any, ref_decode: Any, interpreter: Any, ids: np.ndarray, names: DecodeNames,
                   rel_tol: float) -> list[dict[str, str]]:
    """The first state that one step leaves wrong, with the ops that read and write it."""
    prefill = ref_prefill.run({"input_ids": ids})
    caches = {n: prefill[n] for n in names.cache_inputs}
    length = int(ids.shape[1])

    def finding(name: str, detail: str) -> dict[str, str]:
        ops = interpreter.state_ops(name)
        writes = [op for op in ops if op.startswith("coreml_update_state")]
        named = _OP.match((writes or list(ops) or [""])[0])
        uses = f"the program reads and writes it with {', '.join(ops)}" if ops else "no op of the program uses it"
        return {"kind": "state", "op": named.group(2) if named else "", "op_type": named.group(1) if named else "",
                "var": name, "detail": f"{detail}; {uses}"}

    state, problems = seed_state(interpreter, caches, length + 1)
    if problems:
        name = problems[0].split()[1]
        return [finding(name, problems[0])]
    token = int(np.argmax(prefill["logits"][0, -1]))
    ref = ref_decode.run({"input_ids": np.array([[token]], np.int32), "position": np.array([length], np.int32),
                          **caches})
    interpreter.run({"input_ids": np.array([[token]], np.int32), WINDOW_INPUT: _window(length)}, state=state)
    for name, out in zip(names.cache_inputs, names.decode_outputs[1:]):
        held = np.asarray(state.read_state(name), np.float32)
        want = ref[out]
        scale = float(np.abs(want).max()) or 1.0
        prompt_err = float(np.abs(held[:, :, :length] - want[:, :, :length]).max()) / scale
        new_err = float(np.abs(held[:, :, length] - want[:, :, length]).max()) / scale
        if new_err > rel_tol:
            before = float(np.abs(held[:, :, length]).max())
            return [finding(name, f"after one step, state {name} row {length} differs from PyTorch's new "
                                  f"{name.split('_')[0]} by {new_err:.3g} of its largest value (the row holds "
                                  f"values up to {before:.3g}{'; it was never written' if before == 0 else ''})")]
        if prompt_err > rel_tol:
            return [finding(name, f"after one step, state {name} rows [0, {length}) (the prompt) changed by "
                                  f"{prompt_err:.3g} of their largest value")]
    return [{"kind": "none", "detail": f"one step leaves every state within {rel_tol:g} of PyTorch's caches"}]
