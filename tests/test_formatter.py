"""`rollout fmt`: the canonical layout, comments in every position, and safety.

Tested the way black tests itself: every example and every case here is
formatted, formatted again (nothing may change), and lowered before and after
(the IR must be the same, spans aside).
"""

from __future__ import annotations

import os
import re
import stat
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rolloutlang.cli import cli
from rolloutlang.formatter import format_file, format_source, strip_spans
from rolloutlang.lowering import lower
from rolloutlang.source import SourceFile
from rolloutlang.syntax import parse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").rglob("*.rollout"))


def _d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def fmt(text: str) -> str:
    out, diagnostics = format_source(text, "case.rollout")
    assert diagnostics == [], [d.message for d in diagnostics]
    assert out is not None
    return out


def lowered(text: str) -> tuple[Any, list[tuple[str, str]]]:
    """What a text means: its IR without spans, and the lowering's findings."""
    result = parse(SourceFile("case.rollout", text))
    assert result.tree is not None, [d.message for d in result.diagnostics]
    file_ir, diagnostics = lower(result.tree, "case.rollout")
    dump = strip_spans(asdict(file_ir)) if file_ir is not None else None
    return dump, [(d.code, d.message) for d in diagnostics]


def comments(text: str) -> list[str]:
    return [c.text.rstrip() for c in parse(SourceFile("case.rollout", text)).comments]


# -- layout, one construct at a time ----------------------------------------------

