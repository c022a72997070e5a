"""Tests for rolloutlang.stats against published/reference numbers.

"Ref" below means shared/design/statistics-reference.md; each number names its
section (and the original source quoted there). Tolerances are half a unit in
the last printed digit plus a little slack, unless stated otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import multivariate_normal

from rolloutlang import ir
from rolloutlang import stats as rs

sm_power = pytest.importorskip("statsmodels.stats.power")
sm_prop = pytest.importorskip("statsmodels.stats.proportion")

FAST = settings(max_examples=40, deadline=None, database=None)


# ---------------------------------------------------------------------------
# Label delays
# ---------------------------------------------------------------------------

LOGNORMAL_2H = rs.LabelDelay.lognormal(2.0, sigma=1.0)


@pytest.mark.parametrize(
    ("hours", "expected"),
    # Ref 2.4: lognormal median 2 h, sigma 1, constant traffic from t = 0.
    [(1, 0.095), (6, 0.568), (12, 0.748), (18, 0.824), (24, 0.866), (48, 0.932), (72, 0.954), (168, 0.980)],
)
def test_lognormal_arrived_fraction_reference(hours: float, expected: float) -> None:
    assert LOGNORMAL_2H.arrived_fraction(hours) == pytest.approx(expected, abs=6e-4)


def test_arrived_label_information_fractions_and_peeking() -> None:
    # Ref 2.4: looks at 6/12/18/24 h -> information fractions 0.164, 0.432, 0.714, 1.0,
    # and naive |Z| > 1.96 at these looks has exact size 0.1344.
    info = [t * LOGNORMAL_2H.arrived_fraction(t) for t in (6, 12, 18, 24)]
    fractions = [i / info[-1] for i in info]
    assert fractions == pytest.approx([0.164, 0.432, 0.714, 1.0], abs=6e-4)
    cp = rs.crossing_probabilities([1.96] * 4, fractions, 0.0, [-1.96] * 4)
    assert cp.total == pytest.approx(0.1344, abs=6e-5)


@pytest.mark.parametrize(
    "delay",
    [
        rs.LabelDelay.immediate(),
        rs.LabelDelay.fixed(3.0),
        rs.LabelDelay.exponential(5.0),
        rs.LabelDelay.lognormal(2.0, p95_hours=30.0),
    ],
)
def test_arrived_fractions_match_quadrature(delay: rs.LabelDelay) -> None:
    # Closed forms checked against direct numerical integration of the CDF.
    for t in (0.5, 4.0, 30.0):
        quad, _ = integrate.quad(lambda u: delay.cdf(u), 0.0, t, points=[3.0], limit=200)
        assert delay.arrived_fraction(t) == pytest.approx(quad / t, abs=1e-7)
    a, b, t = 2.0, 10.0, 15.0
    quad, _ = integrate.quad(lambda s: delay.cdf(t - s), a, b, points=[12.0], limit=200)
    assert delay.arrived_fraction_between(a, b, t) == pytest.approx(quad / (b - a), abs=1e-7)


def test_arrived_fraction_between_consistency() -> None:
    d = LOGNORMAL_2H
    assert d.arrived_fraction_between(0.0, 24.0, 24.0) == pytest.approx(d.arrived_fraction(24.0), rel=1e-12)
    # Requests of [0, 24] split in halves: the whole is the average of the halves.
    halves = 0.5 * (d.arrived_fraction_between(0, 12, 30) + d.arrived_fraction_between(12, 24, 30))
    assert d.arrived_fraction_between(0, 24, 30) == pytest.approx(halves, rel=1e-12)
    # A point interval is the CDF; requests after the look have no labels.
    assert d.arrived_fraction_between(5, 5, 9) == pytest.approx(d.cdf(4.0))
    assert d.arrived_fraction_between(10, 20, 10) == 0.0


def test_label_delay_basics() -> None:
    assert rs.LabelDelay.immediate().arrived_fraction(5.0) == 1.0
    assert rs.LabelDelay.fixed(2.0).arrived_fraction(8.0) == pytest.approx(6.0 / 8.0)
    d = rs.LabelDelay.lognormal(2.0, p95_hours=10.0)
    assert d.sigma == pytest.approx(math.log(5.0) / rs.normal_quantile(0.95))
    assert d.cdf(10.0) == pytest.approx(0.95)
    assert d.quantile(0.95) == pytest.approx(10.0)
    assert d.median_hours == 2.0
    e = rs.LabelDelay.exponential(3.0)
    assert e.median_hours == pytest.approx(3.0 * math.log(2.0))
    out = e.cdf(np.array([0.0, 3.0, -1.0]))
    assert isinstance(out, np.ndarray)
    assert out == pytest.approx([0.0, 1.0 - math.exp(-1.0), 0.0])
    assert isinstance(e.cdf(1.0), float)
    with pytest.raises(ValueError):
        rs.LabelDelay.lognormal(2.0)
    with pytest.raises(ValueError):
        rs.LabelDelay.lognormal(2.0, 1.0)
    with pytest.raises(ValueError):
        rs.LabelDelay.exponential(0.0)


# ---------------------------------------------------------------------------
# Two proportions
# ---------------------------------------------------------------------------


def test_two_proportion_sample_size_reference() -> None:
    # Ref 1.4 worked example: 0.042 vs 0.04116, alpha .05 two-sided, power .8.
    assert rs.two_proportion_sample_size(0.042, 0.04116) == pytest.approx(886_581.9, abs=0.1)
    assert rs.two_proportion_sample_size(0.042, 0.04116, pooled=False) == pytest.approx(886_579.2, abs=0.1)
    # Ref 1.4: statsmodels power_proportions_2indep at nobs1 = 886,582 -> 0.8000.
    assert rs.two_proportion_power(0.042, 0.04116, 886_582, 886_582) == pytest.approx(0.8000, abs=5e-5)


@pytest.mark.parametrize("ratio", [0.25, 1.0, 3.0])
@pytest.mark.parametrize("two_sided", [True, False])
def test_two_proportion_sample_size_matches_statsmodels(ratio: float, two_sided: bool) -> None:
    # statsmodels samplesize_proportions_2indep_onetail (its nobs1 is the treatment arm,
    # nobs2 = ratio_sm * nobs1 the control arm, so ratio_sm = 1 / ratio).
    p_c, p_t = 0.10, 0.12
    n_t = sm_prop.samplesize_proportions_2indep_onetail(
        diff=p_t - p_c,
        prop2=p_c,
        power=0.9,
        ratio=1.0 / ratio,
        alpha=0.05,
        alternative="two-sided" if two_sided else "larger",
    )
    ours = rs.two_proportion_sample_size(p_c, p_t, 0.05, 0.9, two_sided, ratio)
    assert ours * ratio == pytest.approx(n_t, rel=1e-9)


def test_two_proportion_power_matches_statsmodels() -> None:
    # statsmodels power_proportions_2indep (pooled null, unpooled alternative, both tails).
    # Contract is agreement within 0.005; the formulas are the same, so we check 1e-9.
    checked = 0
    for p_c in (0.01, 0.042, 0.3, 0.8):
        for rel in (-0.3, -0.05, 0.02, 0.2):
            p_t = p_c * (1 + rel)
            for n_c, n_t in ((500, 500), (20_000, 2_000), (3_000, 90_000), (1_000_000, 1_000_000)):
                for alpha in (0.01, 0.05, 0.1):
                    for two_sided in (True, False):
                        alt = "two-sided" if two_sided else ("larger" if p_t > p_c else "smaller")
                        ref = sm_prop.power_proportions_2indep(
                            diff=p_t - p_c,
                            prop2=p_c,
                            nobs1=n_t,
                            ratio=n_c / n_t,
                            alpha=alpha,
                            alternative=alt,
                            return_results=False,
                        )
                        ours = rs.two_proportion_power(p_c, p_t, n_c, n_t, alpha, two_sided)
                        assert ours == pytest.approx(float(ref), abs=1e-9)
                        checked += 1
    assert checked == 384


def test_two_proportion_power_null_is_alpha() -> None:
    assert rs.two_proportion_power(0.2, 0.2, 1000, 3000, alpha=0.05) == pytest.approx(0.05)
    assert rs.two_proportion_sample_size(0.2, 0.2) == math.inf


@FAST
@given(
    p_c=st.floats(0.01, 0.9),
    rel=st.floats(0.02, 0.5),
    ratio=st.floats(0.1, 10.0),
    power=st.floats(0.5, 0.99),
    pooled=st.booleans(),
    two_sided=st.booleans(),
)
def test_two_proportion_sample_size_inverts_power(
    p_c: float, rel: float, ratio: float, power: float, pooled: bool, two_sided: bool
) -> None:
    # Property: the closed-form n gives exactly the target in the near tail (the one-sided
    # test at the same critical value), so two-sided power, which adds the far tail, is never short.
    p_t = min(p_c * (1 + rel), 0.99)
    n = rs.two_proportion_sample_size(p_c, p_t, 0.05, power, two_sided, ratio, pooled)
    near_alpha = 0.025 if two_sided else 0.05
    near = rs.two_proportion_power(p_c, p_t, n, ratio * n, near_alpha, False, pooled)
    assert near == pytest.approx(power, abs=1e-9)
    achieved = rs.two_proportion_power(p_c, p_t, n, ratio * n, 0.05, two_sided, pooled)
    assert achieved >= power - 1e-9


@FAST
@given(
    p_c=st.floats(0.01, 0.9),
    p_t=st.floats(0.01, 0.9),
    n=st.floats(10.0, 1e7),
    factor=st.floats(1.0, 10.0),
    share=st.floats(0.01, 0.99),
)
def test_two_proportion_power_monotone_in_n(p_c: float, p_t: float, n: float, factor: float, share: float) -> None:
    # Property: more traffic at the same allocation never lowers power.
    small = rs.two_proportion_power(p_c, p_t, n * (1 - share), n * share)
    large = rs.two_proportion_power(p_c, p_t, factor * n * (1 - share), factor * n * share)
    assert large >= small - 1e-12


# ---------------------------------------------------------------------------
# Difference in means
# ---------------------------------------------------------------------------


def test_mean_difference_power_matches_statsmodels() -> None:
    # statsmodels NormalIndPower (z) and TTestIndPower (noncentral t); nobs1 = control.
    normal, ttest = sm_power.NormalIndPower(), sm_power.TTestIndPower()
    for es in (0.05, 0.2, 0.5):
        for n_c, ratio in ((20, 1.0), (200, 0.5), (5_000, 4.0)):
            for alpha in (0.01, 0.05):
                for two_sided in (True, False):
                    alt = "two-sided" if two_sided else "larger"
                    sd = 2.5
                    args = (sd, es * sd, n_c, ratio * n_c, alpha, two_sided)
                    z_ref = normal.power(es, n_c, alpha, ratio=ratio, alternative=alt)
                    t_ref = ttest.power(es, n_c, alpha, ratio=ratio, alternative=alt)
                    assert rs.mean_difference_power(*args) == pytest.approx(float(z_ref), abs=1e-9)
                    ours_t = rs.mean_difference_power(*args, t_test=True)
                    if math.isnan(t_ref):  # scipy's nct gives NaN deep in the tail; we fall back to z
                        t_ref = z_ref
                    assert ours_t == pytest.approx(float(t_ref), abs=1e-7)


def test_mean_difference_sample_size_matches_statsmodels() -> None:
    # statsmodels solve_power: NormalIndPower solves exactly (both tails), so the
    # closed form agrees to ~1e-6 relative; TTestIndPower agrees to its solver tolerance.
    for es, ratio in ((0.1, 1.0), (0.3, 2.0)):
        z_ref = sm_power.NormalIndPower().solve_power(es, None, 0.05, 0.8, ratio)
        t_ref = sm_power.TTestIndPower().solve_power(es, None, 0.05, 0.8, ratio)
        assert rs.mean_difference_sample_size(1.0, es, ratio=ratio) == pytest.approx(float(z_ref), rel=1e-5)
        assert rs.mean_difference_sample_size(1.0, es, ratio=ratio, t_test=True) == pytest.approx(
            float(t_ref), rel=1e-6
        )


def test_arcsine_sample_size_reference() -> None:
    # Ref 1.4: NormalIndPower with Cohen's h = 2 asin sqrt(.042) - 2 asin sqrt(.04116) -> 886,558.9 per arm.
    h = 2 * math.asin(math.sqrt(0.042)) - 2 * math.asin(math.sqrt(0.04116))
    assert rs.mean_difference_sample_size(1.0, h) == pytest.approx(886_558.9, abs=3.0)


@FAST
@given(
    sd=st.floats(0.1, 10.0),
    es=st.floats(0.01, 1.0),
    ratio=st.floats(0.2, 5.0),
    power=st.floats(0.5, 0.99),
)
def test_mean_difference_sample_size_inverts_power(sd: float, es: float, ratio: float, power: float) -> None:
    # Property: as for proportions, exact in the near tail, never short two-sided.
    n = rs.mean_difference_sample_size(sd, es * sd, power=power, ratio=ratio)
    assert rs.mean_difference_power(sd, es * sd, n, ratio * n, 0.025, False) == pytest.approx(power, abs=1e-9)
    assert power - 1e-9 <= rs.mean_difference_power(sd, es * sd, n, ratio * n) <= power + 1e-4


# ---------------------------------------------------------------------------
# Group-sequential: classical designs (Ref 1.1)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "c_pocock", "obf_bounds"),
    # Ref 1.1 table (two-sided .05; = one-sided .025 to 4 decimals); J&T Table 2.1; gsDesign test.Deming.OFbound (K=4).
    [
        (1, 1.9600, [1.9600]),
        (2, 2.1783, [2.7965, 1.9774]),
        (3, 2.2895, [3.4711, 2.4544, 2.0040]),
        (4, 2.3613, [4.0486, 2.8628, 2.3375, 2.0243]),
        (5, 2.4132, [4.5617, 3.2256, 2.6337, 2.2809, 2.0401]),
    ],
)
def test_classical_constants_reference(k: int, c_pocock: float, obf_bounds: list[float]) -> None:
    for one_sided, alpha in ((False, 0.05), (True, 0.025)):
        assert rs.classical_constant(k, alpha, "pocock", one_sided) == pytest.approx(c_pocock, abs=6e-5)
        assert rs.classical_bounds(k, alpha, "obrien-fleming", one_sided) == pytest.approx(obf_bounds, abs=6e-5)


def test_classical_cumulative_alpha_reference() -> None:
    f = rs.equal_fractions(5)
    # Ref 1.1: OBF K=5 cumulative two-sided alpha 0.0000051, 0.001259, 0.008904, 0.02558, 0.05.
    b = rs.classical_bounds(5, 0.05, "obrien-fleming", one_sided=False)
    cum = np.cumsum(rs.crossing_probabilities(b, f, 0.0, [-x for x in b]).stop)
    assert cum == pytest.approx([0.0000051, 0.001259, 0.008904, 0.02558, 0.05], abs=6e-7, rel=6e-4)
    # Ref 1.1: Pocock K=5 nominal two-sided p per look 0.01581; cumulative 0.0158, 0.0275, 0.0365, 0.0439, 0.05.
    c = rs.classical_constant(5, 0.05, "pocock", one_sided=False)
    assert 2 * rs.normal_cdf(-c) == pytest.approx(0.01581, abs=6e-6)
    cum = np.cumsum(rs.crossing_probabilities([c] * 5, f, 0.0, [-c] * 5).stop)
    assert cum == pytest.approx([0.0158, 0.0275, 0.0365, 0.0439, 0.05], abs=6e-5)


def test_rpact_obf_k3_reference() -> None:
    # Ref 1.1: rpact test-f_design_group_sequential.R, getDesignGroupSequential() defaults
    # (OBF, K=3, one-sided .025): bounds 3.4710914, 2.4544323, 2.0040356;
    # cumulative alpha 0.00025917372, 0.0071600594, 0.025.
    b = rs.classical_bounds(3, 0.025, "obrien-fleming")
    assert b == pytest.approx([3.4710914, 2.4544323, 2.0040356], abs=2e-7)
    cum = np.cumsum(rs.crossing_probabilities(b, rs.equal_fractions(3)).upper)
    assert cum == pytest.approx([0.00025917372, 0.0071600594, 0.025], rel=1e-6)


# ---------------------------------------------------------------------------
# Group-sequential: spending functions (Ref 1.2)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spending", "k", "bounds", "cum_alpha"),
    # Ref 1.2 table (one-sided .025, equal spacing).
    [
        ("obrien-fleming", 3, [3.7103, 2.5114, 1.9930], [1.035e-4, 6.048e-3, 0.025]),
        ("pocock", 3, [2.2794, 2.2949, 2.2959], [1.132e-2, 1.908e-2, 0.025]),
        (
            "obrien-fleming",
            5,
            [4.8769, 3.3570, 2.6803, 2.2898, 2.0310],
            [5.39e-7, 3.942e-4, 3.808e-3, 1.221e-2, 0.025],
        ),
        (
            "pocock",
            5,
            [2.4380, 2.4268, 2.4102, 2.3966, 2.3860],
            [7.385e-3, 1.308e-2, 1.771e-2, 2.162e-2, 0.025],
        ),
    ],
)
def test_spending_bounds_reference(spending: rs.Spending, k: int, bounds: list[float], cum_alpha: list[float]) -> None:
    f = rs.equal_fractions(k)
    b = rs.spending_bounds(f, 0.025, spending)
    assert b == pytest.approx(bounds, abs=6e-5)
    assert [rs.alpha_spent(spending, 0.025, t) for t in f] == pytest.approx(cum_alpha, rel=6e-4)
    exact = [rs.alpha_spent(spending, 0.025, t) for t in f]
    assert np.cumsum(rs.crossing_probabilities(b, f).upper) == pytest.approx(exact, rel=1e-6)
    # Ref 1.2: the symmetric two-sided .05 design has the same bounds to 4 decimals.
    assert rs.spending_bounds(f, 0.05, spending, one_sided=False) == pytest.approx(bounds, abs=6e-5)


def test_rpact_pocock_spending_unequal_reference() -> None:
    # Ref 1.1: rpact typeOfDesign="asP", informationRates (0.4, 0.7), one-sided .025:
    # bounds 2.223875, 2.3050796; cumulative alpha 0.013078429, 0.0197432.
    b = rs.spending_bounds([0.4, 0.7], 0.025, "pocock")
    assert b == pytest.approx([2.223875, 2.3050796], abs=1e-6)
    cum = np.cumsum(rs.crossing_probabilities(b, [0.4, 0.7]).upper)
    assert cum == pytest.approx([0.013078429, 0.0197432], rel=1e-6)


def test_seqbounds_reference() -> None:
    # Ref 1.1: SeqBounds.jl README, sfLDOF one-sided .05 at t = .25,.5,.75,1 (coarse grid h=0.05 there):
    # 3.74955, 2.53993, 2.01604, 1.72014; our exact values differ by up to 4e-5.
    b = rs.spending_bounds([0.25, 0.5, 0.75, 1.0], 0.05, "obrien-fleming")
    assert b == pytest.approx([3.74955, 2.53993, 2.01604, 1.72014], abs=1e-4)


def test_infinite_bounds_for_tiny_stages() -> None:
    # Ref 2.3 worked plan: 100k req/h, 24 h at 1%, 5%, 25%, 50% (control = remainder), p = 0.042.
    # Fractions 0.0153, 0.0901, 0.4303, 1; sfLDOF one-sided .05 -> stage 1 bound +inf, stage 2 6.43.
    # A -1% relative CTR change is detected before 100% with prob. 0.83 (0.79 with sfLDPocock);
    # a -30% one by the end of stage 2 (OBF) or stage 1 (Pocock).
    shares = [0.01, 0.05, 0.25, 0.50]
    n_t = np.cumsum([2.4e6 * s for s in shares])
    n_c = np.cumsum([2.4e6 * (1 - s) for s in shares])
    p = 0.042
    info = 1.0 / (p * (1 - p) * (1 / n_t + 1 / n_c))
    f = list(info / info[-1])
    assert f == pytest.approx([0.0153, 0.0901, 0.4303, 1.0], abs=6e-5)
    obf = rs.spending_bounds(f, 0.05, "obrien-fleming")
    poc = rs.spending_bounds(f, 0.05, "pocock")
    assert obf[0] == math.inf
    assert obf[1] == pytest.approx(6.43, abs=6e-3)
    small = 0.01 * p * math.sqrt(info[-1])
    assert rs.sequential_power(obf, f, small) == pytest.approx(0.83, abs=6e-3)
    assert rs.sequential_power(poc, f, small) == pytest.approx(0.79, abs=6e-3)
    large = 0.30 * p * math.sqrt(info[-1])
    assert rs.crossing_probabilities(obf, f, large).upper[1] > 0.999
    assert rs.crossing_probabilities(poc, f, large).upper[0] > 0.999
    assert rs.alpha_spent("obrien-fleming", 0.05, f[0]) < 1e-13


def test_recursion_matches_mvn_cdf() -> None:
    # Independent check: 1 - P(all Z_k < b_k) from scipy's multivariate normal CDF,
    # with Cov(Z_j, Z_k) = sqrt(t_j / t_k) (Ref, conventions); unequal spacing, one infinite bound.
    f = np.array([0.2, 0.45, 0.7, 1.0])
    b = np.array([math.inf, 2.6, 2.3, 2.0])
    cov = np.sqrt(np.minimum.outer(f, f) / np.maximum.outer(f, f))
    finite = np.isfinite(b)
    mvn = multivariate_normal(mean=np.zeros(finite.sum()), cov=cov[np.ix_(finite, finite)], abseps=1e-7)
    expected = 1.0 - mvn.cdf(b[finite])
    assert rs.crossing_probabilities(list(b), list(f)).total == pytest.approx(expected, abs=2e-6)


@settings(max_examples=15, deadline=None, database=None)
@given(
    increments=st.lists(st.floats(0.05, 1.0), min_size=1, max_size=5),
    spending=st.sampled_from(["obrien-fleming", "pocock"]),
    alpha=st.sampled_from([0.01, 0.025, 0.05]),
)
def test_spending_bounds_spend_exactly(increments: list[float], spending: rs.Spending, alpha: float) -> None:
    # Property: at any fractions, the H0 crossing probabilities reproduce alpha*(t_k).
    f = list(np.cumsum(increments) / sum(increments))
    b = rs.spending_bounds(f, alpha, spending)
    cum = np.cumsum(rs.crossing_probabilities(b, f).upper)
    assert cum == pytest.approx([rs.alpha_spent(spending, alpha, t) for t in f], abs=1e-9, rel=1e-6)


# ---------------------------------------------------------------------------
# Group-sequential: inflation factor and expected sample size (Ref 1.3)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "design", "power", "r", "en0", "en1", "power_at_nfix"),
    # Ref 1.3 (two-sided .05); J&T Tables 2.3/2.4; gsDesign test.JT.OFss (R=1.028, E[N|H0]=1.021 for OBF K=5).
    [
        (2, "pocock", 0.8, 1.1104, 1.0941, 0.8529, 0.7562),
        (2, "obrien-fleming", 0.9, 1.0071, 1.0045, 0.8511, 0.8980),
        (4, "pocock", 0.8, 1.2023, 1.1748, 0.8051, 0.7194),
        (5, "pocock", 0.8, 1.2284, 1.1980, 0.7990, 0.7090),
        (5, "pocock", 0.9, 1.2065, 1.1766, 0.6849, 0.8348),
        (5, "obrien-fleming", 0.8, 1.0284, 1.0211, 0.8176, 0.7888),
        (5, "obrien-fleming", 0.9, 1.0265, 1.0191, 0.7503, 0.8924),
    ],
)
def test_inflation_and_expected_n_reference(
    k: int,
    design: rs.ClassicalDesign,
    power: float,
    r: float,
    en0: float,
    en1: float,
    power_at_nfix: float,
) -> None:
    f = rs.equal_fractions(k)
    b = rs.classical_bounds(k, 0.05, design, one_sided=False)
    ratio = rs.inflation_factor(b, f, 0.05, power, one_sided=False)
    assert ratio == pytest.approx(r, abs=6e-5)
    theta = rs.design_drift(b, f, power, one_sided=False)
    assert ratio * rs.expected_sample_fraction(b, f, 0.0, one_sided=False) == pytest.approx(en0, abs=6e-5)
    assert ratio * rs.expected_sample_fraction(b, f, theta, one_sided=False) == pytest.approx(en1, abs=6e-5)
    theta_fix = rs.normal_quantile(0.975) + rs.normal_quantile(power)
    assert rs.sequential_power(b, f, theta_fix, one_sided=False) == pytest.approx(power_at_nfix, abs=6e-5)


def test_stopping_distribution_reference() -> None:
    # Ref 1.3: P(stop at look k | H1), beta = .2, K=5 two-sided .05.
    f = rs.equal_fractions(5)
    for design, expected in (
        ("pocock", [0.153, 0.205, 0.187, 0.148, 0.108]),
        ("obrien-fleming", [0.0005, 0.0761, 0.2592, 0.2764, 0.1878]),
    ):
        b = rs.classical_bounds(5, 0.05, design, one_sided=False)  # type: ignore[arg-type]
        theta = rs.design_drift(b, f, 0.8, one_sided=False)
        upper = rs.crossing_probabilities(b, f, theta, [-x for x in b]).upper
        assert upper == pytest.approx(expected, abs=6e-4)


# ---------------------------------------------------------------------------
# Peeking (Ref 1.5)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "two_sided", "one_sided"),
    # Ref 1.5: Armitage, McPherson & Rowe (1969) via J&T Table 1.1; one-sided values also
    # gsDesign test.Deming.gsProb (0.042, 0.063, 0.097, 0.124 for K = 2, 4, 10, 20).
    [
        (1, 0.050, 0.025),
        (2, 0.0831, 0.0416),
        (3, 0.1073, 0.0536),
        (4, 0.1262, 0.0631),
        (5, 0.1417, 0.0709),
        (10, 0.1934, 0.0968),
        (20, 0.2479, 0.1244),
    ],
)
def test_peeking_reference(k: int, two_sided: float, one_sided: float) -> None:
    f = rs.equal_fractions(k)
    assert rs.crossing_probabilities([1.96] * k, f, 0.0, [-1.96] * k).total == pytest.approx(two_sided, abs=6e-5)
    assert rs.crossing_probabilities([1.96] * k, f).total == pytest.approx(one_sided, abs=6e-5)


def test_peeking_many_looks() -> None:
    # Ref 1.5: K=50 -> 0.320 (J&T, 3 decimals; the Ref table's 0.3205 is 7e-5 above our 0.32043,
    # which an independent brute-force trapezoid integration reproduces); K=100 -> 0.3736.
    f50, f100 = rs.equal_fractions(50), rs.equal_fractions(100)
    assert rs.crossing_probabilities([1.96] * 50, f50, 0.0, [-1.96] * 50).total == pytest.approx(0.320, abs=6e-4)
    assert rs.crossing_probabilities([1.96] * 100, f100, 0.0, [-1.96] * 100).total == pytest.approx(0.3736, abs=6e-5)


# ---------------------------------------------------------------------------
# mSPRT (Ref 1.6) and the planning helper
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("i_tau2", "expected"),
    # Ref 1.6, alpha = .05 (Johari et al. normal-mixture boundary on the z-scale).
    [(0.1, 8.18), (1.0, 3.66), (10.0, 3.04), (100.0, 3.27), (1000.0, 3.59), (1e4, 3.90)],
)
def test_msprt_boundary_reference(i_tau2: float, expected: float) -> None:
    assert rs.msprt_z_boundary(i_tau2 / 0.5, 0.5, 0.05) == pytest.approx(expected, abs=6e-3)


def test_solve_for_power_stage_extension() -> None:
    # A 24 h stage at 200 req/h per arm, p = 0.1 vs 0.11: how much longer for 80% power?
    def power_at(x: float) -> float:
        n = 4_800 * x
        return rs.two_proportion_power(0.10, 0.11, n, n)

    x = rs.solve_for_power(power_at, 0.8)
    assert x is not None
    n_needed = rs.two_proportion_sample_size(0.10, 0.11)
    assert 4_800 * x == pytest.approx(n_needed, rel=1e-3)
    assert power_at(x) >= 0.8
    assert rs.solve_for_power(power_at, 0.8, hi=1.2) is None
    assert rs.solve_for_power(power_at, 0.01) == 1.0


@FAST
@given(rate=st.floats(0.01, 5.0), target=st.floats(0.05, 0.95))
def test_solve_for_power_is_smallest(rate: float, target: float) -> None:
    # Property: result meets the target and slightly less does not (for a strictly increasing curve).
    def curve(x: float) -> float:
        return 1.0 - math.exp(-rate * x)

    x = rs.solve_for_power(curve, target, lo=1.0, hi=1e3)
    if curve(1.0) >= target:
        assert x == 1.0
    elif curve(1e3) < target:
        assert x is None
    else:
        assert x is not None
        assert curve(x) >= target
        assert curve(x * (1 - 1e-5)) < target


def test_spending_bound_at_a_look_that_spends_almost_nothing() -> None:
    # Found by the property above: at t = 0.0909 O'Brien-Fleming spends ~1e-13, where the integration
    # error exceeds the target; that look must spend nothing (bound +inf), not fail to bracket the root.
    f = list(np.cumsum([0.05, 0.05000001, 1.0]) / 1.10000001)
    b = rs.spending_bounds(f, 0.025, "obrien-fleming")
    assert math.isinf(b[0])
    assert np.isfinite(b[-1])
    cum = np.cumsum(rs.crossing_probabilities(b, f).upper)
    assert cum[-1] == pytest.approx(0.025, abs=1e-9)


# ---------------------------------------------------------------------------
# Hwang-Shih-DeCani and beta spending
# ---------------------------------------------------------------------------


def test_hsd_spending_reference() -> None:
    # Ref 1.1, gsDesign print snapshot: sfHSD(gamma = -4), K = 5, one-sided 0.025, 90% power:
    # bounds 3.25, 2.99, 2.69, 2.37, 2.03 and sample-size ratio 1.023.
    fr = rs.equal_fractions(5)
    b = rs.spending_bounds(fr, 0.025, rs.hsd(-4))
    assert b == pytest.approx([3.25, 2.99, 2.69, 2.37, 2.03], abs=6e-3)
    assert rs.inflation_factor(b, fr, 0.025, 0.9) == pytest.approx(1.023, abs=6e-4)


def test_hsd_spending_function_shapes() -> None:
    # gamma 0 spends linearly; the function always ends at alpha and is increasing.
    assert rs.alpha_spent(rs.hsd(0), 0.05, 0.3) == pytest.approx(0.015)
    for gamma in (-4.0, -1.0, 1.0, 2.0):
        values = [rs.alpha_spent(rs.hsd(gamma), 0.05, t) for t in np.linspace(0.1, 1.0, 10)]
        assert values == sorted(values) and values[-1] == pytest.approx(0.05)
    with pytest.raises(ValueError):
        rs.SpendingFunction("pocock", 2.0)


@pytest.mark.parametrize("spending", ["obrien-fleming", "pocock"])
def test_beta_spending_lower_spends_beta_under_the_drift(spending: rs.Spending) -> None:
    # gsDesign test.type 4: the lower bound a_k spends beta*(t_k) under the alternative with the upper bound
    # in place; the last look decides (a_K = b_K), so the design's power is 1 - P(ever below).
    fr = [0.25, 0.5, 0.75, 1.0]
    upper = rs.spending_bounds(fr, 0.025, spending)
    drift = rs.normal_quantile(0.975) + rs.normal_quantile(0.8)
    lower = rs.beta_spending_lower(upper, fr, drift, 0.2, spending)
    assert lower[-1] == upper[-1] and all(a < b for a, b in zip(lower[:-1], upper[:-1], strict=True))
    cp = rs.crossing_probabilities(upper, fr, drift, lower)
    spent = np.cumsum(cp.lower)[:-1]
    assert spent == pytest.approx([rs.alpha_spent(spending, 0.2, t) for t in fr[:-1]], abs=1e-7)
    assert cp.total_upper + cp.total_lower == pytest.approx(1.0, abs=1e-7)  # the last look decides
    # Non-binding: the upper bounds alone have size 0.025, so with the lower ones the size is below it.
    assert rs.crossing_probabilities(upper, fr, 0.0, lower).total_upper < 0.025
    # A look that no path reaches (all stopped) keeps the forced decision.
    assert rs.beta_spending_lower(upper, fr, 40.0, 0.2, spending)[-1] == upper[-1]


def test_spending_can_be_told_that_the_last_look_is_final() -> None:
    # The last look fell short of the planned information: it still spends all of alpha.
    fr = [0.3, 0.6, 0.9]
    short = rs.spending_bounds(fr, 0.025, "obrien-fleming", last_spends_all=True)
    assert rs.crossing_probabilities(short, fr).total_upper == pytest.approx(0.025, abs=1e-8)
    assert rs.crossing_probabilities(rs.spending_bounds(fr, 0.025, "obrien-fleming"), fr).total_upper < 0.025


# ---------------------------------------------------------------------------
# mSPRT and the Bayesian rule: their real operating characteristics
# ---------------------------------------------------------------------------

FIXED_80 = rs.normal_quantile(0.975) + rs.normal_quantile(0.8)


@pytest.mark.parametrize(
    ("x", "k", "null", "power"),
    # Ref 1.6: two-sided mSPRT at alpha .05, information growing linearly to I_max, "fixed-80% effect";
    # MC with 40k replications (SE <= 0.0009 null, <= 0.0025 power).
    [(1, 5, 0.0003, 0.20), (1, 100, 0.0009, 0.24), (10, 5, 0.0078, 0.45), (10, 100, 0.0168, 0.52),
     (100, 5, 0.0055, 0.37), (100, 100, 0.0221, 0.45)],
)
def test_msprt_operating_characteristics_reference(x: float, k: int, null: float, power: float) -> None:
    fr = rs.equal_fractions(k)
    c = [rs.msprt_z_boundary(x * t, 1.0) for t in fr]
    low = [-v for v in c]
    assert rs.crossing_probabilities(c, fr, 0.0, low).total == pytest.approx(null, abs=max(4 * 0.00015, 0.15 * null))
    assert rs.crossing_probabilities(c, fr, FIXED_80, low).total == pytest.approx(power, abs=0.012)


def test_one_sided_msprt_boundary_is_its_mixture_likelihood_ratio() -> None:
    # Lambda = E over theta ~ half-normal(0, tau^2) on the alternative side of exp(theta S - theta^2 I / 2),
    # integrated numerically; at the boundary it equals 1/alpha.
    info, tau2, alpha = 400.0, 0.01, 0.05
    z = rs.msprt_one_sided_boundary(info, tau2, alpha)
    score = z * math.sqrt(info)  # S = Z sqrt(I)
    tau = math.sqrt(tau2)

    def integrand(theta: float) -> float:
        return math.exp(theta * score - 0.5 * theta * theta * info) * 2 * math.exp(-0.5 * (theta / tau) ** 2) / (
            tau * math.sqrt(2 * math.pi))

    ratio, _ = integrate.quad(integrand, 0.0, 20 * tau)
    assert ratio == pytest.approx(1 / alpha, rel=1e-7)
    assert math.exp(rs.msprt_one_sided_log_ratio(z, info, tau2)) == pytest.approx(1 / alpha, rel=1e-9)


def test_one_sided_msprt_is_valid_at_many_looks() -> None:
    # Ville's inequality: however often it looks, the one-sided mSPRT errs at most alpha under the null.
    fr = rs.equal_fractions(200)
    c = [rs.msprt_one_sided_boundary(50.0 * t, 1.0, 0.05) for t in fr]
    size = rs.crossing_probabilities(c, fr, 0.0).total_upper
    assert 0.01 < size < 0.05


@pytest.mark.parametrize(("x", "expected", "se"), [(math.inf, 0.0709, 0.0), (100, 0.0668, 0.0004),
                                                   (10, 0.0446, 0.0004), (1, 0.0037, 0.0001)])
def test_bayesian_rule_type_one_error_reference(x: float, expected: float, se: float) -> None:
    # Ref 1.7: "stop when P(delta > 0 | data) > 0.975" with prior N(0, tau^2), five equal looks; one-sided
    # type-I error, exact for the flat prior and MC (400k paths) otherwise.
    fr = rs.equal_fractions(5)
    bounds = [rs.bayesian_z_boundary(1.0, math.inf, 0.025) if math.isinf(x) else
              rs.bayesian_z_boundary(x * t, 1.0, 0.025) for t in fr]
    assert rs.crossing_probabilities(bounds, fr).total_upper == pytest.approx(expected, abs=max(4 * se, 1e-4))


# ---------------------------------------------------------------------------
# One rule per gate: designs and decisions
# ---------------------------------------------------------------------------

HARM = rs.TestSpec("harm", "group-sequential", 0.05, 1, math.log(0.99), math.log(0.97))
NI = rs.TestSpec("non-inferiority", "group-sequential", 0.05, 1, math.log(0.99), 0.0)


def test_test_spec_refuses_an_effect_on_the_wrong_side() -> None:
    with pytest.raises(ValueError):
        rs.TestSpec("harm", "fixed", 0.05, 1, -0.01, 0.0)
    with pytest.raises(ValueError):
        rs.TestSpec("non-inferiority", "fixed", 0.05, 1, -0.01, -0.02)
    with pytest.raises(ValueError):
        rs.TestSpec("non-inferiority", "group-sequential", 0.05, 1, -0.01, 0.0, futility=True)


def test_harm_boundaries_are_the_spending_bounds_mirrored() -> None:
    infos = [100.0, 300.0, 600.0, 1000.0]
    b = rs.boundaries(HARM, infos)
    spent = rs.spending_bounds([i / 1000 for i in infos], 0.05, "obrien-fleming", last_spends_all=True)
    assert b.lower == pytest.approx([-x for x in spent], abs=2e-5)  # the gates' grid is r = 8
    assert all(math.isinf(u) for u in b.upper)


def test_non_inferiority_decides_at_its_last_look() -> None:
    b = rs.boundaries(NI, [100.0, 300.0, 600.0, 1000.0])
    assert b.lower[-1] == b.upper[-1]
    assert all(lo < up for lo, up in zip(b.lower[:-1], b.upper[:-1], strict=True))
    oc = rs.operating_characteristics(NI, b, 0.0)
    assert oc.p_fail + oc.p_promote == pytest.approx(1.0, abs=1e-5)


def test_decide_outcomes() -> None:
    # At one look of a fixed harm test, Z <= -1.645 fails; the estimate carries its own information.
    fixed = rs.TestSpec("harm", "fixed", 0.05, 1, 0.0, -0.02)
    se = 0.01
    fail = rs.decide(fixed, rs.Estimate(-0.0165, se * se), final=True)
    assert fail.outcome == "fail" and fail.statistic == pytest.approx(-1.65)
    assert fail.lower == pytest.approx(-rs.normal_quantile(0.95)) and math.isinf(fail.upper)
    ok = rs.decide(fixed, rs.Estimate(-0.016, se * se), final=True)
    assert ok.outcome == "pass" and "continue" in ok.reason
    # No data is never a pass.
    for empty in (rs.Estimate(math.nan, math.inf), rs.Estimate(0.0, 0.0), rs.Estimate(0.01, math.nan)):
        none = rs.decide(fixed, empty, final=True)
        assert none.outcome == "inconclusive" and math.isnan(none.statistic)
    # Non-inferiority: promotion at the upper bound; at the last look everything else fails.
    ni_fixed = rs.TestSpec("non-inferiority", "fixed", 0.05, 1, -0.02, 0.0)
    assert rs.decide(ni_fixed, rs.Estimate(0.0, se * se), final=True).outcome == "promote-allowed"
    assert rs.decide(ni_fixed, rs.Estimate(-0.01, se * se), final=True).outcome == "fail"
    # Lower is better: the direction flips the statistic.
    lower_better = rs.TestSpec("harm", "fixed", 0.05, -1, 0.0, 0.02)
    assert rs.decide(lower_better, rs.Estimate(0.0165, se * se), final=True).outcome == "fail"


def test_decide_spends_at_the_information_reached() -> None:
    # A group-sequential look uses the bounds at the history's fractions, as the planned design would.
    history = [200.0, 500.0]
    est = rs.Estimate(-0.03, 1 / 800.0)
    d = rs.decide(HARM, est, history, reference=1000.0)
    b = rs.boundaries(HARM, [*history, 800.0], reference=1000.0, final=False)
    assert (d.lower, d.upper, d.look, d.fraction) == (b.lower[-1], b.upper[-1], 3, pytest.approx(0.8))
    assert d.information == pytest.approx(800.0)
    # Looks that added nothing, or came after this one's information, are ignored.
    assert rs.decide(HARM, est, [200.0, 200.0, 500.0, 900.0], reference=1000.0).lower == pytest.approx(d.lower)


def test_operating_characteristics_move_with_the_information_under_the_change() -> None:
    msprt = rs.TestSpec("harm", "msprt", 0.05, 1, 0.0, -0.05)
    b = rs.boundaries(msprt, [500.0, 1000.0])
    same = rs.operating_characteristics(msprt, b, -0.05)
    less = rs.operating_characteristics(msprt, b, -0.05, [400.0, 800.0])
    assert less.p_fail < same.p_fail


# ---------------------------------------------------------------------------
# Estimates from data
# ---------------------------------------------------------------------------


def test_arm_data_means_and_variances() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(1.3, 4.0, size=500)
    cont = rs.ArmData(units=500, total=float(x.sum()), total_squares=float((x * x).sum()))
    mean, var = cont.mean_and_variance()
    assert mean == pytest.approx(x.mean()) and var == pytest.approx(x.var(ddof=1) / 500)
    binary = rs.ArmData(units=1000, total=42)
    assert binary.mean_and_variance() == pytest.approx((0.042, 0.042 * 0.958 / 1000))
    clicks = rng.poisson(1.0, size=300).astype(float)
    views = clicks + rng.poisson(20, size=300)
    ratio = rs.ArmData(units=300, total=float(clicks.sum()), total_squares=float((clicks ** 2).sum()),
                       denominator=float(views.sum()), denominator_squares=float((views ** 2).sum()),
                       cross=float((clicks * views).sum()))
    r, v = ratio.mean_and_variance()
    # The delta method written out from the per-unit means, variances and covariance.
    rr = clicks.sum() / views.sum()
    cov = np.cov(clicks, views, ddof=1)
    assert r == pytest.approx(rr)
    assert v == pytest.approx((cov[0, 0] - 2 * rr * cov[0, 1] + rr * rr * cov[1, 1]) / (300 * views.mean() ** 2))


def test_estimate_matches_statsmodels_tests_of_two_proportions() -> None:
    # One stratum: the absolute gate's statistic is statsmodels' Wald test of the difference against the
    # margin, the relative gate's its log-ratio test against log(1 + margin).
    from statsmodels.stats.proportion import test_proportions_2indep

    control, candidate = rs.ArmData(units=50_000, total=2_100), rs.ArmData(units=48_000, total=1_950)
    absolute = rs.TestSpec("harm", "fixed", 0.05, 1, -0.001, -0.003)
    z = rs.statistic(absolute, rs.estimate([(control, candidate)], relative=False))
    ref = test_proportions_2indep(1_950, 48_000, 2_100, 50_000, value=-0.001, compare="diff", method="wald",
                                  correction=False)
    assert z == pytest.approx(ref.statistic, rel=1e-9)
    relative = rs.TestSpec("harm", "fixed", 0.05, 1, math.log(0.99), math.log(0.97))
    z = rs.statistic(relative, rs.estimate([(control, candidate)], relative=True))
    ref = test_proportions_2indep(1_950, 48_000, 2_100, 50_000, value=0.99, compare="ratio", method="log")
    assert z == pytest.approx(ref.statistic, rel=1e-9)


def test_estimate_combines_strata_by_inverse_variance() -> None:
    # Simpson's example (statistics reference 2.3): the candidate wins on each day and loses pooled; the
    # stratified estimate keeps the win.
    friday = (rs.ArmData(units=990_000, total=20_000), rs.ArmData(units=10_000, total=230))
    saturday = (rs.ArmData(units=500_000, total=5_000), rs.ArmData(units=500_000, total=6_000))
    est = rs.estimate([friday, saturday], relative=False)
    d1, d2 = 230 / 10_000 - 20_000 / 990_000, 6_000 / 500_000 - 5_000 / 500_000
    v1 = 0.023 * 0.977 / 10_000 + (20_000 / 990_000) * (1 - 20_000 / 990_000) / 990_000
    v2 = 0.012 * 0.988 / 500_000 + 0.01 * 0.99 / 500_000
    assert est.difference == pytest.approx((d1 / v1 + d2 / v2) / (1 / v1 + 1 / v2))
    assert est.variance == pytest.approx(1 / (1 / v1 + 1 / v2))
    assert est.difference > 0 > 6_230 / 510_000 - 25_000 / 1_490_000
    # A stratum without data adds nothing; none at all is no information.
    assert rs.estimate([friday, (rs.ArmData(0, 0), rs.ArmData(0, 0))], relative=False).difference == \
        pytest.approx(rs.estimate([friday], relative=False).difference)
    assert rs.estimate([], relative=True).information == 0.0


def test_sample_ratio_mismatch_is_the_chi_square_test() -> None:
    from scipy.stats import chisquare

    z, p = rs.sample_ratio_mismatch(50_310, 49_690, 0.5)
    ref = chisquare([50_310, 49_690], [50_000, 50_000])
    assert z * z == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    z, p = rs.sample_ratio_mismatch(95_000, 5_400, 0.05)
    ref = chisquare([95_000, 5_400], [100_400 * 0.95, 100_400 * 0.05])
    assert p == pytest.approx(ref.pvalue)


def test_design_effect() -> None:
    assert rs.design_effect(1, 0.5) == 1.0
    assert rs.design_effect(20, 0.02) == pytest.approx(1.38)
    assert rs.design_effect(20, 0.02, cv=1.0) == pytest.approx(1 + 0.02 * 39)
    with pytest.raises(ValueError):
        rs.design_effect(0.5, 0.02)


# ---------------------------------------------------------------------------
# Traffic as it arrives, simulation, the package
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [rs.LabelDelay.lognormal(2.0, p95_hours=8.0), rs.LabelDelay.fixed(3.0),
                                   rs.LabelDelay.exponential(1.0), rs.LabelDelay.immediate()])
def test_labelled_components_match_quadrature(delay: rs.LabelDelay) -> None:
    from rolloutlang.stats.traffic import OMEGA, labelled_components, worst_phase

    windows = [(0.0, 6 * 3600.0), (6 * 3600.0, 30 * 3600.0)]
    looks = [6 * 3600.0, 20 * 3600.0, 30 * 3600.0]
    comps = labelled_components(windows, looks, delay)
    for k, t in enumerate(looks):
        for s, (a, b) in enumerate(windows):
            end = min(b, t)
            if end <= a:
                continue
            for values, g, err in ((comps.constant, lambda u: 1.0, 1e-7),
                                   (comps.cosine, lambda u: math.cos(OMEGA * u), 1e-4),
                                   (comps.sine, lambda u: math.sin(OMEGA * u), 1e-4)):
                steps = [t - delay.scale_hours * 3600] if a < t - delay.scale_hours * 3600 < end else None
                ref, _ = integrate.quad(lambda u, g=g, t=t: g(u) * delay.cdf((t - u) / 3600), a, end, limit=400,
                                        points=steps)
                # C0 is exact; the diurnal terms are within 1e-4 of the stage's labelled total.
                assert values[k, s] == pytest.approx(ref, abs=err * comps.constant[k, s] + 1e-6)
    # The worst phase beats every other on the weighted count at the last look.
    weights = [0.05 * 0.95, 0.25]
    psi = worst_phase(comps, weights)
    worst = comps.labelled(1.0, 0.3, psi)[-1] @ np.array(weights)
    others = [comps.labelled(1.0, 0.3, p)[-1] @ np.array(weights) for p in np.linspace(0, 2 * math.pi, 97)]
    assert worst <= min(others) + 1e-9


def test_simulated_crossings_agree_with_the_recursion_and_are_reproducible(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from rolloutlang.stats.montecarlo import simulate_crossings

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fr = rs.equal_fractions(6)
    upper = list(rs.spending_bounds(fr, 0.05, "pocock"))
    lower = [-3.0] * 6
    exact = rs.crossing_probabilities(upper, fr, 1.5, lower)
    sim = simulate_crossings(lower, upper, fr, 1.5, 20_000)
    assert sum(sim.upper) == pytest.approx(exact.total_upper, abs=4 * sim.standard_error)
    assert sum(sim.lower) == pytest.approx(exact.total_lower, abs=4 * math.sqrt(0.01 / 20_000) + 1e-3)
    assert list((tmp_path / "rolloutlang" / "crossings").iterdir())  # kept for the next run
    again = simulate_crossings(lower, upper, fr, 1.5, 20_000)
    fresh = simulate_crossings(lower, upper, fr, 1.5, 20_000, use_cache=False)
    assert again == sim == fresh


def test_importing_the_kernel_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys, rolloutlang.stats as s; s.normal_quantile(0.9); s.gate_windows; "
            "print(' '.join(m for m in ('numpy', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
    assert sorted(rs.__all__) == sorted(set(rs.__all__))
    for name in rs.__all__:
        assert getattr(rs, name) is not None
    with pytest.raises(AttributeError):
        _ = rs.not_a_name


# ---------------------------------------------------------------------------
# SLO and sample-ratio gates at a window
# ---------------------------------------------------------------------------


def _slo(condition: str) -> ir.SloGate:
    from tests.helpers import demo_spec, program_of

    (rollout,) = program_of(demo_spec(f"  gate g: {condition}\n  on g fail: rollback now\n")).rollouts()
    gate = rollout.gate("g")
    assert isinstance(gate, ir.SloGate)
    return gate


def test_slo_windows_never_pass_on_no_data() -> None:
    latency = _slo("p99 latency < 250ms, min samples 100")
    assert rs.slo_window(latency, rs.SloWindow(0.2, candidate_requests=500)) == "pass"
    assert rs.slo_window(latency, rs.SloWindow(0.3, candidate_requests=500)) == "fail"
    for empty in (rs.SloWindow(None), rs.SloWindow(math.nan, candidate_requests=500),
                  rs.SloWindow(0.2, candidate_requests=99), rs.SloWindow(0.2, candidate_requests=0),
                  rs.SloWindow(0.2)):
        assert rs.slo_window(latency, empty) == "inconclusive"
    # Without `min samples` an unknown count is fine, an empty window is not.
    plain = _slo("error rate < 0.5%")
    assert rs.slo_window(plain, rs.SloWindow(0.001)) == "pass"
    assert rs.slo_window(plain, rs.SloWindow(0.001, candidate_requests=0)) == "inconclusive"


def test_slo_change_windows_compare_with_stable() -> None:
    slower = _slo("p99 latency change < +10%")
    assert rs.slo_window(slower, rs.SloWindow(0.197, 0.180)) == "pass"
    assert rs.slo_window(slower, rs.SloWindow(0.199, 0.180)) == "fail"
    assert rs.slo_window(slower, rs.SloWindow(0.199, None)) == "inconclusive"
    points = _slo("error rate change < +0.1% absolute, min samples 1000")
    assert rs.slo_window(points, rs.SloWindow(0.0025, 0.002, 5000, 5000)) == "pass"
    assert rs.slo_window(points, rs.SloWindow(0.0035, 0.002, 5000, 5000)) == "fail"
    assert rs.slo_window(points, rs.SloWindow(0.0035, 0.002, 5000, 900)) == "inconclusive"


def test_slo_gate_fails_after_n_failed_windows_and_pauses_without_data() -> None:
    gate = _slo("p99 latency < 250ms, every 1m, fail after 3")
    assert rs.slo_gate(gate, ["fail", "pass", "fail"]) == "pass"
    assert rs.slo_gate(gate, ["fail", "inconclusive", "fail", "fail"]) == "fail"
    assert rs.slo_gate(gate, ["pass", "inconclusive"]) == "inconclusive"
    assert rs.slo_gate(gate, []) == "inconclusive"


def test_slo_baseline_defaults() -> None:
    assert rs.slo_baseline(_slo("p99 latency < 250ms, baseline 180ms")) == (pytest.approx(0.18), False)
    assert rs.slo_baseline(_slo("p99 latency < 250ms")) == (pytest.approx(0.2), True)
    assert rs.slo_baseline(_slo("saturation > 50%")) == (pytest.approx(0.625), True)
    assert rs.slo_baseline(_slo("error rate change < +10%")) == (pytest.approx(0.001), True)


def test_srm_window() -> None:
    from tests.helpers import demo_spec, program_of

    (rollout,) = program_of(demo_spec("  gate s: srm, min samples 1000\n  on s fail: pause\n")).rollouts()
    gate = rollout.gate("s")
    assert isinstance(gate, ir.SrmGate)
    assert rs.srm_window(gate, 9_500, 500, 0.05) == "pass"
    assert rs.srm_window(gate, 9_300, 700, 0.05) == "fail"  # z = 9.2
    assert rs.srm_window(gate, 950, 49, 0.05) == "inconclusive"
    assert rs.srm_window(gate, 0, 0, 0.05) == "inconclusive"
