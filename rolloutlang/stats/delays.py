"""Label delays: when a request's label (click, conversion) arrives.

Gates on delayed labels only see labels that have arrived, so their
information is the exposure-based information times the arrived fraction
(statistics reference, section 2.4).  Closed forms only: the integrated CDF
``G(t) = E[(t - D)+]`` gives every arrived-label fraction under constant
traffic without quadrature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from rolloutlang.stats.normal import normal_quantile
from rolloutlang.stats.vector import FloatArray, ndtr


@dataclass(frozen=True)
class LabelDelay:
    """Distribution of the delay between a request and its label, in hours.

    Gates on delayed labels only see labels that have arrived, so their
    information is the exposure-based information times the arrived fraction
    (reference section 2.4). Build instances with the constructors below.

    Attributes:
        kind: Delay family.
        scale_hours: Fixed delay, exponential mean, or lognormal median
            (0 for ``immediate``).
        sigma: Lognormal log-scale standard deviation (0 otherwise).
    """

    kind: Literal["immediate", "fixed", "exponential", "lognormal"]
    scale_hours: float = 0.0
    sigma: float = 0.0

    def __post_init__(self) -> None:
        """Reject parameters that do not define a proper delay law."""
        if self.kind == "immediate":
            if self.scale_hours != 0.0 or self.sigma != 0.0:
                raise ValueError("an immediate delay has no parameters")
        elif self.kind == "fixed":
            if not (math.isfinite(self.scale_hours) and self.scale_hours >= 0.0):
                raise ValueError("fixed delay must be finite and >= 0")
        elif self.kind == "exponential":
            if not (math.isfinite(self.scale_hours) and self.scale_hours > 0.0):
                raise ValueError("exponential mean must be finite and > 0")
        elif self.kind == "lognormal":
            if not (math.isfinite(self.scale_hours) and self.scale_hours > 0.0):
                raise ValueError("lognormal median must be finite and > 0")
            if not (math.isfinite(self.sigma) and self.sigma > 0.0):
                raise ValueError("lognormal sigma must be finite and > 0")
        else:
            raise ValueError(f"unknown delay kind {self.kind!r}")

    @classmethod
    def immediate(cls) -> LabelDelay:
        """Labels arrive with the request (errors, latency)."""
        return cls("immediate")

    @classmethod
    def fixed(cls, hours: float) -> LabelDelay:
        """Every label arrives exactly ``hours`` after its request."""
        return cls("fixed", float(hours))

    @classmethod
    def exponential(cls, mean_hours: float) -> LabelDelay:
        """Memoryless delay with the given mean."""
        return cls("exponential", float(mean_hours))

    @classmethod
    def lognormal(
        cls,
        median_hours: float,
        p95_hours: float | None = None,
        *,
        sigma: float | None = None,
    ) -> LabelDelay:
        """Long-tailed delay from its median and either its P95 or sigma.

        Users know a median and a P95 more often than a sigma; then
        ``sigma = ln(p95 / median) / z_0.95``.
        """
        if (p95_hours is None) == (sigma is None):
            raise ValueError("give exactly one of p95_hours and sigma")
        if p95_hours is not None:
            if not (median_hours > 0.0 and p95_hours > median_hours):
                raise ValueError("need 0 < median_hours < p95_hours")
            sigma = math.log(p95_hours / median_hours) / normal_quantile(0.95)
        assert sigma is not None
        return cls("lognormal", float(median_hours), float(sigma))

    @property
    def median_hours(self) -> float:
        """Median delay."""
        if self.kind == "exponential":
            return self.scale_hours * math.log(2.0)
        return self.scale_hours

    @property
    def mean_hours(self) -> float:
        """Mean delay."""
        if self.kind == "lognormal":
            return self.scale_hours * math.exp(0.5 * self.sigma**2)
        return self.scale_hours

    def quantile(self, q: float) -> float:
        """Delay by which a fraction ``q`` of labels has arrived."""
        if not 0.0 <= q < 1.0:
            raise ValueError("q must be in [0, 1)")
        if self.kind in ("immediate", "fixed"):
            return self.scale_hours
        if self.kind == "exponential":
            return -self.scale_hours * math.log1p(-q)
        if q == 0.0:
            return 0.0
        return self.scale_hours * math.exp(self.sigma * normal_quantile(q))

    @overload
    def cdf(self, hours: float) -> float: ...
    @overload
    def cdf(self, hours: npt.ArrayLike) -> FloatArray: ...
    def cdf(self, hours: npt.ArrayLike) -> float | FloatArray:
        """P(delay <= hours); scalars in give a float, arrays an array."""
        h = np.asarray(hours, dtype=np.float64)
        out = self._cdf(h)
        return float(out) if out.ndim == 0 else out

    @overload
    def integrated_cdf(self, hours: float) -> float: ...
    @overload
    def integrated_cdf(self, hours: npt.ArrayLike) -> FloatArray: ...
    def integrated_cdf(self, hours: npt.ArrayLike) -> float | FloatArray:
        """G(t) = integral of the CDF over [0, t] = E[(t - D)+], 0 for t <= 0.

        It is the closed form behind every arrived-label fraction under
        constant traffic, so those need no numerical quadrature.
        """
        h = np.asarray(hours, dtype=np.float64)
        out = self._integrated_cdf(h)
        return float(out) if out.ndim == 0 else out

    def arrived_fraction(self, window_hours: float) -> float:
        """Fraction of labels arrived at the end of a constant-traffic window.

        Equals ``(1/t) * integral_0^t F(u) du``: the factor by which arrived-label
        information lags exposure-based information at a look at time ``t``.
        """
        t = float(window_hours)
        if t < 0.0:
            raise ValueError("window_hours must be >= 0")
        if t == 0.0:
            return float(self._cdf(np.asarray(0.0)))
        return float(self._integrated_cdf(np.asarray(t))) / t

    def arrived_fraction_between(self, start: float, end: float, at: float) -> float:
        """Fraction arrived by ``at`` of labels for requests made in [start, end].

        Equals ``(1/(end-start)) * integral_start^end F(at - s) ds``; needed when
        an earlier stage's requests keep receiving labels in later stages.
        """
        a, b, t = float(start), float(end), float(at)
        if b < a:
            raise ValueError("need start <= end")
        if b == a:
            return float(self._cdf(np.asarray(t - a)))
        g = self._integrated_cdf(np.asarray([t - a, t - b]))
        return float(g[0] - g[1]) / (b - a)

    def _cdf(self, h: FloatArray) -> FloatArray:
        if self.kind == "immediate":
            out: FloatArray = (h >= 0.0).astype(np.float64)
        elif self.kind == "fixed":
            out = (h >= self.scale_hours).astype(np.float64)
        elif self.kind == "exponential":
            out = -np.expm1(-np.maximum(h, 0.0) / self.scale_hours)
        else:
            with np.errstate(divide="ignore"):
                log_h = np.log(np.maximum(h, 0.0))
            out = ndtr((log_h - math.log(self.scale_hours)) / self.sigma)
        return out

    def _integrated_cdf(self, h: FloatArray) -> FloatArray:
        pos = np.maximum(h, 0.0)
        if self.kind == "immediate":
            out: FloatArray = pos
        elif self.kind == "fixed":
            out = np.maximum(pos - self.scale_hours, 0.0)
        elif self.kind == "exponential":
            m = self.scale_hours
            out = pos + m * np.expm1(-pos / m)
        else:
            # E[(t-D)+] = t P(D<=t) - E[D; D<=t] for D ~ LogNormal(mu, s).
            mu, s = math.log(self.scale_hours), self.sigma
            with np.errstate(divide="ignore"):
                log_t = np.log(pos)
            partial_mean = math.exp(mu + 0.5 * s * s) * ndtr((log_t - mu - s * s) / s)
            out = np.maximum(pos * ndtr((log_t - mu) / s) - partial_mean, 0.0)
        return out
