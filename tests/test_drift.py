"""Drift statistics (rolloutlang.stats.drift) against closed forms and statistics-reference.md 1.8."""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pytest

from rolloutlang.stats import drift


def _decile_probabilities(shift: float) -> np.ndarray:
    """P(bin) of N(shift, 1) over the ten deciles of N(0, 1)."""
    std = NormalDist()
    edges = [-math.inf, *(std.inv_cdf(k / 10) for k in range(1, 10)), math.inf]
    moved = NormalDist(shift, 1)
    return np.array([moved.cdf(b) - moved.cdf(a) for a, b in itertools.pairwise(edges)])


def test_psi_of_a_half_sd_shift_matches_the_reference_anchor() -> None:
    # statistics-reference.md 1.8: N(0,1) -> N(0.5,1), 10 reference deciles, large n: PSI ~ 0.236; shift 0.25: ~ 0.059.
    reference = _decile_probabilities(0.0) * 1e9
    assert float(drift.psi(_decile_probabilities(0.5) * 1e9, reference)) == pytest.approx(0.236, abs=0.002)
    assert float(drift.psi(_decile_probabilities(0.25) * 1e9, reference)) == pytest.approx(0.059, abs=0.002)


def test_psi_is_the_symmetrised_kl() -> None:
    a, e = np.array([30.0, 50, 20]), np.array([25.0, 45, 30])
    assert float(drift.psi(a, e)) == pytest.approx(float(drift.kl(a, e) + drift.kl(e, a)), rel=1e-12)


def test_kl_and_js_by_hand() -> None:
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    kl = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert float(drift.kl(p, q, epsilon=0.0)) == pytest.approx(kl, rel=1e-12)
    m = (p + q) / 2
    js = 0.5 * sum(p * np.log(p / m)) + 0.5 * sum(q * np.log(q / m))
    assert float(drift.js(p * 7, q * 3)) == pytest.approx(js, rel=1e-12)  # counts, not proportions


def test_identical_distributions_have_no_drift_and_js_is_bounded() -> None:
    c = np.array([10.0, 0.0, 5.0])
    assert float(drift.psi(c, c)) == pytest.approx(0.0, abs=1e-15)
    assert float(drift.js(c, c)) == pytest.approx(0.0, abs=1e-15)
    assert float(drift.js([1.0, 0.0], [0.0, 1.0])) == pytest.approx(math.log(2), rel=1e-12)


def test_empty_bins_are_smoothed_and_an_empty_side_is_nan() -> None:
    value = float(drift.psi([10.0, 0.0], [0.0, 10.0]))
    assert math.isfinite(value) and value > 10  # epsilon 1e-4 keeps it finite but huge
    for fn in (drift.psi, drift.kl, drift.js):
        assert math.isnan(float(fn([0.0, 0.0], [1.0, 2.0])))  # no data is never "no drift"


def test_batches_are_one_call() -> None:
    rng = np.random.default_rng(7)
    ref = np.full(10, 0.1)
    draws = rng.multinomial(1000, ref, size=(4, 500)).astype(float)
    values = drift.psi(draws, ref * 1000)
    assert values.shape == (4, 500)
    assert float(values[1, 3]) == pytest.approx(float(drift.psi(draws[1, 3], ref * 1000)))


def test_psi_under_no_drift_is_about_its_chi_square_mean() -> None:
    # statistics-reference.md 1.8: E[PSI] ~ (B-1)(1/N + 1/M); MC with N = M = 1000, B = 10: mean 0.0180.
    rng = np.random.default_rng(11)
    p = np.full(10, 0.1)
    a = rng.multinomial(1000, p, size=20_000).astype(float)
    e = rng.multinomial(1000, p, size=20_000).astype(float)
    assert float(np.mean(drift.psi(a, e))) == pytest.approx(0.0180, rel=0.05)


def test_rebinning_merges_buckets_into_equal_reference_mass() -> None:
    # Cumulative counts over le = 1..10, +Inf, uniform reference: 10 per bucket, none above 10.
    ref = np.cumsum([10.0] * 10 + [0.0])
    cand = np.cumsum([5.0] * 10 + [50.0])
    c, r = drift.rebin_cumulative(cand, ref, 5)
    assert r.tolist() == [20.0] * 4 + [20.0]
    assert c.sum() == pytest.approx(100.0) and c[-1] == pytest.approx(60.0)  # the +Inf tail lands in the last bin
    # Fewer buckets than bins: every bucket is a bin.
    c2, r2 = drift.rebin_cumulative([1.0, 3.0], [2.0, 4.0], 10)
    assert c2.tolist() == [1.0, 2.0] and r2.tolist() == [2.0, 2.0]


def test_statistic_dispatch_and_refusals() -> None:
    assert float(drift.statistic("js", [1.0, 1.0], [1.0, 1.0])) == 0.0
    with pytest.raises(ValueError):
        drift.statistic("mmd", [1.0], [1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        drift.psi([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        drift.proportions([-1.0, 2.0])
