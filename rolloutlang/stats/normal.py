"""Scalar normal helpers and a root finder, in plain Python.

Nothing here imports numpy or scipy: the checks need these for every business
gate, and scipy alone costs about half a second to import.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

_STANDARD_NORMAL = NormalDist()
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def normal_cdf(x: float) -> float:
    """Standard normal CDF, via erfc so both tails stay accurate."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_pdf(x: float) -> float:
    """Standard normal density."""
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def normal_quantile(p: float) -> float:
    """Standard normal quantile (inverse CDF); +-inf at 1 and 0."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return _STANDARD_NORMAL.inv_cdf(p)


def check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def check_power(power: float) -> None:
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")


def critical_z(alpha: float, two_sided: bool) -> float:
    """Critical value of a z-test: z_{1-alpha/2} or z_{1-alpha}."""
    check_alpha(alpha)
    return normal_quantile(1.0 - (alpha / 2.0 if two_sided else alpha))


def find_root(f: Callable[[float], float], lo: float, hi: float, xtol: float = 1e-12) -> float:
    """A root of ``f`` in [lo, hi], where f changes sign: Illinois regula falsi, bisection as fallback."""
    f_lo, f_hi = f(lo), f(hi)
    if f_lo == 0.0:
        return lo
    if f_hi == 0.0:
        return hi
    if (f_lo > 0.0) == (f_hi > 0.0):
        raise ValueError("f(lo) and f(hi) must have different signs")
    side = 0
    for _ in range(400):
        if hi - lo <= xtol * (1.0 + abs(lo) + abs(hi)) / 2.0:
            break
        x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        if not lo < x < hi or side in (-3, 3):  # stalled on one side: bisect
            x = 0.5 * (lo + hi)
            side = 0
        f_x = f(x)
        if f_x == 0.0:
            return x
        if (f_x > 0.0) == (f_lo > 0.0):
            lo, f_lo = x, f_x
            side = side - 1 if side <= 0 else -1
            if side == -2:
                f_hi /= 2.0
        else:
            hi, f_hi = x, f_x
            side = side + 1 if side >= 0 else 1
            if side == 2:
                f_lo /= 2.0
    return 0.5 * (lo + hi)


def solve_for_power(
    power_at: Callable[[float], float],
    target: float,
    lo: float = 1.0,
    hi: float = 64.0,
    *,
    rel_tol: float = 1e-6,
) -> float | None:
    """Smallest scale x in [lo, hi] with ``power_at(x) >= target``.

    Used to say "stage X needs to be N h longer". ``power_at`` must be
    non-decreasing; bisection needs no continuity, so step-like Monte Carlo or
    integer-sized power curves work. Returns ``lo`` if it already suffices,
    ``None`` if even ``hi`` does not, else a value within ``rel_tol`` above
    the threshold (at which the target is met).
    """
    if not 0.0 < lo <= hi:
        raise ValueError("need 0 < lo <= hi")
    if power_at(lo) >= target:
        return lo
    if power_at(hi) < target:
        return None
    a, b = lo, hi
    while b - a > rel_tol * b:
        mid = math.sqrt(a * b)
        if not a < mid < b:  # floating-point floor
            break
        if power_at(mid) >= target:
            b = mid
        else:
            a = mid
    return b
