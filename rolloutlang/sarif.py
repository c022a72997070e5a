"""SARIF 2.1.0 output, for code review tools (GitHub code scanning and others).

One run, tool ``rolloutlang``; a rule per code that occurs, described by the
``RULES`` table of the check module that owns it (else by the first message
with that code); one result per diagnostic, located by a relative URI and a
1-based region (SARIF's end column is exclusive, as ours is).  A finding
waived in the source carries an ``inSource`` suppression with its reason.  The output is
byte-stable: rules sorted by code, results in the order given.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from rolloutlang import __version__
from rolloutlang.diagnostics import Diagnostic, Severity
from rolloutlang.source import Span

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}


def rule_titles() -> dict[str, str]:
    """Short descriptions of the codes, from the ``RULES`` tables of the check modules."""
    titles: dict[str, str] = {}
    try:
        from rolloutlang.checks import PASS_MODULES
    except ImportError:
        return titles
    for name in PASS_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        table = getattr(module, "RULES", None)
        if isinstance(table, dict):
            for code, title in table.items():
                if isinstance(code, str) and isinstance(title, str):
                    titles.setdefault(code, title)
    return titles


def artifact_uri(path: str) -> str:
    """A relative URI reference for a display path (`examples/a b.rollout` -> `examples/a%20b.rollout`)."""
    return quote(path.replace("\\", "/"), safe="/-._~")


def _region(span: Span) -> dict[str, int]:
    start_col = max(span.col, 1)
    end_line = max(span.end_line, span.line)
    end_col = max(span.end_col, 1)
    if end_line == span.line and end_col <= start_col:
        end_col = start_col + 1
    return {"startLine": max(span.line, 1), "startColumn": start_col, "endLine": end_line, "endColumn": end_col}


def _text(d: Diagnostic) -> str:
    lines = [d.message]
    lines.extend(f"note: {n}" for n in d.notes)
    if d.help:
        lines.append(f"help: {d.help}")
    return "\n".join(lines)


def sarif_log(diagnostics: Sequence[Diagnostic], omitted: int = 0) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dict; ``omitted``, the results the cap left out, is a run property."""
    titles = rule_titles()
    first_message: dict[str, str] = {}
    for d in diagnostics:
        first_message.setdefault(d.code, d.message)
    codes = sorted(first_message)
    index = {code: i for i, code in enumerate(codes)}
    rules = [{"id": code, "shortDescription": {"text": titles.get(code, first_message[code])}} for code in codes]
    results = []
    for d in diagnostics:
        result: dict[str, Any] = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _LEVELS[d.severity],
            "message": {"text": _text(d)},
        }
        if d.span is not None:
            location: dict[str, Any] = {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(d.span.file)},
                    "region": _region(d.span),
                },
            }
            if d.path:  # the IR path, e.g. rollouts[0].strategy.stages[1]
                location["logicalLocations"] = [{"fullyQualifiedName": d.path, "kind": "element"}]
            result["locations"] = [location]
        if d.suppression is not None:
            # SARIF 2.1.0 3.35: a finding let go in the source, with the reason written there.
            result["suppressions"] = [{
                "kind": "inSource",
                "status": "accepted",
                "justification": d.suppression.justification,
                "location": {"physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(d.suppression.span.file)},
                    "region": _region(d.suppression.span),
                }},
            }]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "rolloutlang",
            "version": __version__,
            "rules": rules,
        }},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if omitted:
        run["properties"] = {"omittedResultCount": omitted}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render_sarif(diagnostics: Sequence[Diagnostic], omitted: int = 0) -> str:
    """SARIF 2.1.0 JSON text for the diagnostics, in the order given (finite numbers only)."""
    return json.dumps(sarif_log(diagnostics, omitted), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
