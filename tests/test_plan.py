"""The plan graph: phases, time bounds, exposure, transitions and the earliest rollback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import pytest

from rolloutlang import ir
from rolloutlang.loader import load, load_text
from rolloutlang.plan import PAUSED, PROMOTED, ROLLED_BACK, Plan, build_plan, duration_text, render_plan
from tests.helpers import RANKER_SPEC, demo_spec, program_of

ROOT = Path(__file__).resolve().parent.parent


def spec(body: str, *, traffic: str = "traffic 100 rps") -> str:
    """The demo spec, after the blank first line this file has always given it."""
    return "\n" + demo_spec(body, traffic)


def plan_of(body: str, **kw: str) -> Plan:
    (rollout,) = program_of(spec(body, **kw)).rollouts()
    return build_plan(rollout)


CANARY = """
  canary {
    5%   for 1h
    mpr: 50% for 2h
    100%
  }
  gate errors: error rate < 1% every 1m, fail after 2
  gate drift:  psi(score) < 0.2 every 10m
  on errors fail: rollback now
  on drift fail: pause, notify "#ml"
"""


@pytest.fixture(scope="module")
def ranker() -> Plan:
    program = load_text(RANKER_SPEC, "ranker-v2.rollout")
    assert program.diagnostics == []
    (rollout,) = program.rollouts()
    return build_plan(rollout)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.rollout")), ids=lambda p: p.name)
def test_every_example_builds_a_sound_plan(path: Path) -> None:
    for rollout in load(path, ROOT).rollouts():
        plan = build_plan(rollout)
        assert plan.phases
        for phase in plan.phases:
            assert nx.has_path(plan.graph, plan.start, phase.id)
            assert plan.can_reach(phase.id, PROMOTED)
            if not phase.post_promotion:
                assert plan.can_reach(phase.id, ROLLED_BACK)
        assert plan.graph.number_of_edges() == len(plan.transitions)
        # The plan answers reachability from its own lists, as networkx does from the graph.
        for source in plan.nodes:
            for target in plan.nodes:
                assert plan.can_reach(source, target) == nx.has_path(plan.graph, source, target)
        assert list(plan.graph.nodes) == plan.nodes


def test_ranker_phases_in_order_with_weights_and_mirroring(ranker: Plan) -> None:
    assert [(p.id, p.kind, p.weight_percent, p.shadow_percent, p.duration_s) for p in ranker.phases] == [
        ("shadow", "shadow", 0.0, 100.0, 86400.0),
        ("stage.stage-1", "canary", 1.0, 0.0, 7200.0),
        ("stage.stage-2", "canary", 5.0, 0.0, 21600.0),
        ("stage.stage-3", "canary", 25.0, 0.0, 43200.0),
        ("stage.stage-4", "canary", 50.0, 0.0, 43200.0),
        ("stage.stage-5", "canary", 100.0, 0.0, 0.0),
    ]
    assert [p.index for p in ranker.phases] == list(range(6))
    assert ranker.start == "shadow"


def test_ranker_time_bounds(ranker: Plan) -> None:
    starts = [p.earliest_start_s / 3600 for p in ranker.phases]
    assert starts == [0, 24, 26, 32, 44, 56]
    assert all(p.latest_start_s == p.earliest_start_s for p in ranker.phases)
    assert all(p.latest_end_s == p.earliest_end_s for p in ranker.phases)
    assert ranker.min_duration_s == ranker.max_duration_s == 56 * 3600


def test_ranker_exposure_is_rate_times_weight_times_duration(ranker: Plan) -> None:
    rate = 12000.0
    expected = [0.0, rate * 0.01 * 7200, rate * 0.05 * 21600, rate * 0.25 * 43200, rate * 0.5 * 43200, 0.0]
    assert [p.exposure_requests for p in ranker.phases] == pytest.approx(expected)
    running = 0.0
    for phase, e in zip(ranker.phases, expected, strict=True):
        running += e
        assert phase.cumulative_exposure_requests == pytest.approx(running)
    # mirrored traffic is counted apart, never as exposure
    assert ranker.phases[0].mirrored_requests == pytest.approx(rate * 86400)
    assert ranker.phases[0].exposure_requests == 0
    assert ranker.phases[-1].cumulative_mirrored_requests == pytest.approx(rate * 86400)
    # 0.01*2h / 26h of traffic
    assert ranker.phases[1].share_so_far_percent == pytest.approx(100 * 0.01 * 2 / 26)


def test_ranker_gates_per_phase(ranker: Plan) -> None:
    # business gates need both arms on live traffic: not in the shadow, not at 100%; drift `vs stable` (the
    # default) needs stable answering the same traffic at once: the shadow and the stages below 100%
    assert ranker.phases[0].gates == ("latency", "errors", "drift")
    assert ranker.phases[1].gates == ("latency", "errors", "drift", "ctr")
    assert ranker.phases[5].gates == ("latency", "errors")
    assert ranker.gate_phases["ctr"] == ("stage.stage-1", "stage.stage-2", "stage.stage-3", "stage.stage-4")


def test_ranker_transitions(ranker: Plan) -> None:
    promotes = [(t.source, t.target, t.after_s) for t in ranker.transitions if t.kind == "promote"]
    assert promotes == [
        ("shadow", "stage.stage-1", 86400.0),
        ("stage.stage-1", "stage.stage-2", 7200.0),
        ("stage.stage-2", "stage.stage-3", 21600.0),
        ("stage.stage-3", "stage.stage-4", 43200.0),
        ("stage.stage-4", "stage.stage-5", 43200.0),
        ("stage.stage-5", PROMOTED, None),
    ]
    shadow_out = ranker.transitions_from("shadow")
    assert [(t.kind, t.target, t.gates, t.immediate) for t in shadow_out] == [
        ("promote", "stage.stage-1", ("latency", "errors", "drift"), False),
        ("rollback", ROLLED_BACK, ("latency", "errors"), True),
        ("pause", PAUSED, ("drift",), False),
    ]
    stage1 = ranker.transitions_from("stage.stage-1", "rollback")
    assert [(t.gates, t.rule, t.immediate) for t in stage1] == [(("latency", "errors"), 0, True), (("ctr",), 1, False)]
    pause = ranker.transitions_from("shadow", "pause")[0]
    assert pause.notify == ("#recs-ml-oncall",)
    resumes = [t.target for t in ranker.transitions if t.kind == "resume"]
    assert resumes == [p.id for p in ranker.phases if "drift" in p.gates]


def test_graph_mirrors_the_transitions(ranker: Plan) -> None:
    g = ranker.graph
    assert isinstance(g, nx.MultiDiGraph)
    assert list(g.nodes) == [p.id for p in ranker.phases] + [PROMOTED, ROLLED_BACK, PAUSED]
    assert g.number_of_edges() == len(ranker.transitions)
    for t in ranker.transitions:
        assert g.edges[t.source, t.target, t.key]["transition"] is t
    assert g.nodes["stage.stage-2"]["phase"] is ranker.phases[2]
    assert g.nodes[PROMOTED]["kind"] == "end"


def test_every_phase_is_reachable_and_can_end(ranker: Plan) -> None:
    for phase in ranker.phases:
        assert nx.has_path(ranker.graph, ranker.start, phase.id)
        assert ranker.can_reach(phase.id, PROMOTED)
        assert ranker.can_reach(phase.id, ROLLED_BACK)


def test_shadow_alongside_canary_mirrors_below_until() -> None:
    plan = plan_of(CANARY.replace("  canary {", "  shadow 100% alongside canary until 50%\n  canary {"))
    assert [(p.name, p.shadow_percent) for p in plan.phases] == [("stage-1", 100.0), ("mpr", 0.0),
                                                                 ("stage-3", 0.0)]
    assert plan.phases[0].mirrored_requests == pytest.approx(100 * 3600)
    assert plan.phases[0].exposure_requests == pytest.approx(100 * 0.05 * 3600)
    # without `until`, it mirrors during every stage below 100%
    plan = plan_of(CANARY.replace("  canary {", "  shadow 30% alongside canary\n  canary {"))
    assert [p.shadow_percent for p in plan.phases] == [30.0, 30.0, 0.0]


def test_from_stage_limits_where_a_gate_runs() -> None:
    plan = plan_of(CANARY.replace("fail after 2", "fail after 2, from mpr"))
    assert plan.gate_phases["errors"] == ("stage.mpr", "stage.stage-3")
    assert plan.transitions_from("stage.stage-1", "rollback") == []


def test_until_approved_makes_the_end_unbounded() -> None:
    body = CANARY.replace("mpr: 50% for 2h", "mpr: 50% until approved") + '  approve mpr by "@leads"\n'
    plan = plan_of(body)
    mpr = plan.phase("stage.mpr")
    assert mpr.approval and mpr.open_ended and mpr.approvers == ("@leads",)
    assert mpr.duration_s is None
    assert (mpr.earliest_start_s, mpr.earliest_end_s, mpr.latest_start_s, mpr.latest_end_s) == (3600, 3600, 3600,
                                                                                                   None)
    last = plan.phases[-1]
    assert last.latest_start_s is None and last.latest_end_s is None
    assert plan.min_duration_s == 3600 and plan.max_duration_s is None
    (promote,) = plan.transitions_from("stage.mpr", "promote")
    assert promote.trigger == "approval" and promote.approvers == ("@leads",)
    assert "approval" in promote.label


def test_hold_is_an_approval_to_promote() -> None:
    plan = plan_of(CANARY.replace("    100%\n", "").replace("mpr: 50% for 2h", "mpr: 50% hold"))
    last = plan.phases[-1]
    assert last.hold and last.approval and last.latest_end_s is None
    (promote,) = plan.transitions_from(last.id, "promote")
    assert (promote.target, promote.trigger) == (PROMOTED, "approval")


def test_blue_green_preview_and_manual_promotion() -> None:
    plan = plan_of("""
  blue-green { preview for 2h, promote manual }
  gate errors: error rate < 1% every 1m
  on errors fail: rollback now
