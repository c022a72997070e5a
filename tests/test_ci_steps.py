"""`rollout ci`: the steps the generated pipelines run against the cluster.

The checks on the live Rollout are tested on Rollout objects shaped as Argo
Rollouts writes them (status.stableRS, currentPodHash, currentStepIndex,
pauseConditions); the commands run against a stand-in kubectl that records its
calls, and `notify` against a local HTTP server.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rolloutlang.ci import Refusal, apply_order, check_live, check_paused
from tests import fake_kubectl
from tests.helpers import run_cli

STABLE = "sha256:" + "a" * 64
CANDIDATE = "sha256:" + "b" * 64
OTHER = "sha256:" + "c" * 64

STEPS = [{"setWeight": 5}, {"pause": {"duration": "2h"}}, {"setWeight": 50}, {"pause": {"duration": "7d"}},
         {"pause": {}}, {"setWeight": 100}]


def rollout(template_digest: str = STABLE, *, stable_rs: str | None = "s1", current: str | None = "s1",
            step: int | None = None, reasons: tuple[str, ...] = (), start: str = "2026-11-27T10:00:00Z",
            steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An Argo Rollout as `kubectl get -o json` prints it; the model digest sits in an env var of the pod."""
    status: dict[str, Any] = {}
    if stable_rs is not None:
        status["stableRS"] = stable_rs
    if current is not None:
        status["currentPodHash"] = current
    if step is not None:
        status["currentStepIndex"] = step
    if reasons:
        status["pauseConditions"] = [{"reason": r, "startTime": start} for r in reasons]
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "ranker-v2"},
        "spec": {"template": {"spec": {"containers": [{"name": "server", "env": [
            {"name": "MODEL_URI", "value": f"oci://registry.example.com/models/ranker@{template_digest}"}]}]}},
            "strategy": {"canary": {"steps": STEPS if steps is None else steps}}},
        "status": status,
    }


# -- live: before deploying and before rolling back ------------------------------------------------


def test_preflight_passes_when_the_spec_stable_model_is_live() -> None:
    assert "safe to roll out" in check_live(rollout(), "stable", STABLE, CANDIDATE)


@pytest.mark.parametrize(("live", "message"), [
    (rollout(OTHER), f"the pods reference {OTHER}"),
    (rollout(CANDIDATE, current="c1"), "already rolling out the candidate"),
    (rollout(CANDIDATE), "already the stable model"),
    (rollout(OTHER, current="c9"), "another rollout of `ranker-v2` is under way"),
    (rollout(stable_rs=None, current=None), "has no stable version yet"),
])
def test_preflight_stops_on_anything_else(live: dict[str, Any], message: str) -> None:
    with pytest.raises(Refusal, match=message):
        check_live(live, "stable", STABLE, CANDIDATE)


def test_rollback_needs_the_candidate_live() -> None:
    assert "rolling it back" in check_live(rollout(CANDIDATE, current="c1"), "candidate", STABLE, CANDIDATE)
    assert "rolling it back" in check_live(rollout(CANDIDATE), "candidate", STABLE, CANDIDATE)
    with pytest.raises(Refusal, match="older version"):
        check_live(rollout(STABLE), "candidate", STABLE, CANDIDATE)


# -- paused: an approval promotes only at its own pause ---------------------------------------------


def test_a_canary_approval_promotes_at_its_indefinite_pause() -> None:
    live = rollout(CANDIDATE, current="c1", step=4, reasons=("CanaryPauseStep",))
    assert "waits for approval at 50%" in check_paused(live, "mpr", weight=50)


