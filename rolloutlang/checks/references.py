"""Reference checks the loader cannot do by name alone (RL426, RL510, RL511).

The loader already resolves gate, metric, query and stage names (RL110-RL115).
These passes check what the names point at: an SLO or drift gate needs a
metrics source to read, a drift gate must watch an input or output of the
model, and a label metric nobody gates on is probably a typo or dead code.
"""

from __future__ import annotations

from collections.abc import Iterable

from rolloutlang import ir
from rolloutlang.checks import CheckContext, check_pass
from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, one_of, warning, word_list
from rolloutlang.source import Span


def gate_site(rollout: ir.Rollout, gate: ir.AnyGate) -> Span:
    """Where a gate enters this rollout: its own line, or the `use gates` that imported it."""
    if gate.origin is not None:
        use = next((u for u in rollout.uses if u.name == gate.origin), None)
        if use is not None:
            return use.span
    return gate.span


@check_pass("references")
def check_references(ctx: CheckContext) -> Iterable[Diagnostic]:
    rollout = ctx.rollout
    out: list[Diagnostic] = []

    readers = [g for g in rollout.gates if isinstance(g, ir.SloGate | ir.DriftGate | ir.SrmGate)]
    if readers and rollout.metrics_source is None:
        names = word_list([g.name for g in readers], " and ")
        verb = "reads" if len(readers) == 1 else "read"
        out.append(error(
            "RL510", f"{'gate' if len(readers) == 1 else 'gates'} {names} {verb} metrics but the rollout has "
            "no metrics source", gate_site(rollout, readers[0]),
            help='say where the numbers come from: `metrics prometheus "http://prometheus.monitoring:9090"`',
        ))

    fields = _signature_fields(rollout)
    if fields:
        for gate in rollout.gates:
            if isinstance(gate, ir.DriftGate) and gate.target not in fields:
                span = gate.target_span
                hint = did_you_mean(gate.target, fields)
                out.append(error(
                    "RL426", f"drift gate `{gate.name}` watches `{gate.target}`, which is not an input or output "
                    "of the model", span or gate.span,
                    help=hint or f"the signature has {one_of(fields)}",
                ))

    used = {g.metric for g in rollout.gates if isinstance(g, ir.BusinessGate)}
    for metric in rollout.label_metrics:
        if metric.origin is None and metric.name not in used:
            out.append(warning(
                "RL511", f"metric `{metric.name}` is not used by any gate", metric.span,
                help=f"gate on it (`gate {metric.name}: {metric.name} change > -1% relative, fail if shown harmful, "
                     "power 80% at -3%`) or remove it",
            ))
    return out


def _signature_fields(rollout: ir.Rollout) -> list[str]:
    names: list[str] = []
    for sig in rollout.signatures:
        for f in (*sig.inputs, *sig.outputs):
            if f.name not in names:
                names.append(f.name)
    return names
