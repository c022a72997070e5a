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
other two split the stage into 15-minute pieces, each with the exact mean of
the cosine and the exact integral of F (relative error about 3e-4 of the
diurnal term, checked against quadrature in the tests).  The three do not depend on the start, so the *worst start*,
the one leaving the fewest labels at a look, has a closed form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rolloutlang.stats.delays import LabelDelay
from rolloutlang.stats.vector import FloatArray

DAY_S = 86400.0
OMEGA = 2.0 * math.pi / DAY_S
PIECE_S = 900.0
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


def labelled_components(
    windows: Sequence[tuple[float, float]],
    looks: Sequence[float],
    delay: LabelDelay,
    *,
    diurnal: bool = True,
) -> LabelledComponents:
    """The integrals behind the labelled requests of each window (start, end in seconds) at each look.

    Without ``diurnal`` only ``C0`` is computed (one exact piece per window).
    Looks and piece edges sit on regular grids, so the delay law is evaluated
    once per distinct time difference.
    """
    n_windows = len(windows)
    t = np.asarray(looks, dtype=np.float64)
    shape = (t.size, n_windows)
    edges: list[FloatArray] = []
    firsts: list[int] = []  # index of each window's first piece
    for a, b in windows:
        count = max(1, math.ceil((b - a) / PIECE_S - 1e-9)) if diurnal and b > a else 1
        firsts.append(sum(e.size - 1 for e in edges))
        edges.append(np.linspace(a, max(a, b), count + 1))
    if not edges or t.size == 0:
        zeros = np.zeros(shape)
        return LabelledComponents(zeros, zeros, zeros)
    p = np.concatenate([e[:-1] for e in edges])[None, :]
    q_full = np.concatenate([e[1:] for e in edges])[None, :]
    # Integral over [p, min(q, T)] of F((T - u) / 1h) du = 1h * (G((T - p)+ / 1h) - G((T - q)+ / 1h)).
    x = np.concatenate((np.maximum(t[:, None] - p, 0.0), np.maximum(t[:, None] - q_full, 0.0)), axis=1)
    distinct, where = np.unique(np.round(x / HOUR_S, 9), return_inverse=True)
    g = np.asarray(delay.integrated_cdf(distinct), dtype=np.float64)[where].reshape(x.shape)
    half = p.shape[1]
    mass = HOUR_S * (g[:, :half] - g[:, half:])
    starts = np.asarray(firsts)
    constant = np.add.reduceat(mass, starts, axis=1)
    if not diurnal:
        zeros = np.zeros(shape)
        return LabelledComponents(constant, zeros, zeros)
    q = np.minimum(q_full, t[:, None])
    active = q > p
    width = np.where(active, q - p, 1.0)
    mean_cos = np.where(active, (np.sin(OMEGA * q) - np.sin(OMEGA * p)) / (OMEGA * width), 0.0)
    mean_sin = np.where(active, (np.cos(OMEGA * p) - np.cos(OMEGA * q)) / (OMEGA * width), 0.0)
    return LabelledComponents(constant, np.add.reduceat(mass * mean_cos, starts, axis=1),
                              np.add.reduceat(mass * mean_sin, starts, axis=1))


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
