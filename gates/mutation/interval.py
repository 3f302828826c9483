"""Confidence intervals for a proportion measured on a sample.

The mutation gate scores a uniform sample of mutants; the share it killed is
an estimate of the share the whole population would have killed. The Wilson
score interval is used rather than the textbook normal one because it stays
inside 0..1 and keeps a sensible width at the extremes (9 of 9 killed is not
"100 % ± 0"):

    >>> low, high = wilson_interval(45, 50)
    >>> round(low, 3), round(high, 3)
    (0.786, 0.957)
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
"""

from __future__ import annotations

import math

# Two-sided 95 %: the normal quantile 1 - 0.05 / 2.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (low, high) for `successes` out of `trials`.

    With no trials nothing is known, so the interval is the whole of 0..1.
    """
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
