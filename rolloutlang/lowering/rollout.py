"""The whole file: rollouts and gate sets, each statement handed to the lowering of its construct."""

from __future__ import annotations

from typing import Any

from rolloutlang import ir
from rolloutlang.diagnostics import Diagnostic, error
from rolloutlang.lowering.gates import GatesLowering
from rolloutlang.lowering.models import ModelsLowering
from rolloutlang.lowering.phrases import (
    STATEMENT_WORD,
    FollowOn,
    LoweringError,
    append_if,
    keyword_span,
    unquote,
)
from rolloutlang.lowering.policy import PolicyLowering
from rolloutlang.lowering.rules import RulesLowering
from rolloutlang.lowering.serving import ServingLowering
from rolloutlang.lowering.strategy import StrategyLowering
from rolloutlang.lowering.traffic import TrafficLowering
from rolloutlang.source import Span
from rolloutlang.syntax import Node


class Lowerer(ModelsLowering, ServingLowering, TrafficLowering, StrategyLowering, GatesLowering, RulesLowering,
              PolicyLowering):
    """Lowers one file's syntax tree; collects diagnostics instead of stopping."""

    def lower_file(self, tree: Node) -> ir.File:
        self._index_names(tree)
        imports: list[ir.Import] = []
        gate_sets: list[ir.GateSet] = []
        rollouts: list[ir.Rollout] = []
        for child in tree.children:
            if not isinstance(child, Node):
                continue
            if child.kind == "import_decl":
                tok = child.toks("STRING")[0]
                imports.append(ir.Import(span=child.span, path=unquote(tok)))
            elif child.kind == "gate_set":
                gs = self.guard(lambda c=child: self.gate_set(c))  # type: ignore[misc]
                if gs is not None:
                    gate_sets.append(gs)
            elif child.kind == "rollout":
                ro = self.guard(lambda c=child: self.rollout(c))  # type: ignore[misc]
                if ro is not None:
                    rollouts.append(ro)
        self.duplicate("gate set", ((g.name, g.span) for g in gate_sets))
        self.duplicate("rollout", ((r.name, r.span) for r in rollouts))
        return ir.File(span=tree.span, path=self.path, imports=tuple(imports), gate_sets=tuple(gate_sets),
                       rollouts=tuple(rollouts))

    def gate_set(self, node: Node) -> ir.GateSet:
        name = node.toks("NAME")[0].text
        gates: list[Any] = []
        rules: list[Any] = []
        metrics: list[Any] = []
        for child in node.children:
            if isinstance(child, Node):
                self._body_item(child, gates, rules, metrics, origin=name)
        self.duplicate("gate", ((g.name, g.span) for g in gates))
        self.duplicate("metric", ((m.name, m.span) for m in metrics))
        return ir.GateSet(span=node.span, name=name, gates=tuple(gates), rules=tuple(rules),
                          label_metrics=tuple(metrics))

    def _body_item(self, child: Node, gates: list[Any], rules: list[Any], metrics: list[Any],
                   origin: str | None = None) -> bool:
        if child.kind == "gate":
            g = self.guard(lambda: self.gate(child, origin))
            if g is not None:
                gates.append(g)
        elif child.kind == "rollback_rule":
            r = self.guard(lambda: self.rollback_rule(child, origin))
            if r is not None:
                rules.append(r)
        elif child.kind == "label_metric":
            m = self.guard(lambda: self.label_metric(child, origin))
            if m is not None:
                metrics.append(m)
        else:
            return False
        return True

    # rollout

    def rollout(self, node: Node) -> ir.Rollout:
        name_tok = node.toks("NAME")[0]
        fields: dict[str, Any] = {"name": name_tok.text, "name_span": name_tok.span}
        lists: dict[str, list[Any]] = {k: [] for k in (
            "models", "signatures", "consumers", "label_metrics", "routes", "gates", "rules", "uses",
            "budgets", "scenarios", "pipeline", "approvals")}
        singles_seen: dict[str, Span] = {}

        def single(key: str, span: Span, value: Any, label: str) -> None:
            if value is None:
                return
            if key in singles_seen:
                self.diagnostics.append(
                    error("RL102", f"`{label}` is given twice", span,
                          notes=(f"first given at {singles_seen[key]}",),
                          help=f"a rollout has one `{label}`; remove one")
                )
                return
            singles_seen[key] = span
            fields[key] = value

        for child in node.children:
            if not isinstance(child, Node):
                continue
            k = child.kind
            kspan = keyword_span(child.span, STATEMENT_WORD.get(k, k))
            if self._body_item(child, lists["gates"], lists["rules"], lists["label_metrics"]):
                continue
            if k in ("service", "namespace"):
                single(k, kspan, child.toks("NAME")[0].text, k)
            elif k == "owner":
                single(k, kspan, self.guard(lambda c=child: unquote(c.toks("STRING")[0])), k)  # type: ignore[misc]
            elif k == "model_version":
                append_if(lists["models"], self.guard(lambda c=child: self.model_version(c)))  # type: ignore[misc]
            elif k == "signature":
                append_if(lists["signatures"], self.guard(lambda c=child: self.signature(c)))  # type: ignore[misc]
            elif k == "serving":
                single(k, kspan, self.guard(lambda c=child: self.serving(c)), k)  # type: ignore[misc]
            elif k == "consumers":
                for c in child.nodes("consumer"):
                    append_if(lists["consumers"], self.guard(lambda c=c: self.consumer(c)))  # type: ignore[misc]
            elif k == "traffic_model":
                single("traffic", kspan, self.guard(lambda c=child: self.traffic(c)), "traffic")  # type: ignore[misc]
            elif k == "metrics_source":
                single("metrics_source", kspan, self.guard(lambda c=child: self.metrics_source(c)),  # type: ignore[misc]
                       "metrics")
            elif k == "shadow":
                single(k, kspan, self.guard(lambda c=child: self.shadow(c)), k)  # type: ignore[misc]
            elif k in ("canary", "blue_green", "rolling"):
                strategy = self.guard(lambda c=child: self.strategy(c))  # type: ignore[misc]
                if strategy is not None and "strategy" in singles_seen:
                    self.diagnostics.append(
                        error("RL301", "a rollout has one strategy: canary, blue-green or rolling", kspan,
                              notes=(f"a strategy is already given at {singles_seen['strategy']}",),
                              help="keep one of them; a shadow phase combines with any strategy: "
                                   "`shadow 100% for 24h`")
                    )
                else:
                    single("strategy", kspan, strategy, "strategy")
            elif k == "route":
                append_if(lists["routes"], self.guard(lambda c=child: self.route(c)))  # type: ignore[misc]
            elif k == "use_gates":
                lists["uses"].append(ir.UseGates(span=child.span, name=child.toks("NAME")[0].text))
            elif k == "budget":
                append_if(lists["budgets"], self.guard(lambda c=child: self.budget(c)))  # type: ignore[misc]
            elif k == "scenario":
                append_if(lists["scenarios"], self.guard(lambda c=child: self.scenario(c)))  # type: ignore[misc]
            elif k == "holdout":
                single(k, kspan, self.guard(lambda c=child: self.holdout(c)), k)  # type: ignore[misc]
            elif k == "bake":
                single(k, kspan, self.guard(lambda c=child: self.bake(c)), k)  # type: ignore[misc]
            elif k == "scale_down":
                single(k, kspan, self.guard(lambda c=child: self.scale_down(c)), "scale down after")  # type: ignore[misc]
            elif k == "revert":
                single(k, kspan, self.guard(lambda c=child: self.revert(c)), k)  # type: ignore[misc]
            elif k == "pipeline":
                for item in child.children:
                    if not isinstance(item, Node):
                        continue
                    if item.kind == "pipeline_image":
                        single("pipeline_image", keyword_span(item.span, "image"),
                               self.guard(lambda i=item: self.pipeline_image(i)), "image")  # type: ignore[misc]
                    else:
                        append_if(lists["pipeline"], self.guard(lambda h=item: self.pipeline_hook(h)))  # type: ignore[misc]
            elif k == "approval":
                append_if(lists["approvals"], self.guard(lambda c=child: self.approval(c)))  # type: ignore[misc]
            elif k == "request_log":
                single("request_log", kspan, self.guard(lambda c=child: self.request_log(c)), "log")  # type: ignore[misc]
        for key, items in lists.items():
            fields[key] = tuple(items)
        self._lifecycle(fields, singles_seen)

        self.duplicate("gate", ((g.name, g.span) for g in fields["gates"]))
        self.duplicate("metric", ((m.name, m.span) for m in fields["label_metrics"]))
        self.duplicate("scenario", ((s.name, s.span) for s in fields["scenarios"]))
        self.duplicate("pipeline hook", ((h.name, h.span) for h in fields["pipeline"]))
        self.duplicate("consumer", ((c.name, c.span) for c in fields["consumers"]))
        self.duplicate("model role", ((m.role, m.span) for m in fields["models"]),
                       message=lambda role: f"the `{role}` model is given twice",
                       help="a rollout has one `stable` and one `candidate` model")
        self.duplicate("signature for", ((s.applies_to, s.span) for s in fields["signatures"]),
                       message=lambda role: "the signature is given twice" if role == "both"
                       else f"the `{role}` signature is given twice",
                       help="give one `signature { ... }` for both models, or one per role: "
                            "`signature stable { ... }` and `signature candidate { ... }`")
        return ir.Rollout(span=node.span, **fields)

    # models


    def _lifecycle(self, fields: dict[str, Any], given: dict[str, Span]) -> None:
        """One `scale down after` for the plan; a revert without a strategy switches at once."""
        strategy = fields.get("strategy")
        scale = fields.get("scale_down")
        if scale is not None and isinstance(strategy, ir.BlueGreen) and strategy.scale_down_delay_s is not None:
            self.diagnostics.append(error(
                "RL102", "`scale down after` is given twice: in `blue-green` and on its own", keyword_span(scale.span,
                                                                                                             "scale"),
                notes=(f"`blue-green` gives it at {strategy.span}",),
                help="keep one: the statement applies to every strategy, the option only to blue-green"))
        revert = fields.get("revert")
        if revert is not None and strategy is None:
            # The previous version is known: the default plan moves everything back at once.
            word = keyword_span(revert.span, "revert")
            stage = ir.CanaryStage(span=revert.span, name="revert", weight_percent=100.0, weight_span=word)
            fields["strategy"] = ir.Canary(span=revert.span, stages=(stage,))


def lower(tree: Node, path: str) -> tuple[ir.File | None, list[Diagnostic]]:
    """Lower a parsed file; the IR is returned even when some constructs had errors."""
    lowerer = Lowerer(path)
    try:
        result = lowerer.lower_file(tree)
    except LoweringError as exc:
        lowerer.diagnostics.append(exc.diagnostic)
        return None, lowerer.diagnostics
    except FollowOn:
        return None, lowerer.diagnostics
    return result, lowerer.diagnostics
