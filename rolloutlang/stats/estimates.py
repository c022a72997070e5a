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

import numpy as np
import numpy.typing as npt

from rolloutlang.stats.designs import Estimate
from rolloutlang.stats.vector import FloatArray, erfc


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
        if self.total_squares is None and not 0.0 <= self.total / n <= 1.0:
            raise ValueError("a binary arm has between 0 and `units` successes")
        mean, variance = arm_moments(n, self.total, self.total_squares)
        return float(mean), float(variance)

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


def arm_moments(units: npt.ArrayLike, total: npt.ArrayLike,
                total_squares: npt.ArrayLike | None = None) -> tuple[FloatArray, FloatArray]:
    """Each arm's mean and the variance of that mean, elementwise; NaN without enough data.

    Binary arms (``total_squares`` None): ``p (1 - p) / n``; continuous arms:
    ``s^2 / n`` with the (n - 1) sample variance, NaN below two units.
    """
    n = np.asarray(units, dtype=np.float64)
    t = np.asarray(total, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        usable = np.isfinite(n) & (n > 0)
        safe = np.where(usable, n, 1.0)
        mean = np.where(usable, t / safe, np.nan)
        if total_squares is None:
            variance = mean * (1.0 - mean) / safe
        else:
            squares = np.asarray(total_squares, dtype=np.float64)
            two = usable & (n >= 2)
            spread = np.maximum(squares - n * mean * mean, 0.0) / np.where(two, n - 1.0, 1.0)
            variance = np.where(two, spread / safe, np.nan)
    return mean, variance


def change_and_variance(control_mean: npt.ArrayLike, control_variance: npt.ArrayLike, candidate_mean: npt.ArrayLike,
                        candidate_variance: npt.ArrayLike, relative: bool) -> tuple[FloatArray, FloatArray]:
    """The change on the test scale and its variance, elementwise (NaN where a relative change has no log)."""
    m_c = np.asarray(control_mean, dtype=np.float64)
    m_t = np.asarray(candidate_mean, dtype=np.float64)
    v_c = np.asarray(control_variance, dtype=np.float64)
    v_t = np.asarray(candidate_variance, dtype=np.float64)
    if not relative:
        return m_t - m_c, v_t + v_c
    with np.errstate(invalid="ignore", divide="ignore"):
        usable = (m_c > 0) & (m_t > 0)
        d = np.where(usable, np.log(np.where(usable, m_t, 1.0) / np.where(usable, m_c, 1.0)), np.nan)
        v = np.where(usable, v_t / (m_t * m_t) + v_c / (m_c * m_c), np.nan)
    return d, v


def combine_strata(differences: npt.ArrayLike, variances: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Inverse-variance combination over the last axis (the strata).

    A stratum without a usable variance (no data, no successes yet) adds
    nothing; with none left the estimate is NaN with infinite variance (no
    information: the gate is inconclusive).
    """
    d = np.asarray(differences, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        usable = np.isfinite(d) & np.isfinite(v) & (v > 0.0)
        weights = np.where(usable, 1.0 / np.where(usable, v, 1.0), 0.0)
        weight_sum = weights.sum(axis=-1)
        weighted = (weights * np.where(usable, d, 0.0)).sum(axis=-1)
        some = weight_sum > 0.0
        estimate_ = np.where(some, weighted / np.where(some, weight_sum, 1.0), np.nan)
        variance = np.where(some, 1.0 / np.where(some, weight_sum, 1.0), np.inf)
    return estimate_, variance


def estimate(strata: Sequence[tuple[ArmData, ArmData]], relative: bool) -> Estimate:
    """The change (candidate vs control) on the test scale, combining strata by inverse variance.

    ``strata`` holds (control, candidate) per stage.  A stratum without a
    usable variance (no data, no successes yet) adds nothing; with none left
    the estimate has no information (the gate is inconclusive).
    """
    moments = [(*c.mean_and_variance(), *t.mean_and_variance()) for c, t in strata]
    if not moments:
        return Estimate(math.nan, math.inf)
    m_c, v_c, m_t, v_t = (np.asarray(column) for column in zip(*moments, strict=True))
    d, v = combine_strata(*change_and_variance(m_c, v_c, m_t, v_t, relative))
    return Estimate(float(d), float(v))


def estimate_arrays(control_units: npt.ArrayLike, control_total: npt.ArrayLike, candidate_units: npt.ArrayLike,
                    candidate_total: npt.ArrayLike, relative: bool, *,
                    control_squares: npt.ArrayLike | None = None, candidate_squares: npt.ArrayLike | None = None,
                    design_effect: float = 1.0) -> tuple[FloatArray, FloatArray]:
    """:func:`estimate` for many runs at once: per-arm counts with the strata on the last axis.

    Binary arms without squares, continuous arms with them.  The arms'
    variances are multiplied by ``design_effect`` (the variance a per-unit
    delta-method estimate has when users or sessions are split).  Returns the
    estimated change and its variance, one per run (NaN and inf without
    information).
    """
    m_c, v_c = arm_moments(control_units, control_total, control_squares)
    m_t, v_t = arm_moments(candidate_units, candidate_total, candidate_squares)
    d, v = change_and_variance(m_c, v_c * design_effect, m_t, v_t * design_effect, relative)
    return combine_strata(d, v)


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


def stratified_information(control_variance: npt.ArrayLike, candidate_variance: npt.ArrayLike,
                           n_control: npt.ArrayLike, n_candidate: npt.ArrayLike, deff: float = 1.0) -> FloatArray:
    """Information over the last axis (the strata): sum of ``1 / (var_t / n_t + var_c / n_c)``, over ``deff``.

    The variances are of one request's metric on the test scale, at each
    arm's true value; a stratum with an empty arm adds nothing.
    """
    n_c = np.asarray(n_control, dtype=np.float64)
    n_t = np.asarray(n_candidate, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        both = (n_c > 0) & (n_t > 0)
        per = np.where(both, 1.0 / (np.asarray(candidate_variance) / np.where(both, n_t, 1.0)
                                    + np.asarray(control_variance) / np.where(both, n_c, 1.0)), 0.0)
    out: FloatArray = per.sum(axis=-1) / deff
    return out


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
    z, p = sample_ratio_mismatch_arrays(n_control, n_candidate, candidate_share)
    return float(z), float(p)


def sample_ratio_mismatch_arrays(n_control: npt.ArrayLike, n_candidate: npt.ArrayLike,
                                 candidate_share: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """:func:`sample_ratio_mismatch` elementwise; NaN where there are no units or the share is not in (0, 1)."""
    n_c = np.asarray(n_control, dtype=np.float64)
    n_t = np.asarray(n_candidate, dtype=np.float64)
    w = np.asarray(candidate_share, dtype=np.float64)
    total = n_c + n_t
    with np.errstate(invalid="ignore", divide="ignore"):
        usable = (total > 0) & (w > 0.0) & (w < 1.0)
        z = np.where(usable, (n_t - total * w) / np.sqrt(np.where(usable, total * w * (1.0 - w), 1.0)), np.nan)
    return z, erfc(np.abs(z) / math.sqrt(2.0))
