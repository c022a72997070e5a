"""What the GitLab CI and GitHub Actions targets share: the jobs a rollout's pipeline needs.

:func:`build_pipeline` reads the IR and the plan once and lays out the
pipeline both targets write, in order, each job only where the spec needs it:

* ``check``: ``rollout check --strict``, its findings as a review report;
* ``simulate``: when the spec has scenarios, budgets or a business gate;
* one ``hook-NAME`` job per ``pipeline`` hook before traffic, in the written order, each held to its
  timeout (hooks at a phase or after promotion run in the Argo Rollout; hooks on rollback are steps of
  ``rollback``);
* ``compile`` the Argo Rollouts and Istio manifests, ``diff`` them against the
  cluster (both also on merge and pull requests);
* ``preflight`` (the live stable model is the spec's), ``deploy`` in sync-wave
  order;
* one approval job per plan phase that waits for a person, in a protected
  environment named ``ROLLOUT/STEP``; it promotes the Argo Rollout past that
  pause once ``rollout ci paused`` confirms the Rollout waits there;
* ``rollback`` (manual, then the hooks `on rollback`; in ``ROLLOUT/rollback`` when the spec names who may
  approve one) and ``notify`` on failure, to the spec's channels.

Every value from the spec reaches a job as an environment variable (a quoted
YAML scalar), never inside a shell line; the scripts themselves are template
text.  The targets differ only in how a platform says this.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from rolloutlang import __version__, handles, ir
from rolloutlang.diagnostics import Diagnostic, error
from rolloutlang.plan import Phase
from rolloutlang.targets.base import CompileInput, Output, Quoted, Target, TargetResult, dns_label

# Pinned by the version that generated the pipeline, so the pipeline compiles
# exactly as this run did; a team overrides it (an internal index, a git URL)
# with a CI/CD variable of the same name.
ROLLOUTLANG_REQUIREMENT = f"rolloutlang=={__version__}"

# Paths a CI path filter reads literally: GitLab and GitHub read `*`, `?`, `[`,
# `{`, `!`, `+` as patterns and GitLab expands `$`.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")

_MAX_ID = 60

CI_IMAGE_HELP = ('add `image "registry.example.com/ml/rollout-ci" @ sha256:<digest>` to the rollout\'s '
                 "`pipeline { ... }` block, or pass --ci-image IMAGE@sha256:...; the image needs bash, python3 "
                 "(or rolloutlang), kubectl with the kubectl-argo-rollouts plugin, git, and what the hooks run")


@dataclass(frozen=True)
class Hook:
    """One `pipeline` hook: its job (or the job it is a step of), the command `sh -c` runs, and how long it may.

    Hooks before traffic are jobs of their own; hooks on rollback are steps of the rollback job, after the
    abort; hooks at the start or end of a phase or after promotion run in the cluster, as steps of the Argo
    Rollout (``targets/argo.py``), which alone knows when a phase begins.
    """

    job: str
    name: str
    command: str
    needs: str
    timeout_s: float = ir.DEFAULT_TIMEOUT_S
    point: ir.HookPoint = "before-traffic"
    phase: str | None = None

    @property
    def timeout(self) -> str:
        """The timeout in whole seconds, for `timeout`."""
        return str(math.ceil(self.timeout_s))

    @property
    def timeout_minutes(self) -> int:
        """Whole minutes for a CI step's limit: the timeout, rounded up."""
        return max(math.ceil(self.timeout_s / 60), 1)

    @property
    def where(self) -> str:
        """Where in the plan it runs, in the language's words."""
        if self.point == "phase-start":
            return f"at start of {self.phase}"
        if self.point == "phase-end":
            return f"at end of {self.phase}"
        return self.point.replace("-", " ")


@dataclass(frozen=True)
class Approval:
    """A phase that waits for a person, and the job that promotes past it.

    Attributes:
        job: job id (``approve-mpr``, ``approve-promotion``).
        step: what is approved: the stage's name, or ``promotion`` for the last phase.
        environment: the protected environment whose reviewers approve it.
        approvers: who the spec says may approve (set as the environment's reviewers by hand).
        weight: for a canary stage, its weight (the Rollout must wait at it).
        preview_s: for a blue-green preview, how long it must have run (0: any time).
        description: what the phase is, for people.
        needs: the job before it.
    """

    job: str
    step: str
    environment: str
    approvers: tuple[str, ...]
    weight: float | None
    preview_s: float | None
    description: str
    needs: str


