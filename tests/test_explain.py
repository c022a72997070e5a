"""`rollout explain`: the markdown a pull request gets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rolloutlang import ir
from rolloutlang.checks import run_checks
from rolloutlang.cli import main
from rolloutlang.explain import POWER_UNAVAILABLE, _cell, describe_gate, explain_program, explain_rollout, written_gate
from rolloutlang.loader import Program, load, load_text
from tests.helpers import RANKER_SPEC, demo_spec

ROOT = Path(__file__).resolve().parent.parent

CANARY = """
  canary {
    5%   for 1h
    mpr: 50% until approved
    100%
  }
  gate errors: error rate < 1% every 1m, fail after 2
  gate drift:  psi(score) < 0.2 every 10m
  on errors fail: rollback after 3m
  on drift fail: pause, notify "#ml-alerts"
"""


def ranker_program() -> Program:
    return load_text(RANKER_SPEC, "ranker-v2.rollout")


@pytest.fixture(scope="module")
def ranker_md() -> str:
    return explain_program(ranker_program())


def tables(md: str) -> list[list[list[str]]]:
    """Every markdown table as rows of cells; checks each row has the header's cell count."""
    out: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in md.split("\n"):
        if line.startswith("|"):
            assert line.endswith("|"), line
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]
            if current:
                assert len(cells) == len(current[0]), line
            current.append(cells)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def section(md: str, title: str) -> str:
    start = md.index(f"### {title}\n")
    end = md.find("\n### ", start + 1)
    return md[start:end if end >= 0 else len(md)]


def test_title_and_summary(ranker_md: str) -> None:
    lines = ranker_md.split("\n")
    assert lines[0] == "## Rollout `ranker-v2`: ranker 1.4.2 → 1.5.0"
    assert "service `ranker` in `recs`, owner #recs-ml-oncall" in lines
    assert "Mirror 100% of traffic for 24h, then a canary in 5 stages (1% → 5% → 25% → 50% → 100%)." in lines
    assert "Promotion after 56h. Traffic model: 12,000 requests/s on average." in lines


def test_phase_table(ranker_md: str) -> None:
    phases = tables(section(ranker_md, "Phases"))[0]
    assert phases[0] == ["#", "phase", "candidate", "mirrored", "duration", "starts", "candidate requests so far",
                         "share of traffic so far"]
    assert phases[2:] == [
        ["1", "`shadow`", "0%", "100%", "24h", "0s", "0", "0%"],
        ["2", "`stage-1`", "1%", "–", "2h", "24h", "864,000", "0.0769%"],
        ["3", "`stage-2`", "5%", "–", "6h", "26h", "13,824,000", "1%"],
        ["4", "`stage-3`", "25%", "–", "12h", "32h", "143,424,000", "7.55%"],
        ["5", "`stage-4`", "50%", "–", "12h", "44h", "402,624,000", "16.6%"],
        ["6", "`stage-5`", "100%", "–", "–", "56h", "402,624,000", "16.6%"],
    ]
    assert "The candidate also answers 1,036,800,000 mirrored requests" in ranker_md


def test_gate_table(ranker_md: str) -> None:
    gates = tables(section(ranker_md, "Gates"))[0]
    assert gates[0] == ["gate", "kind", "condition", "evaluated in", "on failure", "earliest rollback"]
    assert gates[2:] == [
        # as the spec writes them, units and all, and the options it leaves to their defaults
        ["`latency`", "SLO", "p99 latency < 250ms every 5m, fail after 2", "every phase", "rollback now",
         "at 10m, after 0 candidate requests"],
        ["`errors`", "SLO", "error rate < 0.5% every 5m, fail after 2", "every phase", "rollback now",
         "at 10m, after 0 candidate requests"],
        ["`drift`", "drift", "psi(scores) < 0.2 every 1h (by default: fail after 1, vs stable, bins 10)",
         "`shadow` to `stage-4`", 'pause, notify "#recs-ml-oncall"', "–"],
        ["`ctr`", "business", "ctr change > -1% relative, fail if shown harmful, power 80% at -3%, alpha 5% (by "
         "default: sequential obrien-fleming, one-sided, analysis arrived, a look at the end of each stage)",
         "`stage-1` to `stage-4`", "rollback", "at 26h, after 864,000 candidate requests"],
    ]


