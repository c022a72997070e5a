"""What the Kubernetes targets (Argo Rollouts, Istio) share: object names, labels, header routes, units.

One rollout deploys one service.  Every object is named after the service's
Kubernetes name (:attr:`Names.service`), so the Rollout object survives
from one release's spec to the next (`ranker-v2.rollout`, then
`ranker-v3.rollout`): applying the next spec updates it, and Argo Rollouts
rolls from the old pod template to the new one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from rolloutlang import ir, queries
from rolloutlang.diagnostics import Diagnostic, error
from rolloutlang.plan import Phase, Plan
from rolloutlang.source import Span
from rolloutlang.targets.base import dns_label

# Argo CD applies lower waves first: what the Rollout names must exist before it (argo-rollouts #3504).
WAVE_SUPPORT = -2  # spec ConfigMap, the evaluator's service account and its role
WAVE_REFERENCED = -1  # AnalysisTemplates, Services, DestinationRule, VirtualService
WAVE_ROLLOUT = 0
WAVE_AFTER = 1  # the HorizontalPodAutoscaler, which names the Rollout

STABLE_SUBSET = "stable"
CANARY_SUBSET = "canary"
PRIMARY_ROUTE = "primary"  # the weighted route Argo Rollouts manages
APP_LABEL = queries.APP_POD_LABEL
DEFAULT_PORT = 8080
LABEL_PREFIX = "rolloutlang.dev"
MODEL_VERSION_LABEL = f"{LABEL_PREFIX}/model-version"


@dataclass(frozen=True)
class Names:
    """The Kubernetes names of one rollout's objects."""

    service: str
    namespace: str | None

    @classmethod
    def of(cls, rollout: ir.Rollout) -> Names:
        site = queries.site(rollout)
        return cls(service=site.service, namespace=site.namespace)

    @property
    def rollout(self) -> str:
        return self.service

    @property
    def stable_service(self) -> str:
        return dns_label(self.service, "stable")

    @property
    def canary_service(self) -> str:
        return dns_label(self.service, "canary")

    @property
    def preview_service(self) -> str:
        return dns_label(self.service, "preview")

    @property
    def config_map(self) -> str:
        return dns_label(self.service, "rollout-spec")

    @property
    def evaluator(self) -> str:
        return dns_label(self.service, "rollout-evaluator")

    def template(self, gate: str, suffix: str = "") -> str:
        return dns_label(self.service, gate, suffix)


# -- header routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderRoute:
    """A request match that sends traffic to one model: a `route`, or a consumer's `via`.

    Cookies become a regex on the ``cookie`` header; header names are lower
    case (HTTP header names are case-insensitive, and Istio wants them lower).
    """

    name: str
    origin: str  # "route" or "consumer"
    target: ir.Role
    header: str
    match: str  # exact | regex | prefix
    value: str
    span: Span
    label: str  # for messages: `route header "x" = "y"` or `consumer related-items`
    consumer: str = ""  # the consumer's name, for a consumer's route


_RE2_UNSUPPORTED = re.compile(r"\(\?[=!<]|\\[1-9]|\(\?P=")


def cookie_regex(name: str, match: str, value: str) -> str:
    """A regex on the whole `Cookie` header that holds when cookie ``name`` matches ``value``.

    Istio's header regexes must match the whole header value (RE2, full match).
    """
    if match == "exact":
        body = queries.regex_literal(value)
    elif match == "prefix":
        body = queries.regex_literal(value) + "[^;]*"
    else:
        body = value[1:] if value.startswith("^") else value
        if body.endswith("$") and not body.endswith("\\$"):
            body = body[:-1]
        body = f"(?:{body})"
    return f"(?:.*;\\s*)?{queries.regex_literal(name)}={body}(?:;.*)?"


