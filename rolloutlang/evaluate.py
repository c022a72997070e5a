"""`rollout evaluate`: judge one gate in production from Prometheus, for Argo's job metrics and for people.

The gates Prometheus alone cannot judge are the business gates (a
statistical test between the arms, with alpha spent over looks), the drift
gates (a divergence between two binned distributions) and the SLO gates that
compare the candidate with stable (`p99 latency change < +10%`) or need
`min samples`.  This module reads the numbers with the conventions of
:mod:`rolloutlang.queries`, applies the spec's rule, the one the checks size
(:func:`rolloutlang.stats.decide` for business gates,
:func:`rolloutlang.stats.slo_window` for SLO gates), and returns an
:class:`Evaluation` whose verdict is ``pass``, ``fail`` or ``inconclusive``
(a business gate that has shown what it tests, ``promote-allowed`` in the
statistics, passes).  SLO threshold gates can be evaluated too, with the same
query the generated AnalysisTemplate runs.

Stateless: a look at a business gate recomputes the earlier looks'
information from Prometheus history instead of remembering it.  The looks
are the plan's (:func:`rolloutlang.stats.gates.gate_looks`); look ``k``
runs now, so the gate started ``offset_k`` ago and look ``j`` happened
``offset_k - offset_j`` ago, on the plan's schedule.  A manual pause between
two looks shifts that reconstruction by its length; Lan-DeMets spending stays
valid for any look times chosen without looking at the data.

**No data is never a pass.**  An empty result, a NaN, an arm without
labels, or a drift histogram below `min samples` makes the verdict
``inconclusive``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rolloutlang import ir, queries
from rolloutlang.prometheus import PrometheusError, Sample, Unreachable

if TYPE_CHECKING:
    from rolloutlang.plan import Plan
    from rolloutlang.stats import ArmData as stats_ArmData
    from rolloutlang.stats import Estimate as stats_Estimate

Verdict = Literal["pass", "fail", "inconclusive"]
EXIT_CODES: dict[Verdict, int] = {"pass": 0, "fail": 1, "inconclusive": 3}
EVALUATION_FORMAT_VERSION = 1

SUPPORTED_DRIFT = queries.EVALUATED_DRIFT

Fetch = Callable[[str, float], list[Sample]]


class EvaluationError(Exception):
    """The gate cannot be evaluated as asked (a usage problem, not a verdict)."""


@dataclass
class QueryRecord:
    """One query the evaluation ran, for the output: what, for which arm, at what time, and the answer."""

    what: str
    arm: str
    at: float
    query: str
    result: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "arm": self.arm, "at": iso_time(self.at), "query": self.query, "result": self.result}


@dataclass
class Evaluation:
    """The verdict on one gate at one moment, and the numbers behind it."""

    rollout: str
    gate: str
    kind: str
    verdict: Verdict
    at: float
    reason: str
    statistics: dict[str, Any] = field(default_factory=dict)
    queries: list[QueryRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": EVALUATION_FORMAT_VERSION,
            "rollout": self.rollout,
            "gate": self.gate,
            "kind": self.kind,
            "verdict": self.verdict,
            "at": iso_time(self.at),
            "reason": self.reason,
            "statistics": {k: _json_number(v) for k, v in self.statistics.items()},
            "notes": list(self.notes),
            "queries": [q.to_json() for q in self.queries],
        }


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    return value


def iso_time(t: float) -> str:
    """A unix time in RFC 3339, UTC, with milliseconds only when it has them."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) + (f"{t % 1:.3f}"[1:] if t % 1 else "")