def test_power_section_comes_from_the_statistics_checks(ranker_md: str) -> None:
    power = section(ranker_md, "Power")
    from rolloutlang.plan import build_plan
    from rolloutlang.stats.gates import plan_gate

    (rollout,) = ranker_program().rollouts()
    gate = rollout.gate("ctr")
    assert isinstance(gate, ir.BusinessGate)
    gp = plan_gate(rollout, gate, build_plan(rollout))
    assert gp is not None and gp.characteristics is not None
    (table,) = tables(power)
    assert table[0] == ["gate", "look", "stage", "time", "labelled (stable / candidate)", "information",
                        "fail if Z ≤", "promote if Z ≥", "power by here"]
    assert [r[2] for r in table[2:]] == list(dict.fromkeys(f"`{s.look.stage}`" for s in gp.samples))
    by_look = gp.power_by_look()
    assert table[-1][-1] == f"{100 * by_look[-1]:.3g}%"
    assert table[-1][-3] == f"{gp.characteristics.bounds.lower[-1]:.2f}"
    # The 1% stage has almost no information: an O'Brien-Fleming gate cannot roll back there.
    assert table[2][-1] == "0%" and table[2][-3] == "–"
    # One sentence per gate says what it tests, at what error and with what power.
    assert ("- `ctr` fails only on evidence that the change in `ctr` is below -1% relative (a group-sequential test "
            "(obrien-fleming) over 4 looks, alpha 5%: a candidate exactly at the margin fails 5% of the time); it "
            "catches a -3% relative change by the end of `stage-4` with probability") in power


def test_findings_are_the_checks(ranker_md: str) -> None:
    program = ranker_program()
    expected = sorted(run_checks(program), key=lambda d: d.sort_key())
    findings = section(ranker_md, "Findings")
    listed = re.findall(r"^- \*\*(\w+)\*\* `(RL\d+)` at `([^`]+)`: (.*)$", findings, flags=re.M)
    assert listed == [(d.severity.value, d.code, str(d.span), d.message) for d in expected]


def test_output_is_deterministic() -> None:
    a = explain_program(ranker_program())
    b = explain_program(ranker_program())
    assert a == b and a.endswith("\n")


def test_every_table_is_well_formed(ranker_md: str) -> None:
    assert len(tables(ranker_md)) == 3


def test_approval_stage_marks_lower_bounds_and_escapes_pipes() -> None:
    md = explain_program(load_text(demo_spec(CANARY), "spec.rollout"))
    assert "Promotion after 1h at the earliest; no upper bound: `mpr` waits until a person approves." in md
    phases = tables(section(md, "Phases"))[0]
    assert phases[2:] == [
        ["1", "`stage-1`", "5%", "–", "1h", "0s", "18,000", "5%"],
        ["2", "`mpr`", "50%", "–", "until approved", "1h", "≥ 18,000", "5%"],
        ["3", "`stage-3`", "100%", "–", "–", "≥ 1h", "≥ 18,000", "5%"],
    ]
    gates = tables(section(md, "Gates"))[0]
    assert gates[2][4] == "rollback after 3m"
    assert gates[3][4] == 'pause, notify "#ml-alerts"'
    # A channel cannot hold `|` any more (RL291), but a table cell still escapes one.
    assert _cell("pause, notify #a|b") == "pause, notify #a\\|b"
    assert gates[2][5] == "at 5m, after 1,500 candidate requests"
    assert "No business gate: nothing to size." in md
    assert "No errors or warnings." in md


def test_no_traffic_model() -> None:
    md = explain_program(load_text(demo_spec(CANARY, traffic=""), "spec.rollout"))
    assert "No traffic model: exposure is shown as a share of traffic only." in md
    phases = tables(section(md, "Phases"))[0]
    assert [row[6] for row in phases[2:]] == ["–", "–", "–"]
    assert tables(section(md, "Gates"))[0][2][5] == "at 5m"


BUSINESS = CANARY.replace("mpr: 50% until approved", "mpr: 50% for 2h") + """
  metric ctr: binary, baseline 4%, labels immediate
  gate ctr: ctr change > -1% relative, fail if shown harmful, power 80% at -10%
  on ctr fail: rollback
"""


