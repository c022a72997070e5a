"""The Argo Rollouts target: what each construct becomes, the upstream rules, the limits, and the real validators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rolloutlang.source import Span
from rolloutlang.targets import argo
from rolloutlang.targets.argo import MetricView, Step, TemplateView, validate_rollout
from rolloutlang.targets.kube import Metadata
from tests.helpers import D1, D2, assert_golden, run_cli
from tests.manifests import (
    EXAMPLES,
    ROOT,
    SCHEMAS,
    by_kind,
    compile_example,
    compile_text,
    documents,
    fill_args,
    prometheus_queries,
    schema_errors,
)
from tests.tools import require_tool

EVALUATOR = "registry.example.com/rolloutlang@sha256:" + "e" * 64


def spec(body: str, strategy: str = "canary { 10% for 1h  50% for 1h  100% }", head: str = "") -> str:
    """A canary rollout `demo` with models, serving, metrics and an evaluator; `body` holds gates and rules."""
    return f"""rollout demo {{
  service demo
  namespace ml
  model stable    scorer 1.0.0 @ {D1}
  model candidate scorer 1.0.1 @ {D2} from "models:/scorer/2"
  signature {{ in x: float32, country: category  out score: float32 }}
  serving {{
    image "registry.example.com/scorer" @ {D1}
    replicas 2..8
    resources cpu 1, memory 2Gi
  }}
  traffic 1000 rps
  metrics prometheus "http://prometheus:9090" {{
    evaluator "registry.example.com/rolloutlang" @ {D2}
  }}
  metric ctr: binary, baseline 5%
{head}  {strategy}
{body}
}}
"""


HARM = "fail if shown harmful, power 80% at -10%"

SLO = """  gate errors: error rate < 1% every 1m, fail after 3
  on errors fail: rollback now
