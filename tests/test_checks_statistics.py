"""Statistics checks RL501-RL505, references RL510-RL511, and the power table.

Power figures are cross-checked against statsmodels (test-only dependency):
``power_proportions_2indep`` for binary metrics and ``NormalIndPower`` for
continuous ones, within 0.5 percentage points.  Reference numbers are from
shared/design/statistics-reference.md, sections 1.3, 1.4 and 2.4.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from rolloutlang import ir, stats
from rolloutlang.checks import run_checks
from rolloutlang.checks.statistics import PowerRow, power_table
from rolloutlang.diagnostics import Diagnostic, Severity
from rolloutlang.loader import load, load_text
from tests import helpers
from tests.helpers import A, B, at, one, pos, program_of, rl4xx_rl5xx_rl65x

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.005  # the acceptance bound: 0.5 percentage points

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
  gate ctr:    ctr change > -1% relative
  on errors fail: rollback now
  on ctr fail:    rollback
}}
"""


def check(text: str, root: Path | None = None) -> list[Diagnostic]:
    """The findings of the artifact, compatibility, statistics and privacy checks only."""
    return helpers.check(text, keep=rl4xx_rl5xx_rl65x, root=root)


def table(text: str) -> list[PowerRow]:
    (rollout,) = program_of(text).rollouts()
    return power_table(rollout)


def sub(text: str, *pairs: tuple[str, str]) -> str:
    """Apply each (old, new) replacement once, in order; every `old` must be there."""
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def simple(rate: str, canary: str, gate: str = "ctr change > -2% relative", labels: str = "immediate",
           metric: str = "binary, baseline 4.2%") -> str:
    """A spec whose samples are easy to compute by hand."""
    return sub(BASE, ("traffic 12000 rps", f"traffic {rate}"),
               ("binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)", f"{metric}, labels {labels}"),
               ("    5%   for 6h\n    50%  for 12h\n", canary),
               ("ctr change > -1% relative", gate))


def statsmodels_power(row: PowerRow, p_control: float, p_treatment: float, alpha: float = 0.05,
                      alternative: str = "two-sided") -> float:
    from statsmodels.stats.proportion import power_proportions_2indep

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = power_proportions_2indep(
            # The gate's stratified analysis has the information of the pooled sample times `efficiency`.
            diff=p_treatment - p_control, prop2=p_control, nobs1=row.n_candidate_labelled * row.efficiency,
            ratio=row.n_control_labelled / row.n_candidate_labelled, alpha=alpha, alternative=alternative)
    return float(result.power)


def test_base_spec_is_clean() -> None:
    assert check(BASE) == []


# -- the reference example (statistics-reference.md 1.4) -------------------------------------------------


def test_reference_example_886582_per_arm_has_power_80() -> None:
    # 1,773,164 requests in one hour at 50%: 886,582 per arm, labels immediate.
    text = simple("1773164 rph", "    50%  for 1h\n")
    (row,) = table(text)
    assert row.n_control_labelled == pytest.approx(886_582)
    assert row.n_candidate_labelled == pytest.approx(886_582)
    assert row.power == pytest.approx(0.80, abs=1e-4)
    assert row.power == pytest.approx(statsmodels_power(row, 0.042, 0.042 * 0.98), abs=TOLERANCE)
    assert check(text) == []  # 0.800001 meets the declared 80%


def test_one_percent_fewer_labels_is_underpowered_and_the_fix_is_exact() -> None:
    text = simple("1755432 rph", "    50%  for 1h\n")
    d = one(check(text), "RL502")
    assert d.help.startswith("make `stage-1` (50%) last 61m instead of 60m")
    assert check(sub(text, ("50%  for 1h", "50%  for 61m"))) == []


# -- power agrees with statsmodels ---------------------------------------------------------------------------

