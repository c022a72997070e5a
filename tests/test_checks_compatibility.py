"""Compatibility checks RL420-RL425 and the drift-target reference check RL426."""

from __future__ import annotations

import pytest

from rolloutlang import ir
from rolloutlang.checks.compatibility import classify_bump
from rolloutlang.diagnostics import Diagnostic, Severity
from tests import helpers
from tests.helpers import A, B, at, one, pos, rl4xx_rl5xx_rl65x, sub

SIG = """  signature {
    in  user_id: int64, item_ids: list<int64>
    out scores: list<float32>
  }
"""

BASE = f"""rollout ranker-v2 {{
  service ranker
  model stable    ranker 1.4.2 @ sha256:{A}
  model candidate ranker 1.5.0 @ sha256:{B}

{SIG}
  metrics prometheus "http://prometheus.monitoring:9090"
  canary {{ 5% for 2h  100% }}
  gate errors: error rate < 0.5%   every 5m
  gate drift:  psi(scores) < 0.2   every 30m
  on errors fail: rollback now
  on drift fail:  pause
}}
"""

EMB = f"""rollout embedder-v3 {{
  service embedder
  model stable    embedder 2.3.0 @ sha256:{A}
  model candidate embedder 3.0.0 @ sha256:{B}

  signature stable    {{ in text: string  out embedding: vector<float32, 256> }}
  signature candidate {{ in text: string  out embedding: vector<float32, 384> }}

  consumers {{
    search-ranker  expects embedding 256   adapter "pca-384-to-256"
    related-items  expects embedding 384  # waive RL411: it rolls back together with the model
  }}

  metrics prometheus "http://prometheus.monitoring:9090"
  blue-green {{ preview for 2h, promote manual }}
  gate errors: error rate < 0.1%   every 5m
  on errors fail: rollback now
}}
"""


def check(text: str) -> list[Diagnostic]:
    """The findings of the artifact, compatibility, statistics and privacy checks only."""
    return helpers.check(text, keep=rl4xx_rl5xx_rl65x)


def two_signatures(stable: str, candidate: str) -> str:
    return f"  signature stable {{ {stable} }}\n  signature candidate {{ {candidate} }}\n"


def versioned(text: str, candidate: str) -> str:
    return sub(text, "candidate ranker 1.5.0", f"candidate ranker {candidate}")


def test_clean_specs() -> None:
    assert check(BASE) == []
    assert check(EMB) == []


# -- RL420 ------------------------------------------------------------------------------------------


def test_rl420_no_signature_warns() -> None:
    text = sub(BASE, SIG, "")
    d = one(check(text), "RL420")
    assert d.severity is Severity.WARNING
    assert d.message == "no signature for the models: compatibility with the stable model can't be checked"
    assert at(d) == pos(text, "model candidate")
    assert "signature {" in d.help


def test_rl420_names_the_role_without_a_signature() -> None:
    text = sub(BASE, "  signature {", "  signature candidate {")
    d = one(check(text), "RL420")
    assert d.message == "no signature for the stable model: compatibility with the stable model can't be checked"


# -- RL421 breaking change ------------------------------------------------------------------------------

BREAKING = [
    ("in user_id: int64, item_ids: list<int64>  out scores: list<float32>",
     "in user_id: int64  out scores: list<float32>", "input `item_ids` is removed"),
    ("in user_id: int64  out scores: list<float32>",
     "in user_id: string  out scores: list<float32>", "input `user_id` changes type from int64 to string"),
    ("in user_id: int64  out scores: list<float32>",
     "in user_id: int64, country: category  out scores: list<float32>", "required input `country` is added"),
    ("in user_id: int64, country?: category  out scores: list<float32>",
     "in user_id: int64, country: category  out scores: list<float32>", "input `country` becomes required"),
    ("in user_id: int64  out scores: list<float32>, ids: list<int64>",
     "in user_id: int64  out scores: list<float32>", "output `ids` is removed"),
    ("in user_id: int64  out scores: vector<float32, 64>",
     "in user_id: int64  out scores: vector<float32, 128>",
     "output `scores` changes from vector<float32, 64> to vector<float32, 128>"),
]


