"""The plan, driven once for thousands of runs by SimPy: phases, gate looks, rules, waits.

One :class:`Engine` simulates one chunk of runs of one scenario.  Its state
is numpy arrays with one entry per run (status, timeline, each gate's
counts); SimPy schedules what happens and when:

* one process per SLO, drift and sample-ratio gate wakes every `every` and
  judges the windows ending then, in every run where the gate runs;
* a business gate's looks are scheduled when a run's timeline enters the
  phase they belong to (the plan's look offsets within that phase);
* what the gates decided at a moment is acted on once all of them have
  judged, in an event of lower priority (:data:`FLUSH`): the rules run in
  the gates' declaration order (the first gate to roll a run back is the one
  it is attributed to), then confirmation waits that end there are resolved,
  then phases end (on to the next phase, a person's wait, or promotion).

Rules: `rollback` and `rollback now` end the run at once; `rollback after
D` holds the run's weight (its phase cannot end) and rolls back D later if the
gate still fails then; `pause` ends the run as paused (what a person does
next is not simulated); `notify` is counted; `on GATE pass: promote` ends the
run promoted.  A gate that some rule rolls back or pauses on pauses the run
when it has no data (**no data is never a pass**).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy
from simpy.events import Event, EventPriority

from rolloutlang.simulator import signals
from rolloutlang.simulator.gates import BusinessGate, Index, LookRecord, SrmGate, WindowGate
from rolloutlang.simulator.model import APPROVAL_GRID_S, GateModel, PlanModel, ScenarioModel
from rolloutlang.simulator.timeline import Timeline, exposure_pieces
from rolloutlang.stats.designs import FAIL, INCONCLUSIVE, PROMOTE_ALLOWED, IntArray
from rolloutlang.stats.traffic import requests_between
from rolloutlang.stats.vector import FloatArray

RUNNING, PROMOTED, ROLLED_BACK, PAUSED, UNFINISHED = range(5)
STATUSES = ("running", "promoted", "rolled-back", "paused", "unfinished")
# Why a run ended, when a gate ended it.
BY_FAIL, BY_NO_DATA, BY_PASS = 1, 2, 3
# Acting on what the gates decided comes after every gate has judged the same moment.
FLUSH = EventPriority(2)
UNDECIDED = -1
SERIES_POINTS = 121


class _Flush(Event):
    """An event at a given time with :data:`FLUSH` priority (as :class:`simpy.Timeout`, one priority lower)."""

    def __init__(self, env: simpy.Environment, delay: float, callback: Callable[[Event], None]) -> None:
        self.env = env
        self.callbacks = [callback]
        self._value = None
        self._ok = True
        env.schedule(self, FLUSH, delay)


@dataclass
class ChunkResult:
    """What one chunk of runs of one scenario did: per run, and summed for the look table and the plots."""

    status: npt.NDArray[np.int8]
    end: FloatArray
    cause: npt.NDArray[np.int16]
    cause_kind: npt.NDArray[np.int8]
    exposure: FloatArray
    harmful: FloatArray
    decided: npt.NDArray[np.int8]
    notified: npt.NDArray[np.bool_]
    looks: dict[str, list[LookRecord]]
    share_sum: FloatArray
    exposure_sum: FloatArray
    rollback_by: FloatArray
    grid: FloatArray = field(default_factory=lambda: np.zeros(0))
    budget_exposure: dict[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict)


@dataclass
class _Entry:
    gate: int
    kind: str
    runs: Index
    codes: IntArray
    look: int = -1


class Engine:
    """One chunk of runs of one scenario (see the module docstring)."""

    def __init__(self, model: PlanModel, scenario: ScenarioModel, runs: int, rng: np.random.Generator,
                 progress: Callable[[float], None] | None = None) -> None:
        self.model = model
        self.scenario = scenario
        self.rng = rng
        self.runs = runs
        self.progress = progress
        self.env = simpy.Environment()
        self.status = np.zeros(runs, np.int8)
        self.end = np.full(runs, np.nan)
        self.cause = np.full(runs, -1, np.int16)
        self.cause_kind = np.zeros(runs, np.int8)
        self.cls = np.zeros(runs, np.int32)
        self.timelines: list[Timeline] = []
        gates = len(model.gates)
        self.decided = np.full((gates, runs), UNDECIDED, np.int8)
        self.notified = np.zeros((gates, runs), bool)
        self.confirm = np.full((gates, runs), np.nan)
        self.confirm_look = np.full((gates, runs), -1, np.int32)
        self.states: list[WindowGate | SrmGate | BusinessGate | None] = []
        for gm in model.gates:
            if not gm.simulated:
                self.states.append(None)
            elif gm.kind in ("slo", "drift"):
                self.states.append(WindowGate.new(gm, runs))
            elif gm.kind == "srm":
                self.states.append(SrmGate.new(gm, runs))
            else:
                self.states.append(BusinessGate.new(gm, runs, model.design_effects.get(gm.name, 1.0)))
        self._pending: list[_Entry] = []
        self._counts: dict[tuple[float, frozenset[int], str], tuple[Index, FloatArray]] = {}
        self._counts_at = -1.0
        self._expected: dict[tuple[float, float, frozenset[int], str, int], float] = {}
        self._expected_at = -1.0
        self._flushes: set[float] = set()
        self._expected_end = max(sum(p.duration_s for p in model.phases), 1.0)

    # -- running ---------------------------------------------------------------------------------

    def run(self) -> ChunkResult:
        # Error-rate gates measure first at a shared moment: they draw a window's errors and other requests as
        # two Poisson counts, and a latency gate on the same window reuses their sum (cheaper than a binomial
        # split of a count drawn first).  The rules still act in declaration order.
        windowed = [(gm, state) for gm, state in zip(self.model.gates, self.states, strict=True)
                    if isinstance(state, WindowGate | SrmGate)]
        for gm, state in sorted(windowed, key=lambda pair: getattr(pair[0].gate, "signal", "") != "error_rate"):
            self.env.process(self._windows(gm, state))
        if self.model.phases:
            self.timelines.append(Timeline([], math.inf))
            self._enter(0, np.arange(self.runs), 0.0)
            self._settle(0.0)
        else:
            self._end(np.arange(self.runs), PROMOTED, -1, 0, 0.0)
        self.env.run(until=self.model.horizon_s)
        still = self.status == RUNNING
        self.status[still] = UNFINISHED
        self.end[still] = self.model.horizon_s
        return self._result()

    def running(self) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = self.status == RUNNING
        return out

    def _in_phases(self, phases: frozenset[int]) -> npt.NDArray[np.bool_]:
        inside = np.array([tl.phase in phases for tl in self.timelines])
        if inside.size == 1:
            return self.running() if inside[0] else np.zeros(self.runs, bool)
        out: npt.NDArray[np.bool_] = self.running() & inside[self.cls]
        return out

    def window_counts(self, gate: GateModel, runs: Index, t: float, arm: str, mean: FloatArray) -> FloatArray:
        """Requests in the window ending at t, drawn once for all the gates that read the same window
        (same width, same phases, same runs): two gates every 5m see the same requests."""
        cached = self._cached_counts(gate, runs, t, arm)
        if cached is not None:
            return cached
        counts = signals.poisson(self.rng, mean)
        self._counts[(gate.interval_s, gate.phases, arm)] = (runs, counts)
        return counts

    def window_errors(self, gate: GateModel, runs: Index, t: float, arm: str, mean: FloatArray,
                      rate: float) -> tuple[FloatArray, FloatArray]:
        """(requests, errors) in the window ending at t: errors among the window's shared requests, or, when
        no gate has drawn them yet, errors and other requests as two independent Poisson counts (thinning)."""
        cached = self._cached_counts(gate, runs, t, arm)
        if cached is not None:
            return cached, signals.binomial(self.rng, cached, rate)
        errors = signals.poisson(self.rng, mean * rate)
        counts = errors + signals.poisson(self.rng, mean * (1.0 - rate))
        self._counts[(gate.interval_s, gate.phases, arm)] = (runs, counts)
        return counts, errors

    @property
    def expected_cache(self) -> dict[tuple[float, float, frozenset[int], str, int], float]:
        """Expected requests of the windows ending now, per (width, phases, arm, timeline): shared by gates."""
        if self._expected_at != self.env.now:
            self._expected.clear()
            self._expected_at = self.env.now
        return self._expected

    def _cached_counts(self, gate: GateModel, runs: Index, t: float, arm: str) -> FloatArray | None:
        if self._counts_at != t:
            self._counts.clear()
            self._counts_at = t
        cached = self._counts.get((gate.interval_s, gate.phases, arm))
        if cached is not None and np.array_equal(cached[0], runs):
            return cached[1]
        return None

    def _windows(self, gm: GateModel, state: WindowGate | SrmGate) -> Generator[Any, Any, None]:
        while True:
            yield self.env.timeout(gm.interval_s)
            if not self.running().any():
                return
            runs = np.flatnonzero(self._in_phases(gm.phases))
            if runs.size:
                judged, verdict = state.judge(self, runs, self.env.now)
                if judged.size:
                    self._post(_Entry(gm.index, "window", judged, verdict))

    def _look(self, gm: GateModel, state: BusinessGate, timeline: int, look: int,
              delay: float) -> Generator[Any, Any, None]:
        yield self.env.timeout(delay)
        runs = np.flatnonzero((self.cls == timeline) & self.running() & (self.decided[gm.index] == UNDECIDED)
                              & np.isnan(self.confirm[gm.index]))
        if runs.size:
            codes = state.judge(self, runs, timeline, look, self.env.now)
            self._post(_Entry(gm.index, "look", runs, codes, look))

    def _post(self, entry: _Entry) -> None:
        self._pending.append(entry)
        self._flush_at(self.env.now)

    def _flush_at(self, t: float) -> None:
        if t not in self._flushes:
            self._flushes.add(t)
            _Flush(self.env, t - self.env.now, lambda _event: self._flush(t))

    # -- acting ----------------------------------------------------------------------------------

    def _flush(self, t: float) -> None:
        self._flushes.discard(t)
        entries, self._pending = self._pending, []
        for g in np.flatnonzero((self.confirm == t).any(axis=1)):
            runs = np.flatnonzero((self.confirm[g] == t) & self.running())
            entries.append(_Entry(int(g), "confirm", runs, np.zeros(0, np.int8)))
        for entry in sorted(entries, key=lambda e: e.gate):  # stable: a gate's entries keep their order
            if entry.kind == "confirm":
                self._confirm(entry, t)
            else:
                self._act(entry, t)
        self._settle(t)
        if self.progress is not None:
            self.progress(min(t / self._expected_end, 1.0))

    def _act(self, entry: _Entry, t: float) -> None:
        gm = self.model.gates[entry.gate]
        live = self.status[entry.runs] == RUNNING
        runs, codes = entry.runs[live], entry.codes[live]
        actions = gm.actions
        g = gm.index
        fails = runs[codes == FAIL]
        if fails.size:
            if gm.kind == "business":
                self.decided[g, fails] = FAIL
            if actions.notify:
                self.notified[g, fails] = True
            if actions.rollback and actions.rollback_after_s > 0:
                fresh = fails[np.isnan(self.confirm[g, fails])]
                self.confirm[g, fresh] = t + actions.rollback_after_s
                self.confirm_look[g, fresh] = entry.look
                if fresh.size:
                    self._flush_at(t + actions.rollback_after_s)
            elif actions.rollback:
                self._end(fails, ROLLED_BACK, g, BY_FAIL, t)
            elif actions.pause:
                self._end(fails, PAUSED, g, BY_FAIL, t)
        passes = runs[codes == PROMOTE_ALLOWED]
        if passes.size:
            self.decided[g, passes] = PROMOTE_ALLOWED
            if actions.promote_on_pass:
                self._end(passes, PROMOTED, g, BY_PASS, t)
        no_data = runs[codes == INCONCLUSIVE]
        if no_data.size and actions.acts:
            self._end(no_data, PAUSED, g, BY_NO_DATA, t)

    def _confirm(self, entry: _Entry, t: float) -> None:
        """A confirmation wait ends: roll back the runs whose gate still fails, release the others."""
        gm = self.model.gates[entry.gate]
        runs = entry.runs
        state = self.states[gm.index]
        if isinstance(state, WindowGate):
            confirmed = state.still_fails(runs)
        elif isinstance(state, SrmGate):
            confirmed = state.still_fails(self, runs, t)
        else:
            assert isinstance(state, BusinessGate)
            confirmed = np.zeros(runs.size, bool)
            for c in np.unique(self.cls[runs]):
                mine = self.cls[runs] == c
                look = int(self.confirm_look[gm.index, runs[mine]][0])
                codes = state.judge(self, runs[mine], int(c), look, t, record=False)
                confirmed[mine] = codes == FAIL
            self.decided[gm.index, runs[~confirmed]] = UNDECIDED
        self.confirm[gm.index, runs] = np.nan
        self._end(runs[confirmed], ROLLED_BACK, gm.index, BY_FAIL, t)

    def _end(self, runs: Index, status: int, gate: int, kind: int, t: float) -> None:
        runs = runs[self.status[runs] == RUNNING]
        self.status[runs] = status
        self.end[runs] = t
        self.cause[runs] = gate
        self.cause_kind[runs] = kind
        self.confirm[:, runs] = np.nan

    # -- phases ----------------------------------------------------------------------------------

    def _settle(self, t: float) -> None:
        """End every phase due by t (a zero-length phase ends at once), then schedule the next ends."""
        changed = True
        while changed:
            changed = False
            for c in range(len(self.timelines)):
                if self.timelines[c].due <= t:
                    self._due(c, t)
                    changed = True
        for tl in self.timelines:
            if math.isfinite(tl.due):
                self._flush_at(tl.due)

    def _new_timeline(self, parent: int, runs: Index, due: float, waiting: bool) -> int:
        tl = self.timelines[parent].copy()
        tl.due, tl.waiting = due, waiting
        self.timelines.append(tl)
        self.cls[runs] = len(self.timelines) - 1
        return len(self.timelines) - 1

    def _due(self, c: int, t: float) -> None:
        tl = self.timelines[c]
        tl.due = math.inf
        mine = np.flatnonzero((self.cls == c) & self.running())
        if mine.size == 0:
            return
        held_until = np.where(np.isnan(self.confirm[:, mine]), -np.inf, self.confirm[:, mine]).max(axis=0,
                                                                                                 initial=-np.inf)
        held = held_until > t
        for until in np.unique(held_until[held]):
            self._new_timeline(c, mine[held_until == until], float(until), tl.waiting)
        mine = mine[~held]
        if mine.size == 0:
            return
        phase = self.model.phases[tl.phase]
        if phase.approval and not tl.waiting and self.model.approval_delay_s > 0:
            waits = np.ceil(self.rng.exponential(self.model.approval_delay_s, mine.size) / APPROVAL_GRID_S)
            for steps in np.unique(waits):
                self._new_timeline(c, mine[waits == steps], t + max(float(steps), 1.0) * APPROVAL_GRID_S, True)
            return
        self._enter(c, mine, t)

    def _enter(self, c: int, runs: Index, t: float) -> None:
        """The runs of timeline ``c`` enter its next phase at t (or promote after the last)."""
        tl = self.timelines[c]
        tl.starts.append(t)
        tl.waiting = False
        phase = tl.phase
        if phase >= len(self.model.phases):
            tl.due = math.inf
            self._end(runs, PROMOTED, -1, 0, t)
            return
        tl.due = t + self.model.phases[phase].duration_s
        for gm, state in zip(self.model.gates, self.states, strict=True):
            if isinstance(state, BusinessGate):
                for k, look in enumerate(gm.looks):
                    if look.phase == phase:
                        self.env.process(self._look(gm, state, c, k, look.offset_s))

    # -- results ---------------------------------------------------------------------------------

    def _result(self) -> ChunkResult:
        model, scenario = self.model, self.scenario
        exposure = np.zeros(self.runs)
        harmful = np.zeros(self.runs)
        grid = np.linspace(0.0, model.plot_horizon_s, SERIES_POINTS)
        share_sum = np.zeros(grid.size)
        exposure_sum = np.zeros(grid.size)
        harm = scenario.harm_starts_s
        windows = model.exposure_windows
        by_window = {key: np.zeros(self.runs) for key, _ in windows}
        for c, tl in enumerate(self.timelines):
            runs = np.flatnonzero(self.cls == c)
            if runs.size == 0 or not tl.starts:
                continue
            ends = self.end[runs]
            a, b, w = (np.asarray(x) for x in exposure_pieces(model, scenario, tl, float(ends.max())))
            if a.size == 0:
                continue

            def served(until: FloatArray, start: FloatArray = a, stop: FloatArray = b,
                       weights: FloatArray = w) -> FloatArray:
                top = np.minimum(stop[None, :], until[:, None])
                out: FloatArray = requests_between(start[None, :], top, model.rate_rps, model.amplitude,
                                                   model.phase) @ weights
                return out

            exposure[runs] = served(ends)
            for key, before in windows:
                by_window[key][runs] = served(ends if before is None else np.minimum(ends, before))
            if harm is not None:
                harmful[runs] = served(ends, np.maximum(a, harm))
            promoted = self.status[runs] == PROMOTED
            for i, t in enumerate(grid):
                before = t < ends
                inside = (a <= t) & (t < b)
                now_share = float(w[inside][0]) if inside.any() else 0.0
                share_sum[i] += now_share * before.sum() + promoted[~before].sum()
                exposure_sum[i] += served(np.minimum(ends, t)).sum()
        rolled = self.status == ROLLED_BACK
        rollback_by = np.array([(rolled & (self.end <= t)).sum() for t in grid], dtype=np.float64)
        looks = {gm.name: state.records for gm, state in zip(model.gates, self.states, strict=True)
                 if isinstance(state, BusinessGate)}
        budget_exposure = {}
        for key, before in windows:
            until = self.end if before is None else np.full(self.runs, before)
            everything = requests_between(0.0, until, model.rate_rps, model.amplitude, model.phase)
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(everything > 0, by_window[key] / np.where(everything > 0, everything, 1.0), 0.0)
            budget_exposure[key] = (by_window[key], share)
        return ChunkResult(self.status, self.end, self.cause, self.cause_kind, exposure, harmful, self.decided,
                           self.notified, looks, share_sum, exposure_sum, rollback_by, grid, budget_exposure)
