"""The GitLab CI target, checked by GitLab's own schema and run for real.

check-jsonschema validates every file against GitLab's CI schema;
gitlab-ci-local (npm, pinned 4.70.1) validates the `needs` chain of all five
examples' files included side by side, and then runs generated jobs with its
shell executor in a temporary git repository: `check` and the hooks of
fraud-scorer with the team's own test files next to the spec, a failing hook,
hooks full of shell and expression syntax, and the cluster jobs (preflight,
an approval, rollback) against a recording kubectl.  The `rollout` the jobs
find is this checkout's (the test's interpreter folder is first on PATH), so
nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rolloutlang.targets import TARGETS, get_target
from tests import fake_kubectl
from tests.pipelines import EXAMPLES, ROOT, compile_example, compile_text, write
from tests.test_ci_steps import CANDIDATE, rollout
from tests.test_targets_pipeline import HOSTILE, _hostile_unit
from tests.tools import require_tool

GITLAB_CI_LOCAL_FLAGS = ["--no-color", "--no-evaluate-rule-changes", "--force-shell-executor",
                         "--json-schema-validation=false", "--max-job-name-padding=0"]


def test_every_file_passes_gitlab_schema(tmp_path: Path) -> None:
    tool = require_tool("check-jsonschema")
    paths = write(tmp_path, [compile_example(name, "gitlab") for name in EXAMPLES])
    for i, value in enumerate(HOSTILE):
        (out,) = get_target("gitlab").compile(_hostile_unit(value)).outputs
        path = tmp_path / f"hostile-{i}.gitlab-ci.yml"
        path.write_text(out.text)
        paths.append(path)
    done = subprocess.run([tool, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci",
                           "--regex-variant", "nonunicode", *map(str, paths)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# -- gitlab-ci-local ------------------------------------------------------------------------------------


def _repository(folder: Path, files: dict[str, str]) -> Path:
    """A git repository on `main` holding the files and a .gitlab-ci.yml that includes every CI file."""
    folder.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    includes = sorted(rel for rel in files if rel.startswith(".gitlab/ci/"))
    (folder / ".gitlab-ci.yml").write_text("include:\n" + "".join(f"  - local: {rel}\n" for rel in includes))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "spec"]):
        subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
    return folder


def _gitlab_ci_local(repo: Path, *args: str, kube_state: Path | None = None) -> tuple[int, str]:
    tool = require_tool("gitlab-ci-local")
    rsync = require_tool("rsync")
    bin_dirs = [str(Path(sys.executable).parent), str(Path(rsync).parent)]
    if kube_state is not None:
        fake_kubectl.install(repo.parent / "kube-bin")
        bin_dirs.insert(0, str(repo.parent / "kube-bin"))
    env = {**os.environ, "PATH": os.pathsep.join([*bin_dirs, os.environ.get("PATH", "")]),
           "HOME": str(repo.parent / "home"), "FAKE_KUBECTL_STATE": str(kube_state or repo.parent / "no-kube")}
    done = subprocess.run([tool, *args], cwd=repo, env=env, capture_output=True, text=True, check=False,
                          timeout=300)
    return done.returncode, done.stdout + done.stderr


def _results(output: str) -> dict[str, str]:
    """`PASS`/`FAIL`/`WARN` per job, from gitlab-ci-local's summary."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^ (PASS|FAIL|WARN) +(\S+)", output, re.M)}


def test_the_needs_chain_of_every_example_is_valid_side_by_side(tmp_path: Path) -> None:
    files = {(out := compile_example(name, "gitlab")).path: out.text for name in EXAMPLES}
    repo = _repository(tmp_path / "repo", files)
    code, output = _gitlab_ci_local(repo, "--validate-dependency-chain", "--no-color", "--no-evaluate-rule-changes")
    assert code == 0 and "All job dependencies are valid" in output, output


