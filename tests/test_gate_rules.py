"""Every business-gate rule against a seeded simulation of the same rule on simulated data.

For each test kind (fixed horizon, group-sequential with each spending
function and with futility, mSPRT, Bayesian) and each hypothesis, the
operating characteristics the checks compute exactly (crossing probabilities
of the gate's boundaries) must match what happens to simulated rollouts: per
stage and per arm, binomial label counts arriving between looks, the
stratified log-ratio estimate and its Wald variance computed from those counts
(an implementation independent of ``rolloutlang.stats.estimates``), and the
gate's planned boundaries applied look by look.  Type-I error is checked at the
margin, power at the sized effect, within 4 Monte Carlo standard errors (plus
0.005 for the normal approximation).  The explain table's "power by here" is
checked the same way for every business gate of every example.

The simulations are vectorised numpy over 4,000 paths and take well under a
second each.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rolloutlang import ir, stats
from rolloutlang.checks.statistics import pct
from rolloutlang.explain import explain_program
from rolloutlang.loader import load
from rolloutlang.plan import build_plan
from rolloutlang.stats.gates import GatePlan, plan_gate
from tests.helpers import A, B, program_of

ROOT = Path(__file__).resolve().parent.parent
PATHS = 4000


def simulate(gp: GatePlan | GatePlanBounds, change: float, paths: int = PATHS,
             seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative P(failed by look k), P(promoted by look k) at the kept looks, for a true change (IR scale).

    Binary metrics only: labels arrive in increments between looks, each a
    Binomial(new labels, rate) per stage and arm.
    """
    assert gp.metric.kind == "binary" and gp.characteristics is not None
    rng = np.random.default_rng(seed)
    p_c = gp.metric.baseline
    p_t = p_c * (1.0 + change) if gp.gate.relative else p_c + change
    bounds = gp.characteristics.bounds
    looks = [gp.samples[i] for i in gp.kept]
    n_strata = len(looks[-1].strata)
    counts = np.array([[s for pair in look.strata for s in pair] for look in looks])  # (K, 2S): c0, t0, c1, t1...
    n = np.floor(counts)
    rates = np.tile([p_c, p_t], n_strata)
    previous = np.zeros(2 * n_strata)
    successes = np.zeros((paths, 2 * n_strata))
    alive = np.ones(paths, dtype=bool)
    failed = np.zeros(len(looks))
    promoted = np.zeros(len(looks))
    margin = stats.gates.to_test_scale(gp.gate.margin, gp.gate.relative)
    direction = 1.0 if gp.gate.higher_is_better else -1.0
    for k in range(len(looks)):
        new = np.maximum(n[k] - previous, 0).astype(np.int64)
        successes += rng.binomial(new, rates, size=(paths, 2 * n_strata))
        previous = np.maximum(previous, n[k])
        weights = np.zeros(paths)
        weighted = np.zeros(paths)
        for s in range(n_strata):
            nc, nt = n[k, 2 * s], n[k, 2 * s + 1]
            if nc < 2 or nt < 2:
                continue
            pc = successes[:, 2 * s] / nc
            pt = successes[:, 2 * s + 1] / nt
            ok = (pc > 0) & (pt > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                if gp.gate.relative:
                    d = np.log(pt / pc)
                    v = (1 - pt) / (nt * pt) + (1 - pc) / (nc * pc)
                else:
                    d = pt - pc
                    v = pt * (1 - pt) / nt + pc * (1 - pc) / nc
            ok &= v > 0
            weights += np.where(ok, 1.0 / np.where(ok, v, 1.0), 0.0)
            weighted += np.where(ok, d / np.where(ok, v, 1.0), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = direction * (weighted / weights - margin) * np.sqrt(weights)
        fail = alive & (z <= bounds.lower[k])
        promote = alive & ~fail & (z >= bounds.upper[k])
        failed[k] = fail.sum()
        promoted[k] = promote.sum()
        alive &= ~(fail | promote)
    return np.cumsum(failed) / paths, np.cumsum(promoted) / paths


def tolerance(p: float, paths: int = PATHS) -> float:
    return 4.0 * math.sqrt(max(p * (1.0 - p), 0.002) / paths) + 0.005


SPEC = f"""rollout r {{
  service s
  model stable    m 1.0.0 @ sha256:{A}
  model candidate m 1.1.0 @ sha256:{B}
  signature {{ in x: int64  out y: float32 }}
  traffic RATE
  metrics prometheus "http://p:9090"
  metric ctr: binary, baseline 4.2%, labels exponential(mean 1h)
  canary {{
    5%   for 6h
    mpr: 50%  for 12h
    100%
  }}
  gate errors: error rate < 0.5%   every 5m
  gate ctr:    GATE
  on errors fail: rollback now
  on ctr fail:    rollback
}}
"""


def gate_plan(gate: str, rate: str = "5 rps") -> GatePlan:
    (rollout,) = program_of(SPEC.replace("RATE", rate).replace("GATE", gate)).rollouts()
    g = rollout.gate("ctr")
    assert isinstance(g, ir.BusinessGate)
    gp = plan_gate(rollout, g, build_plan(rollout))
    assert gp is not None and gp.characteristics is not None
    return gp


RULES = [
    # (gate, traffic): each sized so its power is in the informative middle
    ("ctr change > -1%, fail if shown harmful, power 80% at -6%, fixed horizon", "5 rps"),
    ("ctr change > -1%, fail if shown harmful, power 80% at -6%, every 3h", "5 rps"),
    ("ctr change > -1%, fail if shown harmful, power 80% at -6%, sequential pocock, every 3h", "5 rps"),
    ("ctr change > -1%, fail if shown harmful, power 80% at -6%, sequential hsd(-2), every 2h", "5 rps"),
    ("ctr change > -1%, fail if shown harmful, power 80% at -6%, futility, every 3h", "5 rps"),
    ("ctr change > -1%, fail if shown harmful, power 80% at -6%, two-sided, every 3h", "5 rps"),
    ("ctr change > -1%, fail if shown harmful, power 80% at -6%, msprt, every 2h", "8 rps"),
    ("ctr change > -1%, fail if shown harmful, power 80% at -6%, msprt, two-sided, tau 10%, every 2h", "8 rps"),
    ("ctr change > -1%, fail if shown harmful, power 80% at -6%, bayesian, every 2h", "5 rps"),
    ("ctr change > -5%, pass if shown non-inferior, fixed", "5 rps"),
    ("ctr change > -5%, pass if shown non-inferior, every 3h", "5 rps"),
    ("ctr change > -5%, pass if shown non-inferior, sequential pocock, every 3h", "5 rps"),
    ("ctr change > -5%, pass if shown non-inferior, msprt, every 3h", "8 rps"),
    ("ctr change > -5%, pass if shown non-inferior, bayesian, every 3h", "5 rps"),
    ("ctr change < +0.3% absolute, fail if shown harmful, power 80% at +0.6%, sequential pocock, every 3h", "3 rps"),
]


@pytest.mark.parametrize(("gate", "rate"), RULES, ids=[g.split(", ", 1)[1] for g, _ in RULES])
def test_rule_matches_its_simulation_at_the_margin_and_at_the_effect(gate: str, rate: str) -> None:
    gp = plan_gate_for(gate, rate)
    ch = gp.characteristics
    assert ch is not None
    for change, oc in ((gp.gate.margin, ch.at_margin), (gp.gate.effect, ch.at_effect)):
        failed, promoted = simulate(gp, change)
        exact_fail = np.cumsum(oc.fail)
        exact_promote = np.cumsum(oc.promote)
        for k in range(len(gp.kept)):
            assert abs(failed[k] - exact_fail[k]) < tolerance(exact_fail[k]), (change, k, failed, exact_fail)
            assert abs(promoted[k] - exact_promote[k]) < tolerance(exact_promote[k]), (change, k)
    # The error the line's alpha bounds holds at the margin (an mSPRT or few looks can be well below it); the
    # bounds were spent at the planned information, which the margin's own rates move by a fraction of a
    # percent, hence the 1e-3.
    assert ch.type_one_error <= gp.spec.alpha + 1e-3 or gp.gate.test == "bayesian"
    # And the power is mid-range here, so the comparison says something.
    assert 0.2 < ch.power < 0.999


def plan_gate_for(gate: str, rate: str) -> GatePlan:
    return gate_plan(gate, rate)


def test_the_bayesian_rule_errs_more_than_its_alpha_when_it_looks_often() -> None:
    # statistics reference 1.7: posterior-probability rules do not control the error over repeated looks.
    gp = gate_plan("ctr change > 0%, fail if shown harmful, power 80% at -6%, bayesian, tau 100%, every 1h")
    assert gp.characteristics is not None
    assert gp.characteristics.type_one_error > 2 * gp.spec.alpha
    failed, _ = simulate(gp, 0.0)
    assert abs(failed[-1] - gp.characteristics.type_one_error) < tolerance(gp.characteristics.type_one_error)


def test_a_fixed_horizon_test_repeated_is_peeking_and_the_error_says_how_much() -> None:
    # One 50% stage, labels at once, a look every hour for 20h: 20 equal looks.  At alpha 2.5% (one-sided,
    # z = 1.96) the naive rate the error names is the repeated-test rate of Armitage, McPherson & Rowe
    # (statistics reference 1.5: P(ever Z > 1.96) = 0.1244 at K = 20), and a simulation of the naive rule on
    # simulated counts shows it too.
    from tests.helpers import check

    text = SPEC.replace("RATE", "5 rps").replace("labels exponential(mean 1h)", "labels immediate").replace(
        "    5%   for 6h\n    mpr: 50%  for 12h\n", "    mpr: 50%  for 20h\n").replace(
        "GATE", "ctr change > 0%, fail if shown harmful, power 80% at -6%, fixed horizon, alpha 2.5%, every 1h")
    (d,) = [x for x in check(text) if x.code == "RL512"]
    assert d.message == "gate `ctr` repeats a fixed-horizon test at 20 looks: that is peeking"
    assert d.notes[0] == ("a fixed-horizon test looks once; repeated at these looks it fails a candidate exactly at "
                          "the margin 12% of the time instead of 2.5%")
    (rollout,) = program_of(text).rollouts()
    g = rollout.gate("ctr")
    assert isinstance(g, ir.BusinessGate)
    sequential = replace(g, test="group-sequential", spending="pocock")
    gp = plan_gate(rollout, sequential, build_plan(rollout))
    assert gp is not None and gp.characteristics is not None and len(gp.kept) == 20
    infos = [s.information for s in gp.samples]
    fractions = [i / infos[-1] for i in infos]
    assert fractions == pytest.approx([k / 20 for k in range(1, 21)])
    c = stats.normal_quantile(0.975)
    naive = stats.crossing_probabilities([math.inf] * 20, fractions, 0.0, [-c] * 20).total_lower
    assert naive == pytest.approx(0.1244, abs=6e-4)
    naive_plan = GatePlanBounds(gp, [-c] * 20)
    failed, _ = simulate(naive_plan, 0.0)
    assert abs(failed[-1] - naive) < tolerance(naive)


class GatePlanBounds:
    """A gate plan with other boundaries (to simulate the naive rule at the same looks)."""

    def __init__(self, gp: GatePlan, lower: list[float]) -> None:
        assert gp.characteristics is not None
        self.gate, self.metric, self.samples, self.kept = gp.gate, gp.metric, gp.samples, gp.kept
        bounds = stats.Boundaries(tuple(lower), (math.inf,) * len(lower), gp.characteristics.bounds.informations,
                                  gp.characteristics.bounds.reference)
        self.characteristics = type("Characteristics", (), {"bounds": bounds})()


# -- explain's power column against simulation -----------------------------------------------------------


def _example_gates() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "examples").glob("*.rollout")):
        for rollout in load(path, ROOT).rollouts():
            out.extend((path.name, g.name) for g in rollout.gates if isinstance(g, ir.BusinessGate))
    return out


