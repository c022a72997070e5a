"""`rollout check --format gitlab`: a GitLab code quality report of the findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import demo_spec, run_cli

BAD = demo_spec("""  canary { 5% for 1h  100% }
  gate errors: error rate < 1% every 1m
  gate e2: error rate < 2% every 1m
  on errors, e2 fail: rollback now
  pipeline { image "registry.example.com/ml/ci" @ latest }""")


def _report(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list]:
    import json

    (tmp_path / "pyproject.toml").write_text("")
    spec = tmp_path / "spec.rollout"
    spec.write_text(text)
    code, out, _ = run_cli(["check", "--format", "gitlab", *extra, str(spec)], capsys)
    return code, json.loads(out)


def test_report_lists_each_finding_located_with_a_unique_stable_fingerprint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, issues = _report(tmp_path, BAD, capsys)
    assert code == 1 and issues
    for issue in issues:
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["location"]["path"] == "spec.rollout" and issue["location"]["lines"]["begin"] >= 1
        assert issue["description"].startswith(issue["check_name"] + ": ")
        assert len(issue["fingerprint"]) == 32
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    tag = next(i for i in issues if i["check_name"] == "RL402")
    assert tag["severity"] == "major" and tag["location"]["lines"]["begin"] == 13

    # A blank line moves every finding down one line; their fingerprints stay.
    _, moved = _report(tmp_path, "\n" + BAD, capsys)
    assert [i["fingerprint"] for i in moved] == [i["fingerprint"] for i in issues]
    assert [i["location"]["lines"]["begin"] for i in moved] == [i["location"]["lines"]["begin"] + 1 for i in issues]


def test_warnings_are_minor_unless_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, issues = _report(tmp_path, BAD, capsys)
    severities = {i["check_name"]: i["severity"] for i in issues}
    assert "minor" in severities.values()
    _, strict = _report(tmp_path, BAD, capsys, "--strict")
    assert {i["severity"] for i in strict} == {"major"}


def test_a_clean_spec_gives_an_empty_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["check", "--format", "gitlab", "examples/ranker-v2.rollout"], capsys)
    assert code == 0 and out == "[]\n"