def _fraud_repository(folder: Path) -> Path:
    """fraud-scorer's spec and imports, its pipeline, and the team's own test commands its hooks run."""
    out = compile_example("fraud-scorer", "gitlab")
    return _repository(folder, {
        "examples/fraud-scorer.rollout": (ROOT / "examples" / "fraud-scorer.rollout").read_text(),
        "examples/policies/slo.rollout": (ROOT / "examples" / "policies" / "slo.rollout").read_text(),
        out.path: out.text,
        "Makefile": "smoke:\n\t@echo smoke test passed\n",
        "tests/contract/test_contract.py": "def test_request_contract():\n    assert {'amount': 1.0}['amount'] > 0\n",
        "parity.py": "import sys\nprint('parity on', sys.argv[sys.argv.index('--sample') + 1], 'requests: ok')\n",
    })


def test_check_and_hooks_run_and_pass(tmp_path: Path) -> None:
    repo = _fraud_repository(tmp_path / "repo")
    jobs = ["fraud-scorer-v7:check", "fraud-scorer-v7:hook-smoke", "fraud-scorer-v7:hook-contract",
            "fraud-scorer-v7:hook-parity"]
    code, output = _gitlab_ci_local(repo, *GITLAB_CI_LOCAL_FLAGS, *jobs)
    assert code == 0, output
    assert _results(output) == dict.fromkeys(jobs, "PASS"), output
    assert "no problems in 1 file" in output
    assert "smoke test passed" in output and "1 passed" in output and "parity on 1000 requests: ok" in output
    assert json.loads((repo / "gl-code-quality-report.json").read_text()) == []


def test_the_compile_job_writes_the_manifests(tmp_path: Path) -> None:
    if "argo" not in TARGETS:
        pytest.skip("the argo target (issue 8) is not registered yet, so `rollout compile -t argo,istio` cannot run")
    repo = _fraud_repository(tmp_path / "repo")
    code, output = _gitlab_ci_local(repo, *GITLAB_CI_LOCAL_FLAGS, "fraud-scorer-v7:compile")
    assert code == 0 and _results(output) == {"fraud-scorer-v7:compile": "PASS"}, output
    assert list((repo / "manifests").rglob("*.yaml"))


def test_the_simulate_job_runs_the_simulator(tmp_path: Path) -> None:
    from rolloutlang.cli import cli

    if "simulate" not in cli.commands:
        pytest.skip("`rollout simulate` (issue 7) is not there yet, so the simulate job cannot run")
    repo = _fraud_repository(tmp_path / "repo")
    direct = subprocess.run([sys.executable, "-m", "rolloutlang", "simulate", "examples/fraud-scorer.rollout",
                             "--seed", "1", "--strict", "--format", "json", "--report", str(tmp_path / "r.html")],
                            cwd=repo, capture_output=True, text=True, check=False)
    code, output = _gitlab_ci_local(repo, *GITLAB_CI_LOCAL_FLAGS, "fraud-scorer-v7:simulate")
    assert (code == 0) == (direct.returncode == 0), output
    assert _results(output) == {"fraud-scorer-v7:simulate": "PASS" if direct.returncode == 0 else "FAIL"}, output
    assert (repo / "simulate.json").read_text() == direct.stdout
    assert (repo / "simulate.html").is_file()


def _escape(command: str) -> str:
    return command.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


HOSTILE_HOOK = ("printf '%s|' \"$(echo substituted)\" `echo backticks` '${{ github.event.issue.title }}' "
                "\"quote\\\" and \\\\ backslash\" $ROLLOUT_HOOK\nprintf 'second line\\n'")


def test_a_failing_hook_fails_its_job_and_hostile_hooks_run_as_written(tmp_path: Path) -> None:
    spec = _spec_with_hooks({"ok": "echo fine", "broken": "echo about to fail; exit 3", "hostile": HOSTILE_HOOK})
    (out,), diags = compile_text(spec, "gitlab")
    assert not [d for d in diags if d.is_error]
    repo = _repository(tmp_path / "repo", {"spec.rollout": spec, out.path: out.text})
    code, output = _gitlab_ci_local(repo, *GITLAB_CI_LOCAL_FLAGS, "demo:hook-broken")
    assert code != 0 and _results(output) == {"demo:hook-broken": "FAIL"}, output
    assert "about to fail" in output and "FAIL 3" in output
    code, output = _gitlab_ci_local(repo, *GITLAB_CI_LOCAL_FLAGS, "demo:hook-ok", "demo:hook-hostile")
    assert code == 0 and _results(output) == {"demo:hook-ok": "PASS", "demo:hook-hostile": "PASS"}, output
    # The shell saw exactly the command written in the spec, once: the same output as `sh -c` here.
    expected = subprocess.run(["sh", "-c", HOSTILE_HOOK], env={**os.environ, "ROLLOUT_HOOK": "hostile"},
                              capture_output=True, text=True, check=True).stdout
    assert expected == ("substituted|backticks|${{ github.event.issue.title }}|quote\" and \\ backslash|hostile|"
                        "second line\n")
    after = 'timeout "$ROLLOUT_HOOK_TIMEOUT" sh -c "$ROLLOUT_HOOK_COMMAND"'
    assert _job_output(output, "demo:hook-hostile", after) == expected, output


