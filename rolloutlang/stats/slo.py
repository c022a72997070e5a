"""The rule of an SLO, drift or sample-ratio gate at one window, and the SLO baseline defaults.

For the simulator and `rollout evaluate`, next to :func:`rolloutlang.stats.designs.decide`
for business gates.  A window is judged on its own (:func:`slo_window`,
:func:`srm_window`, :func:`drift_windows`); the gate fails once `fail after N`
windows have failed (:func:`slo_gate`).  **No data is never a pass**: a
missing or NaN value, an empty window, or fewer requests than `min samples` is
``inconclusive``, which pauses the plan and does not count towards `fail after`.

Each rule is written once, over arrays (``*_windows``: one window in each of
many runs, outcome codes as in :data:`rolloutlang.stats.designs.OUTCOMES`); the
scalar functions apply it to one window.  Unknown counts are NaN in the arrays
(``None`` in the scalar functions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rolloutlang import ir
from rolloutlang.stats.compare import COMPARE
from rolloutlang.stats.designs import FAIL, INCONCLUSIVE, OUTCOMES, PASS, IntArray, Outcome
from rolloutlang.stats.estimates import sample_ratio_mismatch_arrays
from rolloutlang.stats.vector import FloatArray

# The stable version's value assumed when an SLO gate gives no `baseline` (docs/language.md, section 17):
# threshold gates sit 20% inside their threshold; change gates get a typical value per signal.
HEADROOM = 0.8
CHANGE_BASELINES = {"latency": 0.1, "error_rate": 0.001, "saturation": 0.5, "query": 1.0}

def slo_baseline(gate: ir.SloGate) -> tuple[float, bool]:
    """The stable version's value for the gate's signal, and whether it was assumed (no `baseline`)."""
    if gate.baseline is not None:
        return gate.baseline, False
    if gate.comparison == "change":
        return CHANGE_BASELINES[gate.signal], True
    if gate.op in ("<", "<="):
        return gate.threshold * HEADROOM, True
    return gate.threshold / HEADROOM, True


@dataclass(frozen=True)
class SloWindow:
    """What one window measured.

    Attributes:
        candidate: the candidate's value (seconds, a fraction or the query's number); None or NaN when missing.
        stable: the stable version's value over the same window (change gates).
        candidate_requests, stable_requests: requests in the window, when known (for `min samples`).
    """

    candidate: float | None
    stable: float | None = None
    candidate_requests: float | None = None
    stable_requests: float | None = None


def holds(op: ir.Comparison, value: npt.ArrayLike, threshold: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether values are on the healthy side of a gate's comparison, elementwise (NaN never is)."""
    with np.errstate(invalid="ignore"):
        out: npt.NDArray[np.bool_] = COMPARE[op](np.asarray(value, dtype=np.float64), threshold)
    return out


def _floats(value: npt.ArrayLike | None) -> FloatArray:
    return np.asarray(math.nan if value is None else value, dtype=np.float64)


def slo_windows(gate: ir.SloGate, candidate: npt.ArrayLike, stable: npt.ArrayLike | None = None,
                candidate_requests: npt.ArrayLike | None = None,
                stable_requests: npt.ArrayLike | None = None) -> IntArray:
    """Outcome codes of one window of an SLO gate in each run (NaN: missing value, unknown count)."""
    cand = _floats(candidate)
    counts = [_floats(candidate_requests)]
    if gate.comparison == "change":
        counts.append(_floats(stable_requests))
    no_data = ~np.isfinite(cand)
    with np.errstate(invalid="ignore"):
        for c in counts:
            no_data = no_data | (c <= 0)
            if gate.min_samples is not None:
                no_data = no_data | ~(c >= gate.min_samples)
        if gate.comparison == "threshold":
            value = cand
        else:
            base = _floats(stable)
            no_data = no_data | ~np.isfinite(base)
            if gate.relative:
                no_data = no_data | (base <= 0)
                value = cand / np.where(base > 0, base, 1.0) - 1.0
            else:
                value = cand - base
    codes = np.where(no_data, INCONCLUSIVE, np.where(holds(gate.op, value, gate.threshold), PASS, FAIL))
    out: IntArray = codes.astype(np.int8)
    return out


