"""`--report FILE.html`: one self-contained page, plots drawn as inline SVG (no script, no network).

The page reads the JSON document, so it shows exactly the numbers of
`--format json`: the summary table, the candidate's share and cumulative
exposure over time, P(rollback) by time in each scenario, and, for each
`--effect` sweep, P(rollback) and the time to detect across effect sizes.
Every text from the spec is escaped; the same document gives the same bytes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

from rolloutlang.outputs import GENERATED_MARKER
from rolloutlang.simulator.text import COLUMNS, count, duration, gate_lines, row

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 30, 45

Series = tuple[str, Sequence[float], Sequence[float | None], Sequence[float | None] | None]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _ticks(top: float) -> list[float]:
    if top <= 0:
        return [0.0]
    step = 10 ** math.floor(math.log10(top))
    for m in (1, 2, 5, 10):
        if top / (step * m) <= 5:
            step *= m
            break
    return [i * step for i in range(int(top / step + 1e-9) + 1)]


def line_chart(title: str, x_label: str, y_label: str, lines: Sequence[Series], *,
               x_text: Callable[[float], str], y_text: Callable[[float], str], y_top: float | None = None,
               points: bool = False) -> str:
    """An SVG line chart; each line is (name, x, y, y error or None)."""
    xs = [x for _, x_values, _, _ in lines for x in x_values]
    ys = [y for _, _, y_values, _ in lines for y in y_values if y is not None]
    if not xs or not ys:
        return ""
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_hi = x_lo + 1.0
    top: float = y_top if y_top is not None else max(max(y for y in ys if y is not None), 1e-12) * 1.05
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - min(max(y / top, 0.0), 1.0) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
           f'aria-label="{_e(title)}">',
           f'<text x="{LEFT}" y="18" font-weight="bold">{_e(title)}</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for tick in _ticks(top):
        y = py(tick)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_e(y_text(tick))}</text>')
    for i in range(6):
        x = x_lo + (x_hi - x_lo) * i / 5
        out.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" font-size="11">'
                   f'{_e(x_text(x))}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle" font-size="12">'
               f'{_e(x_label)}</text>')
    out.append(f'<text x="14" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 14 {TOP + plot_h / 2})">{_e(y_label)}</text>')
    for i, (name, x_values, y_values, errors) in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(x_values, y_values, strict=True) if y is not None)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        if points:
            for j, (x, value) in enumerate(zip(x_values, y_values, strict=True)):
                if value is None:
                    continue
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(value):.1f}" r="3" fill="{colour}"/>')
                err = errors[j] if errors is not None else None
                if err:
                    out.append(f'<line x1="{px(x):.1f}" y1="{py(value - 2 * err):.1f}" x2="{px(x):.1f}" '
                               f'y2="{py(value + 2 * err):.1f}" stroke="{colour}"/>')
        legend_y = TOP + 14 * i + 8
        out.append(f'<line x1="{WIDTH - RIGHT + 10}" y1="{legend_y}" x2="{WIDTH - RIGHT + 28}" y2="{legend_y}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{WIDTH - RIGHT + 32}" y="{legend_y + 4}" font-size="11">{_e(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _pct(y: float) -> str:
    return f"{y * 100:.3g}%"


def _time_charts(doc: dict[str, Any]) -> list[str]:
    scenarios = [s for s in doc["scenarios"] if "sweep" not in s]
    if not scenarios:
        return []

    def hours(x: float) -> str:
        return f"{x / 3600:.3g}h"

    share = line_chart("Candidate share of live traffic (mean over runs)", "time since the start", "share",
                       [(s["name"], s["series"]["time_s"], s["series"]["share"], None) for s in scenarios],
                       x_text=hours, y_text=_pct, y_top=1.0)
    exposure = line_chart("Cumulative exposure (mean candidate requests)", "time since the start", "requests",
                          [(s["name"], s["series"]["time_s"], s["series"]["exposure"], None) for s in scenarios],
                          x_text=hours, y_text=count)
    rollback = line_chart("P(rolled back by then)", "time since the start", "probability",
                          [(s["name"], s["series"]["time_s"], s["series"]["p_rollback"], None) for s in scenarios],
                          x_text=hours, y_text=_pct, y_top=1.0)
    return [c for c in (share, exposure, rollback) if c]


def _sweep_charts(doc: dict[str, Any]) -> list[str]:
    targets: dict[str, list[dict[str, Any]]] = {}
    for s in doc["scenarios"]:
        if "sweep" in s:
            targets.setdefault(s["sweep"]["target"], []).append(s)
    out = []
    for target, points in targets.items():
        xs = [p["sweep"]["value"] for p in points]
        written = points[0]["sweep"]["text"]

        def x_text(x: float, written: str = written) -> str:
            """A size written as the sweep's ends are: `-1.5%`, `+20ms`, `0.25`."""
            if "%" in written:
                return f"{x * 100:+.3g}%"
            if written.endswith("ms"):
                return f"{x * 1000:+.3g}ms"
            return f"{x:.3g}"

        out.append(line_chart(f"Power: P(rollback) across `{target}`", f"effect on `{target}`", "P(rollback)",
                              [("P(rollback) ± 2 SE", xs, [p["p_rollback"]["estimate"] for p in points],
                                [p["p_rollback"]["se"] for p in points])],
                              x_text=x_text, y_text=_pct, y_top=1.0, points=True))
        detect = [("p50", xs, [p["time_to_detect"]["p50"] for p in points], None),
                  ("p95", xs, [p["time_to_detect"]["p95"] for p in points], None)]
        chart = line_chart(f"Time to detect across `{target}`", f"effect on `{target}`", "time to rollback",
                           detect, x_text=x_text, y_text=lambda y: duration(y), points=True)
        if chart:
            out.append(chart)
    return out


def render_report(doc: dict[str, Any]) -> str:
    """The page, as text."""
    title = f"Simulation of rollout {doc['rollout']}"
    rows = "\n".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row(s)) + "</tr>" for s in doc["scenarios"])
    head = "".join(f"<th>{_e(c)}</th>" for c in COLUMNS)
    checks = "".join(f"<li>{_e(c)}</li>" for c in gate_lines(doc))
    assumed = "".join(f"<li>{_e(a)}</li>" for a in doc["assumptions"])
    charts = "\n".join(f"<figure>{c}</figure>" for c in [*_time_charts(doc), *_sweep_charts(doc)])
    return f"""<!DOCTYPE html>
<!-- {GENERATED_MARKER} (rollout simulate); do not edit. -->
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1000px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; font-size: 14px; }}
th:first-child, td:first-child {{ text-align: left; }}
figure {{ margin: 1.5em 0; }}
</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p>Spec <code>{_e(doc['spec'])}</code>: {doc['runs']:,} runs a scenario, seed {doc['seed']}.
Rates carry &plusmn; one Monte Carlo standard error, in points.</p>
<table><thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Promises</h2>
<ul>{checks or "<li>The spec states no budget and no business gate.</li>"}</ul>
<h2>Over time and across effect sizes</h2>
{charts}
<h2>Assumed</h2>
<ul>{assumed or "<li>Nothing: the spec says all the simulator needs.</li>"}</ul>
</body>
</html>
"""
