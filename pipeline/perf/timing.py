"""Timing that a busy machine cannot turn into a verdict: interleaved trials, medians, intervals.

    >>> trials = run_trials([Cell(key="a", run=f), Cell(key="b", run=g)], warmup=2, trials=9)  # doctest: +SKIP
    >>> median_interval(trials.samples["a"])                      # doctest: +SKIP
    Estimate(median=0.0012, low=0.0011, high=0.0014, trials=9, confidence=0.961)
    >>> paired_ratio(trials.samples["a"], trials.samples["b"])    # a/b, round by round  # doctest: +SKIP

Every cell is warmed up, then the cells run in rounds: one trial of each cell
per round, in a fresh seeded order each round, so a load spike hits every
cell of that round rather than one runtime's whole series, and no cell
always runs right after the same neighbour (a long prefill evicting the
caches a short decode then has to refill). A ratio between two cells
(ONNX against eager, decode at 512 against decode at 64) is taken round by
round, which cancels what the round had in common. Cells may be grouped (a
runtime whose memory is readied ahead of its calls): a group's cells then run
back to back in a round, the groups in counterbalanced order (`round_order`).

A median's interval comes from order statistics (distribution-free: no
normality assumed): with n trials the interval [x_(k), x_(n-k+1)] covers the
true median with probability 1 - 2·P(Bin(n, ½) < k); `confidence` reports
the coverage actually reached, which with few trials is below the asked-for
level (5 trials reach at most 93.75 %). Monotone transforms keep order
statistics, so a rate is the inverse of a time with its ends swapped.

Within a round, each trial is preceded by one untimed call of the same cell
(`rewarm`): the cell before it may have evicted its weights from the CPU
caches, and a decode loop on a device runs step after step with them warm,
so that is the figure to report (a user timing the runtime directly sees the
same; scripts/bench_performance.py compares the two).

A call that takes `self_warming_s` or longer (a prefill of thousands of
tokens) warms the caches itself: such a cell gets one warm-up call and no
re-warming call, which would double the gate's time for no change in what is
measured.

The time cap (`max_s`) bounds the rounds past `min_trials`: those always run,
except for a long cell, which is timed in at least `LONG_MIN_TRIALS` rounds
(or `min_trials`, if fewer) and then only while the cap allows: a call of
seconds is its own average over millions of operations, and seven of them at
every length of a large model would take the gate most of an hour. Its
interval then comes from fewer trials, and says so in `confidence`.
The clock is injected, so tests never depend on wall-clock time.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

LONG_MIN_TRIALS = 3  # rounds a long cell (see self_warming_s) always gets
SELF_WARMING_S = 0.5  # a call this long warms the caches itself


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """A median with its order-statistic interval."""

    median: float
    low: float
    high: float
    trials: int
    confidence: float

    def scaled(self, factor: float) -> Estimate:
        """Every figure times a positive `factor` (seconds to milliseconds)."""
        return Estimate(median=self.median * factor, low=self.low * factor, high=self.high * factor,
                        trials=self.trials, confidence=self.confidence)

    def inverted(self, numerator: float = 1.0) -> Estimate:
        """numerator / x: a time per call becomes a rate (the interval's ends swap)."""
        return Estimate(median=numerator / self.median, low=numerator / self.high, high=numerator / self.low,
                        trials=self.trials, confidence=self.confidence)

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        return {"median": round(self.median, digits), "low": round(self.low, digits),
                "high": round(self.high, digits), "trials": self.trials,
                "confidence": round(self.confidence, 4)}


def _below(k: int, n: int) -> float:
    """P(Bin(n, 1/2) < k)."""
    return sum(math.comb(n, i) for i in range(k)) / 2 ** n


def median_interval(samples: Sequence[float], confidence: float = 0.95) -> Estimate:
    """The median and the narrowest symmetric order-statistic interval reaching `confidence`.

    >>> e = median_interval([5, 1, 4, 2, 3, 9, 8, 7, 6])
    >>> (e.median, e.low, e.high, round(e.confidence, 3))
    (5, 2, 8, 0.961)
    """
    if not samples:
        raise ValueError("no samples to estimate from")
    ordered = sorted(samples)
    n = len(ordered)
    k = 1
    while k + 1 <= (n + 1) // 2 and 1 - 2 * _below(k + 1, n) >= confidence:
        k += 1
    return Estimate(median=statistics.median(ordered), low=ordered[k - 1], high=ordered[n - k],
                    trials=n, confidence=1 - 2 * _below(k, n))


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float],
                 confidence: float = 0.95) -> Estimate:
    """The median of round-by-round ratios, with its interval."""
    ratios = [a / b for a, b in zip(numerators, denominators) if b > 0]
    return median_interval(ratios, confidence)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """One thing to time: `run()` is one call (a prefill at T, one decode step); `before()`,
    when given, is called ahead of every call, off the clock (it readies memory, never work
    the call would do). Cells of one `group` (one runtime's) run back to back within a round
    (see `round_order`)."""

    key: str
    run: Callable[[], Any]
    before: Callable[[], Any] | None = None
    group: str = ""