LAYOUT: list[tuple[str, str, str]] = [
    (
        "import-and-spacing",
        'import   "policies/slo.rollout"\nrollout   x   {  service   s  }',
        _d('''
            import "policies/slo.rollout"
            rollout x {
              service s
            }
        '''),
    ),
    (
        "gate-set",
        "gates slo-defaults { gate latency:p99 latency<300ms every 1m,fail after 3\n"
        "on latency fail:rollback now metric ctr:binary,baseline 4.2% }",
        _d('''
            gates slo-defaults {
              gate latency: p99 latency < 300ms every 1m, fail after 3
              on latency fail: rollback now
              metric ctr: binary, baseline 4.2%
            }
        '''),
    ),
    (
        "service-namespace-owner",
        'rollout x {\n    service     ranker\n\tnamespace recs\n owner  "#team"\n}',
        _d('''
            rollout x {
              service   ranker
              namespace recs
              owner     "#team"
            }
        '''),
    ),
    (
        "models",
        "rollout x {\n"
        '  model stable    ranker 1.4.2@sha256:abc123   from "models:/ranker/17"\n'
        "  model candidate ranker 1.5.0-rc.1+build.5 @ latest\n"
        "  model candidate ranker v2\n"
        "}",
        _d('''
            rollout x {
              model stable    ranker 1.4.2 @ sha256:abc123 from "models:/ranker/17"
              model candidate ranker 1.5.0-rc.1+build.5 @ latest
              model candidate ranker v2
            }
        '''),
    ),
    (
        "signature",
        "rollout x {\n  signature { in  a : int64 , b ?: list < int64 >,\n"
        "      c: tensor<float32,3,224,224> out s: vector<float32, 256> }\n"
        "  signature candidate { in a: int64 out s: list<list<float32>> }\n}",
        _d('''
            rollout x {
              signature {
                in  a: int64, b?: list<int64>, c: tensor<float32, 3, 224, 224>
                out s: vector<float32, 256>
              }
              signature candidate {
                in  a: int64
                out s: list<list<float32>>
              }
            }
        '''),
    ),
    (
        "serving",
        'rollout x { serving { image "r/img"@sha256:77e1 replicas 6 .. 24\n'
        "resources cpu 2,memory 4Gi ,gpu 1 warmup 2m replicas 3 } }",
        _d('''
            rollout x {
              serving {
                image     "r/img" @ sha256:77e1
                replicas  6..24
                resources cpu 2, memory 4Gi, gpu 1
                warmup    2m
                replicas  3
              }
            }
        '''),
    ),
    (
        "consumers",
        'rollout x { consumers { search-ranker expects embedding 256 adapter "pca"\n'
        'related   expects embedding 384 via header "x-caller"="related" c expects e 3 via cookie "k" ~ "v.*" } }',
        _d('''
            rollout x {
              consumers {
                search-ranker expects embedding 256 adapter "pca"
                related       expects embedding 384 via header "x-caller" = "related"
                c             expects e 3 via cookie "k" ~ "v.*"
              }
            }
        '''),
    ),
    (
        "traffic-and-metrics",
        'rollout x { traffic 12000 rps,diurnal 30% , peak 14h metrics prometheus "http://p:9090"\n'
        'metrics prometheus "http://p" {} metrics prometheus "http://p" { query gpu "avg(x{a=\\"b\\"})" '
        'query q2 "up" } }',
        _d('''
            rollout x {
              traffic 12000 rps, diurnal 30%, peak 14h
              metrics prometheus "http://p:9090"
              metrics prometheus "http://p"
              metrics prometheus "http://p" {
                query gpu "avg(x{a=\\"b\\"})"
                query q2 "up"
              }
            }
        '''),
    ),
    (
        "label-metric-with-calls",
        "rollout x { metric ctr : binary , baseline 4.2% , labels lognormal ( median 2h , p95 8h )\n"
        "metric rev: continuous, baseline 1.3, sd 4, labels fixed(2h) metric m: binary, baseline 1%, "
        "labels f() }",
        _d('''
            rollout x {
              metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)
              metric rev: continuous, baseline 1.3, sd 4, labels fixed(2h)
              metric m:   binary, baseline 1%, labels f()
            }
        '''),
    ),
    (
        "shadow",
        "rollout x { shadow 100%   for 24h shadow 100% alongside canary shadow 50% alongside canary until 25% }",
        _d('''
            rollout x {
              shadow 100% for 24h
              shadow 100% alongside canary
              shadow 50% alongside canary until 25%
            }
        '''),
    ),
    (
        "canary",
        "rollout x { canary { 1%   for 2h 5% for 6h\nmpr :50% until approved\n  hold-it: 75% hold 100% } }",
        _d('''
            rollout x {
              canary {
                1%           for 2h
                5%           for 6h
                mpr: 50%     until approved
                hold-it: 75% hold
                100%
              }
            }
        '''),
    ),
    (
        "option-blocks-on-one-line",
        "rollout x {\n  blue-green {\n    preview for 2h,promote manual,\n  }\n"
        "  rolling {max surge 25%, max unavailable 0}\n  rolling {  }\n"
        "  scenario regression {ctr -2%,latency +15ms}\n  scenario outage{ errors 5% after 30m , }\n}",
        _d('''
            rollout x {
              blue-green { preview for 2h, promote manual }
              rolling { max surge 25%, max unavailable 0 }
              rolling {}
              scenario regression { ctr -2%, latency +15ms }
              scenario outage     { errors 5% after 30m }
            }
        '''),
    ),
    (
        "routes-gates-rules",
        'rollout x { route header "x-ml-preview" = "true" to candidate route cookie "c" ^= "v" to stable\n'
        "gate latency :p99 latency< 250ms every 5m,fail after 2 gate drift: psi( scores )<0.2 every 1h\n"
        "gate ctr: ctr change > -1% relative, fail if shown harmful, power 80% at -3%, alpha 5%\n"
        "gate g: query gpu_util >= 0.9\n"
        'on latency,errors , drift fail : rollback now on ctr fail: pause, notify "#oncall" use   gates slo }',
        _d('''
            rollout x {
              route header "x-ml-preview" = "true" to candidate
              route cookie "c" ^= "v" to stable
              gate latency: p99 latency < 250ms every 5m, fail after 2
              gate drift:   psi(scores) < 0.2 every 1h
              gate ctr:     ctr change > -1% relative, fail if shown harmful, power 80% at -3%, alpha 5%
              gate g:       query gpu_util >= 0.9
              on latency, errors, drift fail: rollback now
              on ctr fail:                    pause, notify "#oncall"
              use gates slo
            }
        '''),
    ),
    (
        "policy",
        'rollout x { budget exposure<=5% of requests before 24h budget duration <= 3d holdout 1% on stable for 14d\n'
        'pipeline { smoke "make smoke" contract   "pytest tests/contract" }\n'
        'approve promotion by "@a","@b" approve rollback by "@c" }',
        _d('''
            rollout x {
              budget exposure <= 5% of requests before 24h
              budget duration <= 3d
              holdout 1% on stable for 14d
              pipeline {
                smoke    "make smoke"
                contract "pytest tests/contract"
              }
              approve promotion by "@a", "@b"
              approve rollback by "@c"
            }
        '''),
    ),
    (
        "request-log",
        "rollout x { log requests 5% { fields trace_id,prediction ,card pii card hashed,email dropped, ip\n"
        "retain 30d } }",
        _d('''
            rollout x {
              log requests 5% {
                fields trace_id, prediction, card
                pii    card hashed, email dropped, ip
                retain 30d
              }
            }
        '''),
    ),
    (
        "empty-blocks",
        "rollout x {\n\n}\ngates g { }\nrollout y { serving { } consumers {} pipeline {} log requests 1% {} }",
        _d('''
            rollout x {}
            gates g {}
            rollout y {
              serving {}
              consumers {}
              pipeline {}
              log requests 1% {}
            }
        '''),
    ),
    (
        "blank-lines-collapse-and-trim",
        "\n\n\nrollout x {\n\n\n  service s\n\n\n\n  namespace n\n  owner \"o\"\n\n\n}\n\n\n\ngates g {}\n\n\n",
        _d('''
            rollout x {
              service s

              namespace n
              owner     "o"
            }

            gates g {}
        '''),
    ),
    (
        "blank-lines-inside-blocks",
        "rollout x {\n  canary {\n\n    1% for 1h\n\n\n    100%\n\n  }\n  signature {\n    in a: int64\n\n"
        "    out s: float32\n  }\n}",
        _d('''
            rollout x {
              canary {
                1% for 1h

                100%
              }
              signature {
                in a: int64

                out s: float32
              }
            }
        '''),
    ),
    (
        "one-statement-spread-over-lines",
        "rollout x {\n  gate ctr:\n    ctr change > -1% relative,\n    sequential obrien-fleming,\n"
        "    alpha 5%\n  model\n  stable\n  m\n  1.0.0\n}",
        _d('''
            rollout x {
              gate ctr: ctr change > -1% relative, sequential obrien-fleming, alpha 5%
              model stable m 1.0.0
            }
        '''),
    ),
    (
        "no-final-newline-and-crlf",
        "rollout x {\r\n  service s\r\n\r\n  namespace n\r\n}",
        "rollout x {\n  service s\n\n  namespace n\n}\n",
    ),
    (
        "literal-spellings-kept",
        "rollout x { shadow 100.0% for 1440m canary { 1e0% for 7200s 100% } traffic 1.2e4 rps }",
        _d('''
            rollout x {
              shadow 100.0% for 1440m
              canary {
                1e0% for 7200s
                100%
              }
              traffic 1.2e4 rps
            }
        '''),
    ),
]


