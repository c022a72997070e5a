"""Every example under examples/ loads cleanly and passes `rollout check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rolloutlang import ir
from rolloutlang.cli import main
from rolloutlang.loader import load

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ALL_FILES = sorted(EXAMPLES.rglob("*.rollout"))
ENTRY_FILES = sorted(EXAMPLES.glob("*.rollout"))
REQUIRED = ("embedder-v3", "shadow-eval", "fraud-scorer", "ranker-v2", "policies/slo")


def _id(path: Path) -> str:
    return path.relative_to(EXAMPLES).as_posix()


def test_the_promised_examples_exist() -> None:
    names = {p.relative_to(EXAMPLES).with_suffix("").as_posix() for p in ALL_FILES}
    assert set(REQUIRED) <= names
    assert len(ENTRY_FILES) >= 5


@pytest.mark.parametrize("path", ALL_FILES, ids=_id)
def test_example_loads_without_diagnostics(path: Path) -> None:
    program = load(path, ROOT)
    assert [str(d.message) for d in program.diagnostics] == []
    assert program.main is not None


def _exit_code(argv: list[str]) -> int:
    """Run the CLI in-process; a clean `check` returns without calling sys.exit."""
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.parametrize("path", ENTRY_FILES, ids=_id)
def test_rollout_check_exits_zero(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --strict: a shipped example is one a careful reviewer approves, warnings included.
    assert _exit_code(["check", "--strict", "--format", "json", "--root", str(ROOT), str(path)]) == 0
    out = capsys.readouterr().out
    assert '"valid": true' in out and '"warning_count": 0' in out


def test_rollout_check_fails_on_a_broken_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The exit-0 assertion above means something: a real mistake gives 1."""
    (tmp_path / "pyproject.toml").write_text("")
    broken = (EXAMPLES / "embedder-v3.rollout").read_text().replace("p99 latency < 80ms", "p99 latency < 80")
    (tmp_path / "broken.rollout").write_text(broken)
    assert _exit_code(["check", "--format", "json", str(tmp_path / "broken.rollout")]) == 1
    assert '"RL201"' in capsys.readouterr().out


def test_rollout_check_subprocess_on_all_entry_examples() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rolloutlang", "check", *(str(p) for p in ENTRY_FILES)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", ENTRY_FILES, ids=_id)
def test_entry_examples_are_complete_rollouts(path: Path) -> None:
    """What reviewers ask of every example: pinned artifacts, semver, a signature, sources for gates."""
    program = load(path, ROOT)
    rollouts = program.rollouts()
    assert rollouts, "an entry example defines a rollout"
    for rollout in rollouts:
        assert {m.role for m in rollout.models} == {"stable", "candidate"}
        for model in rollout.models:
            assert model.semver is not None, model.version
            assert model.pin is not None and model.pin.digest is not None
            assert model.pin.algorithm == "sha256" and len(model.pin.hex or "") == 64
            assert model.pin.hex == (model.pin.hex or "").lower()
        assert rollout.serving is not None and rollout.serving.image_pin is not None
        assert rollout.serving.image_pin.digest is not None
        assert rollout.signature_for("stable") is not None and rollout.signature_for("candidate") is not None
        assert rollout.strategy is not None
        kinds = {g.kind for g in rollout.gates}
        if kinds & {"slo", "drift"}:
            assert rollout.metrics_source is not None
        if "business" in kinds:
            assert rollout.traffic is not None
        covered = {name for rule in rollout.rules for name in rule.gates}
        assert {g.name for g in rollout.gates} <= covered, "every gate is acted on by a rule"
        if rollout.request_log is not None:
            assert {"trace_id", "model_version"} <= set(rollout.request_log.fields)
            assert all(p.treatment is not None for p in rollout.request_log.pii)


def test_embedder_is_a_major_blue_green_with_consumers() -> None:
    (rollout,) = load(EXAMPLES / "embedder-v3.rollout", ROOT).rollouts()
    stable, candidate = rollout.model("stable"), rollout.model("candidate")
    assert stable is not None and candidate is not None
    assert stable.semver is not None and candidate.semver is not None
    assert candidate.semver.major == stable.semver.major + 1
    dims = {
        role: next(f.type.dims for f in sig.outputs if f.name == "embedding")
        for role in ("stable", "candidate")
        if (sig := rollout.signature_for(role)) is not None
    }
    assert dims == {"stable": (256,), "candidate": (384,)}
    assert isinstance(rollout.strategy, ir.BlueGreen)
    assert rollout.strategy.preview_s == 7200.0 and rollout.strategy.promotion == "manual"
    by_name = {c.name: c for c in rollout.consumers}
    assert by_name["search-ranker"].expects_dim == 256 and by_name["search-ranker"].adapter
    related = by_name["related-items"]
    assert related.expects_dim == 384 and related.route is not None and related.route.kind == "header"
    assert [(r.match.name, r.match.value, r.target) for r in rollout.routes] == [
        ("x-ml-preview", "true", "candidate")]


def test_shadow_eval_takes_no_live_traffic_before_approval() -> None:
    (rollout,) = load(EXAMPLES / "shadow-eval.rollout", ROOT).rollouts()
    assert rollout.shadow is not None and rollout.shadow.duration_s == 3 * 86400.0
    assert isinstance(rollout.strategy, ir.BlueGreen) and rollout.strategy.promotion == "manual"
    assert [a.what for a in rollout.approvals] == ["promotion"]


def test_fraud_scorer_uses_the_shared_gate_set() -> None:
    program = load(EXAMPLES / "fraud-scorer.rollout", ROOT)
    assert "examples/policies/slo.rollout" in program.files
    (rollout,) = program.rollouts()
    origins = {g.name: g.origin for g in rollout.gates}
    assert origins["latency"] == origins["errors"] == "slo-defaults"
    assert origins["decline-rate"] is None
    assert isinstance(rollout.strategy, ir.Rolling)
    stable, candidate = rollout.model("stable"), rollout.model("candidate")
    assert stable is not None and candidate is not None and stable.semver and candidate.semver
    assert (stable.semver.major, stable.semver.minor) == (candidate.semver.major, candidate.semver.minor)
    assert [h.name for h in rollout.pipeline] == ["smoke", "contract", "parity"]
    assert rollout.holdout is not None and rollout.holdout.role == "stable"
    assert rollout.request_log is not None
    assert {p.name: p.treatment for p in rollout.request_log.pii} == {"card_number": "hashed", "email": "dropped"}


def test_a_lifecycle_example_per_strategy_and_a_revert() -> None:
    """Issue 10: for each strategy an example that bakes after promotion, runs hooks past the default point and
    gates on the team's own job; and a revert."""
    found: dict[str, list[str]] = {}
    for path in ENTRY_FILES:
        for rollout in load(path, ROOT).rollouts():
            if rollout.revert is not None:
                found.setdefault("revert", []).append(path.stem)
                continue
            lifecycle = (rollout.bake is not None
                         and any(h.point != "before-traffic" for h in rollout.pipeline)
                         and any(isinstance(g, ir.JobGate) for g in rollout.gates))
            if lifecycle and rollout.strategy is not None:
                found.setdefault(rollout.strategy.kind, []).append(path.stem)
    assert set(found) == {"canary", "blue-green", "rolling", "revert"}, found
