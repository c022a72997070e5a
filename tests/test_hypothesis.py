"""Property tests: the front end never raises, and fmt keeps what a spec means.

Three generators:

* token soup: random runs of the language's words, numbers with units,
  strings, braces, punctuation, comments and random unicode;
* valid specs composed from real statements (models, signatures, serving,
  canary stages with rising weights, every gate kind, rules, scenarios,
  budgets, logging, a gate set used by the rollout, ...) with random
  whitespace, blank lines and comments between any two tokens;
* those valid specs with one token deleted, duplicated or replaced.

Parsing, loading and formatting must only ever answer with diagnostics.  A
valid spec must load without errors, and formatting it must be idempotent and
keep its IR (spans aside) and its comments.
"""

from __future__ import annotations

import os
import string
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolloutlang.checks import run_checks
from rolloutlang.explain import explain_program
from rolloutlang.formatter import format_source, strip_spans
from rolloutlang.loader import load_text
from rolloutlang.lowering import lower
from rolloutlang.plan import build_plan, render_plan
from rolloutlang.source import SourceFile
from rolloutlang.syntax import STATEMENT_KEYWORDS, TOP_LEVEL_KEYWORDS, parse

# Modest and derandomized, so CI is fast and repeatable; for a longer random
# hunt, run `ROLLOUT_FUZZ_EXAMPLES=5000 pytest tests/test_hypothesis.py`.
_FUZZ = int(os.environ.get("ROLLOUT_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(max_examples=_FUZZ or 200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=not _FUZZ, print_blob=True)
SPEC_SETTINGS = settings(SETTINGS, max_examples=_FUZZ or 75)

INNER_WORDS = (
    "from", "in", "out", "image", "replicas", "resources", "warmup", "expects", "adapter", "via", "header",
    "cookie", "query", "for", "alongside", "until", "approved", "hold", "to", "fail", "by", "requests", "fields",
    "pii", "retain", "hashed", "dropped", "stable", "candidate", "gates", "canary", "every", "after", "latency",
    "p99", "error", "rate", "change", "relative", "rollback", "now", "pause", "notify", "promote", "exposure", "pass",
    "duration", "of", "before", "binary", "continuous", "baseline", "labels", "lognormal", "median", "p95",
    "preview", "manual", "max", "surge", "unavailable", "psi", "sequential", "alpha", "power", "rps", "diurnal",
)
KEYWORDS = sorted({*STATEMENT_KEYWORDS, *TOP_LEVEL_KEYWORDS, *INNER_WORDS})
PUNCTUATION = ["{", "}", "(", ")", "<", ">", "<=", ">=", "==", "!=", ",", ":", "?", "..", "@", "=", "~", "^=",
               "-", "+", "%", ".", '"']
RESERVED = set(KEYWORDS) | {"blue-green", "rolling", "use", "on", "log"}

names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_lowercase),
    st.text(alphabet=string.ascii_lowercase + string.digits + "_-", max_size=7),
).filter(lambda s: s not in RESERVED)
units = st.sampled_from(["", "", "%", "ms", "s", "m", "h", "d", "w", "Gi", "Mi", "rps", "x"])
numbers = st.builds(
    lambda sign, whole, frac, unit: f"{sign}{whole}{frac}{unit}",
    st.sampled_from(["", "", "-", "+"]),
    st.integers(0, 100000).map(str),
    st.sampled_from(["", "", ".5", ".25", "e3"]),
    units,
)
string_bodies = st.text(alphabet=string.ascii_letters + string.digits + " #{}:/-_.@", max_size=12)
strings = string_bodies.map(lambda s: f'"{s}"')
comment_texts = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"), max_size=15
).map(lambda s: "#" + s)
versions = st.builds(lambda a, b, c: f"{a}.{b}.{c}", *(st.integers(0, 20) for _ in range(3)))
digests = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}")

