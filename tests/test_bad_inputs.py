"""Bad input never produces a traceback: every mistake gets a located, plain-language diagnostic.

Each case is a small repository (a folder with a `pyproject.toml` marker) holding
`spec.rollout` and maybe other files.  `rollout check` runs on it in-process and
the test asserts the exact code, a key part of the message, the line and column
of the first diagnostic, and the exit code (1 for findings, 2 for usage and I/O).
A sweep then runs every case through the text and JSON outputs and checks that
no lark token name and no Python traceback ever reaches the user; a few cases
also run in a real `python -m rolloutlang` subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent

# lark's names for terminals and its internal symbols: never shown to people.
LARK_NAMES = re.compile(
    r"\$END|__ANON|__IGNORE|\b(NAME|NUMLIT|STRING|RBRACE|LBRACE|COLON|COMMA|LPAR|RPAR|ROLE|DIGEST|VERSION"
    r"|COMPARE|RANGE|OPTIONAL|SIG_DIRECTION|MATCH_KIND|MATCH_OP|PII_TREATMENT|LESSTHAN|MORETHAN)\b"
)

CTR = "metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)"
STAGES = "canary {\n    mpr: 5% for 1h\n    100%\n  }"


def spec(*body: str) -> str:
    """A rollout whose body lines are indented by two spaces; the body starts on line 2."""
    return "rollout r {\n" + "".join(f"  {line}\n" for line in body) + "}\n"


TEN_MB = ("rollout r {\n  service ranker\n}\n" * 333_334)[:10_000_000]


@dataclass(frozen=True)
class Case:
    """One bad input and what `rollout check` must say about it."""

    id: str
    source: str | bytes | None  # None: spec.rollout is not created at all
    code: str
    message: str  # a key part of the first diagnostic's message
    line: int | None  # None: the diagnostic has no location (the file could not be read)
    col: int | None
    exit: int = 1
    help: str = ""  # a key part of the help, when it carries the fix
    file: str = "spec.rollout"  # where the first diagnostic is
    others: dict[str, str | bytes] = field(default_factory=dict)  # more files in the repository
    count: int | None = 1  # exactly this many diagnostics (no follow-on errors), None: not checked
    setup: str = ""  # "dir": spec.rollout is a directory; "unreadable": reading it is refused


CASES = [
    # -- typos, with a did-you-mean ------------------------------------------------------------
    Case("typo-keyword-gaet", spec("service ranker", "gaet latency: p99 latency < 250ms"),
         "RL014", "unknown keyword `gaet`", 3, 3, help="did you mean `gate`?"),
    Case("typo-keyword-canery", spec("canery {", "  5% for 1h", "}"),
         "RL014", "unknown keyword `canery`", 2, 3, help="did you mean `canary`?"),
    Case("typo-keyword-modle", spec("modle stable ranker 1.4.2"),
         "RL014", "unknown keyword `modle`", 2, 3, help="did you mean `model`?"),
    Case("typo-keyword-in-block", spec("serving {", "  imag \"registry/x\"", "}"),
         "RL014", "unknown keyword `imag`", 3, 5, help="did you mean `image`?"),
    Case("typo-option-evry", spec("gate latency: p99 latency < 250ms evry 5m"),
         "RL207", "unknown option `evry` for an SLO gate", 2, 37, help="did you mean `every`?"),
    Case("typo-gate-condition", spec("gate latency: p99 latncy < 250ms"),
         "RL215", "unknown gate condition `p99 latncy`", 2, 21, help="did you mean `latency`?"),
    Case("typo-error-rate", spec("gate errors: eror rate < 1%"),
         "RL215", "unknown gate condition `eror rate`", 2, 16, help="did you mean `error`?"),
    Case("typo-gate-in-rule", spec("gate latency: p99 latency < 250ms", "on latncy fail: rollback"),
         "RL111", "rule names unknown gate `latncy`", 3, 6, help="did you mean `latency`?"),
    Case("typo-metric-name", spec(CTR, "gate ctr: cttr change > -1% relative, pass if shown non-inferior"),
         "RL112", "unknown metric `cttr`", 3, 13, help="did you mean `ctr`?"),
    Case("typo-stage-name", spec(STAGES, "gate latency: p99 latency < 250ms, from mpx"),
         "RL114", "unknown stage `mpx`", 6, 43, help="did you mean `mpr`?"),
    Case("typo-use-gates", "gates slo-defaults {\n  gate errors: error rate < 1%\n}\n"
         + spec("use gates slo-defualts"),
         "RL110", "no gate set named `slo-defualts`", 5, 13, help="did you mean `slo-defaults`?"),
    Case("typo-type", spec("signature { out s: vectr<float32, 256> }"),
         "RL210", "unknown type `vectr`", 2, 22, help="did you mean `vector`?"),
    Case("typo-approval", spec("approve promotoin by \"@lead\""),
         "RL115", "cannot approve `promotoin`", 2, 11, help="did you mean `promotion`?"),
    # -- units ----------------------------------------------------------------------------------
    Case("missing-unit-stage", spec("canary { 5% for 2 }"),
         "RL201", "missing unit", 2, 19, help="`2h`"),
    Case("missing-unit-latency", spec("gate latency: p99 latency < 250"),
         "RL201", "missing unit: a latency threshold needs a unit", 2, 31, help="`250ms`"),
    Case("missing-unit-shadow", spec("shadow 100 for 24h"),
         "RL201", "missing unit: the shadow share needs `%`", 2, 10, help="write `100%`"),
    Case("missing-unit-traffic", spec("traffic 12000"),
         "RL201", "a request rate needs `rps`", 2, 11, help="write `traffic 12000 rps`"),
    Case("percent-over-100", spec("canary { 150% for 1h }"),
         "RL201", "`150%` is over 100%", 2, 12),
    Case("negative-duration", spec("canary { 5% for -1h }"),
         "RL201", "cannot be negative (`-1h`)", 2, 19, help="`1h`"),
    Case("duration-as-weight", spec("canary {", "  5% for 1h", "  25% 12h", "  100%", "}"),
         "RL201", "`12h` is a duration, not a canary weight", 4, 9, help="`for 12h`"),
    Case("two-units", spec("serving { warmup 1h30m }"),
         "RL201", "a duration takes one unit, got `1h30m`", 2, 20, help="write `90m`"),
    Case("two-units-apart", spec("serving { warmup 1h 30m }"),
         "RL010", "unexpected number `30m`", 2, 23, help="write `90m`"),
    # -- strings, characters, keywords ------------------------------------------------------------
    Case("unterminated-string", spec("owner \"#recs-oncall", "service ranker"),
         "RL012", "unterminated string", 2, 9),
    Case("unknown-escape", spec('owner "recs\\eoncall"'),
         "RL205", "unknown escape `\\e`", 2, 14),
    Case("stray-dollar", spec("service $ranker"),
         "RL011", "unexpected character `$`", 2, 11, help="expected a name"),
    Case("smart-quotes", spec("owner \u201crecs\u201d"),
         "RL011", "unexpected character", 2, 9, help="straight double quotes"),
    Case("unknown-keyword", spec("service ranker", "frobnicate 3"),
         "RL014", "unknown keyword `frobnicate`", 3, 3, help="a statement such as"),
    Case("statement-outside-rollout", "gate errors: error rate < 1%\n",
         "RL010", "`gate` is outside any rollout", 1, 1, help="rollout <name>"),
    Case("statement-in-wrong-block", spec("serving {", "  replicas 2..4", "  traffic 12000 rps", "}"),
         "RL010", "`traffic` is not allowed inside `serving`", 4, 5),
    Case("missing-colon", spec("gate latency p99 latency < 250ms"),
         "RL010", "unexpected `p99`", 2, 16, help="`gate latency: p99 latency < 250ms`"),
    Case("missing-for", spec("shadow 100% 24h"),
         "RL010", "unexpected number `24h`", 2, 15, help="`for 24h`"),
    Case("comma-between-stages", spec("canary { 5% for 1h, 100% }"),
         "RL010", "unexpected `,`", 2, 21, help="remove the `,`"),
    Case("double-equals", spec("gate latency: p99 latency == 250ms"),
         "RL204", "not `==`", 2, 29),
    Case("vector-without-dimension", spec("signature { out s: vector<float32> }"),
         "RL210", "`vector` needs its dimension", 2, 22, help="vector<float32, 256>"),
    Case("bad-lognormal", spec("metric ctr: binary, baseline 4.2%, labels lognormal(median 8h, p95 2h)"),
         "RL214", "the p95 delay must be longer than the median", 2, 66),
    Case("bad-regex", spec('route header "x-ml" ~ "([a" to candidate'),
         "RL212", "invalid regular expression", 2, 25),
    Case("no-follow-on-error", spec("metric revenue: continuous, baseline 1.3, sdd 4"),
         "RL207", "unknown option `sdd`", 2, 45, help="did you mean `sd`?"),
    # -- braces -----------------------------------------------------------------------------------
    Case("missing-brace-at-eof", "rollout r {\n  service ranker\n  gate errors: error rate < 1%\n",
         "RL016", "`rollout r` block is not closed", 1, 11, help="add the missing `}`"),
    Case("missing-brace-inner-block", spec("canary {", "  5% for 1h", "  100%", "gate errors: error rate < 1%"),
         "RL016", "`canary` block is not closed", 2, 10, help="add `}` before line 5"),
    Case("extra-brace", spec("service ranker") + "}\n",
         "RL010", "unmatched `}`", 4, 1, help="remove this `}`"),
    Case("extra-brace-mid-file", spec("canary { 5% for 1h }}", "gate errors: error rate < 1%"),
         "RL010", "extra `}` closes `rollout r` early", 2, 23),
    # -- duplicates -------------------------------------------------------------------------------
    Case("duplicate-gate", spec("gate latency: p99 latency < 250ms", "gate latency: error rate < 1%"),
         "RL101", "gate `latency` is defined twice", 3, 8),
    Case("duplicate-stage", spec("canary {", "  a: 5% for 1h", "  a: 10% for 1h", "  100%", "}"),
         "RL101", "stage `a` is defined twice", 4, 5),
    Case("duplicate-model", spec("model stable ranker 1.4.2", "model stable ranker 1.5.0"),
         "RL101", "the `stable` model is given twice", 3, 9, help="one `stable` and one `candidate`"),
    Case("duplicate-rollout", spec("service a") + spec("service b"),
         "RL101", "rollout `r` is defined twice", 4, 9),
    # -- imports ----------------------------------------------------------------------------------
    Case("import-escapes-repo", 'import "../x.rollout"\n' + spec("service ranker"),
         "RL121", "import `../x.rollout` leaves the repository", 1, 8),
    Case("import-absolute", 'import "/etc/x.rollout"\n' + spec("service ranker"),
         "RL120", "import path `/etc/x.rollout` is absolute", 1, 8),
    Case("import-missing", 'import "policies/slo.rollout"\n' + spec("service ranker"),
         "RL123", "imported file `policies/slo.rollout` does not exist", 1, 8,
         others={"policies/sla.rollout": "gates slo { gate e: error rate < 1% }\n"},
         help="did you mean `policies/sla.rollout`?"),
    Case("import-cycle", 'import "b.rollout"\n' + spec("service ranker"),
         "RL122", "import cycle: spec.rollout -> b.rollout -> spec.rollout", 1, 8, file="b.rollout",
         others={"b.rollout": 'import "spec.rollout"\ngates shared { gate e: error rate < 1% }\n'}),
    Case("gate-set-defined-in-two-files", 'import "a.rollout"\nimport "b.rollout"\n' + spec("use gates slo"),
         "RL101", "gate set `slo` is defined twice", 1, 1, file="b.rollout",
         others={"a.rollout": "gates slo { gate e: error rate < 1% }\n",
                 "b.rollout": "gates slo { gate e: error rate < 2% }\n"}),
    Case("adwin-with-threshold", spec("gate d: adwin(scores) < 0.3"),
         "RL216", "`adwin` takes no threshold", 2, 25, help="delta 0.002"),
    Case("scenario-latency-without-unit", spec("scenario slow { latency +15 }"),
         "RL201", "missing unit: a latency change needs a duration", 2, 27, help="`+15ms`"),
    Case("approver-command-substitution", spec('approve promotion by "@leads", "$(curl evil)"'),
         "RL290", "approver `$(curl evil)` is not a user or team handle", 2, 34, help='"@org/team"'),
    Case("approver-expression", spec('approve promotion by "${{ github.event.issue.title }}"'),
         "RL290", "is not a user or team handle", 2, 24),
    Case("approver-newline", spec('approve promotion by "@a\\nb"'),
         "RL290", "approver `@a\\nb` is not a user or team handle", 2, 24),
    Case("channel-backticks", spec("gate e: error rate < 1%", 'on e fail: notify "#x`id`"'),
         "RL291", "notify channel `#x`id`` is not a channel name", 3, 21, help='"#recs-ml-oncall"'),
    Case("channel-with-space", spec("gate e: error rate < 1%", 'on e fail: pause, notify "#recs ml"'),
         "RL291", "is not a channel name", 3, 28),
    Case("pipeline-image-is-a-command", spec('pipeline { image "make smoke" }'),
         "RL292", "pipeline image `make smoke` is not an image reference", 2, 20, help="cannot be called `image`"),
    Case("pipeline-image-twice", spec('pipeline { image "a/b" }', 'pipeline { image "c/d" }'),
         "RL102", "`image` is given twice", 3, 14),
    Case("import-binary", 'import "b.rollout"\n' + spec("service ranker"),
         "RL006", "cannot import `b.rollout`: file looks binary", 1, 8,
         others={"b.rollout": b"\x00\x01\x02garbage"}),
    # -- out of range: each a located error, never an exception downstream ---------------------------
    Case("number-overflows", spec("traffic 1e400 rps"),
         "RL222", "the request rate must be between 1 rph and 1e+09 rps, got `1e400`", 2, 11),
    Case("duration-overflows", spec("canary { 5% for 99999999999999999999d }"),
         "RL222", "a stage's duration must be at most 520w, got `99999999999999999999d`", 2, 19, help="ten years"),
    Case("interval-too-short", spec("gate e: error rate < 1% every 0.0000001s"),
         "RL222", "the interval must be between 1s and 520w, got `0.0000001s`", 2, 33),
    Case("interval-too-long", spec("gate e: error rate < 1% every 1e300h"),
         "RL222", "the interval must be between 1s and 520w", 2, 33),
    Case("alpha-vanishes", spec(CTR, "gate c: ctr change > -1%, pass if shown non-inferior, alpha 0.0000001%"),
         "RL222", "alpha must be between 0.0001% and 50%, got `0.0000001%`", 3, 63),
    Case("change-vanishes", spec(CTR, "gate c: ctr change > -0.0000000001% relative, pass if shown non-inferior"),
         "RL222", "the margin must be 0 or at least 0.0001% (relative) either way", 3, 24),
    Case("effect-overflows", spec(CTR, "gate c: ctr change > -1%, fail if shown harmful, power 80% at -1e400%"),
         "RL201", "the effect `-1e400%` is over", 3, 65),
    Case("zero-sd", spec("metric revenue: continuous, baseline 1.3, sd 0"),
         "RL222", "sd must be at least 1e-09, got `0`", 2, 48),
    Case("sigma-overflows", spec("metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, sigma 1e300)"),
         "RL222", "sigma must be between 1e-06 and 10, got `1e300`", 2, 72),
    Case("sigma-vanishes", spec("metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, sigma 1e-30)"),
         "RL222", "sigma must be at least 1e-06, got `1e-30`", 2, 72),
    Case("weight-vanishes", spec("canary { 1e-320% for 6h  100% }"),
         "RL222", "a canary weight `1e-320%` is too small to tell from 0%", 2, 12, help="at least 1e-06%"),
    Case("continuous-baseline-vanishes", spec("metric revenue: continuous, baseline 1e-320, sd 4"),
         "RL222", "a continuous metric's baseline must be 0 or at least 1e-09 in size, got `1e-320`", 2, 40),
    Case("lognormal-too-wide", spec("metric ctr: binary, baseline 4.2%, labels lognormal(median 1e-30h, p95 8h)"),
         "RL222", "the p95 delay can be at most 1.39e+07 times the median", 2, 70),
    Case("zero-mean-delay", spec("metric ctr: binary, baseline 4.2%, labels exponential(mean 0s)"),
         "RL214", "the mean delay must be positive", 2, 57),
    Case("baseline-vanishes", spec("metric ctr: binary, baseline 1e-300"),
         "RL222", "a binary metric's baseline must be between 0.0001% and 99.9999%", 2, 32),
    Case("memory-overflows", spec("serving { resources memory 1e400Gi }"),
         "RL222", "memory must be between 1 byte and 1024Ti, got `1e400Gi`", 2, 30),
    Case("replicas-overflow", spec("serving { replicas 1..1e30 }"),
         "RL222", "replicas must be between 0 and 2147483647, got `1e30`", 2, 25),
    Case("version-with-huge-part", spec("model candidate ranker 1.2." + "9" * 5000),
         "RL222", "a version number must be at most 9007199254740991", 2, 26),
    Case("failure-limit-overflows", spec("gate e: error rate < 1% every 1m, fail after 1e300"),
         "RL222", "the failure limit must be between 1 and 10000, got `1e300`", 2, 48),
    Case("scenario-change-overflows", spec("scenario slow { latency +1e400ms }"),
         "RL222", "a change must be at most 520w either way", 2, 27),
    # -- nesting, whole words, line ends --------------------------------------------------------------
    Case("calls-nest-too-deep", spec("gate d: " + "f(" * 3000 + "x" + ")" * 3000 + " < 1"),
         "RL017", "calls nest more than 32 levels deep", 2, 75),
    Case("types-nest-too-deep", spec("signature { out s: " + "list<" * 40 + "int64" + ">" * 40 + " }"),
         "RL017", "type arguments nest more than 32 levels deep", 2, 182),
    Case("keyword-is-a-whole-word", spec("gatekeeper: p99 latency < 250ms"),
         "RL014", "unknown keyword `gatekeeper`", 2, 3),
    Case("role-is-a-whole-word", spec("model stablex ranker 1.4.2"),
         "RL010", "unexpected `stablex`", 2, 9),
    # -- whole files ------------------------------------------------------------------------------
    Case("empty-file", "", "RL015", "file is empty", 1, 1),
    Case("comments-only", "# nothing here\n\n# still nothing\n", "RL015", "file has no rollout", 1, 1),
    Case("binary-garbage", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,
         "RL006", "file looks binary", 1, 8, exit=2),
    Case("invalid-utf8", b"rollout r {\n  owner \"caf\xe9\"\n}\n",
         "RL005", "not valid UTF-8 (byte 0xe9", 2, 13, exit=2, help="save the file as UTF-8"),
    Case("over-1mb", "# " + "x" * 1_100_000 + "\n" + spec("service ranker"),
         "RL007", "file is too large", None, None, exit=2),
    Case("ten-mb", TEN_MB, "RL007", f"file is too large to be a rollout spec ({len(TEN_MB):,} bytes", None, None,
         exit=2),
    Case("missing-file", None, "RL002", "no such file", None, None, exit=2),
    Case("directory", None, "RL002", "is a directory, not a rollout file", None, None, exit=2, setup="dir"),
    Case("unreadable", spec("service ranker"), "RL003", "permission denied", None, None, exit=2,
         setup="unreadable"),
]

# Several errors in one file are reported together, each at its own line.
MULTI_LOWERING = spec(
    "service ranker",                              # 2
    "traffic 12000",                               # 3: missing unit
    "canary { 5% for 2 }",                         # 4: missing unit
    "gate latency: p99 latncy < 250ms",            # 5: typo in the condition
    "gate errors: error rate < 1% evry 5m",        # 6: typo in an option
)
MULTI_SYNTAX = spec(
    "service ranker",                              # 2
    "gaet latency: p99 latency < 250ms",           # 3: unknown keyword
    "shadow 100% 24h",                             # 4: missing `for`
    "gate errors error rate < 1%",                 # 5: missing `:`
    "canary { 5% for 1h  100% }",                  # 6: fine
    "owner \"#recs",                               # 7: unterminated string
)
MORE_CASES = [
    Case("several-lowering-errors", MULTI_LOWERING, "RL201", "missing unit", 3, 11, count=4),
    Case("several-syntax-errors", MULTI_SYNTAX, "RL014", "unknown keyword `gaet`", 3, 3, count=4),
]
ALL_CASES = CASES + MORE_CASES


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def test_the_case_list_is_long_and_distinct() -> None:
    assert len(ALL_CASES) >= 30
    assert len(set(_ids(ALL_CASES))) == len(ALL_CASES)


# -- running `rollout check` ----------------------------------------------------------------------


def make_repo(tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch | None = None) -> Path:
    """Write the case into a fresh repository; return the path to check."""
    (tmp_path / "pyproject.toml").write_text("")
    target = tmp_path / "spec.rollout"
    for name, content in case.others.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if case.setup == "dir":
        target.mkdir()
    elif isinstance(case.source, bytes):
        target.write_bytes(case.source)
    elif isinstance(case.source, str):
        target.write_text(case.source, encoding="utf-8")
    if case.setup == "unreadable":
        _make_unreadable(target, monkeypatch)
    return target


def _make_unreadable(target: Path, monkeypatch: pytest.MonkeyPatch | None) -> None:
    target.chmod(0)
    if os.access(target, os.R_OK):
        # Running as root, permissions do not stop reads: refuse this one file the way the OS would.
        assert monkeypatch is not None, "this case needs the in-process run"
        real_open = Path.open

        def refusing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self.resolve() == target.resolve():
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", refusing_open)


def check_json(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[str, Any]]:
    target = make_repo(tmp_path, case, monkeypatch)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["check", "--format", "json", "--no-color", target.name], capsys)
    assert "Traceback" not in out + err
    return code, json.loads(out)


# -- the cases ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL_CASES, ids=_ids(ALL_CASES))
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    code, doc = check_json(case, tmp_path, capsys, monkeypatch)
    diagnostics = doc["diagnostics"]
    assert diagnostics, "expected at least one diagnostic"
    first = diagnostics[0]
    assert (first["code"], first["severity"]) == (case.code, "error"), first
    assert case.message in first["message"], first
    assert first["message"] == first["message"].rstrip("."), "messages end without a period"
    assert not first["message"][:1].isupper(), "messages start lowercase"
    if case.help:
        assert case.help in first.get("help", ""), first
    if case.line is None:
        assert "range" not in first, first
    else:
        start = first["range"]["start"]
        assert (first["range"]["file"], start["line"], start["column"]) == (case.file, case.line, case.col), first
    if case.count is not None:
        assert len(diagnostics) == case.count, [d["message"] for d in diagnostics]
    assert code == case.exit
    assert doc["valid"] is False


def test_several_lowering_errors_are_reported_together(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _, doc = check_json(MORE_CASES[0], tmp_path, capsys, monkeypatch)
    found = [(d["code"], d["range"]["start"]["line"], d["range"]["start"]["column"]) for d in doc["diagnostics"]]
    assert found == [("RL201", 3, 11), ("RL201", 4, 19), ("RL215", 5, 21), ("RL207", 6, 32)]


def test_recovery_lists_later_syntax_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """After a syntax error the parser goes on: each later mistake is found, at its own line."""
    _, doc = check_json(MORE_CASES[1], tmp_path, capsys, monkeypatch)
    found = [(d["code"], d["range"]["start"]["line"], d["range"]["start"]["column"]) for d in doc["diagnostics"]]
    assert found == [("RL014", 3, 3), ("RL010", 4, 15), ("RL010", 5, 15), ("RL012", 7, 9)]


def test_one_syntax_error_does_not_hide_the_next(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    source = spec("servce ranker", "namespace recs", "owner \"#x\"", "shadow 50% for", "}")
    case = Case("two", source, "RL014", "", 2, 3, count=None)
    _, doc = check_json(case, tmp_path, capsys, monkeypatch)
    lines = [d["range"]["start"]["line"] for d in doc["diagnostics"]]
    assert lines[:2] == [2, 5]


def test_unclosed_block_is_one_error_not_a_cascade(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A `canary {` left open makes every later statement look wrong; only the cause is reported."""
    source = spec("canary {", "  5% for 1h", "  100%", "gate errors: error rate < 1%",
                  "gate latency: p99 latency < 250ms", "on errors fail: rollback")
    _, doc = check_json(Case("unclosed", source, "", "", 0, 0), tmp_path, capsys, monkeypatch)
    assert [d["code"] for d in doc["diagnostics"]] == ["RL016"]


