"""Waivers: one finding on one line, let go on purpose, with the reason written next to it.

A waiver is a comment, ``# waive RL411: related-items rolls back with the model``,
at the end of a statement (or of one item of a block: a stage, a consumer, a
hook), or on a line of its own just above it; it lets go of the findings of its
code that point into that statement or item.  Tied to the statement rather than
to one line, it survives `rollout fmt` laying the statement out anew (a one-line
`canary { ... }` put on several lines).  The finding is kept, marked suppressed (SARIF's ``inSource``
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
from rolloutlang.syntax import Comment, Node

# `# waive RL411: the reason`; the colon and the reason are checked, not required by the pattern.
_WAIVER = re.compile(r"#\s*waive\b\s*(?P<code>RL\d{3})?(?P<rest>.*)$")
# Findings about what a spec means (RL3xx-RL6xx), a stage named by its position (RL141), and what a target
# cannot express (RL7xx); the rest (syntax, types, names) must be fixed.
_WAIVABLE = re.compile(r"RL(141|[3-7]\d\d)")
# What a target cannot express is found by `rollout compile` alone: `rollout check` cannot call its waiver unused.
_FOUND_BY_COMPILE = re.compile(r"RL7\d\d")


@dataclass(frozen=True)
class Waiver:
    """A `# waive CODE: reason` comment, and the lines of the statement whose findings it lets go."""

    code: str
    reason: str
    span: Span
    line: int
    last_line: int = 0

    def covers(self, line: int) -> bool:
        return self.line <= line <= max(self.line, self.last_line)


def statement_lines(tree: Node | None) -> list[tuple[int, int]]:
    """The (first, last) lines of every statement of a rollout or gate set and of everything inside them (block
    items, phrases): the places a waiver can be written on.  The rollout itself is not one: a waiver never covers
    a whole rollout."""
    out: list[tuple[int, int]] = []

    def walk(node: Node) -> None:
        for child in node.children:
            if isinstance(child, Node):
                out.append((child.span.line, child.span.end_line))
                walk(child)

    for item in tree.children if tree is not None else ():
        if isinstance(item, Node):
            walk(item)
    return out


def _covered(line: int, trailing: bool, statements: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The lines a waiver covers: the widest statement (or item) that ends on its line, when it trails code, or
    that starts on its line, when it stands above; else the line alone."""
    found = [(first, last) for first, last in statements if (last if trailing else first) == line]
    return min(found, key=lambda s: (s[0], -s[1])) if found else (line, line)


def read_waivers(src: SourceFile, comments: Iterable[Comment],
                 tree: Node | None = None) -> tuple[list[Waiver], list[Diagnostic]]:
    """The waivers among a file's comments, and the findings about waivers written wrong; with the file's syntax
    ``tree``, each covers its statement, else its line."""
    waivers: list[Waiver] = []
    problems: list[Diagnostic] = []
    statements = statement_lines(tree)
    for comment in comments:
        m = _WAIVER.match(comment.text)
        if m is None:
            continue
        code, rest = m.group("code"), m.group("rest").strip()
        line = comment.span.line
        trailing = bool(src.line_text(line)[: comment.span.col - 1].strip())
        if not trailing:
            line += 1  # on a line of its own: the waiver is for the statement below
        first, last = _covered(line, trailing, statements)
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
            waivers.append(Waiver(code, reason, comment.span, first, last))
    return waivers, problems


def apply_waivers(diagnostics: Sequence[Diagnostic], waivers: Sequence[Waiver],
                  report_unused: Iterable[str] = ()) -> list[Diagnostic]:
    """The diagnostics in their order, each one a waiver matches marked suppressed; then RL143 for the
    unused waivers of the files named in ``report_unused``."""
    used: set[Waiver] = set()
    out = []
    for d in diagnostics:
        span = d.span
        w = next((w for w in waivers if span is not None and w.span.file == span.file and w.code == d.code
                  and w.covers(span.line)), None)
        if w is not None and d.suppression is None:
            used.add(w)
            d = dataclasses.replace(d, suppression=Suppression(justification=w.reason, span=w.span))
        out.append(d)
    files = set(report_unused)
    for w in waivers:
        if w not in used and w.span.file in files and not _FOUND_BY_COMPILE.fullmatch(w.code):
            where = f"line {w.line}" if w.last_line <= w.line else f"lines {w.line}-{w.last_line}"
            out.append(warning("RL143", f"the waiver of {w.code} matches no finding on {where}", w.span,
                               label="waives nothing",
                               help="remove it, or put it on the line the finding points at (or just above it)"))
    return out
