"""The checks issue 10 adds for plans that hurt users (RL326-RL332, RL409-RL411, RL519-RL521, RL613, RL614,
RL654-RL656), beyond the bad and fixed examples of docs/checks.md: the arithmetic of the ramp check, that the help
it gives is a fix, and the cases each check must leave alone."""

from __future__ import annotations

import re

import pytest

from tests.helpers import check, demo_spec, one

ERRORS = """
  gate errors: error rate < 1% every 5m
  gate drift:  psi(score) < 0.2, vs training, every 30m
  on errors fail: rollback now
  on drift fail:  pause
"""


def spec(strategy: str, gates: str = ERRORS, traffic: str = "traffic 1000 rps") -> str:
    return demo_spec("  " + strategy + "\n" + gates, traffic)


def codes(text: str) -> list[str]:
    return [d.code for d in check(text)]


# -- RL326 ---------------------------------------------------------------------------------------------


def test_a_jump_to_100_percent_is_sized_by_what_the_earlier_stages_tried() -> None:
    d = one(check(spec("canary { 1% for 1h  100% }")), "RL326")
    # at 100%, `errors` needs 5m to roll back: 300s of all traffic; 1% for 1h tried 36s of it
    assert d.message == ("stage `stage-2` jumps from 1% to 100%: before `errors` can roll a regression back, it "
                         "serves 5m of all traffic (about 300,000 requests), more than all earlier stages served the "
                         "candidate (36s of all traffic (about 36,000 requests))")
    assert d.help == "add a stage in between, e.g. `10% for 44m`, or make `stage-1` last 9h"


@pytest.mark.parametrize("fixed", [
    "canary { 1% for 1h  10% for 44m  100% }",  # the stage in between the help proposes
    "canary { 1% for 9h  100% }",  # the longer first stage it proposes
])
def test_the_fix_rl326_proposes_is_one(fixed: str) -> None:
    assert "RL326" not in codes(spec(fixed))


def test_a_step_just_below_what_was_tried_is_fine_and_just_above_is_not() -> None:
    # 10% for 50m tried 300s; at 100% `errors` needs 300s: equal is fine
    assert "RL326" not in codes(spec("canary { 10% for 50m  100% }"))
    assert "RL326" in codes(spec("canary { 10% for 49m  100% }"))


def test_a_faster_gate_allows_a_larger_step() -> None:
    fast = ERRORS.replace("every 5m", "every 10s")
    assert "RL326" not in codes(spec("canary { 1% for 1h  100% }", fast))


def test_rl326_leaves_a_revert_and_an_approval_alone() -> None:
    assert "RL326" in codes(spec("canary { 100% }"))
    assert "RL326" not in codes(spec('canary { 100% }\n  revert "back"').replace("1.0.1", "0.9.9"))
    assert "RL326" not in codes(spec("canary { 1% until approved  100% }"))


def test_rl326_stops_at_the_first_stage_of_no_fixed_length_however_far_back() -> None:
    assert "RL326" not in codes(spec("canary { 1% until approved  1% for 1h  1% for 1h  100% }"))
    assert "RL326" in codes(spec("canary { 1% for 1h  1% for 1h  1% for 1h  100% }"))


def test_rl326_names_the_first_and_last_earlier_stages_of_a_long_canary() -> None:
    """A canary of thousands of stages gives a note of six, not one as long as the file."""
    d = one(check(spec("canary { " + "0.01% for 1m  " * 2000 + "100% }")), "RL326")
    (earlier,) = [n for n in d.notes if n.startswith("earlier stages: ")]
    assert earlier == ("earlier stages: `stage-1` 0.01% for 1m, `stage-2` 0.01% for 1m, `stage-3` 0.01% for 1m, "
                       "... 1,994 more ..., `stage-1998` 0.01% for 1m, `stage-1999` 0.01% for 1m, "
                       "`stage-2000` 0.01% for 1m")
    (last,) = [d for d in check(spec("canary { 1% for 1m  2% for 1m  100% }"))
               if d.code == "RL326" and "`stage-3`" in d.message]
    assert "earlier stages: `stage-1` 1% for 1m, `stage-2` 2% for 1m" in last.notes


# -- RL328, RL329, RL330, RL613, RL614 ------------------------------------------------------------------


def test_an_approval_at_100_percent() -> None:
    rolling = spec('rolling { max surge 25% }\n  approve promotion by "@a"')
    d = one(check(rolling), "RL328")
    assert d.message == "the rolling update waits for an approval once every pod already runs the candidate"
    assert "`bake for 2h`" in d.help
    assert "RL328" not in codes(spec('canary { ramp: 10% for 2h  100% }\n  approve ramp by "@a"'))
    # `approve promotion` after a canary's last stage at 100% waits at 100%
    assert "RL328" in codes(spec('canary { ramp: 10% for 2h  100% }\n  approve promotion by "@a"'))


