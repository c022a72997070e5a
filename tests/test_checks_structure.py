"""Strategy structure (RL310-RL325) and budget/policy (RL600-RL612) checks.

Every check has a failing spec (code, message and position asserted) and a
passing one (the code is absent).  Positions are found by searching the spec
text for the offending part, so the specs can be read as written.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rolloutlang import stats
from rolloutlang.checks import passes, run_checks
from rolloutlang.diagnostics import Diagnostic, Severity
from rolloutlang.loader import load
from tests.helpers import check, demo_spec, one, pos

ROOT = Path(__file__).resolve().parent.parent

CANARY = """
  canary {
    5%   for 1h
    mpr: 50%  for 2h
    100%
  }"""
GATES = """
  gate errors: error rate < 1% every 1m, fail after 2
  gate drift:  psi(score) < 0.2 every 10m
  on errors fail: rollback now
  on drift fail: pause, notify "#ml"
"""


def spec(body: str = CANARY + GATES, traffic: str = "traffic 100 rps") -> str:
    """The demo spec, by default with this file's canary and gates."""
    return demo_spec(body, traffic)


def codes(diags: list[Diagnostic]) -> list[str]:
    return [d.code for d in diags]


def assert_at(d: Diagnostic, text: str, needle: str, nth: int = 0, length: int | None = None) -> None:
    """The diagnostic starts at the needle and, on one line, spans exactly it (or ``length`` characters)."""
    assert d.span is not None
    assert (d.span.line, d.span.col) == pos(text, needle, nth)
    assert d.span.end_col - d.span.col == (length or len(needle)) or d.span.end_line > d.span.line


# -- the baseline ----------------------------------------------------------------------------------


def test_passes_are_registered() -> None:
    names = [name for name, _ in passes()]
    assert "structure" in names and "policy" in names


def test_baseline_spec_is_clean() -> None:
    assert check(spec()) == []


def test_examples_pass_structure_and_policy() -> None:
    for path in sorted((ROOT / "examples").glob("*.rollout")):
        program = load(path, ROOT)
        mine = [d for d in run_checks(program) if d.code[:3] in ("RL3", "RL6") and not "RL650" <= d.code]
        assert mine == [], (path.name, [(d.code, d.message) for d in mine])


# -- RL310 weights increase ------------------------------------------------------------------------


def test_rl310_decreasing_weight() -> None:
    text = spec(CANARY.replace("mpr: 50%", "mpr: 2%") + GATES)
    d = one(check(text), "RL310")
    assert d.severity is Severity.ERROR
    assert d.message == "canary weights must increase: 2% follows 5%"
    assert d.label == "weight drops from 5% to 2%"
    assert_at(d, text, "2%")


def test_rl310_repeated_weight() -> None:
    text = spec(CANARY.replace("mpr: 50%", "mpr: 5%") + GATES)
    d = one(check(text), "RL310")
    assert d.message == "canary weights must increase: stage `mpr` repeats 5%"
    assert "lengthen `stage-1`" in d.help
    assert_at(d, text, "5%", 1)


def test_rl310_increasing_weights_pass() -> None:
    assert "RL310" not in codes(check(spec()))


# -- RL311 zero weight -----------------------------------------------------------------------------


def test_rl311_zero_weight() -> None:
    text = spec(CANARY.replace("5%   for 1h", "0%   for 1h") + GATES)
    d = one(check(text), "RL311")
    assert d.message == "canary stage `stage-1` at 0% sends no traffic to the candidate"
    assert "shadow 100% for 1h" in d.help
    assert_at(d, text, "0%   for", length=2)


def test_rl311_positive_weight_passes() -> None:
    assert "RL311" not in codes(check(spec(CANARY.replace("5%   for 1h", "0.5% for 1h") + GATES)))


# -- RL312 zero durations --------------------------------------------------------------------------


def test_rl312_zero_stage() -> None:
    text = spec(CANARY.replace("5%   for 1h", "5%   for 0m") + GATES)
    d = one(check(text), "RL312")
    assert d.message == "stage `stage-1` lasts 0s: no gate can look at it"
    assert_at(d, text, "for 0m")


