"""A seeded mutation fuzzer for the whole `rollout` front end: every input answered, nothing lost.

Inputs are mutations of the examples, one class of mutation per input (the
classes of input issue 11 names).  Run on the code before issue 11, it found
within a few hundred inputs the crashes of the numbers and nesting classes,
the text `fmt` lost in the newlines and comments classes and the keywords
split off longer words in the glue class; its large inputs took minutes
there, and its longest import chains crashed the loader:

* ``tokens``: a token deleted, duplicated, swapped or replaced by another word;
* ``numbers``: numbers replaced by extreme ones (`1e400`, `99999999999999999999d`,
  `0.0000001%`, thousands of digits, versions with huge parts);
* ``bytes``: random characters, control characters, invalid UTF-8, NUL;
* ``truncate``: the file cut anywhere;
* ``newlines``: `\\r\\n`, lone `\\r` (also inside comments), form feeds, unicode breaks;
* ``comments``: comments with odd contents between any two tokens;
* ``glue``: a keyword glued to a longer word (`gatekeeper`, `stablex`), spaces removed;
* ``nesting``: calls, types and braces nested up to thousands deep, closed or not;
* ``imports``: chains of up to 1,200 imported files, cycles, missing files;
* ``large``: a statement repeated to about 100 kB, a long word before an error;
* ``mixed``: two or three of the above.

Each input is loaded, checked, explained, graphed, dumped and formatted, in
process and through the command line; :func:`exercise` lists what went
wrong: an exception (a traceback where a diagnostic belongs), an exit code
other than 0, 1 or 2, `RL000`, a diagnostic outside its file, a NaN or an
infinity in JSON, a token that begins or ends inside a word, a `fmt` that is
not idempotent, changes what the file means, or drops a comment or any other
text, or an input whose slowest step took too long.

Input ``i`` of seed ``s`` is always the same, so a failure is reproduced by
its number: ``ROLLOUT_FUZZ_SEED=s ROLLOUT_FUZZ_START=i ROLLOUT_FUZZ_INPUTS=1
pytest tests/test_fuzz.py``.  :func:`run_many` spreads inputs over worker
processes and stops any that hangs.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import multiprocessing
import queue
import random
import re
import shutil
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("tokens", "numbers", "bytes", "truncate", "newlines", "comments", "glue", "nesting", "imports",
           "large", "mixed")
ENTRY = "spec.rollout"


# -- inputs -----------------------------------------------------------------------------------------


@dataclass
class FuzzInput:
    """One generated input: the files of a small repository, the entry file among them."""

    index: int
    kind: str
    files: dict[str, bytes]

    @property
    def entry(self) -> bytes:
        return self.files[ENTRY]


def _corpus() -> list[tuple[str, str]]:
    """The examples (path relative to the repository, text), entry files and imported ones."""
    found = sorted((ROOT / "examples").rglob("*.rollout"))
    return [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8")) for p in found]


_CORPUS = _corpus()
_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\\n]|\\.)*"|[A-Za-z0-9_.%+-]+|.', re.S)

KEYWORDS = (
    "rollout", "gates", "import", "service", "namespace", "owner", "model", "signature", "serving", "consumers",
    "traffic", "metrics", "metric", "shadow", "canary", "blue-green", "rolling", "route", "gate", "on", "use",
    "budget", "scenario", "holdout", "pipeline", "approve", "log", "stable", "candidate", "in", "out", "for",
    "until", "approved", "hold", "every", "fail", "after", "from", "rollback", "now", "pause", "notify",
    "promote", "latency", "error", "rate", "change", "relative", "absolute", "alpha", "power", "baseline",
    "labels", "lognormal", "median", "p95", "p99", "header", "cookie", "hashed", "dropped", "requests",
)
PUNCTUATION = ("{", "}", "(", ")", "<", ">", "<=", ">=", "==", ",", ":", "?", "..", "@", "=", "~", "^=", '"')
UNITS = ("", "", "%", "ms", "s", "m", "h", "d", "w", "Gi", "Ti", "k", "rps", "rph")
EXTREME_NUMBERS = (
    "1e400", "-1e400", "1e308", "1e-400", "1e-320", "0", "-0", "0.0", "99999999999999999999",
    "0.0000001", "1e-30", "1e15", "1e16", "4294967296", "18446744073709551616", "1e9999999999",
    "100.000000000000001", "-100", "101", "1" + "0" * 400, "9" * 5000, "0." + "0" * 3000 + "1",
)
ODD_TEXT = ("\r", "\r\n", "\n", "\f", "\v", "\x00", "\x1b[31m", "\u2028", "\u0085", "\ufeff", "\t", "é",
            "\U0001f600", "\u202e", "\\", '"', "#", "{", "}", "\ud7ff")


def make_input(seed: int, index: int, scale: float = 1.0) -> FuzzInput:
    """Input ``index`` of seed ``seed``; ``scale`` (0-1] shrinks the large classes for a quick run."""
    rng = random.Random(f"{seed}:{index}")
    kind = CLASSES[index % len(CLASSES)]
    base_path, base = rng.choice([c for c in _CORPUS if "policies/" not in c[0]])
    files = {path: text.encode() for path, text in _CORPUS if path != base_path}
    text: str | bytes = base
    if kind == "mixed":
        for sub in rng.sample([k for k in CLASSES if k not in ("mixed", "imports", "large", "bytes")], 3):
            text = _MUTATIONS[sub](rng, text if isinstance(text, str) else text.decode("utf-8", "replace"), scale,
                                   files)
    else:
        text = _MUTATIONS[kind](rng, base, scale, files)
    files[ENTRY] = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return FuzzInput(index, kind, files)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _code_positions(pieces: list[str]) -> list[int]:
    return [i for i, p in enumerate(pieces) if p.strip() and not p.startswith("#")]


def _some_word(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.45:
        return rng.choice(KEYWORDS)
    if choice < 0.7:
        return rng.choice(PUNCTUATION)
    if choice < 0.85:
        return f"{rng.choice(['', '-', '+'])}{rng.randint(0, 10**rng.randint(1, 6))}{rng.choice(UNITS)}"
    return "".join(rng.choice("abcxyz_-0123456789") for _ in range(rng.randint(1, 8)))


def _mutate_tokens(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> str:
    pieces = _tokens(text)
    for _ in range(rng.randint(1, 3)):
        code = _code_positions(pieces)
        if not code:
            break
        i = rng.choice(code)
        how = rng.choice(("delete", "duplicate", "swap", "replace", "replace"))
        if how == "delete":
            pieces[i] = ""
        elif how == "duplicate":
            pieces[i] = pieces[i] + " " + pieces[i]
        elif how == "swap":
            j = rng.choice(code)
            pieces[i], pieces[j] = pieces[j], pieces[i]
        else:
            pieces[i] = _some_word(rng)
    return "".join(pieces)


def _mutate_numbers(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> str:
    pieces = _tokens(text)
    numbers = [i for i, p in enumerate(pieces) if re.fullmatch(r"[+-]?\d[\w.%+-]*", p)]
    for i in rng.sample(numbers, min(len(numbers), rng.randint(1, 3))):
        if re.fullmatch(r"\d+\.\d+\.\d+\S*", pieces[i]) and rng.random() < 0.5:
            big = rng.choice(["9" * 5000, "99999999999999999999", "9007199254740992", "01"])
            pieces[i] = rng.choice([f"1.2.{big}", f"{big}.0.0", f"1.{big}.3-rc.1"])
            continue
        unit_now = re.sub(r"^[+-]?[\d.eE+-]*", "", pieces[i])
        unit = unit_now if rng.random() < 0.6 else rng.choice(UNITS)
        pieces[i] = rng.choice(["", "-", "+"]) * (rng.random() < 0.2) + rng.choice(EXTREME_NUMBERS) + unit
    return "".join(pieces)


def _mutate_bytes(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> bytes:
    data = bytearray(text.encode())
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(data))
        how = rng.random()
        if how < 0.5:
            piece = rng.choice(ODD_TEXT).encode("utf-8", "surrogatepass")
        elif how < 0.7:
            piece = bytes(rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 3)))  # invalid UTF-8, mostly
        elif how < 0.75:
            piece = b"\x00"
        else:
            piece = "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 5))).encode("utf-8",
                                                                                                   "surrogatepass")
        data[at:at] = piece
    return bytes(data)


def _mutate_truncate(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> str:
    return text[: rng.randint(0, len(text))]


def _mutate_newlines(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> str:
    how = rng.choice(("crlf", "cr", "mixed", "comment-cr", "comment-cr", "feeds"))
    if how == "crlf":
        return text.replace("\n", "\r\n")
    if how == "cr":
        return text.replace("\n", "\r")
    if how == "mixed":
        return "".join(c if c != "\n" else rng.choice(("\n", "\r\n", "\r")) for c in text)
    if how == "feeds":
        return "".join(c if c != "\n" else rng.choice(("\n", "\f\n", "\n\v", "\u2028\n")) for c in text)
    # A lone carriage return inside a comment, then code on the same physical line: the case that made
    # `fmt` delete a statement.
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        j = rng.randrange(len(lines))
        lines[i] = lines[i] + "  # note\r" + lines[j]
        lines[j] = ""
    return "\n".join(lines)


def _mutate_comments(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> str:
    pieces = _tokens(text)
    for _ in range(rng.randint(1, 6)):
        i = rng.randint(0, len(pieces))
        body = "".join(rng.choice(["x", " ", "#", '"', "{", "}", "\\", ":", "\t", "é", "\r", "\f"])
                       for _ in range(rng.randint(0, 12)))
        pieces.insert(i, rng.choice([" ", "\n", ""]) + "#" + body + "\n")
    return "".join(pieces)


def _mutate_glue(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> str:
    """Keywords glued to a longer word: a suffix (`gatekeeper`) or the next word (`gatelatency: ...`)."""
    pieces = _tokens(text)
    words = [i for i, p in enumerate(pieces) if p in KEYWORDS]
    for i in rng.sample(words, min(len(words), rng.randint(1, 3))):
        if rng.random() < 0.5 and i + 1 < len(pieces) and pieces[i + 1].isspace():
            pieces[i + 1] = ""
        else:
            pieces[i] = pieces[i] + rng.choice(("keeper", "x", "s", "_1", "-v2", "9"))
    return "".join(pieces)


def _mutate_nesting(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> str:
    depth = rng.choice((2, 31, 32, 33, 100, max(34, int(3000 * scale))))
    closed = rng.random() < 0.5
    how = rng.choice(("call", "type", "braces"))
    if how == "call":
        nest = "f(" * depth + "x" + (")" * depth if closed else "")
        piece = f"\n  gate deep: {nest} < 0.2\n"
    elif how == "type":
        nest = "list<" * depth + "int64" + (">" * depth if closed else "")
        piece = f"\n  signature candidate {{ in a: {nest} out b: float32 }}\n"
    else:
        piece = "\n  canary " + "{" * depth + " 5% for 1h " + ("}" * depth if closed else "") + "\n"
    at = text.rfind("}")
    return text[:at] + piece + text[at:] if at >= 0 else text + piece


def _mutate_imports(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> str:
    length = max(3, int(1200 * scale)) if rng.random() < 0.04 else rng.choice((1, 2, 5, 20, 50))
    how = rng.choice(("chain", "chain", "cycle", "self", "missing", "outside"))
    for i in range(length):
        nxt = f'import "chain/f{i + 1}.rollout"\n' if i + 1 < length else ""
        if how == "cycle" and i + 1 == length:
            nxt = 'import "chain/f0.rollout"\n'
        files[f"chain/f{i}.rollout"] = f"{nxt}gates g{i} {{\n  gate x{i}: p99 latency < 1s\n}}\n".encode()
    head = {
        "chain": 'import "chain/f0.rollout"\n',
        "cycle": 'import "chain/f0.rollout"\n',
        "self": f'import "{ENTRY}"\n',
        "missing": 'import "chain/nowhere.rollout"\n',
        "outside": 'import "../../etc/passwd"\n',
    }[how]
    use = f"  use gates g{length - 1}\n" if rng.random() < 0.7 else ""
    at = text.find("{")
    return head + (text[: at + 1] + "\n" + use + text[at + 1:] if at >= 0 and use else text)


def _mutate_large(rng: random.Random, text: str, scale: float, files: dict[str, bytes]) -> str:
    # Mostly a few kB; now and then up to 100 kB, where quadratic time showed (minutes at 100 kB).
    size = int((rng.choice((50_000, 99_000)) if rng.random() < 0.04 else rng.choice((2_000, 5_000, 20_000))) * scale)
    how = rng.choice(("stages", "gates", "rollouts", "long-word", "errors"))
    if how == "long-word":
        return "rollout x {\n  service s\n  gate g: " + "w" * size + " <\n  ?\n}\n"
    if how == "rollouts":
        line = "rollout r{i} {{ service s canary {{ 1% for 1h 100% }} }}\n"
        return "".join(line.format(i=i) for i in range(size // len(line)))
    if how == "errors":
        return "rollout r {\n" + "  gate g p99\n" * (size // 13) + "}\n"
    item = "    5% for 1h\n" if how == "stages" else "  gate g{i}: p99 latency < 250ms every 5m\n"
    body = "".join(item.format(i=i) for i in range(size // len(item)))
    if how == "stages":
        return "rollout x {\n  service s\n  canary {\n" + body + "    100%\n  }\n}\n"
    return "rollout x {\n  service s\n  canary {\n    5% for 1h\n    100%\n  }\n" + body + "}\n"


_MUTATIONS: dict[str, Callable[[random.Random, str, float, dict[str, bytes]], str | bytes]] = {
    "tokens": _mutate_tokens,
    "numbers": _mutate_numbers,
    "bytes": _mutate_bytes,
    "truncate": _mutate_truncate,
    "newlines": _mutate_newlines,
    "comments": _mutate_comments,
    "glue": _mutate_glue,
    "nesting": _mutate_nesting,
    "imports": _mutate_imports,
    "large": _mutate_large,
}


# -- running one input --------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} in JSON output")


def strict_json(text: str) -> Any:
    """Parse JSON that must hold finite numbers only (Python's json writes NaN and Infinity otherwise)."""
    return json.loads(text, parse_constant=_reject_constant)


def _chars(text: str) -> Counter[str]:
    """What `fmt` must keep: every character but blanks and the layout's `,`, `{` and `}`."""
    return Counter(c for c in text if not c.isspace() and c not in ",{}")


def _meaning(text: str) -> tuple[Any, Any, list[tuple[str, str]], list[str]]:
    """What a text means, for comparing a file with its formatted self: its syntax tree, its IR without
    spans, the lowering's findings, and its comments."""
    from rolloutlang.formatter import strip_spans
    from rolloutlang.lowering import lower
    from rolloutlang.source import SourceFile
    from rolloutlang.syntax import parse

    result = parse(SourceFile(ENTRY, text))
    if result.tree is None:
        return None, None, [(d.code, d.message) for d in result.diagnostics], []
    file_ir, diagnostics = lower(result.tree, ENTRY)
    return (result.tree, strip_spans(asdict(file_ir)) if file_ir is not None else None,
            [(d.code, d.message) for d in diagnostics], [c.text.rstrip() for c in result.comments])


def _cli(argv: list[str]) -> tuple[int, str, str]:
    from rolloutlang.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else -1)
    return code, out.getvalue(), err.getvalue()


