"""Does the simulated plan keep its budgets and its gates' declared power? (RL810, RL811; `--strict`)

A check *misses* when the simulated value is beyond what the spec promises by
more than two Monte Carlo standard errors (so noise alone misses about 2.3% of
the time at the edge, and a plan well inside its promises never does):

* `budget false rollbacks <= X% [across G...]`: P(rollback) under ``null``, by
  the listed gates if any, against X;
* `budget exposure <= X% of requests [before D]` (or ``N requests``): in each
  scenario where the candidate is harmful, the mean over runs of the
  candidate's live requests up to D (or up to the run's end) as a share of
  all requests then (or as a count), against the cap;
* `budget duration <= D`: the mean time to promotion under ``null``;
* a business gate's `power P%`: under ``at-mde``, how often its regression is
  caught (a harm gate: the run is rolled back, by it or by another gate first)
  or its candidate shown non-inferior (a non-inferiority gate: the gate allows
  promotion), against P.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rolloutlang import ir
from rolloutlang.diagnostics import Diagnostic, Severity
from rolloutlang.simulator.model import PlanModel
from rolloutlang.source import Span
from rolloutlang.units import duration_text

MARGIN_SE = 2.0


@dataclass(frozen=True)
class Promise:
    """One promise of the spec against the simulation."""

    kind: str
    what: str
    scenario: str
    promised: float
    simulated: float
    se: float
    missed: bool
    span: Span | None
    text: str

    analytic: float | None = None
    help: str | None = None

    def to_json(self) -> dict[str, Any]:
        from rolloutlang.simulator.results import rounded

        out = {"kind": self.kind, "what": self.what, "scenario": self.scenario, "promised": rounded(self.promised),
               "simulated": rounded(self.simulated), "se": rounded(self.se), "missed": self.missed}
        if self.analytic is not None:
            out["analytic"] = rounded(self.analytic)
        return out

    def diagnostic(self, strict: bool) -> Diagnostic:
        code = "RL811" if self.kind == "power" else "RL810"
        severity = Severity.ERROR if strict else Severity.WARNING
        return Diagnostic(severity, code, self.text, self.span,
                          help=self.help or ("lengthen the stages the gate decides in, or relax what the spec promises"
                                             if self.kind == "power"
                                             else "shorten the plan's early stages, or gate them more tightly"))


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"


def _find(scenarios: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((s for s in scenarios if s["name"] == name), None)


def promises(model: PlanModel, scenarios: list[dict[str, Any]]) -> list[Promise]:
    """Every budget and declared power the simulated scenarios can judge."""
    out: list[Promise] = []
    null, mde = _find(scenarios, "null"), _find(scenarios, "at-mde")
    for budget in model.rollout.budgets:
        if budget.kind == "false-rollbacks" and null is not None and budget.max_percent is not None:
            if budget.gates:
                p = sum(v["estimate"] or 0.0 for g, v in null["rollback_by_gate"].items() if g in budget.gates)
                what = f"false rollbacks across {', '.join(budget.gates)}"
            else:
                p = null["p_rollback"]["estimate"] or 0.0
                what = "false rollbacks"
            se = math.sqrt(p * (1 - p) / null["runs"])
            cap = budget.max_percent / 100.0
            out.append(Promise("false-rollbacks", what, "null", cap, p, se, p - MARGIN_SE * se > cap, budget.span,
                             f"simulated {what} {_pct(p)} ± {_pct(se)} over the budget {_pct(cap)}"))
        elif budget.kind == "duration" and null is not None and budget.max_duration_s is not None:
            mean, se = null["duration"]["mean"], null["duration"]["se"] or 0.0
            if mean is None:
                continue
            cap = budget.max_duration_s
            out.append(Promise("duration", "duration", "null", cap, mean, se, mean - MARGIN_SE * se > cap, budget.span,
                             f"simulated time to promotion {duration_text(mean)} on average, over the budget "
                             f"{duration_text(cap)}"))
        elif budget.kind == "exposure":
            out.extend(_exposure(model, budget, scenarios))
    if mde is not None:
        for gm in model.gates:
            if gm.kind != "business" or not gm.simulated or not isinstance(gm.gate, ir.BusinessGate):
                continue
            entry = mde["gates"][gm.name]
            reached = entry["caught"] if gm.gate.hypothesis == "harm" else entry["decides"]
            p, se = reached["estimate"] or 0.0, reached["se"] or 0.0
            declared = gm.gate.power
            verb = "caught" if gm.gate.hypothesis == "harm" else "shown non-inferior"
            why, help_text = _paused_without_data(mde)
            out.append(Promise("power", gm.name, "at-mde", declared, p, se, p + MARGIN_SE * se < declared, gm.gate.span,
                             f"at its sized effect, gate `{gm.name}`'s candidate is {verb} in {_pct(p)} ± {_pct(se)} "
                             f"of runs, below the declared power {_pct(declared)}{why}", gm.analytic_power,
                             help_text))
    return out


def _paused_without_data(scenario: dict[str, Any]) -> tuple[str, str | None]:
    """Why runs never reached a decision, when looks without data paused them first (no data is never a pass)."""
    empty = {g: v["no_data"] for g, v in scenario["pause_by_gate"].items() if v.get("no_data")}
    if not empty:
        return "", None
    share = sum(empty.values())
    gates = ", ".join(f"`{g}`" for g in empty)
    return (f"; {_pct(share)} of runs paused first, on a look of {gates} without data",
            "a look with no labelled data in an arm is inconclusive and pauses the plan: look later or less often "
            "(`every`, `from`), let labels arrive sooner, or use `analysis arrived`")


def _exposure(model: PlanModel, budget: ir.Budget, scenarios: list[dict[str, Any]]) -> list[Promise]:
    out = []
    for s in scenarios:
        if s["harm_starts_s"] is None or s.get("sweep") is not None:
            continue
        key = "all" if budget.before_s is None else f"{budget.before_s:g}"
        measured = s["exposure_budgets"].get(key)
        if measured is None:
            continue
        share, count = measured["share"], measured["requests"]
        if budget.max_percent is not None:
            value, se, cap = share["mean"], share["se"] or 0.0, budget.max_percent / 100.0
            shown = f"{_pct(value)} ± {_pct(se)} of requests"
            limit = _pct(cap)
        else:
            assert budget.max_requests is not None
            value, se, cap = count["mean"], count["se"] or 0.0, budget.max_requests
            shown = f"{value:,.0f} ± {se:,.0f} requests"
            limit = f"{cap:,.0f}"
        if value is None:
            continue
        when = f" before {duration_text(budget.before_s)}" if budget.before_s is not None else ""
        out.append(Promise("exposure", f"exposure{when}", s["name"], cap, value, se, value - MARGIN_SE * se > cap,
                         budget.span, f"in scenario `{s['name']}` the candidate answers {shown}{when} on average, "
                                      f"over the budget {limit}"))
    return out
