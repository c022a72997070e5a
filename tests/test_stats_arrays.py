"""The kernel's rules over arrays of runs (the simulator's entry points) give the scalar rules' answers.

Each rule is written once; these tests hold the array form and the scalar form
of every gate rule to the same outcomes on the same data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rolloutlang.stats as rs
from rolloutlang import ir
from rolloutlang.source import Span
from rolloutlang.stats.traffic import requests_between

SPAN = Span(file="t", line=1, col=1, end_line=1, end_col=2)


def test_estimate_arrays_match_the_scalar_estimate() -> None:
    rng = np.random.default_rng(3)
    runs, strata = 200, 3
    n_c = rng.integers(0, 400, size=(runs, strata)).astype(float)
    n_t = rng.integers(0, 400, size=(runs, strata)).astype(float)
    x_c = rng.binomial(n_c.astype(int), 0.1).astype(float)
    x_t = rng.binomial(n_t.astype(int), 0.12).astype(float)
    for relative in (False, True):
        d, v = rs.estimate_arrays(n_c, x_c, n_t, x_t, relative)
        for r in range(runs):
            one = rs.estimate([(rs.ArmData(n_c[r, s], x_c[r, s]), rs.ArmData(n_t[r, s], x_t[r, s]))
                               for s in range(strata)], relative)
            if one.information == 0.0:
                assert math.isnan(d[r]) and v[r] == math.inf
            else:
                assert d[r] == pytest.approx(one.difference, rel=1e-12, abs=1e-15)
                assert v[r] == pytest.approx(one.variance, rel=1e-12)
    # Continuous arms: sums and sums of squares.
    sums = rng.normal(5.0, 1.0, size=(runs, strata)) * n_c
    squares = sums ** 2 / np.maximum(n_c, 1) + rng.uniform(1, 50, size=(runs, strata)) * n_c
    d, v = rs.estimate_arrays(n_c, sums, n_c, sums * 1.01, True, control_squares=squares,
                              candidate_squares=squares * 1.02)
    r = int(np.argmax(n_c.min(axis=1)))
    one = rs.estimate([(rs.ArmData(n_c[r, s], sums[r, s], squares[r, s]),
                        rs.ArmData(n_c[r, s], sums[r, s] * 1.01, squares[r, s] * 1.02)) for s in range(strata)], True)
    assert (d[r], v[r]) == pytest.approx((one.difference, one.variance), rel=1e-12)


def test_design_effect_scales_the_variance() -> None:
    d1, v1 = rs.estimate_arrays([1000.0], [40.0], [1000.0], [50.0], False)
    d2, v2 = rs.estimate_arrays([1000.0], [40.0], [1000.0], [50.0], False, design_effect=1.5)
    assert d1 == pytest.approx(d2) and v2 == pytest.approx(1.5 * v1)


@pytest.mark.parametrize("test", ["fixed", "group-sequential", "msprt", "bayesian"])
@pytest.mark.parametrize("hypothesis", ["harm", "non-inferiority"])
def test_decide_arrays_is_decide_when_a_run_has_the_expected_information(test: str, hypothesis: str) -> None:
    margin, effect = (-0.01, -0.03) if hypothesis == "harm" else (-0.01, 0.0)
    spec = rs.TestSpec(hypothesis, test, 0.05, 1, margin, effect)  # type: ignore[arg-type]
    history = [] if test == "fixed" else [2_000.0, 5_000.0]
    info = 9_000.0
    differences = np.linspace(-0.08, 0.06, 141)
    batch = rs.decide_arrays(spec, differences, np.full(differences.size, 1.0 / info), history, info, 12_000.0,
                             final=True)
    for d, code, z in zip(differences, batch.outcome, batch.statistic, strict=True):
        one = rs.decide(spec, rs.Estimate(float(d), 1.0 / info), history, 12_000.0, final=True)
        assert rs.OUTCOMES[code] == one.outcome
        assert z == pytest.approx(one.statistic)
    assert (batch.lower, batch.upper) == pytest.approx((one.lower, one.upper))


def test_decide_arrays_agrees_with_decide_on_runs_with_their_own_information() -> None:
    """With labelled-count noise, bounds at the expected information decide like the runs' own bounds."""
    spec = rs.TestSpec("harm", "group-sequential", 0.05, 1, -0.01, -0.03)
    rng = np.random.default_rng(5)
    info = 9_000.0
    own = info * (1 + 0.01 * rng.standard_normal(400))  # 1% noise: about 10,000 labels
    d = -0.01 + (-0.02 + rng.standard_normal(400) / np.sqrt(own))
    batch = rs.decide_arrays(spec, d, 1.0 / own, [3_000.0], info, 9_000.0, final=True)
    scalar = [rs.decide(spec, rs.Estimate(float(x), float(1.0 / i)), [3_000.0], 9_000.0, final=True).outcome
              for x, i in zip(d, own, strict=True)]
    agree = np.mean([rs.OUTCOMES[c] == s for c, s in zip(batch.outcome, scalar, strict=True)])
    assert agree >= 0.99


def test_no_information_is_inconclusive() -> None:
    spec = rs.TestSpec("harm", "group-sequential", 0.05, 1, -0.01, -0.03)
    batch = rs.decide_arrays(spec, [math.nan, 0.0], [math.inf, 0.0], [], 1_000.0)
    assert [rs.OUTCOMES[c] for c in batch.outcome] == ["inconclusive", "inconclusive"]
    assert rs.OUTCOMES[rs.decide_arrays(spec, [0.0], [0.001], [], 0.0).outcome[0]] == "pass"


