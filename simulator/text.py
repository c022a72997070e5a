"""The simulation for people: a table on the terminal, and markdown for `rollout explain --simulate`.

Both read the JSON document (:meth:`rolloutlang.simulator.runner.Simulation.to_json`),
so the terminal, the pull-request comment and the file a pipeline keeps say
the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rolloutlang.units import human_duration

COLUMNS = ("scenario", "rollback", "promote", "pause", "exposure mean / p95", "harmful p95", "detect p50 / p95",
           "promoted after p50")


def probability(entry: dict[str, Any] | None, *, se: bool = True) -> str:
    """`4.9% ± 0.48`, `100%`, `0%`: a rate and its Monte Carlo standard error in points."""
    if entry is None or entry.get("estimate") is None:
        return "–"
    p = entry["estimate"]
    text = "0%" if p == 0 else "100%" if p == 1 else f"{p * 100:.3g}%"
    if se and entry.get("se") and 0 < p < 1:
        text += f" ± {entry['se'] * 100:.2g}"
    return text


def count(x: float | None) -> str:
    """A request count for people: `383M`, `1.2k`, `950`."""
    if x is None:
        return "–"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def duration(x: float | None) -> str:
    return "–" if x is None else human_duration(x)


def row(s: dict[str, Any]) -> list[str]:
    exposure = s["exposure"]
    harmful = s["harmful_exposure"]
    detect = s["time_to_detect"]
    return [s["name"], probability(s["p_rollback"]), probability(s["p_promote"]), probability(s["p_pause"]),
            f"{count(exposure['mean'])} / {count(exposure['p95'])}",
            count(harmful["p95"]) if s["harm_starts_s"] is not None else "–",
            f"{duration(detect['p50'])} / {duration(detect['p95'])}" if detect["p50"] is not None else "–",
            duration(s["duration"]["p50"])]


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _attribution(s: dict[str, Any]) -> str:
    """`rolled back by ctr 4.1%, errors 0.5%; paused by drift 2% (no data)`: which gate ended the runs."""
    parts = []
    if s["rollback_by_gate"]:
        parts.append("rolled back by " + ", ".join(f"{g} {probability(v, se=False)}"
                                                   for g, v in s["rollback_by_gate"].items()))
    if s["pause_by_gate"]:
        parts.append("paused by " + ", ".join(f"{g} {probability(v, se=False)}" + (" (no data)" if v.get("no_data")
                                                                                  else "")
                                              for g, v in s["pause_by_gate"].items()))
    return "; ".join(parts)


def gate_lines(doc: dict[str, Any]) -> list[str]:
    """At-mde: how often each business gate reaches its decision, and the checks' verdicts."""
    out = []
    for c in doc["checks"]:
        status = "MISSED" if c["missed"] else "ok"
        if c["kind"] == "power":
            analytic = f", the gate alone {c['analytic'] * 100:.3g}% by the checks" if c.get("analytic") is not None \
                else ""
            out.append(f"{status}: gate `{c['what']}` at its sized effect: {c['simulated'] * 100:.3g}% "
                       f"± {c['se'] * 100:.2g} (declared power {c['promised'] * 100:.3g}%{analytic})")
        elif c["kind"] == "duration":
            out.append(f"{status}: time to promotion {duration(c['simulated'])} on average "
                       f"(budget {duration(c['promised'])})")
        elif c["kind"] == "exposure" and c["promised"] < 1:
            out.append(f"{status}: {c['what']} in `{c['scenario']}`: {c['simulated'] * 100:.3g}% of requests "
                       f"(budget {c['promised'] * 100:.3g}%)")
        elif c["kind"] == "exposure":
            out.append(f"{status}: {c['what']} in `{c['scenario']}`: {count(c['simulated'])} requests "
                       f"(budget {count(c['promised'])})")
        else:
            out.append(f"{status}: {c['what']} {c['simulated'] * 100:.3g}% ± {c['se'] * 100:.2g} "
                       f"(budget {c['promised'] * 100:.3g}%)")
    return out


def render_text(doc: dict[str, Any]) -> str:
    """The terminal table."""
    lines = [f"rollout `{doc['rollout']}`: {doc['runs']:,} runs a scenario, seed {doc['seed']}", ""]
    lines += _aligned([list(COLUMNS), *[row(s) for s in doc["scenarios"]]])
    attributions = [(s["name"], _attribution(s)) for s in doc["scenarios"]]
    if any(text for _, text in attributions):
        lines += ["", "which gates ended runs:"]
        lines += [f"  {name}: {text}" for name, text in attributions if text]
    checks = gate_lines(doc)
    if checks:
        lines += ["", "promises:", *[f"  {c}" for c in checks]]
    if doc["assumptions"]:
        lines += ["", "assumed:", *[f"  - {a}" for a in doc["assumptions"]]]
    lines += ["", "Rates carry ± one Monte Carlo standard error, in points. Exposure: requests the candidate "
                  "answered live; harmful: from the moment the scenario makes it worse. See docs/simulate.md."]
    return "\n".join(lines) + "\n"


def render_markdown(doc: dict[str, Any]) -> list[str]:
    """A section for `rollout explain --simulate`."""
    lines = [f"### Simulated ({doc['runs']:,} runs a scenario, seed {doc['seed']})", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for s in doc["scenarios"]:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in [f"`{s['name']}`", *row(s)[1:]]) + " |")
    lines.append("")
    for name, text in ((s["name"], _attribution(s)) for s in doc["scenarios"]):
        if text:
            lines.append(f"- `{name}`: {text}")
    lines.extend(f"- {c}" for c in gate_lines(doc))
    lines.extend(f"- assumed: {a}" for a in doc["assumptions"])
    lines += ["", "Rates carry ± one Monte Carlo standard error, in points; exposure counts the requests the "
                  "candidate answered live, harmful ones from the moment the scenario makes it worse."]
    return lines