""")
    (preview,) = plan.phases
    assert (preview.kind, preview.weight_percent, preview.duration_s) == ("preview", 0.0, 7200.0)
    assert preview.open_ended and preview.latest_end_s is None and preview.earliest_end_s == 7200
    (promote,) = plan.transitions_from("preview", "promote")
    assert (promote.target, promote.trigger, promote.label) == (PROMOTED, "approval", "promote after 2h and approval")
    auto = plan_of("""
  blue-green { preview for 2h, promote auto }
  gate errors: error rate < 1% every 1m
  on errors fail: rollback now
""")
    assert auto.phases[0].open_ended is False and auto.max_duration_s == 7200


def test_rolling_then_holdout_after_promotion() -> None:
    plan = plan_of("""
  rolling { max surge 25% }
  gate errors: error rate < 1% every 1m
  on errors fail: rollback now
  holdout 1% on stable for 14d
  approve promotion by "@leads"
""")
    rolling, holdout = plan.phases
    assert (rolling.kind, rolling.weight_percent, rolling.open_ended, rolling.approvers) == ("rolling", 100.0, True,
                                                                                             ("@leads",))
    # a gate on the candidate alone keeps watching after promotion, and its rule still rolls back
    assert (holdout.kind, holdout.weight_percent, holdout.post_promotion, holdout.gates) == ("holdout", 99.0, True,
                                                                                              ("errors",))
    assert [(t.source, t.target) for t in plan.transitions if t.kind == "promote"] == [
        ("rolling", "holdout"), ("holdout", PROMOTED)]
    assert [t.gates for t in plan.transitions_from("holdout", "rollback")] == [("errors",)]
    assert plan.min_duration_s == 0 and plan.max_duration_s is None  # the holdout does not count
    assert holdout.exposure_requests == pytest.approx(100 * 0.99 * 14 * 86400)
    assert rolling.description == "rolling update to 100%, then approval"
    assert rolling.max_surge is not None and (rolling.max_surge.value, rolling.max_surge.unit) == (25, "percent")
    assert rolling.max_unavailable is not None and rolling.max_unavailable.value == 0


def test_strategy_options_and_rollback_approvers_reach_the_plan() -> None:
    plan = plan_of("""
  blue-green { preview for 2h, promote auto, scale down after 30m }
  gate errors: error rate < 1% every 1m
  on errors fail: rollback now
  approve rollback by "@oncall"
