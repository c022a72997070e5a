"""Argo Rollouts (argoproj.io/v1alpha1, the fields release 1.9 knows): a Rollout and what it names.

What each construct becomes is documented in ``docs/targets.md``; the short
version:

* canary stages are ``setWeight`` + ``pause``, a shadow phase is
  ``setCanaryScale`` + ``setMirrorRoute`` (removed after), routes to the
  candidate are ``setHeaderRoute`` steps, all on Istio subset routing
  (the VirtualService and DestinationRule come from the ``istio`` target);
* SLO gates are Prometheus metrics and drift gates are job metrics running
  ``rollout evaluate``, together in the background analysis; business gates
  are job metrics in an ``analysis`` step at each of their looks;
* a rule's ``rollback`` is an abort (a failed metric), its ``pause`` turns
  a breach into *inconclusive* (neither condition holds), which pauses the
  Rollout; no data is inconclusive everywhere.

The target builds plain view-models, checks them against the rules Argo's
controller enforces beyond its schema (``upstream-facts.md`` b.1-b.8), and
only then renders them through the templates in ``templates/argo/``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rolloutlang import ir, queries
from rolloutlang.diagnostics import Diagnostic, Severity, error, warning
from rolloutlang.plan import Phase, Plan, compares_arms
from rolloutlang.source import Span
from rolloutlang.stats.gates import gate_looks
from rolloutlang.stats.schedule import gate_windows
from rolloutlang.targets import kube
from rolloutlang.targets.base import CompileInput, Output, Target, TargetResult, dns_label
from rolloutlang.units import duration_text

SPEC_MOUNT = "/etc/rolloutlang/spec"
MIRROR_ROUTE = "mirror"
MAX_STEPS = 1000
JOB_START_S = 300  # what a job's deadline allows to pull the image and start the pod, beyond the timeout
HPA_CPU_UTILIZATION = 80
NOTIFY_TRIGGERS = ("on-rollout-aborted", "on-rollout-paused", "on-rollout-completed")
NOTIFY_SERVICE = "slack"
DIGEST = r"sha256:[0-9a-f]{64}"


Action = Literal["abort", "pause", "dry-run"]


# How a gate is measured: a Prometheus query, `rollout evaluate` in a job, the team's own command in a job
# (`run`, or `call` without a JSON field), or Argo's web provider (`call "URL" json "FIELD" < N`).
Provider = Literal["prometheus", "job", "command", "web"]


@dataclass
class GateUse:
    """How a gate is compiled: by which provider, and what its failure does."""

    gate: ir.AnyGate
    provider: Provider
    action: Action
    confirm_s: float = 0.0

    @property
    def once(self) -> bool:
        """A job gate without `every`: one run, as a step where its phase begins."""
        return isinstance(self.gate, ir.JobGate) and self.gate.interval_s is None

    @property
    def failure_limit(self) -> int:
        """Failed measurements tolerated before the metric fails (Argo fails at failureLimit + 1)."""
        if self.provider == "job" or isinstance(self.gate, ir.BusinessGate | ir.SrmGate):
            return 0  # `rollout evaluate` applies `fail after` and the confirmation wait itself
        interval = self.gate.interval_s
        if interval is None:
            return 0  # one run decides
        extra = math.ceil(self.confirm_s / interval - 1e-9) if self.confirm_s else 0
        return self.gate.failure_limit - 1 + extra

    @property
    def inconclusive_limit(self) -> int:
        if self.provider in ("job", "command") or isinstance(self.gate, ir.BusinessGate | ir.SrmGate) \
                or self.gate.interval_s is None:
            return 0
        return self.gate.failure_limit - 1


@dataclass
class MetricView:
    """One metric of an AnalysisTemplate, ready for the template."""

    name: str
    provider: Provider
    interval: str | None = None
    count: int | None = None
    initial_delay: str | None = None
    failure_limit: int = 0
    inconclusive_limit: int | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    address: str = ""
    query: str = ""
    job: dict[str, Any] = field(default_factory=dict)
    run: RunView | None = None
    web: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunView:
    """A job that runs the team's own command (a gate's, or a hook's) in the pipeline image.

    ``mode`` picks the script the template writes: ``run`` (the command's exit code), ``run-json`` (a number in
    its JSON output against a threshold) or ``call`` (a URL answers 2xx).  Every spec value is an environment
    variable, its ``$`` doubled so that Kubernetes does not expand ``$(NAME)`` in it.
    """

    mode: Literal["run", "run-json", "call"]
    image: str
    deadline: int
    env: list[tuple[str, str]]


@dataclass
class TemplateView:
    """One AnalysisTemplate: its metadata, the arguments it declares, its metrics, which run dry."""

    meta: kube.Metadata
    args: list[str]
    metrics: list[MetricView]
    dry_run: list[str]
    span: Span
    role: Literal["background", "step", "pre", "post"]


@dataclass
class Step:
    """One canary step; ``kind`` is the Argo step field, the rest its values."""

    kind: str
    values: dict[str, Any] = field(default_factory=dict)


def _condition(op: str, threshold: float, breach_matches: bool, value_of: str = "result[0]",
               data: str = "len(result) == 1 && !isNaN(result[0])") -> tuple[str, str]:
    """successCondition and failureCondition for a one-number Prometheus result.

    No data (an empty vector, several series, NaN) matches neither, so it is
    inconclusive (argo-rollouts #1905).  With ``breach_matches`` False the
    failure condition never holds, so a breach is inconclusive too: the
    Rollout pauses instead of aborting.
    """
    value = queries.format_number(threshold) if threshold >= 0 else "-" + queries.format_number(-threshold)
    negated = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}[op]
    guard = f"{data} && " if data else ""
    success = f"{guard}{value_of} {op} {value}"
    failure = f"{guard}{value_of} {negated} {value}" if breach_matches else "false"
    return success, failure


class ArgoRollouts(Target):
    """Argo Rollouts objects for one rollout: Rollout, AnalysisTemplates, Services, HPA, evaluator support."""

    name: ClassVar[str] = "argo"
    summary: ClassVar[str] = "Argo Rollouts: Rollout, AnalysisTemplates, Services, HPA"

    def compile(self, unit: CompileInput) -> TargetResult:
        build = _Build(unit)
        build.run()
        if any(d.is_error for d in build.diagnostics):
            return TargetResult(diagnostics=build.diagnostics)
        return TargetResult(outputs=build.render(self), diagnostics=build.diagnostics)


class _Build:
    """The objects of one rollout, built as view-models, then checked, then rendered."""

    def __init__(self, unit: CompileInput) -> None:
        self.unit = unit
        self.rollout: ir.Rollout = unit.rollout
        self.plan: Plan = unit.plan
        self.names = kube.Names.of(self.rollout)
        self.diagnostics: list[Diagnostic] = []
        self.templates: list[TemplateView] = []
        self.steps: list[Step] = []
        self.managed_routes: list[str] = []
        self.uses: list[GateUse] = []
        self.needs_evaluator = False
        self.strategy: dict[str, Any] = {}
        self.strategy_analysis: dict[str, Any] = {}
        self.background_args: list[dict[str, Any]] = []
        self.evaluator = ""
        self.run_image: str | None = None
        self.phase_start: dict[str, int] = {}
        self.looks: dict[str, list[tuple[float, GateUse, int]]] = {}
        self.bake_weight = 100
        self.switches: dict[str, Phase] = kube.consumer_switch_phases(self.plan)
        self.switch_routes: dict[str, kube.HeaderRoute] = {}

    # -- diagnostics -------------------------------------------------------------------------------

    def error(self, code: str, message: str, span: Span | None, **kw: Any) -> None:
        self.diagnostics.append(error(code, message, span, **kw))

    def warn(self, code: str, message: str, span: Span | None, **kw: Any) -> None:
        self.diagnostics.append(warning(code, message, span, **kw))

    # -- the plan of work -------------------------------------------------------------------------------

    def run(self) -> None:
        r = self.rollout
        if r.strategy is None:
            return  # RL319 already
        self._check_strings()
        self._classify_gates()
        if isinstance(r.strategy, ir.Canary):
            self._canary(r.strategy)
            self._after_promotion()
            self._holdout()
            self._background(self.phase_start)
            if len(self.steps) > MAX_STEPS:
                self.error("RL723", f"the Rollout would have {len(self.steps)} steps, more than {MAX_STEPS}",
                           r.strategy.span, help="business gates with a short `every` add two steps per look: "
                                                 "look less often (`every 6h`) or at stage ends only")
        elif isinstance(r.strategy, ir.BlueGreen):
            self._blue_green(r.strategy)
            self._holdout()
        else:
            self._rolling(r.strategy)
            self._holdout()
        self._scale_down()
        self._on_rollback()
        self._unplaced()
        self._left_to_others()
        if self.needs_evaluator:
            self._evaluator_image()
            if not r.namespace:
                gate = next(u.gate for u in self.uses if u.provider == "job")
                self.error("RL733", f"gate `{gate.name}` runs `rollout evaluate` in the cluster, whose RoleBinding "
                           "must name the namespace", r.name_span or r.span,
                           help="add `namespace NAME` to the rollout")
        self._validate()

    def _check_strings(self) -> None:
        """Argo reads `{{...}}` in an analysis metric as an argument: no spec text that reaches one may hold it.

        Notification channels share one annotation per trigger, separated by `;`.
        """
        source = self.rollout.metrics_source
        texts: list[tuple[str, str, Span]] = []
        if source is not None:
            texts.append(("the Prometheus address", source.address, source.span))
            texts.extend((f"query `{q.name}`", q.query, q.span) for q in source.queries)
            if source.evaluator_image and source.evaluator_span is not None:
                texts.append(("the evaluator image", source.evaluator_image, source.evaluator_span))
        for gate in self.rollout.gates:
            if isinstance(gate, ir.JobGate):
                texts.append((f"gate `{gate.name}`", gate.command or gate.url or "", gate.target_span))
        texts.extend((f"hook `{h.name}`", h.command, h.span) for h in self.rollout.pipeline
                     if h.point != "before-traffic")
        for what, text, span in texts:
            if "{{" in text:
                self.error("RL717", f"{what} contains `{{{{`, which Argo Rollouts reads as an argument reference",
                           span, help="Argo substitutes `{{args.NAME}}` in every analysis metric and fails on "
                                      "other `{{...}}`; rewrite the text without `{{`")
            if source is not None and what.startswith("query") and "$namespace" in text \
                    and not self.rollout.namespace:
                self.error("RL732", f"{what} uses `$namespace`, but the rollout has no namespace", span,
                           help="add `namespace NAME` to the rollout, or write the namespace into the query")

    def _left_to_others(self) -> None:
        """Notes for what a reader might look for in the manifests but that another tool does."""
        r = self.rollout
        for approval in r.approvals:
            if approval.what != "rollback":
                self.diagnostics.append(Diagnostic(
                    Severity.NOTE, "RL735", f"Argo Rollouts waits for the `{approval.what}` approval (a `pause` "
                    "step), but cannot say who may give it", approval.span,
                    help="who may promote is whoever may patch the Rollout: grant that in Kubernetes RBAC, or "
                         "promote from a CI job whose environment requires these reviewers"))
        if r.request_log is not None:
            self.diagnostics.append(Diagnostic(
                Severity.NOTE, "RL736", "request logging is not compiled: the sample rate, fields and PII "
                "treatment are the model server's own configuration", r.request_log.span,
                help="configure the server's request log to match; `rollout check` keeps checking the PII rules"))

    # -- gates -------------------------------------------------------------------------------------

    def _rules_for(self, gate: str, event: str = "fail") -> list[ir.RollbackRule]:
        return [rule for rule in self.rollout.rules if gate in rule.gates and rule.event == event]

    def _classify_gates(self) -> None:
        for gate in self.rollout.gates:
            if isinstance(gate, ir.DriftGate) and gate.statistic not in queries.EVALUATED_DRIFT:
                self.warn("RL716", f"gate `{gate.name}` is not compiled: `rollout evaluate` cannot compute "
                          f"`{gate.statistic}` from Prometheus histograms", gate.target_span or gate.span,
                          label="needs raw samples",
                          help="the Rollout runs without this gate; to gate on drift in production, use "
                               f"`psi`, `kl` or `js` of a scalar summary (e.g. `psi({gate.target}_norm)`), "
                               "exported as a histogram")
                continue
            if isinstance(gate, ir.SrmGate):
                self.warn("RL716", f"gate `{gate.name}` is not compiled: `rollout evaluate` does not judge "
                          "sample-ratio gates yet", gate.span, label="needs the split in force",
                          help="the Rollout runs without this gate; watch the split with an SLO gate on a query "
                               "of your own (`query split_ratio < 0.06`)")
                continue
            passing = self._rules_for(gate.name, "pass")
            promote = next((rule.span for rule in passing if any(a.kind == "promote" for a in rule.actions)), None)
            if promote is not None:
                self.error("RL712", f"Argo Rollouts cannot promote early when gate `{gate.name}` passes", promote,
                           label="`promote` on a metric",
                           help="an analysis can only continue, pause or abort a Rollout: drop the rule and "
                                "promote by hand when the gate passes (`kubectl argo rollouts promote --full`)")
                continue
            rules = self._rules_for(gate.name)
            kinds = {a.kind for rule in rules for a in rule.actions}
            span = next((rule.span for rule in rules if any(a.kind == "promote" for a in rule.actions)), None)
            if span is not None:
                self.error("RL712", f"Argo Rollouts cannot promote early when gate `{gate.name}` fails", span,
                           label="`promote` on a metric",
                           help="an analysis can only continue, pause or abort a Rollout: drop `promote` from the "
                                "rule and promote by hand (`kubectl argo rollouts promote --full`), or `pause` "
                                "and decide then")
                continue
            waits = [a.after_s or 0.0 for rule in rules for a in rule.actions if a.kind == "rollback"]
            action: Action
            if waits:
                action = "abort"
                if "pause" in kinds:
                    pause_rule = next(rule for rule in rules if any(a.kind == "pause" for a in rule.actions))
                    self.warn("RL727", f"gate `{gate.name}` both pauses and rolls back; Argo Rollouts acts on a "
                              "metric one way, and the abort wins", pause_rule.span,
                              help="keep one action per gate; to be asked before rolling back, use `pause`")
            elif "pause" in kinds:
                action = "pause"
            else:
                action = "dry-run"
                if "notify" in kinds:
                    rule = next(rule for rule in rules if any(a.kind == "notify" for a in rule.actions))
                    self.warn("RL714", f"Argo Rollouts cannot notify on gate `{gate.name}` alone: it runs as a "
                              "dry-run metric, whose failures are recorded in the AnalysisRun but tell nobody",
                              rule.span, help="add `pause` to the rule: the Rollout pauses and the channel hears "
                                              "of it (on-rollout-paused)")
            if isinstance(gate, ir.BusinessGate) and gate.analysis == "matured":
                self.warn("RL721", f"gate `{gate.name}` is evaluated as `analysis arrived` in production",
                          gate.span, help="Prometheus counts labels when they arrive, not by the time of their "
                                          "request, so `rollout evaluate` cannot keep only matured requests; "
                                          "lengthen the stages or start the gate later instead")
            kube_name = dns_label(gate.name)
            clash = next((u.gate for u in self.uses if dns_label(u.gate.name) == kube_name), None)
            if clash is not None:
                self.error("RL731", f"gates `{clash.name}` and `{gate.name}` would both be named `{kube_name}` in "
                           "Kubernetes", gate.span, label="same Kubernetes name",
                           help="Kubernetes names are lower case with `-`: rename one gate so the two differ "
                                "after `_` becomes `-`")
                continue
            provider: Provider
            if isinstance(gate, ir.JobGate):
                # The team's own check: Argo's web provider reads a JSON field of a URL's answer; a command, or a
                # URL that only has to answer 2xx (web needs a JSON body), runs in a job in the pipeline image.
                provider = "web" if gate.url is not None and gate.field is not None else "command"
                if provider == "command" and action == "pause":
                    rule = next(rule for rule in rules if any(a.kind == "pause" for a in rule.actions))
                    self.error("RL756", f"Argo Rollouts cannot pause on job gate `{gate.name}`: a job metric "
                               "passes or fails, and a failure aborts", rule.span, label="`pause` on a job",
                               help="roll back on it (`rollback`), or have the command print JSON and gate on a "
                                    "field of it through a URL (`call \"URL\" json \"FIELD\" < N`), which can "
                                    "pause")
                    continue
                if provider == "command":
                    self._run_image(gate.span)
            else:
                # A threshold on one arm is a Prometheus metric; comparing the arms or counting requests (`min
                # samples`) takes `rollout evaluate`.
                prometheus = isinstance(gate, ir.SloGate) and gate.comparison == "threshold" \
                    and gate.min_samples is None
                provider = "prometheus" if prometheus else "job"
            if provider == "job":
                self.needs_evaluator = True
            self.uses.append(GateUse(gate, provider, action, min(waits) if waits else 0.0))

    def _use(self, name: str) -> GateUse | None:
        return next((u for u in self.uses if u.gate.name == name), None)

    def _slo_metric(self, use: GateUse, arm: str = queries.CANARY) -> MetricView:
        gate = use.gate
        assert isinstance(gate, ir.SloGate)
        source = self.rollout.metrics_source
        text, _ = queries.slo_query(self.rollout, gate)
        site = queries.site(self.rollout, queries.ARGO_CANARY_HASH)
        window = queries.slo_window_s(gate)
        quantile = gate.percentile / 100.0 if gate.percentile is not None else None
        success, failure = _condition(gate.op, gate.threshold, use.action == "abort")
        try:
            query = queries.fill(text, site, arm, window, quantile)
        except queries.MissingValue:
            query = ""  # `$namespace` without a namespace: RL732 says so
        return MetricView(
            name=dns_label(gate.name), provider="prometheus", interval=kube.go_duration(gate.interval_s),
            failure_limit=use.failure_limit,
            inconclusive_limit=use.inconclusive_limit, success_condition=success, failure_condition=failure,
            address=source.address if source is not None else "",
            query=query,
        )

    def _job_metric(self, use: GateUse, look_arg: bool) -> MetricView:
        gate = use.gate
        entry = _spec_entry(self.unit.source_path)
        args = ["evaluate", "--root", SPEC_MOUNT, f"{SPEC_MOUNT}/{entry}", "--rollout", self.rollout.name,
                "--gate", gate.name, "--format", "json", "--argo-rollout", self.names.rollout]
        if use.action == "dry-run":
            args += ["--on-fail", "exit", "--on-inconclusive", "exit"]
        else:
            args += ["--on-fail", "pause" if use.action == "pause" else "exit", "--on-inconclusive", "pause"]
        if look_arg:
            args += ["--look", "{{args.look}}"]
        if use.confirm_s:
            args += ["--confirm-after", kube.go_duration(use.confirm_s)]
        interval = None if gate.interval_s is None or isinstance(gate, ir.BusinessGate) \
            else kube.go_duration(gate.interval_s)
        deadline = 900 + math.ceil(use.confirm_s)
        return MetricView(name=dns_label(gate.name), provider="job", interval=interval,
                          failure_limit=use.failure_limit,
                          job={"args": args, "deadline": deadline})

    def _run_image(self, span: Span) -> str:
        """The image the team's commands run in, in the cluster: the CI image (`pipeline { image ... }` or
        --ci-image), which already holds what the hooks run; RL755 when there is none."""
        if self.run_image is not None:
            return self.run_image
        given = self.unit.options.ci_image
        spec_image = self.rollout.pipeline_image
        if given is not None:
            import re

            self.run_image = given.strip()
            if not re.fullmatch(r"[^@\s]+@" + DIGEST, self.run_image):
                self.error("RL755", f"--ci-image `{given}` is not pinned by a sha256 digest", span,
                           label="runs this in the cluster",
                           help="pass IMAGE@sha256:<64 hex digits>: a tag can change under a running rollout")
        elif spec_image is not None and spec_image.pin is not None and spec_image.pin.digest is not None:
            self.run_image = f"{spec_image.image}@{spec_image.pin.digest}"
        else:
            self.run_image = ""
            self.error("RL755", "the team's commands run in the cluster as Argo Rollouts jobs, which need an "
                       "image, pinned by digest", span, label="no `pipeline { image ... }`",
                       help='name the image that holds your commands (and python3) in the rollout: `pipeline { '
                            'image "registry.example.com/ml/rollout-ci" @ sha256:... }`, or pass --ci-image')
        return self.run_image

    def _run_view(self, what: str, name: str, span: Span, timeout_s: float, *, command: str | None = None,
                  url: str | None = None, field: str | None = None, op: str | None = None,
                  threshold: float | None = None) -> RunView:
        env = [("ROLLOUT_RUN", f"{what} {name}"), ("ROLLOUT_TIMEOUT", str(math.ceil(timeout_s)))]
        mode: Literal["run", "run-json", "call"]
        if command is not None:
            env.append(("ROLLOUT_COMMAND", command))
            mode = "run"
            if field is not None and op is not None and threshold is not None:
                mode = "run-json"
                env += [("ROLLOUT_FIELD", field), ("ROLLOUT_OP", op),
                        ("ROLLOUT_THRESHOLD", queries.format_number(threshold))]
        else:
            assert url is not None
            env.append(("ROLLOUT_URL", url))
            mode = "call"
        # Kubernetes expands `$(NAME)` in env values and reduces `$$` to `$`: doubled, every `$` stays itself.
        env = [(k, v.replace("$", "$$")) for k, v in env]
        # The command itself is held to its timeout (`timeout`); the job's deadline adds time to start the pod.
        return RunView(mode, self._run_image(span), math.ceil(timeout_s) + JOB_START_S, env)

    def _own_metric(self, use: GateUse) -> MetricView:
        """A job gate: the team's command in a job, or Argo's web provider on a JSON field of a URL's answer."""
        gate = use.gate
        assert isinstance(gate, ir.JobGate)
        interval = kube.go_duration(gate.interval_s) if gate.interval_s is not None else None
        metric = MetricView(name=dns_label(gate.name), provider=use.provider, interval=interval,
                            failure_limit=use.failure_limit)
        if use.provider == "web":
            assert gate.url is not None and gate.field is not None and gate.op is not None
            assert gate.threshold is not None
            success, failure = _condition(gate.op, gate.threshold, use.action == "abort", "asFloat(result)", "")
            metric.success_condition, metric.failure_condition = success, failure
            metric.inconclusive_limit = use.inconclusive_limit
            path = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in gate.field.split("."))
            metric.web = {"url": gate.url, "json_path": "{$" + path + "}",
                          "timeout": max(math.ceil(gate.timeout_s), 1)}
        else:
            metric.run = self._run_view("gate", gate.name, gate.span, gate.timeout_s, command=gate.command,
                                        url=gate.url, field=gate.field, op=gate.op, threshold=gate.threshold)
        return metric

    def _template(self, use: GateUse, role: Literal["background", "step", "pre", "post"], *,
                  count: int | None = None, initial_delay_s: float = 0.0) -> TemplateView:
        gate = use.gate
        if use.provider == "prometheus":
            # After a blue-green switch every request goes to the new pods, whatever their ephemeral label says.
            metric = self._slo_metric(use, queries.ANY if role == "post" else queries.CANARY)
        elif use.provider == "job":
            metric = self._job_metric(use, look_arg=role == "step")
        else:
            metric = self._own_metric(use)
        if count is not None:
            metric.count = count
            if count > 1 and metric.interval is None and gate.interval_s is not None:
                metric.interval = kube.go_duration(gate.interval_s)
        if role == "step" or use.once:
            metric.count = 1
            metric.interval = None
        if isinstance(gate, ir.JobGate):
            # the team's check measures now: only a later start waits
            metric.initial_delay = kube.go_duration(initial_delay_s) if initial_delay_s > 0 else None
        elif role != "step":
            # The first measurement waits for one full window of data, which would otherwise be "no data".
            assert not isinstance(gate, ir.BusinessGate) and gate.interval_s is not None
            window = queries.slo_window_s(gate) if isinstance(gate, ir.SloGate) else gate.interval_s
            metric.initial_delay = kube.go_duration(window + initial_delay_s)
        args = []
        if "{{args.canary-hash}}" in metric.query:
            args.append("canary-hash")
        if role == "step" and use.provider == "job":
            args.append("look")
        suffix = "post" if role == "post" else ""
        meta = kube.metadata(self.names, self.names.template(gate.name, suffix), self.rollout, kube.WAVE_REFERENCED)
        meta.annotations[f"{kube.LABEL_PREFIX}/gate"] = gate.name
        view = TemplateView(meta, args, [metric], [metric.name] if use.action == "dry-run" else [], gate.span, role)
        self.templates.append(view)
        return view

    # -- canary ------------------------------------------------------------------------------------

    def _step(self, kind: str, **values: Any) -> int:
        self.steps.append(Step(kind, values))
        return len(self.steps) - 1

    def _weight(self, phase: Phase) -> int | None:
        w = kube.whole_percent(phase.weight_percent)
        if w is None:
            self.error("RL710", f"Argo Rollouts and Istio weigh traffic in whole percent, not "
                       f"{phase.weight_percent:g}%", phase.weight_span or phase.span,
                       label="not a whole percentage", help=f"write `{round(phase.weight_percent) or 1}%`")
        return w

    def _mirror_percent(self, percent: float, span: Span) -> int | None:
        p = kube.whole_percent(percent)
        if p is None:
            self.error("RL711", f"Argo Rollouts mirrors a whole percentage of requests, not {percent:g}%", span,
                       label="not a whole percentage", help=f"write `shadow {max(round(percent), 1)}% ...`")
        return p

    def _canary(self, canary: ir.Canary) -> None:
        r = self.rollout
        routes = kube.header_routes(r, kube.consumer_targets(self.plan))
        self.diagnostics.extend(kube.regex_diagnostics(routes, "RL719"))
        seen_stable: kube.HeaderRoute | None = None
        for hr in routes:
            if hr.target == "stable":
                seen_stable = seen_stable or hr
                if hr.origin == "consumer" and hr.consumer in self.switches:
                    self.switch_routes[hr.consumer] = hr  # moved to the candidate at its own switch
                    self.managed_routes.append(hr.name)
                continue
            if seen_stable is not None:
                self.warn("RL724", f"Argo Rollouts puts its header routes above every other route: {hr.label} "
                          f"(to the candidate) is tried before {seen_stable.label} (to stable)", hr.span,
                          help="write the routes to the candidate first, so the order you read is the order "
                               "requests are matched")
            self.managed_routes.append(hr.name)
            self._step("setHeaderRoute", name=hr.name, header=hr.header, match=hr.match, value=hr.value)
        shadow = r.shadow
        mirror_pct = self._mirror_percent(shadow.percent, shadow.span) if shadow is not None else None
        if shadow is not None:
            self.managed_routes.append(MIRROR_ROUTE)
        phase_start = self.phase_start
        looks = self.looks = self._looks()
        mirroring = False
        pre = self.plan.pre_promotion
        for phase in pre:
            if phase.kind == "shadow":
                phase_start[phase.id] = self._step("setCanaryScale", weight=min(max(mirror_pct or 1, 1), 100))
                self._step("setMirrorRoute", name=MIRROR_ROUTE, percentage=mirror_pct)
                self._at_start(phase)
                self._pauses(phase, looks)
                self._at_end(phase)
                self._step("setMirrorRoute", name=MIRROR_ROUTE, remove=True)
                self._step("setCanaryScale", match_traffic_weight=True)
                continue
            weight = self._weight(phase)
            if weight is None:
                continue
            if phase.shadow_percent > 0:
                scale = min(weight + math.ceil(phase.shadow_percent), 100)
                phase_start[phase.id] = self._step("setCanaryScale", weight=scale)
                self._step("setWeight", weight=weight)
                if not mirroring:
                    self._step("setMirrorRoute", name=MIRROR_ROUTE, percentage=mirror_pct)
                    mirroring = True
            else:
                if mirroring:
                    phase_start[phase.id] = self._step("setMirrorRoute", name=MIRROR_ROUTE, remove=True)
                    self._step("setCanaryScale", match_traffic_weight=True)
                    self._step("setWeight", weight=weight)
                    mirroring = False
                else:
                    last = phase.index == len(pre) - 1
                    if last and weight == 100 and not phase.duration_s and not phase.open_ended \
                            and not self._has_points(phase):
                        phase_start[phase.id] = len(self.steps)
                        continue  # the end of the steps promotes to 100% anyway
                    phase_start[phase.id] = self._step("setWeight", weight=weight)
            self._at_start(phase)
            self._pauses(phase, looks)
            self._at_end(phase)
        if mirroring:
            self._step("setMirrorRoute", name=MIRROR_ROUTE, remove=True)
            self._step("setCanaryScale", match_traffic_weight=True)
        self.strategy = {"kind": "canary", "traffic_routing": True}

    # -- points of the plan: job gates that run once, hooks, consumer switches ------------------------------

    def weight_of(self, phase: Phase) -> float:
        """The candidate's weight the Rollout gives the phase (a bake before a holdout keeps its slice)."""
        return self.bake_weight if phase.kind == "bake" else phase.weight_percent

    def _hooks_at(self, phase: Phase, point: ir.HookPoint) -> list[ir.PipelineHook]:
        """Hooks at the start or end of ``phase``; `after promotion` counts as the start of the first phase
        after promotion (the bake, else the holdout)."""
        out = []
        first_post = next((p for p in self.plan.phases if p.post_promotion), None)
        for h in self.rollout.pipeline:
            if h.point == point and h.phase == phase.name:
                out.append(h)
            elif point == "phase-start" and h.point == "after-promotion" and first_post is not None \
                    and phase.id == first_post.id:
                out.append(h)
        return out

    def _once_gates(self, phase: Phase) -> list[GateUse]:
        return [u for u in self.uses if u.once and u.gate.name in phase.gates]

    def _has_points(self, phase: Phase) -> bool:
        return bool(self._hooks_at(phase, "phase-start") or self._hooks_at(phase, "phase-end")
                    or self._once_gates(phase) or any(p.id == phase.id for p in self.switches.values()))

    def _at_start(self, phase: Phase) -> None:
        """As the phase begins: consumers switched here move to the candidate, then its one-run job gates and
        its hooks run, as one analysis step the Rollout waits for."""
        for name, at in self.switches.items():
            hr = self.switch_routes.get(name)
            if at.id == phase.id and hr is not None:
                self._step("setHeaderRoute", name=hr.name, header=hr.header, match=hr.match, value=hr.value)
        names = [self._template(u, "step").meta.name for u in self._once_gates(phase)]
        names += [self._hook_template(h, "step").meta.name for h in self._hooks_at(phase, "phase-start")]
        if names:
            self._step("analysis", templates=names, args=[])

    def _at_end(self, phase: Phase) -> None:
        names = [self._hook_template(h, "step").meta.name for h in self._hooks_at(phase, "phase-end")]
        if names:
            self._step("analysis", templates=names, args=[])

    def _hook_template(self, hook: ir.PipelineHook, role: Literal["step", "pre", "post"]) -> TemplateView:
        """A hook as a one-run job metric: the Rollout waits for it, and a failure (or its timeout) aborts."""
        name = self.names.template("hook", hook.name)
        found = next((t for t in self.templates if t.meta.name == name), None)
        if found is not None:
            return found
        metric = MetricView(name=dns_label("hook", hook.name), provider="command", count=1,
                            run=self._run_view("hook", hook.name, hook.span, hook.timeout_s, command=hook.command))
        meta = kube.metadata(self.names, name, self.rollout, kube.WAVE_REFERENCED)
        meta.annotations[f"{kube.LABEL_PREFIX}/hook"] = hook.name
        view = TemplateView(meta, [], [metric], [], hook.span, role)
        self.templates.append(view)
        return view

    def _after_promotion(self) -> None:
        """The bake of a canary or a rolling update: every request on the candidate, as a last timed pause
        whose gates keep running (the background analysis) and can still abort; `after promotion` hooks and
        one-run job gates of the bake run as it begins."""
        bake = next((p for p in self.plan.phases if p.kind == "bake"), None)
        hooks = [h for h in self.rollout.pipeline if h.point == "after-promotion"]
        if bake is None and not hooks:
            return
        full = 100
        h = self.rollout.holdout
        if bake is not None and h is not None and h.role == "stable" and isinstance(self.rollout.strategy, ir.Canary):
            held = kube.whole_percent(100.0 - h.percent)
            if held is not None:
                # The holdout's slice stays on stable through the bake: a Rollout's weights only rise.
                full = self.bake_weight = held
                self.warn("RL713", f"the bake runs at {held}%, not 100%: the holdout's {100 - held}% stays on "
                          "stable from promotion on, since the Rollout's steps never lower a weight", h.span,
                          help="the bake's gates judge the candidate on the rest of the traffic; to bake at 100%, "
                               "drop the holdout")
        weights = [st.values["weight"] for st in self.steps if st.kind == "setWeight"]
        if not weights or weights[-1] != full:
            self._step("setWeight", weight=full)
        if bake is None:
            names = [self._hook_template(h, "step").meta.name for h in hooks]
            self._step("analysis", templates=names, args=[])
            return
        self.phase_start[bake.id] = max(i for i, st in enumerate(self.steps) if st.kind == "setWeight")
        self._at_start(bake)
        self._pauses(bake, self.looks)
        self._at_end(bake)

    def _looks(self) -> dict[str, list[tuple[float, GateUse, int]]]:
        """Business-gate looks by phase id: (seconds into the phase, the gate, look number)."""
        out: dict[str, list[tuple[float, GateUse, int]]] = {}
        by_name = {p.name: p for p in self.plan.phases}
        for use in self.uses:
            gate = use.gate
            if not isinstance(gate, ir.BusinessGate):
                continue
            looks = gate_looks(gate, gate_windows(self.plan, gate))
            if not looks:
                self.warn("RL722", f"business gate `{gate.name}` has no look Argo Rollouts can schedule, so it "
                          "is not compiled", gate.span,
                          help="a look needs a canary stage below 100% with a written duration (`5% for 6h`); "
                               "an `until approved` or `hold` stage has no end to look at")
                continue
            for number, look in enumerate(looks, start=1):
                phase = by_name.get(look.stage)
                if phase is None:
                    continue
                out.setdefault(phase.id, []).append((look.time_s - phase.earliest_start_s, use, number))
        return out

    def _pauses(self, phase: Phase, looks: dict[str, list[tuple[float, GateUse, int]]]) -> None:
        """The phase's time as pauses, split at the business gates' looks, then a wait for a person if any."""
        elapsed = 0.0
        for at, use, number in sorted(looks.get(phase.id, []), key=lambda x: (x[0], x[1].gate.name)):
            if at - elapsed > 1e-6:
                self._step("pause", duration=kube.go_duration(at - elapsed))
                elapsed = at
            template = self._step_template(use)
            self._step("analysis", templates=[template], args=[{"name": "look", "value": str(number)}])
        if phase.duration_s is not None and phase.duration_s - elapsed > 1e-6:
            self._step("pause", duration=kube.go_duration(phase.duration_s - elapsed))
        if phase.open_ended:
            self._step("pause")

    def _step_template(self, use: GateUse) -> str:
        name = self.names.template(use.gate.name)
        if not any(t.meta.name == name for t in self.templates):
            self._template(use, "step")
        return name

    def _background(self, phase_start: dict[str, int]) -> None:
        """SLO, drift and repeated job gates, one background analysis, each gate starting at its `from` phase.

        The analysis runs until the Rollout completes, through a bake or a holdout; a gate that compares with
        stable is over at promotion (no stable traffic is left to compare with), so it stops after the
        measurements that fit before it, when the plan's time to promotion is bounded (RL758 otherwise).
        """
        compiled = [p for p in self.plan.phases if p.id in phase_start]
        first_phase: dict[str, Phase] = {}
        for use in self.uses:
            if isinstance(use.gate, ir.BusinessGate) or use.once:
                continue
            phase = next((p for p in compiled if use.gate.name in p.gates), None)
            if phase is not None:
                first_phase[use.gate.name] = phase
        if not first_phase:
            return
        earliest = min(first_phase.values(), key=lambda p: p.index)
        names = []
        post = [p for p in compiled if p.post_promotion]
        for use in self.uses:
            phase = first_phase.get(use.gate.name)
            if phase is None:
                continue
            delay = phase.earliest_start_s - earliest.earliest_start_s
            count = None
            active = [p for p in compiled if use.gate.name in p.gates]
            last = active[-1]
            gap = next((p for p in compiled if phase.index < p.index < last.index and p not in active
                        and self.weight_of(p) >= 100 and (p.duration_s or p.open_ended)
                        and compares_arms(use.gate)), None)
            if gap is not None:
                self.warn("RL758", f"gate `{use.gate.name}` compares with stable, which answers nothing in "
                          f"phase `{gap.name}` at 100%, but Argo Rollouts' background analysis keeps running it "
                          "there: its no-data results would pause the Rollout", use.gate.span,
                          label="compares with stable",
                          help="the background analysis cannot stop one gate for a phase and start it again: "
                               "compare with the training data (`vs training`), which needs no stable traffic, "
                               f"or leave out `{gap.name}`")
            if post and not last.post_promotion and use.gate.interval_s is not None:
                # active up to promotion only: stop after the measurements that fit before it
                if last.latest_end_s is None:
                    self.warn("RL758", f"gate `{use.gate.name}` keeps running after promotion, where it has no "
                              "stable traffic to compare with, and its no-data results pause the Rollout",
                              use.gate.span, label="compares with stable",
                              help="Argo Rollouts' background analysis cannot stop one gate at promotion, and "
                                   "this plan's time to promotion is open (an approval or a hold), so its "
                                   "measurements cannot be counted; give the stages durations, or drop the "
                                   "bake or holdout")
                else:
                    gate = use.gate
                    window = queries.slo_window_s(gate) if isinstance(gate, ir.SloGate) else \
                        (gate.interval_s if isinstance(gate, ir.DriftGate | ir.SrmGate) else 0.0)
                    span_s = last.latest_end_s - phase.earliest_start_s - window
                    count = max(math.floor(span_s / use.gate.interval_s + 1e-9) + 1, use.failure_limit + 1,
                                use.inconclusive_limit, 1)
            view = self._template(use, "background", initial_delay_s=delay)
            if count is not None:
                view.metrics[0].count = count
            names.append(view.meta.name)
        starting = phase_start.get(earliest.id, 0)
        if earliest.index == 0:
            starting = 0
        self.strategy_analysis = {"templates": names, "starting_step": starting or None}
        if any("canary-hash" in t.args for t in self.templates if t.role == "background"):
            self.background_args = [{"name": "canary-hash", "hash": "Latest"}]

    # -- blue-green and rolling ------------------------------------------------------------------------

    def _blue_green(self, bg: ir.BlueGreen) -> None:
        r = self.rollout
        if r.shadow is not None:
            self.warn("RL720", "Argo Rollouts' blue-green strategy has no traffic router, so the shadow phase "
                      "is not compiled", r.shadow.span,
                      help="mirror with a canary (`canary { ... }`, whose first stage can be the shadow), or "
                           "route with `rollout compile -t istio --per-stage`, whose shadow stage mirrors")
        for use in self.uses:
            if isinstance(use.gate, ir.BusinessGate):
                self.warn("RL722", f"business gate `{use.gate.name}` is not compiled: a blue-green switch has no "
                          "stable arm to compare with", use.gate.span,
                          help="gate a blue-green rollout on SLOs and drift, or use a canary")
        gates = [u for u in self.uses if not isinstance(u.gate, ir.BusinessGate)]
        preview = self.plan.phase("preview") if any(p.id == "preview" for p in self.plan.phases) else None
        bake = next((p for p in self.plan.phases if p.kind == "bake"), None)
        window_pre = (preview.duration_s or 0.0) if preview is not None else 0.0
        window_post = bake.duration_s or 0.0 if bake is not None else \
            (bg.scale_down_delay_s if bg.scale_down_delay_s is not None else 30.0)
        pre, post = [], []
        for use in gates:
            assert not isinstance(use.gate, ir.BusinessGate)
            every = use.gate.interval_s or 1.0  # a job gate without `every` runs once
            need = use.failure_limit + 1
            # the preview's analysis also carries gates of a shadow phase, which blue-green does not mirror (RL720)
            if any(use.gate.name in p.gates for p in self.plan.pre_promotion):
                view = self._template(use, "pre", count=max(math.ceil(window_pre / every - 1e-9), need))
                pre.append(view.meta.name)
            if bake is not None:
                if use.gate.name not in bake.gates:
                    continue  # the plan's comparisons end at promotion
            elif compares_arms(use.gate) or use.once:
                continue  # after the switch no stable traffic is left to compare with
            post.append(self._template(use, "post", count=max(math.ceil(window_post / every - 1e-9), need)).meta.name)
        # hooks: the preview begins with the pre-promotion analysis, the bake with the post-promotion one
        roles: tuple[tuple[Phase | None, list[str], Literal["pre", "post"]], ...] = (
            (preview, pre, "pre"), (bake, post, "post"))
        for phase, names, role in roles:
            if phase is not None:
                names += [self._hook_template(h, role).meta.name for h in self._hooks_at(phase, "phase-start")]
        if bake is None:
            post += [self._hook_template(h, "post").meta.name for h in self.rollout.pipeline
                     if h.point == "after-promotion"]
        if any("canary-hash" in t.args for t in self.templates):
            self.background_args = [{"name": "canary-hash", "hash": "Latest"}]
        auto = bg.promotion == "auto" and not (preview is not None and preview.approval)
        # The old version must outlive the post-promotion analysis, which Argo cancels at the scale-down.
        scale_down = self.plan.scale_down_after_s
        if bake is not None:
            scale_down = (bake.duration_s or 0.0) + (scale_down if scale_down is not None else 30.0)
        self.strategy = {
            "kind": "blue-green", "auto": auto,
            "auto_seconds": math.ceil(window_pre) if auto and window_pre else None,
            "scale_down": math.ceil(scale_down) if scale_down is not None else None,
            "pre": pre, "post": post,
        }

    def _rolling(self, rolling: ir.Rolling) -> None:
        def value(v: ir.SurgeValue) -> int | str:
            if v.unit == "pods":
                return int(v.value)
            p = kube.whole_percent(v.value)
            return f"{p}%" if p is not None else f"{v.value:g}%"

        surge, unavailable = value(rolling.max_surge), value(rolling.max_unavailable)
        if rolling.max_surge.value == 0 and rolling.max_unavailable.value == 0:
            self.error("RL730", "a rolling update with `max surge 0` and `max unavailable 0` can never replace a "
                       "pod", rolling.span, help="allow one extra pod: `max surge 1`")
        for use in self.uses:
            if isinstance(use.gate, ir.BusinessGate):
                self.warn("RL722", f"business gate `{use.gate.name}` is not compiled: a rolling update has no "
                          "stable arm to compare with", use.gate.span,
                          help="gate a rolling update on SLOs and drift, or use a canary")
        for c in self.rollout.consumers:
            if c.route is not None:
                self.warn("RL726", f"consumer `{c.name}` cannot be pinned to one version during a rolling update",
                          c.route.span, help="a rolling update has no second version to route to; use a canary "
                                             "or a blue-green switch to move consumers on their own")
        names = [self._template(u, "background").meta.name for u in self.uses
                 if not isinstance(u.gate, ir.BusinessGate) and not u.once]
        self.strategy_analysis = {"templates": names, "starting_step": None} if names else {}
        if any("canary-hash" in t.args for t in self.templates if t.role == "background"):
            self.background_args = [{"name": "canary-hash", "hash": "Latest"}]
        self.strategy = {"kind": "rolling", "max_surge": surge, "max_unavailable": unavailable}
        phase = next((p for p in self.plan.pre_promotion if p.kind == "rolling"), None)
        post = any(p.kind == "bake" for p in self.plan.phases) or any(
            h.point == "after-promotion" for h in self.rollout.pipeline)
        if phase is not None and (phase.approval or self._has_points(phase) or post):
            # Steps on a rolling update: what runs as it begins, every pod updated, what runs at its end; then
            # a wait for a person (until someone promotes, an abort still brings the old pods back), the bake.
            self.phase_start[phase.id] = 0
            self._at_start(phase)
            self._step("setWeight", weight=100)
            self._at_end(phase)
            if phase.approval:
                self._step("pause")
            self._after_promotion()

    def _scale_down(self) -> None:
        """`scale down after`: how long the old version stays up once promoted (a canary's is counted from the
        end of its steps, so from the end of the bake; a blue-green's is set with its post-promotion analysis)."""
        after = self.rollout.scale_down
        if after is None or self.rollout.strategy is None:
            return
        if isinstance(self.rollout.strategy, ir.Canary):
            self.strategy["scale_down"] = math.ceil(after.after_s)
        elif isinstance(self.rollout.strategy, ir.Rolling):
            self.warn("RL757", "`scale down after` is not compiled: a rolling update replaces the old pods as it "
                      "goes, so none are left to scale down later", after.span,
                      help="Argo Rollouts keeps old pods up after promotion only with a traffic router: use a "
                           "canary or a blue-green switch to keep the old version warm")

    def _on_rollback(self) -> None:
        for h in self.rollout.pipeline:
            if h.point == "on-rollback":
                self.diagnostics.append(Diagnostic(
                    Severity.NOTE, "RL760", f"Argo Rollouts runs nothing when it aborts: hook `{h.name}` runs in "
                    "the CI rollback job (`rollout compile -t gitlab|github`), not when a gate aborts the Rollout",
                    h.span, help="to act on every abort, subscribe to the on-rollout-aborted notification"))

    def _unplaced(self) -> None:
        """Hooks and one-run job gates at a point of the plan the Rollout has no step for."""
        placed = {t.meta.annotations.get(f"{kube.LABEL_PREFIX}/hook") for t in self.templates}
        for h in self.rollout.pipeline:
            if h.point in ("phase-start", "phase-end", "after-promotion") and h.name not in placed:
                where = "after promotion" if h.point == "after-promotion" else \
                    f"at the {'start' if h.point == 'phase-start' else 'end'} of `{h.phase}`"
                kind = self.rollout.strategy.kind if self.rollout.strategy is not None else ""
                self.warn("RL759", f"hook `{h.name}` is not compiled: a {kind} Rollout has no step {where}",
                          h.phase_span or h.span,
                          help="a blue-green Rollout runs hooks as its preview and its bake begin (analyses); "
                               "move the hook to one of those points, or run it from CI before traffic moves")
        gated = {m.name for t in self.templates for m in t.metrics}
        for u in self.uses:
            if u.once and dns_label(u.gate.name) not in gated:
                self.warn("RL759", f"job gate `{u.gate.name}` is not compiled: the Rollout has no step where its "
                          "phase begins", u.gate.span,
                          help="run it again and again with `every D`, which the analysis can hold, or give it "
                               "`from` a phase the target compiles")

    def _holdout(self) -> None:
        h = self.rollout.holdout
        if h is None:
            return
        span = h.span
        if isinstance(self.rollout.strategy, ir.Canary) and h.role == "stable":
            weight = kube.whole_percent(100.0 - h.percent)
            if weight is None:
                self.error("RL710", f"Argo Rollouts and Istio weigh traffic in whole percent, not "
                           f"{100 - h.percent:g}%", span, help=f"write `holdout {max(round(h.percent), 1)}% ...`")
                return
            holdout = next((p for p in self.plan.phases if p.kind == "holdout"), None)
            start = self._step("setWeight", weight=weight)
            if holdout is not None:
                self.phase_start[holdout.id] = start
                self._at_start(holdout)
                self._pauses(holdout, self.looks)  # with the looks of gates `from holdout`
                self._at_end(holdout)
            else:
                self._step("pause", duration=kube.go_duration(h.duration_s))
            self.warn("RL713", f"Argo Rollouts has no phase after promotion: the holdout becomes a last step at "
                      f"{weight}% for {duration_text(h.duration_s)}, before the Rollout completes", span,
                      help="the gates keep running through it and can still roll back; promote by hand "
                           "(`kubectl argo rollouts promote`) to end it early")
            return
        kind = self.rollout.strategy.kind if self.rollout.strategy is not None else ""
        self.warn("RL713", f"the holdout is not compiled: a {kind} Rollout cannot keep a share of traffic on "
                  "stable after promotion", span,
                  help="a holdout needs a traffic split: use a canary, or keep the slice with your own routing")

    # -- the evaluator ---------------------------------------------------------------------------------

    def _evaluator_image(self) -> None:
        import re

        flag = self.unit.options.evaluator_image
        source = self.rollout.metrics_source
        gate = next(u.gate for u in self.uses if u.provider == "job")
        if flag is not None:
            if not re.fullmatch(r"[^@\s]+@" + DIGEST, flag):
                self.error("RL715", f"--evaluator-image `{flag}` is not pinned by a sha256 digest", None,
                           help="pass IMAGE@sha256:<64 hex digits>, as pinned images are everywhere else")
                return
            self.evaluator = flag
            return
        if source is None or source.evaluator_image is None:
            self.error("RL715", f"gate `{gate.name}` runs `rollout evaluate` in the cluster, but no evaluator "
                       "image is named", gate.span,
                       help='name it in the metrics block, `evaluator "registry.example.com/ml/rolloutlang" @ '
                            'sha256:...`, or pass --evaluator-image IMAGE@sha256:...')
            return
        pin = source.evaluator_pin
        if pin is None or pin.digest is None or not re.fullmatch(DIGEST, pin.digest):
            self.error("RL715", "the evaluator image is not pinned by a sha256 digest", source.evaluator_span,
                       label="mutable" if pin is not None and pin.tag else "no digest",
                       help="pin it: `evaluator \"...\" @ sha256:<64 hex digits>`; a tag can change under a "
                            "running rollout")
            return
        self.evaluator = f"{source.evaluator_image}@{pin.digest}"

    # -- upstream rules on what was built ---------------------------------------------------------------

    def _validate(self) -> None:
        """Argo's controller and analysis rules (upstream-facts b.2-b.8) on the generated objects."""
        for problem, span in validate_rollout(self.steps, self.managed_routes, self.templates,
                                              self.strategy, self.rollout.span):
            self.error("RL745", f"the generated objects break an Argo Rollouts rule: {problem}", span,
                       help="this is a bug in rolloutlang; please report it with the spec")

    # -- rendering -----------------------------------------------------------------------------------

    def render(self, target: Target) -> list[Output]:
        r = self.rollout
        names = self.names
        out: list[Output] = []
        port = (r.serving.port if r.serving is not None and r.serving.port else None) or kube.DEFAULT_PORT

        def emit(kind: str, name: str, template: str, **ctx: Any) -> None:
            text = target.render(template, source_path=self.unit.source_path, **ctx)
            out.append(Output(kube.object_path(kind, name), text))

        if self.needs_evaluator:
            sources = _spec_sources(self.unit)
            meta = kube.metadata(names, names.config_map, r, kube.WAVE_SUPPORT)
            emit("ConfigMap", names.config_map, "configmap.yaml.j2", meta=meta, files=sources)
            for kind, template in (("ServiceAccount", "serviceaccount.yaml.j2"), ("Role", "role.yaml.j2"),
                                   ("RoleBinding", "rolebinding.yaml.j2")):
                meta = kube.metadata(names, names.evaluator, r, kube.WAVE_SUPPORT)
                emit(kind, names.evaluator, template, meta=meta, rollout_name=names.rollout)
        services = [names.service]
        if isinstance(r.strategy, ir.Canary):
            services += [names.stable_service, names.canary_service]
        elif isinstance(r.strategy, ir.BlueGreen):
            services += [names.preview_service]
        for svc in services:
            meta = kube.metadata(names, svc, r, kube.WAVE_REFERENCED)
            emit("Service", svc, "service.yaml.j2", meta=meta, selector={kube.APP_LABEL: names.service}, port=port)
        job = self._job_context() if self.needs_evaluator else None
        order = {g.name: i for i, g in enumerate(r.gates)}
        order.update({h.name: len(r.gates) + i for i, h in enumerate(r.pipeline)})
        roles = {"background": 0, "pre": 0, "step": 1, "post": 2}

        def written(view: TemplateView) -> tuple[int, int]:
            annotations = view.meta.annotations
            name = annotations.get(f"{kube.LABEL_PREFIX}/gate") or annotations.get(f"{kube.LABEL_PREFIX}/hook", "")
            return order.get(name, 0), roles[view.role]

        for view in sorted(self.templates, key=written):
            emit("AnalysisTemplate", view.meta.name, "analysistemplate.yaml.j2", view=view, job=job)
        emit("Rollout", names.rollout, "rollout.yaml.j2", **self._rollout_context(port))
        serving = r.serving
        if serving is not None and serving.replicas_min is not None and serving.replicas_max is not None \
                and serving.replicas_min != serving.replicas_max:
            if serving.resources is None or serving.resources.cpu is None:
                self.warn("RL728", "the autoscaler scales on CPU utilisation, which needs a CPU request",
                          serving.span, help="add `resources cpu 2` (per replica) to `serving`")
            meta = kube.metadata(names, names.rollout, r, kube.WAVE_AFTER)
            emit("HorizontalPodAutoscaler", names.rollout, "hpa.yaml.j2", meta=meta, rollout_name=names.rollout,
                 min_replicas=serving.replicas_min, max_replicas=serving.replicas_max,
                 utilization=HPA_CPU_UTILIZATION)
        return out

    def _job_context(self) -> dict[str, Any]:
        return {"image": self.evaluator, "mount": SPEC_MOUNT, "config_map": self.names.config_map,
                "service_account": self.names.evaluator,
                "mounts": [{"key": f["key"], "path": f["path"]} for f in _spec_sources(self.unit)]}

    def _rollout_context(self, port: int) -> dict[str, Any]:
        r = self.rollout
        names = self.names
        meta = kube.metadata(names, names.rollout, r, kube.WAVE_ROLLOUT)
        stable, candidate = r.model("stable"), r.model("candidate")
        if stable is not None:
            meta.annotations[f"{kube.LABEL_PREFIX}/stable-model"] = stable.name
            meta.annotations[f"{kube.LABEL_PREFIX}/stable-model-version"] = stable.version
            if stable.pin is not None and stable.pin.digest:
                meta.annotations[f"{kube.LABEL_PREFIX}/stable-model-digest"] = stable.pin.digest
        if r.owner:
            meta.annotations[f"{kube.LABEL_PREFIX}/owner"] = r.owner
        channels = _channels(r)  # lowering admits channel names only (RL291): no `;`, no line break
        if channels:
            joined = ";".join(channels)
            for trigger in NOTIFY_TRIGGERS:
                meta.annotations[f"notifications.argoproj.io/subscribe.{trigger}.{NOTIFY_SERVICE}"] = joined
        pod_labels = {kube.APP_LABEL: names.service}
        pod_annotations: dict[str, str] = {}
        env: list[tuple[str, str]] = []
        if candidate is not None:
            version_label = kube.label_value(candidate.version)
            if version_label is not None:
                pod_labels[kube.MODEL_VERSION_LABEL] = version_label
            pod_annotations[f"{kube.LABEL_PREFIX}/model"] = candidate.name
            pod_annotations[f"{kube.LABEL_PREFIX}/model-version"] = candidate.version
            env += [("MODEL_NAME", candidate.name), ("MODEL_VERSION", candidate.version)]
            if candidate.pin is not None and candidate.pin.digest:
                pod_annotations[f"{kube.LABEL_PREFIX}/model-digest"] = candidate.pin.digest
                env.append(("MODEL_DIGEST", candidate.pin.digest))
            if candidate.registry_uri:
                pod_annotations[f"{kube.LABEL_PREFIX}/model-source"] = candidate.registry_uri
                env.append(("MODEL_URI", candidate.registry_uri))
        serving = r.serving
        image = ""
        if serving is not None and serving.image and serving.image_pin is not None and serving.image_pin.digest:
            image = f"{serving.image}@{serving.image_pin.digest}"
        elif serving is not None and serving.image:
            image = serving.image
        resources = serving.resources if serving is not None else None
        requests: dict[str, str] = {}
        limits: dict[str, str] = {}
        if resources is not None:
            if resources.cpu is not None:
                requests["cpu"] = kube.cpu_quantity(resources.cpu)
            if resources.memory_bytes is not None:
                requests["memory"] = limits["memory"] = kube.memory_quantity(resources.memory_bytes)
            if resources.gpu:
                limits["nvidia.com/gpu"] = str(resources.gpu)
        warmup = math.ceil(serving.warmup_s) if serving is not None and serving.warmup_s else None
        replicas = None
        if serving is not None and serving.replicas_min is not None and serving.replicas_min == serving.replicas_max:
            replicas = serving.replicas_min
        return {
            "meta": meta, "names": names, "replicas": replicas, "port": port,
            "selector": {kube.APP_LABEL: names.service}, "pod_labels": pod_labels,
            "pod_annotations": pod_annotations, "container": queries.CONTAINER, "image": image, "env": env,
            "requests": requests, "limits": limits, "warmup": warmup,
            "progress_deadline": warmup + 600 if warmup and warmup + 60 > 600 else None,
            "strategy": self.strategy, "steps": self.steps, "managed_routes": self.managed_routes,
            "analysis": self.strategy_analysis, "analysis_args": self.background_args,
            "arm_label": queries.ARM_POD_LABEL, "canary_arm": queries.CANARY, "stable_arm": queries.STABLE,
            "stable_subset": kube.STABLE_SUBSET, "canary_subset": kube.CANARY_SUBSET,
            "primary_route": kube.PRIMARY_ROUTE,
        }


