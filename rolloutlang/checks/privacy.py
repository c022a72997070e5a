"""Privacy checks on request logging and personal data (RL650-RL656).

A logged field marked PII must be hashed or dropped before it is written.
Logged requests must carry a trace id and the model version, or a logged
request cannot be tied to the model that answered it, which is the point of
logging during a rollout.  A signature field marked `pii` is personal data
wherever it goes: logged, it needs a treatment in the log's `pii` list; a
drift gate on it would publish its values as metric labels.
"""

from __future__ import annotations

from collections.abc import Iterable

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, warning
from rolloutlang.lowering import join_spans
from rolloutlang.source import Span

REQUIRED_FIELDS = ("trace_id", "model_version")
# What a log record holds besides the model's inputs and outputs.
LOG_METADATA = (*REQUIRED_FIELDS, "request_id", "timestamp", "latency")


def personal_fields(rollout: ir.Rollout) -> dict[str, ir.SignatureField]:
    """The signature fields marked `pii`, by name (either version's signature)."""
    found: dict[str, ir.SignatureField] = {}
    for sig in rollout.signatures:
        for f in (*sig.inputs, *sig.outputs):
            if f.personal:
                found.setdefault(f.name, f)
    return found


def _signature_names(rollout: ir.Rollout) -> list[str]:
    return list(dict.fromkeys(f.name for sig in rollout.signatures for f in (*sig.inputs, *sig.outputs)))


@check_pass("privacy")
def check_privacy(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    personal = personal_fields(rollout)
    out: list[Diagnostic] = []
    for gate in rollout.gates:
        if isinstance(gate, ir.DriftGate) and gate.target in personal:
            out.append(error(
                "RL655", f"drift gate `{gate.name}` watches `{gate.target}`, personal data, in clear",
                gate.target_span or gate.span, label="marked `pii` in the signature",
                notes=("a drift gate's distribution is exported to Prometheus, where a category is a label value: "
                       "the values themselves would be stored and shown",),
                help="watch a derived field that holds no personal data (a bucket, a domain, a length), or remove "
                     "the gate",
            ))
    log = rollout.request_log
    if log is None:
        return out
    if log.sample_percent == 0:
        out.append(warning(
            "RL653", "request logging samples 0% of requests: nothing is logged", log.span,
            help="log a share such as `log requests 5% { ... }`, or remove the block",
        ))
    treated = {p.name for p in log.pii if p.treatment is not None}
    for name, span in zip(log.fields, log.field_spans, strict=True):
        if name in personal and name not in treated:
            out.append(error(
                "RL654", f"`{name}` is personal data (marked `pii` in the signature) and is logged in clear", span,
                label="written to the log as is",
                help=f"hash or drop it in the log: `pii {name} hashed` (joinable) or `pii {name} dropped`",
            ))
    known = _signature_names(rollout)
    if known:
        allowed = [*known, *LOG_METADATA]
        for name, span in zip(log.fields, log.field_spans, strict=True):
            if name not in allowed:
                out.append(_unknown(name, span, "logged field", allowed))
    for pii in log.pii:
        name_span = pii.name_span or pii.span
        if pii.treatment is None:
            out.append(error(
                "RL650", f"pii field `{pii.name}` is neither hashed nor dropped", name_span,
                label="written to the log as is",
                help=f"write `pii {pii.name} hashed` to keep it joinable, or `pii {pii.name} dropped` "
                     "to keep it out of the log",
            ))
        if pii.name not in log.fields:
            hint = did_you_mean(pii.name, log.fields)
            out.append(warning(
                "RL651", f"pii field `{pii.name}` is not a logged field", name_span,
                help=hint or f"add `{pii.name}` to `fields`, or remove it from `pii`",
            ))
    if log.sample_percent > 0:
        missing = [f for f in REQUIRED_FIELDS if f not in log.fields]
        if missing:
            fixed = ", ".join([*log.fields, *missing])
            span = join_spans(log.field_spans[0], log.field_spans[-1]) if log.field_spans else log.span
            out.append(error(
                "RL652", "logged requests lack " + " and ".join(f"`{f}`" for f in missing), span,
                label="missing " + " and ".join(missing),
                help=f"write `fields {fixed}`: each logged request must name its trace and the model version "
                     "that answered it",
            ))
    return out


def _unknown(name: str, span: Span, what: str, allowed: list[str]) -> Diagnostic:
    hint = did_you_mean(name, allowed)
    return warning(
        "RL656", f"{what} `{name}` is not in the model's signature", span, label="logs nothing",
        help=hint or f"log the model's inputs and outputs ({', '.join(f'`{n}`' for n in allowed[:8])}"
                     f"{', ...' if len(allowed) > 8 else ''}) or `trace_id`, `model_version`, `request_id`, "
                     "`timestamp`, `latency`",
    )