# -- comments, in every position -----------------------------------------------

COMMENTS: list[tuple[str, str, str]] = [
    (
        "file-header-and-end",
        "# header\n\n# second\nrollout x { service s }\n# end 1\n\n\n# end 2",
        _d('''
            # header

            # second
            rollout x {
              service s
            }
            # end 1

            # end 2
        '''),
    ),
    (
        "own-line-and-trailing",
        "rollout x {\n  # about the service\n  service   s    # trailing\n\n  # about ns\n\n  namespace n\n}",
        _d('''
            rollout x {
              # about the service
              service s  # trailing

              # about ns

              namespace n
            }
        '''),
    ),
    (
        "after-open-and-close-braces",
        "rollout x { # opens\n  service s\n} # closes\n",
        _d('''
            rollout x {  # opens
              service s
            }  # closes
        '''),
    ),
    (
        "before-closing-brace",
        "rollout x {\n  service s\n\n      # last words\n}\ngates g {\n# only a comment\n}",
        _d('''
            rollout x {
              service s

              # last words
            }
            gates g {
              # only a comment
            }
        '''),
    ),
    (
        "between-tokens-of-one-statement-moves-before-it",
        "rollout x {\n  service s\n\n  gate ctr: ctr change > -1% relative,  # the business gate\n"
        "    # the test\n    alpha 5%   # level\n  on ctr, # first\n  errors fail: rollback\n}",
        _d('''
            rollout x {
              service s

              # the business gate
              # the test
              gate ctr: ctr change > -1% relative, alpha 5%  # level
              # first
              on ctr, errors fail: rollback
            }
        '''),
    ),
    (
        "between-the-name-and-the-brace",
        "rollout x # the rollout\n{\n  serving # nothing yet\n  {}\n}",
        _d('''
            # the rollout
            rollout x {
              # nothing yet
              serving {}
            }
        '''),
    ),
    (
        "inside-signature",
        "rollout x {\n  signature { # sig\n    # inputs\n    in a: int64,   # the id\n       b: string  # the name\n"
        "\n    # outputs\n    out s: float32 # score\n    # done\n  }\n}",
        _d('''
            rollout x {
              signature {  # sig
                # inputs
                # the id
                in a: int64, b: string  # the name

                # outputs
                out s: float32  # score
                # done
              }
            }
        '''),
    ),
    (
        "inside-canary-between-stages",
        "rollout x {\n  canary {\n    # warm up\n    1% for 2h # tiny\n\n    # half\n    mpr: 50%\n"
        "      for 7d  # a week\n    100%\n    # promoted\n  }\n}",
        _d('''
            rollout x {
              canary {
                # warm up
                1% for 2h  # tiny

                # half
                mpr: 50% for 7d  # a week
                100%
                # promoted
              }
            }
        '''),
    ),
    (
        "inside-serving-consumers-pipeline-log",
        "rollout x {\n"
        "  serving {\n    image \"i\" # the image\n    # scale\n    replicas 2..4\n  }\n"
        "  consumers { # readers\n    a expects e 3 # a\n    # b next\n    b expects e 3\n  }\n"
        "  pipeline {\n    smoke \"make smoke\" # fast\n    # slow\n    parity \"python -m parity\"\n  }\n"
        "  log requests 5% {\n    fields a, # first\n      b\n    pii a hashed # hashed\n    # keep\n"
        "    retain 30d\n  }\n"
        "}",
        _d('''
            rollout x {
              serving {
                image "i"  # the image
                # scale
                replicas 2..4
              }
              consumers {  # readers
                a expects e 3  # a
                # b next
                b expects e 3
              }
              pipeline {
                smoke "make smoke"  # fast
                # slow
                parity "python -m parity"
              }
              log requests 5% {
                # first
                fields a, b
                pii    a hashed  # hashed
                # keep
                retain 30d
              }
            }
        '''),
    ),
    (
        "inside-an-option-block-expands-it",
        "rollout x {\n  scenario s { ctr -2%, # a dip\n    latency +15ms }\n"
        "  blue-green { # preview first\n    preview for 2h, promote manual,\n    # nothing else\n  }\n"
        "  rolling {\n    # defaults\n  }\n}",
        _d('''
            rollout x {
              scenario s {
                ctr -2%,  # a dip
                latency +15ms
              }
              blue-green {  # preview first
                preview for 2h,
                promote manual
                # nothing else
              }
              rolling {
                # defaults
              }
            }
        '''),
    ),
    (
        "inside-metrics-and-calls",
        'rollout x {\n  metrics prometheus "http://p" { # queries\n  }\n'
        "  metric ctr: binary, baseline 4.2%, labels lognormal(\n    median 2h, # typical\n    p95 8h)\n}",
        _d('''
            rollout x {
              metrics prometheus "http://p" {  # queries
              }
              # typical
              metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)
            }
        '''),
    ),
    (
        "hash-inside-strings-is-not-a-comment",
        'rollout x { owner "#team # not a comment" # a comment\n}',
        _d('''
            rollout x {
              owner "#team # not a comment"  # a comment
            }
        '''),
    ),
    (
        "comment-text-kept-trailing-space-dropped",
        "#no space   \nrollout x {\n  service s   #   odd   spacing\t\n}\n",
        "#no space\nrollout x {\n  service s  #   odd   spacing\n}\n",
    ),
]

