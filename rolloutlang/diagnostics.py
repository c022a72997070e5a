"""Diagnostics: what is wrong, where, and what to do about it.

Every stage reports problems as :class:`Diagnostic` values instead of raising,
so one run can show many of them and the CLI decides how to print them
(rustc-like text, a versioned JSON envelope, or SARIF for code review).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rolloutlang.source import SourceFile, Span

JSON_FORMAT_VERSION = 1


class Severity(StrEnum):
    """How bad a finding is; errors fail `rollout check`, warnings only with --strict."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Suppression:
    """A finding let go on purpose, in the source (a `# waive CODE: reason` comment): SARIF's ``inSource``."""

    justification: str
    span: Span
    kind: str = "inSource"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "justification": self.justification, "range": self.span.to_json()}


@dataclass(frozen=True)
class Diagnostic:
    """One finding, located in the source.

    ``code`` groups findings by hundreds: RL0xx syntax and input, RL1xx names
    and references, RL2xx types and units, RL3xx strategy structure, RL4xx
    artifacts and compatibility, RL5xx statistics, RL6xx budgets and policy.
    """

    severity: Severity
    code: str
    message: str
    span: Span | None = None
    label: str = ""
    help: str = ""
    notes: tuple[str, ...] = ()
    path: str = ""
    suppression: Suppression | None = None

    @property
    def is_error(self) -> bool:
        """An error that counts: not waived."""
        return self.severity is Severity.ERROR and self.suppression is None

    @property
    def is_warning(self) -> bool:
        return self.severity is Severity.WARNING and self.suppression is None

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.file, self.span.line, self.span.col, self.code)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
        }
        if self.span is not None:
            out["range"] = self.span.to_json()
        if self.path:
            out["path"] = self.path
        if self.label:
            out["label"] = self.label
        if self.help:
            out["help"] = self.help
        if self.notes:
            out["notes"] = list(self.notes)
        if self.suppression is not None:
            out["suppressed"] = self.suppression.to_json()
        return out


def error(code: str, message: str, span: Span | None = None, **kw: Any) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, span, **kw)


def warning(code: str, message: str, span: Span | None = None, **kw: Any) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, span, **kw)


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """A ``did you mean `x`?`` hint, or "" when nothing is close enough."""
    pool = sorted(set(candidates))
    import difflib  # only when a name is wrong

    close = difflib.get_close_matches(word, pool, n=1, cutoff=cutoff)
    if not close:
        lowered = {c.lower(): c for c in pool}
        close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
        close = [lowered[c] for c in close]
    return f"did you mean `{close[0]}`?" if close else ""


def word_list(words: Sequence[str], last: str = " or ", quote: bool = True, limit: int = 24) -> str:
    """`a`, `b` or `c`: plain words for a list (``last`` joins the final one).

    Past ``limit`` words the list ends in a count (`... or 2,318 more`): a
    spec with thousands of gates still gets a message one can read.
    """
    shown = [f"`{w}`" if quote else w for w in words]
    if len(shown) > limit:
        shown = [*shown[: limit - 1], f"{len(shown) - limit + 1:,} more"]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + last + shown[-1]


def one_of(words: Sequence[str]) -> str:
    """`a`, `b` or `c`: plain words for a list of choices."""
    return word_list(words)


# -- rendering ---------------------------------------------------------------

_COLOURS = {
    Severity.ERROR: "\033[1;31m",
    Severity.WARNING: "\033[1;33m",
    Severity.NOTE: "\033[1;36m",
}
_BOLD = "\033[1m"
_BLUE = "\033[1;34m"
_RESET = "\033[0m"


def _printable(text: str, keep_tabs: bool = False) -> str:
    """Replace control characters so that a spec can never drive the terminal.

    Each becomes one visible character, so columns under a source line stay aligned.
    """
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or (keep_tabs and c == "\t") else ("\ufffd" if c not in "\t\n" else " ")
        for c in text
    )