@dataclass(frozen=True)
class Pipeline:
    """Everything a CI target writes for one rollout; strings are the spec's, unescaped."""

    name: str
    slug: str
    spec_path: str
    watch_paths: tuple[str, ...]
    image: str
    requirement: str
    namespace: str | None
    rollout_object: str
    stable_digest: str
    candidate_digest: str
    simulate: bool
    hooks: tuple[Hook, ...]
    rollback_hooks: tuple[Hook, ...]
    cluster_hooks: tuple[Hook, ...]
    revert: str | None
    approvals: tuple[Approval, ...]
    rollback_environment: str | None
    rollback_approvers: tuple[str, ...]
    channels: tuple[str, ...]
    evaluator_image: str | None
    deploy_environment: str

    @property
    def jobs(self) -> list[str]:
        """Every job id, in pipeline order."""
        return ["check", *(["simulate"] if self.simulate else []), *(h.job for h in self.hooks), "compile", "diff",
                "preflight", "deploy", *(a.job for a in self.approvals), "rollback",
                *(["notify"] if self.channels else [])]

    @property
    def last_review_job(self) -> str:
        """The job deploying waits for last among those that also run on merge and pull requests."""
        return self.hooks[-1].job if self.hooks else ("simulate" if self.simulate else "check")


def job_id(*parts: str) -> str:
    """A job id from spec names: they are already `[A-Za-z0-9_-]`; a long one keeps its start and a hash."""
    text = "-".join(parts)
    if len(text) <= _MAX_ID:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return text[: _MAX_ID - 9].rstrip("-") + "-" + digest


def _unique(ids: list[str], wanted: str) -> str:
    out, n = wanted, 2
    while out in ids:
        out, n = f"{wanted}-{n}", n + 1
    ids.append(out)
    return out


def _ci_image(unit: CompileInput, target: str) -> tuple[str | None, list[Diagnostic]]:
    rollout = unit.rollout
    where = rollout.name_span or rollout.span
    given = unit.options.ci_image
    if given is not None:
        reference, digest = handles.split_digest(given.strip())
        problem = None
        if not handles.is_image_reference(reference):
            problem = f"`{reference}` is not an image reference"
        elif digest is None:
            problem = "it is not pinned by digest"
        else:
            from rolloutlang.checks.artifacts import digest_problem

            found = digest_problem(digest)
            problem = found[0] if found else None
        if problem is not None:
            return None, [error("RL751", f"--ci-image `{given}` cannot be used: {problem}",
                                help="give the image the CI jobs run in with its sha256 digest: "
                                     "--ci-image registry.example.com/ml/rollout-ci@sha256:<64 hex digits>")]
        return f"{reference}@{digest}", []
    spec_image = rollout.pipeline_image
    if spec_image is None:
        return None, [error("RL750", f"the {target} pipeline of `{rollout.name}` needs the image its jobs run in, "
                                     "pinned by digest", where,
                            label="no `pipeline { image ... }` and no --ci-image", help=CI_IMAGE_HELP)]
    if spec_image.pin is None or spec_image.pin.digest is None:
        # `rollout check` already reported it (RL401, RL402); compile stopped before here.
        return None, [error("RL750", "the pipeline image is not pinned by digest", spec_image.span,
                            help=CI_IMAGE_HELP)]
    return f"{spec_image.image}@{spec_image.pin.digest}", []


def _approvals(unit: CompileInput, first_needs: str) -> list[Approval]:
    pre: list[Phase] = unit.plan.pre_promotion
    ids: list[str] = []
    out: list[Approval] = []
    needs = first_needs
    for i, ph in enumerate(pre):
        if not ph.approval:
            continue
        step = "promotion" if i == len(pre) - 1 else ph.name
        job = _unique(ids, job_id("approve", step))
        out.append(Approval(
            job=job, step=step, environment=f"{unit.rollout.name}/{step}", approvers=ph.approvers,
            weight=ph.weight_percent if ph.kind == "canary" else None,
            preview_s=(ph.duration_s or 0.0) if ph.kind == "preview" else None,
            description=f"{ph.name}: {ph.description}", needs=needs))
        needs = job
    return out


def _channels(rollout: ir.Rollout) -> tuple[str, ...]:
    """Where failure notices go: every channel a rule notifies, then the owner when it names a channel."""
    found = [a.channel for r in rollout.rules for a in r.actions if a.kind == "notify" and a.channel]
    if rollout.owner and handles.is_channel(rollout.owner):
        found.append(rollout.owner)
    return tuple(dict.fromkeys(found))


