"""`rollout simulate`: what each gate, rule and wait does in the runs, and the command's contract.

Small plans whose outcome is known exactly (a deterministic failure, a wait,
a window with no data) or in closed form (a latency percentile's false
alarms, a sample-ratio gate's repeated tests).  Statistical reproductions of
published tables are in test_simulate_statistics.py.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rolloutlang import ir
from rolloutlang.loader import load_text
from rolloutlang.plan import build_plan
from rolloutlang.simulator import runner, signals
from rolloutlang.stats import drift
from rolloutlang.stats.gates import srm_false_alarm
from rolloutlang.stats.schedule import gate_windows
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
METRICS = 'metrics prometheus "http://prometheus:9090" { query q "up" }'


def simulate(text: str, runs: int = 400, scenarios: tuple[str, ...] = ("null",), **options: Any
             ) -> tuple[ir.Rollout, dict[str, Any]]:
    program = load_text(text, "t.rollout")
    assert not program.has_errors, [d.message for d in program.diagnostics]
    (rollout,) = program.rollouts()
    opts = runner.Options(runs=runs, seed=options.pop("seed", 1), workers=1, scenarios=scenarios, **options)
    return rollout, runner.simulate(rollout, build_plan(rollout), opts).to_json()


def scenario(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in doc["scenarios"] if s["name"] == name)


def test_latency_percentile_false_alarms_match_the_order_statistic() -> None:
    """p99 of ~600 lognormal latencies per 10m window, 12 windows, `fail after 2` (cumulative)."""
    from scipy import stats as sp

    _, doc = simulate(f"""rollout lat {{
  traffic 2 rps
  {METRICS}
  canary {{ 50% for 2h  100% }}
  gate latency: p99 latency < 250ms, baseline 235ms, sigma 0.5, every 10m, fail after 2
  on latency fail: rollback
}}""", runs=2000)
    median = 0.235 / math.exp(0.5 * sp.norm.ppf(0.99))
    u = sp.norm.cdf(math.log(0.25 / median) / 0.5)
    n = np.arange(1, 2000)
    k = np.ceil(0.99 * n)
    window = float((sp.poisson.pmf(n, 600) * sp.beta.sf(u, k, n - k + 1)).sum())
    expected = 1 - sp.binom.cdf(1, 12, window)
    got = doc["scenarios"][0]["p_rollback"]
    assert abs(got["estimate"] - expected) <= 4 * got["se"]


def test_error_rate_false_alarms_match_the_binomial() -> None:
    """Errors among ~600 requests per 10m window at a 0.2% rate, against < 0.5%, `fail after 2` of 12 windows."""
    from scipy import stats as sp

    _, doc = simulate(f"""rollout errs {{
  traffic 2 rps
  {METRICS}
  canary {{ 50% for 2h  100% }}
  gate errors: error rate < 0.5%, baseline 0.2%, every 10m, fail after 2
  on errors fail: rollback
}}""", runs=2000)
    n = np.arange(1, 2000)
    low = np.floor(0.005 * n)
    fewest = np.where(low / n >= 0.005, low, low + 1)  # the fewest errors whose rate breaches, as floats compare
    breach = sp.binom.sf(fewest - 1, n, 0.002)
    window = float((sp.poisson.pmf(n, 600) * breach).sum())
    expected = 1 - sp.binom.cdf(1, 12, window)
    got = doc["scenarios"][0]["p_rollback"]
    assert 0.1 < expected < 0.9 and abs(got["estimate"] - expected) <= 4 * got["se"]


def test_sample_ratio_gate_false_alarms_are_the_checks_figure_and_a_broken_split_is_caught() -> None:
    text = f"""rollout split {{
  traffic 50 rps
  {METRICS}
  canary {{ 5% for 6h  50% for 6h  100% }}
  gate split: srm, alpha 5%, every 1h
  on split fail: pause
  scenario broken {{ split -10% }}
}}"""
    rollout, doc = simulate(text, runs=3000, scenarios=("null",))
    gate = rollout.gate("split")
    assert isinstance(gate, ir.SrmGate)
    expected = srm_false_alarm(gate, gate_windows(build_plan(rollout), gate))
    got = scenario(doc, "null")["p_pause"]
    assert abs(got["estimate"] - expected) <= 4 * got["se"]
    _, doc = simulate(text, runs=200, scenarios=("broken",))
    broken = scenario(doc, "broken")
    assert broken["pause_by_gate"]["split"]["estimate"] == 1.0 and broken["pause_by_gate"]["split"]["no_data"] == 0


CONFIRM = f"""rollout confirm {{
  traffic 100 rps
  {METRICS}
  canary {{ 10% for 4h  100% }}
  gate q: query q < 1, baseline 0.5, every 5m
  on q fail: rollback after 30m
  scenario bad {{ q 2 after 1h }}
  scenario blip {{ q 2 after 1h, q 0.5 after 70m }}
}}"""


def test_rollback_after_confirms_a_failure_that_lasts_and_forgives_one_that_does_not() -> None:
    _, doc = simulate(CONFIRM, runs=50, scenarios=("bad", "blip"))
    bad, blip = scenario(doc, "bad"), scenario(doc, "blip")
    # The window ending at 65m is the first whose middle is past the onset; the wait is 30m.
    assert bad["p_rollback"]["estimate"] == 1.0
    assert bad["time_to_rollback"] == {"p50": 95 * 60.0, "p95": 95 * 60.0}
    assert bad["time_to_detect"]["p50"] == 35 * 60.0
    assert blip["p_promote"]["estimate"] == 1.0 and blip["duration"]["p50"] == 4 * 3600.0


def test_errors_during_a_shadow_roll_back_before_anyone_is_exposed() -> None:
    _, doc = simulate(f"""rollout shadowed {{
  traffic 100 rps
  {METRICS}
  shadow 100% for 6h
  canary {{ 10% for 1h  100% }}
  gate errors: error rate < 1%, baseline 0.5%, every 10m
  on errors fail: rollback now
  scenario broken {{ errors 5% after 1h }}
}}""", runs=100, scenarios=("null", "broken"))
    null, broken = scenario(doc, "null"), scenario(doc, "broken")
    assert null["p_promote"]["estimate"] == 1.0
    assert null["exposure"]["mean"] == pytest.approx(100 * 0.1 * 3600)
    assert broken["rollback_by_gate"]["errors"]["estimate"] == 1.0
    assert broken["time_to_rollback"]["p50"] == 70 * 60.0
    assert broken["exposure"]["p95"] == 0.0 and broken["harmful_exposure"]["p95"] == 0.0


def test_approvals_wait_for_a_person() -> None:
    _, doc = simulate("""rollout approved {
  traffic 100 rps
  canary { 10% for 1h  ramp: 50% until approved  100% }
}""", runs=3000)
    duration = doc["scenarios"][0]["duration"]
    # An exponential wait of mean 2h, rounded up to 15 minutes: E = 15m * E[ceil(X / 15m)].
    step = 900.0
    expected_wait = step / (1 - math.exp(-step / 7200.0))
    assert abs(duration["mean"] - (3600 + expected_wait)) <= 4 * duration["se"]
    assert any("exponential wait with mean 2h" in a for a in doc["assumptions"])
    _, doc = simulate("""rollout approved {
  traffic 100 rps
  canary { 10% for 1h  ramp: 50% until approved  100% }
}""", runs=20, approval_delay_s=0.0)
    assert doc["scenarios"][0]["duration"]["p95"] == 3600.0


def test_no_data_pauses_the_plan() -> None:
    _, doc = simulate(f"""rollout quiet {{
  traffic 1 rps
  {METRICS}
  canary {{ 1% for 2h  100% }}
  gate errors: error rate < 1%, min samples 100, every 5m
  on errors fail: rollback
}}""", runs=50)
    null = doc["scenarios"][0]
    assert null["p_pause"]["estimate"] == 1.0
    assert null["pause_by_gate"]["errors"]["no_data"] == 1.0
    assert null["time_to_rollback"]["p50"] is None


def test_a_non_inferiority_gate_that_passes_promotes_early() -> None:
    _, doc = simulate("""rollout early {
  traffic 50 rps
  metric ctr: binary, baseline 10%
  canary { 50% for 2d  100% }
  gate ctr: ctr change > -5%, pass if shown non-inferior, every 6h
  on ctr fail: rollback
  on ctr pass: promote
}""", runs=200, scenarios=("at-mde",))
    mde = doc["scenarios"][0]
    assert mde["p_promote"]["estimate"] == 1.0 and mde["duration"]["p95"] == 6 * 3600.0
    assert mde["gates"]["ctr"]["decides"]["estimate"] == 1.0
    assert mde["looks"][0]["p_promote_allowed"] == 1.0


SLOW_LABELS = """rollout labels {
  traffic 6 rps
  metric conv: binary, baseline 5%, labels lognormal(median 1h, p95 4h)
  canary { 50% for 6h  100% }
  gate conv: conv change > 0% relative, fail if shown harmful, power 80% at -5%, sequential pocock, every 1h
  on conv fail: rollback
  scenario slower { labels conv lognormal(median 6h, p95 24h) }
}"""


def test_labels_that_arrive_later_cost_power_and_the_looks_count_arrived_labels() -> None:
    _, doc = simulate(SLOW_LABELS, runs=1500, scenarios=("at-mde",))
    _, slow = simulate(SLOW_LABELS.replace("scenario slower { labels", "scenario slower { conv -5%, labels"),
                       runs=1500, scenarios=("slower",))
    fast, late = scenario(doc, "at-mde"), scenario(slow, "slower")
    assert late["p_rollback"]["estimate"] < fast["p_rollback"]["estimate"] - 4 * fast["p_rollback"]["se"]
    labelled = [look["labelled"]["candidate"] for look in fast["looks"]]
    assert labelled == sorted(labelled)
    # At 6h, with labels a median 1h late, 6 rps x 50% x 6h = 64,800 requests are not all labelled.
    assert 0.6 * 64_800 < labelled[-1] < 0.95 * 64_800


def test_drifted_bins_have_the_statistic_asked_for() -> None:
    for statistic, value in (("psi", 0.2), ("kl", 0.05), ("js", 0.1)):
        bins = signals.drifted_bins(statistic, 10, value)
        assert sum(bins) == pytest.approx(1.0)
        assert float(drift.statistic(statistic, np.array(bins), np.full(10, 0.1))) == pytest.approx(value,
                                                                                                     rel=1e-6)
    assert signals.drifted_bins("psi", 10, 0.0) == (0.1,) * 10


def test_a_drift_effect_fails_its_gate_and_small_windows_alarm_falsely() -> None:
    text = """rollout drifting {
  traffic RATE rps
  METRICS
  canary { 10% for 6h  100% }
  gate drift: psi(scores) < 0.1, vs training, every 1h
  on drift fail: pause
  scenario shifted { drift 0.3 after 2h }
}""".replace("METRICS", METRICS)
    _, doc = simulate(text.replace("RATE", "100"), runs=200, scenarios=("null", "shifted"))
    assert scenario(doc, "null")["p_pause"]["estimate"] == 0.0  # 36,000 scores an hour: no false alarm
    shifted = scenario(doc, "shifted")
    assert shifted["p_pause"]["estimate"] == 1.0
    assert shifted["harm_starts_s"] == 7200.0
    # About 100 scores an hour: PSI > 0.1 by chance most hours (statistics reference 1.8).
    _, doc = simulate(text.replace("RATE", "0.28"), runs=200)
    assert doc["scenarios"][0]["p_pause"]["estimate"] > 0.9


def test_chunks_depend_on_the_runs_only() -> None:
    assert runner.chunk_sizes(1) == [1]
    assert runner.chunk_sizes(999) == [999]
    assert runner.chunk_sizes(2000) == [1000, 1000]
    assert runner.chunk_sizes(10_000) == [5000, 5000]
    assert runner.chunk_sizes(12_000) == [4000] * 3
    assert sum(runner.chunk_sizes(7777)) == 7777 and max(runner.chunk_sizes(7777)) <= runner.CHUNK_RUNS


def test_sweeps_read_their_ends_like_scenario_effects() -> None:
    program = load_text((ROOT / "examples" / "ranker-v2.rollout").read_text(), "ranker-v2.rollout", root=ROOT)
    (rollout,) = program.rollouts()
    sweep = runner.parse_sweep(rollout, "ctr=-5%..0%", 6)
    assert [text for text, _ in sweep.changes()] == ["-5%", "-4%", "-3%", "-2%", "-1%", "+0%"]
    assert runner.parse_sweep(rollout, "latency=0ms..40ms", 5).changes()[1][1].value == pytest.approx(0.01)
    for bad, why in (("ctr", "TARGET=FROM..TO"), ("nope=1%..2%", "not a metric"),
                     ("ctr=-5%..3ms", "does not fit `ctr`"), ("latency=+10%..40ms", "same kind"),
                     ("latency=1..2", "duration")):
        with pytest.raises(runner.SimulationError, match=why):
            runner.parse_sweep(rollout, bad)


# -- the command ------------------------------------------------------------------------------------


SPEC = ROOT / "examples" / "ranker-v2.rollout"


def test_same_seed_same_bytes_for_one_and_two_workers(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", str(SPEC), "--runs", "1000", "--seed", "7", "--format", "json", "--scenario", "null",
            "--scenario", "outage"]
    code1, one, _ = run_cli([*args, "--workers", "1"], capsys)
    code2, two, _ = run_cli([*args, "--workers", "2"], capsys)
    assert code1 == code2 == 0
    assert one == two
    _, other, _ = run_cli([*args[:6], "8", *args[7:], "--workers", "1"], capsys)
    assert other != one


def test_json_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["simulate", str(SPEC), "--runs", "40", "--format", "json", "--workers", "1"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert {"spec", "runs", "seed", "scenarios"} <= set(doc)
    assert [s["name"] for s in doc["scenarios"]] == ["null", "at-mde", "regression", "outage", "shift"]
    for s in doc["scenarios"]:
        assert {"name", "p_rollback", "p_promote", "p_pause", "rollback_by_gate", "exposure", "harmful_exposure",
                "time_to_detect", "duration", "looks"} <= set(s)
        for key in ("p_rollback", "p_promote", "p_pause"):
            assert set(s[key]) == {"estimate", "se"}
        assert {"mean", "p50", "p95"} <= set(s["exposure"]) and {"mean", "p50", "p95"} <= set(s["duration"])
        assert set(s["time_to_detect"]) == {"p50", "p95"}
        for gate in s["rollback_by_gate"].values():
            assert gate["kind"] in ("slo", "drift", "business", "srm") and {"estimate", "se"} <= set(gate)
    outage = doc["scenarios"][3]
    assert outage["rollback_by_gate"]["errors"]["estimate"] == 1.0
    assert [look["stage"] for look in doc["scenarios"][0]["looks"]] == ["ramp", "stage-3", "stage-4"]


def test_text_table_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "sim.html"
    code, out, _ = run_cli(["simulate", str(SPEC), "--runs", "30", "--workers", "1", "--effect", "ctr=-4%..0%",
                            "--points", "3", "--report", str(report), "--effect", "ctr=-4%..0%"], capsys)
    assert code == 0
    assert out.splitlines()[0] == "rollout `ranker-v2`: 30 runs a scenario, seed 1"
    assert "ctr=-2%" in out and "assumed:" in out
    assert out.count("\nctr=-2%") == 1  # a sweep given twice runs once
    page = report.read_text(encoding="utf-8")
    assert "Code generated by rolloutlang" in page[:512]
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    svgs = page.split("<figure>")[1:]
    assert len(svgs) == 5  # share, exposure, P(rollback) by time; power and time to detect across `ctr`
    for svg in svgs:
        ElementTree.fromstring(svg.split("</figure>")[0])
    # A second run replaces the page it wrote...
    assert run_cli(["simulate", str(SPEC), "--runs", "20", "--workers", "1", "--scenario", "null", "--report",
                    str(report)], capsys)[0] == 0
    # ...but not a file somebody else wrote.
    mine = tmp_path / "notes.html"
    mine.write_text("<p>my notes</p>")
    code, _, err = run_cli(["simulate", str(SPEC), "--runs", "20", "--report", str(mine)], capsys)
    assert code == 2 and "--force" in err and mine.read_text() == "<p>my notes</p>"


def test_strict_exits_1_when_a_promise_is_missed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.rollout"
    text = SPEC.read_text().replace("  on latency, errors fail: rollback now",
                                    "  budget false rollbacks <= 1%\n  on latency, errors fail: rollback now")
    tight = text.replace("gate errors:  error rate < 0.5%, baseline 0.1%",
                         "gate errors:  error rate < 0.5%, baseline 0.499%")
    spec.write_text(tight)
    code, out, err = run_cli(["simulate", str(spec), "--runs", "40", "--workers", "1", "--scenario", "null",
                              "--strict", "--format", "json"], capsys)
    assert code == 1 and "error[RL810]" in err
    (check,) = [c for c in json.loads(out)["checks"] if c["kind"] == "false-rollbacks"]
    assert check["missed"] and check["simulated"] > 0.5
    code, _, err = run_cli(["simulate", str(spec), "--runs", "40", "--workers", "1", "--scenario", "null"], capsys)
    assert code == 0 and "warning[RL810]" in err
    spec.write_text(text)
    code, out, err = run_cli(["simulate", str(spec), "--runs", "200", "--workers", "1", "--strict",
                              "--scenario", "null", "--scenario", "at-mde"], capsys)
    assert code == 0 and "RL81" not in err
    assert "ok: gate `ctr` at its sized effect" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--scenario", "outtage"], "no scenario `outtage`; did you mean `outage`?"),
    (["--effect", "ctr=-5%"], "write TARGET=FROM..TO"),
    (["--start-hour", "9"], "needs `peak`"),
    (["--approval-delay", "soon"], "--approval-delay"),
])
def test_usage_problems_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["simulate", str(SPEC), "--runs", "10", *args], capsys)
    assert code == 2 and message in err


def test_a_spec_with_errors_is_not_simulated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text(SPEC.read_text().replace("1%       for 2h", "1%       for 2"))
    code, out, err = run_cli(["simulate", str(spec)], capsys)
    assert code == 1 and out == "" and "RL201" in err


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["simulate", "--help"], capsys)
    assert code == 0 and "rollout simulate examples/ranker-v2.rollout" in out


def test_progress_bar_only_on_a_terminal_and_after_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import time

    from rolloutlang import cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(cli.sys, "stderr", stream)
        clock = [100.0]
        monkeypatch.setattr(time, "monotonic", lambda clock=clock: clock[0])
        bar = cli._Progress()
        bar(0.1)
        assert stream.getvalue() == ""  # not within the first second
        clock[0] += 1.5
        bar(0.5)
        bar.close()
        assert ("[###############               ]  50%" in stream.getvalue()) is shown
        assert stream.getvalue().endswith("\r") is shown


def test_a_baseline_that_breaks_its_gate_is_said(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text(SPEC.read_text().replace("baseline 180ms", "baseline 260ms"))
    code, out, err = run_cli(["simulate", str(spec), "--runs", "20", "--workers", "1", "--scenario", "null"], capsys)
    assert code == 0 and "warning[RL805]" in err
    assert "rolled back by latency 100%" in out


def test_a_look_before_labels_mature_pauses_the_plan_and_a_missed_power_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Labels a median 6h late (p95 about 43h), `analysis matured`, a look every 6h: the first looks have no data."""
    text = """rollout late {
  traffic 200 rps
  metric conv: binary, baseline 5%, labels lognormal(median 6h, sigma 1.2)
  canary { 50% for 4d  100% }
  gate conv: conv change > -2% relative, fail if shown harmful, power 80% at -10%, msprt, analysis matured, every EVERY
  on conv fail: rollback
}"""
    _, doc = simulate(text.replace("EVERY", "6h"), runs=100, scenarios=("at-mde",))
    mde = scenario(doc, "at-mde")
    assert mde["p_pause"]["estimate"] == 1.0 and mde["pause_by_gate"]["conv"]["no_data"] == 1.0
    assert mde["looks"][0]["p_no_data"] == 1.0 and mde["looks"][0]["labelled"]["candidate"] == 0.0
    assert mde["gates"]["conv"]["caught"]["estimate"] == 0.0
    spec = tmp_path / "late.rollout"
    header = "".join(line + "\n" for line in SPEC.read_text().splitlines()[2:8])  # service to models
    spec.write_text(text.replace("EVERY", "6h").replace("rollout late {\n", "rollout late {\n" + header))
    code, _, err = run_cli(["simulate", str(spec), "--runs", "50", "--workers", "1", "--scenario", "at-mde",
                            "--strict"], capsys)
    assert code == 1 and "error[RL811]" in err
    assert "100% of runs paused first, on a look of `conv` without data" in err and "analysis arrived" in err
    # Looking once, at the end of the stage, the labels have matured: the gate decides.
    _, doc = simulate(text.replace("EVERY", "4d"), runs=100, scenarios=("at-mde",))
    mde = scenario(doc, "at-mde")
    assert mde["p_pause"]["estimate"] == 0.0 and mde["looks"][0]["labelled"]["candidate"] > 0