class _Steps:
    """How long each step of one input took; a step is about what one `rollout` command does."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began


_WORD = re.compile(r"[A-Za-z0-9_]")


def _split_words(tree: Any, text: str) -> list[str]:
    """Tokens that begin or end inside a word: a keyword read off the front of a longer word (`gatekeeper`
    as `gate keeper`).  Lines and columns are turned into offsets with the text's own line starts."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    found = []
    for tok in tree.tokens():
        start = starts[tok.span.line - 1] + tok.span.col - 1
        end = starts[tok.span.end_line - 1] + tok.span.end_col - 1
        if (start > 0 and _WORD.match(tok.text[:1]) and _WORD.match(text[start - 1])) or \
                (end < len(text) and _WORD.match(tok.text[-1:]) and _WORD.match(text[end])):
            found.append(f"line {tok.span.line}: `{tok.text[:30]}` is part of a longer word")
    return found[:3]


def exercise(root: Path, data: bytes, steps: _Steps | None = None, thorough: bool = True) -> list[str]:
    """Run one entry file (``root / spec.rollout``) through everything; the problems found.

    ``thorough`` also runs `rollout check` itself (where an exception shows as
    `error[RL000]`) and formats the formatted text again (idempotence): the
    two checks that add least per input, so a long run does them for every
    fourth input.
    """
    from rolloutlang import irjson
    from rolloutlang.checks import run_checks
    from rolloutlang.cli import _with_ir_paths
    from rolloutlang.diagnostics import render_json, render_text
    from rolloutlang.explain import explain_program
    from rolloutlang.formatter import format_source
    from rolloutlang.loader import load
    from rolloutlang.plan import build_plan, render_plan
    from rolloutlang.sarif import render_sarif
    from rolloutlang.source import SourceError, decode_source, normalize_newlines

    step = steps or _Steps()
    problems: list[str] = []
    path = root / ENTRY
    with step("check"):
        program = load(path, root)
        diagnostics = list(program.diagnostics)
        if program.main is not None and not program.has_errors:
            found = run_checks(program)
            diagnostics += _with_ir_paths(found, {id(d): program.main for d in found})
        rendered = [render_text(d, program.sources) for d in diagnostics]
        as_json, as_sarif = render_json(diagnostics), render_sarif(diagnostics)
    strict_json(as_json)
    strict_json(as_sarif)
    for d, text in zip(diagnostics, rendered, strict=True):
        if d.code == "RL000":
            problems.append(f"internal error: {d.message}")
        source = program.sources.get(d.span.file) if d.span is not None else None
        if d.span is not None and source is not None and not 1 <= d.span.line <= source.line_count:
            problems.append(f"{d.code} points at line {d.span.line} of a {source.line_count}-line file")
        if len(text) > 20_000:
            problems.append(f"{d.code} renders as {len(text):,} characters")
    if program.main is not None and not program.has_errors:
        with step("dump-ir"):
            strict_json(irjson.dump_json(program.main))
        with step("explain"):
            explained = explain_program(program)
        if re.search(r"\b(nan|inf|infinity)\b", explained, re.I):
            problems.append("explain prints nan or inf")
        with step("graph"):
            for rollout in program.rollouts():
                plan = build_plan(rollout)
                strict_json(render_plan(plan, "json"))
                render_plan(plan, "dot")
                render_plan(plan, "mermaid")

    if thorough:
        sarif = len(data) % 2 == 0
        argv = ["check", "--format", "sarif"] if sarif else ["check", "--dump-ir", "--max-diagnostics", "5"]
        with step("cli"):
            code, out, err = _cli([*argv, "--root", str(root), str(path)])
        if code not in (0, 1, 2) or "error[RL000]" in err or '"RL000"' in out or "Traceback" in err:
            problems.append(f"`rollout {' '.join(argv)}` exited {code}: {(err or out)[-300:]}")
        elif sarif:
            strict_json(out)

    try:
        text = decode_source(data)
    except SourceError:
        return problems
    with step("fmt"):
        formatted, fmt_diagnostics = format_source(text, ENTRY)
    if any(d.code in ("RL000", "RL018", "RL019") for d in fmt_diagnostics):
        problems.append(f"fmt refused: {[d.message for d in fmt_diagnostics]}")
    before = _meaning(text)
    if before[0] is not None:
        problems += _split_words(before[0], normalize_newlines(text))
    if formatted is not None:
        if thorough and format_source(formatted, ENTRY) != (formatted, []):
            problems.append("fmt is not idempotent")
        after = _meaning(formatted)
        if after[1:] != before[1:]:
            problems.append("fmt changes what the file means or its comments")
        lost = _chars(text) - _chars(formatted)
        if lost:
            problems.append(f"fmt loses text: {''.join(sorted(lost.elements()))[:80]!r}")
    return problems


