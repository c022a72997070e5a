"""From the runs of a scenario to what a reviewer reads: rates with their Monte Carlo error, exposure, times.

Definitions (``docs/simulate.md`` says them for users):

* ``p_rollback``, ``p_promote``, ``p_pause``: the share of runs that ended so;
  a run pauses on a rule's `pause` or when a gate that acts has no data;
  every rate carries its standard error ``sqrt(p (1 - p) / runs)``;
* ``rollback_by_gate``: the gate that rolled the run back (the first in
  declaration order when several fail at the same moment);
* ``exposure``: requests the candidate answered live (mirrored ones expose
  nobody), from the start to the run's end (rollback, pause or promotion);
  ``harmful_exposure``: those answered from the moment the scenario makes the
  candidate worse;
* ``time_to_detect``: from that moment to the rollback, over the runs rolled
  back after it; ``duration``: time to promotion, over promoted runs;
* ``looks``: each business gate's looks: the runs that reached it, their
  mean labelled requests per arm and information, and how often it failed
  or allowed promotion there (as a share of all runs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rolloutlang.simulator.engine import BY_NO_DATA, PAUSED, PROMOTED, ROLLED_BACK, UNFINISHED, ChunkResult
from rolloutlang.simulator.gates import LookRecord
from rolloutlang.simulator.model import PlanModel, ScenarioModel
from rolloutlang.stats.designs import FAIL, PROMOTE_ALLOWED
from rolloutlang.stats.vector import FloatArray

SIGNIFICANT = 6


def rounded(x: float | None) -> float | None:
    """A number with six significant digits (the JSON stays byte-identical across machines), None for NaN."""
    if x is None or not math.isfinite(x):
        return None
    if x == 0:
        return 0.0
    return float(f"{x:.{SIGNIFICANT}g}")


def rate(hits: int, runs: int) -> dict[str, float | None]:
    p = hits / runs if runs else math.nan
    return {"estimate": rounded(p), "se": rounded(math.sqrt(p * (1.0 - p) / runs)) if runs else None}


def spread(values: FloatArray, *, mean: bool = True) -> dict[str, float | None]:
    """mean (with its standard error), p50 and p95 of some values; nulls when there are none."""
    out: dict[str, float | None] = {}
    if mean:
        out["mean"] = rounded(float(values.mean())) if values.size else None
        constant = values.size and values.max() == values.min()  # no spread, not rounding noise
        out["se"] = (0.0 if constant else rounded(float(values.std(ddof=1) / math.sqrt(values.size)))) \
            if values.size > 1 else None
    for name, q in (("p50", 50.0), ("p95", 95.0)):
        out[name] = rounded(float(np.percentile(values, q))) if values.size else None
    return out


def merge_looks(chunks: Sequence[ChunkResult], gate: str) -> list[LookRecord]:
    records = [LookRecord() for _ in chunks[0].looks[gate]]
    for chunk in chunks:
        for total, part in zip(records, chunk.looks[gate], strict=True):
            total.runs += part.runs
            total.control += part.control
            total.candidate += part.candidate
            total.information += part.information
            total.fraction += part.fraction
            total.fails += part.fails
            total.promotes += part.promotes
            total.no_data += part.no_data
    return records


def summarize(model: PlanModel, scenario: ScenarioModel, chunks: Sequence[ChunkResult]) -> dict[str, Any]:
    """One scenario's entry of the JSON output."""
    status = np.concatenate([c.status for c in chunks])
    end = np.concatenate([c.end for c in chunks])
    cause = np.concatenate([c.cause for c in chunks])
    cause_kind = np.concatenate([c.cause_kind for c in chunks])
    exposure = np.concatenate([c.exposure for c in chunks])
    harmful = np.concatenate([c.harmful for c in chunks])
    decided = np.concatenate([c.decided for c in chunks], axis=1)
    notified = np.concatenate([c.notified for c in chunks], axis=1)
    runs = status.size
    rolled, promoted, paused = status == ROLLED_BACK, status == PROMOTED, status == PAUSED
    harm = scenario.harm_starts_s
    by_gate: dict[str, Any] = {}
    pause_by_gate: dict[str, Any] = {}
    gates: dict[str, Any] = {}
    for gm in model.gates:
        mine = cause == gm.index
        if (rolled & mine).any():
            by_gate[gm.name] = {"kind": gm.kind, **rate(int((rolled & mine).sum()), runs)}
        if (paused & mine).any():
            pause_by_gate[gm.name] = {"kind": gm.kind, **rate(int((paused & mine).sum()), runs),
                                      "no_data": rate(int((paused & mine & (cause_kind == BY_NO_DATA)).sum()),
                                                      runs)["estimate"]}
        entry: dict[str, Any] = {"kind": gm.kind, "simulated": gm.simulated}
        if gm.kind == "business":
            fails = int((decided[gm.index] == FAIL).sum())
            promotes = int((decided[gm.index] == PROMOTE_ALLOWED).sum())
            entry["fails"] = rate(fails, runs)
            entry["promote_allowed"] = rate(promotes, runs)
            assert gm.spec is not None
            decisive = fails if gm.spec.hypothesis == "harm" else promotes
            entry["decides"] = rate(decisive, runs)
            entry["analytic_power"] = rounded(gm.analytic_power) if gm.analytic_power is not None else None
            if gm.spec.hypothesis == "harm":
                entry["caught"] = rate(int(((decided[gm.index] == FAIL) | rolled).sum()), runs)
        if notified[gm.index].any():
            entry["notifies"] = rate(int(notified[gm.index].sum()), runs)
        gates[gm.name] = entry
    detected = rolled & (end >= harm) if harm is not None else np.zeros(runs, bool)
    looks: list[dict[str, Any]] = []
    for gm in model.gates:
        if gm.kind != "business" or not gm.simulated:
            continue
        for k, (look, rec) in enumerate(zip(gm.looks, merge_looks(chunks, gm.name), strict=True)):
            n = rec.runs
            looks.append({
                "gate": gm.name, "look": k + 1, "stage": look.stage, "time_s": rounded(look.planned_s), "runs": n,
                "labelled": {"control": rounded(rec.control / n) if n else None,
                             "candidate": rounded(rec.candidate / n) if n else None},
                "information": rounded(rec.information / n) if n else None,
                "fraction": rounded(rec.fraction / n) if n else None,
                "p_fail": rate(rec.fails, runs)["estimate"],
                "p_promote_allowed": rate(rec.promotes, runs)["estimate"],
                "p_no_data": rate(rec.no_data, runs)["estimate"],
            })
    out: dict[str, Any] = {
        "name": scenario.name,
        "description": scenario.description,
        "runs": runs,
        "p_rollback": rate(int(rolled.sum()), runs),
        "p_promote": rate(int(promoted.sum()), runs),
        "p_pause": rate(int(paused.sum()), runs),
        "rollback_by_gate": by_gate,
        "pause_by_gate": pause_by_gate,
        "exposure": spread(exposure),
        "harmful_exposure": spread(harmful if harm is not None else np.zeros(0)),
        "harm_starts_s": rounded(harm) if harm is not None else None,
        "p_detect": rate(int(detected.sum()), runs) if harm is not None else None,
        "time_to_detect": spread(end[detected] - (harm or 0.0), mean=False),
        "time_to_rollback": spread(end[rolled], mean=False),
        "duration": spread(end[promoted]),
        "gates": gates,
        "looks": looks,
        "exposure_budgets": {
            key: {"requests": spread(np.concatenate([c.budget_exposure[key][0] for c in chunks])),
                  "share": spread(np.concatenate([c.budget_exposure[key][1] for c in chunks]))}
            for key, _ in model.exposure_windows},
    }
    out["series"] = series(chunks)
    unfinished = int((status == UNFINISHED).sum())
    if unfinished:
        out["p_unfinished"] = rate(unfinished, runs)
    if scenario.sweep is not None:
        target, text, value = scenario.sweep
        out["sweep"] = {"target": target, "value": rounded(value), "text": text}
    return out


def series(chunks: Sequence[ChunkResult]) -> dict[str, list[float | None]]:
    """Mean candidate share, mean cumulative exposure and P(rolled back by t) on the plot grid."""
    runs = sum(c.status.size for c in chunks)
    grid = chunks[0].grid
    share = sum((c.share_sum for c in chunks), np.zeros(grid.size)) / runs
    exposure = sum((c.exposure_sum for c in chunks), np.zeros(grid.size)) / runs
    rollback = sum((c.rollback_by for c in chunks), np.zeros(grid.size)) / runs
    return {"time_s": [rounded(x) for x in grid], "share": [rounded(x) for x in share],
            "exposure": [rounded(x) for x in exposure], "p_rollback": [rounded(x) for x in rollback]}