@pytest.mark.parametrize(("extra", "needle", "message"), [
    ("  shadow 100% for 0h\n", "for 0h", "a shadow phase of 0s mirrors nothing"),
    ("  holdout 1% on stable for 0d\n", "0d", "a holdout of 0s holds nothing out"),
])
def test_rl312_zero_shadow_and_holdout(extra: str, needle: str, message: str) -> None:
    text = spec(CANARY + GATES + extra)
    d = one(check(text), "RL312")
    assert d.message == message
    assert_at(d, text, needle)


def test_rl312_zero_preview() -> None:
    text = spec("  blue-green { preview for 0m, promote manual }" + GATES)
    d = one(check(text), "RL312")
    assert d.message == "a blue-green preview of 0s previews nothing"
    assert_at(d, text, "preview for 0m")


def test_rl312_positive_durations_pass() -> None:
    text = spec(CANARY + GATES + "  shadow 100% for 1h\n  holdout 1% on stable for 7d\n")
    assert "RL312" not in codes(check(text))


# -- RL313 last stage reaches 100% -----------------------------------------------------------------


def test_rl313_last_stage_below_100() -> None:
    text = spec(CANARY.replace("    100%\n", "") + GATES)
    d = one(check(text), "RL313")
    assert d.message == "the last canary stage stops at 50%: the candidate never takes all traffic"
    assert "`50% hold`" in d.help
    assert_at(d, text, "50%")


def test_rl313_hold_or_100_passes() -> None:
    assert "RL313" not in codes(check(spec(CANARY.replace("    100%\n", "").replace("for 2h", "hold") + GATES)))
    assert "RL313" not in codes(check(spec(CANARY.replace("    100%\n", "    100% for 1h\n") + GATES)))


# -- RL314 stage without a duration ----------------------------------------------------------------


def test_rl314_middle_stage_without_duration() -> None:
    text = spec(CANARY.replace("mpr: 50%  for 2h", "mpr: 50%") + GATES)
    d = one(check(text), "RL314")
    assert d.message == "stage `mpr` has no duration"
    assert "`50% until approved`" in d.help
    assert_at(d, text, "mpr: 50%")


def test_rl314_until_approved_passes() -> None:
    text = spec(CANARY.replace("mpr: 50%  for 2h", "mpr: 50% until approved") + GATES)
    assert "RL314" not in codes(check(text))


# -- RL315 hold only last --------------------------------------------------------------------------


def test_rl315_hold_in_the_middle() -> None:
    text = spec(CANARY.replace("5%   for 1h", "5%   hold") + GATES)
    d = one(check(text), "RL315")
    assert d.message == "only the last stage can `hold`, but `stage-1` is followed by `mpr`"
    assert d.help == "to wait for a person mid-ramp, write `5% until approved`"
    assert_at(d, text, "hold")


def test_rl315_hold_last_passes() -> None:
    text = spec(CANARY.replace("    100%\n", "").replace("for 2h", "hold") + GATES)
    assert "RL315" not in codes(check(text))


# -- RL316 nothing rolls back ----------------------------------------------------------------------


def test_rl316_no_rule_rolls_back() -> None:
    text = spec(CANARY + GATES.replace("rollback now", "pause"))
    d = one(check(text), "RL316")
    assert d.severity is Severity.ERROR
    assert d.message == "nothing can roll this plan back: no rule says `rollback`"
    assert d.help == "roll back when a gate fails: `on errors fail: rollback now`"
    assert_at(d, text, "on errors fail: pause")


def test_rl316_rollback_gate_never_evaluated() -> None:
    text = spec("  blue-green { preview for 1h, promote manual }\n  metric ctr: binary, baseline 4%\n"
                "  gate ctr: ctr change > -1% relative, pass if shown non-inferior\n  gate drift: psi(score) < 0.2\n"
                "  on ctr fail: rollback\n  on drift fail: pause\n")
    d = one(check(text), "RL316")
    assert d.message == "nothing can roll this plan back: `ctr` would roll back, but no phase evaluates it"
    assert_at(d, text, "gate ctr: ctr change > -1% relative, pass if shown non-inferior")


def test_rl316_rollback_rule_passes() -> None:
    assert "RL316" not in codes(check(spec()))