"""


def argo_outputs(text: str, **options: Any) -> dict[str, dict[str, Any]]:
    outputs, diags = compile_text(text, ["argo"], **options)
    assert not [d for d in diags if d.is_error], [(d.code, d.message) for d in diags]
    return {f"{d['kind']}/{d['metadata']['name']}": d for _, d in documents(outputs)}


def codes(text: str, targets: tuple[str, ...] = ("argo",), **options: Any) -> list[tuple[str, int | None]]:
    outputs, diags = compile_text(text, list(targets), **options)
    if any(d.is_error for d in diags):
        assert outputs == []  # nothing is written when a target cannot express the spec
    return [(d.code, d.span.line if d.span else None) for d in diags if d.code.startswith("RL7")]


# -- every example ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_compiles_and_validates(example: str) -> None:
    outputs, diags = compile_example(example, ["argo", "istio"])
    assert not [d for d in diags if d.is_error], [(d.code, d.message) for d in diags]
    docs = list(documents(outputs))
    kinds = {d["kind"] for _, d in docs}
    assert {"Rollout", "Service", "VirtualService"} <= kinds
    for path, doc in docs:
        assert schema_errors(doc) == [], path


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("target", ["argo", "istio"])
def test_golden_files(request: pytest.FixtureRequest, example: str, target: str) -> None:
    outputs, _ = compile_example(example, [target])
    assert outputs
    for out in outputs:
        assert_golden(request, f"{example}/{target}/{out.path}", out.text)
    listing = sorted(p.relative_to(ROOT / "tests" / "golden" / example / target).as_posix()
                     for p in (ROOT / "tests" / "golden" / example / target).rglob("*") if p.is_file())
    if not request.config.getoption("--update-goldens"):
        assert listing == sorted(o.path for o in outputs), "a golden file is left over or missing"


def _write(outputs: list[Any], folder: Path) -> None:
    for out in outputs:
        dest = folder / out.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(out.text, encoding="utf-8")


@pytest.mark.parametrize("example", EXAMPLES)
def test_upstream_rules_hold_on_every_output(tmp_path: Path, example: str) -> None:
    """`check_manifests.py` (strict schemas and the Argo/Istio rules no schema holds) reports nothing."""
    outputs, _ = compile_example(example, ["argo", "istio"])
    _write(outputs, tmp_path)
    tool = SCHEMAS.parent / "tools" / "check_manifests.py"
    done = subprocess.run([sys.executable, str(tool), str(SCHEMAS), str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("kinds: "), done.stdout


def test_every_query_parses_with_promql_parser() -> None:
    import promql_parser

    queries = [q for example in EXAMPLES for _, q in prometheus_queries(compile_example(example, ["argo"])[0])]
    assert len(queries) > 10
    for q in queries:
        promql_parser.parse(fill_args(q))


def test_every_query_passes_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = []
    for example in EXAMPLES:
        for _, q in prometheus_queries(compile_example(example, ["argo"])[0]):
            rules.append({"record": f"rolloutlang:query_{len(rules)}", "expr": fill_args(q)})
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "generated", "rules": rules}]}), encoding="utf-8")
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


# -- stable output ---------------------------------------------------------------------------------------


def test_output_is_byte_identical_and_independent_of_folder_and_clock(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = compile_example("ranker-v2", ["argo", "istio"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.time", lambda: 4_000_000_000.0)
    second, _ = compile_example("ranker-v2", ["argo", "istio"])
    assert [(o.path, o.text) for o in first] == [(o.path, o.text) for o in second]
    # And through the command line, from another folder: the same bytes as the golden files.
    out = tmp_path / "deploy"
    code = subprocess.run([sys.executable, "-m", "rolloutlang", "compile", str(ROOT / "examples" / "ranker-v2.rollout"),
                           "-t", "argo", "-o", str(out)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "TZ": "Pacific/Kiritimati"}, timeout=120).returncode
    assert code == 0
    for o in first:
        if (out / o.path).exists():
            assert (out / o.path).read_text(encoding="utf-8") == o.text


# -- what each construct becomes -----------------------------------------------------------------------------


def test_canary_stages_are_weights_and_pauses_and_the_last_step_promotes() -> None:
    docs = argo_outputs(spec(SLO, "canary { 10% for 1h  ramp: 50% until approved  100% }"))
    steps = docs["Rollout/demo"]["spec"]["strategy"]["canary"]["steps"]
    assert steps == [{"setWeight": 10}, {"pause": {"duration": "1h"}}, {"setWeight": 50}, {"pause": {}}]


def test_shadow_phase_mirrors_then_removes_the_mirror() -> None:
    docs = argo_outputs(spec(SLO, head="  shadow 40% for 2h\n"))
    canary = docs["Rollout/demo"]["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"]["managedRoutes"] == [{"name": "mirror"}]
    assert canary["steps"][:5] == [
        {"setCanaryScale": {"weight": 40}},
        {"setMirrorRoute": {"name": "mirror", "percentage": 40, "match": [{"path": {"prefix": "/"}}]}},
        {"pause": {"duration": "2h"}},
        {"setMirrorRoute": {"name": "mirror"}},  # no match: removes the route
        {"setCanaryScale": {"matchTrafficWeight": True}},
    ]


def test_shadow_alongside_canary_mirrors_until_its_stage() -> None:
    docs = argo_outputs(spec(SLO, "canary { 1% for 1h  5% for 1h  25% for 1h  100% }",
                             head="  shadow 100% alongside canary until 25%\n"))
    steps = docs["Rollout/demo"]["spec"]["strategy"]["canary"]["steps"]
    kinds = [next(iter(s)) for s in steps]
    assert kinds == ["setCanaryScale", "setWeight", "setMirrorRoute", "pause", "setCanaryScale", "setWeight", "pause",
                     "setMirrorRoute", "setCanaryScale", "setWeight", "pause"]
    assert steps[4] == {"setCanaryScale": {"weight": 100}} and steps[7] == {"setMirrorRoute": {"name": "mirror"}}


def test_routes_to_the_candidate_are_managed_header_routes() -> None:
    head = ('  route header "X-ML-Preview" = "true" to candidate\n'
            '  route cookie "beta" ^= "ranker-" to candidate\n'
            '  route header "x-caller" = "billing" to stable\n')
    canary = argo_outputs(spec(SLO, head=head))["Rollout/demo"]["spec"]["strategy"]["canary"]
    assert canary["trafficRouting"]["managedRoutes"] == [{"name": "header-x-ml-preview-to-candidate"},
                                                         {"name": "cookie-beta-to-candidate"}]
    first, second = canary["steps"][:2]
    assert first == {"setHeaderRoute": {"name": "header-x-ml-preview-to-candidate",
                                        "match": [{"headerName": "x-ml-preview", "headerValue": {"exact": "true"}}]}}
    regex = second["setHeaderRoute"]["match"][0]["headerValue"]["regex"]
    assert second["setHeaderRoute"]["match"][0]["headerName"] == "cookie"
    import re

    assert re.fullmatch(regex, "a=1; beta=ranker-7; c=2") and re.fullmatch(regex, "beta=ranker-")
    assert not re.fullmatch(regex, "xbeta=ranker-7") and not re.fullmatch(regex, "beta=other")


def test_slo_gates_are_prometheus_metrics_and_rules_decide_abort_or_pause() -> None:
    body = """  gate errors:  error rate < 1% every 1m, fail after 3
  gate latency: p99 latency < 200ms every 5m
  gate cpu:     saturation < 80% every 5m, fail after 2
  on errors fail:  rollback after 10m
  on latency fail: pause
  on cpu fail:     notify "#oncall"