soup_tokens = st.one_of(
    st.sampled_from(KEYWORDS),
    st.sampled_from(PUNCTUATION),
    names,
    numbers,
    strings,
    versions,
    digests,
    comment_texts.map(lambda c: c + "\n"),
    st.text(max_size=4),
    st.just('"unterminated'),
)
soup_separators = st.sampled_from([" ", " ", "\n", "", "\t", "\r\n", "\n\n", "\f"])


@st.composite
def soups(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(soup_tokens, max_size=40))
    seps = draw(st.lists(soup_separators, min_size=len(tokens), max_size=len(tokens)))
    if draw(st.booleans()):
        tokens = ["rollout", "x", "{", *tokens, "}"]
        seps = [" ", " ", "\n", *seps, "\n"]
    return "".join(t + s for t, s in zip(tokens, seps, strict=True))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty repository, so that soup imports resolve to nothing real."""
    return tmp_path_factory.mktemp("repo")


def _never_raises(text: str, root: Path) -> None:
    result = parse(SourceFile("soup.rollout", text))
    if result.tree is not None:
        lower(result.tree, "soup.rollout")
    load_text(text, "soup.rollout", root)
    out, diagnostics = format_source(text, "soup.rollout")
    assert all(d.code != "RL000" for d in diagnostics), [d.message for d in diagnostics]
    if out is None:
        assert diagnostics
        assert result.tree is None
    else:
        # format_source has already checked tokens and comments; check the IR too.
        assert diagnostics == []
        assert format_source(out, "soup.rollout") == (out, [])
        assert _meaning(out) == _meaning(text)


@SETTINGS
@given(text=soups())
def test_token_soup_never_raises(text: str, root: Path) -> None:
    _never_raises(text, root)


@SETTINGS
@given(text=st.text(max_size=200))
def test_random_text_never_raises(text: str, root: Path) -> None:
    _never_raises(text, root)


# -- valid specs ------------------------------------------------------------------

Tokens = list[str]


def _commas(items: list[Tokens]) -> Tokens:
    out: Tokens = []
    for i, item in enumerate(items):
        if i:
            out.append(",")
        out.extend(item)
    return out


def _words(text: str) -> Tokens:
    return text.split()


@st.composite
def unique_names(draw: st.DrawFn, prefix: str, min_size: int = 0, max_size: int = 4) -> list[str]:
    picked = draw(st.lists(names, min_size=min_size, max_size=max_size, unique=True))
    return [f"{prefix}{n}" for n in picked]


@st.composite
def type_refs(draw: st.DrawFn) -> Tokens:
    scalar = draw(st.sampled_from(["int64", "float32", "string", "category", "bool", "bytes"]))
    shape = draw(st.sampled_from(["scalar", "list", "vector", "tensor"]))
    if shape == "scalar":
        return [scalar]
    if shape == "list":
        return ["list", "<", scalar, ">"]
    if shape == "vector":
        return ["vector", "<", scalar, ",", str(draw(st.integers(1, 1024))), ">"]
    dims = draw(st.lists(st.integers(1, 512).map(str), min_size=1, max_size=3))
    return ["tensor", "<", scalar, ",", *_commas([[d] for d in dims]), ">"]


@st.composite
def signatures(draw: st.DrawFn, role: str | None) -> Tokens:
    inputs = draw(unique_names("i", 1, 3))
    outputs = draw(unique_names("o", 1, 2))
    fields_in = [[n, *(["?"] if draw(st.booleans()) else []), ":", *draw(type_refs()),
                  *(["pii"] if draw(st.booleans()) else [])] for n in inputs]
    fields_out = [[n, ":", *draw(type_refs())] for n in outputs]
    return ["signature", *([role] if role else []), "{", "in", *_commas(fields_in), "out", *_commas(fields_out),
            "}"]


@st.composite
def servings(draw: st.DrawFn) -> Tokens:
    lo = draw(st.integers(0, 10))
    hi = draw(st.integers(lo, 40))
    items = draw(st.lists(st.sampled_from([
        ["image", '"registry.example.com/x"', "@", draw(digests)],
        ["replicas", str(lo), "..", str(hi)],
        ["replicas", str(lo)],
        ["resources", "cpu", "2", ",", "memory", "4Gi", ",", "gpu", "1"],
        ["resources", "cpu", "500m"],
        ["warmup", draw(st.sampled_from(["2m", "45s", "1h"]))],
    ]), max_size=5))
    return ["serving", "{", *[t for item in items for t in item], "}"]


@st.composite
def canaries(draw: st.DrawFn) -> tuple[Tokens, list[str]]:
    weights = sorted(draw(st.lists(st.sampled_from([1, 2, 5, 10, 25, 50, 75]), min_size=1, max_size=5,
                                   unique=True)))
    if draw(st.booleans()):
        weights.append(100)
    stage_names = draw(unique_names("s", len(weights), len(weights)))
    tokens: Tokens = ["canary", "{"]
    named: list[str] = []
    for weight, name in zip(weights, stage_names, strict=True):
        if draw(st.booleans()):
            tokens += [name, ":"]
            named.append(name)
        tokens.append(f"{weight}%")
        end = draw(st.sampled_from(["for", "for", "until", "hold", "none"]))
        if end == "for":
            tokens += ["for", draw(st.sampled_from(["2h", "30m", "1d", "90s"]))]
        elif end == "until":
            tokens += ["until", "approved"]
        elif end == "hold":
            tokens.append("hold")
    tokens.append("}")
    return tokens, named


@st.composite
def option_blocks(draw: st.DrawFn, keyword: list[str], options: list[Tokens], min_size: int = 0) -> Tokens:
    picked = draw(st.lists(st.sampled_from(options), min_size=min_size, max_size=len(options),
                           unique_by=lambda o: tuple(o[0:2])))
    trailing = [","] if draw(st.booleans()) and picked else []
    return [*keyword, "{", *_commas(picked), *trailing, "}"]


def _gate_options(kind: str, stages: list[str]) -> list[Tokens]:
    options = [_words("every 5m"), _words("fail after 2")] if kind not in ("business", "srm", "job") else []
    if kind == "job":
        options = [_words("timeout 10m"), _words("every 30m")]  # `fail after` needs `every` (RL263)
    if kind == "srm":
        options = [_words("every 1h"), _words("alpha 0.1%")]
    if kind == "drift":
        options += [_words("bins 20"), _words("vs training"), _words("min samples 1000")]
    if kind == "slo":
        options += [_words("min samples 500")]
    if kind == "business":
        options += [_words("sequential obrien-fleming"), _words("alpha 5%"), _words("sequential hsd(-4)"),
                    _words("two-sided"), _words("analysis matured"), _words("every 1h")]
    if stages:
        options.append(["from", stages[0]])
    return options


@st.composite
def gates(draw: st.DrawFn, name: str, metrics: list[str], queries: list[str], stages: list[str]) -> Tokens:
    kinds = ["latency", "latency-change", "errors", "saturation", "drift", "srm", "job"] + \
        (["business"] if metrics else []) + (["query"] if queries else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "latency":
        condition = [draw(st.sampled_from(["p99", "p95", "p50"])), "latency", "<", "250ms",
                     *draw(st.sampled_from([[], [",", "baseline", "180ms"]]))]
    elif kind == "latency-change":
        condition = ["p99", "latency", "change", "<", draw(st.sampled_from(["+10%", "+15ms"]))]
    elif kind == "srm":
        condition = ["srm"]
    elif kind == "job":
        condition = draw(st.sampled_from([['run', '"make parity"'],
                                          ['call', '"https://load.example.com/r"', "json", '"a.b"', "<", "0.01"]]))
    elif kind == "errors":
        condition = ["error", "rate", "<", "0.5%"]
    elif kind == "saturation":
        condition = ["saturation", "<", "80%"]
    elif kind == "drift":
        condition = [draw(st.sampled_from(["psi", "kl", "js"])), "(", "scores", ")", "<", "0.2"]
    elif kind == "business":
        hypothesis = draw(st.sampled_from([_words("fail if shown harmful , power 80% at -3%"),
                                           _words("pass if shown non-inferior")]))
        condition = [metrics[0], "change", ">", "-1%", *draw(st.sampled_from([[], ["relative"]])), ",",
                     *hypothesis]
    else:
        condition = ["query", queries[0], "<", "0.9"]
    family = {"business": "business", "drift": "drift", "srm": "srm", "job": "job"}.get(kind, "slo")
    options = draw(st.lists(st.sampled_from(_gate_options(family, stages)), max_size=3, unique_by=lambda o: o[0]))
    tokens = ["gate", name, ":", *condition]
    if draw(st.booleans()) and options and "," not in condition:
        tokens += options[0]  # the first option may continue the condition's phrase, if it has no option yet
        options = options[1:]
    for option in options:
        tokens += [",", *option]
    return tokens


@st.composite
def rules(draw: st.DrawFn, gate_names: list[str]) -> Tokens:
    on = draw(st.lists(st.sampled_from(gate_names), min_size=1, max_size=3, unique=True))
    actions = draw(st.lists(st.sampled_from([
        _words("rollback now"), _words("rollback"), _words("rollback after 30m"), _words("pause"),
        ["notify", '"#oncall"'],
    ]), min_size=1, max_size=3, unique_by=lambda a: a[0]))
    if draw(st.integers(0, 4)) == 0:  # a rule on passing gates promotes or notifies
        actions = draw(st.lists(st.sampled_from([_words("promote"), ["notify", '"#oncall"']]), min_size=1,
                                max_size=2, unique_by=lambda a: a[0]))
        return ["on", *_commas([[g] for g in on]), "pass", ":", *_commas(actions)]
    return ["on", *_commas([[g] for g in on]), "fail", ":", *_commas(actions)]


def _metric(name: str, continuous: bool, delay: Tokens) -> Tokens:
    kind = (["continuous", ",", "baseline", "1.3", ",", "sd", "4"] if continuous
            else ["binary", ",", "baseline", "4.2%"])
    return ["metric", name, ":", *kind, *([",", "labels", *delay] if delay else [])]


delays = st.sampled_from([
    [], ["immediate"], ["fixed", "(", "2h", ")"], ["exponential", "(", "mean", "1h", ")"],
    ["lognormal", "(", "median", "2h", ",", "p95", "8h", ")"],
])


@st.composite
def specs(draw: st.DrawFn) -> list[Tokens]:
    """A file as a list of top-level items, each a list of tokens."""
    items: list[Tokens] = []
    statements: list[Tokens] = []
    body: Tokens
    set_gates: list[str] = []
    if draw(st.booleans()):
        set_gates = draw(unique_names("sg", 1, 2))
        body = [t for g in set_gates for t in draw(gates(g, [], [], []))]
        items.append(["gates", "shared", "{", *body, "}"])
        statements.append(["use", "gates", "shared"])
    for keyword, value in (("service", draw(names)), ("namespace", draw(names)), ("owner", draw(strings))):
        if draw(st.booleans()):
            statements.append([keyword, value])
    model = draw(names)
    for role, version in (("stable", draw(versions)), ("candidate", draw(versions))):
        if draw(st.booleans()):
            pin = ["@", draw(digests)] if draw(st.booleans()) else []
            source = ["from", '"models:/m/1"'] if draw(st.booleans()) else []
            statements.append(["model", role, model, version, *pin, *source])
    roles: list[str | None] = [None, "stable", "candidate"]
    for applies_to in draw(st.lists(st.sampled_from(roles), max_size=2, unique=True)):
        statements.append(draw(signatures(applies_to)))
    if draw(st.booleans()):
        statements.append(draw(servings()))
    consumers = draw(unique_names("c", 0, 3))
    switches: list[Tokens] = []
    if draw(st.booleans()) or consumers:
        body = []
        for c in consumers:
            body += [c, "expects", "embedding", str(draw(st.integers(1, 512)))]
            if draw(st.booleans()):
                body += ["adapter", '"pca"']
            if draw(st.booleans()):
                body += ["via", draw(st.sampled_from(["header", "cookie"])), '"x-caller"',
                         draw(st.sampled_from(["=", "^="])), f'"{c}"']
                if draw(st.booleans()):
                    switches.append(body)  # `switch at` once the phases are known
        statements.append(["consumers", "{", *body, "}"])
    if draw(st.booleans()):
        statements.append(["traffic", "12000", "rps", *draw(st.sampled_from([[], [",", "diurnal", "30%"],
                                                                              [",", "peak", "14h"]]))])
    queries = draw(unique_names("q", 0, 2))
    if draw(st.booleans()) or queries:
        body = [t for q in queries for t in ("query", q, '"up{job=\\"x\\"}"')]
        block = ["{", *body, "}"] if draw(st.booleans()) or body else []
        statements.append(["metrics", "prometheus", '"http://prometheus:9090"', *block])
    metrics = draw(unique_names("m", 0, 2))
    for m in metrics:
        statements.append(_metric(m, draw(st.booleans()), draw(delays)))
    if draw(st.booleans()):
        statements.append(draw(st.sampled_from([
            ["shadow", "100%", "for", "24h"], ["shadow", "50%", "alongside", "canary"],
            ["shadow", "100%", "alongside", "canary", "until", "25%"],
        ])))
    stages: list[str] = []
    strategy = draw(st.sampled_from(["canary", "blue-green", "rolling", "none"]))
    if strategy == "canary":
        tokens, stages = draw(canaries())
        statements.append(tokens)
    elif strategy == "blue-green":
        statements.append(draw(option_blocks(["blue-green"], [
            _words("preview for 2h"), _words("promote manual"), _words("scale down after 30m")])))
    elif strategy == "rolling":
        statements.append(draw(option_blocks(["rolling"], [_words("max surge 25%"), _words("max unavailable 0")])))
    phases = list(stages)
    if strategy != "none" and draw(st.booleans()):
        statements.append(_words("bake for 2h"))
        phases.append("bake")
    if strategy == "canary" and draw(st.booleans()):
        statements.append(_words("scale down after 1h"))
    if strategy == "none" and draw(st.booleans()):
        statements.append(["revert", *draw(st.sampled_from([[], ['"back to the last version"']]))])
    for body in switches:
        body += ["switch", "at", draw(st.sampled_from(["promotion", *phases]))]
    if draw(st.booleans()):
        statements.append(["route", "header", '"x-ml-preview"', draw(st.sampled_from(["=", "~", "^="])), '"true"',
                           "to", draw(st.sampled_from(["stable", "candidate"]))])
    gate_names = draw(unique_names("g", 0, 4))
    for g in gate_names:
        statements.append(draw(gates(g, metrics, queries, phases)))
    for _ in range(draw(st.integers(0, 2))):
        if gate_names or set_gates:
            statements.append(draw(rules(gate_names + set_gates)))
    for budget in draw(st.lists(st.sampled_from([
        _words("budget exposure <= 5% of requests before 24h"), _words("budget exposure <= 10000 requests"),
        _words("budget duration <= 3d"),
    ]), max_size=2)):
        statements.append(budget)
    for s in draw(unique_names("sc", 0, 2)):
        # An effect names a declared metric, a gate, or `latency`, `errors`, `drift` (RL130).
        effects = [_words("latency +15ms"), _words("errors 5% after 30m"), _words("drift 0.3 after 6h"),
                   *[_words(f"{m} -2%") for m in metrics[:1]]]
        statements.append(draw(option_blocks(["scenario", s], effects, min_size=1)))
    if draw(st.booleans()):
        statements.append(_words("holdout 1% on stable for 14d"))
    hooks = draw(unique_names("h", 0, 3))
    if hooks:
        points = [[], _words("before traffic"), _words("after promotion"), _words("on rollback"),
                  *(_words(f"at {edge} of {phase}") for phase in phases for edge in ("start", "end"))]
        body = []
        for h in hooks:
            body += [h, '"make smoke"', *draw(st.sampled_from(points)),
                     *draw(st.sampled_from([[], [",", "timeout", "10m"], ["timeout", "1h"]]))]
        statements.append(["pipeline", "{", *body, "}"])
    if draw(st.booleans()):
        what = draw(st.sampled_from(["promotion", "rollback", *stages]))
        approvers = draw(st.lists(st.sampled_from(['"@a"', '"@b"', '"@org/c"']), min_size=1, max_size=2))
        statements.append(["approve", what, "by", *_commas([[a] for a in approvers])])
    if draw(st.booleans()):
        fields = draw(unique_names("f", 1, 3))
        body = []
        if draw(st.booleans()):
            body += ["fields", *_commas([[f] for f in fields])]
        if draw(st.booleans()):
            body += ["pii", *_commas([[f, *draw(st.sampled_from([[], ["hashed"], ["dropped"]]))] for f in fields])]
        if draw(st.booleans()):
            body += ["retain", "30d"]
        statements.append(["log", "requests", "5%", "{", *body, "}"])
    ordered = draw(st.permutations(statements))
    items.append(["rollout", draw(names), "{", *[t for s in ordered for t in s], "}"])
    return items


separators = st.sampled_from([
    " ", " ", " ", " ", " ", "  ", "\n", "\n", "\n  ", "\n\n", "\n\n\n    ", "\t",
    "  # note\n", "\n# own line\n", "\n\n  # para\n\n", "#x\n", "\n  # a\n  # b\n",
])


@st.composite
def spec_texts(draw: st.DrawFn) -> str:
    tokens = [t for item in draw(specs()) for t in item]
    seps = draw(st.lists(separators, min_size=len(tokens), max_size=len(tokens)))
    head = draw(st.sampled_from(["", "# header\n", "\n\n# header\n\n"]))
    return head + "".join(t + s for t, s in zip(tokens, seps, strict=True))


def _meaning(text: str) -> tuple[Any, list[tuple[str, str]], list[str]]:
    """IR without spans, the lowering's findings, and the comments, of text that parses."""
    result = parse(SourceFile("spec.rollout", text))
    assert result.tree is not None
    file_ir, diagnostics = lower(result.tree, "spec.rollout")
    return (strip_spans(asdict(file_ir)) if file_ir is not None else None,
            [(d.code, d.message) for d in diagnostics], [c.text.rstrip() for c in result.comments])


