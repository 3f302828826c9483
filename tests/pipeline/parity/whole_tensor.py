"""The parity metrics written out over the whole tensor at once: the oracle for `compare`.

The test of `compare` checks its blocked figures against these, and
`scripts/bench_parity_metrics.py` times and sizes them as the alternative.
"""

from __future__ import annotations

import math

import numpy as np


def whole_tensor_metrics(ref: np.ndarray, cand: np.ndarray) -> dict[str, float]:
    """The metrics of a logits output, as `pipeline.parity.metrics` defines them, in float64 numpy."""
    r = ref.reshape(-1, ref.shape[-1]).astype(np.float64)
    c = cand.reshape(-1, cand.shape[-1]).astype(np.float64)
    err = np.abs(r - c)
    lr = r - r.max(-1, keepdims=True)
    lr -= np.log(np.exp(lr).sum(-1, keepdims=True))
    lc = c - c.max(-1, keepdims=True)
    lc -= np.log(np.exp(lc).sum(-1, keepdims=True))
    ref_top5 = np.argpartition(-r, 4, axis=-1)[:, :5]
    cand_top5 = np.argpartition(-c, 4, axis=-1)[:, :5]
    shared = (ref_top5[:, :, None] == cand_top5[:, None, :]).any(-1).sum(-1)
    scale = np.abs(r).max()
    return {"max_abs": float(err.max()), "max_rel": float(err.max() / scale), "mean_abs": float(err.mean()),
            "psnr_db": 20 * math.log10(scale / math.sqrt(np.mean(err**2))),
            "cosine": float(np.dot(r.ravel(), c.ravel()) / (np.linalg.norm(r) * np.linalg.norm(c))),
            "top1_pct": float(np.mean(r.argmax(-1) == c.argmax(-1)) * 100),
            "top5_pct": float(shared.mean() / 5 * 100),
            "kl": float(np.mean(np.sum(np.exp(lr) * (lr - lc), -1)))}
