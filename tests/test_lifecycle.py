"""Issue 10's language: the phases after the switch (bake, holdout, scale-down), phases named in `from`, hooks at
points of the plan and job gates, consumers on their own switches, reverts, waivers, and what a new user reads
(names with a did-you-mean, gates written back in the spec's words)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from rolloutlang import ir
from rolloutlang.explain import explain_program
from rolloutlang.formatter import format_source, strip_spans
from rolloutlang.loader import Program, load, load_text
from rolloutlang.plan import Plan, build_plan, plan_to_json, render_plan
from tests.helpers import D1, D2, at, check, demo_spec, one, pos, run_cli

ROOT = Path(__file__).resolve().parent.parent

LIFECYCLE = """\
rollout life {
  service demo
  namespace ml
  model stable    scorer 1.0.0 @ STABLE_PIN
  model candidate scorer 1.1.0 @ CANDIDATE_PIN
  signature {
    in  x: float32, email: string pii
    out score: float32, embedding: vector<float32, 8>
  }
  traffic 100 rps
  metrics prometheus "http://prometheus:9090"
  metric ctr: binary, baseline 4%, labels lognormal(median 1h, p95 4h)

  consumers {
    related expects embedding 8 via header "x-caller" = "related" switch at wide
    ranker  expects embedding 8 via header "x-caller" = "ranker"
    plain   expects embedding 8
  }

  shadow 100% for 2h
  canary {
    probe: 5%  for 2h
    wide:  50% for 6h
    100%
  }
  bake for 3h
  scale down after 1h
  holdout 1% on stable for 7d

  gate errors:  error rate < 1% every 1m, fail after 2
  gate latency: p99.9 latency < 400ms every 1m, fail after 3
  gate drift:   psi(score) < 0.2, vs stable, every 30m, from shadow
  gate parity:  run "python -m parity", timeout 20m, from shadow
  gate load:    call "https://load.example.com/r" json "failed.rate" < 0.01, every 30m, fail after 2,
                timeout 2m, from wide
  gate ctr:     ctr change > -1% relative, fail if shown harmful, power 80% at -5%, from probe
  gate ctr-14d: ctr change > -1% relative, fail if shown harmful, power 80% at -5%, from holdout
  gate smoke:   run "make smoke-prod", from bake

  on errors, latency, parity, load, smoke fail: rollback now
  on ctr, ctr-14d fail: rollback
  on drift fail: pause

  pipeline {
    contract "pytest tests/contract", timeout 10m
    warm     "make warm" at start of wide, timeout 15m
    report   "make report" at end of wide
    card     "make card" after promotion
    page     "make page" on rollback, timeout 2m
  }
}
""".replace("STABLE_PIN", D1).replace("CANDIDATE_PIN", D2)


def program(text: str = LIFECYCLE) -> Program:
    p = load_text(text, "life.rollout")
    assert [(d.code, d.message) for d in p.diagnostics] == []
    return p


def rollout_of(text: str = LIFECYCLE) -> ir.Rollout:
    (r,) = program(text).rollouts()
    return r


def plan_of(text: str = LIFECYCLE) -> Plan:
    return build_plan(rollout_of(text))


def codes(text: str) -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in load_text(text, "spec.rollout").diagnostics]


# -- 1. after the switch -----------------------------------------------------------------------------


def test_lowered_lifecycle() -> None:
    r = rollout_of()
    assert r.bake is not None and r.bake.duration_s == 3 * 3600
    assert r.scale_down is not None and r.scale_down.after_s == 3600
    assert r.revert is None
    assert [(f.name, f.personal) for f in r.signatures[0].inputs] == [("x", False), ("email", True)]
    latency = r.gate("latency")
    assert isinstance(latency, ir.SloGate) and latency.percentile == 99.9


def test_the_plan_after_promotion() -> None:
    plan = plan_of()
    assert [(p.name, p.kind, p.post_promotion) for p in plan.phases] == [
        ("shadow", "shadow", False), ("probe", "canary", False), ("wide", "canary", False),
        ("stage-3", "canary", False), ("bake", "bake", True), ("holdout", "holdout", True)]
    bake = plan.phases[4]
    assert bake.weight_percent == 100 and bake.duration_s == 3 * 3600 and bake.stable_warm
    assert plan.phases[5].weight_percent == 99
    assert plan.scale_down_after_s == 3600
    # promotion is reached before the bake: the bake and the holdout are after it
    assert plan.min_duration_s == (2 + 2 + 6) * 3600


def test_where_each_gate_is_evaluated() -> None:
    phases = {g: tuple(p.split(".")[-1] for p in ids) for g, ids in plan_of().gate_phases.items()}
    everywhere = ("shadow", "probe", "wide", "stage-3", "bake", "holdout")
    assert phases["errors"] == everywhere  # on the candidate alone: through the bake and the holdout
    assert phases["latency"] == everywhere
    # compares with stable: only where both answer the same traffic, and not after promotion
    assert phases["drift"] == ("shadow", "probe", "wide")
    assert phases["parity"] == ("shadow",)  # once, as its phase begins
    assert phases["load"] == ("wide", "stage-3", "bake", "holdout")  # every 30m from `wide` on
    assert phases["ctr"] == ("probe", "wide")
    assert phases["ctr-14d"] == ("holdout",)  # against the slice still on stable
    assert phases["smoke"] == ("bake",)


def test_a_rolling_update_bakes_without_the_old_pods() -> None:
    text = demo_spec("  rolling { max surge 25% }\n  bake for 2h\n  gate e: error rate < 1% every 1m\n"
                     "  on e fail: rollback now")
    bake = plan_of(text).phases[-1]
    assert bake.kind == "bake" and not bake.stable_warm
    assert "stable pods replaced" in bake.description
    blue = demo_spec("  blue-green { preview for 1h }\n  bake for 2h\n  gate e: error rate < 1% every 1m\n"
                     "  on e fail: rollback now")
    assert [p.kind for p in plan_of(blue).phases] == ["preview", "bake"]
    assert plan_of(blue).phases[-1].stable_warm


def test_the_graph_shows_the_bake_and_holdout_guarded() -> None:
    plan = plan_of()
    rollbacks = {(t.source, t.gates) for t in plan.transitions if t.kind == "rollback"}
    assert ("bake", ("errors", "latency", "load", "smoke")) in rollbacks
    assert ("holdout", ("errors", "latency", "load")) in rollbacks
    assert ("holdout", ("ctr-14d",)) in rollbacks
    mermaid = render_plan(plan, "mermaid")
    bake_id = f"p{plan.phase('bake').index}"
    assert f'{bake_id} -->|"rollback: errors, latency, load, smoke"| rolled_back' in mermaid
    assert (f'{bake_id}["bake<br/>100% for 3h, stable kept up<br/>ranker switched to candidate<br/>'
            'after promotion: card"]') in mermaid


def test_phase_words_as_from_hooks_approvals_and_switches() -> None:
    body = ("  shadow 100% for 1h\n  canary { probe: 5% for 1h  100% }\n  bake for 1h\n"
            "  holdout 1% on stable for 1d\n  approve bake by \"@a\"\n  approve holdout by \"@a\"\n"
            "  pipeline { a \"x\" at start of bake\n  b \"y\" at end of shadow\n  c \"z\" at end of holdout }\n"
            "  consumers { c expects score 1 via header \"a\" = \"b\" switch at bake }\n"
            "  gate e: error rate < 1% every 1m, from holdout\n  on e fail: rollback now")
    plan = plan_of(demo_spec(body))
    assert plan.phase("bake").approval and plan.phase("holdout").approval
    assert plan.phase("stage.stage-2").consumers == (("c", "stable"),)
    assert plan.phase("bake").consumers == (("c", "candidate"),)
    assert plan.gate_phases["e"] == ("holdout",)


@pytest.mark.parametrize(("body", "code", "message", "help_part"), [
    ("  canary { probe: 5% for 1h  100% }\n  gate e: error rate < 1%, from shadow\n  on e fail: rollback now",
     "RL114", "gate `e` starts from `shadow`, but this rollout has no shadow phase", "`shadow 100% for 24h`"),
    ("  canary { probe: 5% for 1h  100% }\n  gate e: error rate < 1%, from bake\n  on e fail: rollback now",
     "RL114", "gate `e` starts from `bake`, but this rollout has no bake phase", "`bake for 2h`"),
    ("  canary { probe: 5% for 1h  100% }\n  gate e: error rate < 1%, from shadw\n  on e fail: rollback now",
     "RL114", "gate `e` starts from unknown stage `shadw`", "did you mean `shadow`? this rollout has no shadow"),
    ("  canary { probe: 5% for 1h  100% }\n  gate e: error rate < 1%, from prbe\n  on e fail: rollback now",
     "RL114", "gate `e` starts from unknown stage `prbe`", "did you mean `probe`?"),
    ("  shadow 100% alongside canary until 5%\n  canary { probe: 5% for 1h  100% }\n"
     "  gate e: error rate < 1%, from shadow\n  on e fail: rollback now",
     "RL114", "gate `e` starts from `shadow`, but the shadow has no phase of its own: it runs alongside the canary",
     "name the stage to start from"),
    ("  canary { probe: 5% for 1h  100% }\n  pipeline { a \"x\" at start of prob }", "RL114",
     "hook `a` runs at unknown stage `prob`", "did you mean `probe`?"),
    ("  canary { probe: 5% for 1h  100% }\n  consumers { c expects score 1 via header \"a\" = \"b\" switch at prob }",
     "RL114", "consumer `c` switches at unknown stage `prob`", "did you mean `probe`?"),
    ("  canary { probe: 5% for 1h  100% }\n  approve prob by \"@a\"", "RL115", "cannot approve `prob`",
     "did you mean `probe`?"),
    ("  canary { bake: 5% for 1h  100% }", "RL140", "stage `bake` takes the name of the bake phase",
     "`bake-stage: ...`"),
    ("  canary { promotion: 5% for 1h  100% }", "RL140", "stage `promotion` takes the name of the promotion", ""),
])
def test_phase_names_in_references(body: str, code: str, message: str, help_part: str) -> None:
    diags = load_text(demo_spec(body), "spec.rollout").diagnostics
    d = one(diags, code)
    assert d.message == message and help_part in d.help


def test_a_reference_to_an_automatic_stage_name_warns() -> None:
    body = "  canary { 5% for 1h  100% }\n  gate e: error rate < 1% every 1m, from stage-1\n  on e fail: rollback now"
    text = demo_spec(body)
    d = one(load_text(text, "spec.rollout").diagnostics, "RL141")
    assert not d.is_error and at(d) == pos(text, "stage-1")
    assert "`ramp: 5% ...`" in d.help
    named = demo_spec(body.replace("{ 5%", "{ ramp: 5%").replace("stage-1", "ramp"))
    assert codes(named) == []


# -- 2. hooks and job gates ----------------------------------------------------------------------------


def test_hooks_at_their_points_with_timeouts() -> None:
    hooks = {h.name: (h.point, h.phase, h.timeout_s) for h in rollout_of().pipeline}
    assert hooks == {
        "contract": ("before-traffic", None, 600.0),
        "warm": ("phase-start", "wide", 900.0),
        "report": ("phase-end", "wide", ir.DEFAULT_TIMEOUT_S),
        "card": ("after-promotion", None, ir.DEFAULT_TIMEOUT_S),
        "page": ("on-rollback", None, 120.0),
    }
    assert ir.DEFAULT_TIMEOUT_S == 1800


def test_job_gates() -> None:
    r = rollout_of()
    parity, load = r.gate("parity"), r.gate("load")
    assert isinstance(parity, ir.JobGate) and isinstance(load, ir.JobGate)
    assert (parity.command, parity.url, parity.field, parity.interval_s, parity.timeout_s) == (
        "python -m parity", None, None, None, 1200.0)
    assert (load.command, load.url, load.field, load.op, load.threshold) == (
        None, "https://load.example.com/r", "failed.rate", "<", 0.01)
    assert (load.interval_s, load.failure_limit, load.timeout_s, load.from_stage) == (1800.0, 2, 120.0, "wide")
    # a one-shot job can fail as soon as it has run; `every 30m, fail after 2` needs an hour
    plan = plan_of()
    parity_bound, load_bound = plan.earliest_rollback("parity"), plan.earliest_rollback("load")
    assert parity_bound is not None and parity_bound.fires_s == 0
    assert load_bound is not None and load_bound.fires_s == (2 + 2) * 3600 + 3600


@pytest.mark.parametrize(("gate", "code", "message"), [
    ('run ""', "RL261", "the command is empty"),
    ('call "ftp://example.com/x"', "RL261", "`ftp://example.com/x` is not an http or https URL"),
    ('call "example.com/x"', "RL261", "`example.com/x` is not an http or https URL"),
    ('run "x" json "a..b" < 1', "RL262", "`a..b` is not a JSON field"),
    ('run "x", fail after 2', "RL263", "`fail after` needs `every`: without it a job gate runs once"),
    ('run "x", timeout 0s', "RL222", "the timeout must be between 1s and 1d, got `0s`"),
    ('run "x", timeout 2d', "RL222", "the timeout must be between 1s and 1d, got `2d`"),
    ('run "x", bins 10', "RL207", "unknown option `bins` for a job gate"),
])
def test_job_gate_mistakes(gate: str, code: str, message: str) -> None:
    text = demo_spec(f"  canary {{ 5% for 1h  100% }}\n  gate j: {gate}\n  on j fail: rollback now")
    d = one(load_text(text, "spec.rollout").diagnostics, code)
    assert d.message == message


def test_hook_timeout_and_name_mistakes() -> None:
    text = demo_spec('  canary { 5% for 1h  100% }\n  pipeline { a "x" timeout 3d\n  b "y"\n  b "z" }')
    found = codes(text)
    assert ("RL222", "the timeout must be between 1s and 1d, got `3d`") in found
    assert any(c == "RL101" and "`b`" in m for c, m in found)


def test_the_graph_places_hooks_and_scale_down() -> None:
    plan = plan_of()
    assert plan.notes("shadow") == ["before traffic: contract"]
    assert plan.notes("stage.wide") == ["at start: warm", "at end: report", "related switched to candidate"]
    assert plan.notes("promoted") == ["old version scaled down after 1h"]
    assert plan.notes("rolled-back") == ["consumers back on stable", "then runs: page"]
    nodes = {n["id"]: n for n in plan_to_json(plan)["nodes"]}
    assert nodes["bake"]["notes"] == ["ranker switched to candidate", "after promotion: card"]
    assert nodes["bake"]["stable_warm"] is True
    assert nodes["stage.probe"]["consumers"] == {"related": "stable", "ranker": "stable"}
    dot = render_plan(plan, "dot")
    assert '"promoted" [label="promoted\\nold version scaled down after 1h"' in dot


# -- 3. consumers on their own switches ----------------------------------------------------------------


def test_each_routed_consumer_has_its_own_switch() -> None:
    plan = plan_of()
    served = {p.name: dict(p.consumers) for p in plan.phases}
    # `plain` has no route of its own: it follows the split and has no switch
    assert all("plain" not in s for s in served.values())
    assert [served[n]["related"] for n in served] == ["stable", "stable", "candidate", "candidate", "candidate",
                                                      "candidate"]
    # without `switch at`, a routed consumer moves at promotion: the first phase after it
    assert [served[n]["ranker"] for n in served] == ["stable", "stable", "stable", "stable", "candidate",
                                                     "candidate"]


def test_explain_shows_each_consumers_switch() -> None:
    md = explain_program(program())
    section = md.split("### Consumers", 1)[1].split("###", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| `")}
    assert set(rows) == {"`related`", "`ranker`", "`plain`"}
    assert '`header "x-caller" = "related"`' in rows["`related`"] and "`wide`" in rows["`related`"]
    assert "the traffic split" in rows["`plain`"] and "by the stages' weights, until promotion" in rows["`plain`"]
    blue = explain_program(load_text(_consumer_spec("r expects embedding 16"), "spec.rollout"))
    assert ("| `r` | `embedding` as 16 | the traffic split | stable until promotion, then the candidate | stable |"
            in blue)


WIDER = """\
  signature stable    { in x: float32  out embedding: vector<float32, 8> }
  signature candidate { in x: float32  out embedding: vector<float32, 16> }