class _Reader:
    """Runs queries for one evaluation and keeps a record of each."""

    def __init__(self, fetch: Fetch, site: queries.Site) -> None:
        self.fetch = fetch
        self.site = site
        self.records: list[QueryRecord] = []

    def run(self, what: str, text: str, arm: str, at: float, window_s: float | None = None,
            quantile: float | None = None) -> list[Sample]:
        promql = queries.fill(text, self.site, arm, window_s, quantile)
        samples = self.fetch(promql, at)
        self.records.append(QueryRecord(what, arm, at, promql,
                                        [{"labels": s.labels, "value": _json_number(s.value)} for s in samples]))
        return samples

    def scalar(self, what: str, text: str, arm: str, at: float, window_s: float | None = None,
               quantile: float | None = None) -> float | None:
        """One number, or None for no data (an empty result, NaN, or more than one series)."""
        samples = self.run(what, text, arm, at, window_s, quantile)
        if len(samples) != 1 or math.isnan(samples[0].value):
            return None
        return samples[0].value


# -- the entry point ---------------------------------------------------------------------------------


def evaluate_gate(rollout: ir.Rollout, plan: Plan, gate_name: str, fetch: Fetch, at: float, *,
                  look: int | None = None, pod_hash: str | None = None, start: float | None = None) -> Evaluation:
    """Evaluate one gate of a rollout at unix time ``at``.

    Args:
        look: a business gate's look, 1-based (default: its last look).
        pod_hash: the candidate's pod-template hash, for queries that select pods (``$pods``).
        start: a business gate's start time, when known (otherwise reconstructed from the look).

    Raises:
        EvaluationError: no such gate, an unsupported statistic, a look out of range,
            a query Prometheus rejects, or a placeholder without a value.
    """
    gate = rollout.gate(gate_name)
    if gate is None:
        from rolloutlang.diagnostics import did_you_mean

        hint = did_you_mean(gate_name, [g.name for g in rollout.gates])
        raise EvaluationError(f"rollout `{rollout.name}` has no gate `{gate_name}`" + (f"; {hint}" if hint else ""))
    reader = _Reader(fetch, queries.site(rollout, pod_hash))
    try:
        if isinstance(gate, ir.SloGate):
            result = _slo(rollout, gate, reader, at)
        elif isinstance(gate, ir.DriftGate):
            result = _drift(rollout, gate, reader, at)
        elif isinstance(gate, ir.SrmGate):
            raise EvaluationError(f"`rollout evaluate` does not judge sample-ratio gate `{gate.name}` yet: the "
                                  "split in force is the Rollout's, which a job cannot read")
        elif isinstance(gate, ir.JobGate):
            raise EvaluationError(f"gate `{gate.name}` is a job gate: it runs its own "
                                  f"{'command' if gate.command is not None else 'URL'}, in the cluster where the "
                                  "rollout runs (`rollout compile -t argo`), not from Prometheus")
        else:
            result = _business(rollout, plan, gate, reader, at, look, start)
    except queries.MissingValue as exc:
        hint = {"pods": "pass the candidate's pod-template hash with --canary-hash",
                "namespace": "the rollout has no `namespace`"}.get(exc.name, "")
        raise EvaluationError(f"the query of gate `{gate.name}` uses ${exc.name}" + (f": {hint}" if hint else ""))\
            from None
    except Unreachable as exc:
        result = Evaluation(rollout.name, gate.name, gate.kind, "inconclusive", at, f"no answer from Prometheus: {exc}")
    except PrometheusError as exc:
        raise EvaluationError(f"Prometheus rejected a query of gate `{gate.name}`: {exc}") from None
    result.queries = reader.records
    return result


# -- SLO gates ---------------------------------------------------------------------------------------


REQUESTS = "sum(increase(istio_requests_total{$istio}[$window]))"


