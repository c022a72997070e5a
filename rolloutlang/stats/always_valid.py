"""Boundaries of the mixture SPRT and of the Bayesian posterior rule, on the z-scale.

Both rules look at the estimate ``theta_hat`` of the change, with variance
``V = 1/I`` (``I`` the information), through ``Z = (theta_hat - theta0) / sqrt(V)``.
Each reduces to a boundary on Z that depends on the information reached, so
their operating characteristics at a given set of looks are crossing
probabilities of those boundaries (:mod:`rolloutlang.stats.sequential`), not
fixed-horizon power.

mSPRT (Johari, Koomen, Pekelis & Walsh 2017; statistics reference 1.6).
With the mixing distribution ``N(theta0, tau^2)`` over the alternative and
``x = I tau^2``, the two-sided rule rejects when
``|Z| >= sqrt((1 + 1/x) (2 ln(1/alpha) + ln(1 + x)))``.  A one-sided rule
mixes over one side only (the half-normal ``2 N(theta0, tau^2)`` restricted to
the alternative side), which gives the likelihood ratio
``Lambda = 2 (1+x)^(-1/2) exp(Z^2 x / (2 (1+x))) Phi(|Z| sqrt(x/(1+x)))`` for Z
on that side; it rejects when ``Lambda >= 1/alpha``.  Under the null both are
non-negative martingales with mean 1, so by Ville's inequality their type-I
error is at most alpha whenever and however often one looks.

Bayesian rule (statistics reference 1.7).  With the prior ``theta ~ N(0,
tau^2)`` (centred on no change) and the margin ``m`` (``theta0``), the
posterior probability that the change is beyond the margin on the upper side
exceeds ``1 - alpha`` exactly when
``Z >= z_{1-alpha} sqrt(1 + V/tau^2) + (m - 0) sqrt(V) / tau^2``
where ``Z`` is measured from the margin.  A flat prior (tau -> infinity)
gives the naive ``Z >= z_{1-alpha}`` rule at every look, whose error grows with
the looks.
"""

from __future__ import annotations

import math

from rolloutlang.stats.normal import check_alpha, find_root, normal_cdf, normal_quantile


def msprt_z_boundary(information: float, tau2: float, alpha: float = 0.05) -> float:
    """|Z| threshold at which the two-sided normal-mixture SPRT rejects.

    sqrt((1 + 1/(I tau^2)) (2 ln(1/alpha) + ln(1 + I tau^2))) (Johari et al.);
    valid under continuous monitoring, so it is the bound for always-on gates.
    """
    check_alpha(alpha)
    if information <= 0.0 or tau2 <= 0.0:
        raise ValueError("information and tau2 must be > 0")
    x = information * tau2
    return math.sqrt((1.0 + 1.0 / x) * (2.0 * math.log(1.0 / alpha) + math.log1p(x)))


def msprt_one_sided_log_ratio(z: float, information: float, tau2: float) -> float:
    """log Lambda of the one-sided (half-normal mixture) SPRT for Z on the alternative side (z >= 0)."""
    if information <= 0.0 or tau2 <= 0.0:
        raise ValueError("information and tau2 must be > 0")
    x = information * tau2
    u = z * math.sqrt(x / (1.0 + x))
    return math.log(2.0) - 0.5 * math.log1p(x) + 0.5 * u * u + math.log(normal_cdf(u))


def msprt_one_sided_boundary(information: float, tau2: float, alpha: float = 0.05) -> float:
    """The Z (>= 0, on the alternative's side) at which the one-sided mixture SPRT rejects.

    Solves ``exp(u^2/2) Phi(u) = sqrt(1 + x) / (2 alpha)`` for ``u = Z sqrt(x/(1+x))``
    (the left side increases with u from 1/2), then ``Z = u sqrt((1+x)/x)``.
    """
    check_alpha(alpha)
    if information <= 0.0 or tau2 <= 0.0:
        raise ValueError("information and tau2 must be > 0")
    x = information * tau2
    target = 0.5 * math.log1p(x) - math.log(2.0 * alpha)

    def gap(u: float) -> float:
        return 0.5 * u * u + math.log(normal_cdf(u)) - target

    hi = math.sqrt(2.0 * max(target, 0.0)) + 2.0
    u = find_root(gap, 0.0, hi, xtol=1e-13) if gap(0.0) < 0.0 else 0.0
    return u * math.sqrt((1.0 + x) / x)


def bayesian_z_boundary(information: float, tau2: float, alpha: float, margin_shift: float = 0.0) -> float:
    """Z (measured from the margin) above which P(change beyond the margin, upwards | data) >= 1 - alpha.

    ``margin_shift`` is the margin measured from the prior mean (no change),
    in the direction in which Z grows, on the estimate's scale: a prior centred
    on no change pulls the estimate towards zero, so a margin below zero lowers
    the boundary.  With ``tau2 = inf`` (flat prior) this is the naive
    ``z_{1-alpha}``.
    """
    check_alpha(alpha)
    if information <= 0.0 or tau2 <= 0.0:
        raise ValueError("information and tau2 must be > 0")
    variance = 1.0 / information
    z = normal_quantile(1.0 - alpha)
    if math.isinf(tau2):
        return z
    return z * math.sqrt(1.0 + variance / tau2) + margin_shift * math.sqrt(variance) / tau2