"""


def _consumer_spec(consumer: str, strategy: str = "blue-green { preview for 1h, promote manual }") -> str:
    return f"""rollout c {{
  model stable    emb 1.0.0 @ {D1}
  model candidate emb 2.0.0 @ {D2}
{WIDER}  consumers {{
    {consumer}
  }}
  {strategy}
}}
"""


@pytest.mark.parametrize(("consumer", "codes_found"), [
    # reads the new shape: breaks on stable's answers (before its switch, after a rollback)
    ('r expects embedding 16 via header "c" = "r" switch at preview', ["RL411"]),
    ("r expects embedding 16", ["RL411"]),
    # pinned to the old shape: breaks once the candidate answers it
    ("r expects embedding 8", ["RL424"]),
    # an adapter for the side it does not read
    ('r expects embedding 16 adapter "8-to-16"', []),
    ('r expects embedding 8 adapter "16-to-8"', []),
])
def test_consumers_are_checked_on_both_arms(consumer: str, codes_found: list[str]) -> None:
    found = [d.code for d in check(_consumer_spec(consumer), keep=lambda c: c in ("RL411", "RL424"))]
    assert found == codes_found


def test_rl411_names_when_stable_answers() -> None:
    d = one(check(_consumer_spec('r expects embedding 16 via header "c" = "r" switch at preview')), "RL411")
    assert d.notes == ("stable answers it after any rollback",)
    d = one(check(_consumer_spec("r expects embedding 16")), "RL411")
    assert "until" in d.notes[0] and "promotion" in d.notes[0]


# -- 4. revert -----------------------------------------------------------------------------------------


REVERT = f"""rollout back {{
  service demo
  revert "CTR down in 1.1.0"
  model stable    scorer 1.1.0 @ {D2}
  model candidate scorer 1.0.0 @ {D1}
  signature {{ in x: float32  out score: float32 }}
  metrics prometheus "http://prometheus:9090"
  bake for 1h
  gate e: error rate < 1% every 1m, fail after 2
  on e fail: rollback now
}}
"""


def test_a_revert_is_a_short_plan_without_a_downgrade_warning() -> None:
    r = rollout_of(REVERT)
    assert r.revert is not None and r.revert.reason == "CTR down in 1.1.0"
    plan = build_plan(r)
    assert [(p.name, p.weight_percent, p.post_promotion) for p in plan.phases] == [
        ("revert", 100.0, False), ("bake", 100.0, True)]
    found = [d.code for d in check(REVERT)]
    assert "RL407" not in found and "RL326" not in found and "RL410" not in found
    # without `revert`, the same models are a downgrade
    plain = REVERT.replace('  revert "CTR down in 1.1.0"\n', "").replace("  bake for 1h\n",
                                                                           "  canary { 5% for 1h  100% }\n")
    assert "RL407" in [d.code for d in check(plain)]
    md = explain_program(program(REVERT))
    assert md.startswith("## Revert `back`: scorer 1.1.0 → 1.0.0")
    assert "A revert to the previous version, on purpose: CTR down in 1.1.0." in md


def test_a_revert_with_its_own_strategy_keeps_it() -> None:
    text = REVERT.replace("  bake for 1h\n", "  canary { 50% for 10m  100% }\n")
    assert [p.weight_percent for p in plan_of(text).phases] == [50.0, 100.0]


# -- 6. waivers ----------------------------------------------------------------------------------------


WAIVED = _consumer_spec('r expects embedding 16 via header "c" = "r" switch at preview  '
                        "# waive RL411: r is rolled back with the model")


def test_a_waived_finding_is_kept_suppressed_in_json_and_sarif(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "w.rollout"
    spec.write_text(WAIVED)
    (tmp_path / "pyproject.toml").write_text("")
    _, out, _ = run_cli(["check", "--format", "json", str(spec)], capsys)
    doc = json.loads(out)
    (waived,) = [d for d in doc["diagnostics"] if d["code"] == "RL411"]
    assert waived["suppressed"]["kind"] == "inSource"
    assert waived["suppressed"]["justification"] == "r is rolled back with the model"
    assert doc["waived_count"] == 1
    # GitLab's code quality report cannot mark a finding suppressed: it leaves the waived one out
    _, out, _ = run_cli(["check", "--format", "gitlab", str(spec)], capsys)
    assert "RL411" not in out and out.startswith("[")
    _, out, _ = run_cli(["check", "--format", "sarif", str(spec)], capsys)
    (result,) = [r for r in json.loads(out)["runs"][0]["results"] if r["ruleId"] == "RL411"]
    (suppression,) = result["suppressions"]
    assert suppression["kind"] == "inSource" and suppression["justification"] == "r is rolled back with the model"
    # not waived: a plain warning, no suppressions
    spec.write_text(WAIVED.split("  # waive")[0] + "\n  }\n  blue-green { preview for 1h, promote manual }\n}\n")
    _, out, _ = run_cli(["check", "--format", "sarif", str(spec)], capsys)
    (result,) = [r for r in json.loads(out)["runs"][0]["results"] if r["ruleId"] == "RL411"]
    assert "suppressions" not in result
    _, out, _ = run_cli(["check", "--format", "gitlab", str(spec)], capsys)
    assert "RL411" in out


def test_a_waiver_lets_strict_pass_and_the_text_counts_it(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "w.rollout"
    unwaived = WAIVED.replace("  # waive RL411: r is rolled back with the model", "")
    (tmp_path / "pyproject.toml").write_text("")
    spec.write_text(unwaived)
    strict_before = [d["code"] for d in json.loads(run_cli(["check", "--strict", "--format", "json", str(spec)],
                                                             capsys)[1])["diagnostics"]
                     if "suppressed" not in d]
    assert "RL411" in strict_before
    spec.write_text(WAIVED)
    _, out, _ = run_cli(["check", "--strict", "--format", "json", str(spec)], capsys)
    assert "RL411" not in [d["code"] for d in json.loads(out)["diagnostics"] if "suppressed" not in d]
    _, _, err = run_cli(["check", "--no-color", str(spec)], capsys)
    assert "RL411" not in err and "1 waived" in err


def test_a_waiver_on_its_own_line_applies_to_the_statement_just_below() -> None:
    above = WAIVED.replace('    r expects embedding 16 via header "c" = "r" switch at preview  '
                           "# waive RL411: r is rolled back with the model",
                           "    # waive RL411: r is rolled back with the model\n"
                           '    r expects embedding 16 via header "c" = "r" switch at preview')
    assert "RL411" not in [d.code for d in check(above)]
    two_lines_up = above.replace("    # waive RL411: r is rolled back with the model\n",
                                 "    # waive RL411: r is rolled back with the model\n\n")
    diags = load_text(two_lines_up, "spec.rollout").diagnostics
    assert [d.code for d in diags] == []  # RL143 comes from the checks, once they ran: see below
    p = load_text(two_lines_up, "spec.rollout")
    from rolloutlang.checks import run_checks
    found = [d for d in p.waive(run_checks(p))]
    assert [d.code for d in found if d.suppression is None and d.code in ("RL411", "RL143")] == ["RL411", "RL143"]


@pytest.mark.parametrize(("comment", "message"), [
    ("# waive RL411", "the waiver of RL411 gives no reason"),
    ("# waive RL411:   ", "the waiver of RL411 gives no reason"),
    ("# waive: because", "a waiver names the finding it lets go"),
    ("# waive RL201: the unit is fine", "RL201 cannot be waived: the spec does not mean what it says until it is "
                                        "fixed"),
])
def test_waivers_written_wrong(comment: str, message: str) -> None:
    text = _consumer_spec(f'r expects embedding 16 via header "c" = "r" switch at preview  {comment}')
    d = one(load_text(text, "spec.rollout").diagnostics, "RL142")
    assert d.message == message and d.is_error


def test_explain_lists_waived_findings_apart() -> None:
    md = explain_program(load_text(WAIVED, "spec.rollout"))
    findings = md.split("### Findings", 1)[1]
    assert "Waived in the spec (1):" in findings
    assert "waived: r is rolled back with the model" in findings


# -- 7. what a new user reads --------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "code", "hint"), [
    ("  canary { 5% for 1h  100% }\n  gate errors: error rate < 1%\n  on erors fail: rollback now",
     "RL111", "did you mean `errors`?"),
    ("  canary { 5% for 1h  100% }\n  metric ctr: binary, baseline 4%\n  gate g: ctrr change > -1% relative, "
     "fail if shown harmful, power 80% at -5%\n  on g fail: rollback", "RL112", "did you mean `ctr`?"),
    ('  canary { 5% for 1h  100% }\n  gate g: query gpu_utl < 0.9\n  on g fail: pause', "RL113", ""),
    ("  canary { probe: 5% for 1h  100% }\n  gate e: error rate < 1%, from prob\n  on e fail: rollback now",
     "RL114", "did you mean `probe`?"),
    ('  canary { probe: 5% for 1h  100% }\n  approve promotoin by "@a"', "RL115", "did you mean `promotion`?"),
    ("  use gates slo-defautls", "RL110", ""),
    ("  canary { 5% for 1h  100% }\n  gate e: error rate < 1%, evrey 1m\n  on e fail: rollback now",
     "RL207", "did you mean `every`?"),
    ("  canary { 5% for 1h  100% }\n  gate d: pssi(score) < 0.2\n  on d fail: pause", "RL216",
     "did you mean `psi`?"),
])
def test_every_unknown_name_has_a_did_you_mean(body: str, code: str, hint: str) -> None:
    text = demo_spec(body)
    if code == "RL113":
        text = text.replace('metrics prometheus "http://prometheus:9090"',
                            'metrics prometheus "http://prometheus:9090" { query gpu_util "up" }')
        hint = "did you mean `gpu_util`?"
    if code == "RL110":
        text = 'gates slo-defaults {\n  gate e: error rate < 1%\n  on e fail: rollback now\n}\n' + text
        hint = "did you mean `slo-defaults`?"
    d = one(load_text(text, "spec.rollout").diagnostics, code)
    assert hint in d.help, d.help


@pytest.mark.parametrize(("line", "hint"), [
    ("    fields trace_id, model_version, scroe", "did you mean `score`?"),
])
def test_an_unknown_logged_field_has_a_did_you_mean(line: str, hint: str) -> None:
    text = demo_spec(f"  canary {{ 5% for 1h  100% }}\n  log requests 5% {{\n{line}\n  }}")
    d = one(check(text), "RL656")
    assert d.help == hint


def test_explain_writes_phases_that_wait_without_a_time() -> None:
    text = demo_spec("  canary {\n    5% for 1h\n    mpr: 50% until approved\n    100%\n  }\n"
                     "  gate e: error rate < 1% every 1m, fail after 2\n  on e fail: rollback now")
    md = explain_program(load_text(text, "spec.rollout"))
    assert "after 0s" not in md
    phases = md.split("### Phases", 1)[1].split("###", 1)[0]
    row = next(line for line in phases.splitlines() if "`mpr`" in line)
    assert "until approved" in row


def test_explain_writes_the_new_constructs() -> None:
    md = explain_program(program())
    assert "a 3h bake at 100%, gates running, the stable version kept up for an instant switch back" in md
    assert "the old version keeps running 1h after the bake" in md
    gates = md.split("### Gates", 1)[1].split("###", 1)[0]
    assert '| `load` | job | call "https://load.example.com/r" json "failed.rate" < 0.01, every 30m, fail after 2, ' \
           "timeout 2m, from wide |" in gates
    assert "p99.9 latency < 400ms every 1m, fail after 3" in gates
    parity = next(line for line in gates.splitlines() if line.startswith("| `parity`"))
    assert "| once, as `shadow` begins |" in parity
    hooks = md.split("### Hooks", 1)[1].split("###", 1)[0]
    assert "| `warm` | at the start of `wide` | 15m | `make warm` |" in hooks
    assert "| `page` | on a rollback | 2m | `make page` |" in hooks


# -- fmt -------------------------------------------------------------------------------------------------


MESSY = f"""rollout m {{
  model stable scorer 1.0.0 @ {D1}
  model candidate scorer 1.1.0 @ {D2}
  signature {{ in  x: float32,   email: string   pii  out score: float32 }}
  consumers {{
    c expects score 1 via header "a" = "b"    switch   at   probe
  }}
  revert    "why"
  canary {{ probe: 5% for 1h  100% }}
  bake   for   2h
  scale  down  after   30m
  gate j:   run "make x"  json "a.b" <  1 ,  every 5m , timeout 1m,from probe
  gate k: call "https://x.example/r",timeout 10s
  on j, k fail: rollback now
  pipeline {{
    a "x"   at start of   probe ,   timeout 5m
    b   "y" on rollback
    c "z" after   promotion
  }}
}}
"""

FORMATTED = f"""rollout m {{
  model stable    scorer 1.0.0 @ {D1}
  model candidate scorer 1.1.0 @ {D2}
  signature {{
    in  x: float32, email: string pii
    out score: float32
  }}
  consumers {{
    c expects score 1 via header "a" = "b" switch at probe
  }}
  revert "why"
  canary {{
    probe: 5% for 1h
    100%
  }}
  bake for 2h
  scale down after 30m
  gate j: run "make x" json "a.b" < 1, every 5m, timeout 1m, from probe
  gate k: call "https://x.example/r", timeout 10s
  on j, k fail: rollback now
  pipeline {{
    a "x" at start of probe, timeout 5m
    b "y" on rollback
    c "z" after promotion
  }}
}}
"""


def fmt(text: str) -> str:
    out, diags = format_source(text, "m.rollout")
    assert out is not None, [(d.code, d.message) for d in diags]
    return out


def test_fmt_writes_the_new_constructs_canonically() -> None:
    out = fmt(MESSY)
    assert out == FORMATTED
    assert fmt(out) == out
    before, after = rollout_of(MESSY.replace("revert    \"why\"\n", "")), rollout_of(
        FORMATTED.replace("revert \"why\"\n", ""))
    assert before.gates  # both load clean
    assert [strip_spans(asdict(g)) for g in before.gates] == [strip_spans(asdict(g)) for g in after.gates]


@pytest.mark.parametrize(("log", "row"), [
    ("", "| `email` | no request log |"),
    ("  log requests 5% {\n    fields trace_id, model_version, x\n  }", "| `email` | not logged |"),
    ("  log requests 5% {\n    fields trace_id, model_version, email\n    pii email hashed\n    retain 7d\n  }",
     "| `email` | logged hashed |"),
    ("  log requests 5% {\n    fields trace_id, model_version, email\n    pii email dropped\n  }",
     "| `email` | dropped from the log |"),
    ("  log requests 5% {\n    fields trace_id, model_version, email\n  }",
     "| `email` | **logged in clear** (RL654) |"),
])
def test_explain_says_what_happens_to_personal_data(log: str, row: str) -> None:
    text = demo_spec("  canary { 5% for 1h  100% }\n" + log).replace(
        "signature { in x: float32  out score: float32 }",
        "signature { in x: float32, email: string pii  out score: float32 }")
    md = explain_program(load_text(text, "spec.rollout"))
    section = md.split("### Personal data", 1)[1].split("###", 1)[0]
    assert row in section
    assert ("7d" in section) == ("retain 7d" in log)
    plain = explain_program(load_text(demo_spec("  canary { 5% for 1h  100% }\n" + log.replace("email", "x")),
                                      "spec.rollout"))
    assert "### Personal data" not in plain


@pytest.mark.parametrize(("strategy", "sentence"), [
    ("canary { 5% for 1h  mpr: 50% until approved  100% }",
     "Promotion after 1h at the earliest; no upper bound: `mpr` waits until a person approves."),
    ("rolling { max surge 25% }", "Promotion at no fixed time: `rolling` waits until every pod is replaced."),
    ("blue-green { preview for 2h, promote manual }",
     "Promotion after 2h at the earliest; no upper bound: `preview` waits until a person approves."),
    ("canary { 5% for 1h  50% for 2h  100% }", "Promotion after 3h."),
])
def test_explain_says_when_promotion_comes(strategy: str, sentence: str) -> None:
    md = explain_program(load_text(demo_spec("  " + strategy), "spec.rollout"))
    assert sentence in md


JUMP = f"""rollout r {{
  model stable    s 1.0.0 @ {D1}
  model candidate s 1.0.1 @ {D2}
  signature {{ in x: float32  out score: float32 }}
  metrics prometheus "http://p:9090"
  traffic 100 rps
  canary {{ 1% for 1h  100% }}  # waive RL326: a patch that only changes logging
  gate e: error rate < 1% every 5m
  gate d: psi(score) < 0.2, vs training, every 30m
  on e fail: rollback now
  on d fail: pause
}}
"""


def _open(text: str) -> list[str]:
    """The codes `rollout check` reports, waived findings left out, RL143 included."""
    p = load_text(text, "spec.rollout")
    from rolloutlang.checks import run_checks

    return [d.code for d in p.waive([*p.diagnostics, *run_checks(p)]) if d.suppression is None]


def test_a_waiver_covers_its_statement_so_fmt_keeps_it() -> None:
    assert "RL326" in _open(JUMP.replace("  # waive RL326: a patch that only changes logging", ""))
    assert _open(JUMP) == []
    laid_out = fmt(JUMP)
    assert "  canary {\n    1%   for 1h\n    100%\n  }  # waive RL326: a patch that only changes logging\n" in laid_out
    assert _open(laid_out) == []  # the finding is on `100%`, two lines above the comment, inside its statement
    above = JUMP.replace("  canary { 1% for 1h  100% }  # waive RL326: a patch that only changes logging\n",
                         "  # waive RL326: a patch that only changes logging\n  canary {\n    1% for 1h\n    100%\n"
                         "  }\n")
    assert _open(above) == []


def test_a_waiver_covers_no_more_than_its_statement() -> None:
    # on the gate below the canary: RL326 is on the canary, so it stays, and the waiver matches nothing
    elsewhere = JUMP.replace("  # waive RL326: a patch that only changes logging", "").replace(
        "  gate e: error rate < 1% every 5m\n", "  gate e: error rate < 1% every 5m  # waive RL326: not here\n")
    assert sorted(_open(elsewhere)) == ["RL143", "RL326"]
    # after the rollout's closing brace: a waiver never covers a whole rollout
    whole = JUMP.replace("  # waive RL326: a patch that only changes logging", "").rstrip("\n") + \
        "  # waive RL326: everything\n"
    assert sorted(_open(whole)) == ["RL143", "RL326"]
    # a stage's own line: the stage, not the block around it
    stage = JUMP.replace("  canary { 1% for 1h  100% }  # waive RL326: a patch that only changes logging\n",
                         "  canary {\n    1% for 1h  # waive RL326: the wrong stage\n    100%\n  }\n")
    assert sorted(_open(stage)) == ["RL143", "RL326"]


@pytest.mark.parametrize(("line", "word", "hint"), [
    ('pipeline { a "x" timout 5m }', "timout", "did you mean `timeout`?"),
    ('pipeline { a "x" aftr promotion }', "aftr", "did you mean `after`?"),
    ('consumers { c expects score 1 via header "a" = "b" swich at probe }', "swich", "did you mean `switch`?"),
    ('consumers { c expects score 1 adaptr "x" }', "adaptr", "did you mean `adapter`?"),
])
def test_a_misspelt_word_of_a_hook_or_consumer_is_named(line: str, word: str, hint: str) -> None:
    """Read as the next item's name, a misspelt word made the parser trip one token later, on a word that is
    fine: the error names the misspelt word."""
    text = f"rollout r {{\n  canary {{ probe: 5% for 1h  100% }}\n  {line}\n}}\n"
    (d,) = [d for d in load_text(text, "spec.rollout").diagnostics if d.code == "RL010"]
    assert d.message == f"unexpected `{word}`" and d.help == hint
    assert at(d) == pos(text, word)


@pytest.mark.parametrize(("line", "word", "hint"), [
    ('pipeline { a "x" at strat of probe }', "strat", "did you mean `start`?"),
    ('pipeline { a "x" on rollbak }', "rollbak", "did you mean `rollback`?"),
    ("scale dwon after 1h", "dwon", "did you mean `down`?"),
])
def test_a_misspelt_keyword_in_the_middle_of_a_statement_has_a_did_you_mean(line: str, word: str,
                                                                               hint: str) -> None:
    text = f"rollout r {{\n  canary {{ probe: 5% for 1h  100% }}\n  {line}\n}}\n"
    (d,) = [d for d in load_text(text, "spec.rollout").diagnostics if d.code == "RL010"]
    assert d.message == f"unexpected `{word}`" and d.help == hint and at(d) == pos(text, word)


def test_the_simulator_leaves_job_gates_and_the_bake_out_and_says_so() -> None:
    from rolloutlang.checks import run_checks
    from rolloutlang.simulator import runner

    text = demo_spec("  canary { ramp: 10% for 1h  100% }\n  bake for 2h\n"
                     "  gate errors: error rate < 1% every 5m, fail after 2\n"
                     '  gate load: call "https://load.example.com/r" json "failed.rate" < 0.01, every 30m\n'
                     '  pipeline { warm "make warm" at start of ramp }\n'
                     "  on errors, load fail: rollback now\n"
                     "  scenario broken { load 1 }", traffic="traffic 100 rps")
    program = load_text(text, "spec.rollout")
    assert not program.has_errors, [d.message for d in program.diagnostics]
    d = one(run_checks(program), "RL802")
    assert d.message == "the simulator does not model job gates: this effect on `load` is ignored"
    (rollout,) = program.rollouts()
    opts = runner.Options(runs=50, seed=1, workers=1, scenarios=("null",))
    doc = runner.simulate(rollout, build_plan(rollout), opts).to_json()
    assert "gate `load` (a job gate) is not simulated: it never fails here" in json.dumps(doc)
    assert "the bake after promotion is not simulated" in json.dumps(doc)


def test_explain_rebuilds_the_simulators_spreads_in_the_signals_unit() -> None:
    from rolloutlang.explain import describe_gate

    text = demo_spec("  canary { 5% for 1h  100% }\n  gate l: p99 latency < 300ms, baseline 200ms, sigma 0.6\n"
                     "  gate s: saturation < 80%, sd 5%\n  on l, s fail: rollback now")
    (rollout,) = load_text(text, "spec.rollout").rollouts()
    assert [describe_gate(g) for g in rollout.gates] == [
        "p99 latency < 300ms, baseline 200ms, sigma 0.6, every 1m, fail after 1",
        "saturation < 80%, sd 5%, every 1m, fail after 1"]


def test_a_business_gate_on_the_holdout_is_left_to_after_promotion_by_the_simulator() -> None:
    """The simulator plays the plan up to promotion: a gate that looks only on the holdout is named, not run."""
    from rolloutlang.simulator import runner

    program = load(ROOT / "examples" / "ranker-v3-canary.rollout")
    (rollout,) = program.rollouts()
    opts = runner.Options(runs=50, seed=1, workers=1, scenarios=("null",))
    doc = json.dumps(runner.simulate(rollout, build_plan(rollout), opts).to_json())
    assert "gate `ctr-holdout` looks only after promotion (bake, holdout): it is not simulated" in doc
    assert "the holdout after promotion is not simulated" in doc


def test_compile_honours_waivers_as_check_does(capsys: pytest.CaptureFixture[str]) -> None:
    """embedder-v3 waives RL411 on its consumer: compile neither shows it nor counts it as a warning."""
    code, _, err = run_cli(["compile", str(ROOT / "examples" / "embedder-v3.rollout"), "--target", "istio"], capsys)
    assert code == 0 and "RL411" not in err and "1 waived" in err
    spec = (ROOT / "examples" / "embedder-v3.rollout").read_text()
    assert "# waive RL411" in spec  # the example keeps the waiver this test relies on


def test_a_waiver_of_a_target_finding_is_not_unused_to_check(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """RL713 comes from `rollout compile` only: check leaves its waiver alone, compile lets the finding go."""
    text = (ROOT / "examples" / "fraud-scorer-rolling.rollout").read_text()
    holdout = next(line for line in text.splitlines() if line.startswith("  holdout "))
    waived = text.replace(holdout, "  # waive RL713: the holdout slice is kept by the service mesh team\n" + holdout)
    shutil.copytree(ROOT / "examples" / "policies", tmp_path / "examples" / "policies")  # what it imports
    (tmp_path / "pyproject.toml").write_text("")
    spec = tmp_path / "examples" / "fraud.rollout"
    spec.write_text(waived)
    code, _, err = run_cli(["check", "--strict", str(spec)], capsys)
    assert code == 0 and "RL143" not in err
    code, _, err = run_cli(["compile", str(spec), "--target", "argo"], capsys)
    assert code == 0 and "RL713" not in err and "1 waived" in err
    spec.write_text(text)  # without the waiver, compile says it
    code, _, err = run_cli(["compile", str(spec), "--target", "argo"], capsys)
    assert "warning[RL713]" in err