def test_default_workers_are_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    if hasattr(os, "sched_getaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
        monkeypatch.setattr(os, "cpu_count", lambda: 64)
        assert runner.usable_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert runner.usable_cores() == 1


def test_the_pipelines_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`rollout simulate FILE --seed 1 --strict --format json --report simulate.html > simulate.json`, as the
    generated GitLab and GitHub pipelines run it: stdout is the JSON document alone, the page is written
    beside it, and a missed promise exits 1 with both artifacts still complete."""
    monkeypatch.chdir(tmp_path)
    contract = ["--seed", "1", "--strict", "--format", "json", "--report", "simulate.html"]
    small = ["--runs", "100", "--workers", "1", "--scenario", "null", "--scenario", "at-mde"]
    code, out, err = run_cli(["simulate", str(SPEC), *contract, *small], capsys)
    assert code == 0 and "error" not in err
    doc = json.loads(out)  # nothing but the document on stdout
    assert doc["seed"] == 1 and doc["runs"] == 100 and not any(c["missed"] for c in doc["checks"])
    page = (tmp_path / "simulate.html").read_text(encoding="utf-8")
    assert "ok: gate `ctr` at its sized effect" in page
    assert not list(tmp_path.glob(".*tmp*")) and sorted(p.name for p in tmp_path.iterdir()) == ["simulate.html"]

    spec = tmp_path / "tight.rollout"
    spec.write_text(SPEC.read_text().replace("  on latency, errors fail: rollback now",
                                             "  budget false rollbacks <= 1%\n  on latency, errors fail: rollback now")
                    .replace("error rate < 0.5%, baseline 0.1%", "error rate < 0.5%, baseline 0.499%"))
    code, out, err = run_cli(["simulate", str(spec), *contract, *small], capsys)
    assert code == 1 and "error[RL810]" in err and "tight.rollout:" in err
    doc = json.loads(out)
    (missed,) = [c for c in doc["checks"] if c["missed"]]
    assert missed["kind"] == "false-rollbacks" and missed["promised"] == 0.01
    assert "MISSED: false rollbacks" in (tmp_path / "simulate.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("hour", [14.0, 2.0, 20.5])
def test_start_hour_sets_where_in_the_day_the_plan_runs(hour: float, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Exposure of a 6h stage at 10% is the daily shape integrated from --start-hour: share x R x (T + d x
    day / 2pi x [sin(2pi (h0 + T - peak) / day) - sin(2pi (h0 - peak) / day)])."""
    spec = tmp_path / "day.rollout"
    header = "".join(line + "\n" for line in SPEC.read_text().splitlines()[2:8])
    spec.write_text("rollout day {\n" + header + "  traffic 1000 rps, diurnal 40%, peak 14h\n"
                    "  canary { 10% for 6h  100% }\n}\n")
    code, out, err = run_cli(["simulate", str(spec), "--runs", "5", "--workers", "1", "--scenario", "null",
                              "--start-hour", f"{hour}", "--format", "json"], capsys)
    assert code == 0, err
    day, t = 24.0, 6.0
    hours = t + 0.4 * day / (2 * math.pi) * (math.sin(2 * math.pi * (hour + t - 14) / day)
                                             - math.sin(2 * math.pi * (hour - 14) / day))
    assert json.loads(out)["scenarios"][0]["exposure"]["mean"] == pytest.approx(0.1 * 1000 * hours * 3600, rel=1e-5)


@pytest.mark.parametrize("example", sorted(p.stem for p in (ROOT / "examples").glob("*.rollout")))
def test_every_example_simulates_every_scenario(example: str) -> None:
    """A few runs of each scenario of every example: every construct either simulated or named as not.

    The nine-day plan of ctr-ranker-longrun (13,000 one-minute windows a run) plays `null` only, to keep this
    test quick; the other scenarios differ only in their effects.
    """
    from rolloutlang.loader import load

    program = load(ROOT / "examples" / f"{example}.rollout")
    assert not program.has_errors
    for rollout in program.rollouts():
        only = ("null",) if example == "ctr-ranker-longrun" else ()
        opts = runner.Options(runs=20, seed=1, workers=1, scenarios=only)
        doc = runner.simulate(rollout, build_plan(rollout), opts).to_json()
        names = [s["name"] for s in doc["scenarios"]]
        expected = list(only) or [n for n in ("null", "at-mde") if n in names] + [s.name for s in rollout.scenarios]
        assert names == expected
        assert all(0.0 <= s["p_rollback"]["estimate"] <= 1.0 for s in doc["scenarios"])