""")
    (preview,) = plan.phases
    assert preview.scale_down_delay_s == 1800 and preview.max_surge is None
    (rollback,) = plan.transitions_from("preview", "rollback")
    assert rollback.approvers == ("@oncall",)
    doc = json.loads(render_plan(plan, "json"))
    assert doc["nodes"][0]["scale_down_delay_s"] == 1800


def test_no_traffic_model_means_no_request_counts() -> None:
    plan = plan_of(CANARY, traffic="")
    assert plan.rate_rps is None
    assert all(p.exposure_requests is None and p.cumulative_exposure_requests is None for p in plan.phases)
    assert plan.phases[1].cumulative_weighted_s == pytest.approx(0.05 * 3600 + 0.5 * 7200)


def test_no_strategy_gives_an_empty_plan() -> None:
    plan = plan_of("  gate errors: error rate < 1%\n  on errors fail: rollback now\n")
    assert plan.phases == [] and plan.start == PROMOTED
    assert plan.transitions == []


def test_pause_end_only_when_some_rule_pauses() -> None:
    plan = plan_of(CANARY.replace("pause, ", ""))
    assert PAUSED not in plan.graph and plan.ends == (PROMOTED, ROLLED_BACK)


# -- earliest rollback ----------------------------------------------------------------------------


def test_earliest_rollback_of_slo_gate_in_the_shadow_costs_nothing(ranker: Plan) -> None:
    bound = ranker.earliest_rollback("latency")
    assert bound is not None
    assert (bound.fires_s, bound.rollback_s, bound.phase) == (600, 600, "shadow")
    assert bound.weighted_s() == 0


def test_earliest_rollback_of_business_gate_is_its_first_stage_end(ranker: Plan) -> None:
    bound = ranker.earliest_rollback("ctr")
    assert bound is not None
    assert (bound.rollback_s, bound.phase) == (26 * 3600, "stage.stage-1")
    assert bound.weighted_s() * 12000 == pytest.approx(864_000)
    assert bound.weighted_s(until=25 * 3600) == pytest.approx(0.01 * 3600)


def test_gates_that_do_not_roll_back_have_no_bound(ranker: Plan) -> None:
    assert ranker.earliest_rollback("drift") is None
    assert ranker.rollback_gates() == ["latency", "errors", "ctr"]


def test_confirmation_wait_holds_the_weight() -> None:
    plan = plan_of(CANARY.replace("rollback now", "rollback after 30m"))
    bound = plan.earliest_rollback("errors")
    assert bound is not None
    assert (bound.fires_s, bound.rollback_s) == (120, 120 + 1800)
    assert bound.weighted_s() == pytest.approx(0.05 * 1920)


def test_slow_gate_carries_into_the_next_stage() -> None:
    plan = plan_of(CANARY.replace("every 1m, fail after 2", "every 45m, fail after 2"))
    bound = plan.earliest_rollback("errors")
    assert bound is not None and bound.phase == "stage.mpr"
    assert bound.weighted_s() == pytest.approx(0.05 * 3600 + 0.5 * 1800)


def test_open_ended_phase_waits_for_a_pending_gate() -> None:
    plan = plan_of("""
  rolling { max surge 25% }
  gate errors: error rate < 1% every 1m, fail after 3
  on errors fail: rollback now
