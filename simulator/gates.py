"""Each gate judged in many runs at once, through the statistics kernel's rules.

A judge draws what its gate reads in a window (or at a look) for the runs
given, and returns each run's verdict with the kernel's own function: SLO
windows with :func:`rolloutlang.stats.slo_windows` and `fail after` with
:func:`rolloutlang.stats.gate_outcomes`, drift windows with
:func:`rolloutlang.stats.drift_windows` (MMD at its population value with
:func:`rolloutlang.stats.drift_outcomes`), sample-ratio windows with
:func:`rolloutlang.stats.srm_windows`, and business looks with
:func:`rolloutlang.stats.estimate_arrays` and
:func:`rolloutlang.stats.decide_arrays`.  Nothing here restates a test.

SLO and drift gates are judged every `every`, on the windows ending then,
in the phases where they run and where the candidate answers requests (a
blue-green preview without a shadow sends it none the simulator can model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from rolloutlang import ir
from rolloutlang.simulator import labels, signals
from rolloutlang.simulator.model import DEFAULT_SIGMA, GateModel
from rolloutlang.simulator.timeline import Arm, expected_requests
from rolloutlang.stats.designs import FAIL, INCONCLUSIVE, PROMOTE_ALLOWED, IntArray, decide_arrays
from rolloutlang.stats.estimates import estimate_arrays
from rolloutlang.stats.slo import drift_outcomes, drift_windows, gate_outcomes, slo_baseline, slo_windows, srm_windows
from rolloutlang.stats.vector import FloatArray

if TYPE_CHECKING:
    from rolloutlang.simulator.engine import Engine

Index = npt.NDArray[np.intp]
TRAINING_SAMPLES = 1e12


def per_timeline(engine: Engine, runs: Index, value: Callable[[int], float]) -> FloatArray:
    """``value(timeline)`` for each run, computed once per timeline the runs are on."""
    if len(engine.timelines) == 1:
        return np.full(runs.size, value(0))
    classes = engine.cls[runs]
    present = np.flatnonzero(np.bincount(classes, minlength=len(engine.timelines)))
    if present.size == 1:
        return np.full(runs.size, value(int(present[0])))
    table = np.zeros(len(engine.timelines))
    for c in present:
        table[c] = value(int(c))
    out: FloatArray = table[classes]
    return out


@dataclass
class WindowGate:
    """An SLO or drift gate: its windows' failures so far in each run."""

    model: GateModel
    fails: npt.NDArray[np.int32]
    streak: npt.NDArray[np.int32]

    @classmethod
    def new(cls, model: GateModel, runs: int) -> WindowGate:
        return cls(model, np.zeros(runs, np.int32), np.zeros(runs, np.int32))

    def window_requests(self, engine: Engine, runs: Index, t: float, arm: Arm) -> FloatArray:
        """Expected requests an arm answers in each run's window ending at t, since the gate became active."""
        gm = self.model
        width = gm.interval_s

        def mean(c: int) -> float:
            key = (t, width, gm.phases, arm, c)
            known = engine.expected_cache.get(key)
            if known is None:
                tl = engine.timelines[c]
                since = gm.active_since(tl.phase, tl.starts)
                known = expected_requests(engine.model, engine.scenario, tl, max(t - width, since), t, arm, gm.phases)
                engine.expected_cache[key] = known
            return known

        return per_timeline(engine, runs, mean)

    def judge(self, engine: Engine, runs: Index, t: float) -> tuple[Index, IntArray]:
        """(the runs judged, their gate verdict) for the windows ending at t."""
        mean = self.window_requests(engine, runs, t, "candidate")
        served = mean > 0
        if not served.all():
            runs, mean = runs[served], mean[served]
        if runs.size == 0:
            return runs, np.zeros(0, np.int8)
        codes = self._windows(engine, runs, mean, t)
        # Every run judged (the usual case): a slice, a view, where an index would copy.
        mine: Index | slice = slice(None) if runs.size == self.fails.size else runs
        failed = codes == FAIL
        self.fails[mine] += failed
        streak = self.streak[mine]
        self.streak[mine] = np.where(failed, streak + 1, 0)
        return runs, gate_outcomes(self.model.failure_limit, self.fails[mine], codes)

    def _windows(self, engine: Engine, runs: Index, mean: FloatArray, t: float) -> IntArray:
        gate = self.model.gate
        if isinstance(gate, ir.SloGate):
            return _slo_windows(engine, self, gate, runs, mean, t)
        assert isinstance(gate, ir.DriftGate)
        return _drift_windows(engine, self, gate, runs, mean, t)

    def still_fails(self, runs: Index) -> npt.NDArray[np.bool_]:
        """After a confirmation wait: its last `fail after N` windows all failed (`rollout evaluate
        --confirm-after`); an unconfirmed failure is forgiven, so `fail after` counts again from there."""
        confirmed = self.streak[runs] >= self.model.failure_limit
        self.fails[runs[~confirmed]] = self.streak[runs[~confirmed]]
        return confirmed


