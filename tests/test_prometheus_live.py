"""Against a real Prometheus: every generated query answers with the expected value, and `rollout evaluate`
passes, fails and is inconclusive on data built for each.

One Prometheus server per session, on loopback and a free port.  It scrapes a
small exporter this module runs (counters that grow with the clock, for the
live path), and it holds four hours of history backfilled with promtool
(counters that grow linearly at known rates, both arms, several services), so
every windowed query has an exact expected value.  Prometheus and promtool come
from `.ci/install-tools`; without them these tests skip and say so.
"""

from __future__ import annotations

import http.server
import json
import math
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from rolloutlang.prometheus import query
from tests.helpers import D1, D2, run_cli
from tests.manifests import by_kind, compile_text, fill_args
from tests.tools import require_tool

STEP = 15  # seconds between backfilled samples
HASH = "abc123"  # the candidate's pod-template hash in the backfilled pod names


@dataclass(frozen=True)
class Server:
    address: str
    at: float  # a time well inside the backfilled history
    live_started: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _labels(**kw: str) -> str:
    return ",".join(f'{k}="{v}"' for k, v in kw.items())


def _history() -> list[tuple[str, str, float | None, float]]:
    """(metric, labels, per-second rate or None for a constant, constant value) of every backfilled series."""
    s: list[tuple[str, str, float | None, float]] = []
    istio = {"destination_workload_namespace": "recs", "destination_app": "ranker"}
    for arm, ok, bad in (("canary", 95.0, 5.0), ("stable", 990.0, 10.0)):
        for code, rate in (("200", ok), ("503", bad)):
            s.append(("istio_requests_total", _labels(reporter="destination", **istio, destination_version=arm,
                                                      response_code=code), rate, 0.0))
    # A source-side report of the same requests: a query that forgot `reporter` would count it.
    s.append(("istio_requests_total", _labels(reporter="source", **istio, destination_version="canary",
                                              response_code="503"), 1000.0, 0.0))
    for arm, buckets in (("canary", {"100": 50.0, "250": 90.0, "500": 100.0, "+Inf": 100.0}),
                         ("stable", {"100": 100.0, "250": 100.0, "500": 100.0, "+Inf": 100.0})):
        for le, rate in buckets.items():
            s.append(("istio_request_duration_milliseconds_bucket",
                      _labels(reporter="destination", **istio, destination_version=arm, le=le), rate, 0.0))
    for pod, cpu, misses in ((f"ranker-{HASH}-x1", 0.6, 1.0), (f"ranker-{HASH}-x2", 0.9, 3.0),
                             ("ranker-def456-y1", 1.9, 50.0)):
        pod_labels = _labels(namespace="recs", container="model-server", pod=pod)
        s.append(("container_cpu_usage_seconds_total", pod_labels, cpu, 0.0))
        s.append(("kube_pod_container_resource_requests", pod_labels + ',resource="cpu"', None, 1.0))
        s.append(("feature_misses_total", pod_labels, misses, 0.0))
        s.append(("feature_requests_total", pod_labels, 100.0, 0.0))
    # Label counts and score histograms: one service passes, one fails, one lacks the candidate's series.
    for service, p_canary, canary_scores in (("svc-pass", 0.05, (30, 30, 40)), ("svc-fail", 0.04, (70, 20, 10)),
                                             ("svc-gap", None, None)):
        for arm, rate, p, scores in (("canary", 10.0, p_canary, canary_scores), ("stable", 90.0, 0.05, (30, 30, 40))):
            if p is None or scores is None:
                continue
            base = _labels(service=service, metric="ctr", arm=arm)
            s.append(("rolloutlang_label_events_total", base, rate, 0.0))
            s.append(("rolloutlang_label_positive_total", base, rate * p, 0.0))
            cumulative = 0.0
            for le, share in zip(("0.3", "0.6", "+Inf"), scores, strict=True):
                cumulative += share
                s.append(("rolloutlang_feature_bucket", _labels(service=service, feature="score", arm=arm, le=le),
                          cumulative / 10.0, 0.0))
    return s


def _backfill(folder: Path, promtool: str, start: int, end: int) -> None:
    lines = []
    for name, labels, rate, constant in sorted(_history(), key=lambda x: x[0]):
        for t in range(start, end + 1, STEP):
            value = rate * (t - start) if rate is not None else constant
            lines.append(f"{name}{{{labels}}} {value} {t}")
    lines.append("# EOF")
    data = folder / "history.om"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(data), str(folder / "tsdb")],
                   check=True, capture_output=True, timeout=120)