@pytest.mark.parametrize(("example", "gate"), _example_gates())
def test_explain_power_column_agrees_with_simulation_on_every_example(example: str, gate: str) -> None:
    program = load(ROOT / "examples" / example, ROOT)
    (rollout,) = program.rollouts()
    g = rollout.gate(gate)
    assert isinstance(g, ir.BusinessGate)
    gp = plan_gate(rollout, g, build_plan(rollout))
    assert gp is not None and gp.characteristics is not None
    md = explain_program(program)
    power = gp.power_by_look()
    rows = [line for line in md.splitlines() if line.startswith(f"| `{gate}` |")]
    assert rows and rows[-1].endswith(f"| {100 * power[-1]:.3g}% |")
    # One sentence states its hypothesis, the error at its margin and its power, in the terms of the line.
    verb = "fails only on evidence that" if g.hypothesis == "harm" else "allows promotion only on evidence that"
    (sentence,) = [line for line in md.splitlines() if line.startswith(f"- `{gate}` ")]
    assert sentence.startswith(f"- `{gate}` {verb} the change in `{g.metric}` is ")
    assert f"with probability {pct(gp.power)}" in sentence and f"declared {pct(g.power)}" in sentence
    if gp.metric.kind != "binary":
        return  # continuous metrics: the rule is checked on binary ones above; the boundaries are the same
    failed, promoted = simulate(gp, g.effect, paths=1000)
    simulated = failed[-1] if g.hypothesis == "harm" else promoted[-1]
    assert abs(simulated - power[-1]) < tolerance(power[-1], 1000)


