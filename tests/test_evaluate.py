"""`rollout evaluate` without a server: the decisions, the data rules (no data is never a pass), the CLI contract.

A fake Prometheus answers the label-count and histogram queries from tables; the
same gates against a real Prometheus are in tests/test_prometheus_live.py.
"""

from __future__ import annotations

import http.server
import json
import math
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rolloutlang import ir, queries, stats
from rolloutlang.evaluate import (
    EvaluationError,
    drift_counts,
    evaluate_gate,
    pause_rollout,
)
from rolloutlang.loader import load_text
from rolloutlang.plan import build_plan
from rolloutlang.prometheus import PrometheusError, Sample, Unreachable
from tests.helpers import D1, D2, run_cli

SPEC = f"""rollout demo {{
  service demo
  namespace ml
  model stable    scorer 1.0.0 @ {D1}
  model candidate scorer 1.0.1 @ {D2}
  signature {{ in x: float32, country: category  out score: float32 }}
  traffic 1000 rps
  metrics prometheus "http://prometheus:9090"
  metric ctr: binary, baseline 5%
  metric revenue: continuous, baseline 2, sd 4
  canary {{ 10% for 1h  50% for 1h  100% }}
  gate ctr:     ctr change > -5% relative, fail if shown harmful, power 80% at -10%, sequential obrien-fleming, alpha 5%
  gate fixed:   ctr change > -5% relative, fail if shown harmful, power 80% at -10%, fixed horizon, one-sided
  gate revenue: revenue change > -5% relative, fail if shown harmful, power 80% at -10%, msprt, tau 5%
  gate bayes:   ctr change > -5% relative, fail if shown harmful, power 80% at -10%, bayesian, alpha 5%
  gate ni:      ctr change > -5% relative, pass if shown non-inferior
  gate slower:  p99 latency change < +10% every 5m, min samples 100
  gate drift:   psi(score) < 0.2 every 10m, fail after 2, min samples 100
  gate mix:     js(country) < 0.05 every 10m, vs training
  gate latency: p99 latency < 250ms every 5m
  gate cpu:     saturation < 80% every 5m
  on ctr, fixed, revenue, bayes, ni, latency, cpu fail: rollback
  on slower fail: pause
  on drift, mix fail: pause
}}
"""

T = 1_750_000_000.0


def _rollout(text: str = SPEC) -> ir.Rollout:
    program = load_text(text, "spec.rollout")
    assert not program.has_errors, [d.message for d in program.diagnostics]
    return program.rollouts()[0]


