"""`rollout explain`: a plan in markdown, for a pull-request comment.

For each rollout of the entry file: a title with the models, a table of the
phases (candidate weight, mirroring, duration, cumulative candidate exposure
in requests and as a share of all traffic so far), the gates with what each
triggers and how soon it can roll back, the power of each business gate at
each look (from the statistics checks), and the findings of every check.
The output depends only on the input: no times, no set order.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_rollout
from rolloutlang.checks.privacy import personal_fields
from rolloutlang.checks.statistics import change_text, context_gate_plans, pct
from rolloutlang.diagnostics import Diagnostic, count_text
from rolloutlang.plan import Phase, Plan, build_plan
from rolloutlang.source import SourceFile
from rolloutlang.units import duration_text, format_percent

if TYPE_CHECKING:
    from rolloutlang.loader import Program
    from rolloutlang.simulator.runner import Options
    from rolloutlang.stats.gates import GatePlan, PlanFalseRollbacks

POWER_UNAVAILABLE = "power analysis unavailable"


def explain_program(program: Program, simulation: Options | None = None) -> str:
    """Markdown for every rollout of the program's entry file, then its findings.

    With ``simulation`` options, each rollout also gets `rollout simulate`'s
    figures, after the analytic power table.
    """
    rollouts = program.rollouts()
    if program.main is None or not rollouts:
        return "No rollout to explain.\n"
    # One check context per rollout: the checks' findings, and the plan and power table they judged.
    contexts = [CheckContext(rollout=rollout, program=program) for rollout in rollouts]
    findings = list(program.diagnostics)
    if not program.has_errors:
        findings += [d for ctx in contexts for d in check_rollout(ctx)]
    findings = program.waive(findings)
    findings.sort(key=lambda d: d.sort_key())
    parts = []
    for rollout, ctx, mine in zip(rollouts, contexts, _findings_by_rollout(findings, rollouts), strict=True):
        simulated: list[str] = []
        if simulation is not None:
            simulated = _simulated(rollout, ctx, simulation, any(d.is_error for d in mine), program.entry)
        parts.append(explain_rollout(rollout, mine, ctx, simulated))
    return "\n".join(parts)


def _simulated(rollout: ir.Rollout, ctx: CheckContext, options: Options, errors: bool, spec: str) -> list[str]:
    """The section `--simulate` adds: the simulation's table, in markdown."""
    if errors:
        return ["### Simulated", "", "Not simulated: the spec has errors (see the findings)."]
    from rolloutlang.simulator.runner import simulate
    from rolloutlang.simulator.text import render_markdown

    return render_markdown(simulate(rollout, ctx.plan, options, spec=spec).to_json())


def _findings_by_rollout(findings: Sequence[Diagnostic], rollouts: Sequence[ir.Rollout]) -> list[list[Diagnostic]]:
    """Each rollout's findings: those on its lines, plus those with no place in the file (shared by all).

    One pass over the findings, each placed by bisecting the rollouts' first
    lines (they come in file order), so thousands of rollouts stay linear.
    """
    if len(rollouts) < 2:
        return [list(findings) for _ in rollouts]
    out: list[list[Diagnostic]] = [[] for _ in rollouts]
    file = rollouts[0].span.file
    starts = [r.span.line for r in rollouts]
    for d in findings:
        if d.span is None or d.span.file != file:
            for mine in out:
                mine.append(d)
            continue
        i = bisect.bisect_right(starts, d.span.line) - 1
        # Rollouts written on one line share it: the finding goes to each of them.
        while i >= 0 and rollouts[i].span.end_line >= d.span.line:
            out[i].append(d)
            i -= 1
    return out


def explain_rollout(rollout: ir.Rollout, findings: Sequence[Diagnostic] = (),
                    context: CheckContext | None = None, simulated: Sequence[str] = ()) -> str:
    """The markdown for one rollout; ``findings`` are listed at the end.

    With the ``context`` the checks ran in, its plan and power table are
    reused; ``simulated`` lines (`rollout explain --simulate`) follow the power table.
    """
    if context is not None:
        plan, plans = context.plan, context_gate_plans(context)
    else:
        plan = build_plan(rollout)
        plans = {}
        if rollout.traffic is not None and any(isinstance(g, ir.BusinessGate) for g in rollout.gates):
            from rolloutlang.stats.gates import context_gate_plans as gate_plans

            plans = gate_plans(rollout, plan)
    sources = context.program.sources if context is not None else {}
    lines: list[str] = [_title(rollout), ""]
    lines.extend(_summary(rollout, plan))
    lines.append("")
    lines.extend(_phases(plan))
    lines.append("")
    lines.extend(_gates(rollout, plan, sources))
    for section in (_hooks(rollout, plan), _consumers(rollout, plan), _personal_data(rollout)):
        if section:
            lines.append("")
            lines.extend(section)
    lines.append("")
    lines.extend(_power(rollout, plan, plans))
    lines.append("")
    if simulated:
        lines.extend([*simulated, ""])
    lines.extend(_findings_section(findings))
    return "\n".join(lines) + "\n"


