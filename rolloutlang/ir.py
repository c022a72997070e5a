"""The typed IR: what the compiler understood from a .rollout file.

Frozen dataclasses, one class per grammar rule where it makes sense
(``canary_stage`` -> :class:`CanaryStage`), each node carrying the
:class:`Span` it came from.  Quantities are stored in one canonical unit,
named in the field: durations in seconds (``*_s``), shares in percent
(``*_percent``, 0-100), memory in bytes, rates in requests per second.  The
checks, the plan graph, the target compilers and the simulator read this and
never the text.

The nodes are plain dataclasses so that `rollout check` starts fast: building
validators for fifty classes cost more than the rest of a check.  Their
schema is still checked, by pydantic, where it is worth the start-up:
:mod:`rolloutlang.irjson` validates and serialises the IR for ``--dump-ir``,
and the tests validate the IR of every example through it.
"""

from __future__ import annotations

from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from typing import Any, Literal, TypeVar, dataclass_transform

from rolloutlang.source import Span

Role = Literal["stable", "candidate"]

_N = TypeVar("_N")

# How pydantic validates these classes when rolloutlang.irjson asks it to: strictly
# (no coercion), and every instance, not only ones built from JSON.
_VALIDATION = {"strict": True, "revalidate_instances": "always"}


@dataclass_transform(kw_only_default=True, frozen_default=True)
def node(cls: type[_N]) -> type[_N]:
    """An IR class: a dataclass, immutable and keyword-only, with no stray attributes.

    ``dataclass(frozen=True)`` would say the same, but on Python 3.11 it
    compiles six methods for each class from source text: for the fifty
    classes here, 25 ms of a 0.16 s `rollout check`.  The methods below are
    written once and shared; ``dataclasses.fields``, ``replace`` and
    ``asdict`` and pydantic still see ordinary dataclasses.
    """
    made: Any = dataclass(init=False, repr=False, eq=False, kw_only=True, slots=True)(cls)
    specs = []
    for f in fields(made):
        if f.default_factory is not MISSING:
            raise TypeError(f"{made.__name__}.{f.name}: IR fields take immutable defaults, not factories")
        specs.append((f.name, f.default))
    for name, method in _SHARED.items():
        if name not in cls.__dict__:
            setattr(made, name, method)
    setattr(made, "_fields", tuple(specs))  # noqa: B010 (class attributes, not fields)
    setattr(made, "__pydantic_config__", _VALIDATION)  # noqa: B010
    return made  # type: ignore[no-any-return]


def _init(self: Any, **values: Any) -> None:
    for name, default in self._fields:
        value = values.pop(name, default)
        if value is MISSING:
            raise TypeError(f"{type(self).__name__}() needs the keyword argument {name!r}")
        object.__setattr__(self, name, value)
    if values:
        raise TypeError(f"{type(self).__name__}() has no field {next(iter(values))!r}")


def _values(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name, _ in self._fields)


def _eq(self: Any, other: object) -> Any:  # bool, or NotImplemented for another class
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _repr(self: Any) -> str:
    return f"{type(self).__name__}({', '.join(f'{name}={getattr(self, name)!r}' for name, _ in self._fields)})"


def _refuse(self: Any, name: str, *value: Any) -> None:
    what = "field" if any(name == field for field, _ in self._fields) else "attribute"
    raise FrozenInstanceError(f"cannot set {what} {name!r} of an IR node: nodes are immutable; make a new one with "
                              "dataclasses.replace")


def _setstate(self: Any, state: tuple[Any, ...]) -> None:
    for (name, _), value in zip(self._fields, state, strict=True):
        object.__setattr__(self, name, value)


_SHARED: dict[str, Any] = {
    "__init__": _init, "__eq__": _eq, "__hash__": _hash, "__repr__": _repr,
    "__setattr__": _refuse, "__delattr__": _refuse, "__getstate__": _values, "__setstate__": _setstate,
}


@node
class Node:
    """Base of every IR node: located."""

    span: Span


# -- models and signatures ------------------------------------------------------


@node
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text


@node
class ArtifactPin(Node):
    """How an artifact is pinned: a content digest, or (unsafely) a mutable tag."""

    digest: str | None = None  # algorithm:hex, e.g. sha256:<64 hex>
    tag: str | None = None  # a mutable tag such as `latest`, if that is what was written

    @property
    def algorithm(self) -> str | None:
        return self.digest.split(":", 1)[0] if self.digest else None

    @property
    def hex(self) -> str | None:
        return self.digest.split(":", 1)[1] if self.digest else None


