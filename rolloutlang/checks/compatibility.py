"""Compatibility checks (RL420-RL425): does the version say what the signature does?

The stable and candidate signatures are compared field by field.  A change
that can break a caller (a removed or retyped input, a new required input, a
removed or reshaped output) needs a major version bump and a way to see the
candidate on real traffic before it answers anyone (a shadow phase or a
blue-green preview); an additive change (a new optional input or a new
output) needs at least a minor bump.  Consumers that read an output must get
the shape they expect, or have an adapter.

Versions follow semver; in `0.y.z` a minor bump may break, as in Cargo.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.checks.artifacts import compare_semver
from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, warning
from rolloutlang.plan import Plan
from rolloutlang.source import Span

Bump = Literal["major", "minor", "patch", "prerelease", "none", "downgrade"]


@dataclass(frozen=True)
class Change:
    """One difference between the stable and the candidate signature."""

    kind: Literal["breaking", "additive"]
    text: str
    span: Span


def classify_bump(stable: ir.SemVer, candidate: ir.SemVer) -> Bump:
    """What kind of release the candidate is relative to the stable model."""
    order = compare_semver(candidate, stable)
    if order == 0:
        return "none"
    if order < 0:
        return "downgrade"
    if candidate.major > stable.major:
        return "major"
    if candidate.minor > stable.minor:
        return "major" if stable.major == 0 else "minor"
    if candidate.patch > stable.patch:
        return "patch"
    return "prerelease"


def signature_changes(stable: ir.Signature, candidate: ir.Signature) -> list[Change]:
    """Breaking and additive changes from the stable signature to the candidate's, in declaration order."""
    if stable is candidate:
        return []
    out: list[Change] = []
    old_in = {f.name: f for f in stable.inputs}
    new_in = {f.name: f for f in candidate.inputs}
    for f in stable.inputs:
        new = new_in.get(f.name)
        if new is None:
            out.append(Change("breaking", f"input `{f.name}` is removed", f.span))
        elif new.type.render() != f.type.render():
            out.append(Change("breaking", f"input `{f.name}` changes type from {f.type.render()} to "
                                          f"{new.type.render()}", new.span))
        elif f.optional and not new.optional:
            out.append(Change("breaking", f"input `{f.name}` becomes required", new.span))
        elif new.optional and not f.optional:
            out.append(Change("additive", f"input `{f.name}` becomes optional", new.span))
    for f in candidate.inputs:
        if f.name not in old_in:
            if f.optional:
                out.append(Change("additive", f"optional input `{f.name}` is added", f.span))
            else:
                out.append(Change("breaking", f"required input `{f.name}` is added", f.span))
    old_out = {f.name: f for f in stable.outputs}
    new_out = {f.name: f for f in candidate.outputs}
    for f in stable.outputs:
        new = new_out.get(f.name)
        if new is None:
            out.append(Change("breaking", f"output `{f.name}` is removed", f.span))
        elif new.type.render() != f.type.render():
            out.append(Change("breaking", f"output `{f.name}` changes from {f.type.render()} to "
                                          f"{new.type.render()}", new.span))
    for f in candidate.outputs:
        if f.name not in old_out:
            out.append(Change("additive", f"output `{f.name}` is added", f.span))
    return out


def output_dimension(t: ir.TypeRef) -> int | None:
    """The size a consumer sees: N of `vector<T, N>`, the last dimension of a tensor, else None."""
    if t.base in ("vector", "tensor") and t.dims:
        return t.dims[-1]
    return None


def _next_major(v: ir.SemVer) -> str:
    return f"0.{v.minor + 1}.0" if v.major == 0 else f"{v.major + 1}.0.0"


def _next_minor(v: ir.SemVer) -> str:
    return f"{v.major}.{v.minor + 1}.0"


def keyword_span(strategy: ir.Canary | ir.BlueGreen | ir.Rolling) -> Span:
    return strategy.span.head(len(strategy.kind))


def _has_preview(rollout: ir.Rollout) -> bool:
    if rollout.shadow is not None:
        return True
    return isinstance(rollout.strategy, ir.BlueGreen) and rollout.strategy.preview_s is not None


