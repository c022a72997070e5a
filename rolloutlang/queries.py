"""Where a gate's numbers come from: the PromQL conventions the targets and `rollout evaluate` share.

Every query is a text with placeholders, filled in for one *arm* (the
candidate's pods, ``canary``, or the stable ones, ``stable``) and one place:
a generated AnalysisTemplate (Argo fills in the pod-template hash itself) or
`rollout evaluate` at a moment in time.  The built-in texts below are the
defaults; a `query NAME "..."` in the spec's `metrics` block with the same
NAME replaces one (see :func:`query_text`).

Placeholders (``$`` and a name; a ``$`` followed by anything else is left
alone, so a regex anchor such as ``"x$"`` is safe):

``$istio``
    the matchers that select the arm in Istio's standard metrics
    (``istio_requests_total``, ``istio_request_duration_milliseconds``):
    ``reporter="destination"``, the namespace, ``destination_app`` = the
    service, ``destination_version`` = the arm.  The generated Rollout puts
    ``app`` on every pod and ``version: canary``/``version: stable`` as
    ephemeral metadata, which Istio reports as those labels.
``$pods``
    the matchers that select the arm's pods in per-pod metrics (cAdvisor,
    kube-state-metrics): namespace, container, and ``pod=~"<rollout>-<hash>-.*"``.
``$arm``, ``$service``, ``$namespace``
    plain values, for a query's own label matchers.
``$window``
    a PromQL range: the measuring interval for SLO and drift gates, the time
    since the gate started for business gates.
``$quantile``
    a latency gate's percentile as a fraction (``p99`` -> ``0.99``).

Label metrics (business gates) and drift targets read counters a team's
exporter publishes; the names and labels are in :data:`EXPORTER_METRICS` and
``docs/targets.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rolloutlang import ir

CANARY = "canary"
STABLE = "stable"
TRAINING = "training"
ANY = ""  # both arms: `$istio` without the arm's label

# The pod label that tells the arms apart (Argo's ephemeral metadata sets it) and its name in Istio's metrics.
ARM_POD_LABEL = "version"
ARM_ISTIO_LABEL = "destination_version"
APP_POD_LABEL = "app"
CONTAINER = "model-server"

# A placeholder: `$` and a known name not followed by a name character.
_PLACEHOLDER = re.compile(r"\$(istio|pods|arm|service|namespace|window|quantile)(?![A-Za-z0-9_])")
PLACEHOLDERS = ("istio", "pods", "arm", "service", "namespace", "window", "quantile")

LATENCY = ("histogram_quantile($quantile, sum by (le) "
           "(rate(istio_request_duration_milliseconds_bucket{$istio}[$window]))) / 1000")
ERROR_RATE = ('sum(rate(istio_requests_total{$istio, response_code=~"5.."}[$window])) '
              "/ sum(rate(istio_requests_total{$istio}[$window]))")
SATURATION = ('sum(rate(container_cpu_usage_seconds_total{$pods}[$window])) '
              '/ sum(kube_pod_container_resource_requests{$pods, resource="cpu"})')

# The drift statistics `rollout evaluate` computes from Prometheus histograms (not mmd, adwin: they need samples).
EVALUATED_DRIFT = ("psi", "kl", "js")

# Built-in SLO signals and the query name that overrides each.
SLO_QUERIES = {"latency": LATENCY, "error_rate": ERROR_RATE, "saturation": SATURATION}

# What a team's exporter publishes for `rollout evaluate` (docs/targets.md shows one).
EXPORTER_METRICS = {
    "events": "rolloutlang_label_events_total",
    "positives": "rolloutlang_label_positive_total",
    "values": "rolloutlang_label_value_total",
    "squares": "rolloutlang_label_value_squared_total",
    "histogram": "rolloutlang_feature_bucket",
    "categories": "rolloutlang_feature_category_total",
}

# Label metric statistics and the counter each is read from.
BINARY_PARTS = ("events", "positives")
CONTINUOUS_PARTS = ("events", "values", "squares")


@dataclass(frozen=True)
class Site:
    """Where a query runs: the names it is filled in with.

    ``service`` is the Kubernetes name of the service, which is also the
    Rollout object's name and its pods' ``app`` label; ``pod_hash`` is the
    arm's pod-template hash, an Argo argument reference
    (``{{args.canary-hash}}``) in a generated template, or None for any pod.
    """

    service: str
    namespace: str | None
    pod_hash: str | None = None


def site(rollout: ir.Rollout, pod_hash: str | None = None) -> Site:
    """The site of a rollout: its service's Kubernetes name and namespace."""
    from rolloutlang.targets.base import dns_label

    return Site(service=dns_label(rollout.service or rollout.name), namespace=rollout.namespace, pod_hash=pod_hash)


