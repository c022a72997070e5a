"""Statistics checks (RL501-RL505, RL512-RL518, RL510-RL511) and the gates' plans behind them.

Power figures are cross-checked against statsmodels (test-only dependency):
``normal_power_het`` with the gate's own variance (agreement to 1e-9: the same
formula), and ``power_proportions_2indep`` / ``NormalIndPower`` for the
classical tests the gates approximate (within 0.5 percentage points).  Label
and information figures are recomputed here by hand or by numerical
integration; reference numbers are from shared/design/statistics-reference.md
(sections 1.4, 1.5 and 2.4).  The rules themselves are checked against
simulation in ``tests/test_gate_rules.py``.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from scipy import integrate

from rolloutlang import ir, stats
from rolloutlang.checks import run_checks
from rolloutlang.diagnostics import Diagnostic, Severity
from rolloutlang.loader import load, load_text
from rolloutlang.plan import build_plan
from rolloutlang.stats.gates import GatePlan, plan_gate
from tests import helpers
from tests.helpers import A, B, at, one, pos, program_of, rl4xx_rl5xx_rl65x

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.005  # the acceptance bound: 0.5 percentage points

HARM = "fail if shown harmful, power 80% at -3%"
BASE = f"""rollout ranker-v2 {{
  service ranker
  model stable    ranker 1.4.2 @ sha256:{A}
  model candidate ranker 1.5.0 @ sha256:{B}
  signature {{ in user_id: int64  out scores: list<float32> }}
  traffic 12000 rps
  metrics prometheus "http://prometheus.monitoring:9090"
  metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)

  canary {{
    5%   for 6h
    50%  for 12h
    100%
  }}

  gate errors: error rate < 0.5%   every 5m
  gate ctr:    ctr change > -1% relative, {HARM}
  on errors fail: rollback now
  on ctr fail:    rollback
}}
"""


def check(text: str, root: Path | None = None) -> list[Diagnostic]:
    """The findings of the artifact, compatibility, statistics and privacy checks only."""
    return helpers.check(text, keep=rl4xx_rl5xx_rl65x, root=root)


def sub(text: str, *pairs: tuple[str, str]) -> str:
    """Apply each (old, new) replacement once, in order; every `old` must be there."""
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def simple(rate: str, canary: str, gate: str = f"ctr change > 0%, {HARM}", labels: str = "immediate",
           metric: str = "binary, baseline 4.2%") -> str:
    """A spec whose samples are easy to compute by hand."""
    return sub(BASE, ("traffic 12000 rps", f"traffic {rate}"),
               ("binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)", f"{metric}, labels {labels}"),
               ("    5%   for 6h\n    50%  for 12h\n", canary),
               (f"ctr change > -1% relative, {HARM}", gate))


def gate_plan(text: str, name: str = "ctr") -> GatePlan:
    (rollout,) = program_of(text).rollouts()
    gate = rollout.gate(name)
    assert isinstance(gate, ir.BusinessGate)
    gp = plan_gate(rollout, gate, build_plan(rollout))
    assert gp is not None
    return gp


def test_base_spec_is_clean() -> None:
    assert check(BASE) == []


# -- the fixed-horizon test against statsmodels ---------------------------------------------------------------


def statsmodels_power(gp: GatePlan) -> float:
    """statsmodels' normal power with the gate's own variance on the log-ratio scale (one stage)."""
    from statsmodels.stats.power import normal_power_het

    (n_c, n_t), = gp.samples[-1].strata
    p_c = gp.metric.baseline
    p_t = p_c * (1 + gp.gate.effect)
    per_t = math.sqrt((1 - p_t) / p_t + (1 - p_c) / p_c * n_t / n_c)  # SD of one candidate observation's share
    diff = math.log1p(gp.gate.effect) - math.log1p(gp.gate.margin)
    return float(normal_power_het(diff, n_t, gp.spec.side_alpha, std_null=per_t, std_alternative=per_t,
                                  alternative="smaller" if diff < 0 else "larger"))


@pytest.mark.parametrize(("rate", "canary", "gate"), [
    ("300 rph", "    50%  for 24h\n", "ctr change > -1%, fail if shown harmful, power 80% at -6%, fixed"),
    ("50000 rph", "    10%  for 1d\n", "ctr change > 0%, fail if shown harmful, power 80% at -3%, fixed, alpha 1%"),
    ("100 rps", "    25%  for 1h\n", "ctr change < +1%, fail if shown harmful, power 80% at +4%, fixed, two-sided"),
    ("1000 rph", "    50%  for 20h\n", "ctr change > -5%, pass if shown non-inferior, fixed"),
])
def test_fixed_horizon_power_is_statsmodels_normal_power(rate: str, canary: str, gate: str) -> None:
    gp = gate_plan(simple(rate, canary, gate))
    assert len(gp.kept) == 1 and 0.05 < gp.power < 0.999
    assert gp.power == pytest.approx(statsmodels_power(gp), abs=1e-9)


def test_the_log_ratio_test_agrees_with_the_two_proportion_z_test() -> None:
    # statistics-reference.md 1.4: 886,582 per arm detect -2% relative on 4.2% with power 0.80 (two-sided 5%,
    # statsmodels power_proportions_2indep).  The gate's test works on the log ratio with Wald variances; at
    # rollout sizes they agree within the half a percentage point.
    from statsmodels.stats.proportion import power_proportions_2indep

    gp = gate_plan(simple("1773164 rph", "    50%  for 1h\n",
                          "ctr change > 0%, fail if shown harmful, power 80% at -2%, fixed, two-sided"))
    (n_c, n_t), = gp.samples[-1].strata
    assert n_c == pytest.approx(886_582) and n_t == pytest.approx(886_582)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = float(power_proportions_2indep(-0.00084, 0.042, 886_582).power)
    assert reference == pytest.approx(0.8000, abs=5e-5)
    assert gp.power == pytest.approx(reference, abs=TOLERANCE)


def test_continuous_fixed_power_agrees_with_normal_ind_power() -> None:
    from statsmodels.stats.power import NormalIndPower

    text = simple("30 rps", "    50%  for 6h\n", "revenue change > 0.0 absolute, fail if shown harmful, "
                  "power 80% at -0.05, fixed", metric="continuous, baseline 1.3, sd 4").replace(
        "metric ctr:", "metric revenue:")
    gp = gate_plan(text, "ctr")
    (n_c, n_t), = gp.samples[-1].strata
    expected = NormalIndPower().power(effect_size=-0.05 / 4, nobs1=n_t, ratio=n_c / n_t, alpha=0.05,
                                      alternative="smaller")
    assert gp.power == pytest.approx(expected, abs=1e-9)


# -- what a look sees ------------------------------------------------------------------------------------------


def test_labelled_sample_counts_late_labels_of_earlier_stages() -> None:
    # fixed(1h) labels, 3600 rph: stage 1 at 10% for 2h, stage 2 at 50% for 2h.
    gp = gate_plan(simple("3600 rph", "    10%  for 2h\n    50%  for 2h\n", labels="fixed(1h)"))
    rows = gp.samples
    assert [(r.look.name, r.look.time_s) for r in rows] == [("stage-1", 7200.0), ("stage-2", 14400.0)]
    # At 2h only the first hour's requests have labels.
    assert rows[0].n_candidate == pytest.approx(360)
    assert rows[0].n_control == pytest.approx(3240)
    # At 4h: all of stage 1 (labels arrived during stage 2) plus the first hour of stage 2.
    assert rows[1].n_candidate == pytest.approx(720 + 1800)
    assert rows[1].n_control == pytest.approx(6480 + 1800)
    assert [x for pair in rows[1].strata for x in pair] == pytest.approx([6480, 720, 1800, 1800])
    # Information adds over the two stages (strata), it does not pool them: (1 - p) / p per request.
    var = (1 - 0.042) / 0.042

    def info(c: float, t: float) -> float:
        return c * t / (c + t) / var

    assert rows[0].information == pytest.approx(info(3240, 360))
    assert rows[1].information == pytest.approx(info(6480, 720) + info(1800, 1800))
    assert rows[1].efficiency == pytest.approx(rows[1].information / info(6480 + 1800, 720 + 1800))
    assert rows[1].efficiency < 0.9


def test_lognormal_arrivals_match_the_reference_fractions() -> None:
    # statistics-reference.md 2.4: LogNormal(median 2h, sigma 1), constant traffic, look at 24h: 0.866.
    gp = gate_plan(simple("3600 rph", "    50%  for 24h\n", labels="lognormal(median 2h, sigma 1)"))
    assert gp.samples[-1].n_candidate / (1800 * 24) == pytest.approx(0.866, abs=5e-4)


def test_shadow_phase_shifts_the_clock_but_adds_no_labels() -> None:
    text = simple("3600 rph", "    50%  for 2h\n")
    (plain,) = gate_plan(text).samples
    (row,) = gate_plan(sub(text, ("  canary {", "  shadow 100% for 24h\n  canary {"))).samples
    assert row.look.time_s == plain.look.time_s + 86400
    assert row.n_candidate == plain.n_candidate == 3600


def test_every_gives_equal_looks_and_from_skips_earlier_stages() -> None:
    rows = gate_plan(simple("3600 rph", "    10%  for 2h\n    mpr: 50%  for 3h\n",
                            gate=f"ctr change > 0%, {HARM}, every 1h, from mpr")).samples
    assert [r.look.name for r in rows] == ["mpr +1h", "mpr +2h", "mpr"]
    assert [r.look.time_s for r in rows] == [3 * 3600.0, 4 * 3600.0, 5 * 3600.0]
    assert [r.n_candidate for r in rows] == pytest.approx([1800, 3600, 5400])


def test_every_skips_gaps_between_the_gates_stages() -> None:
    rows = gate_plan(simple("3600 rph", "    10%  for 2h\n    0%   for 1h\n    50%  for 2h\n",
                            gate=f"ctr change > 0%, {HARM}, every 1h")).samples
    assert [r.look.name for r in rows] == ["stage-1 +1h", "stage-1 +2h", "stage-3 +1h", "stage-3"]


def test_a_fixed_horizon_gate_looks_once_at_the_end_of_its_last_stage() -> None:
    rows = gate_plan(simple("3600 rph", "    10%  for 2h\n    50%  for 2h\n",
                            gate=f"ctr change > 0%, {HARM}, fixed horizon")).samples
    assert [r.look.name for r in rows] == ["stage-2"]


def test_matured_analysis_waits_for_the_95th_percentile() -> None:
    # fixed(2h): a request is matured 2h after it was made; 50% for 5h at 3600 rph.
    (row,) = gate_plan(simple("3600 rph", "    50%  for 5h\n", gate=f"ctr change > 0%, {HARM}, analysis matured",
                              labels="fixed(2h)")).samples
    assert row.n_candidate == pytest.approx(1800 * 3)


def test_no_plan_without_traffic() -> None:
    (rollout,) = program_of(sub(BASE, ("  traffic 12000 rps\n", ""))).rollouts()
    gate = rollout.gate("ctr")
    assert isinstance(gate, ir.BusinessGate)
    assert plan_gate(rollout, gate, build_plan(rollout)) is None


# -- traffic as it arrives ---------------------------------------------------------------------------------------


def test_labelled_counts_integrate_the_daily_shape_over_the_stage_hours() -> None:
    # 100 rps, +-30%, peak at 20h, start at 8h: one 6h stage at 50% with exponential(mean 1h) labels.  The
    # labelled count at its end is the integral of rate(u) x 0.5 x F(6h - u), done here by quadrature.
    text = simple("100 rps, diurnal 30%, peak 20h, start 8h", "    50%  for 6h\n", labels="exponential(mean 1h)")
    (row,) = gate_plan(text).samples

    def rate(u: float) -> float:
        return 100 * (1 + 0.3 * math.cos(2 * math.pi * (8 + u / 3600 - 20) / 24))

    expected, _ = integrate.quad(lambda u: rate(u) * 0.5 * (1 - math.exp(-(21600 - u) / 3600)), 0, 21600,
                                 limit=200)
    assert row.n_candidate == pytest.approx(expected, rel=2e-4)
    flat = gate_plan(simple("100 rps", "    50%  for 6h\n", labels="exponential(mean 1h)")).samples[0]
    # A 6h stage from 8h to 14h runs below the mean rate (the trough is at 8h): far fewer labels.
    assert row.n_candidate < 0.8 * flat.n_candidate


def test_without_a_start_the_gate_is_sized_for_its_worst_start() -> None:
    # +-30% swings the labelled count of a 6h stage by about +-28%: the worst start of day (found in closed
    # form) is at least as bad as every whole-hour start.
    base = "    50%  for 6h\n"
    worst = gate_plan(simple("100 rps, diurnal 30%, peak 20h", base, labels="exponential(mean 1h)"))
    assert worst.worst_start and worst.start_hour is not None
    by_start = [gate_plan(simple(f"100 rps, diurnal 30%, peak 20h, start {h}h", base,
                                 labels="exponential(mean 1h)")).samples[-1].n_candidate for h in range(24)]
    flat = gate_plan(simple("100 rps", base, labels="exponential(mean 1h)")).samples[-1].n_candidate
    assert worst.samples[-1].n_candidate <= min(by_start) * (1 + 1e-9)
    assert min(by_start) / flat == pytest.approx(0.72, abs=0.01)
    assert max(by_start) / flat == pytest.approx(1.28, abs=0.01)
    # The worst start is also the lowest: 8h, half a day from the 20h peak, less half the stage and the delay.
    assert abs(worst.start_hour - 4.5) < 1.0


# -- RL501 label delay ------------------------------------------------------------------------------------------


def test_rl501_stage_shorter_than_the_label_delay() -> None:
    text = simple("12000 rps", "    25%  for 4h\n    50%  for 12h\n", labels="fixed(3h)")
    d = one(check(text), "RL501")
    assert d.severity is Severity.WARNING
    # fixed(3h) over a 4h stage: labels of the first hour only, 25%.
    assert d.message == ("gate `ctr` is judged at the end of stage `stage-1` (4h) when only 25% of that stage's "
                         "`ctr` labels have arrived")
    assert at(d) == pos(text, "25%  for 4h")
    assert d.notes == ("`ctr` labels arrive fixed(3h) after the request",)
    assert d.help == ("make `stage-1` last at least 6h, or start the gate where its labels can arrive "
                      "(`gate ctr: ..., from stage-2`)")


def test_rl501_fixed_by_a_longer_stage_or_a_later_start() -> None:
    assert check(simple("12000 rps", "    25%  for 6h\n    50%  for 12h\n", labels="fixed(3h)")) == []
    later = simple("12000 rps", "    25%  for 4h\n    mpr: 50%  for 12h\n", labels="fixed(3h)",
                   gate=f"ctr change > 0%, {HARM}, from mpr")
    assert check(later) == []


def test_rl501_matured_analysis_counts_matured_labels() -> None:
    # exponential(mean 1h): the 95th percentile is 3h (ln 20 = 3.0h): matured 0.25, arrived ~0.75.
    text = simple("12000 rps", "    25%  for 4h\n    50%  for 12h\n", labels="exponential(mean 1h)",
                  gate=f"ctr change > 0%, {HARM}, analysis matured")
    d = one(check(text), "RL501")
    assert d.message.endswith(f"only {(1 - math.log(20) / 4) * 100:.0f}% of that stage's `ctr` labels have matured")
    assert d.notes[1] == "`analysis matured` uses only requests older than the delay's 95th percentile (3h)"
    assert check(sub(text, ("analysis matured", "analysis arrived"))) == []


def test_rl501_reports_the_lognormal_fraction() -> None:
    text = simple("12000 rps", "    1%   for 2h\n    50%  for 12h\n", labels="lognormal(median 2h, p95 8h)")
    d = one(check(text), "RL501")
    expected = stats.LabelDelay.lognormal(2, 8).arrived_fraction(2)
    assert f"only {expected * 100:.0f}% of" in d.message


# -- RL502 power ------------------------------------------------------------------------------------------------


def test_rl502_underpowered_gate() -> None:
    text = simple("20 rps", "    5%   for 6h\n    50%  for 12h\n", gate=f"ctr change > -1% relative, {HARM}",
                  labels="lognormal(median 2h, p95 8h)")
    gp = gate_plan(text)
    d = one(check(text), "RL502")
    assert d.severity is Severity.WARNING
    power = gp.power
    assert d.message == (f"gate `ctr` has {power * 100:.0f}% power to catch a -3% relative change in `ctr` by the "
                         "end of `stage-2`, below the declared 80%")
    assert at(d) == pos(text, "gate ctr:")
    final = gp.samples[-1]
    assert d.notes[0].startswith("the gate's one-sided group-sequential (obrien-fleming) harm test at alpha 5% over "
                                 f"2 looks, with {round(final.n_control):,} control and "
                                 f"{round(final.n_candidate):,} candidate labels by 18h")
    assert d.help.startswith("make `stage-2` (50%) last ")
    assert d.help.endswith("or, if only a larger change matters, size the power there (`power 80% at -5%`)")
    hours = int(d.help.split(" last ")[1].split("h instead of 12h")[0])
    assert check(sub(text, ("50%  for 12h", f"50%  for {hours}h"))) == []
    assert one(check(sub(text, ("50%  for 12h", f"50%  for {hours - 1}h"))), "RL502")


def test_rl502_the_fix_is_exact_to_the_minute() -> None:
    # One 50% stage, labels at once, a fixed test for -2%: with r requests a minute for L minutes each arm has
    # n = rL/2 labels and the log ratio's variance is ((1-p_t)/p_t + (1-p_c)/p_c) / n, so 80% power needs
    # L >= 2 (v_t + v_c) ((z_.95 + z_.8) / log .98)^2 / r.  The help names the smallest whole minute.
    p_c, p_t = 0.042, 0.042 * 0.98
    v = (1 - p_t) / p_t + (1 - p_c) / p_c
    rate = 20_000
    need = 2 * v * ((stats.normal_quantile(0.95) + stats.normal_quantile(0.8)) / math.log(0.98)) ** 2 / rate
    minutes = math.ceil(need)
    assert minutes > 60
    text = simple(f"{rate} rpm", "    50%  for 60m\n", gate="ctr change > 0%, fail if shown harmful, "
                  "power 80% at -2%, fixed")
    d = one(check(text), "RL502")
    assert d.help.startswith(f"make `stage-1` (50%) last {minutes}m instead of 60m")
    assert check(sub(text, ("50%  for 60m", f"50%  for {minutes}m"))) == []
    assert one(check(sub(text, ("50%  for 60m", f"50%  for {minutes - 1}m"))), "RL502")


def test_rl502_names_what_looking_costs() -> None:
    # Pocock spending at 5 equal looks costs power against one fixed test on the same labels.
    text = simple("20000 rph", "    50%  for 5h\n", gate="ctr change > 0%, fail if shown harmful, power 90% at -2%, "
                  "sequential pocock, every 1h")
    gp = gate_plan(text)
    d = one(check(text), "RL502")
    fixed = stats.normal_cdf(abs(math.log(0.98)) * math.sqrt(gp.samples[-1].information)
                             - stats.normal_quantile(0.95))
    assert d.notes[1] == f"a single fixed-horizon test on the same labels would have {fixed * 100:.0f}%: looking 5 " \
                         "times costs power"


def test_rl502_hopeless_gate_says_so() -> None:
    text = simple("1 rps", "    5%   for 1h\n    50%  for 1h\n", gate=f"ctr change > -1% relative, {HARM}")
    d = one(check(text), "RL502")
    assert d.help.startswith("even 64× longer stages fall short")


def test_rl502_non_inferiority_power_is_the_chance_to_pass_an_unchanged_candidate() -> None:
    text = simple("2 rps", "    50%  for 12h\n", gate="ctr change > -5%, pass if shown non-inferior")
    d = one(check(text), "RL502")
    assert "power to pass an unchanged `ctr` (margin -5% relative) by the end of `stage-1`" in d.message
    assert d.help.endswith("or widen the margin if a larger loss is tolerable")


@pytest.mark.parametrize("threshold_s", [61.0, 3000.0, 7200.0, 7201.0, 9000.0, 13 * 3600.0, 100 * 3600.0])
@pytest.mark.parametrize("guess_s", [60.0, 3600.0, 13.5 * 3600.0, 1e7])
def test_shortest_writable_length_is_the_smallest_that_reaches(threshold_s: float, guess_s: float) -> None:
    # Against a brute-force walk over what one writes: whole minutes to 2h, whole hours after; none past the limit.
    from rolloutlang.checks.statistics import shortest_writable

    base, limit = 60.0, 64 * 3600.0
    calls: list[float] = []

    def reaches(length_s: float) -> bool:
        calls.append(length_s)
        return length_s >= threshold_s

    writable = [m * 60.0 for m in range(1, 121)] + [h * 3600.0 for h in range(3, 65)]
    expected = next((w for w in writable if w > base and w >= threshold_s and w <= limit), None)
    assert shortest_writable(reaches, base, guess_s, limit) == expected
    assert len(calls) <= 2 * math.log2(len(writable)) + 2
    if abs(guess_s - threshold_s) < 3600.0 and threshold_s > 2 * 3600.0:
        assert len(calls) <= 4  # a good guess costs a few power computations


def test_stage_waiting_for_approval_is_not_sized() -> None:
    text = simple("1 rps", "    5%   for 1h\n    50%  until approved\n", gate=f"ctr change > -1% relative, {HARM}")
    assert check(text) == []


def test_power_is_monotone_in_the_stage_length() -> None:
    powers = [gate_plan(simple("30 rps", f"    50%  for {h}h\n", labels="lognormal(median 2h, p95 8h)")).power
              for h in (1, 2, 4, 8, 16)]
    assert powers == sorted(powers)
    assert not math.isclose(powers[0], powers[-1])


# -- RL503, RL504, RL505 --------------------------------------------------------------------------------------------


def test_rl503_no_traffic_model() -> None:
    text = sub(BASE, ("  traffic 12000 rps\n", ""))
    d = one(check(text), "RL503")
    assert d.severity is Severity.WARNING
    assert d.message == "no traffic model: the power of gate `ctr` can't be computed"
    assert at(d) == pos(text, "gate ctr:")


def test_rl504_blue_green_has_no_split() -> None:
    text = sub(BASE, ("  canary {\n    5%   for 6h\n    50%  for 12h\n    100%\n  }\n",
                      "  blue-green { preview for 2h, promote manual }\n"))
    d = one(check(text), "RL504")
    assert d.message == ("a blue-green rollout never splits traffic: business gate `ctr` has no stable arm to "
                         "compare with")
    assert at(d) == pos(text, "gate ctr:")


def test_rl504_covers_sample_ratio_and_slo_change_gates() -> None:
    text = sub(BASE, ("  canary {\n    5%   for 6h\n    50%  for 12h\n    100%\n  }\n", "  rolling { }\n"),
               ("  gate errors: error rate < 0.5%   every 5m\n",
                "  gate errors: error rate < 0.5%   every 5m\n  gate split: srm\n"
                "  gate slower: p99 latency change < +10%\n"),
               ("  on ctr fail:    rollback\n", "  on ctr fail:    rollback\n  on split, slower fail: pause\n"))
    found = [d for d in check(text) if d.code == "RL504"]
    assert sorted(d.message for d in found) == sorted(
        f"a rolling update has no stage with a fixed traffic split: {what}" for what in (
            "business gate `ctr` has no stable arm to compare with",
            "sample-ratio gate `split` has no stable arm to compare with",
            "gate `slower` has no stable arm to compare with"))


def test_rl504_gate_starting_at_100_percent() -> None:
    text = simple("12000 rps", "    5%   for 6h\n", gate=f"ctr change > 0%, {HARM}, from full")
    text = sub(text, ("    100%\n", "    full: 100%\n"))
    d = one(check(text), "RL504")
    assert d.message.startswith("no canary stage below 100% evaluates it: business gate `ctr` has no stable arm")
    assert check(sub(text, (", from full", ""))) == []


def test_rl505_effect_outside_the_rate() -> None:
    text = sub(BASE, (f"ctr change > -1% relative, {HARM}", "ctr change > -0.05 absolute, fail if shown harmful, "
                      "power 80% at -0.1"))
    d = one(check(text), "RL505")
    assert d.severity is Severity.ERROR
    assert d.message == ("gate `ctr` reckons with a -0.05 absolute change of `ctr`, from 4.2% to -0.8%, "
                         "outside 0%-100%")
    assert at(d) == pos(text, "gate ctr:")


# -- RL512-RL518 --------------------------------------------------------------------------------------------------


def test_rl512_fixed_horizon_with_looks_is_peeking() -> None:
    text = simple("12000 rps", "    5%   for 6h\n    50%  for 12h\n", gate=f"ctr change > -1%, {HARM}, fixed horizon, "
                  "every 6h")
    d = one(check(text), "RL512")
    assert d.severity is Severity.ERROR
    assert d.message == "gate `ctr` repeats a fixed-horizon test at 3 looks: that is peeking"
    assert at(d) == pos(text, "every 6h")
    assert d.help == ("to look often, use a sequential test (`sequential obrien-fleming`, or `msprt` to look at any "
                      "time); to keep the fixed test, drop `every 6h` so it looks once, at the end of `stage-2`")
    assert check(sub(text, (", every 6h", ""))) == []


def test_rl518_a_gate_decides_at_most_at_400_looks_and_says_where() -> None:
    from rolloutlang.explain import explain_program
    from rolloutlang.stats.gates import MAX_LOOKS, gate_looks
    from rolloutlang.stats.schedule import gate_windows

    # `every 1m` over a 7h stage asks for 420 looks (the last at the stage's end).
    text = simple("12000 rps", "    50%  for 7h\n", gate=f"ctr change > -1% relative, {HARM}, "
                  "sequential obrien-fleming, every 1m")
    d = one(check(text), "RL518")
    assert d.severity is Severity.WARNING
    assert d.message == "gate `ctr` asks for 420 looks; it decides at 400 evenly spread ones, about every 1.1m"
    assert at(d) == pos(text, "every 1m")
    assert d.help == "write the interval it really looks at: `every 2m`"
    gp = gate_plan(text)
    assert gp.thinned_from == 420 and len(gp.samples) == MAX_LOOKS == 400
    (rollout,) = program_of(text).rollouts()
    gate = rollout.gate("ctr")
    assert isinstance(gate, ir.BusinessGate)
    # The kept looks are the rule's looks everywhere (evaluate and the targets read gate_looks): whole minutes of
    # the written schedule, at most two minutes apart, and the last at the end of the stage.
    times = [look.time_s for look in gate_looks(gate, gate_windows(build_plan(rollout), gate))]
    assert [s.look.time_s for s in gp.samples] == times
    assert all(t % 60 == 0 for t in times) and times[-1] == 7 * 3600
    assert max(b - a for a, b in itertools.pairwise(times)) <= 120
    assert "`ctr` asks for 420 looks; it decides at 400 evenly spread ones (RL518)." in explain_program(
        program_of(text))
    assert check(sub(text, ("every 1m", "every 2m"))) == []


def test_rl513_false_rollbacks_over_budget_and_a_shared_alpha_fixes_it() -> None:
    three = sub(BASE, ("  metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)\n",
                       "  metric ctr: binary, baseline 4.2%\n  metric conv: binary, baseline 3%\n"
                       "  metric dwell: continuous, baseline 48, sd 35\n"),
                (f"  gate ctr:    ctr change > -1% relative, {HARM}\n",
                 f"  gate ctr:    ctr change > 0%, {HARM}\n  gate conv:   conv change > 0%, {HARM}\n"
                 f"  gate dwell:  dwell change > 0%, {HARM}\n"),
                ("  on ctr fail:    rollback\n",
                 "  on ctr, conv, dwell fail: rollback\n  budget false rollbacks <= 5%\n"))
    d = one(check(three), "RL513")
    # Each harm test with a zero margin fails an unchanged candidate at its alpha: 1 - 0.95^3.
    assert d.message == ("the plan rolls back a candidate as good as stable 14% of the time, over the budget of "
                         "5%")
    assert d.notes[0] == "`ctr` 5%, `conv` 5%, `dwell` 5% under no change, combined as if independent"
    shared = sub(three, ("budget false rollbacks <= 5%", "budget false rollbacks <= 5% across ctr, conv, dwell"))
    assert check(shared) == []
    gps = [gate_plan(shared, g) for g in ("ctr", "conv", "dwell")]
    assert [gp.spec.alpha for gp in gps] == pytest.approx([0.05 / 3] * 3)
    assert 1 - math.prod(1 - gp.characteristics.false_rollback for gp in gps if gp.characteristics) <= 0.05


def test_rl514_alpha_shared_wrongly() -> None:
    text = sub(BASE, ("  on ctr fail:    rollback\n", "  on ctr fail:    rollback\n"
                      "  budget false rollbacks <= 5% across ctr, errors\n"))
    d = one(check(text), "RL514")
    assert d.message == "`errors` is a slo gate: only business gates share an alpha"
    own = sub(text, (", errors\n", "\n"), (f"{HARM}\n", f"{HARM}, alpha 1%\n"))
    assert one(check(own), "RL514").message == "gate `ctr` gives its own alpha, but the budget also sets it"
    ni = sub(text, (", errors\n", "\n"), (f"ctr change > -1% relative, {HARM}", "ctr change > -1%, pass if shown "
                                          "non-inferior"))
    assert one(check(ni), "RL514").message.startswith("gate `ctr` is a non-inferiority test")


def test_rl515_users_split_without_icc() -> None:
    text = sub(BASE, ("traffic 12000 rps", 'traffic 12000 rps, split by user header "x-user-id", 20 requests per user'))
    d = one(check(text), "RL515")
    assert d.severity is Severity.WARNING
    assert d.message == ("the traffic is split by user, but metric `ctr` does not say how alike a user's requests "
                         "are")
    assert "a design effect of 1.38" in d.notes[0]
    fixed = sub(text, ("baseline 4.2%,", "baseline 4.2%, icc 0.02,"))
    assert check(fixed) == []
    plain, split = gate_plan(BASE), gate_plan(fixed)
    assert split.samples[-1].information == pytest.approx(plain.samples[-1].information / 1.38)


def test_rl516_a_pass_rule_on_a_gate_that_never_passes() -> None:
    text = sub(BASE, ("  on ctr fail:    rollback\n", "  on ctr fail:    rollback\n  on ctr pass:    promote\n"))
    d = one(check(text), "RL516")
    assert d.message == "gate `ctr` can never pass decisively, so this rule never promotes"
    assert at(d) == pos(text, "ctr pass")
    for fix in ("ctr change > -1%, pass if shown non-inferior", f"ctr change > -1%, {HARM}, two-sided",
                f"ctr change > -1%, {HARM}, futility"):
        assert check(sub(text, (f"ctr change > -1% relative, {HARM}", fix))) == []


def test_rl517_min_samples_out_of_reach() -> None:
    text = sub(BASE, ("traffic 12000 rps", "traffic 1200 rps, diurnal 50%"),
               ("  gate errors: error rate < 0.5%   every 5m\n",
                "  gate errors: error rate < 0.5%   every 5m\n  gate slower: p99 latency change < +10%, "
                "min samples 10000, every 5m\n"),
               ("  on ctr fail:    rollback\n", "  on ctr fail:    rollback\n  on slower fail: pause\n"))
    d = one(check(text), "RL517")
    # At the daily low, 600 rps; the smaller arm at 5% is 30 rps: 9,000 requests every 5m.
    assert d.message == ("gate `slower` needs 10,000 requests a window, but the smaller arm gets about 9,000 every "
                         "5m in `stage-1` at the daily low")
    assert d.help.startswith("measure over longer windows (`every 10m`)")
    assert check(sub(text, ("min samples 10000, every 5m", "min samples 10000, every 10m"))) == []


def test_plan_false_rollbacks_of_a_sample_ratio_gate_match_the_repeated_test_rate() -> None:
    # One 50% stage of 20h, looked at every hour at alpha 5% (two-sided): the Armitage repeated-test rate at
    # K = 20, 0.2479 (statistics reference 1.5).
    from rolloutlang.stats.gates import plan_false_rollbacks

    text = simple("100 rps", "    50%  for 20h\n")
    text = sub(text, ("  gate errors: error rate < 0.5%   every 5m\n",
                      "  gate errors: error rate < 0.5%   every 5m\n  gate split: srm, alpha 5%\n"),
               ("  on ctr fail:    rollback\n", "  on ctr, split fail:    rollback\n"))
    (rollout,) = program_of(text).rollouts()
    plan = build_plan(rollout)
    frr = plan_false_rollbacks(rollout, plan, {})
    assert dict(frr.per_gate)["split"] == pytest.approx(0.2479, abs=5e-4)
    assert frr.unmodelled == ("errors",)


# -- RL510, RL511 references ---------------------------------------------------------------------------------------


def test_rl510_slo_gate_without_metrics_source() -> None:
    text = sub(BASE, ('  metrics prometheus "http://prometheus.monitoring:9090"\n', ""))
    d = one(check(text), "RL510")
    assert d.severity is Severity.ERROR
    assert d.message == "gate `errors` reads metrics but the rollout has no metrics source"


def test_rl511_unused_label_metric() -> None:
    text = sub(BASE, (f"  gate ctr:    ctr change > -1% relative, {HARM}\n", ""), ("  on ctr fail:    rollback\n", ""))
    d = one(check(text), "RL511")
    assert d.severity is Severity.WARNING
    assert d.message == "metric `ctr` is not used by any gate"
    assert at(d) == pos(text, "metric ctr:")


# -- the examples and the import budget ------------------------------------------------------------------------------

RANKER = ROOT / "examples" / "ranker-v2.rollout"


def test_ranker_example_powers_and_passes_strict() -> None:
    program = load(RANKER, ROOT)
    assert program.diagnostics == []
    assert [d for d in run_checks(program) if rl4xx_rl5xx_rl65x(d.code)] == []
    (rollout,) = program.rollouts()
    gate = rollout.gate("ctr")
    assert isinstance(gate, ir.BusinessGate)
    gp = plan_gate(rollout, gate, build_plan(rollout))
    assert gp is not None
    assert [s.look.name for s in gp.samples] == ["ramp", "stage-3", "stage-4"]
    # 12000 rps; ramp 5% for 6h, then 25% and 50% for 12h each, after a 24h shadow.
    assert [s.look.time_s / 3600 for s in gp.samples] == [32, 44, 56]
    assert gp.power > 0.999


def _modules_after_check(spec: Path) -> set[str]:
    code = (
        "import sys\n"
        "from rolloutlang.cli import main\n"
        "try:\n"
        f"    main(['check', {str(spec)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(m for m in ('scipy', 'numpy') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return set(out.stdout.split())


def test_check_without_business_gates_never_imports_scipy_or_numpy(tmp_path: Path) -> None:
    no_business = sub(BASE, (f"  gate ctr:    ctr change > -1% relative, {HARM}\n", ""),
                      ("  on ctr fail:    rollback\n", ""),
                      ("  metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)\n", ""))
    spec = tmp_path / "spec.rollout"
    spec.write_text(no_business)
    assert _modules_after_check(spec) == set()
    # The same spec with its business gate loads the statistics kernel, which needs numpy (the sequential
    # recursion) but not scipy: the probe can see the difference.
    spec.write_text(BASE)
    assert _modules_after_check(spec) == {"numpy"}


def test_load_text_gives_the_same_plan_as_a_file() -> None:
    assert load_text(BASE, "spec.rollout").diagnostics == []


def test_rl506_a_look_before_any_label_matures_pauses_and_the_help_names_the_interval_that_clears_it() -> None:
    """ctr labels mature 8h after the request (the delay's p95): looks every 4h see nothing at 4h and 8h."""
    long = sub(BASE, ("5%   for 6h", "5%   for 24h"), ("50%  for 12h", "50%  for 24h"))
    early = sub(long, (HARM, HARM + ", analysis matured, every 4h"))
    d = one(check(early), "RL506")
    assert "sees no matured `ctr` labels in an arm at 2 of its 12 looks" in d.message
    assert "(`every 9h` or longer)" in (d.help or "")
    assert at(d) == pos(early, "gate ctr")
    assert "RL506" not in [x.code for x in check(sub(early, ("every 4h", "every 9h")))]
    assert "RL506" not in [x.code for x in check(sub(long, (HARM, HARM + ", every 4h")))]  # arrived labels count