SETTINGS = [
    # (rate, canary, gate, labels)
    ("1000000 rph", "    50%  for 1h\n", "ctr change > -2% relative", "immediate"),
    ("300 rps", "    1%   for 2h\n    5%   for 6h\n    25%  for 12h\n", "ctr change > -3% relative",
     "lognormal(median 2h, p95 8h)"),
    ("50 rps", "    10%  for 1d\n", "ctr change > -5% relative, one-sided", "exponential(mean 1h)"),
    ("200 rps", "    20%  for 3h\n    40%  for 3h\n", "ctr change > -0.2% absolute, alpha 1%", "fixed(2h)"),
    ("20 rps", "    5%   for 6h\n    50%  for 12h\n", "ctr change > -1% relative, every 2h",
     "lognormal(median 2h, p95 8h)"),
    ("100 rps", "    5%   for 6h\n    50%  for 12h\n", "ctr change > -1% relative, min effect +10%",
     "lognormal(median 30m, p95 4h)"),
]


@pytest.mark.parametrize(("rate", "canary", "gate", "labels"), SETTINGS)
def test_binary_power_matches_statsmodels(rate: str, canary: str, gate: str, labels: str) -> None:
    text = simple(rate, canary, gate, labels)
    (rollout,) = program_of(text).rollouts()
    g = rollout.gate("ctr")
    rows = table(text)
    assert rows
    assert isinstance(g, ir.BusinessGate)
    p_t = 0.042 * (1 + g.effect) if g.relative else 0.042 + g.effect
    alternative = "two-sided" if g.sided == "two" else ("smaller" if p_t < 0.042 else "larger")
    for row in rows:
        if row.n_candidate_labelled == 0:
            continue
        expected = statsmodels_power(row, 0.042, p_t, g.alpha, alternative)
        assert abs(row.power - expected) < TOLERANCE, (row, expected)


def test_continuous_power_matches_statsmodels() -> None:
    from statsmodels.stats.power import NormalIndPower

    text = simple("30 rps", "    10%  for 6h\n    50%  for 12h\n", "revenue change > -2% relative",
                  "exponential(mean 1h)", metric="continuous, baseline 1.3, sd 4")
    text = text.replace("metric ctr:", "metric revenue:")
    rows = table(text)
    assert len(rows) == 2
    for row in rows:
        expected = NormalIndPower().power(effect_size=-0.02 * 1.3 / 4,
                                          nobs1=row.n_candidate_labelled * row.efficiency,
                                          ratio=row.n_control_labelled / row.n_candidate_labelled, alpha=0.05,
                                          alternative="two-sided")
        assert abs(row.power - expected) < TOLERANCE


# -- what a look sees ------------------------------------------------------------------------------------------


def test_labelled_sample_counts_late_labels_of_earlier_stages() -> None:
    # fixed(1h) labels, 3600 rph: stage 1 at 10% for 2h, stage 2 at 50% for 2h.
    rows = table(simple("3600 rph", "    10%  for 2h\n    50%  for 2h\n", labels="fixed(1h)"))
    assert [(r.look, r.time_s) for r in rows] == [("stage-1", 7200.0), ("stage-2", 14400.0)]
    # At 2h only the first hour's requests have labels.
    assert rows[0].n_candidate_labelled == pytest.approx(360)
    assert rows[0].n_control_labelled == pytest.approx(3240)
    # At 4h: all of stage 1 (labels arrived during stage 2) plus the first hour of stage 2.
    assert rows[1].n_candidate_labelled == pytest.approx(720 + 1800)
    assert rows[1].n_control_labelled == pytest.approx(6480 + 1800)
    # Information adds over the two stages (strata), it does not pool them.
    def info(c: float, t: float) -> float:
        return c * t / (c + t)

    first = info(3240, 360)
    second = info(6480, 720) + info(1800, 1800)
    assert rows[0].efficiency == pytest.approx(1.0)
    assert rows[1].efficiency == pytest.approx(second / info(6480 + 1800, 720 + 1800))
    assert rows[1].efficiency < 0.9
    assert rows[0].information_fraction == pytest.approx(first / second)
    assert rows[1].information_fraction == 1.0


def test_lognormal_arrivals_match_the_reference_fractions() -> None:
    # statistics-reference.md 2.4: LogNormal(median 2h, sigma 1), constant traffic, look at 24h: 0.866.
    delay = "lognormal(median 2h, sigma 1)"
    (row,) = table(simple("3600 rph", "    50%  for 24h\n", labels=delay))
    assert row.n_candidate_labelled / (1800 * 24) == pytest.approx(0.866, abs=5e-4)


