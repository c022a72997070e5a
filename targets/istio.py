"""Istio (networking.istio.io/v1beta1): the VirtualService and DestinationRule a rollout routes with.

By default the objects are the ones the ``argo`` target's Rollout manages:

* a DestinationRule with ``stable`` and ``canary`` subsets that both select
  the service's pods (Argo adds each arm's ``rollouts-pod-template-hash``);
* a VirtualService whose last route, ``primary``, splits stable/canary (Argo
  sets the weights), after the routes Argo cannot manage: header and cookie
  routes to *stable*, and consumers pinned to stable, in the written order.
  Routes to the candidate are Argo's managed header routes, added at the
  start of a rollout and removed when it ends or aborts, so that no static
  route ever points at a canary that was scaled away.

With ``--per-stage`` (GitOps without Argo) there is one VirtualService per
phase of the plan under ``stages/NN-PHASE/``, every route static (header
and cookie routes in the written order, then the consumers, then the
weighted route, with ``mirror`` during a shadow), and a DestinationRule whose
subsets select the two model versions by the ``rolloutlang.dev/model-version``
pod label.  A blue-green rollout routes to its active and preview Services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rolloutlang import ir
from rolloutlang.diagnostics import Diagnostic, error, warning
from rolloutlang.plan import Phase
from rolloutlang.source import Span
from rolloutlang.targets import kube
from rolloutlang.targets.base import CompileInput, Output, Target, TargetResult, dns_label


@dataclass
class Destination:
    host: str
    subset: str | None = None
    weight: int | None = None


@dataclass
class HttpRoute:
    """One `http` rule: a name, an optional header match, where it goes, and an optional mirror."""

    name: str
    destinations: list[Destination]
    header: str | None = None
    match: str | None = None
    value: str | None = None
    mirror: Destination | None = None
    mirror_percent: float | None = None


@dataclass
class VirtualServiceView:
    meta: kube.Metadata
    hosts: list[str]
    routes: list[HttpRoute]
    folder: str = ""
    phase: str = ""


@dataclass
class Subset:
    name: str
    labels: dict[str, str] = field(default_factory=dict)


class Istio(Target):
    """Istio routing for one rollout: VirtualService(s) and a DestinationRule."""

    name: ClassVar[str] = "istio"
    summary: ClassVar[str] = "Istio: VirtualService and DestinationRule (--per-stage: one VirtualService per stage)"

    def compile(self, unit: CompileInput) -> TargetResult:
        r = unit.rollout
        if r.strategy is None:
            return TargetResult()
        names = kube.Names.of(r)
        diagnostics: list[Diagnostic] = []
        # Argo Rollouts moves a canary's consumers at their switches; a blue-green VirtualService is static, and
        # a consumer that switches before promotion reads the preview.
        preview = next((p for p in unit.plan.phases if p.kind == "preview"), None)
        routes = kube.header_routes(r, kube.consumer_targets(unit.plan, preview))
        diagnostics.extend(kube.regex_diagnostics(routes, "RL719"))
        if isinstance(r.strategy, ir.BlueGreen) and r.shadow is not None and not unit.options.per_stage:
            diagnostics.append(warning(
                "RL720", "the shadow phase of a blue-green rollout is not in the VirtualService Argo Rollouts "
                "works with: a static mirror would still mirror after the switch, to the active pods themselves",
                r.shadow.span, help="compile with --per-stage for GitOps routing, whose shadow stage mirrors"))
        if isinstance(r.strategy, ir.Rolling):
            diagnostics.extend(warning(
                "RL726", f"consumer `{c.name}` cannot be pinned to one version during a rolling update",
                c.route.span, help="a rolling update has no second version to route to; use a canary or a "
                                   "blue-green switch to move consumers on their own")
                for c in r.consumers if c.route is not None)
        if unit.options.per_stage and isinstance(r.strategy, ir.Rolling) and r.holdout is not None:
            diagnostics.append(warning(
                "RL713", "the holdout is not routed: a rolling update leaves no second version to keep a share "
                "on", r.holdout.span, help="a holdout needs a traffic split: use a canary"))
        subsets: list[Subset] = []
        views: list[VirtualServiceView] = []
        if unit.options.per_stage:
            subsets = self._version_subsets(r, names, diagnostics)
            views = self._per_stage(unit, names, routes, diagnostics)
        else:
            if isinstance(r.strategy, ir.Canary):
                subsets = [Subset(kube.STABLE_SUBSET, {kube.APP_LABEL: names.service}),
                           Subset(kube.CANARY_SUBSET, {kube.APP_LABEL: names.service})]
            views = [self._managed(r, names, routes)]
        checked = [] if any(d.is_error for d in diagnostics) else validate_routing(views, subsets, names.service,
                                                                                   r.span)
        for problem, span in checked:
            diagnostics.append(error("RL746", f"the generated routing breaks an Istio rule: {problem}", span,
                                     help="this is a bug in rolloutlang; please report it with the spec"))
        if any(d.is_error for d in diagnostics):
            return TargetResult(diagnostics=diagnostics)
        out: list[Output] = []
        if subsets:
            meta = kube.metadata(names, names.service, r, kube.WAVE_REFERENCED)
            text = self.render("destinationrule.yaml.j2", source_path=unit.source_path, meta=meta,
                               host=names.service, subsets=subsets)
            out.append(Output(kube.object_path("DestinationRule", names.service), text))
        for view in views:
            text = self.render("virtualservice.yaml.j2", source_path=unit.source_path, view=view)
            out.append(Output(kube.object_path("VirtualService", view.meta.name, view.folder), text))
        return TargetResult(outputs=out, diagnostics=diagnostics)

    # -- the VirtualService Argo Rollouts manages ------------------------------------------------------

    def _managed(self, r: ir.Rollout, names: kube.Names, routes: list[kube.HeaderRoute]) -> VirtualServiceView:
        meta = kube.metadata(names, names.service, r, kube.WAVE_REFERENCED)
        http: list[HttpRoute] = []
        if isinstance(r.strategy, ir.BlueGreen):
            hosts = {"candidate": names.preview_service, "stable": names.service}
            for hr in routes:
                http.append(_header_route(hr, Destination(hosts[hr.target])))
            http.append(HttpRoute(kube.PRIMARY_ROUTE, [Destination(names.service)]))
        elif isinstance(r.strategy, ir.Canary):
            for hr in routes:
                if hr.target == "stable":  # routes to the candidate are Argo's setHeaderRoute steps
                    http.append(_header_route(hr, Destination(names.service, kube.STABLE_SUBSET)))
            http.append(HttpRoute(kube.PRIMARY_ROUTE, [Destination(names.service, kube.STABLE_SUBSET, 100),
                                                       Destination(names.service, kube.CANARY_SUBSET, 0)]))
        else:
            http.append(HttpRoute(kube.PRIMARY_ROUTE, [Destination(names.service)]))
        return VirtualServiceView(meta, [names.service], http)

    # -- per stage ---------------------------------------------------------------------------------

    def _version_subsets(self, r: ir.Rollout, names: kube.Names, diagnostics: list[Diagnostic]) -> list[Subset]:
        if isinstance(r.strategy, ir.Rolling):
            return []
        out = []
        for subset, role in ((kube.STABLE_SUBSET, "stable"), (kube.CANARY_SUBSET, "candidate")):
            model = r.model(role)  # type: ignore[arg-type]
            if model is None:
                continue
            value = kube.label_value(model.version)
            if value is None:
                diagnostics.append(error(
                    "RL734", f"version `{model.version}` cannot be a Kubernetes label value, which per-stage "
                    "routing selects the versions by", model.version_span,
                    help="label values are at most 63 letters, digits, `-`, `_` and `.`; use such a version, or "
                         "route with Argo Rollouts (without --per-stage)"))
                continue
            out.append(Subset(subset, {kube.APP_LABEL: names.service, kube.MODEL_VERSION_LABEL: value}))
        return out

    def _per_stage(self, unit: CompileInput, names: kube.Names, routes: list[kube.HeaderRoute],
                   diagnostics: list[Diagnostic]) -> list[VirtualServiceView]:
        r = unit.rollout
        plan = unit.plan
        views: list[VirtualServiceView] = []
        # name, weight, mirror, weight span, the phase (None: the promoted split)
        phases: list[tuple[str, float, float, Span | None, Phase | None]] = []
        for phase in plan.phases:
            if phase.post_promotion and isinstance(r.strategy, ir.Rolling):
                continue
            phases.append((phase.name, phase.weight_percent, phase.shadow_percent, _weight_span(phase), phase))
        pre = plan.pre_promotion
        promoted_here = pre and not (len(plan.phases) > len(pre) and plan.phases[len(pre)].kind == "bake")
        pinned = any(role == "stable" for _, role in pre[-1].consumers) if pre else False
        if promoted_here and (pre[-1].weight_percent < 100 or pinned or isinstance(r.strategy, ir.BlueGreen)) \
                and not isinstance(r.strategy, ir.Rolling):
            phases.insert(len(pre), ("promoted", 100.0, 0.0, None, None))  # before a holdout, which follows it
        for i, (phase_name, weight, mirror, span, at) in enumerate(phases):
            w = kube.whole_percent(weight)
            if w is None:
                diagnostics.append(error("RL710", f"Argo Rollouts and Istio weigh traffic in whole percent, not "
                                                  f"{weight:g}%", span or r.span, label="not a whole percentage",
                                         help=f"write `{round(weight) or 1}%`"))
                continue
            http: list[HttpRoute] = []
            if isinstance(r.strategy, ir.Rolling):
                http.append(HttpRoute(kube.PRIMARY_ROUTE, [Destination(names.service)]))
            else:
                subsets = {"candidate": kube.CANARY_SUBSET, "stable": kube.STABLE_SUBSET}
                # each consumer on its own switch: pinned to stable until the plan moves it
                on = kube.consumer_targets(plan, at) if at is not None else {}
                for hr in routes:
                    target = on.get(hr.consumer, "candidate") if hr.origin == "consumer" else hr.target
                    http.append(_header_route(hr, Destination(names.service, subsets[target])))
                primary = HttpRoute(kube.PRIMARY_ROUTE, [Destination(names.service, kube.STABLE_SUBSET, 100 - w),
                                                         Destination(names.service, kube.CANARY_SUBSET, w)])
                if mirror > 0:
                    primary.mirror = Destination(names.service, kube.CANARY_SUBSET)
                    primary.mirror_percent = mirror
                http.append(primary)
            meta = kube.metadata(names, names.service, r, None)
            meta.annotations[f"{kube.LABEL_PREFIX}/stage"] = phase_name
            folder = f"stages/{i:02d}-{dns_label(phase_name)}"
            views.append(VirtualServiceView(meta, [names.service], http, folder, phase_name))
        return views


def _weight_span(phase: Phase) -> Span | None:
    return phase.weight_span or phase.span


def _header_route(hr: kube.HeaderRoute, destination: Destination) -> HttpRoute:
    return HttpRoute(hr.name, [destination], hr.header, hr.match, hr.value)


def validate_routing(views: list[VirtualServiceView], subsets: list[Subset], host: str,
                     span: Span) -> list[tuple[str, Span]]:
    """Istio's webhook rules and the house rules of upstream-facts (Istio 1-10) on the view-models."""
    import re

    dns = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    problems: list[tuple[str, Span]] = []
    subset_names = [s.name for s in subsets]
    if len(set(subset_names)) != len(subset_names):
        problems.append(("DestinationRule subset names repeat", span))
    for view in views:
        where = f"VirtualService {view.meta.name}" + (f" ({view.phase})" if view.phase else "")
        if not dns.match(view.meta.name) or len(view.meta.name) > 63:
            problems.append((f"{where}: name is not DNS-1123", span))
        if not view.hosts or any(h == "*" for h in view.hosts):
            problems.append((f"{where}: needs hosts and no `*`", span))
        names = [h.name for h in view.routes]
        if len(set(names)) != len(names):
            problems.append((f"{where}: route names repeat", span))
        for i, route in enumerate(view.routes):
            catch_all = route.header is None
            if catch_all and i != len(view.routes) - 1:
                problems.append((f"{where}: route `{route.name}` matches everything, so later routes are "
                                 "unreachable (header routes go before the weighted route)", span))
            weights = [d.weight for d in route.destinations]
            if len(route.destinations) > 1:
                if any(w is None or not 0 <= w <= 100 for w in weights) or sum(w or 0 for w in weights) != 100:
                    problems.append((f"{where}: route `{route.name}` weights {weights} do not sum to 100", span))
            for d in [*route.destinations, *([route.mirror] if route.mirror else [])]:
                if d.subset is not None and (d.subset not in subset_names or d.host != host):
                    problems.append((f"{where}: subset `{d.subset}` of `{d.host}` is not in the DestinationRule",
                                     span))
            if route.mirror is not None:
                if route.mirror_percent is None or not 0 <= route.mirror_percent <= 100:
                    problems.append((f"{where}: mirror percentage {route.mirror_percent} outside 0..100", span))
    return problems
