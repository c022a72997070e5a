"""From data to the estimate a gate tests, and the information a plan expects.

Data side (``rollout evaluate``, the simulator): each arm's data at a look is
an :class:`ArmData` in the unit of randomization; :func:`estimate` turns
per-stratum arms into the change on the test scale and its variance:

* a binary metric per request: successes out of requests, variance
  ``p (1 - p) / n``;
* a continuous metric: sums and sums of squares, variance ``s^2 / n``;
* a ratio metric per unit (CTR per user: clicks and impressions per user), by
  the delta method: with per-unit numerator x and denominator y and
  ``R = sum x / sum y``, ``Var(R) = (s_x^2 - 2 R s_xy + R^2 s_y^2) / (n ybar^2)``.

The change is ``mean_candidate - mean_control`` (absolute gates) or
``log(mean_candidate / mean_control)`` (relative gates, variance by the delta
method).  Stages with different weights are strata: pooling them is biased
when the baseline moves while the weights change (Simpson's paradox, statistics
reference 2.3), so strata are combined with inverse-variance weights.

Planning side (the checks): :func:`planned_information` is the information a
labelled sample will carry, computed at no change (both arms at the baseline),
times ``1 / design effect`` when units of several requests are randomized
together: ``deff = 1 + icc (m (1 + cv^2) - 1)`` for m requests per unit with
coefficient of variation cv and intra-unit correlation icc, which is what the
delta method gives for a clustered binary outcome (Kish's design effect).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rolloutlang.stats.designs import Estimate


@dataclass(frozen=True)
class ArmData:
    """One arm's data at a look, in its unit of randomization.

    Attributes:
        units: number of units (requests, users or sessions).
        total: sum of the metric over the units (successes, for a binary metric per request).
        total_squares: sum of squares of the per-unit metric (continuous); None for binary.
        denominator: for a ratio metric per unit, the sum of the per-unit denominators
            (impressions per user); None otherwise.
        denominator_squares: sum of squared per-unit denominators (ratio metrics).
        cross: sum over units of numerator x denominator (ratio metrics).
    """

    units: float
    total: float
    total_squares: float | None = None
    denominator: float | None = None
    denominator_squares: float | None = None
    cross: float | None = None

    def mean_and_variance(self) -> tuple[float, float]:
        """The arm's mean and the variance of that mean; variance NaN without enough data."""
        n = float(self.units)
        if not (n > 0 and math.isfinite(n)):
            return math.nan, math.nan
        if self.denominator is not None:
            return self._ratio()
        mean = self.total / n
        if self.total_squares is None:  # binary
            if not 0.0 <= mean <= 1.0:
                raise ValueError("a binary arm has between 0 and `units` successes")
            return mean, mean * (1.0 - mean) / n
        if n < 2:
            return mean, math.nan
        spread = max(self.total_squares - n * mean * mean, 0.0) / (n - 1.0)
        return mean, spread / n

    def _ratio(self) -> tuple[float, float]:
        n = float(self.units)
        y_sum = float(self.denominator or 0.0)
        if y_sum <= 0 or n < 2 or self.total_squares is None or self.denominator_squares is None \
                or self.cross is None:
            return math.nan, math.nan
        ratio = self.total / y_sum
        y_bar = y_sum / n
        x_bar = self.total / n
        s_xx = (self.total_squares - n * x_bar * x_bar) / (n - 1.0)
        s_yy = (self.denominator_squares - n * y_bar * y_bar) / (n - 1.0)
        s_xy = (self.cross - n * x_bar * y_bar) / (n - 1.0)
        spread = max(s_xx - 2.0 * ratio * s_xy + ratio * ratio * s_yy, 0.0)
        return ratio, spread / (n * y_bar * y_bar)


def _difference(control: ArmData, candidate: ArmData, relative: bool) -> tuple[float, float]:
    m_c, v_c = control.mean_and_variance()
    m_t, v_t = candidate.mean_and_variance()
    if relative:
        if not (m_c > 0 and m_t > 0):
            return math.nan, math.nan
        return math.log(m_t / m_c), v_t / (m_t * m_t) + v_c / (m_c * m_c)
    return m_t - m_c, v_t + v_c


def estimate(strata: Sequence[tuple[ArmData, ArmData]], relative: bool) -> Estimate:
    """The change (candidate vs control) on the test scale, combining strata by inverse variance.

    ``strata`` holds (control, candidate) per stage.  A stratum without a
    usable variance (no data, no successes yet) adds nothing; with none left
    the estimate has no information (the gate is inconclusive).
    """
    weight_sum = 0.0
    weighted = 0.0
    for control, candidate in strata:
        d, v = _difference(control, candidate, relative)
        if not (math.isfinite(d) and math.isfinite(v) and v > 0.0):
            continue
        weight_sum += 1.0 / v
        weighted += d / v
    if weight_sum <= 0.0:
        return Estimate(math.nan, math.inf)
    return Estimate(weighted / weight_sum, 1.0 / weight_sum)


def design_effect(units_per: float, icc: float, cv: float = 0.0) -> float:
    """Variance inflation when units of ``units_per`` requests are randomized together.

    ``1 + icc (m (1 + cv^2) - 1)``; 1 for request-level randomization (m = 1).
    """
    if units_per < 1.0 or not 0.0 <= icc <= 1.0 or cv < 0.0:
        raise ValueError("need units_per >= 1, 0 <= icc <= 1, cv >= 0")
    return 1.0 + icc * (units_per * (1.0 + cv * cv) - 1.0)


def unit_variance(kind: str, baseline: float, sd: float | None, relative: bool) -> float:
    """Variance of one request's metric at the baseline, on the test scale (divided by baseline^2 if relative)."""
    if kind == "binary":
        variance = baseline * (1.0 - baseline)
    else:
        if sd is None or sd <= 0:
            raise ValueError("a continuous metric needs sd > 0")
        variance = sd * sd
    if relative:
        if baseline <= 0:
            raise ValueError("a relative change needs a positive baseline")
        variance /= baseline * baseline
    return variance


def planned_information(unit_var: float, n_control: float, n_candidate: float, deff: float = 1.0) -> float:
    """Information (1 / variance of the estimated change) of one stratum with these labelled requests."""
    if n_control <= 0 or n_candidate <= 0:
        return 0.0
    return n_control * n_candidate / ((n_control + n_candidate) * unit_var * deff)


def sample_ratio_mismatch(n_control: float, n_candidate: float, candidate_share: float) -> tuple[float, float]:
    """z-statistic and two-sided p-value of observed counts against the declared split.

    The chi-square test with one degree of freedom: chi^2 = z^2 with
    ``z = (n_candidate - N w) / sqrt(N w (1 - w))``; p = erfc(|z| / sqrt 2).
    """
    total = n_control + n_candidate
    if total <= 0 or not 0.0 < candidate_share < 1.0:
        return math.nan, math.nan
    expected = total * candidate_share
    z = (n_candidate - expected) / math.sqrt(total * candidate_share * (1.0 - candidate_share))
    return z, math.erfc(abs(z) / math.sqrt(2.0))