@SPEC_SETTINGS
@given(text=spec_texts())
def test_valid_specs_load_and_survive_fmt(text: str, root: Path) -> None:
    program = load_text(text, "spec.rollout", root)
    assert [d.message for d in program.diagnostics if d.is_error] == []
    out, diagnostics = format_source(text, "spec.rollout")
    assert diagnostics == []
    assert out is not None
    assert format_source(out, "spec.rollout") == (out, [])
    assert _meaning(out) == _meaning(text)
    assert out.endswith("\n") and not out.endswith("\n\n")
    assert "\n\n\n" not in out
    assert all(line == line.rstrip() and not line.startswith("\t") for line in out.splitlines())
    # what the checks, explain and the graph make of a spec that loads: findings, never a crash
    findings = program.waive(run_checks(program))
    assert all(d.code != "RL000" for d in findings)
    explain_program(program)
    for rollout in program.rollouts():
        plan = build_plan(rollout)
        for fmt in ("dot", "mermaid", "json"):
            render_plan(plan, fmt)


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    tokens = [t for item in draw(specs()) for t in item]
    i = draw(st.integers(0, len(tokens) - 1))
    how = draw(st.sampled_from(["delete", "duplicate", "replace", "swap"]))
    if how == "delete":
        del tokens[i]
    elif how == "duplicate":
        tokens.insert(i, tokens[i])
    elif how == "replace":
        tokens[i] = draw(soup_tokens)
    elif i + 1 < len(tokens):
        tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
    seps = draw(st.lists(separators, min_size=len(tokens), max_size=len(tokens)))
    return "".join(t + s for t, s in zip(tokens, seps, strict=True))


@SPEC_SETTINGS
@given(text=mutated_specs())
def test_mutated_specs_never_raise(text: str, root: Path) -> None:
    _never_raises(text, root)