@node
class ModelVersion(Node):
    """One model version taking part in the rollout."""

    role: Role
    name: str
    version: str
    semver: SemVer | None = None  # parsed version, None when not semver
    version_span: Span
    pin: ArtifactPin | None = None
    registry_uri: str | None = None  # e.g. "models:/ranker/17" or an OCI reference


@node
class TypeRef(Node):
    """A value type: scalar (`int64`), `list<T>`, `vector<T, N>` or `tensor<T, d1, d2, ...>`."""

    base: str
    element: TypeRef | None = None
    dims: tuple[int, ...] = ()

    def render(self) -> str:
        if self.element is None:
            return self.base
        args = [self.element.render(), *(str(d) for d in self.dims)]
        return f"{self.base}<{', '.join(args)}>"


@node
class SignatureField(Node):
    name: str
    type: TypeRef
    optional: bool = False
    personal: bool = False  # marked `pii`: the field holds personal data


@node
class Signature(Node):
    """Inputs and outputs; `applies_to` is `both` for a shared signature."""

    applies_to: Literal["both", "stable", "candidate"]
    inputs: tuple[SignatureField, ...] = ()
    outputs: tuple[SignatureField, ...] = ()


@node
class Resources(Node):
    cpu: float | None = None  # cores
    memory_bytes: int | None = None
    gpu: int | None = None


@node
class Serving(Node):
    """The model server: image, scale and size, warm-up before traffic."""

    image: str | None = None
    image_pin: ArtifactPin | None = None
    image_span: Span | None = None  # the `image "..."` item
    replicas_min: int | None = None
    replicas_max: int | None = None
    resources: Resources | None = None
    warmup_s: float | None = None
    port: int | None = None  # the port the server listens on (HTTP)
    port_span: Span | None = None


@node
class HeaderMatch(Node):
    """A request header or cookie condition, e.g. header "x-ml-preview" = "true"."""

    kind: Literal["header", "cookie"]
    name: str
    match: Literal["exact", "regex", "prefix"]
    value: str


@node
class Consumer(Node):
    """A downstream reader of the model's outputs and the shape it expects."""

    name: str
    output: str
    expects_dim: int
    adapter: str | None = None
    route: HeaderMatch | None = None  # how the consumer's requests are recognised
    # the phase from which its own route goes to the candidate (`promotion`, or a phase's name); None: at promotion
    switch: str | None = None
    switch_span: Span | None = None


# -- traffic, metrics and labels ---------------------------------------------------


@node
class HeaderMatchKey:
    """A request header or cookie whose value identifies a user or session."""

    kind: Literal["header", "cookie"]
    name: str


@node
class TrafficModel(Node):
    """Request rate, its daily shape, and how requests are split between the versions.

    The rate follows ``rate (1 + diurnal cos(2 pi (hour - peak) / 24))``; the
    rollout starts at ``start_hour`` (unknown: the checks assume the worst
    start).  ``unit`` is what is randomized: each request on its own
    (weighted routing), or every request of a user or session to the same
    version, recognised by ``unit_key``.
    """

    rate_rps: float
    diurnal_amplitude: float = 0.0  # fraction, 0.3 = +-30% around the mean
    peak_hour: float | None = None  # hour of day (0-24) of the peak
    start_hour: float | None = None  # hour of day (0-24) the rollout starts
    unit: Literal["request", "user", "session"] = "request"
    unit_key: HeaderMatchKey | None = None  # the header or cookie naming the unit
    requests_per_unit: float | None = None  # mean requests per user or session


@node
class QueryOverride(Node):
    name: str
    query: str


@node
class MetricsSource(Node):
    kind: Literal["prometheus"]
    address: str
    queries: tuple[QueryOverride, ...] = ()
    evaluator_image: str | None = None  # image that runs `rollout evaluate` in the cluster
    evaluator_pin: ArtifactPin | None = None
    evaluator_span: Span | None = None

    def query(self, name: str) -> QueryOverride | None:
        return next((q for q in self.queries if q.name == name), None)


@node
class LabelDelay(Node):
    """When a request's label (click, conversion) arrives after the request."""

    distribution: Literal["immediate", "fixed", "exponential", "lognormal"]
    median_s: float | None = None
    p95_s: float | None = None
    mean_s: float | None = None
    fixed_s: float | None = None


@node
class LabelMetric(Node):
    """A business metric computed from labels that arrive late (CTR, conversion)."""

    name: str
    kind: Literal["binary", "continuous"]
    baseline: float  # a rate in [0, 1] for binary metrics, a mean for continuous ones
    sd: float | None = None  # standard deviation of a continuous metric
    icc: float | None = None  # intra-unit correlation when users or sessions are split
    delay: LabelDelay
    origin: str | None = None  # gate set it came from, when imported