def _middle(gate: GateModel, t: float) -> float:
    """The time whose scenario state a window ending at t reads: its middle (an effect that switches on
    inside a window counts there once it covers half of it)."""
    return t - gate.interval_s / 2.0


def _slo_windows(engine: Engine, state: WindowGate, gate: ir.SloGate, runs: Index, mean: FloatArray,
                 t: float) -> IntArray:
    rng, scenario = engine.rng, engine.scenario
    now = _middle(state.model, t)
    base, _ = slo_baseline(gate)

    def window(arm: str, expected: FloatArray, candidate: bool) -> tuple[FloatArray, FloatArray]:
        """(requests, the gate's value) of one arm's window."""
        if gate.signal == "error_rate":
            rate = scenario.error_rate(gate.name, now, base) if candidate else base
            n, errors = engine.window_errors(state.model, runs, t, arm, expected, rate)
            with np.errstate(invalid="ignore", divide="ignore"):
                return n, np.where(n > 0, errors / np.where(n > 0, n, 1.0), np.nan)
        n = engine.window_counts(state.model, runs, t, arm, expected)
        if gate.signal == "latency":
            assert gate.percentile is not None
            q = gate.percentile / 100.0
            sigma = gate.sigma or DEFAULT_SIGMA
            scale, shift = scenario.latency(gate.name, now) if candidate else (1.0, 0.0)
            return n, signals.latency_quantile(rng, n, q, signals.lognormal_median(base, q, sigma), sigma, scale,
                                               shift)
        level = scenario.value(gate.name, now, base) if candidate else base
        noise = gate.sd * rng.standard_normal(n.shape) if gate.sd else 0.0
        return n, np.full(n.shape, level) + noise

    n_c, v_c = window("candidate", mean, True)
    n_s: FloatArray | None = None
    v_s: FloatArray | None = None
    if gate.comparison == "change":
        n_s, v_s = window("stable", state.window_requests(engine, runs, t, "stable"), False)
    return slo_windows(gate, v_c, v_s, n_c, n_s)


def _drift_windows(engine: Engine, state: WindowGate, gate: ir.DriftGate, runs: Index, mean: FloatArray,
                   t: float) -> IntArray:
    rng = engine.rng
    value = engine.scenario.drift(gate.name, _middle(state.model, t))
    stable = gate.reference == "stable"
    ref_mean = state.window_requests(engine, runs, t, "stable") if stable else None
    if gate.statistic == "mmd":
        n_c = engine.window_counts(state.model, runs, t, "candidate", mean)
        n_r = engine.window_counts(state.model, runs, t, "stable", ref_mean) if ref_mean is not None \
            else np.full(runs.size, TRAINING_SAMPLES)
        return drift_outcomes(gate, np.full(runs.size, value), n_c, n_r)
    uniform = signals.drifted_bins(gate.statistic, gate.bins, 0.0)
    cand = signals.bin_counts(rng, mean, signals.drifted_bins(gate.statistic, gate.bins, value))
    if ref_mean is not None:
        ref = signals.bin_counts(rng, ref_mean, uniform)
    else:
        ref = np.full((runs.size, gate.bins), TRAINING_SAMPLES / gate.bins)
    return drift_windows(gate, cand, ref)[1]