def build_pipeline(unit: CompileInput, target: str) -> tuple[Pipeline | None, list[Diagnostic]]:
    """The pipeline of one checked rollout, or the diagnostics that say why there is none."""
    rollout = unit.rollout
    diagnostics: list[Diagnostic] = []
    image, found = _ci_image(unit, target)
    diagnostics.extend(found)
    if unit.source_path.startswith("<") or not unit.source_path:
        diagnostics.append(error(
            "RL752", f"the {target} pipeline runs `rollout` on the spec's file, but this spec has no file "
            f"(`{unit.source_path}`)", help="compile the file in the repository: `rollout compile path/to/spec.rollout "
            f"--target {target}`"))
    for path in unit.source_paths:
        if not path.startswith("<") and not _PLAIN_PATH.fullmatch(path):
            diagnostics.append(error(
                "RL753", f"the pipeline runs when `{path}` changes, but CI path filters would read that path as a "
                "pattern", help="rename the file with letters, digits, `.`, `_`, `-` and `/` only"))
    stable, candidate = rollout.model("stable"), rollout.model("candidate")
    stable_digest = stable.pin.digest if stable and stable.pin else None
    candidate_digest = candidate.pin.digest if candidate and candidate.pin else None
    if stable_digest is None or candidate_digest is None:
        # `rollout check` requires both pins (RL401, RL408); compile stopped before here.
        diagnostics.append(error("RL754", "the preflight and rollback jobs need both models pinned by digest",
                                 rollout.name_span or rollout.span))
    if any(d.is_error for d in diagnostics):
        return None, diagnostics
    assert image is not None and stable_digest is not None and candidate_digest is not None

    hooks: list[Hook] = []
    ids: list[str] = []
    simulate = bool(rollout.scenarios or rollout.budgets
                    or any(isinstance(g, ir.BusinessGate) for g in rollout.gates))
    before = "simulate" if simulate else "check"
    rollback_hooks: list[Hook] = []
    cluster_hooks: list[Hook] = []
    for h in rollout.pipeline:
        if h.point == "before-traffic":
            job = _unique(ids, job_id("hook", h.name))
            hooks.append(Hook(job=job, name=h.name, command=h.command, needs=before, timeout_s=h.timeout_s))
            before = job
        else:
            hook = Hook(job="rollback", name=h.name, command=h.command, needs="rollback", timeout_s=h.timeout_s,
                        point=h.point, phase=h.phase)
            (rollback_hooks if h.point == "on-rollback" else cluster_hooks).append(hook)
    rollback_approvers = tuple(dict.fromkeys(x for a in rollout.approvals if a.what == "rollback"
                                             for x in a.approvers))
    evaluator = unit.options.evaluator_image
    pipeline = Pipeline(
        name=rollout.name,
        slug=dns_label(rollout.name),
        spec_path=unit.source_path,
        watch_paths=unit.source_paths,
        image=image,
        requirement=ROLLOUTLANG_REQUIREMENT,
        namespace=rollout.namespace,
        rollout_object=dns_label(rollout.name),
        stable_digest=stable_digest,
        candidate_digest=candidate_digest,
        simulate=simulate,
        hooks=tuple(hooks),
        rollback_hooks=tuple(rollback_hooks),
        cluster_hooks=tuple(cluster_hooks),
        revert=(rollout.revert.reason or "") if rollout.revert is not None else None,
        approvals=tuple(_approvals(unit, "deploy")),
        rollback_environment=f"{rollout.name}/rollback" if rollback_approvers else None,
        rollback_approvers=rollback_approvers,
        channels=_channels(rollout),
        evaluator_image=evaluator,
        deploy_environment=rollout.name,
    )
    return pipeline, diagnostics


def shell_context(pipeline: Pipeline) -> dict[str, Any]:
    """What both templates put into shell lines: text made here from variable names only, no spec value."""
    return {
        "ns": Quoted(' --namespace "$ROLLOUT_NAMESPACE"' if pipeline.namespace else ""),
        "channel_args": Quoted("".join(f' --channel "$ROLLOUT_CHANNEL_{i}"'
                                       for i in range(1, len(pipeline.channels) + 1))),
        "num": lambda value: f"{value:g}",
    }


class PipelineTarget(Target):
    """A CI target: lays the pipeline out once, then writes it in one platform's terms."""

    platform: ClassVar[str]

    def compile(self, unit: CompileInput) -> TargetResult:
        pipeline, diagnostics = build_pipeline(unit, self.platform)
        if pipeline is None:
            return TargetResult(diagnostics=diagnostics)
        return TargetResult(outputs=[self.write(unit, pipeline)], diagnostics=diagnostics)

    def write(self, unit: CompileInput, pipeline: Pipeline) -> Output:
        raise NotImplementedError