def test_shadow_phase_shifts_the_clock_but_adds_no_labels() -> None:
    text = simple("3600 rph", "    50%  for 2h\n")
    shadowed = sub(text, ("  canary {", "  shadow 100% for 24h\n  canary {"))
    (plain,) = table(text)
    (row,) = table(shadowed)
    assert row.time_s == plain.time_s + 86400
    assert row.n_candidate_labelled == plain.n_candidate_labelled == 3600


def test_every_gives_equal_looks_and_from_skips_earlier_stages() -> None:
    rows = table(simple("3600 rph", "    10%  for 2h\n    mpr: 50%  for 3h\n",
                        gate="ctr change > -2% relative, every 1h, from mpr"))
    assert [r.look for r in rows] == ["mpr +1h", "mpr +2h", "mpr"]
    assert [r.time_s for r in rows] == [3 * 3600.0, 4 * 3600.0, 5 * 3600.0]
    assert [r.n_candidate_labelled for r in rows] == pytest.approx([1800, 3600, 5400])
    assert [r.information_fraction for r in rows] == pytest.approx([1 / 3, 2 / 3, 1])


def test_every_skips_gaps_between_the_gates_stages_and_thins_long_runs() -> None:
    rows = table(simple("3600 rph", "    10%  for 2h\n    0%   for 1h\n    50%  for 2h\n",
                        gate="ctr change > -2% relative, every 1h"))
    assert [r.look for r in rows] == ["stage-1 +1h", "stage-1 +2h", "stage-3 +1h", "stage-3"]
    many = table(simple("3600 rph", "    10%  for 30d\n", gate="ctr change > -2% relative, every 1m"))
    assert len(many) == 500
    assert many[-1].time_s == 30 * 86400
    assert [r.time_s for r in many] == sorted({r.time_s for r in many})


def test_matured_analysis_waits_for_the_95th_percentile() -> None:
    # fixed(2h): a request is matured 2h after it was made; 50% for 5h at 3600 rph.
    (row,) = table(simple("3600 rph", "    50%  for 5h\n", gate="ctr change > -2% relative, analysis matured",
                          labels="fixed(2h)"))
    assert row.n_candidate_labelled == pytest.approx(1800 * 3)


def test_power_table_is_empty_without_traffic_or_business_gates() -> None:
    assert table(sub(BASE, ("  traffic 12000 rps\n", ""))) == []
    no_business = sub(BASE, ("  gate ctr:    ctr change > -1% relative\n", ""), ("  on ctr fail:    rollback\n", ""))
    assert table(no_business) == []


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
    # The 12h stage sees enough labels, so the help names it.
    assert d.help == ("make `stage-1` last at least 6h, or start the gate where its labels can arrive "
                      "(`gate ctr: ..., from stage-2`)")


def test_rl501_fixed_by_a_longer_stage_or_a_later_start() -> None:
    assert check(simple("12000 rps", "    25%  for 6h\n    50%  for 12h\n", labels="fixed(3h)")) == []
    later = simple("12000 rps", "    25%  for 4h\n    mpr: 50%  for 12h\n", labels="fixed(3h)",
                   gate="ctr change > -2% relative, from mpr")
    assert check(later) == []


def test_rl501_matured_analysis_counts_matured_labels() -> None:
    # fixed(3h): a 4h stage has 1h of matured requests by its end, 25%, the same as arrived for a fixed delay;
    # with exponential(mean 1h) the 95th percentile is 3h (ln 20 = 3.0h): matured 0.25, arrived ~0.75.
    text = simple("12000 rps", "    25%  for 4h\n    50%  for 12h\n", labels="exponential(mean 1h)",
                  gate="ctr change > -2% relative, analysis matured")
    d = one(check(text), "RL501")
    assert d.message.endswith(f"only {(1 - math.log(20) / 4) * 100:.0f}% of that stage's `ctr` labels have matured")
    assert d.notes[1] == "`analysis matured` uses only requests older than the delay's 95th percentile (3h)"
    assert check(sub(text, ("analysis matured", "analysis arrived"))) == []


def test_rl501_sizes_stages_after_an_approval_by_their_own_length() -> None:
    text = simple("12000 rps", "    5%   until approved\n    25%  for 1h\n    50%  for 12h\n", labels="fixed(3h)")
    d = one(check(text), "RL501")
    assert d.message.startswith("gate `ctr` is judged at the end of stage `stage-2` (1h) when only 0%")


