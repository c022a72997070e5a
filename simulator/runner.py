"""Which scenarios, how many runs, which random streams, on how many processes.

* Scenarios: `null` (the candidate is stable), `at-mde` (each business gate's
  metric, as that gate sees it, at the change its power is sized for), the
  spec's own, and the points of each ``--effect TARGET=FROM..TO`` sweep.
* Runs are split into chunks that depend only on the number of runs (at most
  :data:`CHUNK_RUNS` each, two from 1,000 runs on), and chunk i of every scenario draws
  from the i-th stream spawned from ``SeedSequence(seed)``.  Workers take
  whole chunks and the chunks are merged in order, so the same seed gives the
  same bytes whatever ``--workers`` says (and scenarios share their streams,
  which keeps a sweep's curve smooth).
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rolloutlang import ir
from rolloutlang.plan import Plan
from rolloutlang.scenarios import Change, at_mde, resolve, resolve_effect
from rolloutlang.simulator.engine import ChunkResult, Engine
from rolloutlang.simulator.model import (
    DEFAULT_APPROVAL_DELAY_S,
    PlanModel,
    ScenarioModel,
    build_plan_model,
    scenario_model,
)

# A probability near 5% then has a standard error of sqrt(.05 x .95 / 2000) = 0.49 points.
DEFAULT_RUNS = 2000
CHUNK_RUNS = 5000
MIN_CHUNK_RUNS = 500
DEFAULT_POINTS = 9
FORMAT_VERSION = 1


class SimulationError(Exception):
    """A usage problem: an unknown scenario, a sweep that cannot be read."""


@dataclass(frozen=True)
class Sweep:
    """``--effect TARGET=FROM..TO``: the same effect at evenly spaced sizes."""

    target: str
    first: Change
    last: Change
    points: int
    text: str

    def changes(self) -> list[tuple[str, Change]]:
        values = np.linspace(self.first.value, self.last.value, self.points)
        return [(_value_text(self.first, float(v)), replace(self.first, value=float(v))) for v in values]


def _value_text(change: Change, value: float) -> str:
    effect = change.effect
    unit = effect.unit if effect is not None else "number"
    if unit == "seconds":
        return f"{value * 1000:+.4g}ms"
    if unit == "fraction":
        suffix = " absolute" if change.mode == "absolute" and change.kind not in ("errors",) else ""
        return f"{value * 100:+.4g}%{suffix}"
    return f"{value:.4g}"


def parse_sweep(rollout: ir.Rollout, text: str, points: int = DEFAULT_POINTS) -> Sweep:
    """Read ``TARGET=FROM..TO`` (each end written as in a scenario: ``ctr=-5%..0%``, ``latency=0ms..40ms``)."""
    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(\S+?)\s*\.\.\s*(\S+)\s*", text)
    if match is None:
        raise SimulationError(f"`--effect {text}`: write TARGET=FROM..TO, e.g. `ctr=-5%..0%` or `latency=0ms..40ms`")
    target, low, high = match.groups()
    ends = [_effect(rollout, target, v, text) for v in (low, high)]
    if (ends[0].kind, ends[0].mode) != (ends[1].kind, ends[1].mode):
        raise SimulationError(f"`--effect {text}`: both ends must be the same kind of change")
    if points < 2:
        raise SimulationError("a sweep needs at least 2 points")
    return Sweep(target, ends[0], ends[1], points, text)


def _effect(rollout: ir.Rollout, target: str, value: str, text: str) -> Change:
    from rolloutlang.loader import load_text

    program = load_text(f"rollout sweep {{ scenario s {{ {target} {value} }} }}", "--effect")
    lowered = [d for d in program.diagnostics if d.code != "RL130"]
    main = program.main
    if lowered or main is None or not main.rollouts or not main.rollouts[0].scenarios:
        why = lowered[0].message if lowered else "not a change"
        raise SimulationError(f"`--effect {text}`: `{value}`: {why}")
    effect = main.rollouts[0].scenarios[0].effects[0]
    from rolloutlang.scenarios import names_known

    if not names_known(rollout, effect):
        raise SimulationError(f"`--effect {text}`: `{target}` is not a metric, a gate, `latency`, `errors` or "
                              "`drift` of the rollout")
    change, found = resolve_effect(rollout, effect)
    errors = [d for d in found if d.is_error] or ([] if change is not None else found)
    if errors or change is None:
        raise SimulationError(f"`--effect {text}`: {errors[0].message if errors else 'changes nothing'}")
    return change


@dataclass
class Options:
    runs: int = DEFAULT_RUNS
    seed: int = 1
    workers: int | None = None
    scenarios: Sequence[str] = ()
    sweeps: Sequence[Sweep] = ()
    approval_delay_s: float = DEFAULT_APPROVAL_DELAY_S
    start_phase: float | None = None


@dataclass
class Simulation:
    """Every scenario's runs, merged, and the plan model they ran on."""

    model: PlanModel
    scenarios: list[ScenarioModel]
    chunks: list[list[ChunkResult]]
    options: Options
    spec: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        from rolloutlang.simulator.promises import promises
        from rolloutlang.simulator.results import summarize

        scenarios = [summarize(self.model, s, c) for s, c in zip(self.scenarios, self.chunks, strict=True)]
        return {
            "format_version": FORMAT_VERSION,
            "spec": self.spec,
            "rollout": self.model.rollout.name,
            "runs": self.options.runs,
            "seed": self.options.seed,
            "assumptions": list(self.model.assumptions) + self.notes,
            "checks": [c.to_json() for c in promises(self.model, scenarios)],
            "scenarios": scenarios,
        }