class FakePrometheus:
    """Answers the conventional queries: per-arm label counts growing linearly, and fixed histograms."""

    def __init__(self) -> None:
        # per arm: counter -> per-second rate
        self.rates: dict[str, dict[str, float]] = {}
        self.histograms: dict[tuple[str, str], dict[str, float]] = {}  # (feature, arm) -> bucket -> count
        self.scalars: dict[str, float] = {}  # substring of a query -> value
        self.calls: list[tuple[str, float]] = []

    def __call__(self, promql: str, at: float) -> list[Sample]:
        self.calls.append((promql, at))
        for needle, value in self.scalars.items():
            if needle in promql:
                return [Sample(value)]
        arm = re.search(r'arm="([a-z]*)"', promql)
        window = re.search(r"\[(\d+)([smhd])\]", promql)
        if "rolloutlang_feature" in promql:
            feature = re.search(r'feature="([^"]+)"', promql)
            assert arm and feature
            hist = self.histograms.get((feature.group(1), arm.group(1)), {})
            by = "category" if "category" in promql else "le"
            return [Sample(v, {by: k}) for k, v in hist.items()]
        counter = re.search(r"(rolloutlang_label_[a-z_]+)\{", promql)
        if counter and arm and window:
            rate = self.rates.get(arm.group(1), {}).get(counter.group(1))
            if rate is None:
                return []
            seconds = int(window.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[window.group(2)]
            return [Sample(rate * seconds)]
        return []


def _binary(fake: FakePrometheus, arm: str, rate: float, p: float) -> None:
    fake.rates[arm] = {"rolloutlang_label_events_total": rate, "rolloutlang_label_positive_total": rate * p}


def evaluate(gate: str, fake: Callable[[str, float], list[Sample]], text: str = SPEC, **kw: object):  # type: ignore[no-untyped-def]
    rollout = _rollout(text)
    return evaluate_gate(rollout, build_plan(rollout), gate, fake, T, **kw)  # type: ignore[arg-type]


# -- the decision is the kernel's ---------------------------------------------------------------------


@pytest.mark.parametrize("gate", ["ctr", "fixed", "revenue", "bayes", "ni"])
def test_the_verdict_is_the_statistics_kernels_decision(gate: str) -> None:
    # The one rule the checks size (rolloutlang.stats.decide), applied to the estimate from the counts.
    fake = FakePrometheus()
    _binary(fake, "stable", 900.0, 0.05)
    _binary(fake, "canary", 100.0, 0.0485)
    fake.rates["stable"].update({"rolloutlang_label_value_total": 900.0 * 2.0,
                                 "rolloutlang_label_value_squared_total": 900.0 * 20.0})
    fake.rates["canary"].update({"rolloutlang_label_value_total": 100.0 * 1.9,
                                 "rolloutlang_label_value_squared_total": 100.0 * (16.0 + 1.9 * 1.9)})
    rollout = _rollout()
    g = rollout.gate(gate)
    assert isinstance(g, ir.BusinessGate)
    result = evaluate(gate, fake)
    spec = stats.test_spec(rollout, g)
    planned = stats.plan_gate(rollout, g, build_plan(rollout))
    assert planned is not None
    assert result.statistics["planned_information"] == pytest.approx(planned.samples[-1].information)
    info = result.statistics["information"]
    decision = stats.decide(spec, stats.Estimate(result.statistics["estimate"], 1.0 / info),
                            [] if g.test == "fixed" else [x for x in _history(result)],
                            planned.samples[-1].information, final=True)
    assert (result.statistics["outcome"], result.statistics["lower"], result.statistics["upper"]) == (
        decision.outcome, pytest.approx(decision.lower), pytest.approx(decision.upper))
    assert result.verdict == ("pass" if decision.outcome == "promote-allowed" else decision.outcome)


def _history(result: object) -> list[float]:
    """The information of the earlier looks, from the counts the evaluation read (one look an hour)."""
    stats_ = result.statistics  # type: ignore[attr-defined]
    look = stats_["look"]
    return [stats_["information"] * (j + 1) / look for j in range(look - 1)] if look > 1 else []


def test_a_non_inferiority_gate_allows_promotion_or_fails_at_its_last_look() -> None:
    fake = FakePrometheus()
    _binary(fake, "stable", 900.0, 0.05)
    _binary(fake, "canary", 100.0, 0.05)  # no change: shown within -5% with 720,000 labels
    ok = evaluate("ni", fake)
    assert ok.verdict == "pass" and ok.statistics["outcome"] == "promote-allowed"
    assert ok.statistics["lower"] == ok.statistics["upper"]  # the last look decides
    _binary(fake, "canary", 100.0, 0.0475)
    assert evaluate("ni", fake).verdict == "fail"


def test_slo_change_gates_compare_the_arms_and_need_their_samples() -> None:
    fake = FakePrometheus()
    fake.scalars['destination_version="canary"}[5m])))'] = 0.21
    fake.scalars['destination_version="stable"}[5m])))'] = 0.20
    fake.scalars["istio_requests_total"] = 500.0
    ok = evaluate("slower", fake)
    assert ok.verdict == "pass" and ok.statistics["change"] == pytest.approx(0.05)
    assert {q.arm for q in ok.queries} == {"canary", "stable"}
    fake.scalars['destination_version="canary"}[5m])))'] = 0.23
    assert evaluate("slower", fake).verdict == "fail"
    fake.scalars["istio_requests_total"] = 50.0
    few = evaluate("slower", fake)
    assert few.verdict == "inconclusive" and "fewer than 100 requests" in few.reason


# -- business gates end to end ------------------------------------------------------------------------


def test_business_gate_pass_fail_and_inconclusive() -> None:
    fake = FakePrometheus()
    _binary(fake, "stable", 900.0, 0.05)
    _binary(fake, "canary", 100.0, 0.05)
    ok = evaluate("ctr", fake, look=2)
    assert ok.verdict == "pass" and ok.exit_code == 0
    assert ok.statistics["look"] == 2 and ok.statistics["looks"] == 2

    _binary(fake, "canary", 100.0, 0.045)  # -10% relative, hundreds of thousands of labels
    bad = evaluate("ctr", fake, look=2)
    assert bad.verdict == "fail" and bad.exit_code == 1 and bad.statistics["z"] < -5  # Z from the -5% margin

    del fake.rates["canary"]  # the candidate's series is missing
    none = evaluate("ctr", fake, look=2)
    assert none.verdict == "inconclusive" and none.exit_code == 3


def test_a_look_recomputes_earlier_looks_from_history() -> None:
    fake = FakePrometheus()
    _binary(fake, "stable", 900.0, 0.05)
    _binary(fake, "canary", 100.0, 0.05)
    result = evaluate("ctr", fake, look=2)
    times = sorted({at for _, at in fake.calls})
    assert times == [T - 3600, T]  # look 1 was an hour (one stage) before look 2
    windows = {re.search(r"\[(\w+)\]", q).group(1) for q, _ in fake.calls}  # type: ignore[union-attr]
    assert windows == {"1h", "2h"}  # both since the gate started, two hours ago
    # The fake's candidate stays at 10% of the traffic where the plan expected 50% in the second stage: the
    # information reached is about half the planned (the last look still spends all of alpha).
    assert 0.4 < result.statistics["information_fraction"] < 0.7


def test_continuous_metrics_use_sums_and_squares() -> None:
    fake = FakePrometheus()
    for arm, rate, mean in (("stable", 900.0, 2.0), ("canary", 100.0, 1.5)):
        fake.rates[arm] = {"rolloutlang_label_events_total": rate, "rolloutlang_label_value_total": rate * mean,
                           "rolloutlang_label_value_squared_total": rate * (16.0 + mean * mean)}
    result = evaluate("revenue", fake, look=1)
    assert result.statistics["candidate_mean"] == pytest.approx(1.5)
    assert result.statistics["stable_mean"] == pytest.approx(2.0)
    assert result.verdict == "fail"  # -25% with 360000 candidate labels, sd 4


def test_look_out_of_range_and_unknown_gate_are_usage_errors() -> None:
    with pytest.raises(EvaluationError, match="looks 1 to 2"):
        evaluate("ctr", FakePrometheus(), look=3)
    with pytest.raises(EvaluationError, match="did you mean `ctr`"):
        evaluate("crt", FakePrometheus())


# -- drift gates -----------------------------------------------------------------------------------


def _scores(fake: FakePrometheus, arm: str, counts: list[float], feature: str = "score") -> None:
    bounds = ["0.1", "0.2", "0.5", "1", "+Inf"]
    cumulative, total = {}, 0.0
    for b, c in zip(bounds, counts, strict=True):
        total += c
        cumulative[b] = total
    fake.histograms[(feature, arm)] = cumulative


def test_drift_gate_fails_only_after_its_windows_all_breach() -> None:
    fake = FakePrometheus()
    _scores(fake, "stable", [100, 200, 400, 300, 0])
    _scores(fake, "canary", [100, 200, 400, 300, 0])
    assert evaluate("drift", fake).verdict == "pass"
    _scores(fake, "canary", [400, 300, 200, 100, 0])
    result = evaluate("drift", fake)
    assert result.verdict == "fail" and result.statistics["value"] > 0.2
    assert len(result.statistics["windows"]) == 2  # `fail after 2`: this window and the one before


def test_drift_without_enough_data_is_inconclusive() -> None:
    fake = FakePrometheus()
    _scores(fake, "stable", [100, 200, 400, 300, 0])
    assert evaluate("drift", fake).verdict == "inconclusive"  # no candidate histogram
    _scores(fake, "canary", [10, 20, 20, 10, 0])  # 60 samples, `min samples 100`
    result = evaluate("drift", fake)
    assert result.verdict == "inconclusive" and "below the 100" in result.reason


def test_categorical_drift_against_training() -> None:
    fake = FakePrometheus()
    fake.histograms[("country", "training")] = {"DE": 500.0, "FR": 300.0, "US": 200.0}
    fake.histograms[("country", "canary")] = {"DE": 50.0, "FR": 30.0, "US": 20.0}
    assert evaluate("mix", fake).verdict == "pass"
    fake.histograms[("country", "canary")] = {"DE": 10.0, "FR": 10.0, "US": 60.0, "IT": 20.0}
    assert evaluate("mix", fake).verdict == "fail"
    reference_query = next(q for q, _ in fake.calls if 'arm="training"' in q)
    assert "increase(" not in reference_query  # the training reference is read as it stands


def test_drift_counts_align_buckets_and_categories() -> None:
    cand, ref = drift_counts({"a": 1.0, "b": 2.0}, {"b": 3.0, "c": 4.0}, categorical=True, bins=10)
    assert (cand, ref) == ([1.0, 2.0, 0.0], [0.0, 3.0, 4.0])
    cand, ref = drift_counts({"1": 5.0, "+Inf": 10.0}, {"0.5": 2.0, "1": 4.0, "+Inf": 8.0}, False, 10)
    assert cand == [0.0, 5.0, 5.0] and ref == [2.0, 2.0, 4.0]  # a missing bound carries the count below it


def test_unsupported_drift_statistics_are_refused() -> None:
    text = SPEC.replace("gate mix:     js(country) < 0.05 every 10m, vs training",
                        "gate mix:     mmd(score) < 0.05 every 10m")
    with pytest.raises(EvaluationError, match="cannot compute `mmd`"):
        evaluate("mix", FakePrometheus(), text)


# -- SLO gates and errors -------------------------------------------------------------------------------


def test_slo_gates_run_the_templates_query_and_no_data_is_inconclusive() -> None:
    fake = FakePrometheus()
    fake.scalars["istio_request_duration_milliseconds_bucket"] = 0.2
    result = evaluate("latency", fake)
    assert result.verdict == "pass"
    query = result.queries[0].query
    assert 'destination_version="canary"' in query and "histogram_quantile(0.99" in query
    fake.scalars["istio_request_duration_milliseconds_bucket"] = 0.3
    assert evaluate("latency", fake).verdict == "fail"
    fake.scalars["istio_request_duration_milliseconds_bucket"] = math.nan
    assert evaluate("latency", fake).verdict == "inconclusive"
    with pytest.raises(EvaluationError, match="--canary-hash"):
        evaluate("cpu", fake)  # saturation selects the candidate's pods by their hash
    fake.scalars["container_cpu_usage_seconds_total"] = 0.5
    result = evaluate("cpu", fake, pod_hash="abc123")
    assert result.verdict == "pass" and 'pod=~"demo-abc123-.*"' in result.queries[0].query


def test_an_unreachable_prometheus_is_inconclusive_and_a_rejected_query_an_error() -> None:
    def down(promql: str, at: float) -> list[Sample]:
        raise Unreachable("connection refused")

    assert evaluate("ctr", down).verdict == "inconclusive"

    def rejects(promql: str, at: float) -> list[Sample]:
        raise PrometheusError("parse error")

    with pytest.raises(EvaluationError, match="rejected"):
        evaluate("ctr", rejects)


def test_query_overrides_and_placeholders() -> None:
    text = SPEC.replace('metrics prometheus "http://prometheus:9090"',
                        'metrics prometheus "http://prometheus:9090" {\n'
                        '    query ctr_events "sum(increase(my_events{arm=\\"$arm\\"}[$window]))"\n  }')
    rollout = _rollout(text)
    metric = rollout.label_metric("ctr")
    assert metric is not None
    own, override = queries.label_query(rollout, metric, "events")
    assert override is not None and own.startswith("sum(increase(my_events")
    site = queries.site(rollout)
    assert queries.fill(own, site, "canary", 7200) == 'sum(increase(my_events{arm="canary"}[2h]))'
    assert queries.fill('x{a=~"y$"}', site, "canary") == 'x{a=~"y$"}'  # a regex anchor is not a placeholder
    with pytest.raises(queries.MissingValue):
        queries.fill("x[$window]", site, "canary")


# -- acting in the cluster -------------------------------------------------------------------------------


def test_pause_rollout_patches_spec_paused() -> None:
    seen: list[tuple[str, str, dict[str, object], str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers["Content-Type"], json.loads(body), self.headers["Authorization"]))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        pause_rollout("ranker", "recs", api=f"http://127.0.0.1:{server.server_address[1]}", token="t0ken")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [("/apis/argoproj.io/v1alpha1/namespaces/recs/rollouts/ranker", "application/merge-patch+json",
                     {"spec": {"paused": True}}, "Bearer t0ken")]


# -- the command line -------------------------------------------------------------------------------


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    path = tmp_path / "demo.rollout"
    path.write_text(SPEC)
    return path


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakePrometheus:
    fake = FakePrometheus()
    monkeypatch.setattr("rolloutlang.prometheus.query", lambda address, promql, at, timeout_s=30: fake(promql, at))
    return fake


def test_cli_exit_codes_and_json(spec_file: Path, fake: FakePrometheus, capsys: pytest.CaptureFixture[str]) -> None:
    _binary(fake, "stable", 900.0, 0.05)
    _binary(fake, "canary", 100.0, 0.05)
    code, out, _ = run_cli(["evaluate", str(spec_file), "--gate", "ctr", "--look", "1", "--at", "1750000000",
                            "--format", "json"], capsys)
    payload = json.loads(out)
    assert code == 0 and payload["verdict"] == "pass" and payload["at"] == "2025-06-15T15:06:40Z"
    assert payload["statistics"]["look"] == 1 and payload["queries"]
    _binary(fake, "canary", 100.0, 0.04)
    code, out, _ = run_cli(["evaluate", str(spec_file), "--gate", "ctr", "--at", "2025-06-15T15:06:40Z"], capsys)
    assert code == 1 and out.startswith("FAIL: gate `ctr`")
    del fake.rates["canary"]
    assert run_cli(["evaluate", str(spec_file), "--gate", "ctr"], capsys)[0] == 3


def test_cli_pauses_instead_of_failing_when_asked(spec_file: Path, fake: FakePrometheus,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    paused: list[tuple[str, str]] = []
    monkeypatch.setattr("rolloutlang.evaluate.pause_rollout", lambda name, ns, **kw: paused.append((name, ns)))
    args = ["evaluate", str(spec_file), "--gate", "ctr", "--argo-rollout", "demo", "--on-inconclusive", "pause"]
    code, out, _ = run_cli(args, capsys)  # no data at all: inconclusive
    assert code == 0 and paused == [("demo", "ml")] and "paused Rollout ml/demo" in out
    _binary(fake, "stable", 900.0, 0.05)
    _binary(fake, "canary", 100.0, 0.04)
    assert run_cli(args, capsys)[0] == 1  # a failure still fails: its rule rolls back
    assert run_cli([*args, "--on-fail", "pause"], capsys)[0] == 0 and len(paused) == 2


def test_cli_usage_errors(spec_file: Path, fake: FakePrometheus, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["evaluate", str(spec_file), "--gate", "nope"], capsys)
    assert code == 2 and "error[RL740]" in err and "no gate `nope`" in err
    code, _, err = run_cli(["evaluate", str(spec_file), "--gate", "ctr", "--at", "yesterday"], capsys)
    assert code == 2 and "is not a time" in err
    code, _, err = run_cli(["evaluate", str(spec_file), "--gate", "ctr", "--on-fail", "pause"], capsys)
    assert code == 2 and "--argo-rollout" in err
    code, _, err = run_cli(["evaluate", str(spec_file), "--gate", "ctr", "--confirm-after", "soon"], capsys)
    assert code == 2


def test_cli_confirmation_judges_again_later(spec_file: Path, fake: FakePrometheus,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _binary(fake, "stable", 900.0, 0.05)
    _binary(fake, "canary", 100.0, 0.04)
    code, out, _ = run_cli(["evaluate", str(spec_file), "--gate", "ctr", "--at", "1750000000", "--confirm-after",
                            "30m", "--format", "json"], capsys)
    payload = json.loads(out)
    assert code == 1 and "confirmed after 30m" in payload["notes"][0]
    assert {at for _, at in fake.calls} >= {T, T + 1800}


def test_without_a_traffic_model_the_looks_are_evenly_spaced() -> None:
    fake = FakePrometheus()
    _binary(fake, "stable", 900.0, 0.05)
    _binary(fake, "canary", 100.0, 0.05)
    result = evaluate("ctr", fake, SPEC.replace("  traffic 1000 rps\n", ""), look=1)
    assert result.statistics["planned_information"] is None
    assert result.statistics["information_fraction"] == 1.0  # the look's own information is the scale