ARGO_CANARY_HASH = "{{args.canary-hash}}"


def _quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def regex_literal(value: str) -> str:
    """``value`` as a literal inside an RE2 regex (PromQL's `=~`, Istio's header `regex`)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)


def istio_matchers(site: Site, arm: str) -> str:
    parts = ['reporter="destination"']
    if site.namespace:
        parts.append(f"destination_workload_namespace={_quote(site.namespace)}")
    parts.append(f"destination_app={_quote(site.service)}")
    if arm:
        parts.append(f"{ARM_ISTIO_LABEL}={_quote(arm)}")
    return ", ".join(parts)


def pod_matchers(site: Site) -> str:
    """The arm's pods: Argo names them `<rollout>-<pod-template hash>-<suffix>`."""
    if site.pod_hash is None:
        raise MissingValue("pods")
    parts = []
    if site.namespace:
        parts.append(f"namespace={_quote(site.namespace)}")
    parts.append(f"container={_quote(CONTAINER)}")
    parts.append(f"pod=~{_quote(regex_literal(site.service) + '-' + site.pod_hash + '-.*')}")
    return ", ".join(parts)


def fill(text: str, site: Site, arm: str, window_s: float | None = None, quantile: float | None = None) -> str:
    """``text`` with its placeholders filled in for one arm at one site.

    Raises:
        MissingValue: the text uses ``$namespace`` for a spec without one, or
            ``$window``/``$quantile`` where none applies.
    """
    values: dict[str, Callable[[], str | None]] = {
        "istio": lambda: istio_matchers(site, arm),
        "pods": lambda: pod_matchers(site),
        "arm": lambda: arm,
        "service": lambda: site.service,
        "namespace": lambda: site.namespace,
        "window": lambda: promql_duration(window_s) if window_s is not None else None,
        "quantile": lambda: format_number(quantile) if quantile is not None else None,
    }

    def sub(match: re.Match[str]) -> str:
        value = values[match.group(1)]()
        if value is None:
            raise MissingValue(match.group(1))
        return value

    return _PLACEHOLDER.sub(sub, text)


class MissingValue(ValueError):
    """A query uses a placeholder that has no value where it runs."""

    def __init__(self, name: str) -> None:
        super().__init__(f"`${name}` has no value here")
        self.name = name


def placeholders(text: str) -> list[str]:
    """The placeholders a query uses, in order of first use."""
    seen: list[str] = []
    for m in _PLACEHOLDER.finditer(text):
        if m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def promql_duration(seconds: float) -> str:
    """A PromQL range: `5m`, `2h`, `90s`; whole milliseconds at least 1ms."""
    ms = max(round(seconds * 1000), 1)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def format_number(x: float) -> str:
    """A number as PromQL and Argo's expressions read it: positional (`0.00001`, never `1e-05`), exact."""
    from decimal import Decimal

    if float(x).is_integer() and abs(x) < 2**53:
        return str(int(x))
    return format(Decimal(repr(float(x))), "f")


# -- the query each gate reads -----------------------------------------------------------------------


def overrides(rollout: ir.Rollout) -> Mapping[str, ir.QueryOverride]:
    source = rollout.metrics_source
    return {q.name: q for q in source.queries} if source is not None else {}


