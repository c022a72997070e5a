"""The rule of an SLO gate and of a sample-ratio gate at one window, and the SLO baseline defaults.

For the simulator and `rollout evaluate`, next to :func:`rolloutlang.stats.designs.decide`
for business gates.  A window is judged on its own (:func:`slo_window`,
:func:`srm_window`); the gate fails once `fail after N` windows have failed
(:func:`slo_gate`).  **No data is never a pass**: a missing or NaN value, an
empty window, or fewer requests than `min samples` is ``inconclusive``, which
pauses the plan and does not count towards `fail after`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rolloutlang import ir
from rolloutlang.stats.designs import Outcome
from rolloutlang.stats.estimates import sample_ratio_mismatch

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


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def _holds(op: ir.Comparison, value: float, threshold: float) -> bool:
    return {"<": value < threshold, "<=": value <= threshold, ">": value > threshold,
            ">=": value >= threshold}[op]


def slo_window(gate: ir.SloGate, window: SloWindow) -> Outcome:
    """``pass``, ``fail`` or ``inconclusive`` (no data) for one window of an SLO gate."""
    if _missing(window.candidate):
        return "inconclusive"
    counts = [window.candidate_requests]
    if gate.comparison == "change":
        counts.append(window.stable_requests)
    if any(c is not None and c <= 0 for c in counts):
        return "inconclusive"
    if gate.min_samples is not None and any(c is None or c < gate.min_samples for c in counts):
        return "inconclusive"
    assert window.candidate is not None
    if gate.comparison == "threshold":
        return "pass" if _holds(gate.op, window.candidate, gate.threshold) else "fail"
    if _missing(window.stable):
        return "inconclusive"
    assert window.stable is not None
    if gate.relative:
        if window.stable <= 0:
            return "inconclusive"
        change = window.candidate / window.stable - 1.0
    else:
        change = window.candidate - window.stable
    return "pass" if _holds(gate.op, change, gate.threshold) else "fail"


def slo_gate(gate: ir.SloGate | ir.DriftGate, windows: Sequence[Outcome]) -> Outcome:
    """The gate after these windows: failed once `fail after N` of them failed, else the last one's word.

    Inconclusive windows do not count towards the failures; the gate is
    inconclusive while its latest window is.
    """
    if sum(1 for w in windows if w == "fail") >= gate.failure_limit:
        return "fail"
    if not windows or windows[-1] == "inconclusive":
        return "inconclusive"
    return "pass"


def srm_window(gate: ir.SrmGate, n_control: float, n_candidate: float, candidate_share: float) -> Outcome:
    """A sample-ratio gate on the units counted since the stage began, against the stage's share (0-1)."""
    total = n_control + n_candidate
    if total <= 0 or (gate.min_samples is not None and total < gate.min_samples):
        return "inconclusive"
    _, p = sample_ratio_mismatch(n_control, n_candidate, candidate_share)
    if math.isnan(p):
        return "inconclusive"
    return "fail" if p < gate.alpha else "pass"
