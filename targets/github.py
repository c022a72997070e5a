"""GitHub Actions: the workflow that carries a rollout from pull request to 100%.

Writes ``.github/workflows/rollout-NAME.yml``.  The jobs are laid out by
:mod:`rolloutlang.targets.pipeline`; see docs/targets.md for what each becomes
and what a team configures by hand (environments and their reviewers, the
cluster secret).

Two things keep spec values data here.  Every one reaches a step as an
``env:`` value (the scripts read ``"$NAME"``), and GitHub evaluates ``${{ }}``
even inside ``env:`` values, so every ``${{`` in a spec string is written as
``${{ '${{' }}``, an expression whose value is the two characters themselves.
Third-party actions are pinned by full commit SHA, the tag in a comment;
every job runs in the pinned CI image with the least ``permissions:`` it
needs (the workflow grants none).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from rolloutlang.targets.base import CompileInput, Output, Quoted, yaml_scalar
from rolloutlang.targets.pipeline import Pipeline, PipelineTarget, shell_context

# Actions the workflow uses, by full commit SHA (a tag can be moved); the tag is
# what the SHA was released as.  All run on node24.
ACTIONS = {
    "checkout": ("actions/checkout", "08c6903cd8c0fde910a37f88322edcfb5dd907a8", "v5.0.0"),
    "upload_artifact": ("actions/upload-artifact", "b7c566a772e6b6bfb58ed0dc250532a479d7789f", "v6.0.0"),
    "download_artifact": ("actions/download-artifact", "37930b1c2abaa49bbe596cd826c3c89aef350131", "v7.0.0"),
    "upload_sarif": ("github/codeql-action/upload-sarif", "5d4e8d1aca955e8d8589aabd499c5cae939e33c7", "v4.31.9"),
}

RUNNER = "ubuntu-24.04"

# Job conditions: template text, no spec value in them.  Pushes to other branches run
# nothing (their pull request does); the default branch also deploys.
_ON_DEFAULT_BRANCH = "github.ref_name == github.event.repository.default_branch"
REVIEW_IF = (f"(github.event_name == 'pull_request' || {_ON_DEFAULT_BRANCH})"
             " && (github.event_name != 'workflow_dispatch' || inputs.run == 'pipeline')")
DEPLOY_IF = ("(github.event_name == 'push' || (github.event_name == 'workflow_dispatch' && inputs.run == 'pipeline'))"
             f" && {_ON_DEFAULT_BRANCH}")
ROLLBACK_IF = f"github.event_name == 'workflow_dispatch' && inputs.run == 'rollback' && {_ON_DEFAULT_BRANCH}"
NOTIFY_IF = f"failure() && {_ON_DEFAULT_BRANCH}"

_EXPRESSION_START = "${{"
_EXPRESSION_LITERAL = "${{ '${{' }}"


def neutralise_expressions(text: str) -> str:
    """Text GitHub's expression engine leaves as written: each `${{` becomes an expression whose value is `${{`."""
    return text.replace(_EXPRESSION_START, _EXPRESSION_LITERAL)


def _neutralised(value: Any) -> Any:
    if isinstance(value, str):
        return neutralise_expressions(value)
    if isinstance(value, tuple):
        return tuple(_neutralised(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _neutralised(getattr(value, f.name))
                                             for f in dataclasses.fields(value)})
    return value


def output_path(pipeline: Pipeline) -> str:
    return f".github/workflows/rollout-{pipeline.slug}.yml"


class GitHubTarget(PipelineTarget):
    name: ClassVar[str] = "github"
    summary: ClassVar[str] = "GitHub Actions workflow: check, simulate, hooks, diff, deploy, approvals, rollback"
    platform: ClassVar[str] = "GitHub Actions"

    def write(self, unit: CompileInput, pipeline: Pipeline) -> Output:
        path = output_path(pipeline)
        safe: Pipeline = _neutralised(pipeline)
        text = self.render(
            "workflow.yml.j2",
            p=safe,
            source_path=unit.source_path,
            watch_paths=(*safe.watch_paths, path),
            runner=RUNNER,
            actions={key: Quoted(f"{repo}@{sha}  # {tag}") for key, (repo, sha, tag) in ACTIONS.items()},
            review_if=Quoted(REVIEW_IF),
            deploy_if=Quoted(DEPLOY_IF),
            rollback_if=Quoted(ROLLBACK_IF),
            notify_if=Quoted(NOTIFY_IF),
            manifests_artifact=f"rollout-{safe.slug}-manifests",
            concurrency=f"rollout-{safe.slug}-cluster",
            all_jobs=Quoted(", ".join(yaml_scalar(j) for j in safe.jobs if j != "notify")),
            **shell_context(safe),
        )
        return Output(path, text)