def _channels(rollout: ir.Rollout) -> list[str]:
    out: list[str] = []
    for rule in rollout.rules:
        for a in rule.actions:
            if a.kind == "notify" and a.channel and a.channel not in out:
                out.append(a.channel)
    return out


def _spec_entry(source_path: str) -> str:
    """The spec's path under the mount: its repository path, or `spec.rollout` for one without a safe one."""
    from pathlib import PurePosixPath

    p = PurePosixPath(source_path)
    if p.is_absolute() or ".." in p.parts or not source_path or source_path.startswith("<") or "{{" in source_path \
            or not all(part and part[0] not in "-." for part in p.parts):
        return "spec.rollout"
    return source_path


def _spec_sources(unit: CompileInput) -> list[dict[str, str]]:
    """The spec and the files it imports, as ConfigMap keys and the paths they are mounted at."""
    files = list(unit.sources) or [(unit.source_path, "")]
    out = []
    for i, (path, text) in enumerate(files):
        mounted = _spec_entry(path) if i == 0 else path
        out.append({"key": f"spec-{i}.rollout", "path": mounted, "text": text})
    return out


def validate_rollout(steps: Sequence[Step], managed_routes: Sequence[str], templates: Sequence[TemplateView],
                     strategy: dict[str, Any], span: Span) -> list[tuple[str, Span]]:
    """The rules Argo enforces beyond the CRD schema, on the view-models: (problem, where) pairs."""
    problems: list[tuple[str, Span]] = []
    if len(set(managed_routes)) != len(managed_routes):
        problems.append(("managedRoutes repeat a name", span))
    for i, step in enumerate(steps):
        if step.kind == "setWeight" and not 0 <= step.values["weight"] <= 100:  # S3
            problems.append((f"step {i} setWeight {step.values['weight']} is outside 0..100", span))
        if step.kind in ("setHeaderRoute", "setMirrorRoute") and step.values["name"] not in managed_routes:
            problems.append((f"step {i} {step.kind} `{step.values['name']}` is not in managedRoutes (S10, S11)",
                             span))
        if step.kind == "setMirrorRoute" and not step.values.get("remove"):
            pct = step.values.get("percentage")
            if pct is None or not 0 <= pct <= 100:
                problems.append((f"step {i} mirrors {pct}% of requests", span))
        if step.kind == "setCanaryScale" and "weight" in step.values and not 0 <= step.values["weight"] <= 100:
            problems.append((f"step {i} setCanaryScale weight {step.values['weight']} is outside 0..100", span))
        if step.kind == "pause" and step.values.get("duration", "0s").startswith("-"):  # S4
            problems.append((f"step {i} pauses for a negative time", span))
    seen_metrics: dict[str, set[str]] = {}
    for t in templates:
        for m in t.metrics:
            group = seen_metrics.setdefault(t.role, set())
            if t.role != "step" and m.name in group:  # R34: metric names are unique in one analysis run
                problems.append((f"two metrics named `{m.name}` in the {t.role} analysis", t.span))
            group.add(m.name)
            finite = t.role in ("step", "pre", "post")
            if finite and m.interval and not m.count:  # R38
                problems.append((f"metric `{m.name}` of a {t.role} analysis runs indefinitely", t.span))
            if m.count is not None and m.count > 1 and not m.interval:  # M5
                problems.append((f"metric `{m.name}` has count {m.count} but no interval", t.span))
            if m.count is not None and m.count < m.failure_limit:  # M4
                problems.append((f"metric `{m.name}` has count {m.count} < failureLimit {m.failure_limit}", t.span))
            if m.count is not None and m.inconclusive_limit is not None and m.count < m.inconclusive_limit:
                problems.append((f"metric `{m.name}` has count {m.count} < inconclusiveLimit "
                                 f"{m.inconclusive_limit}", t.span))
            for arg in ("canary-hash", "look"):
                if f"{{{{args.{arg}}}}}" in (m.query + " ".join(m.job.get("args", []))) and arg not in t.args:
                    problems.append((f"metric `{m.name}` uses args.{arg} but the template does not declare it (R37)",
                                     t.span))
    return problems
