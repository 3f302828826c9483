"""Parity metrics: how far a converted model's outputs are from the reference.

For one output of one run, `compare(ref, cand, logits=...)` measures

    max_abs, max_rel, mean_abs, psnr_db, cosine, nan_count, inf_count
    and for logits: top1_pct, top5_pct, kl (and topk_pct with `top_k`)

`max_rel` is the largest absolute error divided by the reference's largest
magnitude (an element-wise ratio explodes wherever the reference is near
zero). `psnr_db` is 20*log10(max|ref| / rmse), capped at 200 dB for
identical outputs so it stays a JSON number. `top1_pct` is the share of
positions whose arg-max token agrees; `top5_pct` the mean overlap of the two
top-5 sets; `kl` the mean over positions of KL(p_ref || p_cand) of the
softmaxed last axis, in nats. `topk_pct` is the overlap of the top-k sets for
a declared `top_k` (class logits of a `kind = "module"` model).

`Thresholds` holds one bound per metric; `judge(metrics, thresholds)`
returns every metric that misses its bound (not just the first), with the
same rounding the report shows. NaN or Inf in a candidate always fails.

    >>> m = compare(np.ones(4, np.float32), np.ones(4, np.float32))
    >>> m["max_abs"], judge(m, DEFAULT_THRESHOLDS["fp32"])
    (0.0, [])
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from pipeline import heap

PSNR_CAP_DB = 200.0
DIGITS = 6  # significant digits every metric is rounded to, here and in reports

# Which way each metric must go: "max" = value <= bound, "min" = value >= bound.
DIRECTIONS: dict[str, str] = {
    "max_abs": "max", "max_rel": "max", "mean_abs": "max", "kl": "max",
    "psnr_db": "min", "cosine": "min", "top1_pct": "min", "top5_pct": "min", "topk_pct": "min",
    # lossy targets (pipeline.parity.lossy): perplexity on the text source, free-running generation
    "ppl_delta_pct": "max", "greedy_match_pct": "min",
}
LOGIT_METRICS = ("top1_pct", "top5_pct", "topk_pct", "kl")

# Defaults per precision. fp32 conversions match PyTorch to ~1e-6 relative;
# fp16 storage leaves ~1e-3. The bounds sit an order of magnitude above what
# a sound conversion shows and well below what a seeded defect produces.
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "fp32": {"max_rel": 1e-4, "psnr_db": 80.0, "cosine": 0.99999,
             "top1_pct": 99.0, "top5_pct": 95.0, "topk_pct": 95.0, "kl": 1e-5},
    "fp16": {"max_rel": 2e-2, "psnr_db": 40.0, "cosine": 0.999,
             "top1_pct": 90.0, "top5_pct": 80.0, "topk_pct": 80.0, "kl": 1e-2},
    # Compressed fp16 packages are lossy by design: judged on what the next-token
    # distribution and the text keep, not on element-wise error. Measured on the
    # demo model (docs/gates/parity.md), worst row: int8 top-1 98 %, KL 1e-4;
    # int4_block32 top-1 84 %, KL 0.016, perplexity +6.5 %; palettize4 top-1 72 %
    # (32 positions), KL 0.017; palettize6 top-1 94 %, KL 9e-4. KL is the sharp
    # signal (an LM head at 2 bits: 0.11); top-1 of a high-entropy model is noisy.
    "int8": {"top1_pct": 95.0, "top5_pct": 95.0, "kl": 2e-3, "ppl_delta_pct": 1.0, "greedy_match_pct": 75.0},
    "int4_block32": {"top1_pct": 65.0, "top5_pct": 70.0, "kl": 5e-2, "ppl_delta_pct": 10.0,
                     "greedy_match_pct": 15.0},
    "palettize4": {"top1_pct": 65.0, "top5_pct": 70.0, "kl": 5e-2, "ppl_delta_pct": 10.0,
                   "greedy_match_pct": 15.0},
    "palettize6": {"top1_pct": 85.0, "top5_pct": 85.0, "kl": 5e-3, "ppl_delta_pct": 2.0,
                   "greedy_match_pct": 30.0},
    # a model trained for 50 % sparsity should lose no more than int4; one that was not, fails
    "prune50": {"top1_pct": 65.0, "top5_pct": 70.0, "kl": 5e-2, "ppl_delta_pct": 10.0,
                "greedy_match_pct": 15.0},
}


def _round(value: float) -> float:
    if not math.isfinite(value) or value == 0:
        return value
    return round(value, DIGITS - 1 - int(math.floor(math.log10(abs(value)))))


# Metrics run over blocks of rows of at most this many values (16 MB in float64), so
# comparing a [T, vocab] logits output never holds float64 copies of the whole tensor.
BLOCK_ELEMENTS = 1 << 21


def _row_blocks(ref: np.ndarray, cand: np.ndarray):
    """Blocks of whole rows of the last axis as one float64 array [4, rows, last]: ref's
    rows, cand's, and two of scratch, the same buffers block after block (a fresh 16 MB
    array per block and per step is a fresh map the kernel zero-fills page by page): a
    consumer may overwrite all four but keeps none past its turn. A side read from a file
    map (a reference kept on disk) has each block's pages handed back once it is copied,
    so a pass over a long output holds one block of it, not all of it."""
    last = ref.shape[-1] if ref.ndim else 1
    r, c = ref.reshape(-1, last), cand.reshape(-1, last)
    step = max(1, BLOCK_ELEMENTS // max(last, 1))
    buffers = np.empty((4, min(step, r.shape[0]), last))
    for start in range(0, r.shape[0], step):
        rows = min(step, r.shape[0] - start)
        blocks = buffers[:, :rows]
        for side, into in ((r, blocks[0]), (c, blocks[1])):
            np.copyto(into, side[start:start + rows])
            _drop_read(side[start:start + rows])
        yield blocks


def _drop_read(block: np.ndarray) -> None:
    """Hand back the pages of a block of a read-only file map (read again if touched again)."""
    base: object = block
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    if isinstance(base, np.memmap) and base.mode == "r" and block.flags.c_contiguous and block.nbytes:
        heap.drop_pages(block.ctypes.data, block.ctypes.data + block.nbytes)


def _top_k_overlap(r: Any, c: Any, k: int) -> int:
    """Over the rows, how many of the k largest of `r` are among the k largest of `c`."""
    rk = r.topk(k, dim=-1, sorted=False).indices
    ck = c.topk(k, dim=-1, sorted=False).indices
    return int((rk[:, :, None] == ck[:, None, :]).any(-1).sum())


def _log_softmax_(x: Any, exps: Any) -> None:
    """x becomes its log-softmax over the last axis, in place; `exps` is left holding the
    softmax itself."""
    import torch

    x.sub_(x.amax(dim=-1, keepdim=True))
    torch.exp(x, out=exps)
    total = exps.sum(dim=-1, keepdim=True)
    x.sub_(total.log())
    exps.div_(total)


class _Sums:
    """What `compare` adds up over the blocks of rows of one output.

    The arithmetic runs in torch on the blocks' own memory: in place, on torch's
    threads (numpy's runs on one core and allocates a temporary per step)."""

    def __init__(self, top_ks: Mapping[str, int] | None) -> None:
        self.top_ks = top_ks  # None: not logits
        self.nan = self.inf = 0
        self.ref_finite = True
        self.err_max = self.err_sum = self.err_sq = self.scale = 0.0
        self.dot = self.ref_sq = self.cand_sq = 0.0
        self.rows = self.agree = 0
        self.kl = 0.0
        self.overlap = dict.fromkeys(top_ks or {}, 0.0)

    @property
    def finite(self) -> bool:
        return not (self.nan or self.inf) and self.ref_finite

    def add(self, blocks: np.ndarray) -> None:
        """One block: `blocks` [4, rows, last] float64, the reference's rows, the
        candidate's, and two of scratch (all four overwritten)."""
        import torch

        r, c, spare, more = torch.from_numpy(blocks)
        if not math.isfinite(float(c.sum())):  # finite values have a finite sum (float64 of float32)
            self.nan += int(torch.isnan(c).sum())
            self.inf += int(torch.isinf(c).sum())
        self.ref_finite = self.ref_finite and (math.isfinite(float(r.sum())) or bool(torch.isfinite(r).all()))
        if not self.finite:
            return  # only the counts matter now
        flat_r, flat_c, err = r.view(-1), c.view(-1), spare.view(-1)
        if not err.numel():
            return
        torch.sub(flat_r, flat_c, out=err).abs_()
        self.err_max = max(self.err_max, float(err.max()))
        self.err_sum += float(err.sum())
        self.err_sq += float(torch.dot(err, err))
        self.scale = max(self.scale, float(flat_r.max()), -float(flat_r.min()))
        self.dot += float(torch.dot(flat_r, flat_c))
        self.ref_sq += float(torch.dot(flat_r, flat_r))
        self.cand_sq += float(torch.dot(flat_c, flat_c))
        if self.top_ks is None:
            return
        self.rows += r.shape[0]
        self.agree += int((r.argmax(-1) == c.argmax(-1)).sum())
        for name, k in self.top_ks.items():
            self.overlap[name] += _top_k_overlap(r, c, k) / k
        _log_softmax_(r, spare)  # r: log p_ref, spare: p_ref
        _log_softmax_(c, more)  # c: log p_cand
        torch.sub(r, c, out=more)
        self.kl += float(torch.dot(spare.view(-1), more.view(-1)))  # sum of p_ref * (log p_ref - log p_cand)


def _top_ks(last: int, top_k: int | None) -> dict[str, int]:
    return {"top5_pct": min(5, last), **({"topk_pct": min(top_k, last)} if top_k is not None else {})}


def logit_metrics(ref: np.ndarray, cand: np.ndarray, top_k: int | None = None) -> dict[str, float]:
    """top-1 / top-5 (and top-k) agreement (%) and mean KL(p_ref || p_cand) over the last axis."""
    ref, cand = np.asarray(ref), np.asarray(cand)
    sums = _Sums(_top_ks(ref.shape[-1] if ref.ndim else 1, top_k))
    for blocks in _row_blocks(ref, cand):
        sums.add(blocks)
    return _logit_values(sums)


def _logit_values(sums: _Sums) -> dict[str, float]:
    if not sums.rows:
        return {"top1_pct": math.nan, "kl": math.nan, **dict.fromkeys(sums.overlap, math.nan)}
    return {"top1_pct": sums.agree / sums.rows * 100.0,
            **{n: v / sums.rows * 100.0 for n, v in sums.overlap.items()},
            "kl": max(sums.kl / sums.rows, 0.0)}


def compare(ref: np.ndarray, cand: np.ndarray, *, logits: bool = False,
            top_k: int | None = None) -> dict[str, float]:
    """Every metric of `cand` against `ref` (same shape), rounded to DIGITS: one pass over
    blocks of rows."""
    ref, cand = np.asarray(ref), np.asarray(cand)
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: reference {list(ref.shape)}, candidate {list(cand.shape)}")
    sums = _Sums(_top_ks(ref.shape[-1] if ref.ndim else 1, top_k) if logits else None)
    for blocks in _row_blocks(ref, cand):
        sums.add(blocks)
    if not sums.finite:
        metrics = {k: math.nan for k in DIRECTIONS if (logits or k not in LOGIT_METRICS)
                   and (k != "topk_pct" or top_k is not None)}
    else:
        size = ref.size
        rmse = math.sqrt(sums.err_sq / size) if size else 0.0
        denom = math.sqrt(sums.ref_sq) * math.sqrt(sums.cand_sq)
        scale = sums.scale
        metrics = {
            "max_abs": sums.err_max,
            "max_rel": sums.err_max / scale if scale else sums.err_max,
            "mean_abs": sums.err_sum / size if size else 0.0,
            "psnr_db": PSNR_CAP_DB if rmse == 0 else min(PSNR_CAP_DB, 20 * math.log10(scale / rmse))
            if scale else 0.0,
            "cosine": sums.dot / denom if denom else (1.0 if not sums.ref_sq and not sums.cand_sq else 0.0),
        }
        if logits:
            metrics.update(_logit_values(sums))
    metrics = {k: _round(v) for k, v in metrics.items()}
    metrics.update(nan_count=sums.nan, inf_count=sums.inf)
    return metrics


def output_group(name: str) -> str:
    """"cache" for any k/v cache tensor, else the output's own name."""
    return "cache" if "_cache_" in name else name


def thresholds_for(precision: str, output: str,
                   overrides: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, float]:
    """Bounds for `output` at `precision`: the defaults, then overrides keyed by
    precision ("fp16"), output group or name ("logits", "cache", "k_cache_0"),
    or both ("fp16.logits", "fp16.cache"), later keys winning."""
    if precision not in DEFAULT_THRESHOLDS:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(DEFAULT_THRESHOLDS)})")
    bounds = dict(DEFAULT_THRESHOLDS[precision])
    group = output_group(output)
    keys = dict.fromkeys((precision, group, output, f"{precision}.{group}", f"{precision}.{output}"))
    for key in keys:
        bounds.update((overrides or {}).get(key, {}))
    unknown = sorted(set(bounds) - set(DIRECTIONS))
    if unknown:
        raise ValueError(f"unknown parity metric(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(DIRECTIONS))})")
    return bounds


def judge(metrics: Mapping[str, float], bounds: Mapping[str, float]) -> list[str]:
    """Every miss, as "metric value vs bound" strings; empty when all bounds hold."""
    misses = []
    if metrics.get("nan_count") or metrics.get("inf_count"):
        misses.append(f"non-finite output ({metrics.get('nan_count', 0)} NaN, "
                      f"{metrics.get('inf_count', 0)} Inf)")
    for name, bound in bounds.items():
        if name not in metrics:
            continue  # e.g. top-1 for a cache output
        value = metrics[name]
        if isinstance(value, float) and math.isnan(value):
            continue  # already reported as non-finite
        ok = value <= bound if DIRECTIONS[name] == "max" else value >= bound
        if not ok:
            sign = "<=" if DIRECTIONS[name] == "max" else ">="
            misses.append(f"{name} {value:g} (needs {sign} {bound:g})")
    return misses
