"""Statistics kernel shared by the checks, `rollout explain`, the simulator and `rollout evaluate`.

Pure functions over numbers, one module per subject; only :mod:`.gates`
reads the IR.  Importing ``rolloutlang.stats`` imports nothing heavy: names
are loaded from their module on first use (numpy with the numerical
modules; scipy only by the t-test variants of :mod:`.fixed`).

Modules
    normal        scalar normal CDF/quantile, root finding, ``solve_for_power``
    vector        vectorised normal density and CDF (numpy, no scipy)
    delays        label delay laws (:class:`LabelDelay`) and arrived-label fractions
    fixed         fixed-horizon power and sample size (statsmodels conventions)
    sequential    group-sequential crossing probabilities, alpha spending
                  (O'Brien-Fleming, Pocock, Hwang-Shih-DeCani), beta-spending lower bounds
    always_valid  mSPRT (one- and two-sided) and Bayesian boundaries on the z-scale
    designs       THE rule of a business gate: :class:`TestSpec`, :func:`boundaries`,
                  :func:`decide`, :func:`operating_characteristics`
    estimates     from per-arm data to the tested estimate (:class:`ArmData`,
                  :func:`estimate`; delta method for ratio metrics), design effect,
                  planned information, sample-ratio mismatch
    schedule      the phases a gate is evaluated in (:func:`gate_windows`; no numpy)
    traffic       labelled requests with the daily traffic shape, the worst start
    montecarlo    seeded, cached simulation of boundary crossings (many looks)
    drift         PSI, KL and JS over binned distributions (vectorised), rebinning to
                  equal reference mass; for drift gates in `evaluate` and the simulator
    slo           an SLO or sample-ratio gate at one window (no data is inconclusive),
                  `fail after N`, and the SLO `baseline` defaults
    gates         IR -> :class:`TestSpec` (:func:`test_spec`) and a gate's looks,
                  labels, information and operating characteristics on its plan
                  (:func:`plan_gate`); the plan's false-rollback rate

Judging a business gate at a look (the simulator and `rollout evaluate`)::

    from rolloutlang import stats

    spec = stats.test_spec(rollout, gate)              # the gate's rule, from its IR
    planned = stats.plan_gate(rollout, gate, plan)     # looks and planned information
    est = stats.estimate([(control, candidate), ...], relative=gate.relative)   # ArmData per stage
    decision = stats.decide(spec, est, history=[...], reference=planned_final_information, final=is_last)
    decision.outcome      # "fail" | "pass" | "promote-allowed" | "inconclusive"
    decision.statistic, decision.lower, decision.upper, decision.information, decision.fraction

``history`` is the information at the gate's earlier looks (spending depends
on when they were), ``reference`` the planned information at its last look
(``planned.samples[-1].information``); an estimate without information (no
data) is ``inconclusive``, never a pass.  The looks are
``stats.gates.gate_looks(gate, stats.gate_windows(plan, gate))``: at most
``stats.gates.MAX_LOOKS`` (400) of them, evenly thinned beyond that; judge a
gate only at those.  SLO and sample-ratio gates::

    outcome = stats.slo_window(gate, stats.SloWindow(candidate=0.21, stable=0.18, candidate_requests=900))
    verdict = stats.slo_gate(gate, outcomes_so_far)        # applies `fail after N`
    outcome = stats.srm_window(srm_gate, n_control, n_candidate, candidate_share=0.05)
    value, assumed = stats.slo_baseline(gate)              # the stable value to simulate from

For vectorised simulation, :func:`boundaries` gives the per-look bounds on ``Z = s (estimate - margin) /
SE`` once, and :func:`operating_characteristics` their exact crossing
probabilities.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rolloutlang.stats.always_valid import (
        bayesian_z_boundary,
        msprt_one_sided_boundary,
        msprt_one_sided_log_ratio,
        msprt_z_boundary,
    )
    from rolloutlang.stats.delays import (
        LabelDelay,
    )
    from rolloutlang.stats.designs import (
        OUTCOMES,
        Boundaries,
        Decision,
        Decisions,
        Estimate,
        GateCharacteristics,
        Hypothesis,
        OperatingCharacteristics,
        Outcome,
        TestKind,
        TestSpec,
        boundaries,
        characterize,
        classify,
        decide,
        decide_arrays,
        look_bounds,
        operating_characteristics,
        statistic,
    )
    from rolloutlang.stats.estimates import (
        ArmData,
        design_effect,
        estimate,
        estimate_arrays,
        planned_information,
        sample_ratio_mismatch,
        stratified_information,
        unit_variance,
    )
    from rolloutlang.stats.fixed import (
        mean_difference_power,
        mean_difference_sample_size,
        two_proportion_power,
        two_proportion_sample_size,
        z_test_power,
    )
    from rolloutlang.stats.gates import (
        GatePlan,
        LookSample,
        PlanFalseRollbacks,
        effective_alpha,
        plan_false_rollbacks,
        plan_gate,
        test_spec,
    )
    from rolloutlang.stats.normal import (
        normal_cdf,
        normal_pdf,
        normal_quantile,
        solve_for_power,
    )
    from rolloutlang.stats.schedule import StageWindow, gate_windows
    from rolloutlang.stats.sequential import (
        ClassicalDesign,
        CrossingProbabilities,
        Spending,
        SpendingFunction,
        alpha_spent,
        beta_spending_lower,
        classical_bounds,
        classical_constant,
        crossing_probabilities,
        design_drift,
        equal_fractions,
        expected_sample_fraction,
        hsd,
        inflation_factor,
        sequential_power,
        spending_bounds,
    )
    from rolloutlang.stats.slo import (
        SloWindow,
        drift_outcomes,
        drift_windows,
        gate_outcomes,
        slo_baseline,
        slo_gate,
        slo_window,
        slo_windows,
        srm_window,
        srm_windows,
    )

__all__ = [
    "OUTCOMES",
    "ArmData",
    "Boundaries",
    "ClassicalDesign",
    "CrossingProbabilities",
    "Decision",
    "Decisions",
    "Estimate",
    "GateCharacteristics",
    "GatePlan",
    "Hypothesis",
    "LabelDelay",
    "LookSample",
    "OperatingCharacteristics",
    "Outcome",
    "PlanFalseRollbacks",
    "SloWindow",
    "Spending",
    "SpendingFunction",
    "StageWindow",
    "TestKind",
    "TestSpec",
    "alpha_spent",
    "bayesian_z_boundary",
    "beta_spending_lower",
    "boundaries",
    "characterize",
    "classical_bounds",
    "classical_constant",
    "classify",
    "crossing_probabilities",
    "decide",
    "decide_arrays",
    "design_drift",
    "design_effect",
    "drift_outcomes",
    "drift_windows",
    "effective_alpha",
    "equal_fractions",
    "estimate",
    "estimate_arrays",
    "expected_sample_fraction",
    "gate_outcomes",
    "gate_windows",
    "hsd",
    "inflation_factor",
    "look_bounds",
    "mean_difference_power",
    "mean_difference_sample_size",
    "msprt_one_sided_boundary",
    "msprt_one_sided_log_ratio",
    "msprt_z_boundary",
    "normal_cdf",
    "normal_pdf",
    "normal_quantile",
    "operating_characteristics",
    "plan_false_rollbacks",
    "plan_gate",
    "planned_information",
    "sample_ratio_mismatch",
    "sequential_power",
    "slo_baseline",
    "slo_gate",
    "slo_window",
    "slo_windows",
    "solve_for_power",
    "spending_bounds",
    "srm_window",
    "srm_windows",
    "statistic",
    "stratified_information",
    "test_spec",
    "two_proportion_power",
    "two_proportion_sample_size",
    "unit_variance",
    "z_test_power",
]

# Searched in this order on first use; the light modules come first, so the
# scalar helpers never import numpy.
_MODULES = ("normal", "schedule", "delays", "fixed", "sequential", "always_valid", "designs", "estimates", "gates",
            "slo")


def __getattr__(name: str) -> Any:
    """Load an exported name from its module on first use (PEP 562)."""
    if name in __all__:
        for module in _MODULES:
            value = getattr(importlib.import_module(f"rolloutlang.stats.{module}"), name, None)
            if value is not None:
                globals()[name] = value
                return value
    raise AttributeError(f"module 'rolloutlang.stats' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