@check_pass("compatibility")
def check_compatibility(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    stable, candidate = rollout.model("stable"), rollout.model("candidate")
    if stable is None or candidate is None:
        return []  # RL408 says so
    out: list[Diagnostic] = []
    sig_s, sig_c = rollout.signature_for("stable"), rollout.signature_for("candidate")
    changes: list[Change] = []
    if sig_s is None or sig_c is None:
        whose = "the models" if sig_s is None and sig_c is None else \
            ("the stable model" if sig_s is None else "the candidate")
        notes = ("the consumers' expected shapes can't be checked either",) if rollout.consumers else ()
        out.append(warning(
            "RL420", f"no signature for {whose}: compatibility with the stable model can't be checked",
            candidate.span, notes=notes,
            help="declare the inputs and outputs, e.g. `signature { in user_id: int64  out scores: list<float32> }`"
                 " (or `signature stable {...}` and `signature candidate {...}` when they differ)",
        ))
    else:
        changes = signature_changes(sig_s, sig_c)

    if stable.semver is not None and candidate.semver is not None:
        out.extend(_version_rules(rollout, stable, candidate, changes))
    if sig_c is not None:
        out.extend(_consumer_rules(rollout, ctx.plan, sig_s, sig_c))
    return out


def _version_rules(rollout: ir.Rollout, stable: ir.ModelVersion, candidate: ir.ModelVersion,
                   changes: list[Change]) -> Iterator[Diagnostic]:
    assert stable.semver is not None and candidate.semver is not None
    bump = classify_bump(stable.semver, candidate.semver)
    breaking = [c for c in changes if c.kind == "breaking"]
    additive = [c for c in changes if c.kind == "additive"]
    if bump in ("minor", "patch") and breaking:
        first = breaking[0]
        yield error(
            "RL421", f"{first.text}: a breaking change needs a major version bump", candidate.version_span,
            label=f"a {bump} bump of {stable.version}",
            notes=tuple(f"breaking: {c.text} at {c.span}" for c in breaking),
            help=f"release the candidate as {_next_major(stable.semver)}, or keep the old signature "
                 "and add the new one beside it",
        )
    elif bump == "patch" and additive:
        first = additive[0]
        yield error(
            "RL422", f"{first.text}: a new feature needs at least a minor version bump", candidate.version_span,
            label=f"a patch bump of {stable.version}",
            notes=tuple(f"added: {c.text} at {c.span}" for c in additive),
            help=f"release the candidate as {_next_minor(stable.semver)}",
        )
    if isinstance(rollout.strategy, ir.Rolling) and bump != "downgrade" and (breaking or bump == "major"):
        what = breaking[0].text if breaking else f"a major version bump of {stable.version}"
        yield error(
            "RL409", f"a breaking change ({what}) is shipped by a rolling update", keyword_span(rollout.strategy),
            label="old and new pods answer side by side",
            notes=("until the last pod is replaced, and again on a rollback, each caller gets whichever shape the "
                   "pod that answers it has", *(f"breaking: {c.text} at {c.span}" for c in breaking[1:])),
            help="switch everyone at once after a preview (`blue-green { preview for 2h, promote manual }`), or "
                 "ramp a canary and move each consumer on its own switch (`via ... switch at ...`)",
        )
    if bump == "major" and not _has_preview(rollout):
        notes = tuple(f"breaking: {c.text} at {c.span}" for c in breaking)
        yield error(
            "RL423", f"candidate {candidate.version} is a major version bump but nothing previews it",
            candidate.version_span, label=f"major bump of {stable.version}", notes=notes,
            help="run it on mirrored traffic first (`shadow 100% for 24h`) or use a blue-green preview "
                 "(`blue-green { preview for 2h, promote manual }`)",
        )


def _consumer_rules(rollout: ir.Rollout, plan: Plan, sig_s: ir.Signature | None,
                    sig_c: ir.Signature) -> Iterator[Diagnostic]:
    """Both arms: what the candidate answers a consumer once it serves it, and what stable answers it before its
    switch and after any rollback."""
    cand_out = {f.name: f for f in sig_c.outputs}
    stable_out = {f.name: f for f in sig_s.outputs} if sig_s is not None else {}
    for consumer in rollout.consumers:
        field = cand_out.get(consumer.output)
        if field is None:
            if consumer.output in stable_out:
                if consumer.adapter is None:
                    yield error(
                        "RL424", f"consumer `{consumer.name}` reads output `{consumer.output}`, which the "
                        "candidate removes", consumer.span, notes=(_candidate_from(plan, consumer),),
                        help=f"keep `{consumer.output}` in the candidate, or give `{consumer.name}` an adapter: "
                             f'`{consumer.name} expects {consumer.output} {consumer.expects_dim} adapter "NAME"`',
                    )
                continue
            known = sorted(set(cand_out) | set(stable_out))
            hint = did_you_mean(consumer.output, known)
            yield error(
                "RL425", f"consumer `{consumer.name}` reads unknown output `{consumer.output}`", consumer.span,
                help=hint or (f"outputs: {', '.join(f'`{n}`' for n in known)}" if known else
                              "declare the output in the signature: `out NAME: vector<float32, 256>`"),
            )
            continue
        if consumer.adapter is not None:
            continue
        dim = output_dimension(field.type)
        old = stable_out.get(consumer.output)
        old_dim = output_dimension(old.type) if old is not None else None
        if dim is not None and dim != consumer.expects_dim:
            notes = (f"the stable model outputs {old_dim}",) if old_dim is not None and old_dim != dim else ()
            yield error(
                "RL424", f"consumer `{consumer.name}` expects `{consumer.output}` with {consumer.expects_dim} "
                f"dimensions but the candidate outputs {dim}", consumer.span,
                label=f"candidate: {field.type.render()}", notes=(*notes, _candidate_from(plan, consumer)),
                help=f'add an adapter (`{consumer.name} expects {consumer.output} {consumer.expects_dim} adapter '
                     f'"{dim}-to-{consumer.expects_dim}"`) or update the consumer to read {dim} dimensions '
                     f"(`{consumer.name} expects {consumer.output} {dim}`)",
            )
        elif sig_s is not None and (old is None or (old_dim is not None and old_dim != consumer.expects_dim)):
            has = f"answers it with {old_dim}" if old is not None else f"has no `{consumer.output}` output"
            yield warning(
                "RL411", f"consumer `{consumer.name}` reads the candidate's `{consumer.output}`, but stable {has}",
                consumer.span, label="breaks on stable's answers",
                notes=(_stable_until(plan, consumer),),
                help=f"give it an adapter for stable's answers (`adapter \"{old_dim or 0}-to-"
                     f"{consumer.expects_dim}\"`), or roll it back together with the model; a waiver "
                     "(`# waive RL411: ...`) says so in the spec",
            )


def _candidate_from(plan: Plan, consumer: ir.Consumer) -> str:
    """When the candidate starts answering a consumer: its switch, or the traffic split."""
    if consumer.route is not None:
        first = next((p for p in plan.phases if (consumer.name, "candidate") in p.consumers), None)
        if first is None or (first.post_promotion and consumer.switch in (None, "promotion")):
            return "its own route moves it to the candidate at promotion"
        return f"its own route moves it to the candidate at `{first.name}`"
    live = next((p for p in plan.phases if p.weight_percent > 0), None)
    return (f"it follows the traffic split: the candidate answers it from `{live.name}` "
            f"({live.weight_percent:g}%)" if live is not None else "the candidate answers it from promotion")


def _stable_until(plan: Plan, consumer: ir.Consumer) -> str:
    if consumer.route is not None:
        first = next((p for p in plan.phases if (consumer.name, "candidate") in p.consumers), None)
        if first is not None and first.index == 0:
            return "stable answers it after any rollback"
        where = f"`{first.name}`" if first is not None else "promotion"
        return f"stable answers it until its switch at {where}, and after any rollback"
    return "it follows the traffic split: stable answers its share of requests until promotion, and all of them " \
           "after any rollback"
