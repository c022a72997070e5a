"""The mutation fuzzer of `tests/fuzzing.py`: a few seconds in CI, any budget on demand.

In CI, four inputs of each class, with the large classes scaled down, run in
this process.  On demand, for example the 100,000 inputs of issue 11 on two
cores:

    ROLLOUT_FUZZ_INPUTS=100000 ROLLOUT_FUZZ_JOBS=2 pytest tests/test_fuzz.py -s

runs them in worker processes at full scale (100 kB inputs, 1,200-file
import chains), stops any input that hangs, and fails on any input with a
problem, naming it.  Other settings: ``ROLLOUT_FUZZ_SEED`` (default 11),
``ROLLOUT_FUZZ_START`` (the first input's number, to reproduce one),
``ROLLOUT_FUZZ_LIMIT`` (seconds one step of an input under 100 kB may take,
default 5 on demand; in CI only a hang fails).
"""

from __future__ import annotations

import os
import re

import pytest

from tests.fuzzing import CLASSES, ENTRY, make_input, run_in_process, run_many

SEED = int(os.environ.get("ROLLOUT_FUZZ_SEED", "11"))
INPUTS = int(os.environ.get("ROLLOUT_FUZZ_INPUTS", "0"))
START = int(os.environ.get("ROLLOUT_FUZZ_START", "0"))
JOBS = int(os.environ.get("ROLLOUT_FUZZ_JOBS", "1"))
LIMIT_S = float(os.environ.get("ROLLOUT_FUZZ_LIMIT", "5" if INPUTS else "60"))

CI_INPUTS = 4 * len(CLASSES)
CI_SCALE = 0.05


def test_every_input_is_answered_and_fmt_keeps_everything() -> None:
    if INPUTS:
        indices = range(START, START + INPUTS)
        report = (run_many(SEED, indices, JOBS, 1.0, LIMIT_S, progress=print) if JOBS > 1
                  else run_in_process(SEED, indices, 1.0, LIMIT_S))
    else:
        report = run_in_process(SEED, range(START, START + CI_INPUTS), CI_SCALE, LIMIT_S)
    print(report.summary())
    assert report.count == (INPUTS or CI_INPUTS)
    assert not report.findings, report.summary()


# -- the generator makes what each class of issue 11 needs ------------------------------------------


def _entries(kind: str, count: int = 40, scale: float = 1.0) -> list[bytes]:
    first = CLASSES.index(kind)
    return [make_input(SEED, first + i * len(CLASSES), scale).entry for i in range(count)]


def test_inputs_are_reproducible_from_their_number() -> None:
    assert make_input(SEED, 123).files == make_input(SEED, 123).files
    assert make_input(SEED, 123).files != make_input(SEED + 1, 123).files


@pytest.mark.parametrize(
    ("kind", "hallmark"),
    [
        ("numbers", rb"1e400|9{1000}|1e-400"),
        ("newlines", rb"#[^\r\n]*\r[^\n]"),  # a lone carriage return inside a comment, code after it
        ("comments", rb"#[^\n]*\r"),
        ("glue", rb"gatekeeper|stablex|canaryx|modelkeeper|\bgate[a-z]"),
        ("nesting", rb"(f\(){33}|(list<){33}|\{{33}"),
        ("large", rb"w{10000}"),
        ("bytes", rb"[\x80-\xff]|\x00"),
    ],
)
def test_each_class_makes_the_inputs_that_found_bugs(kind: str, hallmark: bytes) -> None:
    assert any(re.search(hallmark, entry) for entry in _entries(kind)), kind


def test_import_chains_reach_a_thousand_files() -> None:
    longest = max(len(make_input(SEED, CLASSES.index("imports") + i * len(CLASSES)).files) for i in range(200))
    assert longest > 1_000


def test_large_inputs_reach_100_kb() -> None:
    assert max(len(e) for e in _entries("large", 300)) > 90_000
    assert all(len(make_input(SEED, i).files[ENTRY]) < 1_000_000 for i in range(len(CLASSES)))