@pytest.mark.parametrize(("stable", "candidate", "what"), BREAKING)
@pytest.mark.parametrize("version", ["1.5.0", "1.4.3"])
def test_rl421_breaking_change_needs_a_major_bump(stable: str, candidate: str, what: str, version: str) -> None:
    text = versioned(sub(BASE, SIG, two_signatures(stable, candidate)), version)
    text = sub(text, "psi(scores) < 0.2   every 30m", "psi(user_id) < 0.2, vs training, every 30m")
    d = one(check(text), "RL421")
    assert d.severity is Severity.ERROR
    assert d.message == f"{what}: a breaking change needs a major version bump"
    assert at(d) == pos(text, version)
    assert d.label == f"a {'minor' if version == '1.5.0' else 'patch'} bump of 1.4.2"
    assert d.notes[0].startswith(f"breaking: {what} at spec.rollout:")
    assert "release the candidate as 2.0.0" in d.help


@pytest.mark.parametrize(("stable", "candidate", "what"), BREAKING)
def test_breaking_change_with_a_major_bump_and_a_shadow_is_fine(stable: str, candidate: str, what: str) -> None:
    text = versioned(sub(BASE, SIG, two_signatures(stable, candidate)), "2.0.0")
    text = sub(text, "psi(scores) < 0.2   every 30m", "psi(user_id) < 0.2, vs training, every 30m")
    text = sub(text, "  canary", "  shadow 100% for 24h\n  canary")
    assert check(text) == []


def test_rl421_notes_every_breaking_field() -> None:
    text = versioned(sub(BASE, SIG, two_signatures(
        "in user_id: int64, item_ids: list<int64>  out scores: list<float32>",
        "in user_id: string  out scores: list<float64>")), "1.5.0")
    text = sub(text, "psi(scores) < 0.2   every 30m", "psi(user_id) < 0.2, vs training, every 30m")
    d = one(check(text), "RL421")
    assert [n.split(" at ")[0] for n in d.notes] == [
        "breaking: input `user_id` changes type from int64 to string",
        "breaking: input `item_ids` is removed",
        "breaking: output `scores` changes from list<float32> to list<float64>",
    ]


def test_zero_major_minor_bump_may_break_like_cargo() -> None:
    text = sub(sub(BASE, "ranker 1.4.2", "ranker 0.4.2"), "ranker 1.5.0", "ranker 0.5.0")
    text = sub(text, SIG, two_signatures("in user_id: int64  out scores: list<float32>",
                                         "in user_id: string  out scores: list<float32>"))
    text = sub(text, "psi(scores) < 0.2   every 30m", "psi(user_id) < 0.2, vs training, every 30m")
    codes = [d.code for d in check(text)]
    assert "RL421" not in codes
    assert codes == ["RL423"]  # but it is a major change: it needs a preview


# -- RL422 additive change in a patch ---------------------------------------------------------------------


@pytest.mark.parametrize(("candidate", "what"), [
    ("in user_id: int64, country?: category  out scores: list<float32>", "optional input `country` is added"),
    ("in user_id: int64  out scores: list<float32>, ids: list<int64>", "output `ids` is added"),
])
def test_rl422_additive_change_needs_a_minor_bump(candidate: str, what: str) -> None:
    sigs = two_signatures("in user_id: int64  out scores: list<float32>", candidate)
    text = versioned(sub(BASE, SIG, sigs), "1.4.3")
    d = one(check(text), "RL422")
    assert d.message == f"{what}: a new feature needs at least a minor version bump"
    assert at(d) == pos(text, "1.4.3")
    assert d.help == "release the candidate as 1.5.0"
    assert check(versioned(sub(BASE, SIG, sigs), "1.5.0")) == []


def test_patch_with_the_same_signature_is_fine() -> None:
    assert check(versioned(BASE, "1.4.3")) == []


# -- RL423 major without preview -------------------------------------------------------------------------------


def test_rl423_major_bump_needs_a_shadow_or_preview() -> None:
    text = versioned(BASE, "2.0.0")
    d = one(check(text), "RL423")
    assert d.message == "candidate 2.0.0 is a major version bump but nothing previews it"
    assert at(d) == pos(text, "2.0.0")
    assert "`shadow 100% for 24h`" in d.help and "blue-green" in d.help
    assert check(sub(text, "  canary", "  shadow 10% alongside canary\n  canary")) == []