def _slo(**kw: object) -> ir.SloGate:
    base: dict[str, object] = {"span": SPAN, "name": "g", "signal": "latency", "percentile": 99.0, "op": "<",
                               "threshold": 0.25}
    base.update(kw)
    return ir.SloGate(**base)  # type: ignore[arg-type]


values = st.one_of(st.none(), st.sampled_from([math.nan, 0.0, -0.1]), st.floats(0.0, 1.0))
counts = st.one_of(st.none(), st.sampled_from([math.nan, 0.0, 10.0, 499.0, 500.0, 1e6]))


@given(candidate=values, stable=values, n_c=counts, n_s=counts, change=st.booleans(), relative=st.booleans(),
       op=st.sampled_from(["<", "<=", ">", ">="]), min_samples=st.sampled_from([None, 500]))
def test_slo_windows_match_slo_window(candidate: float | None, stable: float | None, n_c: float | None,
                                      n_s: float | None, change: bool, relative: bool, op: str,
                                      min_samples: int | None) -> None:
    gate = _slo(op=op, comparison="change" if change else "threshold", relative=relative and change,
                threshold=0.1 if change else 0.25, min_samples=min_samples)
    one = rs.slo_window(gate, rs.SloWindow(candidate, stable, n_c, n_s))
    none = math.nan
    batch = rs.slo_windows(gate, [none if candidate is None else candidate], [none if stable is None else stable],
                           [none if n_c is None else n_c], [none if n_s is None else n_s])
    assert rs.OUTCOMES[batch[0]] == one
    if one == "inconclusive":
        return
    value = candidate if not change else (candidate / stable - 1 if relative else candidate - stable)  # type: ignore
    assert (one == "pass") == {"<": value < gate.threshold, "<=": value <= gate.threshold,
                               ">": value > gate.threshold, ">=": value >= gate.threshold}[op]


def test_fail_after_counts_failed_windows_and_no_data_pauses() -> None:
    gate = _slo(failure_limit=2)
    assert rs.slo_gate(gate, []) == "inconclusive"
    assert rs.slo_gate(gate, ["fail", "pass"]) == "pass"
    assert rs.slo_gate(gate, ["fail", "inconclusive"]) == "inconclusive"
    assert rs.slo_gate(gate, ["fail", "pass", "fail"]) == "fail"
    codes = rs.gate_outcomes(2, np.array([0, 1, 2, 1]), np.array([1, 3, 1, 0]))
    assert [rs.OUTCOMES[c] for c in codes] == ["pass", "inconclusive", "fail", "pass"]


def test_srm_windows_match_srm_window() -> None:
    gate = ir.SrmGate(span=SPAN, name="split", alpha=0.001, min_samples=100)
    cases = [(950.0, 50.0, 0.05), (940.0, 60.0, 0.05), (900.0, 100.0, 0.05), (0.0, 0.0, 0.05), (40.0, 10.0, 0.2),
             (500.0, 500.0, 1.0)]
    batch = rs.srm_windows(gate, *map(np.array, zip(*cases, strict=True)))
    assert [rs.OUTCOMES[c] for c in batch] == [rs.srm_window(gate, *c) for c in cases]
    assert [rs.OUTCOMES[c] for c in batch] == ["pass", "pass", "fail", "inconclusive", "inconclusive", "inconclusive"]


def test_drift_windows_judge_a_batch_of_histograms() -> None:
    gate = ir.DriftGate(span=SPAN, name="d", statistic="psi", target="scores", threshold=0.2, min_samples=50)
    cand = np.array([[10, 10, 10, 10, 10], [40, 5, 1, 2, 2], [5, 5, 5, 5, 5], [0, 0, 0, 0, 0]], dtype=float)
    ref = np.full((4, 5), 10.0)
    values, codes = rs.drift_windows(gate, cand, ref)
    assert [rs.OUTCOMES[c] for c in codes] == ["pass", "fail", "inconclusive", "inconclusive"]
    assert values[0] == pytest.approx(0.0) and math.isnan(values[2])
    from rolloutlang.stats import drift

    assert values[1] == pytest.approx(float(drift.psi(cand[1], ref[1])))


def test_requests_between_integrates_the_daily_shape() -> None:
    day = 86_400.0
    # Whole days hold exactly rate x time, whatever the phase.
    for phase in (0.0, 1.0, 2.5):
        assert requests_between(0.0, 3 * day, 100.0, 0.3, phase) == pytest.approx(100.0 * 3 * day, rel=1e-12)
    # Part of a day: the integral of the rate, checked by quadrature.
    grid = np.linspace(3_600.0, 30_000.0, 200_001)
    rate = 100.0 * (1 + 0.3 * np.cos(2 * np.pi / day * grid + 1.0))
    quadrature = float(((rate[1:] + rate[:-1]) / 2 * np.diff(grid)).sum())
    assert requests_between(3_600.0, 30_000.0, 100.0, 0.3, 1.0) == pytest.approx(quadrature, rel=1e-9)
    assert requests_between(5.0, 1.0, 100.0, 0.3, 0.0) == 0.0


def test_stratified_information_is_the_planned_information_at_no_change() -> None:
    var = rs.unit_variance("binary", 0.042, None, True)
    planned = rs.planned_information(var, 30_000.0, 1_000.0) + rs.planned_information(var, 20_000.0, 5_000.0)
    assert float(rs.stratified_information(var, var, [30_000.0, 20_000.0], [1_000.0, 5_000.0])) == \
        pytest.approx(planned)
    assert float(rs.stratified_information(var, var, [0.0], [5.0])) == 0.0
