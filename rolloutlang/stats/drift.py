"""Distribution-shift statistics for drift gates: PSI, KL and JS divergence over binned counts.

Pure functions over numpy arrays.  Every function takes counts whose *last*
axis is the bins and reduces over it, so a batch of histograms (the
simulator's Monte Carlo draws, or the windows of a fail-after check) is one
call: ``psi(candidate[..., B], reference[..., B]) -> [...]``.

Conventions (documented in ``docs/targets.md``):

* Counts become proportions of their own total.  A histogram whose total is
  0 has no distribution: its statistic is NaN, which the callers treat as
  "no data" (never as no drift).
* PSI and KL have a log of a ratio of proportions, infinite where a bin is
  empty on one side.  Both smooth the proportions first: each is raised to
  at least ``epsilon`` (default :data:`EPSILON` = 1e-4, a common choice for
  PSI) and the vector is renormalised to sum to 1.  JS needs no smoothing
  (its mixture is positive wherever either side is) and uses none.
* Natural logarithms throughout, so JS lies in [0, ln 2].
* ``kl`` is KL(candidate || reference): the information lost when the
  reference stands for what the candidate sees.

Binning: a drift gate's ``bins N`` is applied to the exporter's histogram
buckets by :func:`rebin_cumulative`, which merges adjacent buckets into at
most N bins of (nearly) equal reference mass, the usual deciles for PSI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "EPSILON",
    "DriftStatistic",
    "js",
    "kl",
    "proportions",
    "psi",
    "rebin_cumulative",
    "statistic",
]

FloatArray = npt.NDArray[np.float64]
DriftStatistic = Literal["psi", "kl", "js"]

EPSILON = 1e-4


def proportions(counts: npt.ArrayLike, epsilon: float = 0.0) -> FloatArray:
    """Counts as proportions over the last axis; NaN where the total is 0.

    With ``epsilon > 0``, proportions below it are raised to it and the
    result renormalised, so no bin is empty.
    """
    c = np.asarray(counts, dtype=np.float64)
    if np.any(c < 0):
        raise ValueError("counts must not be negative")
    total = c.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, c / np.where(total > 0, total, 1.0), np.nan)
    if epsilon > 0:
        p = np.maximum(p, epsilon)
        p = p / p.sum(axis=-1, keepdims=True)
    out: FloatArray = p
    return out


def _check(candidate: npt.ArrayLike, reference: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    c = np.asarray(candidate, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if c.shape[-1:] != r.shape[-1:]:
        raise ValueError(f"candidate and reference need the same bins, got {c.shape[-1:]} and {r.shape[-1:]}")
    if c.shape[-1] < 1:
        raise ValueError("need at least one bin")
    return c, r


def psi(candidate: npt.ArrayLike, reference: npt.ArrayLike, epsilon: float = EPSILON) -> FloatArray:
    """Population stability index: sum over bins of (p - q) ln(p / q), p the candidate's proportions."""
    c, r = _check(candidate, reference)
    p, q = proportions(c, epsilon), proportions(r, epsilon)
    out: FloatArray = np.sum((p - q) * np.log(p / q), axis=-1)
    return out


def kl(candidate: npt.ArrayLike, reference: npt.ArrayLike, epsilon: float = EPSILON) -> FloatArray:
    """Kullback-Leibler divergence KL(p || q) = sum p ln(p / q), p the candidate's proportions."""
    c, r = _check(candidate, reference)
    p, q = proportions(c, epsilon), proportions(r, epsilon)
    out: FloatArray = np.sum(p * np.log(p / q), axis=-1)
    return out


def js(candidate: npt.ArrayLike, reference: npt.ArrayLike) -> FloatArray:
    """Jensen-Shannon divergence: the mean KL of each side to their mixture; in [0, ln 2]."""
    c, r = _check(candidate, reference)
    p, q = proportions(c), proportions(r)
    m = 0.5 * (p + q)

    def half(a: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            terms = np.where(a > 0, a * np.log(a / np.where(m > 0, m, 1.0)), 0.0)
        summed: FloatArray = np.sum(terms, axis=-1)
        return summed

    out: FloatArray = 0.5 * half(p) + 0.5 * half(q)
    # Keep the "no data" marker: a side with no counts has no distribution.
    out = np.where(np.isnan(p).any(axis=-1) | np.isnan(q).any(axis=-1), np.nan, out)
    return out


def statistic(name: DriftStatistic, candidate: npt.ArrayLike, reference: npt.ArrayLike,
              epsilon: float = EPSILON) -> FloatArray:
    """The named statistic (``psi``, ``kl`` or ``js``) of candidate counts against reference counts."""
    if name == "psi":
        return psi(candidate, reference, epsilon)
    if name == "kl":
        return kl(candidate, reference, epsilon)
    if name == "js":
        return js(candidate, reference)
    raise ValueError(f"unknown drift statistic {name!r}: use psi, kl or js")


def rebin_cumulative(cumulative: npt.ArrayLike, reference_cumulative: npt.ArrayLike,
                     bins: int) -> tuple[FloatArray, FloatArray]:
    """Per-bin counts from cumulative histogram buckets (Prometheus ``le`` order), merged into at most ``bins``.

    Both inputs are cumulative counts over the same ascending bucket bounds,
    the last being ``+Inf``.  The cut points are the bucket bounds nearest to
    the reference's quantiles 1/N, 2/N, ... so each bin holds about the same
    reference mass; a bucket is never split, so with fewer buckets than
    ``bins`` every bucket is its own bin.  Returns (counts, reference counts),
    non-cumulative.  ``cumulative`` may be a batch (``[..., buckets]``); the
    cut points come from the one reference.
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    cum = np.asarray(cumulative, dtype=np.float64)
    ref = np.asarray(reference_cumulative, dtype=np.float64)
    if ref.ndim != 1 or cum.shape[-1] != ref.shape[0]:
        raise ValueError("need one reference histogram with the candidate's buckets")
    # Cumulative counts can dip by rounding (Prometheus extrapolates increase()); keep them monotone.
    ref = np.maximum.accumulate(np.maximum(ref, 0.0))
    cum = np.maximum.accumulate(np.maximum(cum, 0.0), axis=-1)
    cuts = _cut_indices(ref, bins)
    idx = np.asarray(cuts, dtype=np.intp)
    cand_at = cum[..., idx]
    ref_at = ref[idx]
    cand_counts: FloatArray = np.diff(cand_at, axis=-1, prepend=0.0)
    ref_counts: FloatArray = np.diff(ref_at, prepend=0.0)
    return cand_counts, ref_counts


def _cut_indices(reference: FloatArray, bins: int) -> Sequence[int]:
    """Indices of the buckets that close each bin; the last bucket always closes one."""
    n = reference.shape[0]
    total = reference[-1]
    if n <= bins or total <= 0:
        return list(range(n))
    cuts: list[int] = []
    for k in range(1, bins):
        target = total * k / bins
        i = int(np.argmin(np.abs(reference - target)))
        if i < n - 1 and (not cuts or i > cuts[-1]):
            cuts.append(i)
    cuts.append(n - 1)
    return cuts