def render_text(
    diagnostic: Diagnostic,
    sources: dict[str, SourceFile],
    colour: bool = False,
) -> str:
    """Render one diagnostic the way rustc does: header, location, snippet, help."""

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    sev = diagnostic.severity
    head = paint(f"{sev.value}[{diagnostic.code}]", _COLOURS[sev])
    lines = [f"{head}{paint(': ' + _printable(diagnostic.message), _BOLD if colour else '')}"]
    label, notes, help_ = _printable(diagnostic.label), [_printable(n) for n in diagnostic.notes], \
        _printable(diagnostic.help)
    span = diagnostic.span
    if span is not None:
        src = sources.get(span.file)
        width = len(str(span.end_line if src is not None else span.line))
        pad = " " * width
        shown = src.shown_path if src is not None else span.file
        lines.append(f"{pad}{paint('-->', _BLUE)} {_printable(shown)}:{span.line}:{span.col}")
        if src is not None and 1 <= span.line <= src.line_count:
            text = _printable(src.line_text(span.line), keep_tabs=True)
            bar = paint("|", _BLUE)
            start = max(span.col - 1, 0)
            if span.end_line == span.line:
                end = max(span.end_col - 1, start + 1)
            else:
                end = max(len(text), start + 1)
            end = min(end, max(len(text), start + 1))
            text, start, end = _snippet(text, start, end)
            lines.append(f"{pad} {bar}")
            lines.append(f"{paint(str(span.line).rjust(width), _BLUE)} {bar} {text}")
            # Copy the tabs of the source line so that the carets line up under any tab width.
            marker = "".join("\t" if c == "\t" else " " for c in text[:start]) + "^" * (end - start)
            if label:
                marker += " " + label
            lines.append(f"{pad} {bar} {paint(marker, _COLOURS[sev])}")
            lines.append(f"{pad} {bar}")
        for note in notes:
            lines.append(f"{pad} = note: {note}")
        if help_:
            lines.append(f"{pad} = {paint('help', _BOLD if colour else '')}: {help_}")
    else:
        for note in notes:
            lines.append(f"  = note: {note}")
        if help_:
            lines.append(f"  = help: {help_}")
    return "\n".join(lines)


# The widest source line a diagnostic shows; a longer one is cut around the caret.
SNIPPET_WIDTH = 120


def _snippet(text: str, start: int, end: int) -> tuple[str, int, int]:
    """The part of a long line around columns [start, end), marked `...` where cut, and where they land in it."""
    if len(text) <= SNIPPET_WIDTH:
        return text, start, end
    left = max(0, min(start - SNIPPET_WIDTH // 4, len(text) - SNIPPET_WIDTH))
    right = min(len(text), left + SNIPPET_WIDTH)
    head = "..." if left > 0 else ""
    tail = "..." if right < len(text) else ""
    shift = len(head) - left
    return head + text[left:right] + tail, start + shift, max(min(end, right) + shift, start + shift + 1)


def render_short(diagnostic: Diagnostic) -> str:
    """``path:line:col: severity: message [code]``, for grep and editors."""
    where = f"{diagnostic.span.file}:{diagnostic.span.line}:{diagnostic.span.col}: " if diagnostic.span else ""
    return f"{where}{diagnostic.severity.value}: {diagnostic.message} [{diagnostic.code}]"


def render_json(diagnostics: Sequence[Diagnostic], omitted: Sequence[Diagnostic] = ()) -> str:
    """A versioned envelope, like ``terraform validate -json``.

    ``omitted`` are findings left out by the cap on diagnostics: counted, not listed.
    Numbers are always finite: a NaN or an infinity is a bug, and raises here
    rather than reach a tool as invalid JSON.
    """
    errors = sum(1 for d in (*diagnostics, *omitted) if d.is_error)
    warnings = sum(1 for d in (*diagnostics, *omitted) if d.is_warning)
    doc = {
        "format_version": JSON_FORMAT_VERSION,
        "valid": errors == 0,
        "error_count": errors,
        "warning_count": warnings,
        "waived_count": sum(1 for d in (*diagnostics, *omitted) if d.suppression is not None),
        "omitted_count": len(omitted),
        "diagnostics": [d.to_json() for d in diagnostics],
    }
    return json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n"


# How many findings one run shows by default; the rest are counted (`--max-diagnostics`).
MAX_DIAGNOSTICS = 200


def cap(diagnostics: Sequence[Diagnostic], limit: int) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """The first ``limit`` diagnostics (all of them for a limit of 0) and the ones left out."""
    if limit <= 0 or len(diagnostics) <= limit:
        return list(diagnostics), []
    return list(diagnostics[:limit]), list(diagnostics[limit:])


def count_text(diagnostics: Sequence[Diagnostic]) -> str:
    """`3 errors, 1 warning, 2 waived`; "" when there are none of them."""
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = sum(1 for d in diagnostics if d.is_warning)
    waived = sum(1 for d in diagnostics if d.suppression is not None)
    parts = []
    if errors:
        parts.append(f"{errors:,} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings:,} warning{'s' if warnings != 1 else ''}")
    if waived:
        parts.append(f"{waived:,} waived")
    return ", ".join(parts)


@dataclass
class DiagnosticSink:
    """Collects diagnostics from a stage; stages append, the CLI renders."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)
