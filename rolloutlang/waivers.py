"""Waivers: one finding on one line, let go on purpose, with the reason written next to it.

A waiver is a comment, ``# waive RL411: related-items rolls back with the model``,
at the end of the line a finding points at, or on a line of its own just above
it.  The finding is kept, marked suppressed (SARIF's ``inSource``
suppression, with the reason as its justification): the text output counts it
instead of showing it, it no longer fails `rollout check`, `explain` lists it
apart, and the JSON and SARIF outputs carry it with its reason.

A waiver without a reason (RL142), for a code no waiver can let go (syntax,
types and names must be fixed, RL142), or that matches no finding (RL143) is
itself a finding.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rolloutlang.diagnostics import Diagnostic, Suppression, error, warning
from rolloutlang.source import SourceFile, Span
from rolloutlang.syntax import Comment

# `# waive RL411: the reason`; the colon and the reason are checked, not required by the pattern.
_WAIVER = re.compile(r"#\s*waive\b\s*(?P<code>RL\d{3})?(?P<rest>.*)$")
# Findings about what a spec means (RL3xx-RL6xx), a stage named by its position (RL141), and what a target
# cannot express (RL7xx); the rest (syntax, types, names) must be fixed.
_WAIVABLE = re.compile(r"RL(141|[3-7]\d\d)")


@dataclass(frozen=True)
class Waiver:
    """A `# waive CODE: reason` comment, and the line whose finding it lets go."""

    code: str
    reason: str
    span: Span
    line: int


def read_waivers(src: SourceFile, comments: Iterable[Comment]) -> tuple[list[Waiver], list[Diagnostic]]:
    """The waivers among a file's comments, and the findings about waivers written wrong."""
    waivers: list[Waiver] = []
    problems: list[Diagnostic] = []
    for comment in comments:
        m = _WAIVER.match(comment.text)
        if m is None:
            continue
        code, rest = m.group("code"), m.group("rest").strip()
        line = comment.span.line
        if not src.line_text(line)[: comment.span.col - 1].strip():
            line += 1  # on a line of its own: the waiver is for the line below
        reason = rest[1:].strip() if rest.startswith(":") else ""
        if code is None:
            problems.append(error("RL142", "a waiver names the finding it lets go", comment.span,
                                  help="write `# waive RL411: why this finding is fine here`, with the finding's code"))
        elif not _WAIVABLE.fullmatch(code):
            problems.append(error("RL142", f"{code} cannot be waived: the spec does not mean what it says until it "
                                  "is fixed", comment.span,
                                  help="waivers let go of findings about the plan (RL3xx-RL7xx); fix this one"))
        elif not reason:
            problems.append(error("RL142", f"the waiver of {code} gives no reason", comment.span,
                                  label="why is this finding fine here?",
                                  help=f"write the reason after a colon: `# waive {code}: ...`; reviewers read it, "
                                       "and the JSON and SARIF outputs keep it"))
        else:
            waivers.append(Waiver(code, reason, comment.span, line))
    return waivers, problems


def apply_waivers(diagnostics: Sequence[Diagnostic], waivers: Sequence[Waiver],
                  report_unused: Iterable[str] = ()) -> list[Diagnostic]:
    """The diagnostics, each one a waiver matches marked suppressed; RL143 for the unused waivers of the files
    named in ``report_unused``."""
    by_place = {(w.span.file, w.line, w.code): w for w in waivers}
    used: set[Waiver] = set()
    out = []
    for d in diagnostics:
        w = by_place.get((d.span.file, d.span.line, d.code)) if d.span is not None else None
        if w is not None and d.suppression is None:
            used.add(w)
            d = dataclasses.replace(d, suppression=Suppression(justification=w.reason, span=w.span))
        out.append(d)
    files = set(report_unused)
    for w in waivers:
        if w not in used and w.span.file in files:
            out.append(warning("RL143", f"the waiver of {w.code} matches no finding on line {w.line}", w.span,
                               label="waives nothing",
                               help="remove it, or put it on the line the finding points at (or just above it)"))
    return out