# -- RL317 candidate traffic with no way back ------------------------------------------------------


def test_rl317_stage_before_the_gates_start() -> None:
    text = spec(CANARY + GATES.replace("fail after 2", "fail after 2, from mpr"))
    d = one(check(text), "RL317")
    assert d.severity is Severity.WARNING
    assert d.message == "stage `stage-1` sends 5% of traffic to the candidate, but no gate can roll it back there"
    assert d.notes == ("`errors` is evaluated from stage `mpr`",)
    assert d.help == "evaluate `errors` from the start: drop its `from`"
    assert_at(d, text, "5%")


def test_rl317_last_stage_after_the_business_gate() -> None:
    # ctr stops at 100%, and only ctr rolls back: the bake stage at 100% cannot roll back
    text = spec(CANARY.replace("    100%\n", "    100% for 1h\n") + """
  metric ctr: binary, baseline 4%
  gate ctr: ctr change > -1% relative, pass if shown non-inferior
  gate drift: psi(score) < 0.2
  on ctr fail: rollback
  on drift fail: pause
""")
    d = one(check(text), "RL317")
    assert d.message == "stage `stage-3` sends 100% of traffic to the candidate, but no gate can roll it back there"
    assert_at(d, text, "100%")


def test_rl317_gate_in_every_stage_passes() -> None:
    assert "RL317" not in codes(check(spec()))


# -- RL318 no gates --------------------------------------------------------------------------------


def test_rl318_no_gates() -> None:
    text = spec(CANARY)
    d = one(check(text), "RL318")
    assert d.message == "no gate guards this rollout: it promotes on time alone"
    assert_at(d, text, "canary")
    assert "RL316" not in codes(check(text))


def test_rl318_with_gates_passes() -> None:
    assert "RL318" not in codes(check(spec()))


# -- RL319 no strategy -----------------------------------------------------------------------------


def test_rl319_no_strategy() -> None:
    text = spec("  shadow 100% for 1h" + GATES)
    d = one(check(text), "RL319")
    assert d.message == "rollout `demo` does not say how traffic moves"
    assert d.notes == ("a shadow phase alone never sends the candidate live traffic",)
    assert_at(d, text, "rollout demo")


def test_rl319_with_strategy_passes() -> None:
    assert "RL319" not in codes(check(spec()))


# -- RL320 blue-green ------------------------------------------------------------------------------


def test_rl320_auto_promotion_without_preview() -> None:
    text = spec("  blue-green { promote auto }" + GATES)
    d = one(check(text), "RL320")
    assert d.message == "blue-green with `promote auto` and no preview switches all traffic at once, unchecked"
    assert_at(d, text, "promote auto")


def test_rl320_preview_or_manual_passes() -> None:
    assert "RL320" not in codes(check(spec("  blue-green { preview for 1h, promote auto }" + GATES)))
    assert "RL320" not in codes(check(spec("  blue-green { promote manual }" + GATES)))


# -- RL321-RL323 shadow alongside canary -----------------------------------------------------------


def test_rl321_alongside_without_canary() -> None:
    text = spec("  blue-green { preview for 1h }\n  shadow 100% alongside canary" + GATES)
    d = one(check(text), "RL321")
    assert d.message == "`shadow ... alongside canary` needs a canary, but this rollout uses blue-green"
    assert d.help == "mirror before traffic moves instead: `shadow 100% for 24h`"
    assert_at(d, text, "alongside canary")


def test_rl321_alongside_canary_passes() -> None:
    assert "RL321" not in codes(check(spec("  shadow 100% alongside canary" + CANARY + GATES)))


def test_rl322_until_below_the_first_stage() -> None:
    text = spec("  shadow 100% alongside canary until 5%" + CANARY + GATES)
    d = one(check(text), "RL322")
    assert d.message == "`until 5%` mirrors during no stage: the first stage already sends 5%"
    assert "`until 50%`" in d.help
    assert_at(d, text, "5%")


def test_rl322_until_a_later_stage_passes() -> None:
    assert "RL322" not in codes(check(spec("  shadow 100% alongside canary until 50%" + CANARY + GATES)))