# -- aligned columns and trailing comments -----------------------------------------

ALIGNMENT: list[tuple[str, str, str]] = [
    (
        "align-header-group",
        'rollout x { service s namespace recs owner "o" traffic 10 rps metrics prometheus "http://p" }',
        _d('''
            rollout x {
              service   s
              namespace recs
              owner     "o"
              traffic   10 rps
              metrics   prometheus "http://p"
            }
        '''),
    ),
    (
        "align-models-by-role",
        "rollout x { model candidate m 2.0.0 model stable m 1.0.0 @ sha256:ab }",
        _d('''
            rollout x {
              model candidate m 2.0.0
              model stable    m 1.0.0 @ sha256:ab
            }
        '''),
    ),
    (
        "align-gates-after-the-colon",
        "gates g { gate latency: p99 latency < 250ms every 5m, fail after 2\n"
        "gate errors: error rate < 0.5% every 5m\ngate feature-store: query misses < 0.01 every 5m }",
        _d('''
            gates g {
              gate latency:       p99 latency < 250ms every 5m, fail after 2
              gate errors:        error rate < 0.5% every 5m
              gate feature-store: query misses < 0.01 every 5m
            }
        '''),
    ),
    (
        "align-rules-after-the-colon",
        "gates g { on latency, errors fail: rollback now on ctr fail: rollback\n"
        "on drift fail: pause, notify \"#oncall\" }",
        _d('''
            gates g {
              on latency, errors fail: rollback now
              on ctr fail:             rollback
              on drift fail:           pause, notify "#oncall"
            }
        '''),
    ),
    (
        "align-metrics-after-the-colon",
        "rollout x { metric ctr: binary, baseline 4.2% metric revenue: continuous, baseline 1.3, sd 4 }",
        _d('''
            rollout x {
              metric ctr:     binary, baseline 4.2%
              metric revenue: continuous, baseline 1.3, sd 4
            }
        '''),
    ),
    (
        "align-canary-stages-with-labels",
        "rollout x { canary { smoke: 1% for 2h ramp: 5% for 12h 25% for 1d mpr: 50% until approved 100% } }",
        _d('''
            rollout x {
              canary {
                smoke: 1% for 2h
                ramp: 5%  for 12h
                25%       for 1d
                mpr: 50%  until approved
                100%
              }
            }
        '''),
    ),
    (
        "align-canary-stages-final-stage-counts",
        "rollout x { canary { 1% for 2h 5% for 6h 25% for 12h 100% } }",
        _d('''
            rollout x {
              canary {
                1%   for 2h
                5%   for 6h
                25%  for 12h
                100%
              }
            }
        '''),
    ),
    (
        "align-pipeline-hooks",
        'rollout x { pipeline { smoke "make smoke" contract "pytest tests/contract" parity "python -m parity" } }',
        _d('''
            rollout x {
              pipeline {
                smoke    "make smoke"
                contract "pytest tests/contract"
                parity   "python -m parity"
              }
            }
        '''),
    ),
    (
        "align-consumers",
        'rollout x { consumers { search-ranker expects embedding 256 adapter "pca"\n'
        "related-items expects embedding 384 } }",
        _d('''
            rollout x {
              consumers {
                search-ranker expects embedding 256 adapter "pca"
                related-items expects embedding 384
              }
            }
        '''),
    ),
    (
        "align-scenario-braces",
        "rollout x { scenario regression { ctr -2% } scenario outage { errors 5% after 30m } scenario s {} }",
        _d('''
            rollout x {
              scenario regression { ctr -2% }
              scenario outage     { errors 5% after 30m }
              scenario s          {}
            }
        '''),
    ),
    (
        "align-serving-log-signature",
        'rollout x { signature { in a: int64 out s: float32 }\n'
        'serving { image "i" replicas 2..4 resources cpu 2 warmup 1m }\n'
        "log requests 1% { fields a, b pii a hashed retain 30d } }",
        _d('''
            rollout x {
              signature {
                in  a: int64
                out s: float32
              }
              serving {
                image     "i"
                replicas  2..4
                resources cpu 2
                warmup    1m
              }
              log requests 1% {
                fields a, b
                pii    a hashed
                retain 30d
              }
            }
        '''),
    ),
    (
        "align-only-the-same-kind",
        'rollout x { service s owner "o" model stable m 1.0.0 model candidate m 1.1.0 namespace n\n'
        "gate a: error rate < 1% metric m: binary, baseline 1% gate long-name: error rate < 2% }",
        _d('''
            rollout x {
              service s
              owner   "o"
              model stable    m 1.0.0
              model candidate m 1.1.0
              namespace n
              gate a: error rate < 1%
              metric m: binary, baseline 1%
              gate long-name: error rate < 2%
            }
        '''),
    ),
    (
        "align-run-broken-by-blank-line",
        "rollout x {\n  gate a: error rate < 1%\n  gate bb: error rate < 1%\n\n"
        "  gate long-name: error rate < 2%\n  gate c: error rate < 3%\n}",
        _d('''
            rollout x {
              gate a:  error rate < 1%
              gate bb: error rate < 1%

              gate long-name: error rate < 2%
              gate c:         error rate < 3%
            }
        '''),
    ),
    (
        "align-run-broken-by-own-line-comment",
        "rollout x {\n  gate a: error rate < 1%\n  # the long one\n"
        "  gate long-name: error rate < 2%\n  gate c: error rate < 3%\n}",
        _d('''
            rollout x {
              gate a: error rate < 1%
              # the long one
              gate long-name: error rate < 2%
              gate c:         error rate < 3%
            }
        '''),
    ),
    (
        "align-run-broken-by-a-moved-comment",
        "rollout x {\n  gate a: error rate < 1%\n  gate long-name: # why\n"
        "    error rate < 2%\n}",
        _d('''
            rollout x {
              gate a: error rate < 1%
              # why
              gate long-name: error rate < 2%
            }
        '''),
    ),
    (
        "align-run-broken-by-a-multi-line-statement",
        'rollout x {\n  service s\n  metrics prometheus "http://p" {\n'
        '    query q "up"\n  }\n  namespace ns\n  scenario a { ctr -2% }\n  scenario bb { # expanded\n    ctr -1% }\n'
        "  scenario long-name { ctr -3% }\n}",
        _d('''
            rollout x {
              service s
              metrics prometheus "http://p" {
                query q "up"
              }
              namespace ns
              scenario a { ctr -2% }
              scenario bb {  # expanded
                ctr -1%
              }
              scenario long-name { ctr -3% }
            }
        '''),
    ),
    (
        "align-ignores-the-spacing-it-came-with",
        "rollout x {\n  service        s\n  namespace  n\n"
        "  canary {\n    1%        for 2h\n    100%\n  }\n}",
        _d('''
            rollout x {
              service   s
              namespace n
              canary {
                1%   for 2h
                100%
              }
            }
        '''),
    ),
    (
        "trailing-comments-align-in-a-run",
        'rollout x {\n  service s # the service\n  namespace recs # ns\n'
        '  owner "#recs-ml-oncall"\n  canary {\n    1% for 2h # tiny\n    5% for 6h\n    25% for 12h # quarter\n  }\n}',
        _d('''
            rollout x {
              service   s     # the service
              namespace recs  # ns
              owner     "#recs-ml-oncall"
              canary {
                1%  for 2h   # tiny
                5%  for 6h
                25% for 12h  # quarter
              }
            }
        '''),
    ),
    (
        "trailing-comments-a-long-line-without-one-does-not-push",
        'rollout x {\n  serving {\n'
        '    image "registry.example.com/a-long-image-name" @ sha256:0123456789abcdef\n    replicas 2..4 # few\n'
        "    warmup 1m # quick\n  }\n}",
        _d('''
            rollout x {
              serving {
                image    "registry.example.com/a-long-image-name" @ sha256:0123456789abcdef
                replicas 2..4  # few
                warmup   1m    # quick
              }
            }
        '''),
    ),
    (
        "trailing-comments-align-for-any-kind",
        "rollout x {\n  budget duration <= 3d # short\n"
        "  budget exposure <= 5% of requests before 24h # the cap\n  use gates slo # shared\n}",
        _d('''
            rollout x {
              budget duration <= 3d                         # short
              budget exposure <= 5% of requests before 24h  # the cap
              use gates slo  # shared
            }
        '''),
    ),
    (
        "trailing-comments-runs-broken-by-blank-lines",
        "rollout x {\n  gate a: error rate < 1% # one\n\n"
        "  gate long-name: error rate < 2% # two\n  gate c: error rate < 3%    # three\n}",
        _d('''
            rollout x {
              gate a: error rate < 1%  # one

              gate long-name: error rate < 2%  # two
              gate c:         error rate < 3%  # three
            }
        '''),
    ),
    (
        "trailing-comments-on-braces-keep-two-spaces",
        "rollout x { # the rollout\n  pipeline { # hooks\n"
        '    smoke "make smoke" # fast\n  } # done\n}',
        _d('''
            rollout x {  # the rollout
              pipeline {  # hooks
                smoke "make smoke"  # fast
              }  # done
            }
        '''),
    ),
    (
        "ranker-example-excerpt",
        'rollout ranker-v2 {\n  service ranker # Kubernetes Service and Istio host\n'
        '  namespace recs\n  owner "#recs-ml-oncall"\n\n'
        '  model stable ranker 1.4.2 @ sha256:2a4d from "models:/ranker/17"\n'
        '  model candidate ranker 1.5.0 @ sha256:9ab0 from "models:/ranker/21"\n\n'
        "  canary { 1% for 2h 5% for 6h 25% for 12h 100% }\n\n"
        "  gate latency: p99 latency < 250ms every 5m, fail after 2\n"
        "  gate errors: error rate < 0.5% every 5m, fail after 2\n\n"
        "  on latency, errors fail: rollback now\n  on ctr fail: rollback\n}",
        _d('''
            rollout ranker-v2 {
              service   ranker  # Kubernetes Service and Istio host
              namespace recs
              owner     "#recs-ml-oncall"

              model stable    ranker 1.4.2 @ sha256:2a4d from "models:/ranker/17"
              model candidate ranker 1.5.0 @ sha256:9ab0 from "models:/ranker/21"

              canary {
                1%   for 2h
                5%   for 6h
                25%  for 12h
                100%
              }

              gate latency: p99 latency < 250ms every 5m, fail after 2
              gate errors:  error rate < 0.5% every 5m, fail after 2

              on latency, errors fail: rollback now
              on ctr fail:             rollback
            }
        '''),
    ),
]

