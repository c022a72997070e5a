"""A run's schedule and the traffic over it.

Runs that have waited the same (for a person, for a confirmation) share a
:class:`Timeline`: when each phase began, and when the current one ends.
Thousands of runs typically share a handful of timelines, so the expected
traffic of a window is computed once per timeline and every run draws its own
counts from it.  Expected requests integrate the daily shape exactly
(:func:`rolloutlang.stats.traffic.requests_between`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rolloutlang.simulator.model import PlanModel, ScenarioModel
from rolloutlang.stats.traffic import requests_between

Arm = Literal["candidate", "stable", "live", "all"]


@dataclass
class Timeline:
    """One schedule: the start of each phase entered, and when the current phase ends.

    Attributes:
        starts: start of each phase entered so far (the current phase is the last).
        due: when the current phase ends (its duration, plus a person's wait once ``waiting``).
        waiting: the phase's written duration is over and it waits for a person.
        history: business gate index -> the information each of its looks so far had in expectation.
    """

    starts: list[float]
    due: float
    waiting: bool = False
    history: dict[int, list[float]] = field(default_factory=dict)

    @property
    def phase(self) -> int:
        return len(self.starts) - 1

    def copy(self) -> Timeline:
        return Timeline(list(self.starts), self.due, self.waiting, {k: list(v) for k, v in self.history.items()})

    def span(self, phase: int, until: float) -> tuple[float, float] | None:
        """When ``phase`` ran, up to ``until``; None if it had not begun (or has no length)."""
        if phase >= len(self.starts) or self.starts[phase] >= until:
            return None
        end = self.starts[phase + 1] if phase + 1 < len(self.starts) else until
        return self.starts[phase], min(end, until)

    def segments(self, lo: float, hi: float) -> list[tuple[float, float, int]]:
        """(start, end, phase) of each phase between ``lo`` and ``hi``."""
        out = []
        for phase in range(len(self.starts)):
            span = self.span(phase, hi)
            if span is None:
                continue
            a, b = max(span[0], lo), span[1]
            if b > a:
                out.append((a, b, phase))
        return out


def cut(start: float, end: float, at: Sequence[float]) -> list[tuple[float, float]]:
    """[start, end] cut at the times of ``at`` that fall inside it."""
    return list(itertools.pairwise([start, *[c for c in at if start < c < end], end]))


def share(model: PlanModel, scenario: ScenarioModel, phase: int, t: float, arm: Arm) -> float:
    """The share of all requests an arm answers in a phase at time t.

    ``live``: the candidate's real weight; ``candidate``: what it answers, live or
    mirrored (the mirror copies the stable route's requests); ``stable``: the rest.
    """
    p = model.phases[phase]
    w = scenario.weight(p.weight, t)
    if arm == "live":
        return w
    if arm == "candidate":
        return w + p.mirror * (1.0 - w)
    if arm == "stable":
        return 1.0 - w
    return 1.0


def expected_requests(model: PlanModel, scenario: ScenarioModel, timeline: Timeline, lo: float, hi: float,
                      arm: Arm, phases: frozenset[int] | None = None) -> float:
    """Expected requests an arm answers between ``lo`` and ``hi`` (in ``phases`` only, if given)."""
    cuts = scenario.split_onsets()
    starts: list[float] = []
    ends: list[float] = []
    shares: list[float] = []
    for a, b, phase in timeline.segments(lo, hi):
        if phases is not None and phase not in phases:
            continue
        for x, y in cut(a, b, cuts):
            s = share(model, scenario, phase, x, arm)
            if s > 0:
                starts.append(x)
                ends.append(y)
                shares.append(s)
    if not starts:
        return 0.0
    counts = requests_between(np.array(starts), np.array(ends), model.rate_rps, model.amplitude, model.phase)
    return float(np.dot(counts, shares))


def exposure_pieces(model: PlanModel, scenario: ScenarioModel,
                    timeline: Timeline, until: float) -> tuple[list[float], list[float], list[float]]:
    """(starts, ends, live shares) of the candidate's live traffic on a timeline, up to ``until``."""
    cuts = scenario.split_onsets()
    starts, ends, shares = [], [], []
    for a, b, phase in timeline.segments(0.0, until):
        for x, y in cut(a, b, cuts):
            starts.append(x)
            ends.append(y)
            shares.append(share(model, scenario, phase, x, "live"))
    return starts, ends, shares


def first_due(model: PlanModel) -> float:
    return model.phases[0].duration_s if model.phases else 0.0


NEVER = math.inf