def _slo_window(rollout: ir.Rollout, gate: ir.SloGate, reader: _Reader, end: float
                ) -> tuple[Verdict, str, dict[str, Any]]:
    """One measuring window of an SLO gate: its outcome, why, and the numbers."""
    from rolloutlang import stats

    text, _ = queries.slo_query(rollout, gate)
    quantile = gate.percentile / 100.0 if gate.percentile is not None else None
    window_s = queries.slo_window_s(gate)
    value = reader.scalar(gate.signal, text, queries.CANARY, end, window_s, quantile)
    stable = None
    if gate.comparison == "change":
        stable = reader.scalar(gate.signal, text, queries.STABLE, end, window_s, quantile)
    counts: list[float | None] = [None, None]
    if gate.min_samples is not None:
        arms = (queries.CANARY, queries.STABLE) if gate.comparison == "change" else (queries.CANARY,)
        for i, arm in enumerate(arms):
            counts[i] = reader.scalar("requests", REQUESTS, arm, end, window_s)
    numbers: dict[str, Any] = {"value": value}
    if gate.comparison == "change":
        numbers["stable_value"] = stable
    if gate.min_samples is not None:
        numbers.update(candidate_requests=counts[0], stable_requests=counts[1])
    outcome = stats.slo_window(gate, stats.SloWindow(value, stable, counts[0], counts[1]))
    if outcome == "inconclusive":
        why = ("the query returned no single number (no data, NaN or several series)"
               if value is None or (gate.comparison == "change" and stable is None)
               else f"fewer than {gate.min_samples} requests in the window")
        return "inconclusive", why, numbers
    assert value is not None
    verb = "meets" if outcome == "pass" else "breaches"
    if gate.comparison == "change":
        assert stable is not None
        change = value / stable - 1.0 if gate.relative else value - stable
        numbers["change"] = change
        return ("pass" if outcome == "pass" else "fail"), \
            f"change {change:+.6g} against stable {verb} {gate.op} {gate.threshold:+g}", numbers
    return ("pass" if outcome == "pass" else "fail"), f"{value:.6g} {verb} {gate.op} {gate.threshold:g}", numbers


def _slo(rollout: ir.Rollout, gate: ir.SloGate, reader: _Reader, at: float) -> Evaluation:
    """The gate over its last `fail after N` windows: it fails when each of them breached (as drift gates do)."""
    windows = [_slo_window(rollout, gate, reader, at - k * gate.interval_s) for k in range(gate.failure_limit)]
    verdict, reason, numbers = windows[0]
    stats_out: dict[str, Any] = {**numbers, "threshold": gate.threshold, "op": gate.op,
                                 "comparison": gate.comparison}
    if gate.comparison == "change":
        stats_out["relative"] = gate.relative
    if gate.min_samples is not None:
        stats_out["min_samples"] = gate.min_samples
    if len(windows) > 1:
        stats_out["windows"] = [w[0] for w in windows]
        if verdict == "fail" and any(w[0] != "fail" for w in windows):
            breaches = sum(1 for w in windows if w[0] == "fail")
            verdict = "pass"
            reason += f", in {breaches} of the last {len(windows)} windows (`fail after {gate.failure_limit}`)"
    return Evaluation(rollout.name, gate.name, "slo", verdict, at, reason, stats_out)


# -- drift gates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One drift measurement: the statistic over the `every` before ``end`` (None without enough data)."""

    end: float
    value: float | None
    candidate_total: float
    reference_total: float
    reason: str = ""
    outcome: Verdict = "inconclusive"