class _Exporter(http.server.BaseHTTPRequestHandler):
    """Live counters: the `live` service answers 100 requests a second, 7 of them with a 503."""

    started = 0.0

    def do_GET(self) -> None:
        elapsed = time.time() - self.started
        istio = _labels(reporter="destination", destination_workload_namespace="recs", destination_app="live",
                        destination_version="canary")
        body = (f"# TYPE istio_requests_total counter\n"
                f'istio_requests_total{{{istio},response_code="200"}} {93.0 * elapsed}\n'
                f'istio_requests_total{{{istio},response_code="503"}} {7.0 * elapsed}\n').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server_bin = require_tool("prometheus")
    promtool = require_tool("promtool")
    folder = tmp_path_factory.mktemp("prometheus")
    now = int(time.time())
    end = now // 900 * 900 - 1800  # history ends half an hour or more ago, before the server's own data
    _backfill(folder, promtool, end - 4 * 3600, end)

    _Exporter.started = time.time()
    exporter = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=exporter.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = _free_port()
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1m"},
              "scrape_configs": [{"job_name": "exporter", "static_configs": [
                  {"targets": [f"127.0.0.1:{exporter.server_address[1]}"]}]}]}
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    log = (folder / "prometheus.log").open("wb")
    proc = subprocess.Popen([server_bin, f"--config.file={folder / 'prometheus.yml'}",
                             f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--storage.tsdb.retention.time=3650d", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail("prometheus exited: " + (folder / "prometheus.log").read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(address + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("prometheus did not become ready within 60s")
            time.sleep(0.1)
        yield Server(address, end - 300.0, _Exporter.started)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        exporter.shutdown()
        exporter.server_close()
        log.close()


def _live_samples(address: str) -> int:
    try:
        live = 'istio_requests_total{destination_app="live",response_code="200"}'
        samples = query(address, f"count_over_time({live}[1m])", time.time())
    except Exception:
        return 0
    return int(samples[0].value) if samples else 0


def _spec(service: str, address: str, namespace: str = "recs", body: str = "") -> str:
    return f"""rollout demo {{
  service {service}
  namespace {namespace}
  model stable    scorer 1.0.0 @ {D1}
  model candidate scorer 1.0.1 @ {D2}
  signature {{ in x: float32  out score: float32 }}
  serving {{ image "registry.example.com/scorer" @ {D1}  resources cpu 1 }}
  traffic 1000 rps
  metrics prometheus "{address}" {{
    query misses "sum(rate(feature_misses_total{{$pods}}[$window])) / \
sum(rate(feature_requests_total{{$pods}}[$window]))"
    evaluator "registry.example.com/rolloutlang" @ {D2}
  }}
  metric ctr: binary, baseline 5%
  canary {{ 10% for 1h  50% for 1h  100% }}
  gate ctr:     ctr change > -5% relative, fail if shown harmful, power 80% at -10%
  gate drift:   psi(score) < 0.1 every 10m, min samples 100
  on ctr fail:   rollback
  on drift fail: pause
{body}}}
"""


SLO_GATES = """  gate latency: p99 latency < 500ms every 5m
  gate errors:  error rate < 10% every 5m
  gate cpu:     saturation < 80% every 5m
  gate misses:  query misses < 0.05 every 5m
  on latency, errors, cpu, misses fail: rollback now
"""

# What each generated SLO query must answer on the history: p99 interpolated between le=250 (90%) and le=500
# (100%) is 475ms; 5 errors in 100 requests; CPU (0.6 + 0.9) / 2 cores requested; (1 + 3) / 200 misses.
EXPECTED = {"latency": 0.475, "errors": 0.05, "cpu": 0.75, "misses": 0.02}


def test_every_generated_query_answers_the_expected_value(prometheus: Server) -> None:
    outputs, diags = compile_text(_spec("ranker", prometheus.address, body=SLO_GATES), ["argo"])
    assert not [d for d in diags if d.is_error], [(d.code, d.message) for d in diags]
    seen = {}
    for template in by_kind(outputs, "AnalysisTemplate"):
        for metric in template["spec"]["metrics"]:
            promql = metric["provider"].get("prometheus", {}).get("query")
            if promql is None:
                continue
            samples = query(prometheus.address, fill_args(promql, {"canary-hash": HASH}), prometheus.at)
            assert len(samples) == 1, (metric["name"], samples)
            seen[metric["name"]] = samples[0].value
    assert seen == pytest.approx(EXPECTED, rel=1e-9)


def test_rollout_evaluate_runs_the_same_slo_queries(prometheus: Server, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text(_spec("ranker", prometheus.address, body=SLO_GATES), encoding="utf-8")
    for gate, value in EXPECTED.items():
        code, out, err = run_cli(["evaluate", str(spec), "--root", str(tmp_path), "--gate", gate, "--at",
                                  str(prometheus.at), "--canary-hash", HASH, "--format", "json"], capsys)
        assert code == 0, err
        assert json.loads(out)["statistics"]["value"] == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize(("service", "verdict", "code"), [("svc-pass", "pass", 0), ("svc-fail", "fail", 1),
                                                           ("svc-gap", "inconclusive", 3)])
@pytest.mark.parametrize("gate", ["ctr", "drift"])
def test_evaluate_verdicts_on_data_built_for_each(prometheus: Server, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str], service: str, verdict: str,
                                                  code: int, gate: str) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text(_spec(service, prometheus.address), encoding="utf-8")
    got, out, err = run_cli(["evaluate", str(spec), "--root", str(tmp_path), "--gate", gate, "--at",
                             str(prometheus.at), "--look", "2", "--format", "json"], capsys)
    result = json.loads(out)
    assert (got, result["verdict"]) == (code, verdict), result["reason"] + err
    if gate == "ctr" and verdict != "inconclusive":
        # Two hours of labels: 10/s on the candidate, 90/s on stable, counted exactly.
        assert result["statistics"]["candidate_n"] == pytest.approx(72_000, rel=1e-9)
        assert result["statistics"]["stable_n"] == pytest.approx(648_000, rel=1e-9)
        assert result["statistics"]["candidate_mean"] == pytest.approx(0.05 if verdict == "pass" else 0.04)
    if gate == "drift" and verdict == "fail":
        # Canary bins (0.7, 0.2, 0.1) against stable (0.3, 0.3, 0.4), ten minutes of each.
        p, q = (0.7, 0.2, 0.1), (0.3, 0.3, 0.4)
        psi = sum((a - b) * math.log(a / b) for a, b in zip(p, q, strict=True))
        assert result["statistics"]["value"] == pytest.approx(psi, rel=1e-9)


def test_a_missing_series_is_inconclusive_never_a_pass(prometheus: Server, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text(_spec("no-such-service", prometheus.address, body=SLO_GATES), encoding="utf-8")
    for gate in ("ctr", "drift", "errors", "latency"):
        code, out, _ = run_cli(["evaluate", str(spec), "--root", str(tmp_path), "--gate", gate, "--at",
                                str(prometheus.at), "--format", "json"], capsys)
        assert (code, json.loads(out)["verdict"]) == (3, "inconclusive"), gate


def test_the_generated_job_command_judges_the_gate(prometheus: Server, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Run the exact arguments of the generated job, with the spec from the generated ConfigMap."""
    for service, expected in (("svc-pass", 0), ("svc-fail", 1)):
        outputs, _ = compile_text(_spec(service, prometheus.address), ["argo"])
        template = next(t for t in by_kind(outputs, "AnalysisTemplate") if t["metadata"]["name"].endswith("-ctr"))
        job = template["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]
        container = job["containers"][0]
        config = by_kind(outputs, "ConfigMap")[0]
        mount = tmp_path / service
        for item in job["volumes"][0]["configMap"]["items"]:
            (mount / item["path"]).parent.mkdir(parents=True, exist_ok=True)
            (mount / item["path"]).write_text(config["data"][item["key"]], encoding="utf-8")
        args = [a.replace(container["volumeMounts"][0]["mountPath"], str(mount)).replace("{{args.look}}", "2")
                for a in container["args"]]
        code, out, err = run_cli([*args, "--at", str(prometheus.at)], capsys)
        assert code == expected, out + err


def test_the_live_scraped_error_rate(prometheus: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prometheus applies new scrape targets after about 5s; a rate needs two scrapes.
    deadline = time.time() + 30
    while _live_samples(prometheus.address) < 2:
        assert time.time() < deadline, "prometheus scraped nothing from the exporter in 30s"
        time.sleep(0.2)
    spec = tmp_path / "spec.rollout"
    spec.write_text(_spec("live", prometheus.address, body=SLO_GATES), encoding="utf-8")
    code, out, err = run_cli(["evaluate", str(spec), "--root", str(tmp_path), "--gate", "errors", "--format",
                              "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["statistics"]["value"] == pytest.approx(0.07, rel=1e-6)