def _job_output(output: str, job: str, after: str) -> str:
    """What a job printed after running the script line `after`, as its own lines."""
    lines = [line[len(job) + 1:] for line in output.splitlines() if line.startswith(job + " ")]
    start = lines.index(f"$ {after}") + 1
    printed = [line[2:] for line in lines[start:] if line.startswith("> ")]
    return "".join(line + "\n" for line in printed)


def _spec_with_hooks(hooks: dict[str, str]) -> str:
    from tests.test_targets_pipeline import _spec

    body = "".join(f'    {name} "{_escape(command)}"\n' for name, command in hooks.items())
    return _spec().replace('    smoke "make smoke"\n', body)


def test_cluster_jobs_check_the_live_rollout_before_they_act(tmp_path: Path) -> None:
    out = compile_example("ctr-ranker-longrun", "gitlab")
    spec_text = (ROOT / "examples" / "ctr-ranker-longrun.rollout").read_text()
    stable = re.search(r"model stable +ranker [\d.]+ @ (sha256:[0-9a-f]{64})", spec_text)
    candidate = re.search(r"model candidate +ranker [\d.]+ @ (sha256:[0-9a-f]{64})", spec_text)
    assert stable and candidate
    repo = _repository(tmp_path / "repo", {"examples/ctr-ranker-longrun.rollout": spec_text, out.path: out.text})
    kube = tmp_path / "kube"
    kube.mkdir()

    # Before: the spec's stable model is live, so the preflight passes.
    (kube / "rollout.json").write_text(json.dumps(rollout(stable.group(1))))
    code, output = _gitlab_ci_local(repo, *GITLAB_CI_LOCAL_FLAGS, "ctr-ranker-longrun:preflight", kube_state=kube)
    assert code == 0 and _results(output) == {"ctr-ranker-longrun:preflight": "PASS"}, output
    assert "safe to roll out" in output

    # During: the Rollout waits for the `mpr` approval at 50%.  The preflight now refuses; the approval
    # promotes; the rollback aborts and undoes.
    waiting = rollout(candidate.group(1), current="c1", step=4, reasons=("CanaryPauseStep",))
    waiting["metadata"]["name"] = "ctr-ranker-longrun"
    (kube / "rollout.json").write_text(json.dumps(waiting))
    (kube / "calls.jsonl").unlink()
    code, output = _gitlab_ci_local(repo, *GITLAB_CI_LOCAL_FLAGS, "ctr-ranker-longrun:preflight", kube_state=kube)
    assert code != 0 and _results(output) == {"ctr-ranker-longrun:preflight": "FAIL"}, output
    assert "Rollout `ctr-ranker-longrun` is already rolling out the candidate" in output
    jobs = ["ctr-ranker-longrun:approve-mpr", "ctr-ranker-longrun:rollback"]
    code, output = _gitlab_ci_local(repo, *GITLAB_CI_LOCAL_FLAGS, *jobs, kube_state=kube)
    assert code == 0 and _results(output) == dict.fromkeys(jobs, "PASS"), output
    assert "waits for approval at 50%" in output and "rolling it back" in output
    acted = [c for c in fake_kubectl.calls(kube) if c[0] == "argo"]
    assert sorted(acted) == sorted([
        ["argo", "rollouts", "promote", "ctr-ranker-longrun", "--namespace", "recs"],
        ["argo", "rollouts", "abort", "ctr-ranker-longrun", "--namespace", "recs"],
        ["argo", "rollouts", "undo", "ctr-ranker-longrun", "--namespace", "recs"]])
    assert CANDIDATE not in output  # the test's own digests are not the example's