def test_rl501_reports_the_lognormal_fraction() -> None:
    text = simple("12000 rps", "    1%   for 2h\n    50%  for 12h\n", labels="lognormal(median 2h, p95 8h)")
    d = one(check(text), "RL501")
    expected = stats.LabelDelay.lognormal(2, 8).arrived_fraction(2)
    assert f"only {expected * 100:.0f}% of" in d.message
    assert d.label == f"{expected * 100:.0f}% of labels by its end"


# -- RL502 power ------------------------------------------------------------------------------------------------


def test_rl502_underpowered_gate() -> None:
    text = simple("20 rps", "    5%   for 6h\n    50%  for 12h\n", gate="ctr change > -1% relative",
                  labels="lognormal(median 2h, p95 8h)")
    rows = table(text)
    final = rows[-1]
    d = one(check(text), "RL502")
    assert d.severity is Severity.WARNING
    assert final.sequential_power is not None and final.sequential_power <= final.power + 1e-6
    assert d.message == (f"gate `ctr` has {final.sequential_power * 100:.0f}% power to detect a -1% relative change "
                         "in `ctr` by the end of `stage-2`, below the declared 80%")
    assert at(d) == pos(text, "gate ctr:")
    # The first look has almost no information, so the design detects what a fixed test would: no
    # comparison and no inflation factor (R < 1.005) clutter the notes.
    assert d.notes[0] == ("the gate's group-sequential (obrien-fleming) test over 2 looks detects it by then "
                          f"with probability {final.sequential_power * 100:.0f}%")
    assert d.notes[1].startswith("fixed-horizon power of a two-sided two-proportion z-test at alpha 5%, with "
                                 f"{round(final.n_control_labelled):,} control and "
                                 f"{round(final.n_candidate_labelled):,} candidate labels by 18h")
    assert len(d.notes) == 2
    assert d.help.startswith("make `stage-2` (50%) last ")
    assert d.help.endswith("or, if only a larger change matters, say so (`min effect -2%`)")
    hours = int(d.help.split(" last ")[1].split("h instead of 12h")[0])
    assert check(sub(text, ("50%  for 12h", f"50%  for {hours}h"))) == []
    assert one(check(sub(text, ("50%  for 12h", f"50%  for {hours - 1}h"))), "RL502")


@pytest.mark.parametrize(("spending", "classical"), [("pocock", 1.2284), ("obrien-fleming", 1.0284)])
def test_rl502_names_the_sequential_inflation_factor(spending: stats.Spending, classical: float) -> None:
    # Five equal looks (immediate labels, one stage, every 1h): R of the Lan-DeMets spending design at those
    # fractions, two-sided alpha 5%, power 80%.  The classical Pocock and OBF designs of
    # statistics-reference.md 1.3 need 1.2284 and 1.0284; the spending versions need a little less.
    text = simple("20000 rph", "    50%  for 5h\n", gate=f"ctr change > -2% relative, sequential {spending}, every 1h")
    rows = table(text)
    fractions = [r.information_fraction for r in rows]
    assert fractions == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    bounds = stats.spending_bounds(fractions, 0.05, spending, one_sided=False)
    r = stats.inflation_factor(bounds, fractions, 0.05, 0.8, one_sided=False)
    assert 1.0 < r < classical
    assert classical - r < 0.03
    d = one(check(text), "RL502")
    assert d.notes[-1] == f"the sequential design needs ~{r:.2f}× the labels of a fixed-horizon test"


