"""Fixed-horizon z-tests: power and sample size for two proportions and two means.

These follow statsmodels (``power_proportions_2indep``,
``samplesize_proportions_2indep_onetail``, ``NormalIndPower``,
``TTestIndPower``): ``two_sided=True`` by default, and two-sided power counts
both rejection tails.  Sample sizes use the usual one-tail closed form
(Fleiss), which ignores the far tail and so is never smaller than the exact
root.  scipy is imported only by the t-test variants, which nothing in
``rollout check`` calls.
"""

from __future__ import annotations

import math

from rolloutlang.stats.normal import check_alpha, check_power, critical_z, find_root, normal_cdf, normal_quantile


def z_test_power(drift: float, alpha: float = 0.05, two_sided: bool = True, sd_ratio: float = 1.0) -> float:
    """Power of a z-test whose statistic has mean ``drift`` under H1.

    ``sd_ratio`` = SD under H0 / SD under H1 of the estimate; it differs from 1
    when the test uses the pooled null variance (proportions). Two-sided power
    counts both tails, as statsmodels does; one-sided power uses the tail in
    the direction of ``drift`` (i.e. the test is assumed to be aimed right).
    """
    z = critical_z(alpha, two_sided)
    if sd_ratio <= 0.0:
        raise ValueError("sd_ratio must be > 0")
    d = abs(drift) if not two_sided else drift
    power = normal_cdf(d - z * sd_ratio)
    if two_sided:
        power += normal_cdf(-z * sd_ratio - d)
    return power


def _proportion_sds(p_control: float, p_treatment: float, ratio: float, pooled: bool) -> tuple[float, float]:
    """SDs (times sqrt(n_control)) of p_T - p_C under H0 and under H1.

    The pooled null proportion is weighted by sample size, as in statsmodels.
    """
    for p in (p_control, p_treatment):
        if not 0.0 < p < 1.0:
            raise ValueError(f"proportions must be in (0, 1), got {p}")
    if not (ratio > 0.0 and math.isfinite(ratio)):
        raise ValueError("ratio must be finite and > 0")
    var_alt = p_control * (1 - p_control) + p_treatment * (1 - p_treatment) / ratio
    sd_alt = math.sqrt(var_alt)
    if not pooled:
        return sd_alt, sd_alt
    p_bar = (p_control + ratio * p_treatment) / (1.0 + ratio)
    sd_null = math.sqrt(p_bar * (1 - p_bar) * (1.0 + 1.0 / ratio))
    return sd_null, sd_alt


def two_proportion_power(
    p_control: float,
    p_treatment: float,
    n_control: float,
    n_treatment: float,
    alpha: float = 0.05,
    two_sided: bool = True,
    pooled: bool = True,
) -> float:
    """Power of the two-proportion z-test at the given arm sizes.

    With ``pooled=True`` it is statsmodels' ``power_proportions_2indep``: pooled
    (size-weighted) variance under H0, unpooled under H1, both tails counted.
    ``pooled=False`` is the Wald test (unpooled variance under both).
    """
    if n_control <= 0 or n_treatment <= 0:
        raise ValueError("arm sizes must be > 0")
    ratio = n_treatment / n_control
    sd_null, sd_alt = _proportion_sds(p_control, p_treatment, ratio, pooled)
    drift = (p_treatment - p_control) * math.sqrt(n_control) / sd_alt
    return z_test_power(drift, alpha, two_sided, sd_null / sd_alt)


def two_proportion_sample_size(
    p_control: float,
    p_treatment: float,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
    ratio: float = 1.0,
    pooled: bool = True,
) -> float:
    """Control-arm size n (treatment ``ratio * n``) reaching ``power``.

    Closed form ``((z_a sd0 + z_b sd1) / delta)^2`` (Fleiss; statsmodels'
    ``samplesize_proportions_2indep_onetail``). It ignores the far tail, so
    the exact power at the returned n is at least ``power``. Returns ``inf``
    when the proportions are equal.
    """
    check_power(power)
    z_a = critical_z(alpha, two_sided)
    sd_null, sd_alt = _proportion_sds(p_control, p_treatment, ratio, pooled)
    delta = p_treatment - p_control
    if delta == 0.0:
        return math.inf
    z_b = normal_quantile(power)
    return (max(z_a * sd_null + z_b * sd_alt, 0.0) / delta) ** 2


def mean_difference_power(
    sd: float,
    delta: float,
    n_control: float,
    n_treatment: float,
    alpha: float = 0.05,
    two_sided: bool = True,
    t_test: bool = False,
) -> float:
    """Power to detect a mean difference ``delta`` with common SD ``sd``.

    The z form matches statsmodels ``NormalIndPower``; ``t_test=True`` uses the
    noncentral t with n_C + n_T - 2 df, matching ``TTestIndPower`` (useful for
    small arms only; at rollout sizes both agree).
    """
    if sd <= 0.0:
        raise ValueError("sd must be > 0")
    if n_control <= 0 or n_treatment <= 0:
        raise ValueError("arm sizes must be > 0")
    drift = delta / (sd * math.sqrt(1.0 / n_control + 1.0 / n_treatment))
    if not t_test:
        return z_test_power(drift, alpha, two_sided)
    check_alpha(alpha)
    df = n_control + n_treatment - 2.0
    if df <= 0:
        raise ValueError("t-test needs n_control + n_treatment > 2")
    tail = alpha / 2.0 if two_sided else alpha
    from scipy import stats as _sps  # type: ignore[import-untyped,unused-ignore]

    crit = float(_sps.t.isf(tail, df))
    d = drift if two_sided else abs(drift)
    power = _nct_upper(crit, df, d)
    if two_sided:
        power += _nct_upper(crit, df, -d)
    return power


def _nct_upper(crit: float, df: float, nc: float) -> float:
    """P(T >= crit) for noncentral t; normal limit where scipy returns NaN.

    scipy's noncentral t yields NaN deep in the tails at large df and
    noncentrality, exactly where the normal limit is accurate.
    """
    from scipy import stats as _sps  # type: ignore[import-untyped,unused-ignore]

    value = float(_sps.nct.sf(crit, df, nc))
    return value if math.isfinite(value) else normal_cdf(nc - crit)


def mean_difference_sample_size(
    sd: float,
    delta: float,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
    ratio: float = 1.0,
    t_test: bool = False,
) -> float:
    """Control-arm size n (treatment ``ratio * n``) to detect ``delta``.

    The z form is the closed form ``(z_a + z_b)^2 sd^2 (1 + 1/ratio) / delta^2``
    (far tail ignored); the t form is solved numerically against
    :func:`mean_difference_power`. Returns ``inf`` when ``delta == 0``.
    """
    check_power(power)
    if sd <= 0.0 or ratio <= 0.0:
        raise ValueError("sd and ratio must be > 0")
    z_a = critical_z(alpha, two_sided)
    if delta == 0.0:
        return math.inf
    n_z = ((z_a + normal_quantile(power)) * sd / delta) ** 2 * (1.0 + 1.0 / ratio)
    if not t_test:
        return n_z

    def gap(n: float) -> float:
        return mean_difference_power(sd, delta, n, ratio * n, alpha, two_sided, True) - power

    lo = 3.0 / (1.0 + ratio)  # one degree of freedom
    if gap(lo) >= 0.0:
        return lo
    hi = max(2.0 * n_z, lo * 2.0)
    while gap(hi) < 0.0:
        hi *= 2.0
    return find_root(gap, lo, hi, xtol=1e-10)