def test_rl323_until_not_a_stage_weight() -> None:
    text = spec("  shadow 100% alongside canary until 30%" + CANARY + GATES)
    d = one(check(text), "RL323")
    assert d.severity is Severity.WARNING
    assert d.message == "no canary stage has weight 30%: mirroring stops at stage `mpr` (50%)"
    assert d.help.startswith("did you mean `until 50%`?")
    assert_at(d, text, "30%")


def test_rl323_lists_24_weights_of_a_long_canary_and_counts_the_rest() -> None:
    stages = "  canary {\n" + "".join(f"    {i}% for 1h\n" for i in range(1, 41)) + "    100%\n  }\n"
    d = one(check(spec("  shadow 100% alongside canary until 50.5%\n" + stages + GATES)), "RL323")
    assert d.help.endswith("weight of the stage where mirroring stops: " + ", ".join(f"{i}%" for i in range(1, 24))
                           + ", 18 more")


def test_rl323_stage_weight_passes() -> None:
    assert "RL323" not in codes(check(spec("  shadow 100% alongside canary until 50%" + CANARY + GATES)))


# -- RL324 holdout on candidate --------------------------------------------------------------------


def test_rl324_holdout_on_candidate() -> None:
    text = spec(CANARY + GATES + "  holdout 1% on candidate for 7d\n")
    d = one(check(text), "RL324")
    assert d.message == ("a holdout on the candidate holds nothing out: after promotion the candidate serves "
                         "everyone")
    assert d.help.endswith("`holdout 1% on stable for 7d`")
    assert_at(d, text, "candidate for 7d", length=len("candidate"))


def test_rl324_holdout_on_stable_passes() -> None:
    assert "RL324" not in codes(check(spec(CANARY + GATES + "  holdout 1% on stable for 7d\n")))


# -- RL325 routes with rolling ---------------------------------------------------------------------


def test_rl325_route_with_rolling() -> None:
    route = 'route header "x-ml-preview" = "true" to candidate'
    text = spec(f"  rolling {{ max surge 25% }}\n  {route}" + GATES)
    d = one(check(text), "RL325")
    assert d.message == "a rolling update has no traffic router: the route to `candidate` is ignored"
    assert_at(d, text, route)


def test_rl325_route_with_canary_passes() -> None:
    text = spec(CANARY + '\n  route header "x-ml-preview" = "true" to candidate' + GATES)
    assert "RL325" not in codes(check(text))


# -- RL600 exposure budget -------------------------------------------------------------------------


def _ctr_exposure(effect: str) -> tuple[str, float]:
    """A spec whose only business gate, sized at ``effect``, is judged on exposure before 2h; and the share.

    The share is computed here from first principles: 100 rps, labels at once, ctr 4%; the gate looks at 1h
    (5%: 18,000 candidate and 342,000 stable requests) and at 3h (mpr adds 360,000 per arm).  On the log-ratio
    scale a request's variance is (1 - p) / p: planned at the baseline, I = n_t n_c / (n_t + n_c) / 24 per
    stage, and b_1 spends O'Brien-Fleming alpha at t_1 = I_1 / I_2.  Under the harm the candidate's rate is
    4% x (1 + effect), so Z_1 has mean (log(1 + effect) - log(0.99)) / sqrt(v_t / 18,000 + 24 / 342,000) and
    the first look fails with P(Z_1 <= -b_1).  A bad candidate serves 5% x 1h = 180 s of traffic when caught
    at 1h, else 180 + 50% x 1h = 1,980 s by 2h.
    """
    body = CANARY + GATES + f"""
  metric ctr: binary, baseline 4%
  gate ctr: ctr change > -1% relative, fail if shown harmful, power 80% at {effect}
  on ctr fail: rollback
  budget exposure <= 1% of requests before 2h
"""
    i1 = 18_000 * 342_000 / 360_000 / 24
    i2 = i1 + 360_000 / 2 / 24
    b1 = stats.spending_bounds([i1 / i2, 1.0], 0.05, "obrien-fleming")[0]
    change = float(effect.rstrip("%")) / 100
    p_t = 0.04 * (1 + change)
    drift1 = (math.log1p(change) - math.log(0.99)) / math.sqrt((1 - p_t) / p_t / 18_000 + 24 / 342_000)
    p1 = stats.normal_cdf(-b1 - drift1)
    return spec(body), 100 * (p1 * 180 + (1 - p1) * 1980) / 7200