def run_one(item: FuzzInput, workdir: Path, limit_s: float) -> tuple[float, list[str]]:
    """Write the input's files into a fresh repository and exercise it: (slowest step in seconds, problems).

    An input under 100 kB whose slowest step (about one command) takes over ``limit_s`` is a finding.
    """
    root = workdir / f"repo-{item.index}"
    steps = _Steps()
    try:
        for name, data in item.files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (root / "pyproject.toml").write_text("")
        # As `rollout` runs: without the cyclic garbage collector (cli.main), which is run between inputs.
        gc.disable()
        try:
            problems = exercise(root, item.entry, steps, thorough=item.index % 4 == 0)
        except Exception as exc:  # the whole point: any exception is a finding, with its input
            problems = [f"{type(exc).__name__}: {str(exc)[:300]}"]
        finally:
            gc.enable()
            gc.collect()
        slowest, seconds = max(steps.seconds.items(), key=lambda kv: kv[1], default=("", 0.0))
        if len(item.entry) < 100_000 and seconds > limit_s:
            problems.append(f"{slowest} took {seconds:.1f} s for {len(item.entry):,} bytes (limit {limit_s:g} s)")
        return seconds, problems
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- running many ------------------------------------------------------------------------------------


@dataclass
class Finding:
    index: int
    kind: str
    problems: list[str]


