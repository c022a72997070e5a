"""The Istio target: the VirtualService and DestinationRule Argo manages, and per-stage routing for GitOps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rolloutlang.source import Span
from rolloutlang.targets.istio import Destination, HttpRoute, Subset, VirtualServiceView, validate_routing
from rolloutlang.targets.kube import Metadata
from tests.helpers import assert_golden
from tests.manifests import EXAMPLES, SCHEMAS, by_kind, compile_example, compile_text, documents, schema_errors
from tests.test_targets_argo import SLO, spec

ROUTES = ('  route header "x-ml-preview" = "true" to candidate\n'
          '  route header "x-caller" = "billing" to stable\n'
          '  route cookie "beta" ~ "^ranker-[0-9]+$" to candidate\n')
CONSUMERS = """  signature stable    { in x: float32  out v: vector<float32, 256> }
  signature candidate { in x: float32  out v: vector<float32, 384> }
  consumers {
    old-reader expects v 256 adapter "pca" via header "x-caller" = "old"
    new-reader expects v 384 via header "x-caller" = "new"
  }
"""


def istio(text: str, **options: object) -> tuple[list[dict], list[dict], list[str]]:
    outputs, diags = compile_text(text, ["istio"], **options)
    assert not [d for d in diags if d.is_error], [(d.code, d.message) for d in diags]
    for _, doc in documents(outputs):
        assert schema_errors(doc) == []
    return by_kind(outputs, "VirtualService"), by_kind(outputs, "DestinationRule"), [o.path for o in outputs]


def _consumer_spec(strategy: str = "canary { 10% for 1h  100% }", shadow: str = "100%") -> str:
    text = spec(SLO, strategy, head=ROUTES + f"  shadow {shadow} for 1h\n")  # a major version is previewed
    text = text.replace("scorer 1.0.1 @", "scorer 2.0.0 @")  # a new output shape is a major version
    return text.replace("  signature { in x: float32, country: category  out score: float32 }\n", CONSUMERS)


def test_canary_routing_leaves_the_candidate_routes_to_argo() -> None:
    vss, drs, _ = istio(_consumer_spec())
    http = vss[0]["spec"]["http"]
    # every consumer with a `via` is pinned to stable until its own switch (by default, promotion)
    assert [h["name"] for h in http] == ["header-x-caller-to-stable", "consumer-old-reader", "consumer-new-reader",
                                         "primary"]
    assert http[0]["route"] == [{"destination": {"host": "demo", "subset": "stable"}}]
    assert http[-1]["route"] == [{"destination": {"host": "demo", "subset": "stable"}, "weight": 100},
                                 {"destination": {"host": "demo", "subset": "canary"}, "weight": 0}]
    assert drs[0]["spec"]["subsets"] == [{"name": "stable", "labels": {"app": "demo"}},
                                         {"name": "canary", "labels": {"app": "demo"}}]
    # The candidate's routes are the Rollout's managed header routes, in the written order.
    outputs, _ = compile_text(_consumer_spec(), ["argo"])
    managed = by_kind(outputs, "Rollout")[0]["spec"]["strategy"]["canary"]["trafficRouting"]["managedRoutes"]
    assert [m["name"] for m in managed] == ["header-x-ml-preview-to-candidate", "cookie-beta-to-candidate",
                                            "mirror"]


def test_blue_green_routes_to_the_active_and_preview_services() -> None:
    vss, drs, _ = istio(_consumer_spec("blue-green { preview for 1h }"))  # RL720: its shadow stays out
    http = vss[0]["spec"]["http"]
    hosts = {h["name"]: h["route"][0]["destination"]["host"] for h in http}
    assert hosts == {"header-x-ml-preview-to-candidate": "demo-preview", "header-x-caller-to-stable": "demo",
                     "cookie-beta-to-candidate": "demo-preview", "consumer-old-reader": "demo",
                     "consumer-new-reader": "demo", "primary": "demo"}
    assert [h["name"] for h in http][-1] == "primary" and drs == []
    # switched at the preview, the consumer reads the preview from the start
    vss, _, _ = istio(_consumer_spec("blue-green { preview for 1h }").replace('= "new"', '= "new" switch at preview'))
    hosts = {h["name"]: h["route"][0]["destination"]["host"] for h in vss[0]["spec"]["http"]}
    assert hosts["consumer-new-reader"] == "demo-preview" and hosts["consumer-old-reader"] == "demo"
    cookie = next(h for h in http if h["name"] == "cookie-beta-to-candidate")
    import re

    regex = cookie["match"][0]["headers"]["cookie"]["regex"]
    assert re.fullmatch(regex, "session=1; beta=ranker-42") and not re.fullmatch(regex, "beta=ranker-x")


def test_per_stage_writes_one_virtual_service_per_phase() -> None:
    text = _consumer_spec("canary { 10% for 1h  50% hold }", shadow="0.5%")
    vss, drs, paths = istio(text, per_stage=True)
    assert paths == ["destinationrule-demo.yaml", "stages/00-shadow/virtualservice-demo.yaml",
                     "stages/01-stage-1/virtualservice-demo.yaml", "stages/02-stage-2/virtualservice-demo.yaml",
                     "stages/03-promoted/virtualservice-demo.yaml"]
    shadow, first, hold, promoted = vss
    primary = shadow["spec"]["http"][-1]
    assert primary["mirror"] == {"host": "demo", "subset": "canary"} and primary["mirrorPercentage"] == {"value": 0.5}
    assert [d["weight"] for d in hold["spec"]["http"][-1]["route"]] == [50, 50]
    assert [d["weight"] for d in promoted["spec"]["http"][-1]["route"]] == [0, 100]
    # Every route is static here, in the written order: routes, then consumers, then the weighted one.
    assert [h["name"] for h in first["spec"]["http"]] == [
        "header-x-ml-preview-to-candidate", "header-x-caller-to-stable", "cookie-beta-to-candidate",
        "consumer-old-reader", "consumer-new-reader", "primary"]
    assert {s["name"]: s["labels"]["rolloutlang.dev/model-version"] for s in drs[0]["spec"]["subsets"]} == \
        {"stable": "1.0.0", "canary": "2.0.0"}
    assert "mirror" not in first["spec"]["http"][-1]


def _subset_of(vs: dict, route: str) -> str:
    return str(next(h for h in vs["spec"]["http"] if h["name"] == route)["route"][0]["destination"]["subset"])


def test_consumers_are_pinned_to_stable_until_their_own_switch_per_stage() -> None:
    text = _consumer_spec("canary { first: 10% for 1h  wide: 50% for 1h  100% }", shadow="1%")
    text = text.replace('= "new"', '= "new" switch at wide')
    vss, _, _ = istio(text, per_stage=True)
    by_phase = {vs["metadata"]["annotations"]["rolloutlang.dev/stage"]: vs for vs in vss}
    phases = ("shadow", "first", "wide", "stage-3", "promoted")
    assert [_subset_of(by_phase[p], "consumer-new-reader") for p in phases] == \
        ["stable", "stable", "canary", "canary", "canary"]
    # the consumer with an adapter moves at promotion only: after the last stage, even at 100%
    assert [_subset_of(by_phase[p], "consumer-old-reader") for p in phases] == \
        ["stable", "stable", "stable", "stable", "canary"]
    # With Argo Rollouts: a static route to stable, then the Rollout's own header route from the switch on.
    vss, _, _ = istio(text)
    assert _subset_of(vss[0], "consumer-new-reader") == "stable"
    outputs, _ = compile_text(text, ["argo"])
    canary = by_kind(outputs, "Rollout")[0]["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    at = next(i for i, s in enumerate(steps) if s.get("setHeaderRoute", {}).get("name") == "consumer-new-reader")
    assert steps[at - 1] == {"setWeight": 50}
    assert steps[at]["setHeaderRoute"]["match"] == [{"headerName": "x-caller", "headerValue": {"exact": "new"}}]
    assert "consumer-new-reader" in [m["name"] for m in canary["trafficRouting"]["managedRoutes"]]


@pytest.mark.parametrize("example", EXAMPLES)
def test_per_stage_goldens_and_rules(request: pytest.FixtureRequest, tmp_path: Path, example: str) -> None:
    outputs, diags = compile_example(example, ["istio"], per_stage=True)
    assert not [d for d in diags if d.is_error]
    for out in outputs:
        assert_golden(request, f"{example}/istio-per-stage/{out.path}", out.text)
        dest = tmp_path / out.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(out.text, encoding="utf-8")
    # Every stage's VirtualService with the one DestinationRule whose subsets they name.
    done = subprocess.run([sys.executable, str(SCHEMAS.parent / "tools" / "check_manifests.py"), str(SCHEMAS),
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout
    assert "VirtualService=" in done.stdout


def test_versions_that_are_not_label_values_cannot_route_per_stage() -> None:
    text = spec(SLO).replace("scorer 1.0.1 @", "scorer 1.0.1+build.with.a.very.long.tail.that.goes.on.and.on.and.on @")
    outputs, diags = compile_text(text, ["istio"], per_stage=True)
    assert [d.code for d in diags if d.is_error] == ["RL734"] and outputs == []
    assert compile_text(text, ["istio"])[0]  # Argo-managed routing does not select by version


def test_fractional_weights_are_refused_per_stage() -> None:
    outputs, diags = compile_text(spec(SLO, "canary { 2.5% for 1h  100% }"), ["istio"], per_stage=True)
    assert [d.code for d in diags if d.is_error] == ["RL710"] and outputs == []


def test_the_routing_rules_catch_broken_objects() -> None:
    span = Span(file="x", line=1, col=1, end_line=1, end_col=2)
    routes = [HttpRoute("all", [Destination("h", "stable", 60), Destination("h", "canary", 30)]),
              HttpRoute("late", [Destination("h", "nope")], header="x", match="exact", value="1",
                        mirror=Destination("h", "canary"), mirror_percent=150.0),
              HttpRoute("late", [Destination("h", "stable")], header="y", match="exact", value="1")]
    view = VirtualServiceView(Metadata("Bad_Name", None), ["*"], routes)
    problems = " | ".join(p for p, _ in validate_routing([view], [Subset("stable"), Subset("canary")], "h", span))
    for rule in ("not DNS-1123", "no `*`", "names repeat", "matches everything", "do not sum to 100",
                 "subset `nope`", "mirror percentage 150"):
        assert rule in problems, rule