def scenario_list(rollout: ir.Rollout, options: Options) -> list[ScenarioModel]:
    """The scenarios to run, in order: null, at-mde, the spec's, then the sweeps' points."""
    resolved, _ = resolve(rollout)
    everything = [scenario_model(rollout, "null", (), description="the candidate is exactly as good as stable"),
                  scenario_model(rollout, "at-mde", at_mde(rollout),
                                 description="each business gate's metric at the change its power is sized for")]
    everything += [scenario_model(rollout, s.name, s.changes, description=_describe(s.changes)) for s in resolved]
    known = {s.name for s in everything}
    if options.scenarios:
        unknown = [n for n in options.scenarios if n not in known]
        if unknown:
            from rolloutlang.diagnostics import did_you_mean

            hint = did_you_mean(unknown[0], sorted(known))
            raise SimulationError(f"no scenario `{unknown[0]}`" + (f"; {hint}" if hint else "")
                                  + f" (the rollout has {', '.join(f'`{n}`' for n in sorted(known))})")
        everything = [s for s in everything if s.name in options.scenarios]
    for sweep in options.sweeps:
        for text, change in sweep.changes():
            everything.append(scenario_model(rollout, f"{sweep.target}={text}", (change,),
                                             sweep=(sweep.target, text, change.value),
                                             description=f"sweep of `{sweep.target}`"))
    return everything


def _describe(changes: Sequence[Change]) -> str:
    from rolloutlang.units import duration_text

    parts = []
    for c in changes:
        if c.effect is None:
            continue
        e = c.effect
        text = f"labels {e.target}" if e.kind == "labels" else f"{e.target} {_value_text(c, c.value)}"
        if c.after_s:
            text += f" after {duration_text(c.after_s)}"
        parts.append(text)
    return ", ".join(parts)


def chunk_sizes(runs: int) -> list[int]:
    """Chunks of at most :data:`CHUNK_RUNS` runs, two from 1,000 runs on (for two workers), as equal as can be."""
    count = max(math.ceil(runs / CHUNK_RUNS), 2 if runs >= 2 * MIN_CHUNK_RUNS else 1)
    return [runs // count + (1 if i < runs % count else 0) for i in range(count)]


# -- running the chunks -------------------------------------------------------------------------------

_MODEL: PlanModel | None = None
_SCENARIOS: list[ScenarioModel] = []
_PROGRESS: Any = None


def _init(model: PlanModel, scenarios: list[ScenarioModel], progress: Any) -> None:
    global _MODEL, _SCENARIOS, _PROGRESS
    _MODEL, _SCENARIOS, _PROGRESS = model, scenarios, progress


def _run_task(task: tuple[int, int, int, np.random.SeedSequence, int]) -> ChunkResult:
    slot, scenario, _chunk, seed, runs = task
    assert _MODEL is not None
    progress = _PROGRESS

    def report(fraction: float) -> None:
        if progress is not None:
            progress[slot] = fraction

    result = Engine(_MODEL, _SCENARIOS[scenario], runs, np.random.default_rng(seed), report).run()
    # The engine's SimPy processes and the engine refer to each other: free its arrays now, not whenever the
    # cycle collector runs, so memory stays that of one chunk.
    gc.collect()
    report(1.0)
    return result


def usable_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def simulate(rollout: ir.Rollout, plan: Plan, options: Options, spec: str = "",
             on_progress: Callable[[float], None] | None = None) -> Simulation:
    """Run every scenario's chunks (on ``options.workers`` processes) and merge them in order."""
    model = build_plan_model(rollout, plan, approval_delay_s=options.approval_delay_s,
                             start_phase=options.start_phase)
    scenarios = scenario_list(rollout, options)
    sizes = chunk_sizes(options.runs)
    seeds = np.random.SeedSequence(options.seed).spawn(len(sizes))
    tasks = [(i * len(sizes) + j, i, j, seeds[j], n) for i in range(len(scenarios)) for j, n in enumerate(sizes)]
    workers = min(options.workers or usable_cores(), len(tasks))
    results: list[ChunkResult]
    if workers <= 1:
        progress: list[float] = [0.0] * len(tasks)
        _init(model, scenarios, progress)
        results = []
        for task in tasks:
            results.append(_run_task(task))
            if on_progress is not None:
                on_progress(sum(progress) / len(tasks))
    else:
        results = _in_processes(model, scenarios, tasks, workers, on_progress)
    chunks = [results[i * len(sizes):(i + 1) * len(sizes)] for i in range(len(scenarios))]
    return Simulation(model, scenarios, chunks, options, spec)


def _worker(model: PlanModel, scenarios: list[ScenarioModel], progress: Any) -> None:
    """A worker process: Ctrl-C is the parent's to handle (it stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init(model, scenarios, progress)


def _in_processes(model: PlanModel, scenarios: list[ScenarioModel],
                  tasks: list[tuple[int, int, int, np.random.SeedSequence, int]], workers: int,
                  on_progress: Callable[[float], None] | None) -> list[ChunkResult]:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    progress = context.Array("d", len(tasks), lock=False)
    pool = context.Pool(workers, initializer=_worker, initargs=(model, scenarios, progress))
    try:
        pending = pool.map_async(_run_task, tasks, chunksize=1)
        while not pending.ready():
            if on_progress is not None:
                on_progress(sum(progress) / len(tasks))
            pending.wait(0.1)
        results: list[ChunkResult] = pending.get()
        pool.close()
        return results
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