@pytest.mark.parametrize(("spending", "reference"), [("pocock", 0.7090), ("obrien-fleming", 0.7888)])
def test_sequential_power_is_the_designs_detection_probability(spending: stats.Spending, reference: float) -> None:
    # Five equal looks with the information a fixed-horizon test needs for 80% power: the design detects less.
    # statistics-reference.md 1.3, "power if n_max = n_fix", K=5, for the classical designs; the Lan-DeMets
    # spending versions used here are within 0.01 of them.
    text = simple("20000 rph", "    50%  for 5h\n", gate=f"ctr change > -2% relative, sequential {spending}, every 1h")
    rows = table(text)
    fractions = [r.information_fraction for r in rows]
    drift = stats.normal_quantile(0.975) + stats.normal_quantile(rows[-1].power)
    bounds = stats.spending_bounds(fractions, 0.05, spending, one_sided=False)
    by_look = stats.crossing_probabilities(bounds, fractions, drift).upper
    expected = [sum(by_look[: i + 1]) for i in range(len(by_look))]
    assert [r.sequential_power for r in rows] == pytest.approx(expected, abs=1e-9)
    # Rescale to exactly 80% fixed-horizon power to compare with the reference table.
    at_80 = stats.crossing_probabilities(bounds, fractions, stats.normal_quantile(0.975) + stats.normal_quantile(0.8))
    assert abs(sum(at_80.upper) - reference) < 0.01


def test_fixed_and_msprt_gates_have_no_sequential_figure() -> None:
    text = simple("20000 rph", "    50%  for 5h\n", gate="ctr change > -2% relative, fixed horizon, every 1h")
    assert all(r.sequential_power is None for r in table(text))


def test_rl502_fixed_horizon_and_power_option() -> None:
    text = simple("20000 rph", "    50%  for 5h\n", gate="ctr change > -2% relative, fixed horizon, power 10%")
    assert check(text) == []
    d = one(check(sub(text, ("power 10%", "power 90%"))), "RL502")
    assert len(d.notes) == 1 and "below the declared 90%" in d.message


def test_rl502_hopeless_gate_says_so() -> None:
    text = simple("1 rps", "    5%   for 1h\n    50%  for 1h\n", gate="ctr change > -1% relative")
    d = one(check(text), "RL502")
    assert d.help.startswith("even 64× longer stages fall short")


def test_stage_waiting_for_approval_is_not_sized() -> None:
    text = simple("1 rps", "    5%   for 1h\n    50%  until approved\n", gate="ctr change > -1% relative")
    assert check(text) == []


# -- RL503, RL504, RL505 --------------------------------------------------------------------------------------------


def test_rl503_no_traffic_model() -> None:
    text = sub(BASE, ("  traffic 12000 rps\n", ""))
    d = one(check(text), "RL503")
    assert d.severity is Severity.WARNING
    assert d.message == "no traffic model: the power of gate `ctr` can't be computed"
    assert at(d) == pos(text, "gate ctr:")
    assert "`traffic 12000 rps" in d.help


def test_rl504_blue_green_has_no_split() -> None:
    text = sub(BASE, ("  canary {\n    5%   for 6h\n    50%  for 12h\n    100%\n  }\n",
                      "  blue-green { preview for 2h, promote manual }\n"))
    d = one(check(text), "RL504")
    assert d.message == ("a blue-green rollout never splits traffic: business gate `ctr` has no stable arm to "
                         "compare with, so its power can't be computed")
    assert at(d) == pos(text, "gate ctr:")


def test_rl504_gate_starting_at_100_percent() -> None:
    text = simple("12000 rps", "    5%   for 6h\n", gate="ctr change > -2% relative, from full")
    text = sub(text, ("    100%\n", "    full: 100%\n"))
    d = one(check(text), "RL504")
    assert d.message.startswith("no canary stage below 100% evaluates it: business gate `ctr` has no stable arm")
    assert check(sub(text, (", from full", ""))) == []


def test_rl505_effect_outside_the_rate() -> None:
    text = sub(BASE, ("ctr change > -1% relative", "ctr change > -0.05 absolute"))
    d = one(check(text), "RL505")
    assert d.severity is Severity.ERROR
    assert d.message == ("gate `ctr` asks to detect a -0.05 absolute change of `ctr`, from 4.2% to -0.8%, "
                         "outside 0%-100%")
    assert at(d) == pos(text, "gate ctr:")
    assert check(sub(BASE, ("ctr change > -1% relative", "ctr change > -0.005 absolute"))) == []


# -- RL510, RL511 references ---------------------------------------------------------------------------------------


def test_rl510_slo_gate_without_metrics_source() -> None:
    text = sub(BASE, ('  metrics prometheus "http://prometheus.monitoring:9090"\n', ""))
    d = one(check(text), "RL510")
    assert d.severity is Severity.ERROR
    assert d.message == "gate `errors` reads metrics but the rollout has no metrics source"
    assert at(d) == pos(text, "gate errors:")
    assert 'metrics prometheus "' in d.help


