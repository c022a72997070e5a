"""Source text and positions: the one place that knows about lines and columns."""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from pathlib import Path

# lark parses about 0.5-1 MB/s here; refuse absurd inputs early and clearly.
MAX_SOURCE_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Span:
    """A range in a source file; lines and columns are 1-based, end exclusive.

    A plain frozen dataclass, not a pydantic model: every token has one, so it
    must be cheap to make, and reading and reporting on source (`source`,
    `diagnostics`) then needs no pydantic at all.  IR nodes hold spans as
    fields; pydantic serialises them like its own models.
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "start": {"line": self.line, "column": self.col},
            "end": {"line": self.end_line, "column": self.end_col},
        }

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to(self, other: Span) -> Span:
        """From the start of this span to the end of ``other``."""
        return Span(file=self.file, line=self.line, col=self.col, end_line=other.end_line, end_col=other.end_col)

    def head(self, length: int) -> Span:
        """The first ``length`` characters of the span, e.g. the keyword a statement starts with."""
        end_col = self.col + length if self.end_line > self.line else min(self.col + length, self.end_col)
        return Span(file=self.file, line=self.line, col=self.col, end_line=self.line, end_col=end_col)


def normalize_newlines(text: str) -> str:
    """One meaning of a line end: `\\r\\n` and a lone `\\r` become `\\n`.

    Editors show a lone carriage return as a line break, so the lexer, the
    comment rule, line numbers and the formatter must all see one there too;
    normalising once, where text becomes source, means none of them can
    disagree.  Columns are unchanged (a `\\r` before `\\n` has no column).
    """
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass
class SourceFile:
    """The text of one file (line ends normalised to `\\n`) plus a line index for slicing spans."""

    path: str
    text: str
    # The file it was read from, when it was (not standard input or a test's
    # text): text diagnostics name it from the current folder, so that an
    # editor or terminal opens it wherever `rollout` ran.
    origin: Path | None = None
    _line_starts: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.text = normalize_newlines(self.text)
        starts = [0]
        find = self.text.find
        at = find("\n")
        while at >= 0:
            starts.append(at + 1)
            at = find("\n", at + 1)
        self._line_starts = starts

    @property
    def shown_path(self) -> str:
        """The path to show a person: from the current folder when the file is known, else ``path``."""
        if self.origin is None:
            return self.path
        try:
            return Path(os.path.relpath(self.origin)).as_posix()
        except ValueError:  # another drive, on Windows
            return self.path

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    def line_text(self, line: int) -> str:
        start = self._line_starts[line - 1]
        end = self._line_starts[line] - 1 if line < len(self._line_starts) else len(self.text)
        return self.text[start:end]

    def position(self, offset: int) -> tuple[int, int]:
        """(line, col), both 1-based, of a character offset."""
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def offset(self, line: int, col: int) -> int:
        return self._line_starts[line - 1] + col - 1

    def span(self, start: int, end: int) -> Span:
        line, col = self.position(start)
        end_line, end_col = self.position(max(end, start))
        return Span(file=self.path, line=line, col=col, end_line=end_line, end_col=end_col)


def byte_span(file: str, data: bytes, offset: int) -> Span:
    """Where byte ``offset`` of undecodable ``data`` is: lines counted as SourceFile counts them, columns in bytes."""
    before = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    line = before.count(b"\n") + 1
    col = len(before) - (before.rfind(b"\n") + 1) + 1
    return Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)


class SourceError(Exception):
    """A file that cannot be read as rollout source (I/O, encoding, size)."""

    def __init__(self, message: str, *, help: str = "", code: str = "RL001", offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.help = help
        self.code = code
        self.offset = offset


def shown_path(path: Path | str, limit: int = 120) -> str:
    """A path for a message, cut in the middle when absurdly long."""
    text = str(path)
    return text if len(text) <= limit else text[: limit // 2 - 2] + "..." + text[-(limit // 2 - 1):]


def _too_large(size: int | None) -> SourceError:
    shown = f"{size:,} bytes" if size is not None else f"more than {MAX_SOURCE_BYTES:,} bytes"
    return SourceError(
        f"file is too large to be a rollout spec ({shown}, the limit is {MAX_SOURCE_BYTES:,})",
        help="a rollout spec is a few hundred lines; split shared definitions into imported files",
        code="RL007",
    )


def decode_source(data: bytes) -> str:
    """Decode bytes as UTF-8 source, refusing binary, oversize and non-UTF-8 input."""
    if len(data) > MAX_SOURCE_BYTES:
        raise _too_large(len(data))
    if b"\x00" in data:
        raise SourceError(
            "file looks binary (it contains NUL bytes), not a rollout spec",
            help="pass a `.rollout` text file",
            code="RL006",
            offset=data.index(b"\x00"),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            help="save the file as UTF-8",
            code="RL005",
            offset=exc.start,
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def read_bytes(path: Path) -> bytes:
    """Read a file's bytes, refusing directories and oversize files before reading them."""
    try:
        if path.is_dir():
            raise SourceError(f"`{shown_path(path)}` is a directory, not a rollout file",
                              help="pass the `.rollout` files, e.g. `rollout check specs/*.rollout`", code="RL002")
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_SOURCE_BYTES:
                # Refused from its size: a huge file is never read, let alone parsed.
                raise _too_large(size)
            # Pipes and devices report no size: read one byte past the limit.
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except FileNotFoundError:
        raise SourceError(f"no such file `{shown_path(path)}`", code="RL002") from None
    except IsADirectoryError:
        raise SourceError(f"`{shown_path(path)}` is a directory, not a rollout file", code="RL002") from None
    except PermissionError:
        raise SourceError(f"cannot read `{shown_path(path)}`: permission denied", code="RL003") from None
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise SourceError(f"cannot read `{shown_path(path)}`: {reason}", code="RL003") from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise SourceError(f"cannot read `{shown_path(path)}`: {exc}", code="RL003") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise _too_large(None)
    return data


def read_source(path: Path) -> str:
    """Read and decode a file; raises SourceError with a readable message."""
    return decode_source(read_bytes(path))