def slo_window(gate: ir.SloGate, window: SloWindow) -> Outcome:
    """``pass``, ``fail`` or ``inconclusive`` (no data) for one window of an SLO gate."""
    return OUTCOMES[int(slo_windows(gate, _floats(window.candidate), _floats(window.stable),
                                    _floats(window.candidate_requests), _floats(window.stable_requests)))]


def gate_outcomes(failure_limit: int, failures: npt.ArrayLike, latest: npt.ArrayLike) -> IntArray:
    """The gate in each run after its windows so far: failed once `fail after N` of them failed,
    else inconclusive while its latest window is (or there is none yet: code INCONCLUSIVE), else pass."""
    fails = np.asarray(failures) >= failure_limit
    codes = np.where(fails, FAIL, np.where(np.asarray(latest) == INCONCLUSIVE, INCONCLUSIVE, PASS))
    out: IntArray = codes.astype(np.int8)
    return out


def slo_gate(gate: ir.SloGate | ir.DriftGate, windows: Sequence[Outcome]) -> Outcome:
    """The gate after these windows: failed once `fail after N` of them failed, else the last one's word.

    Inconclusive windows do not count towards the failures; the gate is
    inconclusive while its latest window is.
    """
    latest = OUTCOMES.index(windows[-1]) if windows else INCONCLUSIVE
    return OUTCOMES[int(gate_outcomes(gate.failure_limit, sum(1 for w in windows if w == "fail"), latest))]


def srm_windows(gate: ir.SrmGate, n_control: npt.ArrayLike, n_candidate: npt.ArrayLike,
                candidate_share: npt.ArrayLike) -> IntArray:
    """Outcome codes of a sample-ratio gate in each run, on the units counted since the stage began."""
    n_c = np.asarray(n_control, dtype=np.float64)
    n_t = np.asarray(n_candidate, dtype=np.float64)
    total = n_c + n_t
    _, p = sample_ratio_mismatch_arrays(n_c, n_t, candidate_share)
    no_data = ~(total > 0) | ~np.isfinite(p)
    if gate.min_samples is not None:
        no_data = no_data | ~(total >= gate.min_samples)
    codes = np.where(no_data, INCONCLUSIVE, np.where(p < gate.alpha, FAIL, PASS))
    out: IntArray = codes.astype(np.int8)
    return out


def srm_window(gate: ir.SrmGate, n_control: float, n_candidate: float, candidate_share: float) -> Outcome:
    """A sample-ratio gate on the units counted since the stage began, against the stage's share (0-1)."""
    return OUTCOMES[int(srm_windows(gate, n_control, n_candidate, candidate_share))]


def drift_outcomes(gate: ir.DriftGate, values: npt.ArrayLike, candidate_samples: npt.ArrayLike,
                   reference_samples: npt.ArrayLike) -> IntArray:
    """Outcome codes of drift windows whose statistic is known: fewer than `min samples` (at least 1) on
    either side, or a NaN statistic, is no data; else the threshold decides."""
    floor = max(gate.min_samples or 1, 1)
    with np.errstate(invalid="ignore"):
        enough = (np.asarray(candidate_samples) >= floor) & (np.asarray(reference_samples) >= floor)
    value = np.where(enough, np.asarray(values, dtype=np.float64), np.nan)
    assert gate.threshold is not None
    codes = np.where(np.isfinite(value), np.where(holds(gate.op, value, gate.threshold), PASS, FAIL), INCONCLUSIVE)
    out: IntArray = codes.astype(np.int8)
    return out


def drift_windows(gate: ir.DriftGate, candidate_counts: npt.ArrayLike,
                  reference_counts: npt.ArrayLike) -> tuple[FloatArray, IntArray]:
    """The drift statistic of each window (bins on the last axis) and its outcome code (:func:`drift_outcomes`).

    The value is NaN where the window has no data.  ``psi``, ``kl`` and ``js``
    only (see :mod:`rolloutlang.stats.drift`).
    """
    from rolloutlang.stats import drift

    cand = np.asarray(candidate_counts, dtype=np.float64)
    ref = np.asarray(reference_counts, dtype=np.float64)
    value = drift.statistic(gate.statistic, cand, ref)  # type: ignore[arg-type]
    codes = drift_outcomes(gate, value, cand.sum(axis=-1), ref.sum(axis=-1))
    return np.where(codes == INCONCLUSIVE, np.nan, value), codes