def _histogram(samples: Sequence[Sample], by: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in samples:
        key = s.labels.get(by)
        if key is None or math.isnan(s.value):
            continue
        out[key] = out.get(key, 0.0) + s.value
    return out


def _le(bound: str) -> float:
    try:
        return float(bound)
    except ValueError:
        return math.inf


def drift_counts(candidate: dict[str, float], reference: dict[str, float], categorical: bool, bins: int
                 ) -> tuple[list[float], list[float]]:
    """Per-bin counts of both sides, on common bins.

    Categories: one bin per category either side has, in sorted order.
    Histograms: the union of both sides' ``le`` bounds (a side missing a bound
    carries its previous cumulative count), rebinned to at most ``bins`` bins
    of equal reference mass (:func:`rolloutlang.stats.drift.rebin_cumulative`).
    """
    if categorical:
        keys = sorted(set(candidate) | set(reference))
        return [candidate.get(k, 0.0) for k in keys], [reference.get(k, 0.0) for k in keys]
    from rolloutlang.stats import drift

    bounds = sorted(set(candidate) | set(reference), key=_le)

    def cumulative(side: dict[str, float]) -> list[float]:
        out, last = [], 0.0
        for b in bounds:
            last = side.get(b, last)
            out.append(last)
        return out

    cand, ref = drift.rebin_cumulative(cumulative(candidate), cumulative(reference), bins)
    return [float(x) for x in cand], [float(x) for x in ref]


def _drift_window(rollout: ir.Rollout, gate: ir.DriftGate, reader: _Reader, end: float) -> Window:
    from rolloutlang import stats

    categorical = queries.categorical(rollout, gate.target)
    by = "category" if categorical else "le"
    text, _ = queries.distribution_query(rollout, gate)
    candidate = _histogram(reader.run("distribution", text, queries.CANARY, end, gate.interval_s), by)
    if gate.reference == "training":
        ref_text, _ = queries.distribution_query(rollout, gate, reference=True)
        reference = _histogram(reader.run("reference", ref_text, queries.TRAINING, end), by)
    else:
        reference = _histogram(reader.run("distribution", text, queries.STABLE, end, gate.interval_s), by)
    if not candidate or not reference:
        side = "candidate" if not candidate else "reference"
        return Window(end, None, 0.0, 0.0, f"no {side} distribution in Prometheus")
    cand, ref = drift_counts(candidate, reference, categorical, gate.bins)
    n_cand, n_ref = sum(cand), sum(ref)
    floor = max(gate.min_samples or 1, 1)
    values, codes = stats.drift_windows(gate, cand, ref)
    outcome = stats.OUTCOMES[int(codes)]
    if outcome == "inconclusive":
        why = (f"{min(n_cand, n_ref):.0f} samples, below the {floor} the gate needs"
               if min(n_cand, n_ref) < floor else "an empty distribution")
        return Window(end, None, n_cand, n_ref, why)
    return Window(end, float(values), n_cand, n_ref, outcome="pass" if outcome == "pass" else "fail")


def _drift(rollout: ir.Rollout, gate: ir.DriftGate, reader: _Reader, at: float) -> Evaluation:
    if gate.statistic not in SUPPORTED_DRIFT:
        raise EvaluationError(f"`rollout evaluate` cannot compute `{gate.statistic}` from Prometheus histograms "
                              f"(it computes {', '.join(SUPPORTED_DRIFT)})")
    assert gate.threshold is not None
    windows = [_drift_window(rollout, gate, reader, at - k * gate.interval_s) for k in range(gate.failure_limit)]
    latest = windows[0]
    stats: dict[str, Any] = {
        "statistic": gate.statistic, "value": latest.value, "threshold": gate.threshold, "op": gate.op,
        "candidate_samples": latest.candidate_total, "reference_samples": latest.reference_total,
        "reference": gate.reference, "window_s": gate.interval_s,
        "windows": [w.value for w in windows],
    }
    name = f"{gate.statistic}({gate.target})"
    if latest.value is None:
        return Evaluation(rollout.name, gate.name, "drift", "inconclusive", at, latest.reason, stats)
    if latest.outcome == "pass":
        return Evaluation(rollout.name, gate.name, "drift", "pass", at,
                          f"{name} = {latest.value:.4g} meets {gate.op} {gate.threshold:g}", stats)
    breaches = sum(1 for w in windows if w.outcome == "fail")
    if breaches < len(windows):
        return Evaluation(rollout.name, gate.name, "drift", "pass", at,
                          f"{name} = {latest.value:.4g} breaches {gate.op} {gate.threshold:g}, in {breaches} of the "
                          f"last {len(windows)} windows (`fail after {gate.failure_limit}`)", stats)
    return Evaluation(rollout.name, gate.name, "drift", "fail", at,
                      f"{name} = {latest.value:.4g} breaches {gate.op} {gate.threshold:g}"
                      + (f" in each of the last {len(windows)} windows" if len(windows) > 1 else ""), stats)


# -- business gates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmData:
    """One arm's labelled data at a look: count, mean, and variance of one observation."""

    n: float
    mean: float
    variance: float


@dataclass(frozen=True)
class LookData:
    """Both arms at one look and the z-statistic of candidate minus stable."""

    at: float
    candidate: ArmData | None
    stable: ArmData | None

    @property
    def usable(self) -> bool:
        return (self.candidate is not None and self.stable is not None and self.candidate.n > 0
                and self.stable.n > 0 and self.standard_error > 0)

    @property
    def difference(self) -> float:
        assert self.candidate is not None and self.stable is not None
        return self.candidate.mean - self.stable.mean

    @property
    def standard_error(self) -> float:
        if self.candidate is None or self.stable is None or self.candidate.n <= 0 or self.stable.n <= 0:
            return math.nan
        return math.sqrt(self.candidate.variance / self.candidate.n + self.stable.variance / self.stable.n)

    @property
    def information(self) -> float:
        se = self.standard_error
        return 1.0 / se**2 if se > 0 and math.isfinite(se) else 0.0

    @property
    def z(self) -> float:
        return self.difference / self.standard_error


def _arm(metric: ir.LabelMetric, parts: dict[str, float | None]) -> ArmData | None:
    n = parts.get("events")
    if n is None or n <= 0:
        return None
    if metric.kind == "binary":
        positives = parts.get("positives")
        if positives is None:
            return None
        p = min(max(positives / n, 0.0), 1.0)
        return ArmData(n, p, p * (1.0 - p))
    total, squares = parts.get("values"), parts.get("squares")
    if total is None or squares is None or n < 2:
        return None
    mean = total / n
    variance = max((squares - n * mean * mean) / (n - 1.0), 0.0)
    return ArmData(n, mean, variance)


def _read_look(rollout: ir.Rollout, metric: ir.LabelMetric, reader: _Reader, start: float, at: float) -> LookData:
    window = at - start
    if window <= 0:
        return LookData(at, None, None)
    arms: dict[str, ArmData | None] = {}
    for arm in (queries.CANARY, queries.STABLE):
        parts: dict[str, float | None] = {}
        for part in queries.label_parts(metric):
            text, _ = queries.label_query(rollout, metric, part)
            parts[part] = reader.scalar(f"{metric.name} {part}", text, arm, at, window)
        arms[arm] = _arm(metric, parts)
    return LookData(at, arms[queries.CANARY], arms[queries.STABLE])


def _kernel_arm(arm: ArmData, metric: ir.LabelMetric) -> stats_ArmData:
    """The counts of one arm as the statistics kernel reads them."""
    from rolloutlang import stats

    if metric.kind == "binary":
        return stats.ArmData(units=arm.n, total=arm.mean * arm.n)
    # Sum and sum of squares recovered from the mean and the (n - 1) variance.
    return stats.ArmData(units=arm.n, total=arm.mean * arm.n,
                         total_squares=arm.variance * (arm.n - 1.0) + arm.n * arm.mean * arm.mean)


def _estimate(look: LookData, gate: ir.BusinessGate, metric: ir.LabelMetric) -> stats_Estimate:
    from rolloutlang import stats

    if look.candidate is None or look.stable is None:
        return stats.Estimate(math.nan, math.inf)
    return stats.estimate([(_kernel_arm(look.stable, metric), _kernel_arm(look.candidate, metric))],
                          relative=gate.relative)


def _business(rollout: ir.Rollout, plan: Plan, gate: ir.BusinessGate, reader: _Reader, at: float,
              look: int | None, start: float | None) -> Evaluation:
    from rolloutlang import stats
    from rolloutlang.stats.gates import gate_looks, plan_gate
    from rolloutlang.stats.schedule import gate_windows

    metric = rollout.label_metric(gate.metric)
    if metric is None:
        raise EvaluationError(f"gate `{gate.name}` reads metric `{gate.metric}`, which the rollout does not declare")
    windows = gate_windows(plan, gate)
    looks = gate_looks(gate, windows)
    if not looks:
        raise EvaluationError(f"gate `{gate.name}` has no look on the plan: it needs a timed canary stage "
                              "below 100% to compare the arms")
    k = len(looks) if look is None else look
    if not 1 <= k <= len(looks):
        raise EvaluationError(f"gate `{gate.name}` has looks 1 to {len(looks)}, not {k}")
    first = windows[0].start_s or 0.0
    offsets = [lk.time_s - first for lk in looks]
    begin = start if start is not None else at - offsets[k - 1]
    notes = []
    if gate.analysis == "matured":
        notes.append("`analysis matured` is evaluated as `arrived`: arrival-time counters cannot tell when a "
                     "labelled request was made")
    data = [_read_look(rollout, metric, reader, begin, begin + offsets[j]) for j in range(k - 1)]
    data.append(_read_look(rollout, metric, reader, begin, at))
    current = data[-1]
    spec = stats.test_spec(rollout, gate)
    stats_out: dict[str, Any] = {"look": k, "looks": len(looks), "test": gate.test, "hypothesis": gate.hypothesis,
                                 "alpha": spec.alpha, "sided": gate.sided, "margin": gate.margin,
                                 "effect": gate.effect, "started_at": iso_time(begin)}
    if current.candidate is not None:
        stats_out.update(candidate_n=current.candidate.n, candidate_mean=current.candidate.mean)
    if current.stable is not None:
        stats_out.update(stable_n=current.stable.n, stable_mean=current.stable.mean)
    if not current.usable:
        return Evaluation(rollout.name, gate.name, "business", "inconclusive", at,
                          "an arm has no labelled data (or no variation) yet", stats_out, notes=notes)
    planned = plan_gate(rollout, gate, plan, characterize=False)
    reference = planned.samples[-1].information if planned is not None and planned.samples else None
    if not reference:
        notes.append("no traffic model to plan the information with: the looks' own information is the scale")
    estimate = _estimate(current, gate, metric)
    history = [_estimate(d, gate, metric).information for d in data[:-1]]
    decision = stats.decide(spec, estimate, history, reference, final=k == len(looks))
    verdict: Verdict = "pass" if decision.outcome == "promote-allowed" else decision.outcome
    assert current.stable is not None
    relative = current.difference / current.stable.mean if current.stable.mean else math.nan
    stats_out.update(outcome=decision.outcome, difference=current.difference, relative_difference=relative,
                     estimate=estimate.difference, z=decision.statistic, lower=decision.lower,
                     upper=decision.upper, information=decision.information, planned_information=reference,
                     information_fraction=decision.fraction)
    return Evaluation(rollout.name, gate.name, "business", verdict, at, decision.reason, stats_out, notes=notes)


# -- acting in the cluster ---------------------------------------------------------------------------

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def pause_rollout(name: str, namespace: str, *, api: str | None = None, token: str | None = None,
                  ca_file: str | None = None, timeout_s: float = 30.0) -> None:
    """Pause an Argo Rollout, as `kubectl argo rollouts pause` does (``spec.paused: true``).

    In a pod, the API address, token and CA come from the service account.

    Raises:
        OSError: the API server refused or could not be reached.
    """
    import json
    import os
    import ssl
    import urllib.parse
    import urllib.request

    if api is None:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise OSError("not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)")
        api = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"  # an IPv6 service address
    if token is None:
        with open(os.path.join(SERVICE_ACCOUNT, "token"), encoding="utf-8") as fh:
            token = fh.read().strip()
    if ca_file is None and api.startswith("https://"):
        ca_file = os.path.join(SERVICE_ACCOUNT, "ca.crt")
    context = ssl.create_default_context(cafile=ca_file) if api.startswith("https://") else None
    path = (f"/apis/argoproj.io/v1alpha1/namespaces/{urllib.parse.quote(namespace, safe='')}"
            f"/rollouts/{urllib.parse.quote(name, safe='')}")
    request = urllib.request.Request(
        api.rstrip("/") + path, data=json.dumps({"spec": {"paused": True}}).encode(), method="PATCH",
        headers={"Content-Type": "application/merge-patch+json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
        response.read()


def in_cluster_namespace() -> str | None:
    import os

    try:
        with open(os.path.join(SERVICE_ACCOUNT, "namespace"), encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None