def header_routes(rollout: ir.Rollout, consumer_targets: dict[str, ir.Role]) -> list[HeaderRoute]:
    """Every route and consumer `via`, in the written order (routes first), with unique route names."""
    out: list[HeaderRoute] = []
    used: set[str] = set()

    def unique(base: str) -> str:
        name, n = base, 2
        while name in used:
            name = dns_label(base, str(n))
            n += 1
        used.add(name)
        return name

    def make(origin: str, match: ir.HeaderMatch, target: ir.Role, base: str, label: str,
             consumer: str = "") -> HeaderRoute:
        if match.kind == "cookie":
            return HeaderRoute(unique(base), origin, target, "cookie", "regex",
                               cookie_regex(match.name, match.match, match.value), match.span, label, consumer)
        return HeaderRoute(unique(base), origin, target, match.name.lower(), match.match, match.value, match.span,
                           label, consumer)

    for route in rollout.routes:
        m = route.match
        out.append(make("route", m, route.target, dns_label(m.kind, m.name, "to", route.target),
                        f'route {m.kind} "{m.name}"'))
    for consumer in rollout.consumers:
        if consumer.route is not None and consumer.name in consumer_targets:
            out.append(make("consumer", consumer.route, consumer_targets[consumer.name],
                            dns_label("consumer", consumer.name), f"consumer `{consumer.name}`", consumer.name))
    return out


def regex_diagnostics(routes: list[HeaderRoute], code: str) -> list[Diagnostic]:
    """Istio matches regexes with RE2, which has no lookaround or backreferences."""
    out = []
    for r in routes:
        if r.match == "regex" and _RE2_UNSUPPORTED.search(r.value):
            out.append(error(code, f"{r.label} uses a regex feature Istio's RE2 engine lacks", r.span,
                             label="lookaround or backreference",
                             help="RE2 has no lookahead, lookbehind or backreferences: rewrite the pattern "
                                  "without them, or match a prefix with `^=`"))
    return out


def consumer_targets(plan: Plan, phase: Phase | None = None) -> dict[str, ir.Role]:
    """The model each consumer with its own route (`via`) is on in ``phase`` (default: the plan's first).

    The plan pins a consumer to stable until its own switch (`switch at PHASE`, by default promotion) moves
    it to the candidate; with no phase at all it is on the candidate (promoted).
    """
    if phase is None:
        phase = plan.phases[0] if plan.phases else None
    if phase is not None:
        return dict(phase.consumers)
    return {c.name: "candidate" for c in plan.rollout.consumers if c.route is not None}


def consumer_switch_phases(plan: Plan) -> dict[str, Phase]:
    """For each consumer that starts on stable, the phase in which its route moves to the candidate: one of
    its own (`switch at PHASE`), or the first after promotion (a bake, a holdout); a consumer that moves when
    the plan ends is not listed, since promotion moves every route."""
    start = consumer_targets(plan)
    out: dict[str, Phase] = {}
    for phase in plan.phases:
        for name, role in phase.consumers:
            if role == "candidate" and start.get(name) == "stable" and name not in out:
                out[name] = phase
    return out


# -- values ------------------------------------------------------------------------------------------


def go_duration(seconds: float) -> str:
    """A Go duration for Argo (`6h`, `90m`, `45s`), rounded up to whole seconds (Argo truncates below)."""
    s = max(math.ceil(seconds - 1e-9), 0)
    if s == 0:
        return "0s"
    for unit, size in (("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def cpu_quantity(cores: float) -> str:
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(size: int) -> str:
    for unit, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    for unit, factor in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value(text: str) -> str | None:
    """``text`` if Kubernetes accepts it as a label value (<= 63, alphanumeric ends), else None."""
    return text if len(text) <= 63 and _LABEL_VALUE.match(text) else None


def whole_percent(value: float) -> int | None:
    """A percentage as the whole number Argo and Istio weights are, or None when it has a fraction."""
    return round(value) if abs(value - round(value)) < 1e-9 else None


@dataclass
class Metadata:
    """An object's name, namespace, labels and annotations, in the order they are written."""

    name: str
    namespace: str | None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def metadata(names: Names, name: str, rollout: ir.Rollout, wave: int | None, **labels: str) -> Metadata:
    """Metadata every generated object carries: who made it, for which service, and its Argo CD wave."""
    meta = Metadata(name=name, namespace=names.namespace)
    meta.labels["app.kubernetes.io/name"] = names.service
    meta.labels["app.kubernetes.io/managed-by"] = "rolloutlang"
    meta.labels.update(labels)
    if wave is not None:
        meta.annotations["argocd.argoproj.io/sync-wave"] = str(wave)
    meta.annotations[f"{LABEL_PREFIX}/rollout"] = rollout.name
    return meta


def object_path(kind: str, name: str, folder: str = "") -> str:
    """Where an object is written: `kind-name.yaml`, under ``folder``."""
    base = f"{kind.lower()}-{name}.yaml"
    return f"{folder}/{base}" if folder else base