# -- strategy ---------------------------------------------------------------------


@node
class Shadow(Node):
    """Mirror a share of traffic to the candidate; its answers are discarded."""

    percent: float
    duration_s: float | None = None  # a phase of its own, before any traffic moves
    alongside_canary: bool = False
    until_percent: float | None = None  # mirror while the canary weight is below this
    mode_span: Span | None = None  # `for D` or `alongside canary [until W]`
    until_span: Span | None = None


@node
class CanaryStage(Node):
    name: str
    auto_name: bool = False  # named `stage-N` by position, not by the spec
    weight_percent: float
    duration_s: float | None = None
    until_approved: bool = False
    hold: bool = False
    weight_span: Span
    end_span: Span | None = None  # `for D`, `until approved` or `hold`


@node
class Canary(Node):
    kind: Literal["canary"] = "canary"
    stages: tuple[CanaryStage, ...]


@node
class BlueGreen(Node):
    kind: Literal["blue-green"] = "blue-green"
    preview_s: float | None = None
    promotion: Literal["manual", "auto"] = "manual"
    scale_down_delay_s: float | None = None
    preview_span: Span | None = None
    promotion_span: Span | None = None


@node
class SurgeValue:
    value: float
    unit: Literal["percent", "pods"]


@node
class Rolling(Node):
    kind: Literal["rolling"] = "rolling"
    max_surge: SurgeValue = SurgeValue(value=25, unit="percent")
    max_unavailable: SurgeValue = SurgeValue(value=0, unit="pods")


Strategy = Canary | BlueGreen | Rolling


@node
class Route(Node):
    """Send matching requests to one model, e.g. internal testers to the candidate."""

    match: HeaderMatch
    target: Role


# -- gates and rules ----------------------------------------------------------------

Comparison = Literal["<", "<=", ">", ">="]


@node
class SloGate(Node):
    """An infrastructure gate: latency percentile, error rate, saturation or a custom query.

    A ``threshold`` gate compares the candidate's value with a fixed number; a
    ``change`` gate compares it with the stable version's over the same window
    (``p99 latency change < +10%``), and ``threshold`` is then the change.  A
    window with fewer than ``min_samples`` requests, or none, is no data: the
    gate is inconclusive and the plan pauses; it never passes on no data.
    """

    kind: Literal["slo"] = "slo"
    name: str
    signal: Literal["latency", "error_rate", "saturation", "query"]
    percentile: float | None = None  # for latency, e.g. 99
    query: str | None = None  # name of a query override, for signal=query
    op: Comparison
    op_span: Span | None = None
    threshold: float  # seconds for latency, a fraction for rates; the change for change gates
    comparison: Literal["threshold", "change"] = "threshold"
    relative: bool = False  # change gates: a relative change (0.1 = +10%)
    baseline: float | None = None  # the stable version's current value, in the signal's unit
    min_samples: int | None = None  # requests a window needs to count
    sigma: float | None = None  # latency: log-scale SD of the lognormal latency the simulator draws
    sd: float | None = None  # saturation, query: SD of the value from window to window
    interval_s: float = 60.0
    failure_limit: int = 1
    from_stage: str | None = None
    origin: str | None = None


@node
class DriftGate(Node):
    """Distribution shift of an input feature or an output, candidate vs reference."""

    kind: Literal["drift"] = "drift"
    name: str
    statistic: Literal["psi", "kl", "js", "mmd", "adwin"]
    target: str
    op: Comparison = "<"
    op_span: Span | None = None
    target_span: Span | None = None
    threshold: float | None = None  # None for adwin, which uses delta
    delta: float | None = None  # ADWIN confidence
    interval_s: float = 3600.0
    failure_limit: int = 1
    bins: int = 10
    min_samples: int | None = None
    reference: Literal["stable", "training"] = "stable"
    reference_span: Span | None = None  # `vs stable` or `vs training`, when written
    from_stage: str | None = None
    origin: str | None = None


Hypothesis = Literal["harm", "non-inferiority"]