def test_ten_megabytes_are_refused_before_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The size alone refuses the file: it is never decoded, let alone parsed."""

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("a 10 MB file reached the parser")

    monkeypatch.setattr("rolloutlang.loader.parse", must_not_run)
    monkeypatch.setattr("rolloutlang.loader.decode_source", must_not_run)
    monkeypatch.setattr("rolloutlang.syntax.parse", must_not_run)
    case = next(c for c in CASES if c.id == "ten-mb")
    code, doc = check_json(case, tmp_path, capsys, monkeypatch)
    assert code == 2
    assert [d["code"] for d in doc["diagnostics"]] == ["RL007"]


def test_the_unreadable_case_really_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.id == "unreadable")
    target = make_repo(tmp_path, case, monkeypatch)
    with pytest.raises(PermissionError):
        target.open("rb")


# -- the sweep: no traceback, no lark names, whatever the output format ----------------------------


def _texts(diagnostic: dict[str, Any]) -> list[str]:
    return [diagnostic.get("message", ""), diagnostic.get("label", ""), diagnostic.get("help", ""),
            *diagnostic.get("notes", [])]


@pytest.mark.parametrize("case", ALL_CASES, ids=_ids(ALL_CASES))
def test_sweep_no_traceback_no_lark_names(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = make_repo(tmp_path, case, monkeypatch)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["check", "--no-color", target.name], capsys)
    assert code == case.exit
    assert "Traceback" not in out + err
    assert "\x1b[" not in err
    assert f"error[{case.code}]" in err
    assert re.search(r"\d+ errors?", err), err
    code, out, _ = run_cli(["check", "--format", "json", target.name], capsys)
    assert code == case.exit
    for diagnostic in json.loads(out)["diagnostics"]:
        for text in _texts(diagnostic):
            assert not LARK_NAMES.search(text), text
            assert "Traceback" not in text and "lark" not in text.lower(), text


def test_sweep_of_broken_examples_never_raises(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every example cut off at many points: always diagnostics, never a traceback or a lark name."""
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "examples" / "ranker-v2.rollout").read_text(encoding="utf-8")
    target = tmp_path / "cut.rollout"
    for cut in range(40, len(text), 97):
        target.write_text(text[:cut], encoding="utf-8")
        code, out, err = run_cli(["check", "--format", "json", target.name], capsys)
        assert code == 1, (cut, out, err)
        for diagnostic in json.loads(out)["diagnostics"]:
            for message in _texts(diagnostic):
                assert not LARK_NAMES.search(message), (cut, message)


# -- the same through a real process ---------------------------------------------------------------

SUBPROCESS_CASES = ["typo-keyword-gaet", "missing-brace-at-eof", "invalid-utf8", "missing-file", "ten-mb"]


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_subprocess(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in ALL_CASES if c.id == case_id)
    target = make_repo(tmp_path, case)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "rolloutlang", "check", str(target)], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == case.exit, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert f"error[{case.code}]" in result.stderr
    assert case.message in result.stderr


def test_stdin_with_binary_garbage(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`rollout check -` reads stdin with the same refusals as a file."""
    import io

    fake = io.TextIOWrapper(io.BytesIO(b"\x00\x01garbage"))
    monkeypatch.setattr(sys, "stdin", fake)
    code, out, err = run_cli(["check", "-"], capsys)
    assert code == 2
    assert "error[RL006]" in err and "Traceback" not in out + err