@dataclass
class Report:
    """What a fuzzing run found, and how long inputs took."""

    seed: int
    count: int = 0
    findings: list[Finding] = field(default_factory=list)
    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, index: int, kind: str, elapsed: float, problems: list[str]) -> None:
        self.count += 1
        self.times.setdefault(kind, []).append(elapsed)
        if problems:
            self.findings.append(Finding(index, kind, problems))

    def summary(self) -> str:
        lines = [f"{self.count:,} inputs (seed {self.seed}), {len(self.findings)} with problems"]
        for kind in CLASSES:
            times = sorted(self.times.get(kind, []))
            if times:
                lines.append(f"  {kind:9s} {len(times):7,}  median {times[len(times) // 2] * 1000:7.1f} ms"
                             f"  max {times[-1]:6.2f} s")
        for f in self.findings[:20]:
            lines.append(f"  input {f.index} ({f.kind}): {'; '.join(f.problems)[:400]}")
        return "\n".join(lines)


def run_in_process(seed: int, indices: range, scale: float, limit_s: float) -> Report:
    report = Report(seed)
    with tempfile.TemporaryDirectory(prefix="rollout-fuzz-") as tmp:
        for i in indices:
            item = make_input(seed, i, scale)
            elapsed, problems = run_one(item, Path(tmp), limit_s)
            report.add(i, item.kind, elapsed, problems)
    return report