def test_explain_power_column_agrees_with_simulation_where_power_is_mid_range() -> None:
    # The ranker example at 10 rps instead of 12,000: its gate has about half its power.
    text = (ROOT / "examples" / "ranker-v2.rollout").read_text().replace("traffic 12000 rps", "traffic 10 rps")
    program = program_of(text)
    (rollout,) = program.rollouts()
    g = rollout.gate("ctr")
    assert isinstance(g, ir.BusinessGate)
    gp = plan_gate(rollout, g, build_plan(rollout))
    assert gp is not None
    power = gp.power_by_look()
    assert 0.2 < power[-1] < 0.9
    failed, _ = simulate(gp, g.effect)
    for k, i in enumerate(gp.kept):
        assert abs(failed[k] - power[i]) < tolerance(power[i])


# -- the unit of randomization ---------------------------------------------------------------------------


def test_design_effect_matches_a_simulation_of_users() -> None:
    # Users with a click propensity drawn from a Beta distribution whose intra-user correlation is 0.02 make
    # 20 requests each: the variance of the CTR (clicks over requests, the delta method's ratio) is the
    # binomial variance times 1 + 0.02 x 19 = 1.38.
    rng = np.random.default_rng(11)
    p, icc, m, users, reps = 0.042, 0.02, 20, 5000, 2000
    k = (1 - icc) / icc  # Beta(a, b) with a + b = k has intra-cluster correlation 1 / (1 + k)
    propensity = rng.beta(p * k, (1 - p) * k, size=(reps, users))
    clicks = rng.binomial(m, propensity)
    ctr = clicks.sum(axis=1) / (m * users)
    ratio = ctr.var() / (p * (1 - p) / (m * users))
    assert ratio == pytest.approx(stats.design_effect(m, icc), rel=0.08)  # SE of a variance ratio at 2000 reps
    # The delta-method estimate from one replication's per-user sums agrees with the spread across replications.
    arm = stats.ArmData(units=users, total=float(clicks[0].sum()), total_squares=float((clicks[0] ** 2).sum()),
                        denominator=float(m * users), denominator_squares=float(m * m * users),
                        cross=float((clicks[0] * m).sum()))
    _, variance = arm.mean_and_variance()
    assert variance == pytest.approx(ctr.var(), rel=0.1)