CASES = LAYOUT + COMMENTS + ALIGNMENT


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_layout(source: str, expected: str) -> None:
    assert fmt(source) == expected


@pytest.mark.parametrize("source", [c[1] for c in CASES] + [c[2] for c in CASES],
                         ids=[f"{c[0]}-in" for c in CASES] + [f"{c[0]}-out" for c in CASES])
def test_cases_round_trip(source: str) -> None:
    out = fmt(source)
    assert fmt(out) == out
    assert lowered(out) == lowered(source)
    assert comments(out) == comments(source)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(ROOT / "examples").as_posix())
def test_examples_round_trip(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    out = fmt(source)
    assert fmt(out) == out
    assert lowered(out) == lowered(source)
    assert comments(out) == comments(source)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(ROOT / "examples").as_posix())
def test_examples_are_already_formatted(path: Path) -> None:
    """The examples are in the canonical layout, so `rollout fmt --check examples/` passes."""
    text = path.read_text(encoding="utf-8")
    assert format_source(text, path.name) == (text, [])


def test_every_example_is_checked() -> None:
    assert len(EXAMPLES) >= 1
    assert any(p.name == "ranker-v2.rollout" for p in EXAMPLES)


def test_already_formatted_text_is_a_fixed_point() -> None:
    for _, _, expected in CASES:
        assert fmt(expected) == expected