def test_rl510_points_at_the_use_of_imported_gates(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "slo.rollout").write_text(
        "gates slo-defaults {\n  gate latency: p99 latency < 300ms every 1m\n  gate errs: error rate < 1%\n}\n")
    text = sub(BASE, ('  metrics prometheus "http://prometheus.monitoring:9090"\n', ""),
               ("  gate errors: error rate < 0.5%   every 5m\n", "  use gates slo-defaults\n"),
               ("on errors fail", "on errs fail"))
    text = 'import "policies/slo.rollout"\n' + text
    d = one(check(text, tmp_path), "RL510")
    assert d.message == "gates `latency` and `errs` read metrics but the rollout has no metrics source"
    assert at(d) == pos(text, "use gates")


def test_rl511_unused_label_metric() -> None:
    text = sub(BASE, ("  gate ctr:    ctr change > -1% relative\n", ""), ("  on ctr fail:    rollback\n", ""))
    d = one(check(text), "RL511")
    assert d.severity is Severity.WARNING
    assert d.message == "metric `ctr` is not used by any gate"
    assert at(d) == pos(text, "metric ctr:")


# -- the example and the import budget ---------------------------------------------------------------------------

RANKER = ROOT / "examples" / "ranker-v2.rollout"
# Proposed in the report: the ctr gate's labels (median 2h) are mostly missing at the end of the 2h 1% stage,
# so the gate starts at the 5% stage.  Applied here until the example itself is changed.
OLD_STAGES = "    1%   for 2h\n    5%   for 6h\n"
NEW_STAGES = "    1%   for 2h\n    ramp: 5%   for 6h\n"
OLD_GATE = "power 80%\n"
NEW_GATE = "power 80%, from ramp\n"


def ranker_text() -> str:
    text = RANKER.read_text()
    if OLD_STAGES in text:
        text = text.replace(OLD_STAGES, NEW_STAGES, 1).replace(OLD_GATE, NEW_GATE, 1)
    return text


def test_ranker_example_powers_and_passes_strict() -> None:
    program = load_text(ranker_text(), "examples/ranker-v2.rollout", ROOT)
    assert program.diagnostics == []
    assert [d for d in run_checks(program) if rl4xx_rl5xx_rl65x(d.code)] == []
    rows = power_table(program.rollouts()[0])
    assert [r.look for r in rows] == ["ramp", "stage-3", "stage-4"]
    # 12000 rps; ramp 5% for 6h, then 25% and 50% for 12h each, after a 24h shadow.
    assert [r.time_s / 3600 for r in rows] == [32, 44, 56]
    assert rows[-1].power > 0.999


def test_ranker_example_as_written_warns_only_about_its_first_stage() -> None:
    diags = [d for d in run_checks(load(RANKER)) if rl4xx_rl5xx_rl65x(d.code)]
    if RANKER.read_text().count(OLD_STAGES):
        d = one(diags, "RL501")
        assert d.message.startswith("gate `ctr` is judged at the end of stage `stage-1` (2h) when only 22%")
        assert [x.code for x in diags] == ["RL501"]
    else:
        assert diags == []


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
    no_business = sub(BASE, ("  gate ctr:    ctr change > -1% relative\n", ""), ("  on ctr fail:    rollback\n", ""),
                      ("  metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)\n", ""))
    spec = tmp_path / "spec.rollout"
    spec.write_text(no_business)
    assert _modules_after_check(spec) == set()
    # The same spec with its business gate loads the statistics kernel, which needs numpy (the sequential
    # recursion) but not scipy: the probe can see the difference.
    spec.write_text(BASE)
    assert _modules_after_check(spec) == {"numpy"}


def test_power_is_monotone_in_the_stage_length() -> None:
    powers = []
    for hours in (1, 2, 4, 8, 16):
        (row,) = table(simple("100000 rph", f"    50%  for {hours}h\n", labels="lognormal(median 2h, p95 8h)"))
        powers.append(row.power)
    assert powers == sorted(powers)
    assert not math.isclose(powers[0], powers[-1])
