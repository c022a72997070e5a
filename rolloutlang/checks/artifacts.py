"""Artifact checks (RL401-RL408): what exactly is being rolled out.

A rollout must name both models, pin each of them (and the serving and
pipeline images) by an immutable sha256 digest, and give them distinct, semver versions with the
candidate newer than the stable model.  A tag such as `latest` can move
between review and deploy, so the reviewed plan would not be the one that
runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.diagnostics import Diagnostic, error, warning
from rolloutlang.source import Span

DIGEST_ALGORITHM = "sha256"
DIGEST_HEX_LENGTH = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
_EXAMPLE_DIGEST = "sha256:<64 lower-case hex digits>"
# An OCI reference may carry its digest inside the string: "repo/name@sha256:...".
_EMBEDDED_DIGEST = re.compile(r"@([a-z][a-z0-9]*:[0-9A-Za-z]+)$")


# -- semver -------------------------------------------------------------------------------


def _prerelease_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """Semver 2.0.0 section 11: numeric identifiers sort numerically and before alphanumeric ones."""
    out = []
    for part in text.split("."):
        if part.isdigit():
            out.append((0, int(part), ""))
        else:
            out.append((1, 0, part))
    return tuple(out)


def compare_semver(a: ir.SemVer, b: ir.SemVer) -> int:
    """-1, 0 or 1 by semver precedence; build metadata is ignored, a pre-release sorts before its release."""
    core_a, core_b = (a.major, a.minor, a.patch), (b.major, b.minor, b.patch)
    if core_a != core_b:
        return -1 if core_a < core_b else 1
    if a.prerelease == b.prerelease:
        return 0
    if not a.prerelease:
        return 1
    if not b.prerelease:
        return -1
    ka, kb = _prerelease_key(a.prerelease), _prerelease_key(b.prerelease)
    if ka == kb:
        return 0
    return -1 if ka < kb else 1


# -- digests ---------------------------------------------------------------------------------


def digest_problem(digest: str) -> tuple[str, str] | None:
    """(what is wrong, how to fix it) for a digest that is not `sha256:<64 lower-case hex>`."""
    algorithm, _, hex_part = digest.partition(":")
    if algorithm != DIGEST_ALGORITHM:
        return (f"`{algorithm}` digests are not accepted",
                f"pin the sha256 digest instead: `@ {_EXAMPLE_DIGEST}`")
    if _HEX64.fullmatch(hex_part):
        return None
    if len(hex_part) == DIGEST_HEX_LENGTH and _HEX64.fullmatch(hex_part.lower()):
        return ("the digest is not lower-case", f"write it in lower case: `sha256:{hex_part.lower()}`")
    bad = sorted({c for c in hex_part.lower() if c not in "0123456789abcdef"})
    if bad:
        return (f"the digest contains `{bad[0]}`, which is not a hex digit",
                f"a sha256 digest is {DIGEST_HEX_LENGTH} hex digits (0-9, a-f): `@ {_EXAMPLE_DIGEST}`")
    return (f"the digest has {len(hex_part)} hex digits, a sha256 digest has {DIGEST_HEX_LENGTH}",
            f"copy the full digest from the registry: `@ {_EXAMPLE_DIGEST}`")


def _pin_diagnostics(pin: ir.ArtifactPin | None, what: str, missing_span: Span, fix: str) -> Iterator[Diagnostic]:
    if pin is None:
        yield error("RL401", f"{what} is not pinned by digest", missing_span,
                    help=f"pin the artifact you reviewed: {fix}")
        return
    if pin.tag is not None:
        yield error("RL402", f"{what} is pinned to the mutable tag `{pin.tag}`", pin.span,
                    label="a tag can move to another artifact",
                    help=f"pin the digest instead: {fix}")
        return
    if pin.digest is not None:
        problem = digest_problem(pin.digest)
        if problem is not None:
            yield error("RL403", f"{what} has an invalid digest: {problem[0]}", pin.span, help=problem[1])


def _image_pin(serving: ir.Serving, image_span: Span) -> ir.ArtifactPin | None:
    if serving.image_pin is not None:
        return serving.image_pin
    m = _EMBEDDED_DIGEST.search(serving.image or "")
    if m is None:
        return None
    return ir.ArtifactPin(span=image_span, digest=m.group(1))


# -- the pass -----------------------------------------------------------------------------------


def _model_what(model: ir.ModelVersion) -> str:
    return f"{model.role} model `{model.name}`"


@check_pass("artifacts")
def check_artifacts(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    out: list[Diagnostic] = []
    stable, candidate = rollout.model("stable"), rollout.model("candidate")
    missing = [role for role, m in (("stable", stable), ("candidate", candidate)) if m is None]
    if missing:
        present = stable or candidate
        span = present.span if present is not None else rollout.span
        line = " and ".join(f"`model {role} NAME VERSION @ {_EXAMPLE_DIGEST}`" for role in missing)
        out.append(error(
            "RL408",
            f"rollout `{rollout.name}` declares no {' and no '.join(missing)} model",
            span,
            help=f"a rollout moves traffic from a stable model to a candidate; add {line}",
        ))

    for model in (stable, candidate):
        if model is None:
            continue
        fix = f"`model {model.role} {model.name} {model.version} @ {_EXAMPLE_DIGEST}`"
        out.extend(_pin_diagnostics(model.pin, _model_what(model), model.span, fix))
        if model.semver is None:
            out.append(error(
                "RL406", f"version `{model.version}` of the {model.role} model is not semver", model.version_span,
                help="write MAJOR.MINOR.PATCH, e.g. `1.5.0` or `2.0.0-rc.1`: the compatibility checks compare "
                     "versions to decide which changes are allowed",
            ))

    serving = rollout.serving
    if serving is not None and serving.image is not None:
        image = serving.image.split("@", 1)[0]
        image_span = serving.image_span or serving.span
        out.extend(_pin_diagnostics(_image_pin(serving, image_span), f"serving image `{image}`", image_span,
                                    f'`image "{image}" @ {_EXAMPLE_DIGEST}`'))

    ci_image = rollout.pipeline_image
    if ci_image is not None:
        out.extend(_pin_diagnostics(ci_image.pin, f"pipeline image `{ci_image.image}`", ci_image.span,
                                    f'`image "{ci_image.image}" @ {_EXAMPLE_DIGEST}`'))

    if stable is not None and candidate is not None:
        out.extend(_compare_models(stable, candidate, rollout.revert))
    return out


def _compare_models(stable: ir.ModelVersion, candidate: ir.ModelVersion,
                    revert: ir.Revert | None) -> Iterator[Diagnostic]:
    sd = stable.pin.digest if stable.pin else None
    cd = candidate.pin.digest if candidate.pin else None
    if sd is not None and cd is not None and sd == cd:
        assert candidate.pin is not None
        yield error("RL404", "the candidate is the same artifact as the stable model", candidate.pin.span,
                    label="same digest as the stable model",
                    notes=(f"the stable model is pinned to it at {stable.pin.span if stable.pin else stable.span}",),
                    help="pin the candidate's own digest; rolling out an artifact onto itself tests nothing")
    if stable.semver is not None and candidate.semver is not None:
        order = compare_semver(candidate.semver, stable.semver)
        if order == 0:
            yield error("RL405", f"the candidate has the stable model's version {candidate.version}",
                        candidate.version_span,
                        notes=(f"the stable model is {stable.version} at {stable.version_span}",),
                        help="give the candidate a new version: a patch, minor or major bump of "
                             f"{stable.version}, by what changed")
        elif order < 0 and revert is None:
            yield warning("RL407", f"candidate {candidate.version} is older than stable {stable.version}",
                          candidate.version_span, label="a downgrade",
                          help="to go back to the previous version on purpose, say so: `revert \"why\"`; "
                               "otherwise check the two versions are not swapped")
        elif order > 0 and revert is not None:
            yield error("RL410", f"a revert goes back to an older version, but candidate {candidate.version} is "
                        f"newer than stable {stable.version}", candidate.version_span,
                        label="not the previous version", notes=(f"`revert` at {revert.span}",),
                        help="the candidate of a revert is the version to go back to: swap the two models, or drop "
                             "`revert` to roll out a new version")
    elif stable.version == candidate.version:
        yield error("RL405", f"the candidate has the stable model's version {candidate.version}",
                    candidate.version_span, help="give the candidate a new version")