def test_explain_reuses_the_checks_plan_and_power(monkeypatch: pytest.MonkeyPatch) -> None:
    # `rollout explain` shows the plan and power figures the checks judged, computed once.
    from rolloutlang import plan as plan_module
    from rolloutlang.stats import gates

    calls: list[str] = []
    real_plan_gate, real_build_plan = gates.plan_gate, plan_module.build_plan

    def counting_power(*args: object, **kw: object) -> object:
        calls.append("power")
        return real_plan_gate(*args, **kw)  # type: ignore[arg-type]

    def counting_plan(*args: object, **kw: object) -> object:
        calls.append("plan")
        return real_build_plan(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(gates, "plan_gate", counting_power)
    monkeypatch.setattr("rolloutlang.plan.build_plan", counting_plan)
    explain_program(load_text(demo_spec(BUSINESS), "spec.rollout"))
    assert calls.count("power") == 1 and calls.count("plan") == 1


def test_power_without_traffic_says_why() -> None:
    (rollout,) = load_text(demo_spec(BUSINESS, traffic=""), "spec.rollout").rollouts()
    assert section(explain_rollout(rollout), "Power") == f"### Power\n\n{POWER_UNAVAILABLE}: no traffic model.\n"


def test_findings_list_errors_with_help() -> None:
    text = demo_spec(CANARY.replace("5%   for 1h", "5%   for 0m"))
    md = explain_program(load_text(text, "spec.rollout"))
    findings = section(md, "Findings")
    assert findings.startswith("### Findings\n\n1 error:\n\n- **error** `RL312` at `spec.rollout:11:10`: stage "
                               "`stage-1` lasts 0s: no gate can look at it\n  - help: give the gates time")


# Rebuilt from the IR (no source at hand): every option the gate has, its own or its default.
@pytest.mark.parametrize(("gate", "text"), [
    ("gate g: p95 latency <= 1s every 30s, fail after 3", "p95 latency <= 1s, every 30s, fail after 3"),
    ("gate g: saturation < 80%", "saturation < 80%, every 1m, fail after 1"),
    ("gate g: adwin(score), delta 0.001, every 15m", "adwin(score), delta 0.001, every 15m, fail after 1, vs stable"),
    ("gate g: ctr change > -0.5% absolute, fail if shown harmful, power 90% at -1%, msprt, tau 0.2%, every 6h, "
     "from mpr",
     "ctr change > -0.005 absolute, fail if shown harmful, power 90% at -0.01, msprt, one-sided, tau 0.002, "
     "analysis arrived, every 6h, from mpr (by default: alpha 5%)"),
    ("gate g: ctr change > -1%, pass if shown non-inferior, sequential hsd(-4), two-sided, analysis matured",
     "ctr change > -1% relative, pass if shown non-inferior, power 80% at 0%, sequential hsd(-4), two-sided, "
     "analysis matured (by default: alpha 5%, a look at the end of each stage)"),
    ("gate g: p99 latency change < +10%, baseline 180ms, min samples 500",
     "p99 latency change < +10%, baseline 180ms, every 1m, fail after 1, min samples 500"),
    ("gate g: error rate change < +0.1% absolute", "error rate change < +0.1% absolute, every 1m, fail after 1"),
    ("gate g: srm, every 30m", "srm, alpha 0.1%, every 30m"),
    ('gate g: run "make parity", from mpr', 'run "make parity", timeout 30m, from mpr (by default: once, as its '
     "phase begins)"),
    ('gate g: call "https://load.example/r" json "p99" < 250, every 10m, fail after 2, timeout 2m',
     'call "https://load.example/r" json "p99" < 250, timeout 2m, every 10m, fail after 2'),
])
def test_describe_gate(gate: str, text: str) -> None:
    body = CANARY + "  metric ctr: binary, baseline 4%\n  " + gate + "\n  on g fail: pause\n"
    (rollout,) = load_text(demo_spec(body), "spec.rollout").rollouts()
    g = rollout.gate("g")
    assert g is not None
    assert describe_gate(g) == text


@pytest.mark.parametrize(("gate", "text"), [
    # as written: the units, the order and the options of the spec; the defaults it leaves out follow
    ("gate g: p99 latency < 0.25s   every 90s,\n          fail after 3  # a comment", "p99 latency < 0.25s every 90s, "
     "fail after 3"),
    ('gate g: run "a  b, # not a comment"', 'run "a  b, # not a comment" (by default: timeout 30m, once, as its phase '
     "begins)"),
    ("gate g: saturation < 80%", "saturation < 80% (by default: every 1m, fail after 1)"),
])
def test_explain_writes_gates_as_the_spec_does(gate: str, text: str) -> None:
    body = CANARY + "  " + gate + "\n  on g fail: pause\n"
    program = load_text(demo_spec(body), "spec.rollout")
    (rollout,) = program.rollouts()
    g = rollout.gate("g")
    assert g is not None
    assert describe_gate(g, written_gate(g, program.sources)) == text
    md = explain_program(program)
    assert _cell(text) in md


def test_cli_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "examples" / "ranker-v2.rollout"
    main(["explain", "--root", str(ROOT), str(path)])
    assert capsys.readouterr().out == explain_program(load(path, ROOT))


def test_explain_simulate_adds_the_simulated_figures_beside_the_power_table(capsys: pytest.CaptureFixture[str]
                                                                             ) -> None:
    path = ROOT / "examples" / "ranker-v2.rollout"
    main(["explain", "--simulate", "--runs", "40", "--workers", "1", "--root", str(ROOT), str(path)])
    md = capsys.readouterr().out
    simulated = section(md, "Simulated (40 runs a scenario, seed 1)")
    assert md.index("### Power") < md.index("### Simulated") < md.index("### Findings")
    assert "| `null` | 0% | 100% | 0% |" in simulated
    assert "- `outage`: rolled back by errors 100%" in simulated
    assert "ok: gate `ctr` at its sized effect: 100% ± 0 (declared power 80%, the gate alone 100% by the checks)" \
        in simulated
    # Without --simulate, nothing is simulated (and simpy is not needed).
    main(["explain", "--root", str(ROOT), str(path)])
    assert "### Simulated" not in capsys.readouterr().out