def slo_query_name(gate: ir.SloGate) -> str:
    """The name under which the gate's query is found: the built-in signal, or its own `query NAME`."""
    if gate.signal == "query":
        assert gate.query is not None
        return gate.query
    return gate.signal


def slo_query(rollout: ir.Rollout, gate: ir.SloGate) -> tuple[str, ir.QueryOverride | None]:
    """The text an SLO gate measures, and the spec's `query` it came from (None for a built-in)."""
    name = slo_query_name(gate)
    own = overrides(rollout).get(name)
    if own is not None:
        return own.query, own
    return SLO_QUERIES[name], None


def read_names(rollout: ir.Rollout) -> set[str]:
    """The names of the queries the rollout's gates read: their own (`query NAME`), and the built-ins a
    spec's `query` may replace (`latency`, `ctr_events`, `scores_distribution`, ...)."""
    names: set[str] = set()
    for gate in rollout.gates:
        if isinstance(gate, ir.SloGate):
            names.add(slo_query_name(gate))
        elif isinstance(gate, ir.DriftGate):
            names.add(f"{gate.target}_distribution")
            if gate.reference == "training":
                names.add(f"{gate.target}_reference")
        elif isinstance(gate, ir.BusinessGate):
            metric = rollout.label_metric(gate.metric)
            if metric is not None:
                names.update(f"{metric.name}_{part}" for part in label_parts(metric))
    return names


def slo_window_s(gate: ir.SloGate) -> float:
    """The rate window of an SLO gate: its interval, at least a minute (four scrapes at the usual 15s)."""
    return max(gate.interval_s, 60.0)


def label_query(rollout: ir.Rollout, metric: ir.LabelMetric, part: str) -> tuple[str, ir.QueryOverride | None]:
    """The query for one part (``events``, ``positives``, ``values``, ``squares``) of a label metric."""
    name = f"{metric.name}_{part}"
    own = overrides(rollout).get(name)
    if own is not None:
        return own.query, own
    counter = EXPORTER_METRICS[part]
    return (f'sum(increase({counter}{{service="$service", metric={_quote(metric.name)}, arm="$arm"}}[$window]))',
            None)


def label_parts(metric: ir.LabelMetric) -> tuple[str, ...]:
    return BINARY_PARTS if metric.kind == "binary" else CONTINUOUS_PARTS


def categorical(rollout: ir.Rollout, target: str) -> bool:
    """Whether a drift target is categorical (a `category`, `string` or `bool` in the signature)."""
    for role in ("candidate", "stable"):
        sig = rollout.signature_for(role)  # type: ignore[arg-type]
        if sig is None:
            continue
        for f in (*sig.inputs, *sig.outputs):
            if f.name == target:
                base = f.type.element.base if f.type.element is not None else f.type.base
                return base in ("category", "string", "bool")
    return False


def distribution_query(rollout: ir.Rollout, gate: ir.DriftGate, reference: bool = False
                       ) -> tuple[str, ir.QueryOverride | None]:
    """The query for a drift target's distribution in one arm (``$arm``) over ``$window``.

    A numeric target is a Prometheus histogram (cumulative ``le`` buckets); a
    categorical one a counter per ``category``.  The training reference
    (``vs training``) is read as it stands, not as an increase: the exporter
    publishes it once.
    """
    name = f"{gate.target}_{'reference' if reference else 'distribution'}"
    own = overrides(rollout).get(name)
    if own is not None:
        return own.query, own
    by, counter = ("category", EXPORTER_METRICS["categories"]) if categorical(rollout, gate.target) \
        else ("le", EXPORTER_METRICS["histogram"])
    selector = f'{counter}{{service="$service", feature={_quote(gate.target)}, arm="$arm"}}'
    if reference:
        return f"sum by ({by}) ({selector})", None
    return f"sum by ({by}) (increase({selector}[$window]))", None
