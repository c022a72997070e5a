"""Draws per window and per arm, never per request: counts, latency percentiles, drift histograms.

* Requests in a window: Poisson with the traffic model's expected count
  (arrivals are a Poisson process with the daily shape).  Above
  :data:`NORMAL_FROM` expected requests a count is drawn from its normal
  approximation (skewness at most 1%), which is what keeps 100,000 rps as
  cheap as 100.
* Latency percentile of n requests: the empirical q-quantile is the k-th
  order statistic, k = ceil(q n), distributed as ``F^-1(U)`` with ``U ~
  Beta(k, n - k + 1)``: exact in O(1) per window (statistics reference,
  section 3); from 10,000 requests on each side of the percentile, the
  Beta's normal approximation.  Latency is lognormal, its percentile at the gate's baseline
  and its log-scale spread `sigma`; a latency effect scales and shifts it.
* Errors: binomial among the window's requests.
* A drift gate's histogram: the target's bins have equal mass under the
  reference, so with no drift each bin gets 1/B of the requests.  A drift of
  value v is a location shift of a normal score sized so that the binned
  statistic, in the population, is v; each bin's count is Poisson (thinned
  arrivals are independent).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from rolloutlang.stats.vector import FloatArray

NORMAL_FROM = 1e4
BETA_NORMAL_FROM = 1e4


def poisson(rng: np.random.Generator, mean: npt.ArrayLike) -> FloatArray:
    """Poisson counts with these means; from :data:`NORMAL_FROM` on, the rounded normal approximation."""
    mu = np.maximum(np.asarray(mean, dtype=np.float64), 0.0)
    big = mu >= NORMAL_FROM
    if not big.any():
        out: FloatArray = rng.poisson(mu).astype(np.float64)
        return out
    if big.all():  # in place: as little memory as the exact path
        out = rng.standard_normal(mu.shape)
        out *= np.sqrt(mu)
        out += mu
        return np.maximum(np.rint(out, out=out), 0.0, out=out)
    out = np.empty(mu.shape, dtype=np.float64)
    out[~big] = rng.poisson(mu[~big])
    out[big] = np.maximum(np.rint(mu[big] + np.sqrt(mu[big]) * rng.standard_normal(int(big.sum()))), 0.0)
    return out


def binomial(rng: np.random.Generator, n: FloatArray, p: npt.ArrayLike) -> FloatArray:
    """Binomial counts out of ``n`` (floats holding whole numbers)."""
    out: FloatArray = rng.binomial(n.astype(np.int64), np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)) \
        .astype(np.float64)
    return out


def order_statistic(rng: np.random.Generator, k: FloatArray, n: FloatArray) -> FloatArray:
    """The k-th smallest of n standard uniforms: Beta(k, n - k + 1).

    Where both shape parameters reach :data:`BETA_NORMAL_FROM` the Beta is drawn
    from its normal approximation (skewness below 2%): 36 million requests an
    hour at 100% do not need the exact tail of their 99th percentile.
    """
    a, b = k, n - k + 1.0
    big = np.minimum(a, b) >= BETA_NORMAL_FROM
    if big.all():  # in place: as little memory as the exact path
        out: FloatArray = rng.standard_normal(k.shape)
        ab = a + b
        out *= np.sqrt(a * b / (ab * ab * (ab + 1.0)))
        out += a / ab
        return np.clip(out, 1e-300, 1.0 - 1e-16, out=out)
    out = np.empty(k.shape)
    if (~big).any():
        out[~big] = rng.beta(a[~big], b[~big])
    if big.any():
        ab = a[big] + b[big]
        sd = np.sqrt(a[big] * b[big] / (ab * ab * (ab + 1.0)))
        out[big] = np.clip(a[big] / ab + sd * rng.standard_normal(int(big.sum())), 1e-300, 1.0 - 1e-16)
    return out


def latency_quantile(rng: np.random.Generator, n: FloatArray, q: float, median: float, sigma: float,
                     scale: float = 1.0, shift: float = 0.0) -> FloatArray:
    """The empirical q-quantile of ``n`` lognormal latencies per window (NaN where n = 0), scaled and shifted."""
    from scipy.special import ndtri

    if (n >= 1).all():
        k = np.clip(np.ceil(q * n), 1.0, n)
        out: FloatArray = median * np.exp(sigma * ndtri(order_statistic(rng, k, n)))
        return out * scale + shift
    out = np.full(n.shape, np.nan)
    some = n >= 1
    if some.any():
        m = n[some]
        k = np.clip(np.ceil(q * m), 1.0, m)
        out[some] = median * np.exp(sigma * ndtri(order_statistic(rng, k, m))) * scale + shift
    return out


def lognormal_median(value_at_q: float, q: float, sigma: float) -> float:
    """The median of a lognormal with this spread whose q-quantile is ``value_at_q``."""
    from rolloutlang.stats.normal import normal_quantile

    return value_at_q / math.exp(sigma * normal_quantile(q))


@lru_cache(maxsize=256)
def drifted_bins(statistic: str, bins: int, value: float) -> tuple[float, ...]:
    """Bin probabilities whose statistic against equal bins is ``value``: a normal location shift, solved."""
    if value <= 0.0:
        return (1.0 / bins,) * bins
    from rolloutlang.stats import drift
    from rolloutlang.stats.normal import find_root, normal_quantile
    from rolloutlang.stats.vector import ndtr

    cuts = np.array([normal_quantile(k / bins) for k in range(1, bins)])
    uniform = np.full(bins, 1.0 / bins)

    def shifted(delta: float) -> FloatArray:
        cdf = np.concatenate(([0.0], ndtr(cuts - delta), [1.0]))
        out: FloatArray = np.diff(cdf)
        return out

    def gap(delta: float) -> float:
        return float(drift.statistic(statistic, shifted(delta), uniform)) - value  # type: ignore[arg-type]

    top = 12.0
    if gap(top) < 0.0:
        return tuple(float(x) for x in shifted(top))
    return tuple(float(x) for x in shifted(find_root(gap, 0.0, top, xtol=1e-10)))


def bin_counts(rng: np.random.Generator, requests: FloatArray, probabilities: tuple[float, ...]) -> FloatArray:
    """Per-bin counts of each window's requests (rows), given the bins' probabilities."""
    return poisson(rng, requests[:, None] * np.asarray(probabilities)[None, :])
