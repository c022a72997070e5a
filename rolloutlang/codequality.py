"""GitLab code quality reports: `rollout check --format gitlab`.

GitLab reads a JSON list of issues (a subset of the Code Climate spec) from a
job's `artifacts:reports:codequality` file and shows them in the merge
request.  Each issue needs a description, a check name, a severity, a
location (a path relative to the repository root and a line) and a
fingerprint that is unique in the report and stable across runs: here a hash
of the code, the file, the finding's IR path (which survives reformatting) or
else its line, and the message.  Output is byte-stable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from rolloutlang.diagnostics import Diagnostic, Severity

_SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.NOTE: "info"}


def _fingerprint(d: Diagnostic, path: str, seen: dict[str, int]) -> str:
    where = d.path or (str(d.span.line) if d.span is not None else "")
    key = "\0".join((d.code, path, where, d.message))
    # Two findings alike in all of that (rare) still get distinct fingerprints.
    seen[key] = seen.get(key, 0) + 1
    if seen[key] > 1:
        key += f"\0{seen[key]}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def render_code_quality(diagnostics: Sequence[Diagnostic], default_path: str = ".") -> str:
    """The findings as a GitLab code quality report; those without a location point at ``default_path``."""
    seen: dict[str, int] = {}
    issues: list[dict[str, Any]] = []
    for d in diagnostics:
        path = d.span.file if d.span is not None else default_path
        line = max(d.span.line, 1) if d.span is not None else 1
        description = f"{d.code}: {d.message}" + (f" (help: {d.help})" if d.help else "")
        issues.append({
            "description": description,
            "check_name": d.code,
            "fingerprint": _fingerprint(d, path, seen),
            "severity": _SEVERITY[d.severity],
            "location": {"path": path, "lines": {"begin": line}},
        })
    return json.dumps(issues, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