@pytest.mark.parametrize(("live", "message"), [
    (rollout(CANDIDATE, current="c1", step=2), "is not paused"),
    (rollout(CANDIDATE, current="c1", step=3, reasons=("CanaryPauseStep",)), r"timed pause \(7d\) of its 50% step"),
    (rollout(CANDIDATE, current="c1", step=1, reasons=("CanaryPauseStep",)), r"timed pause \(2h\) of its 5% step"),
    (rollout(CANDIDATE, current="c1", step=1, reasons=("CanaryPauseStep",),
             steps=[{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]),
     "waits at 25%, but the `mpr` approval is for the 50% stage"),
    (rollout(CANDIDATE, current="c1", step=9, reasons=("CanaryPauseStep",)), "not at a canary step"),
])
def test_a_canary_approval_refuses_anywhere_else(live: dict[str, Any], message: str) -> None:
    with pytest.raises(Refusal, match=message):
        check_paused(live, "mpr", weight=50)


def test_a_blue_green_approval_waits_out_the_preview() -> None:
    live = rollout(CANDIDATE, current="c1", reasons=("BlueGreenPause",), start="2026-11-27T10:00:00Z")
    start = 1795773600.0  # 2026-11-27T10:00:00Z
    with pytest.raises(Refusal, match="has run 30m of the 2h00m the spec asks for; approve `promotion` in 1h30m"):
        check_paused(live, "promotion", preview_s=7200, now=start + 1800)
    assert "blue-green preview" in check_paused(live, "promotion", preview_s=7200, now=start + 7201)
    assert "blue-green preview" in check_paused(live, "promotion", preview_s=0, now=start)
    with pytest.raises(Refusal, match="not in its blue-green preview"):
        check_paused(rollout(reasons=("CanaryPauseStep",)), "promotion", preview_s=0)


def test_any_pause_will_do_for_a_rolling_update() -> None:
    assert "is paused" in check_paused(rollout(reasons=("CanaryPauseStep",)), "promotion")
    with pytest.raises(Refusal, match="is not paused"):
        check_paused(rollout(), "promotion")


# -- the commands, against a recording kubectl ----------------------------------------------------------


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recording kubectl first on PATH; returns its state folder."""
    state = tmp_path / "kube"
    fake_kubectl.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KUBECTL_STATE", str(state))
    state.mkdir()
    return state


def _manifests(folder: Path) -> None:
    folder.mkdir()
    (folder / "rollout-ranker-v2.yaml").write_text(
        '# Code generated\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: "ranker-v2"\n')
    (folder / "analysistemplate-ranker-v2-latency.yaml").write_text(
        'kind: "AnalysisTemplate"\nmetadata:\n  annotations:\n    "argocd.argoproj.io/sync-wave": "-1"\n')
    (folder / "virtualservice-ranker.yaml").write_text(
        "kind: VirtualService\nmetadata:\n  annotations:\n    argocd.argoproj.io/sync-wave: '1'  # after\n")
    (folder / "service-ranker-canary.yaml").write_text("kind: Service\nmetadata:\n  name: ranker-canary\n")
    (folder / "notes.txt").write_text("not a manifest")


def test_apply_goes_wave_by_wave_then_by_kind(tmp_path: Path, kubectl: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _manifests(tmp_path / "m")
    order = [m.path.name for m in apply_order(tmp_path / "m")]
    assert order == ["analysistemplate-ranker-v2-latency.yaml", "service-ranker-canary.yaml",
                     "rollout-ranker-v2.yaml", "virtualservice-ranker.yaml"]
    code, out, err = run_cli(["ci", "apply", str(tmp_path / "m")], capsys)
    assert code == 0, err
    applied = [c[2].rsplit("/", 1)[-1] for c in fake_kubectl.calls(kubectl)]
    assert applied == order
    assert "wave  -1  AnalysisTemplate" in out


def test_apply_stops_at_the_first_failure(tmp_path: Path, kubectl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _manifests(tmp_path / "m")
    (tmp_path / "m" / "service-ranker-canary.yaml").rename(tmp_path / "m" / "service-broken.yaml")
    code, _, err = run_cli(["ci", "apply", str(tmp_path / "m")], capsys)
    assert code == 1 and "kubectl apply failed on" in err and "the ones after it are not" in err
    assert len(fake_kubectl.calls(kubectl)) == 2


def test_apply_of_an_empty_folder_says_what_to_do(tmp_path: Path, kubectl: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m").mkdir()
    code, _, err = run_cli(["ci", "apply", str(tmp_path / "m")], capsys)
    assert code == 1 and "compile the manifests first" in err


def test_live_and_paused_read_the_named_rollout(kubectl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (kubectl / "rollout.json").write_text(json.dumps(rollout(CANDIDATE, current="c1", step=4,
                                                             reasons=("CanaryPauseStep",))))
    code, out, err = run_cli(["ci", "paused", "--rollout", "ranker-v2", "-n", "recs", "--step", "mpr",
                              "--weight", "50"], capsys)
    assert code == 0 and "promoting past `mpr`" in out, err
    assert fake_kubectl.calls(kubectl) == [["get", "rollouts.argoproj.io", "ranker-v2", "--namespace", "recs",
                                            "--output", "json"]]
    code, _, err = run_cli(["ci", "live", "--rollout", "ranker-v2", "--expect", "stable", "--stable", STABLE,
                            "--candidate", CANDIDATE], capsys)
    assert code == 1 and err.startswith("$ kubectl get") and "error: Rollout `ranker-v2` is already rolling out" in err


def test_a_missing_rollout_is_a_refusal_not_a_crash(kubectl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["ci", "live", "--rollout", "ranker-v2", "-n", "recs", "--expect", "stable",
                            "--stable", STABLE, "--candidate", CANDIDATE], capsys)
    assert code == 1 and "cannot read the Argo Rollout `ranker-v2` in namespace `recs`" in err and "NotFound" in err
    assert "Traceback" not in err


def test_without_kubectl_the_step_says_what_the_image_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run_cli(["ci", "paused", "--rollout", "x", "--step", "s"], capsys)
    assert code == 2 and "kubectl is not on PATH" in err


# -- notify -------------------------------------------------------------------------------------------


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], Any]]] = []
    reply: ClassVar[tuple[int, bytes]] = (200, b"{\"ok\": true}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), json.loads(body)))
        self.send_response(self.reply[0])
        self.end_headers()
        self.wfile.write(self.reply[1])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Hook]]:
    handler = type("Hook", (_Hook,), {"received": [], "reply": (200, b'{"ok": true}')})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ROLLOUT_NOTIFY_WEBHOOK", f"http://127.0.0.1:{server.server_port}/api/chat.postMessage")
    monkeypatch.setenv("ROLLOUT_NOTIFY_TOKEN", "xoxb-test")
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_notify_posts_one_message_per_channel(webhook: type[_Hook], capsys: pytest.CaptureFixture[str]) -> None:
    text = 'rollout "ranker-v2" failed: $(id) `id` ${{ github.event.issue.title }}\nsecond line'
    code, out, err = run_cli(["ci", "notify", "--channel", "#recs-ml-oncall", "--channel", "@oncall",
                              "--message", text], capsys)
    assert code == 0, err
    assert [body for _, body in webhook.received] == [{"channel": "#recs-ml-oncall", "text": text},
                                                      {"channel": "@oncall", "text": text}]
    assert all(h["Authorization"] == "Bearer xoxb-test" for h, _ in webhook.received)
    assert "notified #recs-ml-oncall" in out


@pytest.mark.parametrize(("reply", "message"), [
    ((500, b"boom"), "HTTP 500"),
    ((200, b'{"ok": false, "error": "channel_not_found"}'), "channel_not_found"),
])
def test_notify_fails_when_the_chat_refuses(webhook: type[_Hook], capsys: pytest.CaptureFixture[str],
                                            reply: tuple[int, bytes], message: str) -> None:
    webhook.reply = reply
    code, _, err = run_cli(["ci", "notify", "--channel", "#x", "--message", "m"], capsys)
    assert code == 1 and message in err


@pytest.mark.parametrize(("url", "message"), [("", "ROLLOUT_NOTIFY_WEBHOOK is not set"),
                                              ("file:///etc/passwd", "must be an http(s) URL")])
def test_notify_needs_an_http_webhook(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      url: str, message: str) -> None:
    monkeypatch.setenv("ROLLOUT_NOTIFY_WEBHOOK", url)
    code, _, err = run_cli(["ci", "notify", "--channel", "#x", "--message", "m"], capsys)
    assert code == 1 and message in err


@pytest.mark.parametrize("step", ["apply", "live", "paused", "notify"])
def test_every_step_has_help_with_an_example(step: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["ci", step, "--help"], capsys)
    assert code == 0, err
    assert f"Usage: rollout ci {step}" in out and "Example" in out