def _collapse_spaces(text: str) -> str:
    """Each line's runs of spaces between words made single, up to its first string or comment."""
    lines = []
    for line in text.split("\n"):
        cut = min((i for i in (line.find('"'), line.find("#")) if i >= 0), default=len(line))
        lines.append(re.sub(r"(?<=\S) {2,}", " ", line[:cut]) + line[cut:])
    return "\n".join(lines)


def test_alignment_does_not_depend_on_the_spacing_it_came_with() -> None:
    collapsed = 0
    for _, _, expected in CASES:
        squeezed = _collapse_spaces(expected)
        collapsed += squeezed != expected
        assert fmt(squeezed) == expected
    assert collapsed >= len(ALIGNMENT)


def test_strip_spans_removes_every_position() -> None:
    dumped = lowered("rollout x { model stable m 1.0.0 on a, b fail: pause gate a: error rate < 1% "
                     "gate b: error rate < 2% }")[0]
    text = repr(dumped)
    assert "'line'" not in text and "_span" not in text
    rollout = dumped["rollouts"][0]
    assert rollout["rules"][0]["gates"] == ["a", "b"]
    assert "gate_spans" not in rollout["rules"][0]


# -- what format_source refuses --------------------------------------------------


def test_text_that_does_not_parse_gives_none_and_diagnostics() -> None:
    out, diagnostics = format_source("rollout x { canary { 5% for } }", "bad.rollout")
    assert out is None
    assert diagnostics and all(d.is_error for d in diagnostics)
    assert all(d.code != "RL000" for d in diagnostics)


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_files_do_not_parse(text: str) -> None:
    out, diagnostics = format_source(text)
    assert out is None
    assert [d.code for d in diagnostics] == ["RL015"]