def round_order(order: list[Cell], rng: random.Random, last_groups: list[str] | None) -> tuple[list[Cell], list[str]]:
    """The next round's order, and its order of groups. One group: `order` shuffled. Several:
    each group's cells shuffled and kept together, the groups in the reverse of the last round's
    order (a seeded shuffle in the first round): A B, B A, A B... (counterbalanced, so a drift
    in load cancels over rounds), and the group that ended a round begins the next, so a
    runtime whose memory is readied ahead of its calls is readied once per round."""
    groups = list(dict.fromkeys(c.group for c in order))
    if len(groups) == 1:
        shuffled = list(order)
        rng.shuffle(shuffled)
        return shuffled, groups
    if last_groups is None:
        rng.shuffle(groups)
    else:
        groups = [g for g in reversed(last_groups) if g in groups]
    out: list[Cell] = []
    for group in groups:
        members = [c for c in order if c.group == group]
        rng.shuffle(members)
        out += members
    return out, groups


@dataclass(frozen=True, slots=True, kw_only=True)
class Trials:
    samples: Mapping[str, tuple[float, ...]]  # seconds per call, one per round, by cell key
    rounds: int
    capped: bool  # stopped by the time cap before `trials` rounds
    elapsed_s: float


def run_trials(cells: Sequence[Cell], *, warmup: int = 2, trials: int = 9, min_trials: int = 5,
               max_s: float = 30.0, clock: Callable[[], float] = time.perf_counter, seed: int = 0,
               rewarm: bool = True, self_warming_s: float = SELF_WARMING_S,
               warm: frozenset[str] = frozenset()) -> Trials:
    """Warm every cell up, then time them in shuffled rounds until `trials` or the cap.

    `warm`: keys of long cells the caller has just called once (a probe): that call was
    their warm-up, so they get none here."""
    if min_trials < 1 or trials < min_trials:
        raise ValueError(f"need 1 <= min_trials ({min_trials}) <= trials ({trials})")
    start = clock()
    long_calls: set[str] = set(warm)  # cells whose one call warms them (see the module docstring)

    def timed(cell: Cell) -> float:
        if cell.before is not None:
            cell.before()
        began = clock()
        cell.run()
        took = clock() - began
        if took >= self_warming_s:
            long_calls.add(cell.key)
        return took

    first_seen = list(dict.fromkeys(c.group for c in cells))
    for cell in sorted(cells, key=lambda c: first_seen.index(c.group)):  # a group's cells back to back
        for _ in range(0 if cell.key in warm else warmup):
            timed(cell)
            if cell.key in long_calls:
                break
    samples: dict[str, list[float]] = {c.key: [] for c in cells}
    order, rng = list(cells), random.Random(seed)
    groups: list[str] | None = None
    rounds = 0

    def floor(cell: Cell) -> int:
        return min(min_trials, LONG_MIN_TRIALS) if cell.key in long_calls else min_trials

    for r in range(trials):
        over = clock() - start > max_s
        due = [c for c in order if r < floor(c) or not over]
        if not due:
            break
        order, groups = round_order(order, rng, groups)
        for cell in order:
            if cell not in due:
                continue
            if rewarm and cell.key not in long_calls:
                if cell.before is not None:
                    cell.before()
                cell.run()
            samples[cell.key].append(timed(cell))
        rounds += 1
    return Trials(samples={k: tuple(v) for k, v in samples.items()}, rounds=rounds, capped=rounds < trials,
                  elapsed_s=clock() - start)
