"""SARIF 2.1.0 output: structure, schema, rules, locations, stability."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rolloutlang.checks import run_checks
from rolloutlang.cli import main
from rolloutlang.diagnostics import Diagnostic, error, warning
from rolloutlang.loader import load_text
from rolloutlang.sarif import artifact_uri, render_sarif, rule_titles, sarif_log
from rolloutlang.source import Span
from tests.helpers import D1, D2

ROOT = Path(__file__).resolve().parent.parent

# The part of the OASIS SARIF 2.1.0 schema (sarif-schema-2.1.0.json, draft-07) covering every object
# render_sarif writes, trimmed to the properties we use; like the original, each object forbids
# properties it does not define, so a misspelt key fails validation.
_STR = {"type": "string"}
SARIF_SUBSET: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {"type": "array", "items": {"$ref": "#/definitions/run"}},
    },
    "definitions": {
        "run": {
            "type": "object", "additionalProperties": False, "required": ["tool"],
            "properties": {
                "tool": {"$ref": "#/definitions/tool"},
                "results": {"type": "array", "items": {"$ref": "#/definitions/result"}},
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                "properties": {"type": "object"},
            },
        },
        "tool": {
            "type": "object", "additionalProperties": False, "required": ["driver"],
            "properties": {"driver": {"$ref": "#/definitions/toolComponent"}},
        },
        "toolComponent": {
            "type": "object", "additionalProperties": False, "required": ["name"],
            "properties": {
                "name": _STR, "version": _STR,
                "rules": {"type": "array", "uniqueItems": True,
                          "items": {"$ref": "#/definitions/reportingDescriptor"}},
            },
        },
        "reportingDescriptor": {
            "type": "object", "additionalProperties": False, "required": ["id"],
            "properties": {"id": _STR, "shortDescription": {"$ref": "#/definitions/multiformatMessageString"}},
        },
        "multiformatMessageString": {
            "type": "object", "additionalProperties": False, "required": ["text"],
            "properties": {"text": _STR},
        },
        "message": {
            "type": "object", "additionalProperties": False,
            "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
            "properties": {"text": _STR, "id": _STR},
        },
        "result": {
            "type": "object", "additionalProperties": False, "required": ["message"],
            "properties": {
                "ruleId": _STR,
                "ruleIndex": {"type": "integer", "minimum": -1},
                "level": {"enum": ["none", "note", "warning", "error"]},
                "message": {"$ref": "#/definitions/message"},
                "locations": {"type": "array", "items": {"$ref": "#/definitions/location"}},
                "suppressions": {"type": "array", "uniqueItems": True,
                                 "items": {"$ref": "#/definitions/suppression"}},
            },
        },
        "suppression": {
            "type": "object", "additionalProperties": False, "required": ["kind"],
            "properties": {
                "guid": _STR,
                "kind": {"enum": ["inSource", "external"]},
                "status": {"enum": ["accepted", "underReview", "rejected"]},
                "justification": _STR,
                "location": {"$ref": "#/definitions/location"},
            },
        },
        "location": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "physicalLocation": {"$ref": "#/definitions/physicalLocation"},
                "logicalLocations": {"type": "array", "items": {"$ref": "#/definitions/logicalLocation"}},
            },
        },
        "logicalLocation": {
            "type": "object", "additionalProperties": False,
            "properties": {"name": _STR, "fullyQualifiedName": _STR, "decoratedName": _STR, "kind": _STR,
                           "index": {"type": "integer", "minimum": -1},
                           "parentIndex": {"type": "integer", "minimum": -1}},
        },
        "physicalLocation": {
            "type": "object", "additionalProperties": False,
            "anyOf": [{"required": ["address"]}, {"required": ["artifactLocation"]}],
            "properties": {
                "artifactLocation": {"$ref": "#/definitions/artifactLocation"},
                "region": {"$ref": "#/definitions/region"},
            },
        },
        "artifactLocation": {
            "type": "object", "additionalProperties": False,
            "properties": {"uri": {"type": "string", "format": "uri-reference"}},
        },
        "region": {
            "type": "object", "additionalProperties": False,
            "properties": {k: {"type": "integer", "minimum": 1}
                           for k in ("startLine", "startColumn", "endLine", "endColumn")},
        },
    },
}


# RFC 3986 characters of a URI reference; jsonschema checks `format: uri-reference` only with an extra package.
URI_REFERENCE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#]|%[0-9A-Fa-f]{2})*")


def validate(doc: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(SARIF_SUBSET, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    validator.validate(doc)
    assert doc["$schema"].startswith("https://")
    for run in doc["runs"]:
        rules = run["tool"]["driver"]["rules"]
        for result in run["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            for loc in result.get("locations", []):
                assert URI_REFERENCE.fullmatch(loc["physicalLocation"]["artifactLocation"]["uri"])
                region = loc["physicalLocation"]["region"]
                assert (region["endLine"], region["endColumn"]) > (region["startLine"], region["startColumn"])


def span(line: int, col: int, end_col: int, file: str = "examples/a.rollout") -> Span:
    return Span(file=file, line=line, col=col, end_line=line, end_col=end_col)


def test_schema_subset_catches_mistakes() -> None:
    """The validator used below fails on what a broken writer would emit."""
    good = sarif_log([error("RL310", "x", span(1, 1, 2))])
    validate(good)
    bad = json.loads(json.dumps(good))
    bad["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(good))
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startColumn"] = 0
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    bad = json.loads(json.dumps(good))
    bad["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "<stdin>"
    with pytest.raises(AssertionError):
        validate(bad)
    bad = json.loads(json.dumps(good))
    bad["runs"][0]["tool"]["driver"]["rule"] = []
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_log_structure() -> None:
    diags = [
        error("RL310", "canary weights must increase: 2% follows 5%", span(12, 5, 7),
              help="order the stages by weight", notes=("first note",)),
        warning("RL612", "gate `drift` triggers nothing", span(20, 3, 40)),
        error("RL310", "canary weights must increase: 1% follows 2%", span(13, 5, 7)),
    ]
    doc = sarif_log(diags)
    validate(doc)
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "rolloutlang"
    assert driver["rules"] == [
        {"id": "RL310", "shortDescription": {"text": "canary weights must increase"}},
        {"id": "RL612", "shortDescription": {"text": "gate triggers nothing"}},
    ]
    first = run["results"][0]
    assert first == {
        "ruleId": "RL310",
        "ruleIndex": 0,
        "level": "error",
        "message": {"text": "canary weights must increase: 2% follows 5%\nnote: first note\n"
                            "help: order the stages by weight"},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": "examples/a.rollout"},
            "region": {"startLine": 12, "startColumn": 5, "endLine": 12, "endColumn": 7},
        }}],
    }
    assert [(r["ruleId"], r["ruleIndex"], r["level"]) for r in run["results"]] == [
        ("RL310", 0, "error"), ("RL612", 1, "warning"), ("RL310", 0, "error")]


def test_unknown_code_is_described_by_its_first_message() -> None:
    doc = sarif_log([error("RL201", "missing unit: a stage needs a unit", span(3, 9, 10)),
                     error("RL201", "another", span(4, 9, 10))])
    assert doc["runs"][0]["tool"]["driver"]["rules"] == [
        {"id": "RL201", "shortDescription": {"text": "missing unit: a stage needs a unit"}}]


def test_rule_titles_come_from_the_check_modules() -> None:
    titles = rule_titles()
    assert titles["RL316"] == "nothing can roll the plan back"
    assert titles["RL600"] == "exposure over budget"
    assert titles["RL512"] == "a fixed-horizon test that peeks"


def test_diagnostic_without_a_span_has_no_location() -> None:
    doc = sarif_log([Diagnostic(severity=error("X", "").severity, code="RL002", message="no such file `x`")])
    validate(doc)
    assert "locations" not in doc["runs"][0]["results"][0]


def test_levels() -> None:
    from rolloutlang.diagnostics import Severity

    diags = [Diagnostic(s, "RL999", "m", span(1, 1, 2)) for s in (Severity.ERROR, Severity.WARNING, Severity.NOTE)]
    assert [r["level"] for r in sarif_log(diags)["runs"][0]["results"]] == ["error", "warning", "note"]


@pytest.mark.parametrize(("path", "uri"), [
    ("examples/ranker-v2.rollout", "examples/ranker-v2.rollout"),
    ("specs/my spec.rollout", "specs/my%20spec.rollout"),
    ("<stdin>", "%3Cstdin%3E"),
    ("dir\\win.rollout", "dir/win.rollout"),
])
def test_artifact_uri_is_a_relative_uri_reference(path: str, uri: str) -> None:
    assert artifact_uri(path) == uri
    validate(sarif_log([error("RL310", "x", span(1, 1, 2, file=path))]))


def test_empty_region_is_widened_to_one_character() -> None:
    doc = sarif_log([error("RL202", "expected a stage", Span(file="a", line=3, col=7, end_line=3, end_col=7))])
    region = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 3, "startColumn": 7, "endLine": 3, "endColumn": 8}


def test_empty_log() -> None:
    doc = json.loads(render_sarif([]))
    validate(doc)
    assert doc["runs"][0]["results"] == [] and doc["runs"][0]["tool"]["driver"]["rules"] == []


def test_render_is_byte_stable_and_keeps_unicode() -> None:
    diags = [warning("RL611", "gate `errors` needs 90m of failing checks (3 × 30m) to fire", span(4, 3, 9))]
    text = render_sarif(diags)
    assert text == render_sarif(list(diags))
    assert text.endswith("}\n")
    assert "3 × 30m" in text


def _spec(body: str) -> str:
    return f"""rollout demo {{
  model stable    scorer 1.0.0 @ {D1}
  model candidate scorer 1.0.1 @ {D2}
  signature {{ in x: float32  out score: float32 }}
  metrics prometheus "http://prometheus:9090"
{body}
  gate errors: error rate < 1% every 1m
  gate drift: psi(score) < 0.2
  on errors fail: rollback now
  on drift fail: pause
}}
"""


def test_real_findings_validate() -> None:
    text = _spec("  canary {\n    5% for 1h\n    2% for 1h\n    100%\n  }")
    program = load_text(text, "specs/demo.rollout")
    diags = sorted([*program.diagnostics, *run_checks(program)], key=lambda d: d.sort_key())
    doc = sarif_log(diags)
    validate(doc)
    results = doc["runs"][0]["results"]
    rl310 = next(r for r in results if r["ruleId"] == "RL310")
    assert rl310["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 8, "startColumn": 5, "endLine": 8, "endColumn": 7}
    assert rl310["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "specs/demo.rollout"


def test_cli_check_format_sarif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".rollout-root").write_text("")
    path = tmp_path / "demo.rollout"
    path.write_text(_spec("  canary {\n    5% for 0m\n    100%\n  }"))
    try:
        main(["check", "--format", "sarif", str(path)])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr().out
    assert code == 1
    doc = json.loads(out)
    validate(doc)
    assert [r["ruleId"] for r in doc["runs"][0]["results"]] == ["RL312"]
    assert doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "demo.rollout"


def test_a_waived_finding_is_a_suppressed_result() -> None:
    """SARIF 2.1.0 section 3.35: a finding let go in the source is a result with an `inSource` suppression."""
    from rolloutlang.diagnostics import Suppression

    waiver = span(12, 20, 60)
    kept = warning("RL411", "consumer `r` reads the candidate's `embedding`", span(12, 5, 18))
    waived = dataclasses.replace(kept, suppression=Suppression(justification="rolled back with the model",
                                                               span=waiver))
    doc = sarif_log([waived, kept])
    validate(doc)
    first, second = doc["runs"][0]["results"]
    assert first["suppressions"] == [{
        "kind": "inSource", "status": "accepted", "justification": "rolled back with the model",
        "location": {"physicalLocation": {"artifactLocation": {"uri": "examples/a.rollout"},
                                          "region": {"startLine": 12, "startColumn": 20, "endLine": 12,
                                                     "endColumn": 60}}}}]
    assert "suppressions" not in second
    bad = json.loads(json.dumps(doc))
    bad["runs"][0]["results"][0]["suppressions"][0]["kind"] = "waived"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
