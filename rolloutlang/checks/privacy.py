"""Privacy checks on request logging (RL650-RL653).

A logged field marked PII must be hashed or dropped before it is written.
Logged requests must carry a trace id and the model version, or a logged
request cannot be tied to the model that answered it, which is the point of
logging during a rollout.
"""

from __future__ import annotations

from collections.abc import Iterable

from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, warning
from rolloutlang.lowering import join_spans

REQUIRED_FIELDS = ("trace_id", "model_version")


@check_pass("privacy")
def check_privacy(ctx: CheckContext) -> Iterable[Diagnostic]:
    log = ctx.rollout.request_log
    if log is None:
        return []
    out: list[Diagnostic] = []
    if log.sample_percent == 0:
        out.append(warning(
            "RL653", "request logging samples 0% of requests: nothing is logged", log.span,
            help="log a share such as `log requests 5% { ... }`, or remove the block",
        ))
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