@dataclass
class SrmGate:
    """A sample-ratio gate: the units counted on each arm since each run's stage began."""

    model: GateModel
    stage: npt.NDArray[np.int32]
    counts: FloatArray
    expected: FloatArray

    @classmethod
    def new(cls, model: GateModel, runs: int) -> SrmGate:
        return cls(model, np.full(runs, -1, np.int32), np.zeros((runs, 2)), np.zeros((runs, 2)))

    def judge(self, engine: Engine, runs: Index, t: float) -> tuple[Index, IntArray]:
        gate = self.model.gate
        assert isinstance(gate, ir.SrmGate)
        phase = np.array([engine.timelines[c].phase for c in engine.cls[runs]])
        declared = np.array([engine.model.phases[p].weight for p in phase])
        keep = (declared > 0) & (declared < 1)
        runs, phase, declared = runs[keep], phase[keep], declared[keep]
        if runs.size == 0:
            return runs, np.zeros(0, np.int8)
        fresh = self.stage[runs] != phase
        self.counts[runs[fresh]] = 0.0
        self.expected[runs[fresh]] = 0.0
        self.stage[runs] = phase
        now = np.empty((runs.size, 2))
        arms: tuple[Arm, Arm] = ("stable", "live")
        for col, arm in enumerate(arms):
            def mean(c: int, arm: Arm = arm) -> float:
                tl = engine.timelines[c]
                return expected_requests(engine.model, engine.scenario, tl, tl.starts[tl.phase], t, arm)
            now[:, col] = per_timeline(engine, runs, mean) / engine.model.requests_per_unit
        self.counts[runs] += signals.poisson(engine.rng, np.maximum(now - self.expected[runs], 0.0))
        self.expected[runs] = now
        return runs, srm_windows(gate, self.counts[runs, 0], self.counts[runs, 1], declared)

    def still_fails(self, engine: Engine, runs: Index, t: float) -> npt.NDArray[np.bool_]:
        judged, codes = self.judge(engine, runs, t)
        confirmed = np.zeros(runs.size, bool)
        confirmed[np.isin(runs, judged[codes == FAIL])] = True
        return confirmed


@dataclass
class LookRecord:
    """What one business look saw, summed over the runs that reached it (for the `looks` output)."""

    runs: int = 0
    control: float = 0.0
    candidate: float = 0.0
    information: float = 0.0
    fraction: float = 0.0
    fails: int = 0
    promotes: int = 0
    no_data: int = 0


@dataclass
class BusinessGate:
    """A business gate: each run's labelled data so far, and what its looks saw."""

    model: GateModel
    observed: labels.Observed
    deff: float
    records: list[LookRecord] = field(default_factory=list)

    @classmethod
    def new(cls, model: GateModel, runs: int, deff: float) -> BusinessGate:
        assert model.metric is not None
        strata = len(labels.strata_phases(model))
        return cls(model, labels.Observed.empty(runs, strata, model.metric.kind == "continuous"), deff,
                   [LookRecord() for _ in model.looks])

    def judge(self, engine: Engine, runs: Index, timeline: int, look: int, t: float, *,
              record: bool = True) -> IntArray:
        """The decision at look ``look`` (0-based) for ``runs``, all on ``timeline``, with the data at t."""
        gm = self.model
        assert gm.spec is not None and gm.metric is not None and isinstance(gm.gate, ir.BusinessGate)
        tl = engine.timelines[timeline]
        expected = labels.expected(engine.model, engine.scenario, gm, tl, t)
        information = expected.information(gm, self.deff)
        labels.draw(engine.rng, gm, self.observed, runs, expected.units[None], expected.totals[None], self.deff)
        obs = self.observed
        control: FloatArray | None = None
        candidate: FloatArray | None = None
        if obs.squares is not None:
            control, candidate = obs.squares[runs, 0], obs.squares[runs, 1]
        # Binary counts carry the design effect in the variance the delta method estimates; continuous
        # values were drawn with it, so their sample variance has it already.
        d, v = estimate_arrays(obs.units[runs, 0], obs.totals[runs, 0], obs.units[runs, 1], obs.totals[runs, 1],
                               gm.gate.relative, control_squares=control, candidate_squares=candidate,
                               design_effect=self.deff if obs.squares is None else 1.0)
        history = tl.history.get(gm.index, [])
        decisions = decide_arrays(gm.spec, d, v, history, information, gm.reference, final=gm.looks[look].final)
        if record:
            tl.history[gm.index] = [*history, information]
            rec = self.records[look]
            rec.runs += runs.size
            rec.control += float(obs.units[runs, 0].sum())
            rec.candidate += float(obs.units[runs, 1].sum())
            rec.information += float(decisions.information.sum())
            rec.fraction += decisions.fraction * runs.size
            rec.fails += int((decisions.outcome == FAIL).sum())
            rec.promotes += int((decisions.outcome == PROMOTE_ALLOWED).sum())
            rec.no_data += int((decisions.outcome == INCONCLUSIVE).sum())
        return decisions.outcome