@node
class BusinessGate(Node):
    """A business metric compared candidate vs stable with a statistical test.

    The written comparison gives the healthy side (``>``: higher is better)
    and the ``margin``, the change the plan tolerates.  The ``hypothesis``
    puts the burden of proof: ``harm`` fails only on evidence that the change
    is beyond the margin on the wrong side; ``non-inferiority`` allows
    promotion only on evidence that it is within the margin, and fails when
    that can no longer be shown.  ``effect`` is the change the ``power`` is
    sized for.  ``margin``, ``effect`` and ``tau`` are relative (-0.01 = -1%)
    or in the metric's units, as ``relative`` says.  The statistics are in
    :mod:`rolloutlang.stats.designs`.
    """

    kind: Literal["business"] = "business"
    name: str
    metric: str
    metric_span: Span
    op: Comparison
    margin: float  # the tolerated change: relative (-0.01 = -1%) or absolute
    relative: bool = True
    hypothesis: Hypothesis
    effect: float  # the change the power is sized for, like the margin
    power: float = 0.8
    test: Literal["fixed", "group-sequential", "msprt", "bayesian"] = "group-sequential"
    spending: Literal["obrien-fleming", "pocock", "hsd"] | None = "obrien-fleming"
    spending_gamma: float | None = None  # the Hwang-Shih-DeCani gamma (hsd)
    futility: bool = False
    alpha: float | None = None  # None: 5%, or the gate's share of a false-rollback budget across gates
    sided: Literal["one", "two"] = "one"
    analysis: Literal["arrived", "matured"] = "arrived"
    interval_s: float | None = None  # look every; None = at the end of each stage
    interval_span: Span | None = None
    test_span: Span | None = None
    tau: float | None = None  # mSPRT mixing SD / Bayesian prior SD, like the margin; None = |effect - margin|
    from_stage: str | None = None
    origin: str | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">", ">=")


@node
class SrmGate(Node):
    """Sample-ratio mismatch: the observed split of units against the declared weights.

    Fails when a chi-square test (one degree of freedom) of the units counted
    in the current stage rejects the stage's weight at ``alpha``: a broken
    assignment biases every comparison gate.
    """

    kind: Literal["srm"] = "srm"
    name: str
    alpha: float = 0.001
    interval_s: float = 3600.0
    min_samples: int | None = None
    from_stage: str | None = None
    origin: str | None = None


@node
class JobGate(Node):
    """The team's own check: a command run, or a URL called, that passes on its exit code (a 2xx answer) or on a
    number in its JSON output.

    Without ``interval_s`` it runs once, when its first phase begins (its ``from`` phase, else the plan's
    first); with it, again every interval from then on.  A run that outlasts ``timeout_s`` fails.
    """

    kind: Literal["job"] = "job"
    name: str
    command: str | None = None  # run by `sh -c`; exit 0 passes
    url: str | None = None  # called with GET; a 2xx answer passes
    target_span: Span
    field: str | None = None  # a dotted path into the JSON output, e.g. `metrics.p99`
    op: Comparison | None = None
    threshold: float | None = None
    timeout_s: float = 1800.0
    interval_s: float | None = None
    failure_limit: int = 1
    from_stage: str | None = None
    origin: str | None = None


AnyGate = SloGate | DriftGate | BusinessGate | SrmGate | JobGate
Gate = AnyGate


@node
class Action(Node):
    """What a rule does: roll back (now or after a confirmation wait), pause, notify."""

    kind: Literal["rollback", "pause", "notify", "promote"]
    immediate: bool = False
    after_s: float | None = None
    channel: str | None = None


@node
class RollbackRule(Node):
    """`on g1, g2 fail: actions`, or `on g pass: promote` when a gate decides the candidate is good."""

    gates: tuple[str, ...]
    event: Literal["fail", "pass"] = "fail"
    gate_spans: tuple[Span, ...]
    actions: tuple[Action, ...]
    origin: str | None = None


@node
class UseGates(Node):
    name: str


@node
class GateSet(Node):
    """A named, importable set of gates, rules and label metrics."""

    name: str
    gates: tuple[Gate, ...] = ()
    rules: tuple[RollbackRule, ...] = ()
    label_metrics: tuple[LabelMetric, ...] = ()


# -- policy ----------------------------------------------------------------------------


@node
class Budget(Node):
    """Caps the plan must respect: exposure before a time, total duration, or false rollbacks.

    ``false-rollbacks`` caps the chance that the plan rolls back a candidate
    as good as stable; with ``gates`` those gates share it as one alpha
    (Bonferroni: each gets ``max_percent / len(gates)``).
    """

    kind: Literal["exposure", "duration", "false-rollbacks"]
    max_percent: float | None = None  # exposure as % of requests, or false rollbacks
    gates: tuple[str, ...] = ()  # false-rollbacks: the gates sharing the alpha
    gate_spans: tuple[Span, ...] = ()
    max_requests: float | None = None
    before_s: float | None = None  # exposure counted up to this time
    max_duration_s: float | None = None


