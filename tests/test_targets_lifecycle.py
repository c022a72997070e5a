"""The lifecycle constructs in every target: bake, scale down, job gates, hooks at points, consumer switches.

Three test specs (``tests/specs/lifecycle-*.rollout``, one per strategy) compile to golden files that pass
the real validators; the rest says what each construct becomes and runs the job script the Argo target
writes for the team's own commands.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rolloutlang.loader import load
from rolloutlang.targets.base import CompileOptions, Output
from rolloutlang.targets.driver import compile_program
from tests.helpers import assert_golden
from tests.manifests import ROOT, SCHEMAS, by_kind, documents
from tests.pipelines import parse, write
from tests.test_targets_argo import argo_outputs, codes
from tests.tools import require_tool

SPECS = ("lifecycle-canary", "lifecycle-blue-green", "lifecycle-rolling")
TARGETS = ("argo", "istio", "istio-per-stage", "gitlab", "github")


def compile_spec(name: str, target: str) -> list[Output]:
    program = load(ROOT / "tests" / "specs" / f"{name}.rollout", ROOT)
    per_stage = target == "istio-per-stage"
    result = compile_program(program, ["istio" if per_stage else target], CompileOptions(per_stage=per_stage))
    assert not result.has_errors, [(d.code, d.message) for d in result.diagnostics]
    return result.outputs


def spec_text(name: str) -> str:
    return (ROOT / "tests" / "specs" / f"{name}.rollout").read_text(encoding="utf-8")


# -- golden files and the real validators -------------------------------------------------------------------


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("target", TARGETS)
def test_golden_files(request: pytest.FixtureRequest, name: str, target: str) -> None:
    outputs = compile_spec(name, target)
    for out in outputs:
        assert_golden(request, f"{name}/{target}/{out.path}", out.text)
    folder = ROOT / "tests" / "golden" / name / target
    listing = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    if not request.config.getoption("--update-goldens"):
        assert listing == sorted(o.path for o in outputs), "a golden file is left over or missing"


@pytest.mark.parametrize("name", SPECS)
def test_manifests_pass_the_schemas_and_the_upstream_rules(tmp_path: Path, name: str) -> None:
    write(tmp_path, compile_spec(name, "argo") + compile_spec(name, "istio"))
    done = subprocess.run([sys.executable, str(SCHEMAS.parent / "tools" / "check_manifests.py"), str(SCHEMAS),
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "AnalysisTemplate=" in done.stdout and "Rollout=1" in done.stdout


def test_pipelines_pass_gitlab_schema_and_actionlint(tmp_path: Path) -> None:
    gitlab = write(tmp_path / "gitlab", [o for name in SPECS for o in compile_spec(name, "gitlab")])
    github = write(tmp_path / "github", [o for name in SPECS for o in compile_spec(name, "github")])
    schema = require_tool("check-jsonschema")
    done = subprocess.run([schema, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci",
                           "--regex-variant", "nonunicode", *map(str, gitlab)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([schema, "--builtin-schema", "vendor.github-workflows", *map(str, github)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    lint = require_tool("actionlint")
    done = subprocess.run([lint, "-no-color", "-shellcheck=", "-pyflakes=", *map(str, github)],
                          capture_output=True, text=True, cwd=tmp_path / "github")
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


# -- Argo Rollouts ---------------------------------------------------------------------------------------


def _objects(name: str) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for _, d in documents(compile_spec(name, "argo"))}


def _metric(objects: dict[str, dict[str, Any]], template: str) -> dict[str, Any]:
    metrics: list[dict[str, Any]] = objects[f"AnalysisTemplate/{template}"]["spec"]["metrics"]
    assert len(metrics) == 1
    return metrics[0]


def test_canary_bake_is_a_last_timed_step_at_100_with_its_gates_and_hooks() -> None:
    objects = _objects("lifecycle-canary")
    canary = objects["Rollout/ranker"]["spec"]["strategy"]["canary"]
    steps = canary["steps"]
    bake = steps.index({"setWeight": 100})
    assert steps[bake + 1] == {"analysis": {"templates": [{"templateName": "ranker-soak"},
                                                          {"templateName": "ranker-health"},
                                                          {"templateName": "ranker-hook-docs"}]}}
    assert steps[bake + 2:] == [{"pause": {"duration": "2h"}}]
    assert canary["scaleDownDelaySeconds"] == 1800  # `scale down after 30m`, from the end of the bake
    # The SLO gates run on in the background through the bake; drift vs stable stops at promotion: its 14
    # hourly looks cover the 14h to promotion, none falls in the bake.
    assert [t["templateName"] for t in canary["analysis"]["templates"]] == [
        "ranker-latency", "ranker-errors", "ranker-drift", "ranker-load"]
    assert "count" not in _metric(objects, "ranker-latency")
    drift = _metric(objects, "ranker-drift")
    assert (drift["count"], drift["interval"], drift["initialDelay"]) == (14, "1h", "1h")


def test_hooks_and_one_run_job_gates_are_analysis_steps_where_their_phase_begins_or_ends() -> None:
    steps = _objects("lifecycle-canary")["Rollout/ranker"]["spec"]["strategy"]["canary"]["steps"]
    wide = steps.index({"setWeight": 25})
    # the consumer switched at `wide` moves first, then the phase's gate and hook run before its pause
    assert steps[wide + 1]["setHeaderRoute"]["name"] == "consumer-feed-mixer"
    assert steps[wide + 2] == {"analysis": {"templates": [{"templateName": "ranker-parity"},
                                                          {"templateName": "ranker-hook-warm"}]}}
    assert steps[wide + 3] == {"pause": {"duration": "6h"}}
    half = steps.index({"setWeight": 50})
    assert steps[half + 1:half + 3] == [{"pause": {"duration": "6h"}},
                                        {"analysis": {"templates": [{"templateName": "ranker-hook-report"}]}}]


def test_a_consumer_switched_at_promotion_moves_as_the_bake_begins() -> None:
    text = _with("lifecycle-canary", ' switch at wide', '')
    steps = argo_outputs(text)["Rollout/ranker"]["spec"]["strategy"]["canary"]["steps"]
    bake = steps.index({"setWeight": 100})
    assert steps[bake + 1]["setHeaderRoute"]["name"] == "consumer-feed-mixer"
    assert sum("setHeaderRoute" in st for st in steps) == 1


def test_job_gates_are_job_and_web_metrics_with_their_timeouts() -> None:
    objects = _objects("lifecycle-canary")
    load = _metric(objects, "ranker-load")
    assert load["provider"] == {"web": {"url": "https://loadtest.example.com/runs/ranker/latest",
                                        "jsonPath": "{$.metrics.p99_ms}", "timeoutSeconds": 60}}
    assert (load["interval"], load["failureLimit"]) == ("30m", 1)  # `every 30m, fail after 2`
    assert load["successCondition"] == "asFloat(result) < 300"
    assert load["failureCondition"] == "asFloat(result) >= 300"  # a rollback rule: a breach fails
    parity = _metric(objects, "ranker-parity")
    assert (parity["count"], parity["failureLimit"]) == (1, 0) and "interval" not in parity
    job = parity["provider"]["job"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    assert container["image"].startswith("registry.example.com/recs/rollout-ci@sha256:")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ROLLOUT_COMMAND"] == "python -m parity --sample 1000" and env["ROLLOUT_TIMEOUT"] == "1200"
    assert job["activeDeadlineSeconds"] == 1200 + 300 and job["backoffLimit"] == 0
    hook = _metric(objects, "ranker-hook-docs")["provider"]["job"]["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e["value"] for e in hook["env"]}["ROLLOUT_TIMEOUT"] == "300"


def test_blue_green_bake_is_the_post_promotion_analysis_and_outlives_it() -> None:
    objects = _objects("lifecycle-blue-green")
    bg = objects["Rollout/embedder"]["spec"]["strategy"]["blueGreen"]
    assert bg["scaleDownDelaySeconds"] == 3600 + 900  # the bake, then `scale down after 15m`
    assert [t["templateName"] for t in bg["prePromotionAnalysis"]["templates"]] == [
        "embedder-latency", "embedder-errors", "embedder-recall", "embedder-hook-index"]
    assert [t["templateName"] for t in bg["postPromotionAnalysis"]["templates"]] == [
        "embedder-latency-post", "embedder-errors-post", "embedder-search-post", "embedder-hook-notify"]
    assert _metric(objects, "embedder-latency-post")["count"] == 12  # 1h of looks every 5m
    assert _metric(objects, "embedder-search-post")["count"] == 6  # every 10m
    assert _metric(objects, "embedder-recall")["count"] == 1
    # the consumer switched at the preview reads the preview Service
    vs = by_kind(compile_spec("lifecycle-blue-green", "istio"), "VirtualService")[0]
    route = next(h for h in vs["spec"]["http"] if h["name"] == "consumer-related-items")
    assert route["route"] == [{"destination": {"host": "embedder-preview"}}]


def test_rolling_bake_updates_every_pod_then_waits_with_the_gates_running() -> None:
    steps = _objects("lifecycle-rolling")["Rollout/scorer"]["spec"]["strategy"]["canary"]["steps"]
    assert steps == [
        {"setWeight": 100},
        {"analysis": {"templates": [{"templateName": "scorer-hook-parity"}]}},  # at end of rolling
        {"analysis": {"templates": [{"templateName": "scorer-replay"}, {"templateName": "scorer-hook-audit"}]}},
        {"pause": {"duration": "30m"}},
    ]


def test_a_bake_before_a_holdout_keeps_the_holdout_slice_on_stable() -> None:
    # a gate comparing with stable through both: the bake keeps stable traffic, so nothing pauses for no data
    text = _with("lifecycle-canary", "gate drift:   psi(scores) < 0.2 vs stable, every 1h",
                 "gate drift:   psi(scores) < 0.2 vs stable, every 1h, from first")
    text = text.replace("  bake for 2h\n", "  bake for 2h\n  holdout 1% on stable for 1d\n")
    found = codes(text)
    assert ("RL713", _line_of(text, "holdout 1%")) in found and "RL758" not in [c for c, _ in found]
    steps = argo_outputs(text)["Rollout/ranker"]["spec"]["strategy"]["canary"]["steps"]
    bake = steps.index({"setWeight": 99})
    assert steps[bake + 2] == {"pause": {"duration": "2h"}}  # after the bake's analysis step
    assert steps[bake + 3:] == [{"setWeight": 99}, {"pause": {"duration": "24h"}}]  # the weights never go down


def _with(name: str, old: str, new: str) -> str:
    text = spec_text(name)
    assert old in text
    return text.replace(old, new)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_limits_are_located_diagnostics() -> None:
    # no image for the team's commands to run in
    text = _with("lifecycle-rolling", '    image   "registry.example.com/risk/rollout-ci" @ sha256:'
                 '5a5dc22255df60a15271d4fb1082dfd36182e1b989165a364813ef0fbbdd039b\n', "")
    assert ("RL755", _line_of(text, "gate replay")) in codes(text)
    assert ("RL755", _line_of(text, "gate replay")) in codes(text, ci_image="registry.example.com/ci:latest")
    assert "RL755" not in [c for c, _ in codes(text, ci_image="registry.example.com/ci@sha256:" + "ab" * 32)]
    # a command cannot pause a Rollout
    text = _with("lifecycle-rolling", "on latency, errors, replay fail: rollback now",
                 "on latency, errors fail: rollback now\n  on replay fail: pause")
    assert ("RL756", _line_of(text, "on replay fail")) in codes(text)
    # a rolling update keeps no old pods to scale down later
    text = _with("lifecycle-rolling", "  bake for 30m\n", "  bake for 30m\n  scale down after 10m\n")
    assert ("RL757", _line_of(text, "scale down after")) in codes(text)
    # a blue-green Rollout has no step at the end of its preview
    text = _with("lifecycle-blue-green", "at start of preview", "at end of preview")
    assert ("RL759", _line_of(text, "at end of preview")) in codes(text)
    # Argo runs nothing on an abort (a note: the CI rollback job runs the hook)
    text = spec_text("lifecycle-blue-green")
    assert ("RL760", _line_of(text, "on rollback")) in codes(text)
    # a comparison gate cannot be stopped at promotion when the time to promotion is open
    text = _with("lifecycle-canary", "half:  50% for 6h", "half:  50% until approved")
    assert ("RL758", _line_of(text, "gate drift")) in codes(text)
    # Argo reads `{{` in a metric as an argument
    text = _with("lifecycle-canary", '"python -m parity --sample 1000"', '"echo {{args.x}}"')
    assert ("RL717", _line_of(text, "gate parity")) in codes(text)


# -- the job script, run ------------------------------------------------------------------------------------


def _run_job(template: dict[str, Any], command: str | None = None, url: str | None = None) -> tuple[int, str]:
    """Run the generated container's script here, with its env as Kubernetes would pass it (`$$` -> `$`)."""
    container = template["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["sh", "-c"]
    env = {e["name"]: e["value"].replace("$$", "$") for e in container["env"]}
    if command is not None:
        env["ROLLOUT_COMMAND"] = command
    if url is not None:
        env["ROLLOUT_URL"] = url
    done = subprocess.run(["sh", "-c", container["args"][0]], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("timeout") is None or shutil.which("python3") is None,
                    reason="needs `timeout` and python3, as the pipeline image has them")
def test_the_job_script_passes_on_exit_code_or_on_a_json_field(tmp_path: Path) -> None:
    body = """  gate run:  run "exit 0", timeout 1m
  gate json: run "echo x" json "stats.0.rate" < 1%, timeout 1m
  gate url:  call "https://health.example.com/ok", timeout 1m
  on run, json, url fail: rollback now
"""
    text = spec_text("lifecycle-rolling").replace(
        '  gate replay:  run "python -m replay --last 1h", timeout 20m, from bake\n', body).replace(
        "on latency, errors, replay fail: rollback now", "on latency, errors fail: rollback now")
    objects = argo_outputs(text)
    run = objects["AnalysisTemplate/scorer-run"]
    assert _run_job(run)[0] == 0
    assert _run_job(run, command="exit 3")[0] == 3
    # the command is run as written: `$`, quotes and `$(...)` reach `sh -c` unchanged
    (tmp_path / "out").unlink(missing_ok=True)
    code, _ = _run_job(run, command=f"printf '%s' \"$HOME\" '$(id)' > {tmp_path / 'out'}")
    assert code == 0 and (tmp_path / "out").read_text() == os.environ["HOME"] + "$(id)"
    js = objects["AnalysisTemplate/scorer-json"]
    assert _run_job(js, command=f"echo '{json.dumps({'stats': [{'rate': 0.004}]})}'") == (
        0, "gate json\nstats.0.rate = 0.004 passes < 0.01\n")
    assert _run_job(js, command="echo '{\"stats\": [{\"rate\": 0.02}]}'")[0] == 1
    assert _run_job(js, command="echo 'not json'")[0] != 0
    assert _run_job(js, command="exit 4")[0] == 4  # the command's own failure fails the gate
    url = objects["AnalysisTemplate/scorer-url"]
    (tmp_path / "ok").write_text("fine, not JSON")
    with _server(tmp_path) as base:
        assert _run_job(url, url=f"{base}/ok")[0] == 0  # a 2xx answer passes, whatever its body
        assert _run_job(url, url=f"{base}/missing")[0] != 0  # a 404 fails


@contextlib.contextmanager
def _server(folder: Path) -> Iterator[str]:
    """A loopback HTTP server for ``folder``; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils `timeout`")
def test_a_command_that_outlasts_its_timeout_fails() -> None:
    text = spec_text("lifecycle-rolling").replace('run "python -m replay --last 1h", timeout 20m',
                                                  'run "sleep 30", timeout 1s')
    objects = argo_outputs(text)
    code, _ = _run_job(objects["AnalysisTemplate/scorer-replay"])
    assert code == 124  # `timeout` killed it


def test_a_dollar_in_a_command_is_doubled_for_kubernetes() -> None:
    text = spec_text("lifecycle-rolling").replace('"python -m replay --last 1h"', '"echo $(date) $$ $HOME"')
    container = argo_outputs(text)["AnalysisTemplate/scorer-replay"]["spec"]["metrics"][0]["provider"]["job"][
        "spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ROLLOUT_COMMAND"] == "echo $$(date) $$$$ $$HOME"


# -- CI pipelines ------------------------------------------------------------------------------------------


def test_ci_runs_hooks_before_traffic_as_jobs_and_on_rollback_in_the_rollback_job() -> None:
    gitlab = parse(compile_spec("lifecycle-canary", "gitlab")[0].text)
    assert [k for k in gitlab if ":hook-" in k] == ["ranker-v3:hook-smoke"]
    smoke = gitlab["ranker-v3:hook-smoke"]
    assert smoke["variables"]["ROLLOUT_HOOK_TIMEOUT"]["value"] == "600" and smoke["timeout"] == "25m"
    rollback = gitlab["ranker-v3:rollback"]
    assert rollback["variables"]["ROLLOUT_HOOK_COMMAND_1"]["value"] == "python -m pager --rolled-back"
    assert rollback["script"][-1] == 'timeout "$ROLLOUT_HOOK_TIMEOUT_1" sh -c "$ROLLOUT_HOOK_COMMAND_1"'
    assert rollback["script"].index('timeout "$ROLLOUT_HOOK_TIMEOUT_1" sh -c "$ROLLOUT_HOOK_COMMAND_1"') > \
        next(i for i, line in enumerate(rollback["script"]) if line.startswith("kubectl argo rollouts undo"))
    github = parse(compile_spec("lifecycle-canary", "github")[0].text)["jobs"]
    assert [k for k in github if k.startswith("hook-")] == ["hook-smoke"]
    assert github["hook-smoke"]["steps"][-1]["timeout-minutes"] == 10
    page = github["rollback"]["steps"][-1]
    assert page["env"]["ROLLOUT_HOOK"] == "page" and page["timeout-minutes"] == 2
    # hooks at a phase run in the cluster: the pipeline says where
    text = compile_spec("lifecycle-canary", "github")[0].text
    assert "#   warm (at start of wide, timeout 900s): python -m cache.warm --model ranker" in text