"""
    docs = argo_outputs(spec(body))
    errors = docs["AnalysisTemplate/demo-errors"]["spec"]["metrics"][0]
    assert errors["interval"] == "1m" and errors["failureLimit"] == 2 + 10  # fail after 3, plus 10m of 1m looks
    assert errors["inconclusiveLimit"] == 2 and "count" not in errors
    assert errors["successCondition"] == "len(result) == 1 && !isNaN(result[0]) && result[0] < 0.01"
    assert errors["failureCondition"] == "len(result) == 1 && !isNaN(result[0]) && result[0] >= 0.01"
    latency = docs["AnalysisTemplate/demo-latency"]["spec"]["metrics"][0]
    assert latency["failureCondition"] == "false"  # a breach is inconclusive, which pauses the Rollout
    assert "histogram_quantile(0.99" in latency["provider"]["prometheus"]["query"]
    cpu = docs["AnalysisTemplate/demo-cpu"]
    assert cpu["spec"]["dryRun"] == [{"metricName": "cpu"}] and cpu["spec"]["args"] == [{"name": "canary-hash"}]
    assert 'pod=~\\"demo-{{args.canary-hash}}-.*\\"' in yaml.safe_dump(cpu) or \
        'pod=~"demo-{{args.canary-hash}}-.*"' in cpu["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    analysis = docs["Rollout/demo"]["spec"]["strategy"]["canary"]["analysis"]
    assert [t["templateName"] for t in analysis["templates"]] == ["demo-errors", "demo-latency", "demo-cpu"]
    assert analysis["args"] == [{"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]


def test_gates_from_a_later_stage_start_late() -> None:
    body = """  gate errors: error rate < 1% every 1m
  gate late:   error rate < 2% every 5m, from ramp
  on errors, late fail: rollback