def test_rl423_blue_green_needs_a_preview() -> None:
    text = sub(EMB, "preview for 2h, promote manual", "promote manual")
    assert one(check(text), "RL423").message == "candidate 3.0.0 is a major version bump but nothing previews it"


# -- RL424, RL425 consumers ---------------------------------------------------------------------------------------


def test_rl424_consumer_without_adapter_breaks() -> None:
    text = sub(EMB, 'embedding 256   adapter "pca-384-to-256"', "embedding 256")
    d = one(check(text), "RL424")
    assert d.message == "consumer `search-ranker` expects `embedding` with 256 dimensions but the candidate outputs 384"
    assert at(d) == pos(text, "search-ranker  expects")
    assert d.notes == ("the stable model outputs 256", "the candidate answers it from promotion")
    assert "adapter" in d.help and "`search-ranker expects embedding 384`" in d.help


def test_rl424_consumer_of_a_removed_output() -> None:
    text = sub(EMB, "out embedding: vector<float32, 256> }", "out embedding: vector<float32, 256>, "
                                                               "tokens: list<int64> }")
    text = sub(text, "  }\n\n  metrics", "    token-stats    expects tokens 16\n  }\n\n  metrics")
    d = one(check(text), "RL424")
    assert d.message == "consumer `token-stats` reads output `tokens`, which the candidate removes"
    assert at(d) == pos(text, "token-stats")
    assert check(sub(text, "expects tokens 16", 'expects tokens 16 adapter "retokenize"')) == []


def test_rl425_consumer_of_an_unknown_output() -> None:
    text = sub(EMB, "related-items  expects embedding 384", "related-items  expects embeding 384")
    d = one(check(text), "RL425")
    assert d.message == "consumer `related-items` reads unknown output `embeding`"
    assert at(d) == pos(text, "related-items")
    assert d.help == "did you mean `embedding`?"


def test_consumers_of_outputs_without_a_fixed_size_are_not_sized() -> None:
    text = sub(BASE, "  metrics", "  consumers { feed expects scores 50 }\n  metrics")
    assert check(text) == []


# -- RL426 drift targets -----------------------------------------------------------------------------------------


def test_rl426_drift_gate_on_an_unknown_field() -> None:
    text = sub(BASE, "psi(scores)", "psi(score)")
    d = one(check(text), "RL426")
    assert d.message == "drift gate `drift` watches `score`, which is not an input or output of the model"
    assert d.span is not None
    line, col = pos(text, "psi(score)")
    assert (d.span.line, d.span.col, d.span.end_col) == (line, col + 4, col + 4 + len("score"))
    assert d.help == "did you mean `scores`?"


def test_drift_gate_on_an_input_is_fine_and_needs_no_signature() -> None:
    assert check(sub(BASE, "psi(scores)", "psi(item_ids)")) == []
    no_sig = sub(BASE, SIG, "")
    assert [d.code for d in check(sub(no_sig, "psi(scores)", "psi(anything)"))] == ["RL420"]


# -- helpers -----------------------------------------------------------------------------------------------------


def v(major: int, minor: int, patch: int, pre: str = "") -> ir.SemVer:
    return ir.SemVer(major=major, minor=minor, patch=patch, prerelease=pre)


@pytest.mark.parametrize(("stable", "candidate", "bump"), [
    (v(1, 4, 2), v(2, 0, 0), "major"),
    (v(1, 4, 2), v(1, 5, 0), "minor"),
    (v(1, 4, 2), v(1, 4, 3), "patch"),
    (v(1, 4, 2), v(1, 4, 2), "none"),
    (v(1, 4, 2), v(1, 4, 1), "downgrade"),
    (v(2, 0, 0, "rc.1"), v(2, 0, 0), "prerelease"),
    (v(0, 4, 2), v(0, 5, 0), "major"),
    (v(0, 4, 2), v(0, 4, 3), "patch"),
])
def test_classify_bump(stable: ir.SemVer, candidate: ir.SemVer, bump: str) -> None:
    assert classify_bump(stable, candidate) == bump