def test_a_bake_is_watched_by_the_gates_that_keep_running() -> None:
    changes = """
  gate errors: error rate change < +0.1% absolute, every 5m
  on errors fail: rollback now
"""
    d = one(check(spec("canary { 10% for 2h  100% }\n  bake for 2h", changes)), "RL329")
    assert d.notes[0].startswith("a gate that compares the two versions has no stable traffic to compare with at 100%")
    # `from bake` does not give a comparison a stable arm at 100%: the bake is still unwatched
    late = changes + ("  gate slower: p99 latency change < +10%, every 5m, from bake\n"
                      "  on slower fail: rollback now\n")
    found = codes(spec("canary { probe: 10% for 2h  100% }\n  bake for 2h", late))
    assert "RL329" in found and "RL504" in found
    # the same comparison written `from bake` is not evaluated before it: RL317 then, not RL329
    assert "RL329" not in codes(spec("canary { 10% for 2h  100% }\n  bake for 2h", ERRORS))


def test_scale_down_after_a_rolling_update() -> None:
    assert "RL330" in codes(spec("rolling { max surge 25% }\n  scale down after 1h"))
    assert "RL330" not in codes(spec("canary { 10% for 2h  100% }\n  scale down after 1h"))


def test_unwatched_live_traffic_includes_the_phases_after_promotion() -> None:
    drift_only = """
  gate drift: psi(score) < 0.2, vs training, every 30m
  on drift fail: rollback now
"""
    d = one(check(spec("canary { 10% for 2h  100% }", drift_only)), "RL613")
    assert d.message.startswith("stage `stage-1` sends 10% of live traffic to the candidate")
    # a latency gate that starts only at the bake leaves the stages before it unwatched
    late = drift_only + "  gate slow: p99 latency < 300ms every 1m, from bake\n  on slow fail: rollback now\n"
    d = one(check(spec("canary { 10% for 2h  100% }\n  bake for 1h", late)), "RL613")
    assert "`slow` is not evaluated there" in d.message


@pytest.mark.parametrize(("rule", "found"), [
    ("on errors fail: pause", True),
    ('on errors fail: notify "#ml"', True),
    ('on errors fail: rollback after 10m, notify "#ml"', False),
    ("on errors fail: rollback now", False),
])
def test_a_hard_slo_breach_must_roll_back(rule: str, found: bool) -> None:
    # drift rolls back, so the plan has a way back (else RL316 says so first)
    gates = ERRORS.replace("  on errors fail: rollback now\n", "  " + rule + "\n").replace(
        "on drift fail:  pause", "on drift fail:  rollback")
    assert ("RL614" in codes(spec("canary { 10% for 2h  100% }", gates))) is found


def test_saturation_may_pause() -> None:
    gates = ERRORS + "  gate cpu: saturation < 85% every 5m\n  on cpu fail: pause\n"
    assert "RL614" not in codes(spec("canary { 10% for 2h  100% }", gates))


# -- RL519 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gate", "flipped"), [
    ("p99 latency > 250ms", "<"),
    ("error rate >= 1%", "<="),
    ("saturation > 80%", "<"),
    ("p99 latency change > +10%", "<"),
])
def test_a_gate_on_a_signal_healthy_when_low_must_say_below(gate: str, flipped: str) -> None:
    gates = f"  gate g: {gate} every 5m\n  on g fail: rollback now\n" + ERRORS
    d = one(check(spec("canary { 10% for 2h  100% }", gates)), "RL519")
    assert d.help.startswith(f"write `{flipped}`")


def test_directions_that_are_right_or_unknown_pass() -> None:
    gates = ERRORS + ("  gate q: query decline_rate > 0.01 every 5m\n  gate d: psi(score) < 0.2\n"
                      "  on q, d fail: pause\n")
    text = spec("canary { 10% for 2h  100% }", gates).replace(
        'metrics prometheus "http://prometheus:9090"',
        'metrics prometheus "http://prometheus:9090" { query decline_rate "up" }')
    assert "RL519" not in codes(text)
    drift = spec("canary { 10% for 2h  100% }", ERRORS.replace("psi(score) < 0.2", "psi(score) > 0.2"))
    assert one(check(drift), "RL519").help == "write `psi(score) < 0.2`"


# -- RL520, RL521 --------------------------------------------------------------------------------------


def test_an_unused_query_may_be_a_misspelt_builtin() -> None:
    text = spec("canary { 10% for 2h  100% }").replace(
        'metrics prometheus "http://prometheus:9090"',
        'metrics prometheus "http://prometheus:9090" { query eror_rate "up" }')
    d = one(check(text), "RL521")
    assert re.match(r"did you mean `error_rate`\?", d.help), d.help


def test_a_latency_gate_with_only_a_pass_rule_is_not_a_soft_rule() -> None:
    """Found by the generated specs: RL614 looked for a `fail` rule that a gate named only in `pass` rules lacks."""
    gates = ERRORS + "  gate slow: p99 latency < 250ms every 5m\n  on slow pass: promote\n"
    assert "RL614" not in codes(spec("canary { 10% for 2h  100% }", gates))