"""
    docs = argo_outputs(spec(body, "canary { 10% for 1h  ramp: 50% for 2h  100% }"))
    assert docs["AnalysisTemplate/demo-errors"]["spec"]["metrics"][0]["initialDelay"] == "1m"
    assert docs["AnalysisTemplate/demo-late"]["spec"]["metrics"][0]["initialDelay"] == "65m"  # 1h later, then a window
    only_late = argo_outputs(spec("  gate late: error rate < 2% every 5m, from ramp\n  on late fail: rollback\n",
                                  "canary { 10% for 1h  ramp: 50% for 2h  100% }"))
    analysis = only_late["Rollout/demo"]["spec"]["strategy"]["canary"]["analysis"]
    assert analysis["startingStep"] == 2  # the ramp stage's setWeight


def test_business_gates_are_job_analyses_at_their_looks() -> None:
    body = SLO + """  gate ctr: ctr change > -5% relative, fail if shown harmful, power 80% at -10%, every 30m
  on ctr fail: rollback
"""
    docs = argo_outputs(spec(body))
    steps = docs["Rollout/demo"]["spec"]["strategy"]["canary"]["steps"]
    looks = [s["analysis"]["args"][0]["value"] for s in steps if "analysis" in s]
    assert looks == ["1", "2", "3", "4"]
    assert steps[:3] == [{"setWeight": 10}, {"pause": {"duration": "30m"}},
                         {"analysis": {"templates": [{"templateName": "demo-ctr"}],
                                       "args": [{"name": "look", "value": "1"}]}}]
    metric = docs["AnalysisTemplate/demo-ctr"]["spec"]["metrics"][0]
    assert metric["count"] == 1 and metric["failureLimit"] == 0
    job = metric["provider"]["job"]["spec"]["template"]["spec"]
    container = job["containers"][0]
    assert container["image"] == f"registry.example.com/rolloutlang@{D2}"
    assert container["args"][:4] == ["evaluate", "--root", "/etc/rolloutlang/spec",
                                     "/etc/rolloutlang/spec/spec.rollout"]
    assert container["args"][-2:] == ["--look", "{{args.look}}"]
    assert job["volumes"][0]["configMap"] == {"name": "demo-rollout-spec",
                                              "items": [{"key": "spec-0.rollout", "path": "spec.rollout"}]}
    config = docs["ConfigMap/demo-rollout-spec"]
    assert config["data"]["spec-0.rollout"] == spec(body)  # the evaluator reads the spec it was compiled from
    assert docs["Role/demo-rollout-evaluator"]["rules"][0]["resourceNames"] == ["demo"]


def test_blue_green_has_pre_and_post_promotion_analysis() -> None:
    body = """  gate errors: error rate < 1% every 1m, fail after 3
  on errors fail: rollback now