def _worker(seed: int, indices: list[int], scale: float, limit_s: float, results: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="rollout-fuzz-") as tmp:
        for i in indices:
            results.put(("start", i, "", 0.0, []))
            item = make_input(seed, i, scale)
            elapsed, problems = run_one(item, Path(tmp), limit_s)
            results.put(("done", i, item.kind, elapsed, problems))


def run_many(seed: int, indices: range, jobs: int, scale: float = 1.0, limit_s: float = 5.0,
             progress: Callable[[str], None] | None = None) -> Report:
    """Inputs spread over ``jobs`` worker processes; an input still running after 3 x ``limit_s`` + 30 s
    is reported as a hang, its worker stopped and started again on the inputs after it."""
    report = Report(seed)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    todo = {k: deque(list(indices)[k::jobs]) for k in range(jobs)}
    owner = {i: k for k, items in todo.items() for i in items}
    workers: dict[int, Any] = {}
    running: dict[int, tuple[int, float]] = {}  # worker -> (input, when it started)
    patience = 3 * limit_s + 30

    def start(k: int) -> None:
        workers[k] = context.Process(target=_worker, args=(seed, list(todo[k]), scale, limit_s, results), daemon=True)
        workers[k].start()

    for k, items in todo.items():
        if items:
            start(k)
    last_note = time.monotonic()
    while any(todo.values()):
        try:
            event, i, kind, elapsed, problems = results.get(timeout=1.0)
            k = owner[i]
            if event == "start":
                running[k] = (i, time.monotonic())
            elif todo[k] and todo[k][0] == i:
                running.pop(k, None)
                todo[k].popleft()
                report.add(i, kind, elapsed, problems)
                if problems and progress is not None:
                    progress(f"input {i} ({kind}): {'; '.join(problems)[:400]}")
        except queue.Empty:
            pass
        for k, (i, began) in list(running.items()):
            if time.monotonic() - began > patience and todo[k] and todo[k][0] == i:
                workers[k].kill()
                workers[k].join()
                report.add(i, make_input(seed, i, scale).kind, time.monotonic() - began,
                           [f"hung: stopped after {patience:g} s"])
                if progress is not None:
                    progress(f"input {i}: hung, stopped after {patience:g} s")
                del running[k]
                todo[k].popleft()
                if todo[k]:
                    start(k)
        if progress is not None and time.monotonic() - last_note > 60:
            progress(f"{report.count:,} inputs, {len(report.findings)} with problems")
            last_note = time.monotonic()
    for proc in workers.values():
        proc.join(timeout=10)
    return report
