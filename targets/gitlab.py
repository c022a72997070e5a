"""GitLab CI: the pipeline that carries a rollout from merge request to 100%.

Writes ``.gitlab/ci/rollout-NAME.gitlab-ci.yml``, a file a project includes
from its ``.gitlab-ci.yml`` (or sets as its CI/CD configuration file).  Job
names start with the rollout's name and the jobs use only the default stages
``test`` and ``deploy``, ordered by ``needs``, so several rollouts' files can
be included side by side.  The jobs are laid out by
:mod:`rolloutlang.targets.pipeline`; see docs/targets.md for what each becomes
and what a team configures by hand.

GitLab expands ``$VARIABLES`` inside ``variables:`` values, so every value
from the spec is a variable with ``expand: false``: GitLab passes it on as
written, and the scripts only ever read it as ``"$NAME"``.
"""

from __future__ import annotations

from typing import ClassVar

from rolloutlang.targets.base import CompileInput, Output
from rolloutlang.targets.pipeline import Approval, Pipeline, PipelineTarget, job_id, shell_context


def output_path(pipeline: Pipeline) -> str:
    return f".gitlab/ci/rollout-{pipeline.slug}.gitlab-ci.yml"


def job_names(pipeline: Pipeline) -> dict[str, str]:
    """Job id -> GitLab job name: the rollout's name, a colon, the job (`ranker-v2:check`)."""
    prefix = job_id(pipeline.name)
    return {i: f"{prefix}:{i}" for i in pipeline.jobs}


def approval_variables(approval: Approval) -> list[tuple[str, str]]:
    """What an approval job passes to `rollout ci paused`: the step, its approvers, where the Rollout waits."""
    out = [("ROLLOUT_STEP", approval.step), ("ROLLOUT_APPROVERS", ", ".join(approval.approvers))]
    if approval.weight is not None:
        out.append(("ROLLOUT_STEP_WEIGHT", f"{approval.weight:g}"))
    elif approval.preview_s is not None:
        out.append(("ROLLOUT_PREVIEW_SECONDS", f"{approval.preview_s:g}"))
    return out


def cluster_variables(pipeline: Pipeline) -> list[tuple[str, str]]:
    """What the jobs that read the cluster need: the Argo Rollout and the two digests."""
    out = [("ROLLOUT_OBJECT", pipeline.rollout_object)]
    if pipeline.namespace:
        out.append(("ROLLOUT_NAMESPACE", pipeline.namespace))
    out += [("STABLE_DIGEST", pipeline.stable_digest), ("CANDIDATE_DIGEST", pipeline.candidate_digest)]
    return out


class GitLabTarget(PipelineTarget):
    name: ClassVar[str] = "gitlab"
    summary: ClassVar[str] = "GitLab CI include file: check, simulate, hooks, diff, deploy, approvals, rollback"
    platform: ClassVar[str] = "GitLab CI"

    def write(self, unit: CompileInput, pipeline: Pipeline) -> Output:
        path = output_path(pipeline)
        prefix = job_id(pipeline.name)
        text = self.render(
            "pipeline.yml.j2",
            p=pipeline,
            source_path=unit.source_path,
            output_path=path,
            jobs=job_names(pipeline),
            base=f".{prefix}",
            base_cluster=f".{prefix}:cluster",
            resource_group=f"rollout-{pipeline.slug}",
            base_variables=[("ROLLOUT_NAME", pipeline.name), ("ROLLOUT_SPEC", pipeline.spec_path),
                            ("ROLLOUTLANG_REQUIREMENT", pipeline.requirement)],
            cluster_variables=cluster_variables(pipeline),
            approval_variables={a.job: approval_variables(a) for a in pipeline.approvals},
            channel_variables=[(f"ROLLOUT_CHANNEL_{i}", c) for i, c in enumerate(pipeline.channels, 1)],
            **shell_context(pipeline),
        )
        return Output(path, text)