def test_rl600_counts_a_business_gate_by_its_detection_probabilities() -> None:
    # A -30% CTR drop is caught at the first look most of the time (89%): about 5% of the requests before 2h,
    # where the first moment the gate *could* fail gives 2.5%.
    text, share = _ctr_exposure("-30%")
    assert 5 < share < 6
    d = one(check(text), "RL600")
    assert d.severity is Severity.ERROR
    assert d.message == (f"a bad candidate can serve {share:.3g}% of requests before 2h on average, over the budget "
                         "of 1%")
    assert d.notes[0].startswith("`ctr` rolls a -30% relative change back before promotion with probability ")
    assert "give `ctr` earlier looks" in d.help
    assert_at(d, text, "budget exposure <= 1% of requests before 2h")


def test_rl600_a_gate_that_can_fail_early_but_rarely_does_is_not_counted_as_early() -> None:
    # Sized at -5%, the same gate can fail at 1h but almost never does: the first moment it *could* fail
    # (2.5%) is not what the candidate serves; in expectation it serves nearly all of the 27.5% until 2h.
    text, share = _ctr_exposure("-5%")
    assert 27 < share < 27.6
    d = one(check(text), "RL600")
    assert d.message == (f"a bad candidate can serve {share:.3g}% of requests before 2h on average, over the budget "
                         "of 1%")


def test_rl600_requests() -> None:
    # errors fires after 2 x 1m at 5% of 100 rps: 600 requests
    text = spec(CANARY + GATES + "  budget exposure <= 500 requests\n")
    d = one(check(text), "RL600")
    assert d.message == "a bad candidate can serve 600 requests, over the budget of 500"
    assert_at(d, text, "budget exposure <= 500 requests")


def test_rl600_nothing_rolls_back_is_unbounded() -> None:
    text = spec(CANARY + "  budget exposure <= 5% of requests\n")
    d = one(check(text), "RL600")
    assert d.message == "a bad candidate can serve an unbounded share of requests, over the budget of 5%"
    assert d.notes[0] == "no gate rolls this plan back, so a bad candidate is promoted"


def test_rl600_within_budget_passes() -> None:
    text = spec(CANARY + GATES + "  budget exposure <= 600 requests\n  budget exposure <= 1% of requests before 2h\n")
    assert "RL600" not in codes(check(text))


# -- RL601 request budget without traffic ----------------------------------------------------------


def test_rl601_requests_without_traffic_model() -> None:
    text = spec(CANARY + GATES + "  budget exposure <= 500 requests\n", traffic="")
    d = one(check(text), "RL601")
    assert d.severity is Severity.WARNING
    assert d.message == "an exposure budget in requests needs a traffic model"
    assert_at(d, text, "budget exposure <= 500 requests")


def test_rl601_share_without_traffic_model_passes() -> None:
    diags = check(spec(CANARY + GATES + "  budget exposure <= 1% of requests before 2h\n", traffic=""))
    assert "RL601" not in codes(diags) and "RL600" not in codes(diags)


# -- RL602 / RL603 duration budget -----------------------------------------------------------------


def test_rl602_plan_longer_than_budget() -> None:
    text = spec(CANARY + GATES + "  budget duration <= 2h\n")
    d = one(check(text), "RL602")
    assert d.message == "the plan takes at least 3h to promote, over the duration budget of 2h"
    assert d.notes == ("the longest phase is `mpr` (2h)",)
    assert_at(d, text, "budget duration <= 2h")


def test_rl602_within_budget_passes() -> None:
    text = spec(CANARY + GATES + "  budget duration <= 3h\n  holdout 1% on stable for 14d\n")
    assert "RL602" not in codes(check(text))  # the holdout comes after promotion


def test_rl603_waiting_stage_makes_it_unbounded() -> None:
    text = spec(CANARY.replace("for 2h", "until approved") + GATES + "  budget duration <= 1d\n")
    d = one(check(text), "RL603")
    assert d.severity is Severity.WARNING
    assert d.message == "the duration budget of 24h cannot be guaranteed: stage `mpr` waits for approval"
    assert d.notes == ("the rest of the plan takes 1h, leaving 23h for waiting",)
    assert_at(d, text, "budget duration <= 1d")