def test_lowering_errors_do_not_stop_format_source() -> None:
    """format_source is about syntax; format_file is the one that refuses to write."""
    assert fmt("rollout x { canary { 5 for 1h } }") == "rollout x {\n  canary {\n    5 for 1h\n  }\n}\n"


# -- files and the command line ----------------------------------------------------

UGLY = "rollout x {\n    service   s   # svc\n\n\n  canary { 5% for 1h 100% }\n}"
PRETTY = "rollout x {\n  service s  # svc\n\n  canary {\n    5%   for 1h\n    100%\n  }\n}\n"


def _write(tmp_path: Path, text: str | bytes, name: str = "spec.rollout") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["fmt", *args])


def test_format_file_rewrites_and_reports(tmp_path: Path) -> None:
    path = _write(tmp_path, UGLY)
    outcome = format_file(path, write=True)
    assert outcome.changed and not outcome.diagnostics and not outcome.io_error
    assert path.read_text(encoding="utf-8") == PRETTY
    assert outcome.diff.startswith(f"--- a/{path.as_posix()}\n+++ b/{path.as_posix()}\n")
    assert path.as_posix() in outcome.sources
    again = format_file(path, write=True)
    assert not again.changed and again.diff == ""


def test_format_file_without_write_leaves_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, UGLY)
    outcome = format_file(path, write=False)
    assert outcome.changed
    assert path.read_text(encoding="utf-8") == UGLY
    assert "\\ No newline at end of file" in outcome.diff


def test_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    path = _write(tmp_path, PRETTY)
    before = os.stat(path)
    outcome = format_file(path, write=True)
    assert not outcome.changed
    after = os.stat(path)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_cli_fmt_writes(tmp_path: Path) -> None:
    path = _write(tmp_path, UGLY)
    result = _run(str(path))
    assert result.exit_code == 0, result.output
    assert f"reformatted {path}" in result.stderr
    assert path.read_text(encoding="utf-8") == PRETTY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.rollout"], "no temporary file left behind"


def test_cli_fmt_check(tmp_path: Path) -> None:
    path = _write(tmp_path, UGLY)
    result = _run("--check", str(path))
    assert result.exit_code == 1
    assert f"would reformat {path}" in result.stderr
    assert path.read_bytes() == UGLY.encode()
    path.write_text(PRETTY, encoding="utf-8")
    result = _run("--check", str(path))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_cli_fmt_diff(tmp_path: Path) -> None:
    path = _write(tmp_path, UGLY)
    result = _run("--diff", str(path))
    assert result.exit_code == 1
    assert result.stdout.startswith(f"--- a/{path.as_posix()}\n+++ b/{path.as_posix()}\n@@ ")
    assert "-    service   s   # svc\n" in result.stdout
    assert "+  service s  # svc\n" in result.stdout
    assert path.read_bytes() == UGLY.encode()
    path.write_text(PRETTY, encoding="utf-8")
    result = _run("--diff", str(path))
    assert result.exit_code == 0 and result.stdout == ""


def test_cli_leaves_a_file_that_does_not_parse_byte_identical(tmp_path: Path) -> None:
    raw = b"rollout x {\n   canary { 5% for }   \n"
    path = _write(tmp_path, raw)
    result = _run(str(path))
    assert result.exit_code == 1
    assert "error[RL" in result.stderr
    assert path.read_bytes() == raw


def test_cli_leaves_a_file_with_lowering_errors_alone(tmp_path: Path) -> None:
    raw = b"rollout   x {\n  canary { 5 for 1h }\n}\n"
    path = _write(tmp_path, raw)
    result = _run(str(path))
    assert result.exit_code == 1
    assert "error[RL201]" in result.stderr
    assert path.read_bytes() == raw


def test_cli_keeps_going_after_a_bad_file(tmp_path: Path) -> None:
    bad = _write(tmp_path, "rollout x {", "bad.rollout")
    good = _write(tmp_path, UGLY, "good.rollout")
    result = _run(str(bad), str(good))
    assert result.exit_code == 1
    assert bad.read_text() == "rollout x {"
    assert good.read_text() == PRETTY


@pytest.mark.skipif(os.name != "posix", reason="permission bits")
def test_file_mode_is_preserved(tmp_path: Path) -> None:
    path = _write(tmp_path, UGLY)
    path.chmod(0o640)
    assert _run(str(path)).exit_code == 0
    assert path.read_text(encoding="utf-8") == PRETTY
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    path.write_text(UGLY, encoding="utf-8")
    path.chmod(0o755)
    assert _run(str(path)).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_symlink_stays_a_link(tmp_path: Path) -> None:
    real = _write(tmp_path, UGLY, "real.rollout")
    link = tmp_path / "link.rollout"
    link.symlink_to(real)
    assert _run(str(link)).exit_code == 0
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8") == PRETTY


