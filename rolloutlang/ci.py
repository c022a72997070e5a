"""`rollout ci ...`: the steps the generated GitLab and GitHub pipelines run against a cluster.

The pipelines (``targets/gitlab.py``, ``targets/github.py``) keep their shell
to one plain line per step; what needs reading the live Argo Rollout lives
here, where it is tested:

* ``apply``: ``kubectl apply`` the compiled manifests in Argo CD sync-wave
  order;
* ``live``: before deploying, the live stable pods run the spec's stable
  digest and no other rollout is under way; before rolling back, the
  candidate is what is live;
* ``paused``: an approval promotes only when the Rollout waits at that
  approval's pause (not earlier, not in a timed pause);
* ``notify``: post a failure notice to the spec's channels through a webhook.

Each reads the cluster with ``kubectl`` (the job's kubeconfig) and explains a
refusal in one paragraph a person on call can act on.  Nothing here imports
more than the standard library and click, so ``rollout`` starts fast.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

# Argo CD applies lower waves first; within a wave, these kinds first, in this order
# (the start of gitops-engine's kind order), then every other kind.
_KIND_ORDER = ("Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodDisruptionBudget", "ServiceAccount",
               "Secret", "ConfigMap", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
               "ClusterRoleBinding", "Role", "RoleBinding", "Service")
_KIND_LINE = re.compile(r"""^kind:\s*["']?([A-Za-z0-9]+)["']?\s*(?:#.*)?$""")
_WAVE_LINE = re.compile(r"""^\s+["']?argocd\.argoproj\.io/sync-wave["']?\s*:\s*["']?(-?\d+)["']?\s*(?:#.*)?$""")


class Refusal(click.ClickException):
    """A check the pipeline must stop on; exits 1 with the message (not a usage error)."""

    exit_code = 1
    is_refusal = True

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


@dataclass(frozen=True)
class Manifest:
    path: Path
    wave: int
    kind: str

    @property
    def sort_key(self) -> tuple[int, int, str, str]:
        rank = _KIND_ORDER.index(self.kind) if self.kind in _KIND_ORDER else len(_KIND_ORDER)
        return (self.wave, rank, self.kind, self.path.as_posix())


def read_manifest(path: Path) -> Manifest:
    """The sync wave and kind of one generated manifest (its first object's, for a file holding several).

    Reads the lines rolloutlang's templates write (``kind:`` at the top level, the
    ``argocd.argoproj.io/sync-wave`` annotation, quoted or not) rather than parsing
    YAML, so the runtime needs no YAML library; an object without the annotation
    is in wave 0, as in Argo CD.
    """
    waves: list[int] = []
    kinds: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if (m := _KIND_LINE.match(line)) is not None:
            kinds.append(m.group(1))
        elif (m := _WAVE_LINE.match(line)) is not None:
            waves.append(int(m.group(1)))
    return Manifest(path=path, wave=min(waves) if waves else 0, kind=kinds[0] if kinds else "")


def apply_order(folder: Path) -> list[Manifest]:
    """Every ``*.yaml``/``*.yml`` under ``folder``, in the order Argo CD would sync them."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))
    return sorted((read_manifest(p) for p in files), key=lambda m: m.sort_key)


# -- kubectl ---------------------------------------------------------------------------------------


def _kubectl(args: Sequence[str], *, capture: bool) -> subprocess.CompletedProcess[str]:
    command = ["kubectl", *args]
    click.echo("$ " + " ".join(command), err=True)
    try:
        return subprocess.run(command, text=True, capture_output=capture, check=False)
    except FileNotFoundError:
        raise click.ClickException("kubectl is not on PATH: the CI image needs kubectl and the "
                                   "kubectl-argo-rollouts plugin") from None


def _namespace_args(namespace: str | None) -> list[str]:
    return ["--namespace", namespace] if namespace else []


def get_rollout(name: str, namespace: str | None) -> dict[str, Any]:
    """The live Argo Rollout as JSON; a missing Rollout is a refusal, not a crash."""
    done = _kubectl(["get", "rollouts.argoproj.io", name, *_namespace_args(namespace), "--output", "json"],
                    capture=True)
    if done.returncode != 0:
        detail = done.stderr.strip() or f"kubectl exited with {done.returncode}"
        where = f" in namespace `{namespace}`" if namespace else ""
        first = ("; if this is the service's first deployment, there is no stable version to roll out from: "
                 "deploy the stable model once by hand") if "NotFound" in detail else ""
        raise Refusal(f"cannot read the Argo Rollout `{name}`{where}: {detail}{first}")
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise Refusal(f"kubectl printed something that is not JSON for Rollout `{name}`: {exc}") from None
    if not isinstance(data, dict):
        raise Refusal(f"kubectl printed something that is not a Rollout for `{name}`")
    return data


def _get(data: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(key, int):
            if not isinstance(data, list) or key >= len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[key] if isinstance(key, int) else data.get(key)
    return data


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1].lower()


def _mentions(template: Any, digest: str) -> bool:
    return _hex(digest) in json.dumps(template, sort_keys=True).lower()


_DIGESTS = re.compile(r"sha256:[0-9a-f]{64}")


# -- checks on the live Rollout --------------------------------------------------------------------


def check_live(rollout: dict[str, Any], expect: str, stable: str, candidate: str) -> str:
    """Whether what runs is what the step expects; the line to print when it is, a :class:`Refusal` when not.

    ``expect="stable"`` (before deploying): no rollout is under way and the pods run
    the spec's stable digest.  ``expect="candidate"`` (before rolling back): the
    Rollout runs the candidate, under way or promoted.
    """
    name = _get(rollout, "metadata", "name") or "the Rollout"
    template = _get(rollout, "spec", "template")
    if expect == "candidate":
        if _mentions(template, candidate):
            return f"Rollout `{name}` runs the candidate {candidate}: rolling it back"
        raise Refusal(f"Rollout `{name}` does not run the candidate {candidate}: there is nothing of this "
                      "rollout to roll back (it was never deployed, or was already rolled back). Undoing "
                      "now would take the stable model back to an older version, so this job stops.")
    stable_hash = _get(rollout, "status", "stableRS")
    current_hash = _get(rollout, "status", "currentPodHash")
    if not stable_hash:
        raise Refusal(f"Rollout `{name}` has no stable version yet (status.stableRS is empty): wait until the "
                      "controller has reconciled it, or deploy the stable model once before rolling out")
    if _mentions(template, candidate):
        if current_hash == stable_hash:
            raise Refusal(f"the candidate {candidate} is already the stable model of Rollout `{name}`: this "
                          "rollout was promoted earlier; there is nothing to deploy")
        raise Refusal(f"Rollout `{name}` is already rolling out the candidate {candidate}: follow it with "
                      f"`kubectl argo rollouts get rollout {name}`, approve or roll back in its pipeline")
    if current_hash and current_hash != stable_hash:
        raise Refusal(f"another rollout of `{name}` is under way (pods {current_hash}, stable {stable_hash}): "
                      f"finish or abort it (`kubectl argo rollouts abort {name}`) before starting this one")
    if _mentions(template, stable):
        return f"Rollout `{name}` runs the spec's stable model {stable}: safe to roll out"
    found = sorted(set(_DIGESTS.findall(json.dumps(template).lower())))
    seen = ", ".join(found) if found else "no sha256 digest at all"
    raise Refusal(f"the live stable model of Rollout `{name}` is not the spec's stable model {stable} (the pods "
                  f"reference {seen}). The spec was written against another version: update `model stable` to "
                  "what runs, or find out why production differs, before rolling out")


def _parse_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (TypeError, ValueError):
        return None


def check_paused(rollout: dict[str, Any], step: str, *, weight: float | None = None,
                 preview_s: float | None = None, now: float | None = None) -> str:
    """Whether the Rollout waits at the pause this approval is for; the line to print, or a :class:`Refusal`.

    A canary approval (``weight``) needs the Rollout stopped at an indefinite pause
    step with that weight set; a timed pause is not the approval's pause, and
    promoting there would cut the stage short.  A blue-green approval
    (``preview_s``) needs the blue-green pause, held for at least the preview.
    Without either, any pause will do.
    """
    name = _get(rollout, "metadata", "name") or "the Rollout"
    conditions = _get(rollout, "status", "pauseConditions") or []
    reasons = [c.get("reason", "") for c in conditions if isinstance(c, dict)]
    paused = bool(reasons) or bool(_get(rollout, "spec", "paused"))
    again = f"re-run this job when Rollout `{name}` waits for the `{step}` approval"
    if not paused:
        raise Refusal(f"Rollout `{name}` is not paused, so it is not waiting for the `{step}` approval yet (or "
                      f"went past it); promoting now would skip a step. {again[0].upper() + again[1:]}")
    if weight is not None:
        steps = _get(rollout, "spec", "strategy", "canary", "steps") or []
        index = _get(rollout, "status", "currentStepIndex")
        if not isinstance(index, int) or not 0 <= index < len(steps):
            raise Refusal(f"Rollout `{name}` is not at a canary step (currentStepIndex {index!r} of "
                          f"{len(steps)} steps); {again}")
        current = steps[index] if isinstance(steps[index], dict) else {}
        pause = current.get("pause")
        at = 0.0
        for s in steps[:index]:
            if isinstance(s, dict) and isinstance(s.get("setWeight"), int | float):
                at = float(s["setWeight"])
        if not isinstance(pause, dict):
            raise Refusal(f"Rollout `{name}` is paused at step {index}, which is not a pause step; {again}")
        if pause.get("duration") not in (None, "", 0, "0"):
            raise Refusal(f"Rollout `{name}` is in the timed pause ({pause['duration']}) of its {_pct(at)} step: "
                          f"the `{step}` approval ends the wait that follows it; {again}")
        if not math.isclose(at, weight, abs_tol=1e-9):
            raise Refusal(f"Rollout `{name}` waits at {_pct(at)}, but the `{step}` approval is for the "
                          f"{_pct(weight)} stage; {again}")
        return f"Rollout `{name}` waits for approval at {_pct(at)} (step {index}): promoting past `{step}`"
    if preview_s is not None:
        started = [_parse_time(c.get("startTime", "")) for c in conditions
                   if isinstance(c, dict) and c.get("reason") == "BlueGreenPause"]
        if not started:
            raise Refusal(f"Rollout `{name}` is paused ({', '.join(reasons) or 'spec.paused'}) but not in its "
                          f"blue-green preview; {again}")
        start = min((s for s in started if s is not None), default=None)
        clock = time.time() if now is None else now
        if preview_s > 0 and start is not None and clock - start < preview_s:
            left = preview_s - (clock - start)
            raise Refusal(f"the preview of Rollout `{name}` has run {_duration(clock - start)} of the "
                          f"{_duration(preview_s)} the spec asks for; approve `{step}` in {_duration(left)}")
        return f"Rollout `{name}` waits in its blue-green preview: promoting past `{step}`"
    return f"Rollout `{name}` is paused ({', '.join(reasons) or 'spec.paused'}): promoting past `{step}`"


def _pct(value: float) -> str:
    return f"{value:g}%"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


# -- notices ---------------------------------------------------------------------------------------


def post_notice(url: str, token: str | None, channel: str, text: str, timeout_s: float = 10.0) -> None:
    """POST ``{"channel": ..., "text": ...}`` to a chat webhook (Slack's chat.postMessage, Mattermost, ...)."""
    import urllib.error
    import urllib.request

    body = json.dumps({"channel": channel, "text": text}).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            reply = response.read(65536)
    except urllib.error.HTTPError as exc:
        raise Refusal(f"the notice to {channel} was refused: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Refusal(f"cannot reach the notification webhook for {channel}: {reason}") from None
    try:
        answer = json.loads(reply)
    except ValueError:
        return
    if isinstance(answer, dict) and answer.get("ok") is False:  # Slack's API answers 200 with ok: false
        raise Refusal(f"the notice to {channel} was refused: {answer.get('error', 'ok: false')}")


# -- the commands ------------------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    raise Refusal(message)


@click.group(name="ci")
def ci() -> None:
    """Steps the generated CI pipelines run against the cluster."""


@ci.command("apply")
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the order only; apply nothing.")
def apply_command(folder: Path, dry_run: bool) -> None:
    """Apply compiled manifests with kubectl, in Argo CD sync-wave order.

    Lower `argocd.argoproj.io/sync-wave` first (no annotation: wave 0); within
    a wave, namespaces, accounts, config and Services before other kinds.

    \b
    Example:
      rollout compile ranker-v2.rollout -t argo,istio -o manifests && rollout ci apply manifests
    """
    manifests = apply_order(folder)
    if not manifests:
        _fail(f"no .yaml files under {folder}: compile the manifests first "
              f"(`rollout compile SPEC -t argo,istio -o {folder}`)")
    for m in manifests:
        click.echo(f"wave {m.wave:>3}  {m.kind or '?':<24} {m.path.as_posix()}")
    if dry_run:
        return
    for m in manifests:
        done = _kubectl(["apply", "--filename", m.path.as_posix()], capture=False)
        if done.returncode != 0:
            _fail(f"kubectl apply failed on {m.path.as_posix()} (exit {done.returncode}); the manifests before "
                  "it are applied, the ones after it are not")


def _rollout_options(fn: Any) -> Any:
    fn = click.option("--namespace", "-n", default=None, help="The Rollout's namespace (default: kubeconfig's).")(fn)
    return click.option("--rollout", "name", required=True, help="Name of the Argo Rollout.")(fn)


@ci.command("live")
@_rollout_options
@click.option("--expect", type=click.Choice(["stable", "candidate"]), required=True,
              help="stable: before deploying; candidate: before rolling back.")
@click.option("--stable", "stable_digest", required=True, metavar="sha256:...", help="The spec's stable digest.")
@click.option("--candidate", "candidate_digest", required=True, metavar="sha256:...",
              help="The spec's candidate digest.")
def live_command(name: str, namespace: str | None, expect: str, stable_digest: str, candidate_digest: str) -> None:
    """Check what the live Rollout runs before a deploy or a rollback.

    \b
    Example (preflight):
      rollout ci live --rollout ranker-v2 -n recs --expect stable --stable sha256:2a4d... --candidate sha256:9ab0...
    """
    click.echo(check_live(get_rollout(name, namespace), expect, stable_digest, candidate_digest))


@ci.command("paused")
@_rollout_options
@click.option("--step", required=True, help="The approval's name, for messages (a stage, or `promotion`).")
@click.option("--weight", type=float, default=None, help="Canary: the weight of the stage the approval ends.")
@click.option("--preview", "preview_s", type=float, default=None, metavar="SECONDS",
              help="Blue-green: the preview the spec asks for, in seconds (0: any length).")
def paused_command(name: str, namespace: str | None, step: str, weight: float | None,
                   preview_s: float | None) -> None:
    """Check the Rollout waits at this approval's pause, so that promoting skips nothing.

    \b
    Example:
      rollout ci paused --rollout ctr-ranker-longrun -n recs --step mpr --weight 50 \\
        && kubectl argo rollouts promote ctr-ranker-longrun -n recs
    """
    if weight is not None and preview_s is not None:
        raise click.UsageError("give --weight (canary) or --preview (blue-green), not both")
    click.echo(check_paused(get_rollout(name, namespace), step, weight=weight, preview_s=preview_s))


@ci.command("notify")
@click.option("--channel", "channels", multiple=True, required=True, help="A channel to notify (repeatable).")
@click.option("--message", required=True, help="The notice.")
def notify_command(channels: tuple[str, ...], message: str) -> None:
    """Post a notice to each channel through the webhook in $ROLLOUT_NOTIFY_WEBHOOK.

    The body is `{"channel": ..., "text": ...}`, which Slack's chat.postMessage
    (with a bot token in $ROLLOUT_NOTIFY_TOKEN, sent as a bearer token) and
    Mattermost's incoming webhooks accept.

    \b
    Example:
      ROLLOUT_NOTIFY_WEBHOOK=https://slack.com/api/chat.postMessage ROLLOUT_NOTIFY_TOKEN=xoxb-... \\
        rollout ci notify --channel "#recs-ml-oncall" --message "ranker-v2: the pipeline failed"
    """
    url = os.environ.get("ROLLOUT_NOTIFY_WEBHOOK", "").strip()
    if not url:
        _fail("ROLLOUT_NOTIFY_WEBHOOK is not set: add it as a masked CI/CD variable (GitLab) or a secret "
              f"(GitHub) so failures reach {', '.join(channels)}")
    if not url.startswith(("https://", "http://")):
        _fail("ROLLOUT_NOTIFY_WEBHOOK must be an http(s) URL, such as https://slack.com/api/chat.postMessage")
    token = os.environ.get("ROLLOUT_NOTIFY_TOKEN", "").strip() or None
    failures = []
    for channel in channels:
        try:
            post_notice(url, token, channel, message)
            click.echo(f"notified {channel}")
        except Refusal as exc:
            failures.append(exc.message)
    if failures:
        _fail("; ".join(failures))