"""
    docs = argo_outputs(spec(body, "blue-green { preview for 30m, promote auto, scale down after 10m }"))
    bg = docs["Rollout/demo"]["spec"]["strategy"]["blueGreen"]
    assert bg["activeService"] == "demo" and bg["previewService"] == "demo-preview"
    assert bg["autoPromotionEnabled"] is True and bg["autoPromotionSeconds"] == 1800
    assert bg["scaleDownDelaySeconds"] == 600
    pre = docs["AnalysisTemplate/demo-errors"]["spec"]["metrics"][0]
    post = docs["AnalysisTemplate/demo-errors-post"]["spec"]["metrics"][0]
    assert (pre["count"], post["count"]) == (30, 10)
    assert 'destination_version=\\"canary\\"' not in post["provider"]["prometheus"]["query"].replace('"', '\\"') \
        or "destination_version" not in post["provider"]["prometheus"]["query"]


def test_rolling_is_a_plain_surge_update() -> None:
    docs = argo_outputs(spec(SLO, "rolling { max surge 2, max unavailable 10% }"))
    canary = docs["Rollout/demo"]["spec"]["strategy"]["canary"]
    assert canary["maxSurge"] == 2 and canary["maxUnavailable"] == "10%"
    assert "steps" not in canary and "trafficRouting" not in canary
    assert set(docs) >= {"Service/demo", "HorizontalPodAutoscaler/demo"}


def test_pod_template_carries_the_models_and_the_rollout_records_the_stable() -> None:
    body = SLO + '  on errors fail: notify "#oncall"\n'
    rollout = argo_outputs(spec(body).replace("  metric ctr", '  owner "#ml"\n  metric ctr'))["Rollout/demo"]
    notes = rollout["metadata"]["annotations"]
    assert notes["rolloutlang.dev/stable-model-digest"] == D1 and notes["rolloutlang.dev/owner"] == "#ml"
    assert notes["notifications.argoproj.io/subscribe.on-rollout-aborted.slack"] == "#oncall"
    pod = rollout["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": "demo", "rolloutlang.dev/model-version": "1.0.1"}
    assert pod["metadata"]["annotations"]["rolloutlang.dev/model-source"] == "models:/scorer/2"
    container = pod["spec"]["containers"][0]
    assert container["image"] == f"registry.example.com/scorer@{D1}"
    assert {"name": "MODEL_DIGEST", "value": D2} in container["env"]
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}}
    assert "replicas" not in rollout["spec"]  # the autoscaler owns it


def test_holdout_becomes_a_last_step() -> None:
    outputs, diags = compile_text(spec(SLO, head="  holdout 5% on stable for 14d\n"), ["argo"])
    steps = by_kind(outputs, "Rollout")[0]["spec"]["strategy"]["canary"]["steps"]
    assert steps[-2:] == [{"setWeight": 95}, {"pause": {"duration": "336h"}}]
    assert [d.code for d in diags if d.code.startswith("RL7")] == ["RL713"]


def test_sync_waves_apply_what_the_rollout_names_first() -> None:
    docs = argo_outputs(spec(SLO + f"  gate ctr: ctr change > -5% relative, {HARM}\n  on ctr fail: rollback\n"))
    waves = {key: int(d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for key, d in docs.items()}
    assert waves["Rollout/demo"] == 0 and waves["HorizontalPodAutoscaler/demo"] == 1
    assert all(w < 0 for k, w in waves.items() if k.split("/")[0] in ("AnalysisTemplate", "Service", "ConfigMap"))


# -- what Argo cannot express: located diagnostics, nothing written -----------------------------------------------


def _line(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(("change", "code", "needle"), [
    (("canary { 10% for 1h", "canary { 0.5% for 1h"), "RL710", "0.5%"),
    (("  canary", "  shadow 0.5% for 1h\n  canary"), "RL711", "shadow 0.5%"),
    (("fail if shown harmful, power 80% at -10%\n  on ctr fail: rollback\n",
      "pass if shown non-inferior\n  on ctr fail: rollback\n  on ctr pass: promote\n"), "RL712", "on ctr pass"),
    (('evaluator "registry.example.com/rolloutlang" @ ' + D2, 'evaluator "registry.example.com/rolloutlang" @ latest'),
     "RL715", "evaluator"),
    (("error rate < 1%", "query bad < 1"), "RL717", "query bad"),
    (("  canary", '  route header "x" ~ "(?=a)b" to candidate\n  canary'), "RL719", "route header"),
    (("  canary", '  namespace ml2\n  canary'), None, None),
])
def test_limits_are_located_errors(change: tuple[str, str], code: str | None, needle: str | None) -> None:
    text = spec(SLO + "  gate ctr: ctr change > -5% relative, fail if shown harmful, power 80% at -10%\n"
                "  on ctr fail: rollback\n").replace(*change)
    if code == "RL717":
        text = text.replace('  metrics prometheus "http://prometheus:9090" {',
                            '  metrics prometheus "http://prometheus:9090" {\n    query bad "x{a=\\"{{evil}}\\"}"')
    if code is None:
        return
    found = codes(text)
    assert found and found[0] == (code, _line(text, needle)), found


def test_evaluator_image_rules() -> None:
    body = SLO + f"  gate ctr: ctr change > -5% relative, {HARM}\n  on ctr fail: rollback\n"
    text = spec(body).replace(f'    evaluator "registry.example.com/rolloutlang" @ {D2}\n', "")
    assert codes(text) == [("RL715", _line(text, "gate ctr"))]
    assert codes(text, evaluator_image=EVALUATOR) == []
    assert codes(text, evaluator_image="rolloutlang:latest") == [("RL715", None)]
    no_namespace = spec(body).replace("  namespace ml\n", "")
    assert ("RL733", 1) in codes(no_namespace)


@pytest.mark.parametrize(("text_change", "code"), [
    (("gate errors: error rate < 1% every 1m, fail after 3", "gate errors: mmd(score) < 0.1"), "RL716"),
    (("on errors fail: rollback now", 'on errors fail: notify "#x"\n  gate more: error rate < 5%\n'
                                       '  on more fail: rollback'), "RL714"),
    (("on errors fail: rollback now", "on errors fail: rollback now\n  on errors fail: pause"), "RL727"),
    (("resources cpu 1, memory 2Gi", "resources memory 2Gi"), "RL728"),
])
def test_limits_that_compile_with_a_warning(text_change: tuple[str, str], code: str) -> None:
    outputs, diags = compile_text(spec(SLO).replace(*text_change), ["argo"])
    assert outputs and code in [d.code for d in diags if not d.is_error], [d.code for d in diags]


def test_more_warnings_by_strategy() -> None:
    matured = spec(SLO + f"  gate ctr: ctr change > -5% relative, {HARM}, analysis matured\n  on ctr fail: rollback\n")
    assert ("RL721", _line(matured, "gate ctr")) in codes(matured)
    untimed = spec(SLO + f"  gate ctr: ctr change > -5% relative, {HARM}\n  on ctr fail: rollback\n",
                   "canary { 10% until approved  100% }")
    assert ("RL722", _line(untimed, "gate ctr")) in codes(untimed)
    order = spec(SLO, head='  route header "a" = "1" to stable\n  route header "b" = "2" to candidate\n')
    assert ("RL724", _line(order, 'route header "b"')) in codes(order)
    bg = spec(SLO, "blue-green { preview for 1h }", head="  shadow 10% for 1h\n")
    assert ("RL720", _line(bg, "shadow")) in codes(bg)
    rolling = spec(SLO, "rolling { max surge 0, max unavailable 0 }")
    assert codes(rolling) == [("RL730", _line(rolling, "rolling"))]
    needs_ns = spec(SLO.replace("error rate < 1%", "query own < 1"), head="").replace(
        '  metrics prometheus "http://prometheus:9090" {',
        '  metrics prometheus "http://prometheus:9090" {\n    query own "x{namespace=\\"$namespace\\"}"').replace(
        "  namespace ml\n", "")
    assert ("RL732", _line(needs_ns, "query own")) in codes(needs_ns)


def test_too_many_steps_is_an_error() -> None:
    # A gate looks at most 400 times (RL518), so two gates whose looks interleave: a pause and a job for each.
    text = spec(SLO + f"  gate ctr: ctr change > -5% relative, {HARM}, every 1m\n"
                f"  gate ctr2: ctr change > -4% relative, {HARM}, every 2m\n  on ctr, ctr2 fail: rollback\n",
                "canary { 10% for 12h  100% }")
    assert codes(text)[-1][0] == "RL723"


def test_the_rule_checks_catch_broken_objects() -> None:
    span = Span(file="x", line=1, col=1, end_line=1, end_col=2)
    meta = Metadata("t", None)
    steps = [Step("setWeight", {"weight": 120}), Step("setHeaderRoute", {"name": "r"}),
             Step("setMirrorRoute", {"name": "mirror", "percentage": 150})]
    templates = [TemplateView(meta, [], [MetricView("m", "prometheus", interval="1m", count=None)], [], span, "step"),
                 TemplateView(meta, [], [MetricView("n", "prometheus", count=2, failure_limit=3,
                                                    query="{{args.canary-hash}}")], [], span, "pre")]
    problems = " | ".join(p for p, _ in validate_rollout(steps, ["mirror"], templates, {}, span))
    for rule in ("outside 0..100", "not in managedRoutes", "mirrors 150%", "runs indefinitely",
                 "count 2 but no interval", "count 2 < failureLimit 3", "args.canary-hash"):
        assert rule in problems, rule


# -- hostile input ----------------------------------------------------------------------------------------------

# (as written in a spec string, the string it means)
HOSTILE = [
    ('quote \\" and \\\\ backslash', 'quote " and \\ backslash'),
    ("colon: value", "colon: value"),
    ("# not a comment", "# not a comment"),
    ("line\\nbreak: injected", "line\nbreak: injected"),
    ("{{ args.x }} and ${{ github.token }}", "{{ args.x }} and ${{ github.token }}"),
    ("*anchor &ref !!python/object", "*anchor &ref !!python/object"),
    ("unicode: ünïcødé ✓ 模型", "unicode: ünïcødé ✓ 模型"),
    ("x" * 10_000, "x" * 10_000),
]


@pytest.mark.parametrize(("written", "meant"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings_come_out_as_exactly_that_string(written: str, meant: str) -> None:
    head = (f'  owner "{written}"\n  route header "x-h" = "{written}" to candidate\n'
            f'  route header "x-s" = "{written}" to stable\n')
    text = spec(SLO, head=head).replace('"registry.example.com/scorer"', f'"registry.example.com/scorer{written}"')
    outputs, diags = compile_text(text, ["argo", "istio"])
    assert not [d for d in diags if d.is_error], [(d.code, d.message) for d in diags]
    docs = {f"{d['kind']}/{d['metadata']['name']}": d for _, d in documents(outputs)}
    rollout = docs["Rollout/demo"]
    assert rollout["metadata"]["annotations"]["rolloutlang.dev/owner"] == meant
    header_step = rollout["spec"]["strategy"]["canary"]["steps"][0]["setHeaderRoute"]
    assert header_step["match"] == [{"headerName": "x-h", "headerValue": {"exact": meant}}]
    assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.example.com/scorer{meant}@{D1}"
    vs = docs["VirtualService/demo"]
    assert vs["spec"]["http"][0]["match"] == [{"headers": {"x-s": {"exact": meant}}}]
    # Exactly the intended structure: nothing added at any level.
    assert set(rollout) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(rollout["spec"]) == {"selector", "template", "strategy"}
    assert set(vs["spec"]) == {"hosts", "http"} and len(vs["spec"]["http"]) == 2
    for _, doc in documents(outputs):
        assert schema_errors(doc) == []


@pytest.mark.parametrize(("written", "meant"), HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_channels_are_subscribed_or_refused(written: str, meant: str) -> None:
    text = spec(SLO + f'  on errors fail: notify "#{written}"\n')
    outputs, diags = compile_text(text, ["argo"])
    if [d.code for d in diags if d.is_error] == ["RL291"]:  # not a channel name: refused when lowered
        assert outputs == []
        return
    assert not [d for d in diags if d.is_error]
    rollout = by_kind(outputs, "Rollout")[0]
    assert rollout["metadata"]["annotations"]["notifications.argoproj.io/subscribe.on-rollout-paused.slack"] == \
        "#" + meant


def test_hostile_queries_are_quoted_or_refused() -> None:
    query = 'sum(rate(x{a="b: c # d", e=~".*\\\\n"}[5m]))'
    text = spec(SLO.replace("error rate < 1%", "query q < 1")).replace(
        '  metrics prometheus "http://prometheus:9090" {',
        f'  metrics prometheus "http://prometheus:9090" {{\n    query q "{query.replace(chr(34), chr(92) + chr(34))}"')
    docs = argo_outputs(text)
    assert docs["AnalysisTemplate/demo-errors"]["spec"]["metrics"][0]["provider"]["prometheus"]["query"] == \
        query.replace("\\\\", "\\")
    braces = text.replace('# d\\"', '{{args.x}}\\"')
    assert braces != text
    assert codes(braces)[0][0] == "RL717"


def test_names_become_dns_labels() -> None:
    text = spec(SLO).replace("service demo", "service Demo_Service")
    docs = argo_outputs(text)
    assert "Rollout/demo-service" in docs and "Service/demo-service-canary" in docs
    long_name = "Very_Long_" * 1000
    text = spec(SLO.replace("errors", long_name)).replace("service demo", f"service {long_name}")
    outputs, diags = compile_text(text, ["argo", "istio"])
    assert not [d for d in diags if d.is_error]
    for _, doc in documents(outputs):
        assert len(doc["metadata"]["name"]) <= 63 and schema_errors(doc) == []
    clash = spec(SLO + "  gate Errors: error rate < 2%\n  on Errors fail: rollback\n")
    assert codes(clash) == [("RL731", _line(clash, "gate Errors"))]


def test_compile_cli_writes_argo_and_istio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "deploy"
    code, _, err = run_cli(["compile", str(ROOT / "examples" / "ranker-v2.rollout"), "-t", "argo,istio",
                            "-o", str(out)], capsys)
    assert code == 0, err
    written = sorted(p.name for p in out.iterdir())
    assert "rollout-ranker.yaml" in written and "virtualservice-ranker.yaml" in written


def test_the_target_is_registered() -> None:
    from rolloutlang import targets

    assert targets.resolve(["all"])[:2] == ["argo", "istio"]
    assert isinstance(targets.get_target("argo"), argo.ArgoRollouts)


def test_the_config_map_holds_a_spec_the_evaluator_can_load(tmp_path: Path) -> None:
    """The job mounts the ConfigMap's files at their repository paths; imports resolve under that root."""
    from rolloutlang.loader import load

    outputs, _ = compile_example("fraud-scorer", ["argo"])
    config = by_kind(outputs, "ConfigMap")[0]
    template = next(t for t in by_kind(outputs, "AnalysisTemplate") if t["metadata"]["name"] == "scorer-score-drift")
    job = template["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]
    for item in job["volumes"][0]["configMap"]["items"]:
        (tmp_path / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / item["path"]).write_text(config["data"][item["key"]], encoding="utf-8")
    args = job["containers"][0]["args"]
    entry = args[args.index("--root") + 2].replace("/etc/rolloutlang/spec", str(tmp_path))
    program = load(Path(entry), tmp_path)
    assert not program.has_errors, [d.message for d in program.diagnostics]
    assert program.rollouts()[0].gate("score-drift") is not None
    assert program.rollouts()[0].gate("latency") is not None  # from the imported gate set


# -- the syntax targets read ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "code", "col"), [
    ("serving { port 70000 }", "RL280", 18),
    ("serving { port 0 }", "RL222", 18),  # below a minimum: out of range (issue 11)
    ('metrics prometheus "http://p" { evaluator "a b" }', "RL281", 45),
    ('metrics prometheus "http://p" { evaluator "a" evaluator "b" }', "RL102", 49),
])
def test_port_and_evaluator_are_checked_when_lowering(text: str, code: str, col: int) -> None:
    from rolloutlang.loader import load_text

    program = load_text(f"rollout x {{\n  {text}\n}}\n", "x.rollout")
    assert [(d.code, d.span.line, d.span.col) for d in program.diagnostics if d.span] == [(code, 2, col)]


def test_port_and_evaluator_reach_the_ir_and_the_manifests() -> None:
    docs = argo_outputs(spec(SLO + f"  gate ctr: ctr change > -5% relative, {HARM}\n  on ctr fail: rollback\n").replace(
        "resources cpu 1, memory 2Gi", "resources cpu 1, memory 2Gi\n    port 8501"))
    assert docs["Service/demo"]["spec"]["ports"] == [{"name": "http", "port": 8501, "targetPort": "http",
                                                      "protocol": "TCP"}]
    container = docs["Rollout/demo"]["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8501, "protocol": "TCP"}]
