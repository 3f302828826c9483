"""Metrics that mean something for lossy targets: perplexity on text, free-running generation.

A compressed model is *meant* to differ element by element; what matters is
whether it still predicts the same text. Next to top-1/top-5 agreement and
the KL of the next-token distributions (`pipeline.parity.logit_metrics`):

- `ppl_delta_pct`: how much the candidate's perplexity on the text source
  exceeds the reference's, in percent: 100 * (exp(NLL_cand) / exp(NLL_ref) - 1),
  where NLL is the mean negative log-likelihood of each next token of the
  prompt (teacher forcing). Negative when the candidate happens to do better.
- `greedy_match_pct`: both sides generate `tokens` tokens greedily from the
  same prompt, each from its *own* prefill and its own caches (or state); the
  share of tokens generated identically before the first disagreement, in
  percent, averaged over the prompts of the primary length (both sources).

    >>> perplexity_delta_pct(ref_logits, cand_logits, ids)   # doctest: +SKIP
    3.7
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from pipeline.parity.cases import Comparison
from pipeline.parity.metrics import BLOCK_ELEMENTS, judge

GENERATE = "generate"  # the phase of generation rows
TOKENS = "tokens"  # their output name


def mean_nll(logits: np.ndarray, ids: np.ndarray) -> float:
    """Mean negative log-likelihood of ids[t+1] under logits[t] (one sequence), in float64
    blocks of whole rows (a 2048 x 32k prompt's logits would be 0.5 GB per float64 copy)."""
    scores = np.asarray(logits)[0, :-1]
    targets = np.asarray(ids)[0, 1:]
    step = max(1, BLOCK_ELEMENTS // max(scores.shape[-1], 1))
    total = 0.0
    for start in range(0, targets.size, step):
        block = scores[start:start + step].astype(np.float64)
        block -= block.max(-1, keepdims=True)
        log_norm = np.log(np.exp(block).sum(-1))
        total += float(np.sum(log_norm - block[np.arange(block.shape[0]), targets[start:start + step]]))
    return total / targets.size


def perplexity_delta_pct(ref_logits: np.ndarray, cand_logits: np.ndarray, ids: np.ndarray) -> float:
    """100 * (perplexity of the candidate / perplexity of the reference - 1) on `ids`."""
    if ids.shape[1] < 2:
        raise ValueError("perplexity needs at least two tokens")
    return 100.0 * (math.exp(mean_nll(cand_logits, ids) - mean_nll(ref_logits, ids)) - 1.0)


def agreed_prefix(ref: Sequence[int], cand: Sequence[int]) -> int:
    """How many tokens agree before the first disagreement."""
    return next((i for i, (a, b) in enumerate(zip(ref, cand)) if a != b), min(len(ref), len(cand)))


def greedy_tokens(prefill: Any, decode: Any, ids: np.ndarray, tokens: int, cache_inputs: Sequence[str],
                  cache_outputs: Sequence[str]) -> list[int]:
    """`tokens` greedy tokens from one runtime's own prefill and decode, caches threaded."""
    out = prefill.run({"input_ids": ids})
    caches = {name: out[name] for name in cache_inputs}
    token, position, found = int(np.argmax(out["logits"][0, -1])), int(ids.shape[1]), []
    while True:
        found.append(token)
        if len(found) == tokens:
            return found
        step = decode.run({"input_ids": np.array([[token]], np.int32),
                           "position": np.array([position], np.int32), **caches})
        caches = {i: step[o] for i, o in zip(cache_inputs, cache_outputs)}
        token, position = int(np.argmax(step["logits"][0, -1])), position + 1


def generation_comparison(reference: Callable[[np.ndarray], list[int]], candidate: Callable[[np.ndarray], list[int]],
                          prompts: Sequence[tuple[str, np.ndarray]], tokens: int,
                          bounds: Callable[[str], Any]) -> Comparison:
    """One row for one length: mean share of identically generated tokens over `prompts`."""
    agreed = [agreed_prefix(reference(ids), candidate(ids)) for _, ids in prompts]
    metrics = {"greedy_match_pct": float(f"{100.0 * float(np.mean(agreed)) / tokens:.6g}")}
    return Comparison(phase=GENERATE, source="+".join(s for s, _ in prompts), length=int(prompts[0][1].shape[1]),
                      step=0, output=TOKENS, metrics=metrics, misses=tuple(judge(metrics, bounds(TOKENS))))
