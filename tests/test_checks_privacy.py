"""Privacy checks on request logging, RL650-RL653."""

from __future__ import annotations

import pytest

from rolloutlang.diagnostics import Diagnostic, Severity
from tests import helpers
from tests.helpers import A, B, one, pos, rl4xx_rl5xx_rl65x, sub

BASE = f"""rollout fraud-scorer-v7 {{
  service scorer
  model stable    fraud 7.3.1 @ sha256:{A}
  model candidate fraud 7.3.2 @ sha256:{B}
  signature {{ in amount: float64, card_number: string  out prediction: float32 }}
  metrics prometheus "http://prometheus.monitoring:9090"
  canary {{ 5% for 2h  100% }}
  gate errors: error rate < 0.5%       every 5m
  gate drift:  psi(prediction) < 0.2   every 30m
  on errors fail: rollback now
  on drift fail:  pause

  log requests 5% {{
    fields trace_id, model_version, prediction, amount, card_number
    pii    card_number hashed
    retain 30d
  }}
}}
"""


def check(text: str) -> list[Diagnostic]:
    """The findings of the artifact, compatibility, statistics and privacy checks only."""
    return helpers.check(text, keep=rl4xx_rl5xx_rl65x)


def span_of(d: Diagnostic) -> tuple[int, int, int]:
    assert d.span is not None
    return d.span.line, d.span.col, d.span.end_col


def test_clean_spec_and_no_log_are_fine() -> None:
    assert check(BASE) == []
    start = BASE.index("  log requests")
    assert check(BASE[:start] + "}\n") == []


@pytest.mark.parametrize("treatment", ["hashed", "dropped"])
def test_treated_pii_is_fine(treatment: str) -> None:
    assert check(sub(BASE, "card_number hashed", f"card_number {treatment}")) == []


def test_rl650_pii_without_treatment() -> None:
    text = sub(BASE, "pii    card_number hashed", "pii    card_number")
    d = one(check(text), "RL650")
    assert d.severity is Severity.ERROR
    assert d.message == "pii field `card_number` is neither hashed nor dropped"
    line, col = pos(text, "pii    card_number")
    assert span_of(d) == (line, col + 7, col + 7 + len("card_number"))
    assert "`pii card_number hashed`" in d.help and "`pii card_number dropped`" in d.help


def test_rl651_pii_field_not_logged() -> None:
    text = sub(BASE, "pii    card_number hashed", "pii    card_numbr hashed")
    d = one(check(text), "RL651")
    assert d.severity is Severity.WARNING
    assert d.message == "pii field `card_numbr` is not a logged field"
    line, col = pos(text, "card_numbr ")
    assert span_of(d) == (line, col, col + len("card_numbr"))
    assert d.help == "did you mean `card_number`?"


def test_rl651_without_a_close_name_says_how_to_fix() -> None:
    text = sub(BASE, "pii    card_number hashed", "pii    card_number hashed, email hashed")
    d = one(check(text), "RL651")
    assert d.help == "add `email` to `fields`, or remove it from `pii`"


@pytest.mark.parametrize(("fields", "missing", "fixed"), [
    ("trace_id, prediction", "`model_version`", "fields trace_id, prediction, model_version"),
    ("model_version, prediction", "`trace_id`", "fields model_version, prediction, trace_id"),
    ("prediction", "`trace_id` and `model_version`", "fields prediction, trace_id, model_version"),
])
def test_rl652_trace_id_and_model_version_are_logged(fields: str, missing: str, fixed: str) -> None:
    text = sub(BASE, "fields trace_id, model_version, prediction, amount, card_number", f"fields {fields}")
    text = sub(text, "pii    card_number hashed\n", "")
    d = one(check(text), "RL652")
    assert d.message == f"logged requests lack {missing}"
    line, col = pos(text, f"fields {fields}")
    assert span_of(d) == (line, col + len("fields "), col + len(f"fields {fields}"))
    assert d.help.startswith(f"write `{fixed}`")


def test_rl652_log_without_fields_points_at_the_block() -> None:
    text = sub(BASE, "    fields trace_id, model_version, prediction, amount, card_number\n", "")
    text = sub(text, "pii    card_number hashed\n", "")
    d = one(check(text), "RL652")
    assert d.message == "logged requests lack `trace_id` and `model_version`"
    assert span_of(d)[:2] == pos(text, "log requests")


def test_rl653_zero_sample_warns_and_nothing_else() -> None:
    text = sub(sub(BASE, "log requests 5%", "log requests 0%"), "fields trace_id, model_version, ", "fields ")
    diags = check(text)
    d = one(diags, "RL653")
    assert [x.code for x in diags] == ["RL653"]
    assert d.severity is Severity.WARNING
    assert d.message == "request logging samples 0% of requests: nothing is logged"
    assert span_of(d)[:2] == pos(text, "log requests")