@node
class Effect(Node):
    """One what-if change in a scenario, for the simulator."""

    target: str  # a gate or metric name, or `latency`, `errors`, `drift`
    kind: Literal["relative", "absolute", "labels"]
    value: float = 0.0
    unit: Literal["fraction", "seconds", "number"] = "number"
    after_s: float = 0.0
    delay: LabelDelay | None = None


@node
class Scenario(Node):
    name: str
    effects: tuple[Effect, ...]


@node
class Holdout(Node):
    """After promotion, keep a slice on one model to measure long-run metrics."""

    percent: float
    role: Role
    duration_s: float
    role_span: Span | None = None
    duration_span: Span | None = None


HookPoint = Literal["before-traffic", "phase-start", "phase-end", "after-promotion", "on-rollback"]

# How long a hook or a job gate may run when the spec does not say.
DEFAULT_TIMEOUT_S = 1800.0


@node
class PipelineHook(Node):
    """A team's own command, run at one point of the plan: before traffic moves (the default), at the start or
    end of a named phase, after promotion, or on rollback; a run that outlasts ``timeout_s`` fails."""

    name: str
    command: str
    point: HookPoint = "before-traffic"
    phase: str | None = None  # the phase, for `at start of` and `at end of`
    phase_span: Span | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S


@node
class PipelineImage(Node):
    """The container image the generated CI jobs run in (`pipeline { image "..." @ sha256:... }`)."""

    image: str  # the image reference without its digest
    pin: ArtifactPin | None = None


@node
class Approval(Node):
    what: str
    approvers: tuple[str, ...]


@node
class PiiField(Node):
    name: str
    treatment: Literal["hashed", "dropped"] | None = None
    name_span: Span | None = None


@node
class RequestLog(Node):
    sample_percent: float
    fields: tuple[str, ...] = ()
    field_spans: tuple[Span, ...] = ()
    pii: tuple[PiiField, ...] = ()
    retain_s: float | None = None


@node
class Bake(Node):
    """After promotion: the candidate serves everything, its gates still run, and the stable version stays up
    for an instant switch back."""

    duration_s: float
    duration_span: Span


@node
class ScaleDown(Node):
    """How long the old version keeps running once the plan is promoted (after the bake, if there is one)."""

    after_s: float
    after_span: Span


@node
class Revert(Node):
    """This rollout goes back to the previous version: the candidate is the older one, on purpose."""

    reason: str | None = None


@node
class Import(Node):
    path: str


# -- the rollout -------------------------------------------------------------------------


@node
class Rollout(Node):
    """Everything one rollout says, in declaration order where order matters."""

    name: str
    service: str | None = None
    name_span: Span | None = None
    namespace: str | None = None
    owner: str | None = None
    models: tuple[ModelVersion, ...] = ()
    signatures: tuple[Signature, ...] = ()
    serving: Serving | None = None
    consumers: tuple[Consumer, ...] = ()
    traffic: TrafficModel | None = None
    metrics_source: MetricsSource | None = None
    label_metrics: tuple[LabelMetric, ...] = ()
    shadow: Shadow | None = None
    strategy: Strategy | None = None
    routes: tuple[Route, ...] = ()
    gates: tuple[Gate, ...] = ()
    rules: tuple[RollbackRule, ...] = ()
    uses: tuple[UseGates, ...] = ()
    budgets: tuple[Budget, ...] = ()
    scenarios: tuple[Scenario, ...] = ()
    holdout: Holdout | None = None
    bake: Bake | None = None
    scale_down: ScaleDown | None = None
    revert: Revert | None = None
    pipeline: tuple[PipelineHook, ...] = ()
    pipeline_image: PipelineImage | None = None
    approvals: tuple[Approval, ...] = ()
    request_log: RequestLog | None = None

    def model(self, role: Role) -> ModelVersion | None:
        return next((m for m in self.models if m.role == role), None)

    def signature_for(self, role: Role) -> Signature | None:
        """The signature that applies to a role: its own, else the shared one."""
        own = next((s for s in self.signatures if s.applies_to == role), None)
        return own or next((s for s in self.signatures if s.applies_to == "both"), None)

    def gate(self, name: str) -> AnyGate | None:
        return next((g for g in self.gates if g.name == name), None)

    def label_metric(self, name: str) -> LabelMetric | None:
        return next((m for m in self.label_metrics if m.name == name), None)


@node
class File(Node):
    """One parsed and lowered source file."""

    path: str
    imports: tuple[Import, ...] = ()
    gate_sets: tuple[GateSet, ...] = ()
    rollouts: tuple[Rollout, ...] = ()