def test_missing_file_is_an_io_error(tmp_path: Path) -> None:
    outcome = format_file(tmp_path / "nope.rollout", write=True)
    assert outcome.io_error
    assert [d.code for d in outcome.diagnostics] == ["RL002"]
    result = _run(str(tmp_path / "nope.rollout"))
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_non_utf8_file_is_an_io_error_and_untouched(tmp_path: Path) -> None:
    raw = b"rollout x {\n  owner \"caf\xe9\"\n}\n"
    path = _write(tmp_path, raw)
    outcome = format_file(path, write=True)
    assert outcome.io_error
    (diagnostic,) = outcome.diagnostics
    assert diagnostic.code == "RL005"
    assert diagnostic.span is not None and (diagnostic.span.line, diagnostic.span.col) == (2, 13)
    assert _run(str(path)).exit_code == 2
    assert path.read_bytes() == raw


def test_crlf_file_becomes_lf(tmp_path: Path) -> None:
    path = _write(tmp_path, "rollout x {\r\n  service s # svc\r\n}\r\n")
    assert _run(str(path)).exit_code == 0
    assert path.read_bytes() == b"rollout x {\n  service s  # svc\n}\n"


def test_write_failure_is_an_io_error_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, UGLY)

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    outcome = format_file(path, write=True)
    assert outcome.io_error
    assert [d.code for d in outcome.diagnostics] == ["RL003"]
    assert "permission denied" in outcome.diagnostics[0].message.lower()
    assert path.read_bytes() == UGLY.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.rollout"]


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.parent.name == "examples"],
                         ids=lambda p: p.name)
def test_cli_check_after_fmt_passes_on_examples(tmp_path: Path, path: Path) -> None:
    copy = _write(tmp_path, path.read_bytes())
    assert _run(str(copy)).exit_code == 0
    assert _run("--check", str(copy)).exit_code == 0


# -- nothing lost, provably ----------------------------------------------------------------------------


def test_a_lone_carriage_return_ends_a_comment_and_the_statement_after_it_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, "rollout r {\n  service ranker  # note\r  namespace recs\n}\n")
    assert _run(str(path)).exit_code == 0
    assert path.read_text() == "rollout r {\n  service   ranker  # note\n  namespace recs\n}\n"


def _broken_renderer(monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """Make the layout step lose or change something, as a bug in it would."""
    import rolloutlang.formatter as formatter

    render = formatter._render
    monkeypatch.setattr(formatter, "_render", lambda *args: change(render(*args)))


@pytest.mark.parametrize(
    ("change", "code", "where"),
    [
        (lambda text: text.replace("  # svc", ""), "RL019", (2, 19)),  # a comment dropped
        (lambda text: text.replace("# svc", "# svk"), "RL019", (2, 19)),  # a comment changed
        (lambda text: text.replace("service s", "service t"), "RL018", (2, 15)),  # a token changed
        (lambda text: text.replace("  # svc", "  # svc\n  # svc"), "RL019", (2, 19)),  # a comment doubled
    ],
)
def test_fmt_refuses_to_write_what_would_lose_or_change_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Any, code: str, where: tuple[int, int]
) -> None:
    path = _write(tmp_path, UGLY)
    _broken_renderer(monkeypatch, change)
    outcome = format_file(path, write=True)
    (diagnostic,) = outcome.diagnostics
    assert diagnostic.code == code and "leaves the file as it is" in diagnostic.message
    assert diagnostic.span is not None and (diagnostic.span.line, diagnostic.span.col) == where
    assert path.read_bytes() == UGLY.encode()
    assert _run(str(path)).exit_code == 1
    assert path.read_bytes() == UGLY.encode()


def test_text_lost_behind_a_comment_is_caught_even_when_tokens_and_comments_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The third net: had the comment rule swallowed code the lexer skipped, the characters would differ."""
    import rolloutlang.formatter as formatter

    assert formatter._missing_character("a b # x\nq", "a b # x") == 8
    assert formatter._missing_character("x { a, b, }", "x {a, b}") is None  # layout punctuation only
    # Fool the first two nets: the comments as the parser sees them are the same before and after.
    _broken_renderer(monkeypatch, lambda text: text.replace("  # svc", ""))
    monkeypatch.setattr(formatter, "parse", lambda src: _without_comments(parse(src)))
    out, diagnostics = format_source(UGLY)
    assert out is None and [d.code for d in diagnostics] == ["RL019"]
    assert "would lose text" in diagnostics[0].message
    assert diagnostics[0].span is not None and diagnostics[0].span.line == 2


def _without_comments(result: Any) -> Any:
    result.comments = []
    return result
