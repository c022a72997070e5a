"""Artifact checks RL401-RL408, semver precedence, and the examples in docs/checks.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rolloutlang import ir
from rolloutlang.checks.artifacts import compare_semver, digest_problem
from rolloutlang.diagnostics import Diagnostic, Severity
from tests import helpers
from tests.helpers import A, B, at, one, pos, rl4xx_rl5xx_rl65x, sub

ROOT = Path(__file__).resolve().parent.parent
C = "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"

BASE = f"""rollout ranker-v2 {{
  service   ranker
  namespace recs
  owner     "#recs-ml-oncall"

  model stable    ranker 1.4.2 @ sha256:{A}
  model candidate ranker 1.5.0 @ sha256:{B}

  signature {{
    in  user_id: int64, item_ids: list<int64>
    out scores: list<float32>
  }}

  serving {{
    image "registry.example.com/recs/ranker-server" @ sha256:{C}
  }}

  metrics prometheus "http://prometheus.monitoring:9090"

  canary {{
    5%   for 2h
    100%
  }}

  gate errors: error rate < 0.5%   every 5m
  gate drift:  psi(scores) < 0.2   every 30m
  on errors fail: rollback now
  on drift fail:  pause
}}
"""


def check(text: str) -> list[Diagnostic]:
    """The findings of the artifact, compatibility, statistics and privacy checks only."""
    return helpers.check(text, keep=rl4xx_rl5xx_rl65x)


def test_base_spec_is_clean() -> None:
    assert check(BASE) == []


# -- RL401 unpinned ------------------------------------------------------------------------------


def test_rl401_model_without_pin() -> None:
    text = sub(BASE, f"1.5.0 @ sha256:{B}", "1.5.0")
    d = one(check(text), "RL401")
    assert d.severity is Severity.ERROR
    assert d.message == "candidate model `ranker` is not pinned by digest"
    assert at(d) == pos(text, "model candidate")
    assert "`model candidate ranker 1.5.0 @ sha256:<64 lower-case hex digits>`" in d.help


def test_rl401_serving_image_without_pin_points_at_the_image() -> None:
    text = sub(BASE, f'ranker-server" @ sha256:{C}', 'ranker-server"')
    d = one(check(text), "RL401")
    assert d.message == "serving image `registry.example.com/recs/ranker-server` is not pinned by digest"
    assert d.span is not None
    assert at(d) == pos(text, "image ")
    assert d.span.end_col == pos(text, 'ranker-server"')[1] + len('ranker-server"')


def test_image_digest_inside_the_reference_counts_as_a_pin() -> None:
    text = sub(BASE, f'ranker-server" @ sha256:{C}', f'ranker-server@sha256:{C}"')
    assert check(text) == []
    bad = sub(BASE, f'ranker-server" @ sha256:{C}', 'ranker-server@sha256:abc"')
    d = one(check(bad), "RL403")
    assert at(d) == pos(bad, "image ")


# -- RL402 tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["latest", "v2"])
def test_rl402_model_pinned_to_a_tag(tag: str) -> None:
    text = sub(BASE, f"1.5.0 @ sha256:{B}", f"1.5.0 @ {tag}")
    d = one(check(text), "RL402")
    assert d.message == f"candidate model `ranker` is pinned to the mutable tag `{tag}`"
    assert d.span is not None
    line, col = pos(text, f"@ {tag}")
    assert (d.span.line, d.span.col, d.span.end_col) == (line, col + 2, col + 2 + len(tag))
    assert "@ sha256:" in d.help


def test_rl402_image_pinned_to_a_tag() -> None:
    text = sub(BASE, f'ranker-server" @ sha256:{C}', 'ranker-server" @ latest')
    d = one(check(text), "RL402")
    assert d.message == "serving image `registry.example.com/recs/ranker-server` is pinned to the mutable tag `latest`"
    assert at(d) == pos(text, "latest")


# -- RL403 bad digests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digest", "problem", "fix"),
    [
        (f"md5:{B[:32]}", "`md5` digests are not accepted", "sha256"),
        (f"sha256:{B[:12]}", "the digest has 12 hex digits, a sha256 digest has 64", "64"),
        (f"sha256:{B.upper()}", "the digest is not lower-case", f"`sha256:{B}`"),
        (f"sha256:{B[:63]}g", "the digest contains `g`, which is not a hex digit", "hex"),
    ],
)
def test_rl403_invalid_digest(digest: str, problem: str, fix: str) -> None:
    text = sub(BASE, f"sha256:{B}", digest)
    d = one(check(text), "RL403")
    assert d.message == f"candidate model `ranker` has an invalid digest: {problem}"
    assert at(d) == pos(text, digest)
    assert fix in d.help


def test_digest_problem_accepts_only_sha256_of_64_lower_hex() -> None:
    assert digest_problem(f"sha256:{A}") is None
    assert digest_problem(f"sha512:{A}{A}") is not None
    assert digest_problem(f"sha256:{A}0") is not None


# -- RL404, RL405 same artifact or version ---------------------------------------------------------


def test_rl404_same_digest() -> None:
    text = sub(BASE, f"1.5.0 @ sha256:{B}", f"1.5.0 @ sha256:{A}")
    d = one(check(text), "RL404")
    assert d.message == "the candidate is the same artifact as the stable model"
    assert at(d) == pos(text, f"sha256:{A}", nth=1)
    assert d.notes == (f"the stable model is pinned to it at spec.rollout:{pos(text, 'sha256:')[0]}:34",)


@pytest.mark.parametrize(("stable", "candidate"), [("1.4.2", "1.4.2"), ("1.4.2+build.1", "1.4.2+build.2")])
def test_rl405_same_version(stable: str, candidate: str) -> None:
    text = sub(sub(BASE, "ranker 1.4.2", f"ranker {stable}"), "ranker 1.5.0", f"ranker {candidate}")
    d = one(check(text), "RL405")
    assert d.message == f"the candidate has the stable model's version {candidate}"
    assert at(d) == pos(text, candidate, nth=1 if stable == candidate else 0)


# -- RL406, RL407 versions ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.4", "v2", "01.4.2", "1.4.2.1"])
def test_rl406_version_not_semver(version: str) -> None:
    text = sub(BASE, "stable    ranker 1.4.2", f"stable    ranker {version}")
    d = one(check(text), "RL406")
    assert d.message == f"version `{version}` of the stable model is not semver"
    line, col = pos(text, f"stable    ranker {version}")
    assert at(d) == (line, col + len("stable    ranker "))
    assert "MAJOR.MINOR.PATCH" in d.help


@pytest.mark.parametrize("candidate", ["1.3.0", "1.4.2-rc.1", "0.9.9"])
def test_rl407_downgrade_is_a_warning(candidate: str) -> None:
    text = sub(BASE, "candidate ranker 1.5.0", f"candidate ranker {candidate}")
    d = one(check(text), "RL407")
    assert d.severity is Severity.WARNING
    assert d.message == f"candidate {candidate} is older than stable 1.4.2"
    assert at(d) == pos(text, candidate)


@pytest.mark.parametrize("candidate", ["1.4.3-rc.1", "1.4.3", "1.5.0-alpha"])
def test_upgrades_are_not_downgrades(candidate: str) -> None:
    text = sub(BASE, "candidate ranker 1.5.0", f"candidate ranker {candidate}")
    assert check(text) == []


# -- RL408 missing model -------------------------------------------------------------------------------


def test_rl408_missing_stable_model() -> None:
    text = sub(BASE, f"  model stable    ranker 1.4.2 @ sha256:{A}\n", "")
    d = one(check(text), "RL408")
    assert d.message == "rollout `ranker-v2` declares no stable model"
    assert at(d) == pos(text, "model candidate")
    assert "`model stable NAME VERSION @ sha256:" in d.help


def test_rl408_missing_both_models_points_at_the_rollout() -> None:
    text = sub(sub(BASE, f"  model stable    ranker 1.4.2 @ sha256:{A}\n", ""),
               f"  model candidate ranker 1.5.0 @ sha256:{B}\n", "")
    d = one(check(text), "RL408")
    assert d.message == "rollout `ranker-v2` declares no stable and no candidate model"
    assert at(d) == (1, 1)


# -- semver precedence ---------------------------------------------------------------------------------


def semver(text: str) -> ir.SemVer:
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?", text)
    assert m is not None
    return ir.SemVer(major=int(m[1]), minor=int(m[2]), patch=int(m[3]), prerelease=m[4] or "", build=m[5] or "")


def test_semver_precedence_follows_the_spec_example() -> None:
    # semver.org 2.0.0, section 11.
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            expected = (i > j) - (i < j)
            assert compare_semver(semver(a), semver(b)) == expected, (a, b)
    assert compare_semver(semver("1.0.0+a"), semver("1.0.0+b")) == 0