# -- title and summary ---------------------------------------------------------------------------


def _model_text(model: ir.ModelVersion | None) -> str:
    return f"{model.name} {model.version}" if model is not None else "?"


def _title(rollout: ir.Rollout) -> str:
    stable, candidate = rollout.model("stable"), rollout.model("candidate")
    if stable is not None and candidate is not None and stable.name == candidate.name:
        models = f"{stable.name} {stable.version} → {candidate.version}"
    else:
        models = f"{_model_text(stable)} → {_model_text(candidate)}"
    kind = "Revert" if rollout.revert is not None else "Rollout"
    return f"## {kind} `{rollout.name}`: {_cell(models)}"


def _strategy_text(rollout: ir.Rollout) -> str:
    s = rollout.strategy
    parts = []
    if rollout.shadow is not None and rollout.shadow.duration_s is not None:
        parts.append(f"mirror {rollout.shadow.percent:g}% of traffic for {duration_text(rollout.shadow.duration_s)}")
    if isinstance(s, ir.Canary):
        weights = " → ".join(f"{st.weight_percent:g}%" for st in s.stages)
        n = len(s.stages)
        parts.append(f"a canary in {n} stage{'s' if n != 1 else ''} ({weights})")
    elif isinstance(s, ir.BlueGreen):
        preview = f"a {duration_text(s.preview_s)} preview" if s.preview_s else "a preview"
        parts.append(f"blue-green with {preview} and {s.promotion} promotion")
    elif isinstance(s, ir.Rolling):
        parts.append("a rolling update")
    else:
        parts.append("no strategy")
    text = ", then ".join(parts)
    if rollout.shadow is not None and rollout.shadow.alongside_canary:
        until = f" until {rollout.shadow.until_percent:g}%" if rollout.shadow.until_percent is not None else ""
        text += f", mirroring {rollout.shadow.percent:g}% alongside the canary{until}"
    after = []
    if rollout.bake is not None:
        kept = "the stable version kept up for an instant switch back" if not isinstance(s, ir.Rolling) else \
            "the stable pods already replaced"
        after.append(f"a {duration_text(rollout.bake.duration_s)} bake at 100%, gates running, {kept}")
    if rollout.holdout is not None:
        h = rollout.holdout
        after.append(f"{h.percent:g}% stays on {h.role} for {duration_text(h.duration_s)}")
    if after:
        text += "; after promotion, " + ", then ".join(after)
    scale = rollout.scale_down.after_s if rollout.scale_down is not None else (
        s.scale_down_delay_s if isinstance(s, ir.BlueGreen) else None)
    if scale is not None:
        when = "the bake" if rollout.bake is not None else "promotion"
        text += f"; the old version keeps running {duration_text(scale)} after {when}"
    return text[0].upper() + text[1:] + "."


def _summary(rollout: ir.Rollout, plan: Plan) -> list[str]:
    facts = []
    if rollout.service:
        facts.append(f"service `{rollout.service}`" + (f" in `{rollout.namespace}`" if rollout.namespace else ""))
    if rollout.owner:
        facts.append(f"owner {_cell(rollout.owner)}")
    lines = []
    if facts:
        lines.extend([", ".join(facts), ""])
    if rollout.revert is not None:
        why = f": {_cell(rollout.revert.reason)}" if rollout.revert.reason else ""
        lines.extend([f"A revert to the previous version, on purpose{why}.", ""])
    lines.append(_strategy_text(rollout))
    lines.append("")
    waiting = [p for p in plan.pre_promotion if p.open_ended]
    if plan.max_duration_s is None:
        names = ", ".join(f"`{p.name}`" for p in waiting)
        people = " and ".join(dict.fromkeys(_waits_for(p) for p in waiting))
        if plan.min_duration_s > 0:
            # the earliest time counts each wait as granted at once; how long the waits last is not known
            timing = f"Promotion after {duration_text(plan.min_duration_s)} at the earliest; no upper bound: " \
                     f"{names} {'waits' if len(waiting) == 1 else 'wait'} until {people}"
        else:
            timing = f"Promotion at no fixed time: {names} {'waits' if len(waiting) == 1 else 'wait'} until {people}"
    else:
        timing = f"Promotion after {duration_text(plan.min_duration_s)}"
    timing += "."
    if plan.rate_rps is not None:
        timing += f" Traffic model: {_count(plan.rate_rps)} requests/s on average."
    else:
        timing += " No traffic model: exposure is shown as a share of traffic only."
    lines.append(timing)
    lines.extend(["", _split_text(rollout)])
    return lines


