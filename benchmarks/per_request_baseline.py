"""The straightforward way to simulate a plan: one SimPy event per request, one run at a time.

The baseline `bench_simulate.py` measures `rollout simulate` against.  It
replays the same plan model (phases, shadow, gates, rules) with the same
models (Poisson arrivals with the daily shape, lognormal latency, binomial
errors, equal-mass score bins, delayed binary labels) and the kernel's
scalar rules (`stats.slo_window`, `stats.slo_gate`, `stats.drift`,
`stats.estimate`, `stats.decide`), but draws every request on its own.  It
covers the gate kinds of examples/ranker-v2.rollout (threshold SLO gates, a
PSI drift gate, a business gate on a binary metric looking at stage ends),
which is what the benchmark runs; it lives here only, not in the package.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import simpy

from rolloutlang import ir, stats
from rolloutlang.simulator.model import DEFAULT_SIGMA, PlanModel
from rolloutlang.simulator.signals import lognormal_median
from rolloutlang.stats.traffic import OMEGA


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    requests: int = 0
    bins: list[int] = field(default_factory=list)
    reference: list[int] = field(default_factory=list)


class Run:
    """One run of the plan, request by request."""

    def __init__(self, model: PlanModel, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.env = simpy.Environment()
        self.phase = 0
        self.ended: str | None = None
        self.windows: dict[str, Window] = defaultdict(Window)
        self.windows_seen: dict[str, list[str]] = defaultdict(list)
        # Business labels: (stage, arm) -> list of (label time, clicked).
        self.labels: dict[tuple[int, int], list[tuple[float, bool]]] = defaultdict(list)
        self.history: dict[str, list[float]] = defaultdict(list)

    def rate(self, t: float) -> float:
        m = self.model
        return m.rate_rps * (1.0 + m.amplitude * math.cos(OMEGA * t + m.phase))

    def arrivals(self):  # type: ignore[no-untyped-def]
        peak = self.model.rate_rps * (1.0 + self.model.amplitude)
        while self.ended is None:
            yield self.env.timeout(self.rng.exponential(1.0 / peak))
            if self.rng.random() * peak > self.rate(self.env.now):
                continue  # thinning: the daily shape
            self.request(self.env.now)

    def request(self, t: float) -> None:
        phase = self.model.phases[self.phase]
        rng = self.rng
        to_candidate = rng.random() < phase.weight
        mirrored = not to_candidate and rng.random() < phase.mirror
        for gm in self.model.gates:
            gate = gm.gate
            if self.phase not in gm.phases:
                continue
            w = self.windows[gate.name]
            if isinstance(gate, ir.SloGate) and (to_candidate or mirrored):
                w.requests += 1
                if gate.signal == "latency":
                    assert gate.baseline is not None and gate.percentile is not None
                    sigma = gate.sigma or DEFAULT_SIGMA
                    median = lognormal_median(gate.baseline, gate.percentile / 100.0, sigma)
                    w.latencies.append(median * math.exp(sigma * rng.standard_normal()))
                else:
                    w.errors += rng.random() < (gate.baseline or 0.0)
            elif isinstance(gate, ir.DriftGate):
                if to_candidate or mirrored:
                    w.bins.append(int(rng.integers(gate.bins)))
                if not to_candidate:
                    w.reference.append(int(rng.integers(gate.bins)))
            elif isinstance(gate, ir.BusinessGate) and gm.metric is not None and not mirrored:
                delay = 3600.0 * float(np.exp(math.log(2.0) + 0.842 * rng.standard_normal()))  # lognormal(2h, p95 8h)
                self.labels[(self.phase, int(to_candidate))].append((t + delay, rng.random() < gm.metric.baseline))

    def slo_gate(self, gm, interval: float):  # type: ignore[no-untyped-def]
        gate = gm.gate
        while self.ended is None:
            yield self.env.timeout(interval)
            if self.phase not in gm.phases:
                continue
            w = self.windows.pop(gate.name, Window())
            if isinstance(gate, ir.SloGate):
                if gate.signal == "latency":
                    value = float(np.percentile(w.latencies, gate.percentile)) if w.latencies else None
                else:
                    value = w.errors / w.requests if w.requests else None
                outcome = stats.slo_window(gate, stats.SloWindow(value, None, w.requests))
            else:
                cand = np.bincount(w.bins, minlength=gate.bins)
                ref = np.bincount(w.reference, minlength=gate.bins)
                outcome = stats.OUTCOMES[int(stats.drift_windows(gate, cand, ref)[1])]
            self.windows_seen[gate.name].append(outcome)
            self.act(gm, stats.slo_gate(gate, self.windows_seen[gate.name]))

    def business_look(self, gm, stage: int, final: bool):  # type: ignore[no-untyped-def]
        now = self.env.now
        strata = []
        for s in sorted(gm.phases):
            arms = []
            for arm in (0, 1):
                arrived = [clicked for at, clicked in self.labels[(s, arm)] if at <= now]
                arms.append(stats.ArmData(units=len(arrived), total=sum(arrived)))
            strata.append((arms[0], arms[1]))
        estimate = stats.estimate(strata, relative=gm.gate.relative)
        decision = stats.decide(gm.spec, estimate, self.history[gm.name], gm.reference, final=final)
        self.history[gm.name].append(decision.information)
        self.act(gm, decision.outcome)

    def act(self, gm, outcome: str) -> None:  # type: ignore[no-untyped-def]
        if self.ended is not None:
            return
        if outcome == "fail" and gm.actions.rollback:
            self.ended = "rolled-back"
        elif outcome == "fail" and gm.actions.pause:
            self.ended = "paused"
        elif outcome == "inconclusive" and gm.actions.acts:
            self.ended = "paused"

    def plan(self):  # type: ignore[no-untyped-def]
        for index, phase in enumerate(self.model.phases):
            self.phase = index
            yield self.env.timeout(phase.duration_s)
            for gm in self.model.gates:
                for look in gm.looks:
                    if look.phase == index:
                        assert look.offset_s == phase.duration_s, "the baseline looks at stage ends only"
                        self.business_look(gm, index, look.final)
            if self.ended is not None:
                return
        self.ended = "promoted"

    def run(self) -> str:
        self.env.process(self.arrivals())
        for gm in self.model.gates:
            if gm.kind in ("slo", "drift"):
                self.env.process(self.slo_gate(gm, gm.interval_s))
        done = self.env.process(self.plan())
        self.env.run(until=done)
        assert self.ended is not None
        return self.ended
