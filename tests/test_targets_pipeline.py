"""What the GitLab CI and GitHub Actions targets share (targets/pipeline.py): which jobs a spec gets,
pinning, what a pipeline refuses to write, and spec values that stay data on both platforms."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from rolloutlang import ir
from rolloutlang.loader import load_text
from rolloutlang.plan import build_plan
from rolloutlang.targets import get_target, resolve
from rolloutlang.targets.base import CompileInput, CompileOptions
from rolloutlang.targets.github import neutralise_expressions
from rolloutlang.targets.pipeline import ROLLOUTLANG_REQUIREMENT, job_id
from tests.helpers import D1, D2, assert_golden
from tests.pipelines import CI_IMAGE, CI_TARGETS, EXAMPLES, compile_example, compile_text, parse


@pytest.mark.parametrize("target", CI_TARGETS)
@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_compiles_to_its_golden_file(request: pytest.FixtureRequest, example: str, target: str) -> None:
    out = compile_example(example, target)
    assert_golden(request, f"{example}/{target}/{out.path}", out.text)


@pytest.mark.parametrize("target", CI_TARGETS)
def test_output_is_byte_identical_on_a_second_run(target: str) -> None:
    first = compile_example("ctr-ranker-longrun", target)
    compile_example.cache_clear()
    again = compile_example("ctr-ranker-longrun", target)
    assert again.text.encode() == first.text.encode()


def test_the_ci_group_names_both_pipelines() -> None:
    assert resolve(["ci"]) == ["gitlab", "github"]


# -- which jobs a spec gets ------------------------------------------------------------------------


def _gitlab_jobs(example: str) -> dict[str, Any]:
    doc = parse(compile_example(example, "gitlab").text)
    return {k.split(":", 1)[1]: v for k, v in doc.items() if not k.startswith(".")}


def _github_jobs(example: str) -> dict[str, Any]:
    jobs: dict[str, Any] = parse(compile_example(example, "github").text)["jobs"]
    return jobs


@pytest.mark.parametrize(("example", "simulate", "hooks", "approvals", "channels"), [
    ("ranker-v2", True, [], [], ["#recs-ml-oncall"]),
    ("fraud-scorer", True, ["hook-smoke", "hook-contract", "hook-parity"], [],
     ["#risk-ml-oncall", "#ml-platform-oncall"]),
    ("ctr-ranker-longrun", True, [], ["approve-mpr"], ["#recs-ml-oncall", "#recs-leads"]),
    ("embedder-v3", True, [], ["approve-promotion"], ["#search-ml-oncall"]),
])
def test_each_job_only_as_the_spec_needs_it(example: str, simulate: bool, hooks: list[str], approvals: list[str],
                                            channels: list[str]) -> None:
    for jobs in (_gitlab_jobs(example), _github_jobs(example)):
        assert ("simulate" in jobs) == simulate
        assert [j for j in jobs if j.startswith("hook-")] == hooks
        assert [j for j in jobs if j.startswith("approve-")] == approvals
        assert {"check", "compile", "diff", "preflight", "deploy", "rollback", "notify"} <= set(jobs)
    gitlab = _gitlab_jobs(example)
    assert [v["value"] for k, v in gitlab["notify"]["variables"].items()] == channels
    github = _github_jobs(example)
    assert [v for k, v in github["notify"]["env"].items() if k.startswith("ROLLOUT_CHANNEL_")] == channels


def test_hooks_run_in_the_written_order_before_anything_deploys() -> None:
    gitlab = _gitlab_jobs("fraud-scorer")
    assert [gitlab[j]["needs"] for j in ("hook-smoke", "hook-contract", "hook-parity")] == [
        ["fraud-scorer-v7:simulate"], ["fraud-scorer-v7:hook-smoke"], ["fraud-scorer-v7:hook-contract"]]
    assert gitlab["preflight"]["needs"] == ["fraud-scorer-v7:diff", "fraud-scorer-v7:hook-parity"]
    github = _github_jobs("fraud-scorer")
    assert github["preflight"]["needs"] == ["diff", "hook-parity"]
    assert github["hook-parity"]["steps"][-1]["env"]["ROLLOUT_HOOK_COMMAND"] == "python -m parity --sample 1000"


@pytest.mark.parametrize(("example", "job", "environment", "approvers", "guard"), [
    ("ctr-ranker-longrun", "approve-mpr", "ctr-ranker-longrun/mpr", "@recs-leads, @ranking-pm",
     ("ROLLOUT_STEP_WEIGHT", "50")),
    ("embedder-v3", "approve-promotion", "embedder-v3/promotion", "@search-ml-leads",
     ("ROLLOUT_PREVIEW_SECONDS", "7200")),
    ("shadow-eval", "approve-promotion", "toxicity-shadow-eval/promotion",
     "@ts-ml-leads, @moderation-policy", ("ROLLOUT_PREVIEW_SECONDS", "3600")),
])
def test_an_approval_is_a_protected_environment_that_promotes_past_its_pause(
        example: str, job: str, environment: str, approvers: str, guard: tuple[str, str] | None) -> None:
    gitlab = _gitlab_jobs(example)[job]
    assert gitlab["environment"]["name"] == environment
    assert gitlab["rules"][0]["when"] == "manual" and gitlab["allow_failure"] is False
    assert gitlab["variables"]["ROLLOUT_APPROVERS"]["value"] == approvers
    assert gitlab["script"][-1].startswith("kubectl argo rollouts promote ")
    assert gitlab["script"][-2].startswith("rollout ci paused ")
    github = _github_jobs(example)[job]
    assert github["environment"]["name"] == environment
    assert github["env"]["ROLLOUT_APPROVERS"] == approvers
    assert github["steps"][-1]["run"].startswith("kubectl argo rollouts promote ")
    if guard is not None:
        assert gitlab["variables"][guard[0]]["value"] == guard[1] and github["env"][guard[0]] == guard[1]
        assert guard[0] in gitlab["script"][-2] and guard[0] in github["steps"][-2]["run"]


def test_rollback_is_guarded_only_when_the_spec_names_who_approves_it() -> None:
    text = _spec(extra='  approve rollback by "@recs-ml-oncall"\n')
    for target in CI_TARGETS:
        (out,), _ = compile_text(text, target)
        doc = parse(out.text)
        job = doc["jobs"]["rollback"] if target == "github" else doc["demo:rollback"]
        assert job["environment"]["name"] == "demo/rollback"
    assert "environment" not in _gitlab_jobs("ranker-v2")["rollback"]
    assert "environment" not in _github_jobs("ranker-v2")["rollback"]


def test_the_pipeline_installs_the_rolloutlang_that_wrote_it() -> None:
    gitlab = parse(compile_example("ranker-v2", "gitlab").text)[".ranker-v2"]
    assert gitlab["variables"]["ROLLOUTLANG_REQUIREMENT"]["value"] == ROLLOUTLANG_REQUIREMENT
    assert parse(compile_example("ranker-v2", "github").text)["env"]["ROLLOUTLANG_DEFAULT"] == ROLLOUTLANG_REQUIREMENT


# -- pinning ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_image_by_digest_and_every_action_by_commit(example: str) -> None:
    texts = [compile_example(example, t).text for t in CI_TARGETS]
    images = [line.split(":", 1)[1].strip() for text in texts for line in text.splitlines()
              if line.strip().startswith("image:")]
    assert images and all(re.fullmatch(r'"[^"@]+@sha256:[0-9a-f]{64}"', i) for i in images), images
    uses = [line.split("uses:", 1)[1].strip() for line in texts[1].splitlines() if "uses:" in line]
    assert uses and all(re.fullmatch(r"[\w./-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+", u) for u in uses), uses


def test_github_jobs_get_the_least_permissions() -> None:
    doc = parse(compile_example("fraud-scorer", "github").text)
    assert doc["permissions"] == {}
    granted = {name: job["permissions"] for name, job in doc["jobs"].items()}
    assert granted.pop("check") == {"contents": "read", "security-events": "write", "actions": "read"}
    for name, perms in granted.items():
        assert perms in ({}, {"contents": "read"}), name
        # Only jobs that check the repository out may read it.
        checks_out = any("actions/checkout@" in str(s.get("uses", "")) for s in doc["jobs"][name]["steps"])
        assert (perms == {"contents": "read"}) == checks_out, name


# -- what a pipeline refuses to write ---------------------------------------------------------------


def _spec(image: str | None = f'"registry.example.com/ml/ci" @ sha256:{"1" * 64}', extra: str = "") -> str:
    pipeline = f"  pipeline {{\n    image {image}\n    smoke \"make smoke\"\n  }}\n" if image else ""
    return f"""rollout demo {{
  service demo
  namespace ml
  owner "#demo-oncall"
  model stable    scorer 1.0.0 @ {D1}
  model candidate scorer 1.0.1 @ {D2}
  signature {{ in x: float32  out score: float32 }}
  traffic 100 rps
  metrics prometheus "http://prometheus:9090"
  canary {{ 5% for 1h  100% }}
  gate errors: error rate < 1% every 1m, fail after 2
  on errors fail: rollback now, notify "#demo-alerts"
{pipeline}{extra}}}
"""


@pytest.mark.parametrize("target", CI_TARGETS)
def test_without_an_image_the_pipeline_says_where_to_give_one(target: str) -> None:
    outputs, diags = compile_text(_spec(image=None), target, ci_image=None)
    assert outputs == []
    (d,) = [d for d in diags if d.is_error]
    assert d.code == "RL750" and d.span is not None and (d.span.line, d.span.col) == (1, 9)
    assert "`pipeline { ... }`" in d.help and "--ci-image" in d.help


@pytest.mark.parametrize("target", CI_TARGETS)
def test_the_command_line_image_wins_over_the_spec(target: str) -> None:
    (out,), _ = compile_text(_spec(), target, ci_image=CI_IMAGE)
    assert CI_IMAGE in out.text and "registry.example.com/ml/ci@" not in out.text
    (out,), _ = compile_text(_spec(), target, ci_image=None)
    assert f'"registry.example.com/ml/ci@sha256:{"1" * 64}"' in out.text


@pytest.mark.parametrize(("image", "problem"), [
    ("registry.example.com/ml/ci:latest", "not pinned by digest"),
    ("registry.example.com/ml/ci@sha256:abc", "has 3 hex digits"),
    ("$CI_REGISTRY/ci@sha256:" + "1" * 64, "is not an image reference"),
    ("ci image@sha256:" + "1" * 64, "is not an image reference"),
])
def test_a_bad_ci_image_option_is_refused(image: str, problem: str) -> None:
    outputs, diags = compile_text(_spec(), "gitlab", ci_image=image)
    assert outputs == [] and [d.code for d in diags if d.is_error] == ["RL751"]
    assert problem in diags[-1].message


@pytest.mark.parametrize("target", CI_TARGETS)
def test_a_spec_without_a_file_cannot_be_a_pipeline(target: str) -> None:
    outputs, diags = compile_text(_spec(), target, name="<stdin>")
    assert outputs == [] and "RL752" in [d.code for d in diags]


def test_a_path_a_filter_would_read_as_a_pattern_is_refused(tmp_path: Any) -> None:
    (tmp_path / ".rollout-root").write_text("")
    outputs, diags = compile_text(_spec(), "github", name="specs/$(id)/[x].rollout", root=tmp_path)
    assert outputs == [] and [d.code for d in diags if d.is_error] == ["RL753"]


# -- spec values stay data ---------------------------------------------------------------------------

HOSTILE = [
    'quote " and \\ backslash',
    "$(touch /tmp/rolloutlang-pwned) `id`",
    "${{ github.event.issue.title }}",
    "${{ secrets.GITHUB_TOKEN }}${{toJSON(github)}}",
    "echo first\nrun: injected\n  - evil: true",
    "${HOME} $CI_JOB_TOKEN $$ ${{",
    "'; rm -rf / #",
    "{{ args.x }} {% raw %}",
    "line\u2028separator \x1b[31m",
]


def _hostile_unit(value: str) -> CompileInput:
    """A checked spec whose hook, approvers, channels and owner are then set to `value`, past the lowering pass.

    The lowering pass refuses such approvers and channels (RL290, RL291), so this is the second
    line of defence: the targets keep every value data even if one got through.
    """
    program = load_text(_spec(extra='  approve stage-1 by "@a"\n  approve rollback by "@b"\n'), "spec.rollout")
    assert not program.has_errors, [d.message for d in program.diagnostics]
    rollout = program.rollouts()[0]
    rules = tuple(replace(r, actions=tuple(replace(a, channel=value) if a.kind == "notify" else a
                                           for a in r.actions))
                  for r in rollout.rules)
    rollout = replace(rollout, pipeline=(ir.PipelineHook(span=rollout.span, name="smoke", command=value),),
                      approvals=tuple(replace(a, approvers=("@ok", value)) for a in rollout.approvals),
                      rules=rules, owner=value)
    return CompileInput(rollout=rollout, plan=build_plan(rollout), source_path="spec.rollout",
                        options=CompileOptions(ci_image=CI_IMAGE), sources=(("spec.rollout", ""),))


def github_evaluate(text: str) -> str:
    """What GitHub makes of a string: each `${{ ... }}` evaluated; only string literals are allowed here."""
    out, i = [], 0
    while (start := text.find("${{", i)) >= 0:
        end = text.find("}}", start)
        assert end > 0, f"unterminated expression in {text!r}"
        expression = text[start + 3:end].strip()
        literal = re.fullmatch(r"'((?:[^']|'')*)'", expression)
        assert literal, f"a spec value reaches GitHub's expression engine: ${{{{ {expression} }}}}"
        out += [text[i:start], literal.group(1).replace("''", "'")]
        i = end + 2
    return "".join([*out, text[i:]])


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_reach_gitlab_jobs_unexpanded(value: str) -> None:
    result = get_target("gitlab").compile(_hostile_unit(value))
    assert not result.has_errors
    doc = parse(result.outputs[0].text)
    assert set(doc) == {".demo", ".demo:cluster", "demo:check", "demo:hook-smoke", "demo:compile", "demo:diff",
                        "demo:preflight", "demo:deploy", "demo:approve-stage-1", "demo:rollback", "demo:notify"}
    assert doc["demo:hook-smoke"]["variables"]["ROLLOUT_HOOK_COMMAND"] == {"value": value, "expand": False}
    assert doc["demo:hook-smoke"]["script"][-1] == \
        'timeout "$ROLLOUT_HOOK_TIMEOUT" sh -c "$ROLLOUT_HOOK_COMMAND"'
    assert doc["demo:approve-stage-1"]["variables"]["ROLLOUT_APPROVERS"] == {"value": f"@ok, {value}",
                                                                               "expand": False}
    channels = [v for k, v in doc["demo:notify"]["variables"].items()]
    assert channels == [{"value": value, "expand": False}]  # the rule's channel; the owner is no channel
    for job in doc.values():
        for line in job.get("script", []):
            assert value not in line


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_reach_github_steps_as_data(value: str) -> None:
    result = get_target("github").compile(_hostile_unit(value))
    assert not result.has_errors
    text = result.outputs[0].text
    doc = parse(text)
    assert set(doc) == {"name", "on", "permissions", "defaults", "env", "jobs"}
    step = doc["jobs"]["hook-smoke"]["steps"][-1]
    assert github_evaluate(step["env"]["ROLLOUT_HOOK_COMMAND"]) == value
    assert step["run"] == ('printf \'pipeline hook %s runs %s\\n\' "$ROLLOUT_HOOK" "$ROLLOUT_HOOK_COMMAND"\n'
                           'timeout "$ROLLOUT_HOOK_TIMEOUT" sh -c "$ROLLOUT_HOOK_COMMAND"\n')
    assert github_evaluate(doc["jobs"]["approve-stage-1"]["env"]["ROLLOUT_APPROVERS"]) == f"@ok, {value}"
    assert github_evaluate(doc["jobs"]["notify"]["env"]["ROLLOUT_CHANNEL_1"]) == value
    # Every expression left in the workflow is the template's own, or a neutralised literal.
    for expression in re.findall(r"\$\{\{(.*?)\}\}", text):
        assert expression.strip() == "'${{'" or not any(ch in expression for ch in "\"`$\n"), expression


def test_neutralising_expressions_is_exact() -> None:
    assert neutralise_expressions("a ${{ b }} c") == "a ${{ '${{' }} b }} c"
    assert github_evaluate(neutralise_expressions("${{${{")) == "${{${{"
    assert neutralise_expressions("$ {{ not one }}") == "$ {{ not one }}"


def test_long_names_make_short_stable_job_ids() -> None:
    long = job_id("hook", "x" * 200)
    assert len(long) <= 60 and long == job_id("hook", "x" * 200) and long != job_id("hook", "x" * 199)


# -- on the command line ----------------------------------------------------------------------------------


def test_compile_without_an_image_points_at_the_rollout(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import run_cli

    code, out, err = run_cli(["compile", "examples/ranker-v2.rollout", "-t", "gitlab", "--no-color"], capsys)
    assert code == 1 and out == ""
    assert "error[RL750]: the GitLab CI pipeline of `ranker-v2` needs the image its jobs run in" in err
    assert "--> examples/ranker-v2.rollout:2:9" in err and "= help: add `image" in err


def test_compile_writes_both_pipelines_and_finds_nothing_to_change_after(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import run_cli

    args = ["compile", "examples/ranker-v2.rollout", "-t", "ci", "--ci-image", CI_IMAGE, "-o", str(tmp_path)]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.y*ml")) == [
        ".github/workflows/rollout-ranker-v2.yml", ".gitlab/ci/rollout-ranker-v2.gitlab-ci.yml"]
    assert run_cli([*args, "--check"], capsys)[0] == 0


def test_each_rollout_of_a_file_gets_its_own_pipeline() -> None:
    text = _spec() + _spec().replace("rollout demo {", "rollout demo-two {")
    for target in CI_TARGETS:
        outputs, diags = compile_text(text, target)
        assert not [d for d in diags if d.is_error]
        assert len({o.path for o in outputs}) == 2