def test_a_reported_80_percent_is_about_68_when_users_are_split() -> None:
    # The case: about 20 requests a user and intra-user correlation 0.02.  A gate sized as if every
    # request were independent to 80% has, with the design effect, one-sided power about 0.68.
    deff = stats.design_effect(20, 0.02)
    z_a, z_b = stats.normal_quantile(0.95), stats.normal_quantile(0.8)
    assert stats.normal_cdf((z_a + z_b) / math.sqrt(deff) - z_a) == pytest.approx(0.68, abs=0.005)
    alone = gate_plan("ctr change > 0%, fail if shown harmful, power 80% at -6%, fixed")
    split = plan_gate_for_split("ctr change > 0%, fail if shown harmful, power 80% at -6%, fixed")
    assert split.samples[-1].information == pytest.approx(alone.samples[-1].information / deff, rel=1e-9)


def plan_gate_for_split(gate: str) -> GatePlan:
    text = SPEC.replace("RATE", '5 rps, split by user header "x-user-id", 20 requests per user').replace(
        "GATE", gate).replace("baseline 4.2%,", "baseline 4.2%, icc 0.02,")
    (rollout,) = program_of(text).rollouts()
    g = rollout.gate("ctr")
    assert isinstance(g, ir.BusinessGate)
    gp = plan_gate(rollout, g, build_plan(rollout))
    assert gp is not None
    return gp