def test_rl603_fixed_durations_pass() -> None:
    assert "RL603" not in codes(check(spec(CANARY + GATES + "  budget duration <= 1d\n")))


# -- RL610 only infrastructure gates ---------------------------------------------------------------


def test_rl610_only_slo_gates() -> None:
    text = spec(CANARY + GATES.replace('  gate drift:  psi(score) < 0.2 every 10m\n', '')
                .replace('  on drift fail: pause, notify "#ml"\n', ''))
    d = one(check(text), "RL610")
    assert d.severity is Severity.WARNING
    assert d.message == ("only infrastructure gates (`errors`) guard the way to 100%: infrastructure health is "
                         "necessary, not sufficient")
    assert_at(d, text, "100%")


def test_rl610_drift_gate_passes() -> None:
    assert "RL610" not in codes(check(spec()))


# -- RL611 rollback speed --------------------------------------------------------------------------


def test_rl611_gate_slower_than_its_stage() -> None:
    text = spec(CANARY + GATES.replace("every 1m, fail after 2", "every 30m, fail after 3"))
    d = one(check(text), "RL611")
    assert d.message == "gate `errors` needs 90m of failing checks (3 × 30m) to fire, but stage `stage-1` lasts 1h"
    assert d.help.startswith("check more often (`every 10m`)")
    assert_at(d, text, "gate errors: error rate < 1% every 30m, fail after 3")


def test_rl611_several_stages() -> None:
    text = spec(CANARY + GATES.replace("every 1m, fail after 2", "every 2h"))
    d = one(check(text), "RL611")
    assert d.message == ("gate `errors` needs 2h of failing checks (one check every 2h) to fire, but stages "
                         "`stage-1` (1h), `mpr` (2h) are no longer")


def test_rl611_names_24_stages_of_a_long_canary_and_counts_the_rest() -> None:
    stages = "  canary {\n" + "    1% for 1h\n" * 100 + "    100%\n  }\n"
    d = one(check(spec(stages + GATES.replace("every 1m, fail after 2", "every 2h"))), "RL611")
    assert d.message.endswith("but stages `stage-1` (1h), `stage-2` (1h), " + ", ".join(
        f"`stage-{i}` (1h)" for i in range(3, 24)) + ", 77 more are no longer")


def test_rl611_fast_gate_passes() -> None:
    assert "RL611" not in codes(check(spec()))


# -- RL612 gate triggers nothing -------------------------------------------------------------------


def test_rl612_gate_in_no_rule() -> None:
    text = spec(CANARY + GATES.replace('  on drift fail: pause, notify "#ml"\n', ""))
    d = one(check(text), "RL612")
    assert d.message == "gate `drift` triggers nothing"
    assert d.help.startswith("say what its failure does: `on drift fail: rollback now`")
    assert_at(d, text, "gate drift:  psi(score) < 0.2 every 10m")


def test_rl612_notify_only_is_covered() -> None:
    text = spec(CANARY + GATES.replace('pause, notify "#ml"', 'notify "#ml"'))
    assert "RL612" not in codes(check(text))


# -- imported gates --------------------------------------------------------------------------------


def test_imported_gate_points_at_the_use(tmp_path: Path) -> None:
    (tmp_path / ".rollout-root").write_text("")
    (tmp_path / "slo.rollout").write_text("gates slo {\n  gate errors: error rate < 1% every 1m\n}\n")
    text = 'import "slo.rollout"\n' + spec(CANARY + "\n  use gates slo\n  gate drift: psi(score) < 0.2\n"
                                           "  on drift fail: rollback\n")
    (tmp_path / "main.rollout").write_text(text)
    program = load(tmp_path / "main.rollout", tmp_path)
    assert program.diagnostics == []
    d = one(run_checks(program), "RL612")
    assert d.message == "gate `errors` triggers nothing"
    assert d.span is not None and d.span.file == "main.rollout"
    assert (d.span.line, d.span.col) == pos(text, "use gates slo")