""")
    bound = plan.earliest_rollback("errors")
    assert bound is not None and (bound.rollback_s, bound.phase) == (180, "rolling")
    assert bound.weighted_s() == pytest.approx(180)


def test_gate_that_cannot_fire_before_promotion_never_rolls_back() -> None:
    plan = plan_of(CANARY.replace("every 1m, fail after 2", "every 2h, fail after 2"))
    bound = plan.earliest_rollback("errors")
    assert bound is not None and bound.rollback_s is None
    assert math.isinf(bound.weighted_s())
    # until 4h: 1h at 5%, 2h at 50%, then promoted at 100%
    assert bound.weighted_s(until=4 * 3600) == pytest.approx(0.05 * 3600 + 0.5 * 7200 + 3600)


def test_without_rollback_is_the_fastest_schedule() -> None:
    plan = plan_of(CANARY)
    assert plan.weighted_s(3600) == pytest.approx(0.05 * 3600)
    assert plan.weighted_s(3 * 3600 + 60) == pytest.approx(0.05 * 3600 + 0.5 * 7200 + 60)


# -- stability and rendering helpers -----------------------------------------------------------------


def test_build_is_deterministic() -> None:
    text = spec(CANARY)
    a = render_plan(build_plan(load_text(text, "spec.rollout").rollouts()[0]), "json")
    b = render_plan(build_plan(load_text(text, "spec.rollout").rollouts()[0]), "json")
    assert a == b
    doc = json.loads(a)
    assert [n["id"] for n in doc["nodes"]] == ["stage.stage-1", "stage.mpr", "stage.stage-3", PROMOTED,
                                              ROLLED_BACK, PAUSED]


def test_render_plan_rejects_an_unknown_format(ranker: Plan) -> None:
    with pytest.raises(ValueError, match="unknown plan format"):
        render_plan(ranker, "svg")


def test_phase_labels(ranker: Plan) -> None:
    assert [p.description for p in ranker.phases] == [
        "mirror 100% for 24h", "1% for 2h", "5% for 6h", "25% for 12h", "50% for 12h", "100%"]
    assert ranker.phases[1].label == "stage-1\n1% for 2h"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (45, "45s"), (600, "10m"), (5400, "90m"), (7200, "2h"), (86400, "24h"), (93600, "26h"),
    (172800, "2d"), (604800, "7d"), (0.25, "250ms"),
])
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_plan_reads_only_the_ir(ranker: Plan) -> None:
    assert isinstance(ranker.rollout, ir.Rollout)
    assert ranker.name == "ranker-v2"