def _waits_for(phase: Phase) -> str:
    """What an open-ended phase waits for, in a few words that follow `until`."""
    if phase.hold:
        return "a person promotes"
    if phase.approval:
        return "a person approves"
    if phase.kind == "rolling":
        return "every pod is replaced"
    return "a person moves it on"  # a stage without a duration: RL314 asks for one


def _split_text(rollout: ir.Rollout) -> str:
    """What is randomized between the versions: said even when it is the default."""
    traffic = rollout.traffic
    if traffic is None or traffic.unit == "request":
        default = " (the default; `split by user` keeps each user on one version)" if rollout.gates else ""
        return f"Unit of randomization: the request: each request goes to a version on its own{default}."
    key = f", recognised by {traffic.unit_key.kind} `{traffic.unit_key.name}`" if traffic.unit_key else ""
    per = f", {traffic.requests_per_unit:g} requests each" if traffic.requests_per_unit else ""
    return f"Unit of randomization: the {traffic.unit}{key}: all of a {traffic.unit}'s requests go to one version{per}."


# -- phases --------------------------------------------------------------------------------------


def _count(n: float) -> str:
    if n >= 100 or float(n).is_integer():
        return f"{n:,.0f}"
    return f"{n:.3g}"


def _share(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0%"
    if x < 0.01:
        return "<0.01%"
    return f"{x:.3g}%"


def _phase_duration(ph: Phase) -> str:
    if ph.hold:
        return "hold"
    if ph.approval:
        return f"{duration_text(ph.duration_s)}, then approval" if ph.duration_s else "until approved"
    if ph.duration_s is None:
        return "until done" if ph.kind == "rolling" else "no duration"
    if ph.duration_s == 0:
        return "–"
    return duration_text(ph.duration_s)


def _phases(plan: Plan) -> list[str]:
    lines = ["### Phases", "",
             "| # | phase | candidate | mirrored | duration | starts | candidate requests so far | "
             "share of traffic so far |",
             "|--:|---|--:|--:|---|---|--:|--:|"]
    open_before = False
    for ph in plan.phases:
        start = duration_text(ph.earliest_start_s)
        if ph.latest_start_s is None or ph.latest_start_s != ph.earliest_start_s:
            start = f"≥ {start}"
        lower = open_before or (ph.open_ended and ph.weight_percent > 0)
        requests = "–" if ph.cumulative_exposure_requests is None else _count(ph.cumulative_exposure_requests)
        if lower and ph.cumulative_exposure_requests is not None:
            requests = f"≥ {requests}"
        mirrored = f"{ph.shadow_percent:g}%" if ph.shadow_percent else "–"
        name = ph.name + (" (after promotion)" if ph.post_promotion else "")
        lines.append(f"| {ph.index + 1} | `{name}` | {ph.weight_percent:g}% | {mirrored} | {_phase_duration(ph)} | "
                     f"{start} | {requests} | {_share(ph.share_so_far_percent)} |")
        open_before = lower
    lines.append("")
    notes = ["Times are on the fastest schedule: approvals granted at once."]
    mirrored_total = sum(p.mirrored_requests or 0.0 for p in plan.phases)
    if mirrored_total > 0:
        notes.append(f"The candidate also answers {_count(mirrored_total)} mirrored requests; those answers are "
                     "discarded, so they expose no one.")
    elif any(p.shadow_percent for p in plan.phases) and plan.rate_rps is None:
        notes.append("Mirrored requests are not exposure: their answers are discarded.")
    if plan.rollout.routes:
        notes.append("Requests routed to the candidate by header are not counted.")
    lines.append(" ".join(notes))
    return lines


# -- gates ---------------------------------------------------------------------------------------


def describe_gate(gate: ir.AnyGate, written: str | None = None) -> str:
    """The gate's condition and every option, in the language's own words.

    ``written`` is the gate as its spec writes it (units as written); without it the line is rebuilt from the
    IR.  The options the spec leaves to their defaults follow, so a reviewer sees every one that applies.
    """
    text = written if written is not None else _rebuilt(gate)
    defaults = [option for words, option in _defaults(gate) if not re.search(rf"(^|,\s*|\s){words}\b", text)]
    return text + (f" (by default: {', '.join(defaults)})" if defaults else "")


def _defaults(gate: ir.AnyGate) -> list[tuple[str, str]]:
    """(the words that say an option, the option at its default) for each option the gate has."""
    if isinstance(gate, ir.SloGate):
        return [("every", "every 1m"), ("fail after", "fail after 1")]
    if isinstance(gate, ir.DriftGate):
        out = [("every", "every 1h"), ("fail after", "fail after 1"), ("vs", "vs stable")]
        if gate.statistic in ("psi", "kl", "js"):
            out.append(("bins", "bins 10"))
        if gate.statistic == "adwin":
            out.append(("delta", "delta 0.002"))
        return out
    if isinstance(gate, ir.SrmGate):
        return [("alpha", "alpha 0.1%"), ("every", "every 1h")]
    if isinstance(gate, ir.JobGate):
        out = [("timeout", f"timeout {duration_text(ir.DEFAULT_TIMEOUT_S)}")]
        if gate.interval_s is None:
            out.append(("every", "once, as its phase begins"))
        return out
    out = [("power", "power 80%"),
           ("sequential|fixed|msprt|bayesian", "sequential obrien-fleming"),
           ("alpha", "alpha 5%" if gate.alpha is None else f"alpha {format_percent(gate.alpha * 100)}"),
           ("one-sided|two-sided", "one-sided"), ("analysis", "analysis arrived"),
           ("every", "a look at the end of each stage")]
    return out


def _rebuilt(gate: ir.AnyGate) -> str:
    """The gate's line rebuilt from the IR, for a gate whose source text is not at hand."""
    opts: list[str] = []
    if isinstance(gate, ir.SloGate):
        cond = _slo_condition(gate)
        if gate.baseline is not None:
            opts.append(f"baseline {_slo_value(gate, gate.baseline)}")
        if gate.sigma is not None:
            opts.append(f"sigma {gate.sigma:g}")
        if gate.sd is not None:
            opts.append(f"sd {_slo_value(gate, gate.sd)}")  # in the signal's unit, as `baseline`
        opts.append(f"every {duration_text(gate.interval_s)}")
        opts.append(f"fail after {gate.failure_limit}")
        if gate.min_samples is not None:
            opts.append(f"min samples {gate.min_samples}")
    elif isinstance(gate, ir.DriftGate):
        cond = f"{gate.statistic}({gate.target})"
        if gate.threshold is not None:
            cond += f" {gate.op} {gate.threshold:g}"
        elif gate.delta is not None:
            cond += f", delta {gate.delta:g}"
        opts.append(f"every {duration_text(gate.interval_s)}")
        opts.append(f"fail after {gate.failure_limit}")
        opts.append(f"vs {gate.reference}")
        if gate.statistic in ("psi", "kl", "js"):
            opts.append(f"bins {gate.bins}")
        if gate.min_samples is not None:
            opts.append(f"min samples {gate.min_samples}")
    elif isinstance(gate, ir.SrmGate):
        cond = "srm"
        opts.extend([f"alpha {format_percent(gate.alpha * 100)}", f"every {duration_text(gate.interval_s)}"])
        if gate.min_samples is not None:
            opts.append(f"min samples {gate.min_samples}")
    elif isinstance(gate, ir.JobGate):
        cond = f'run "{gate.command}"' if gate.command is not None else f'call "{gate.url}"'
        if gate.field is not None and gate.op is not None and gate.threshold is not None:
            cond += f' json "{gate.field}" {gate.op} {gate.threshold:g}'
        opts.append(f"timeout {duration_text(gate.timeout_s)}")
        if gate.interval_s is not None:
            opts.extend([f"every {duration_text(gate.interval_s)}", f"fail after {gate.failure_limit}"])
    else:
        cond = f"{gate.metric} change {gate.op} {change_text(gate, gate.margin)}"
        opts.append("fail if shown harmful" if gate.hypothesis == "harm" else "pass if shown non-inferior")
        opts.append(f"power {format_percent(gate.power * 100)} at {change_text(gate, gate.effect).split()[0]}")
        spending = gate.spending if gate.spending != "hsd" else f"hsd({gate.spending_gamma:g})"
        test = {"group-sequential": f"sequential {spending}", "fixed": "fixed horizon", "msprt": "msprt",
                "bayesian": "bayesian"}[gate.test]
        opts.append(test)
        if gate.alpha is not None:
            opts.append(f"alpha {format_percent(gate.alpha * 100)}")
        opts.append("two-sided" if gate.sided == "two" else "one-sided")
        if gate.futility:
            opts.append("futility")
        if gate.tau is not None:
            opts.append(f"tau {change_text(gate, gate.tau).split()[0].lstrip('+')}")
        opts.append(f"analysis {gate.analysis}")
        if gate.interval_s is not None:
            opts.append(f"every {duration_text(gate.interval_s)}")
    if gate.from_stage is not None:
        opts.append(f"from {gate.from_stage}")
    return ", ".join([cond, *opts])


# A string, or a comment to drop: the gate's source text without its comments.
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def written_gate(gate: ir.AnyGate, sources: Mapping[str, SourceFile]) -> str | None:
    """The gate's condition and options as its spec writes them (comments dropped, blanks collapsed)."""
    src = sources.get(gate.span.file)
    if src is None or not 1 <= gate.span.line <= src.line_count:
        return None
    text = src.text[src.offset(gate.span.line, gate.span.col):src.offset(gate.span.end_line, gate.span.end_col)]
    text = _STRING_OR_COMMENT.sub(lambda m: m.group() if m.group().startswith('"') else "", text)
    m = re.match(r"gate\s+[A-Za-z0-9_-]+\s*:\s*", text)
    if m is None:
        return None
    # Collapse blanks outside strings; a string keeps its own.
    parts = re.split(r'("(?:[^"\\\n]|\\.)*")', text[m.end():])
    return "".join(p if p.startswith('"') else re.sub(r"\s+", " ", p) for p in parts).strip().replace(" ,", ",")


def _slo_value(gate: ir.SloGate, value: float) -> str:
    if gate.signal == "latency":
        return duration_text(value)
    if gate.signal == "query":
        return f"{value:g}"
    return format_percent(value * 100)


def _slo_condition(gate: ir.SloGate) -> str:
    if gate.signal == "latency":
        name = f"p{gate.percentile:g} latency"
    elif gate.signal == "query":
        name = f"query {gate.query}"
    else:
        name = gate.signal.replace("_", " ")
    if gate.comparison == "threshold":
        return f"{name} {gate.op} {_slo_value(gate, gate.threshold)}"
    if gate.relative:
        change = f"{gate.threshold * 100:+g}%"
    else:
        change = ("+" if gate.threshold >= 0 else "-") + _slo_value(gate, abs(gate.threshold))
        if gate.signal in ("error_rate", "saturation"):
            change += " absolute"
    return f"{name} change {gate.op} {change}"


def _action_text(action: ir.Action) -> str:
    if action.kind == "rollback":
        if action.immediate:
            return "rollback now"
        if action.after_s:
            return f"rollback after {duration_text(action.after_s)}"
        return "rollback"
    if action.kind == "notify":
        return f'notify "{action.channel}"'
    return action.kind


def _triggers(rollout: ir.Rollout, gate: str) -> str:
    rules = [("on pass: " if r.event == "pass" else "") + ", ".join(_action_text(a) for a in r.actions)
             for r in rollout.rules if gate in r.gates]
    return "; ".join(rules) if rules else "nothing"


def _ranges(plan: Plan, ids: Sequence[str], once: bool = False) -> str:
    """Where a gate is evaluated; ``once`` for a job gate that runs once, as its phase begins."""
    if not ids:
        return "no phase"
    if once:
        return f"once, as `{plan.phase(ids[0]).name}` begins"
    if list(ids) == [p.id for p in plan.phases]:
        return "every phase"
    if list(ids) == [p.id for p in plan.pre_promotion]:
        return "every phase before promotion"
    names = [plan.phase(i).name for i in ids]
    indices = [plan.phase(i).index for i in ids]
    if len(ids) > 2 and indices == list(range(indices[0], indices[0] + len(indices))):
        return f"`{names[0]}` to `{names[-1]}`"
    return ", ".join(f"`{n}`" for n in names)


def _earliest(plan: Plan, gate: str) -> str:
    bound = plan.earliest_rollback(gate)
    if bound is None:
        return "–"
    if bound.rollback_s is None:
        return "never, in this plan"
    text = f"at {duration_text(bound.rollback_s)}"
    if plan.rate_rps is not None:
        text += f", after {_count(bound.weighted_s() * plan.rate_rps)} candidate requests"
    return text


def _gates(rollout: ir.Rollout, plan: Plan, sources: Mapping[str, SourceFile]) -> list[str]:
    lines = ["### Gates", ""]
    if not rollout.gates:
        lines.append("No gates: the plan promotes on time alone.")
        return lines
    lines.extend(["| gate | kind | condition | evaluated in | on failure | earliest rollback |",
                  "|---|---|---|---|---|---|"])
    kinds = {"slo": "SLO", "drift": "drift", "business": "business", "srm": "sample ratio", "job": "job"}
    for gate in rollout.gates:
        origin = f" (from `{gate.origin}`)" if gate.origin else ""
        condition = describe_gate(gate, written_gate(gate, sources))
        once = isinstance(gate, ir.JobGate) and gate.interval_s is None
        lines.append(f"| `{gate.name}`{origin} | {kinds[gate.kind]} | {_cell(condition)} | "
                     f"{_ranges(plan, plan.gate_phases.get(gate.name, ()), once)} | "
                     f"{_cell(_triggers(rollout, gate.name))} | "
                     f"{_earliest(plan, gate.name)} |")
    lines.append("")
    lines.append("Earliest rollback: the first moment the gate can fail (`every` × `fail after`, or its first "
                 "look) plus any confirmation wait, and the candidate requests served until then.")
    return lines


_HOOK_POINT_TEXT = {"before-traffic": "before traffic moves", "after-promotion": "after promotion",
                    "on-rollback": "on a rollback"}


def _hooks(rollout: ir.Rollout, plan: Plan) -> list[str]:
    if not rollout.pipeline:
        return []
    lines = ["### Hooks", "", "| hook | runs | timeout | command |", "|---|---|---|---|"]
    for hook in rollout.pipeline:
        if hook.phase is not None:
            when = f"at the {'start' if hook.point == 'phase-start' else 'end'} of `{hook.phase}`"
        else:
            when = _HOOK_POINT_TEXT[hook.point]
        lines.append(f"| `{hook.name}` | {when} | {duration_text(hook.timeout_s)} | `{_code(hook.command)}` |")
    lines.extend(["", "A hook that fails or outlasts its timeout stops the rollout where it is: before traffic, "
                      "nothing is deployed; later, the rollout rolls back. A hook on rollback runs after the "
                      "rollback."])
    return lines


def _consumers(rollout: ir.Rollout, plan: Plan) -> list[str]:
    if not rollout.consumers:
        return []
    lines = ["### Consumers", "", "| consumer | reads | route | answered by | after a rollback |",
             "|---|---|---|---|---|"]
    for c in rollout.consumers:
        reads = f"`{c.output}` as {c.expects_dim}" + (f", adapter `{_code(c.adapter)}`" if c.adapter else "")
        if c.route is None:
            route = "the traffic split"
            if isinstance(rollout.strategy, ir.Canary):
                served = "stable and the candidate, by the stages' weights, until promotion"
            elif isinstance(rollout.strategy, ir.Rolling):
                served = "whichever version the pod that answers runs, until promotion"
            else:
                served = "stable until promotion, then the candidate"
        else:
            m = c.route
            op = {"exact": "=", "regex": "~", "prefix": "^="}[m.match]
            route = f'`{m.kind} "{_code(m.name)}" {op} "{_code(m.value)}"`'
            first = next((p for p in plan.phases if (c.name, "candidate") in p.consumers), None)
            if first is None:
                served = "stable until promotion, then the candidate (its switch)"
            elif first.index == 0:
                served = "the candidate from the start (its switch)"
            else:
                served = f"stable, then the candidate from `{first.name}` (its switch)"
        lines.append(f"| `{c.name}` | {reads} | {route} | {served} | stable |")
    return lines


def _personal_data(rollout: ir.Rollout) -> list[str]:
    """The signature fields marked `pii`, and what the request log does with each."""
    personal = personal_fields(rollout)
    if not personal:
        return []
    log = rollout.request_log
    treated = {p.name: p.treatment for p in log.pii} if log is not None else {}
    lines = ["### Personal data", "", "| field | in the request log |", "|---|---|"]
    for name in personal:
        if log is None or log.sample_percent == 0:
            logged = "no request log"
        elif name not in log.fields:
            logged = "not logged"
        elif treated.get(name) is not None:
            logged = f"logged {treated[name]}" if treated[name] == "hashed" else "dropped from the log"
        else:
            logged = "**logged in clear** (RL654)"
        lines.append(f"| `{name}` | {logged} |")
    if log is not None and log.sample_percent > 0:
        kept = f", kept {duration_text(log.retain_s)}" if log.retain_s is not None else ""
        lines.extend(["", f"{format_percent(log.sample_percent)} of requests are logged{kept}."])
    return lines


def _code(text: str) -> str:
    """Text safe inside inline code in a table cell."""
    return _cell(text).replace("`", "'")


# -- power ---------------------------------------------------------------------------------------


def _power(rollout: ir.Rollout, plan: Plan, plans: dict[str, GatePlan]) -> list[str]:
    business = [g for g in rollout.gates if isinstance(g, ir.BusinessGate)]
    lines = ["### Power", ""]
    if not business:
        lines.append("No business gate: nothing to size.")
        return lines
    if not plans:
        why = "no traffic model" if rollout.traffic is None else "no look with a fixed time"
        lines.append(f"{POWER_UNAVAILABLE}: {why}.")
        return lines
    for gate in business:
        gp = plans.get(gate.name)
        if gp is not None:
            lines.extend([f"- {hypothesis_sentence(rollout, gp)}"])
    lines.append("")
    lines.extend(_power_table([plans[g.name] for g in business if g.name in plans]))
    lines.append("")
    lines.extend(f"- {line}" for line in _assumptions(rollout, [plans[g.name] for g in business if g.name in plans]))
    from rolloutlang.stats.gates import plan_false_rollbacks

    frr = plan_false_rollbacks(rollout, plan, plans)
    if frr.per_gate:
        lines.extend(["", _false_rollback_text(frr)])
    return lines


def _direction(gate: ir.BusinessGate, harm: bool) -> str:
    """`below`/`above`: where the harmful (or healthy) side of the margin is."""
    return "below" if gate.higher_is_better == harm else "above"


def hypothesis_sentence(rollout: ir.Rollout, gp: GatePlan) -> str:
    """One sentence a reviewer can check: what the gate tests, at what error, with what power."""
    gate, metric, spec = gp.gate, gp.metric, gp.spec
    margin = change_text(gate, gate.margin)
    test = {"fixed": "a fixed-horizon test", "group-sequential": f"a group-sequential test ({spec.spending.label})",
            "msprt": "an mSPRT", "bayesian": "a Bayesian rule"}[gate.test]
    sides = "two-sided " if gate.sided == "two" else ""
    last = gp.samples[-1].look.stage
    ch = gp.characteristics
    power = pct(gp.power)
    frr = pct(ch.false_rollback) if ch is not None else "?"
    at_margin = pct(ch.type_one_error) if ch is not None else "?"
    looks = len(gp.kept)
    design = f"{sides}{test} over {looks} look{'s' * (looks != 1)}, alpha {spec.alpha * 100:.3g}%"
    if gate.hypothesis == "harm":
        return (f"`{gate.name}` fails only on evidence that the change in `{metric.name}` is "
                f"{_direction(gate, True)} {margin} ({design}: a candidate exactly at the margin fails {at_margin} of "
                f"the time); it catches a {change_text(gate, gate.effect)} change by the end of `{last}` with "
                f"probability {power} (declared {pct(gate.power)}), and fails an unchanged candidate {frr} of the "
                "time.")
    expect = "an unchanged candidate" if gate.effect == 0 else f"a {change_text(gate, gate.effect)} change"
    return (f"`{gate.name}` allows promotion only on evidence that the change in `{metric.name}` is "
            f"{_direction(gate, False)} {margin}, and fails when that can no longer be shown ({design}: a candidate "
            f"exactly at the margin passes {at_margin} of the time); it passes {expect} by the end of `{last}` with "
            f"probability {power} (declared {pct(gate.power)}), and fails an unchanged candidate {frr} of the time.")


def _bound(z: float) -> str:
    return "–" if z in (math.inf, -math.inf) else f"{z:.2f}"


def _power_table(plans: Sequence[GatePlan]) -> list[str]:
    lines = ["| gate | look | stage | time | labelled (stable / candidate) | information | fail if Z ≤ "
             "| promote if Z ≥ | power by here |",
             "|---|---|---|---|--:|--:|--:|--:|--:|"]
    thinned: list[str] = []
    for gp in plans:
        power = gp.power_by_look()
        bounds = gp.bounds_by_look()
        final = gp.samples[-1].information
        # Keep the last look of each stage: a gate that looks every hour would fill the comment.
        last_of_stage: dict[str, int] = {}
        for i, sample in enumerate(gp.samples):
            last_of_stage[sample.look.stage] = i
        if len(last_of_stage) < len(gp.samples):
            thinned.append(gp.gate.name)
        for i in last_of_stage.values():
            sample = gp.samples[i]
            b = bounds[i]
            low, up = ("–", "–") if b is None else (_bound(b[0]), _bound(b[1]))
            lines.append(f"| `{gp.gate.name}` | {_cell(sample.look.name)} | `{sample.look.stage}` | "
                         f"{duration_text(sample.look.time_s)} | {_count(sample.n_control)} / "
                         f"{_count(sample.n_candidate)} | {sample.information / final if final else 0:.2f} | {low} | "
                         f"{up} | {_share(100.0 * power[i])} |")
    lines.append("")
    note = ("Z = (estimate - margin) / SE, positive when the candidate is better than the margin. Power by here: the "
            "chance that the gate's own rule, with these boundaries at these looks, has reached its decision "
            "(failed, for a harm test; allowed promotion, for a non-inferiority test) by that look, at the change "
            "its power is sized for (exact crossing probabilities).")
    if thinned:
        note += " Showing the last look of each stage for " + ", ".join(f"`{g}`" for g in thinned) + "."
    lines.append(note)
    return lines


def _assumptions(rollout: ir.Rollout, plans: Sequence[GatePlan]) -> list[str]:
    said: list[str] = []
    traffic = rollout.traffic
    if traffic is not None and traffic.diurnal_amplitude > 0:
        worst = [gp for gp in plans if gp.worst_start]
        if worst:
            when = ", ".join(f"`{gp.gate.name}` {_hour(gp.start_hour)}" for gp in worst
                             if gp.start_hour is not None and traffic.peak_hour is not None)
            said.append("Labels follow the traffic's daily shape; without `start` (and `peak`) on the traffic line "
                        "each gate is sized for the worst start of day" + (f" ({when})" if when else "") + ".")
        else:
            said.append(f"Labels follow the traffic's daily shape, from a start at {_hour(traffic.start_hour)}.")
    for gp in plans:
        r = gp.randomization
        if r.unit != "request":
            icc = f"icc {r.icc:g}" + (" (not given: assumed)" if r.icc_assumed else "")
            said.append(f"`{gp.gate.name}`: {r.requests_per_unit:g} requests per {r.unit}, {icc}: design effect "
                        f"{r.design_effect:.2f}.")
        if gp.thinned_from is not None:
            said.append(f"`{gp.gate.name}` asks for {gp.thinned_from:,} looks; it decides at {len(gp.samples):,} "
                        "evenly spread ones (RL518).")
        ch = gp.characteristics
        if ch is not None and ch.at_effect.method == "simulated":
            said.append(f"`{gp.gate.name}`: {len(gp.kept)} looks, so its figures are simulated "
                        f"(standard error {ch.at_effect.standard_error * 100:.2g} points).")
    return said


def _hour(hour: float | None) -> str:
    if hour is None:
        return "?"
    minutes = round(hour * 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _false_rollback_text(frr: PlanFalseRollbacks) -> str:
    parts = ", ".join(f"`{g}` {pct(p)}" for g, p in frr.per_gate)
    text = (f"False rollbacks, a candidate as good as stable rolled back: {parts}; the plan about "
            f"{pct(frr.independent)} if the gates' data are independent, at most {pct(frr.bound)}.")
    if frr.unmodelled:
        text += (" Not counted: " + ", ".join(f"`{g}`" for g in frr.unmodelled) +
                 " (thresholds on live noise; `rollout simulate` includes them).")
    return text


# -- findings ------------------------------------------------------------------------------------


def _findings_section(findings: Iterable[Diagnostic]) -> list[str]:
    found = list(findings)
    items = [d for d in found if d.suppression is None]
    waived = [d for d in found if d.suppression is not None]
    lines = ["### Findings", ""]
    if not items:
        lines.append("No errors or warnings.")
    else:
        counts = count_text(items)
        if counts:
            lines.extend([counts + ":", ""])
    for d in items:
        where = f" at `{d.span}`" if d.span is not None else ""
        lines.append(f"- **{d.severity.value}** `{d.code}`{where}: {_inline(d.message)}")
        for note in d.notes:
            lines.append(f"  - note: {_inline(note)}")
        if d.help:
            lines.append(f"  - help: {_inline(d.help)}")
    if waived:
        lines.extend(["", f"Waived in the spec ({len(waived)}):", ""])
        for d in waived:
            assert d.suppression is not None
            where = f" at `{d.span}`" if d.span is not None else ""
            lines.append(f"- `{d.code}`{where}: {_inline(d.message)}; waived: {_inline(d.suppression.justification)}")
    return lines


def _inline(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return _inline(text).replace("|", "\\|")
