"""Traffic as it arrives: labelled requests from stages that run at given hours of the day.

The request rate follows the traffic model's daily shape,
``lambda(u) = lambda0 (1 + A cos(omega u + psi))`` with ``omega = 2 pi / 24h``,
``u`` the time since the rollout started and ``psi = 2 pi (start - peak) / 24h``
(start and peak as hours of the day).  A request made at ``u`` has its label
by the look at ``T`` with probability ``F(T - u)`` (the label delay's CDF), so
a stage running from ``a`` to ``b`` has, at ``T``,

    lambda0 [C0 + A (cos psi Cc - sin psi Cs)]

labelled requests (times the arm's share), where ``C0``, ``Cc``, ``Cs`` are
the integrals of ``F(T - u)`` times 1, ``cos(omega u)`` and ``sin(omega u)``
over ``[a, min(b, T)]``.  ``C0`` is exact (the delay's integrated CDF); the
other two come from antiderivatives of ``cos(omega v) F(v)`` and ``sin(omega v)
F(v)`` over the delay ``v``, tabulated once per delay law on 5-minute cells
(relative error below 1e-4 of the stage's labels, checked against quadrature
in the tests), so each look and stage costs two interpolations.  The three do
not depend on the start, so the *worst start*, the one leaving the fewest
labels at a look, has a closed form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rolloutlang.stats.delays import LabelDelay
from rolloutlang.stats.vector import FloatArray

DAY_S = 86400.0
OMEGA = 2.0 * math.pi / DAY_S
# Cells of the tabulated delay antiderivatives (see _delay_table).
CELL_S = 300.0
HOUR_S = 3600.0


@dataclass(frozen=True)
class LabelledComponents:
    """``C0``, ``Cc``, ``Cs`` (request-seconds per unit of rate) for each look (rows) and window (columns)."""

    constant: FloatArray
    cosine: FloatArray
    sine: FloatArray

    def labelled(self, rate_rps: float, amplitude: float, phase: float) -> FloatArray:
        """Labelled requests (both arms together) per look and window."""
        out: FloatArray = rate_rps * (self.constant
                                      + amplitude * (math.cos(phase) * self.cosine - math.sin(phase) * self.sine))
        return np.maximum(out, 0.0)


def phase(start_hour: float, peak_hour: float) -> float:
    """psi for a rollout starting at ``start_hour`` with traffic peaking at ``peak_hour``."""
    return 2.0 * math.pi * (start_hour - peak_hour) / 24.0


def requests_between(starts: npt.ArrayLike, ends: npt.ArrayLike, rate_rps: float, amplitude: float,
                     phase_: float) -> FloatArray:
    """Expected requests from ``starts`` to ``ends`` (seconds on the rollout clock), elementwise; 0 where empty.

    The integral of ``rate (1 + A cos(omega u + psi))``, in closed form, so
    whole days hold exactly ``rate x time``.
    """
    a = np.asarray(starts, dtype=np.float64)
    b = np.maximum(np.asarray(ends, dtype=np.float64), a)
    swing = amplitude / OMEGA * (np.sin(OMEGA * b + phase_) - np.sin(OMEGA * a + phase_))
    out: FloatArray = rate_rps * ((b - a) + swing)
    return np.maximum(out, 0.0)


def _delay_table(delay: LabelDelay, horizon_s: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Antiderivatives of cos(omega v) F(v) and sin(omega v) F(v) on a grid of delays v (seconds).

    Each cell of :data:`CELL_S` contributes the exact integral of F times the
    exact mean of cos (sin) over the cell; a step of F (a fixed delay) is a
    grid point, so linear interpolation between grid points stays accurate.
    """
    cells = max(1, math.ceil(horizon_s / CELL_S))
    grid = np.arange(cells + 1, dtype=np.float64) * CELL_S
    if delay.kind == "fixed" and 0.0 < delay.scale_hours * HOUR_S < grid[-1]:
        grid = np.unique(np.append(grid, delay.scale_hours * HOUR_S))
    g = np.asarray(delay.integrated_cdf(grid / HOUR_S), dtype=np.float64)
    mass = HOUR_S * np.diff(g)
    width = np.diff(grid)
    mean_cos = (np.sin(OMEGA * grid[1:]) - np.sin(OMEGA * grid[:-1])) / (OMEGA * width)
    mean_sin = (np.cos(OMEGA * grid[:-1]) - np.cos(OMEGA * grid[1:])) / (OMEGA * width)
    cos_f = np.concatenate(([0.0], np.cumsum(mass * mean_cos)))
    sin_f = np.concatenate(([0.0], np.cumsum(mass * mean_sin)))
    return grid, cos_f, sin_f


def labelled_components(
    windows: Sequence[tuple[float, float]],
    looks: Sequence[float],
    delay: LabelDelay,
    *,
    diurnal: bool = True,
) -> LabelledComponents:
    """The integrals behind the labelled requests of each window (start, end in seconds) at each look.

    With ``v = T - u``, ``C0 = integral of F(v)`` over ``[T - min(b, T), T - a]``
    (exact, from the delay's integrated CDF), and
    ``Cc = cos(omega T) [CF] + sin(omega T) [SF]``,
    ``Cs = sin(omega T) [CF] - cos(omega T) [SF]`` over the same interval, where CF
    and SF are the antiderivatives of ``cos(omega v) F(v)`` and ``sin(omega v) F(v)``
    tabulated once (:func:`_delay_table`).  Without ``diurnal`` only ``C0`` is computed.
    """
    t = np.asarray(looks, dtype=np.float64)[:, None]
    a = np.asarray([w[0] for w in windows], dtype=np.float64)[None, :]
    b = np.asarray([w[1] for w in windows], dtype=np.float64)[None, :]
    v_hi = np.maximum(t - a, 0.0)  # the oldest requests of the window, by the look
    v_lo = np.maximum(t - np.minimum(b, t), 0.0)
    v_lo = np.minimum(v_lo, v_hi)
    g = np.asarray(delay.integrated_cdf(np.concatenate((v_hi, v_lo), axis=1) / HOUR_S), dtype=np.float64)
    half = a.shape[1]
    constant = HOUR_S * (g[:, :half] - g[:, half:])
    if not diurnal or constant.size == 0:
        zeros = np.zeros_like(constant)
        return LabelledComponents(constant, zeros, zeros)
    grid, cos_f, sin_f = _delay_table(delay, float(v_hi.max()))
    cf = np.interp(v_hi, grid, cos_f) - np.interp(v_lo, grid, cos_f)
    sf = np.interp(v_hi, grid, sin_f) - np.interp(v_lo, grid, sin_f)
    c, s = np.cos(OMEGA * t), np.sin(OMEGA * t)
    return LabelledComponents(constant, c * cf + s * sf, s * cf - c * sf)


def worst_phase(components: LabelledComponents, weights: Sequence[float], look: int = -1) -> float:
    """The phase psi that minimises ``sum_s weights[s] * labelled[look, s]``: the worst start of day.

    The diurnal part is ``A R cos(psi + phi0)`` with ``R e^{i phi0} = X + iY``,
    X and Y the weighted cosine and sine integrals, so the minimum is at
    ``psi = pi - phi0``.
    """
    w = np.asarray(weights, dtype=np.float64)
    x = float(components.cosine[look] @ w)
    y = float(components.sine[look] @ w)
    if x == 0.0 and y == 0.0:
        return 0.0
    return math.pi - math.atan2(y, x)
