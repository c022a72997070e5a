"""What several test files share: a pinned ranker spec, digests, a small demo spec, spec-editing and
diagnostic helpers for the check tests, and an in-process CLI runner.

Plain constants and functions; a test file imports what it uses, ``from tests.helpers import ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rolloutlang.checks import run_checks
from rolloutlang.cli import main
from rolloutlang.diagnostics import Diagnostic
from rolloutlang.loader import Program, load_text

# -- specs ------------------------------------------------------------------------------------------

# Well-formed pins for specs where the digest does not matter: D1/D2 with their `sha256:` prefix,
# A/B bare (the sha256 of "a" and "b"), written as `sha256:{A}`.
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
A = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
B = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"

# A pinned copy of examples/ranker-v2.rollout as first written: the example may evolve, these numbers may not.
RANKER_SPEC = """\
rollout ranker-v2 {
  service   ranker
  namespace recs
  owner     "#recs-ml-oncall"
  model stable    ranker 1.4.2 @ sha256:2a4d0b5ffc4ffa4bd7f13ef2c3e1b0c4b5bb6b4b2f19ab3e1e1c2d6f0c8b9a11
  model candidate ranker 1.5.0 @ sha256:9ab04d1c7e5f3a2b8c6d4e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d
  signature {
    in  user_id: int64, item_ids: list<int64>, country: category
    out scores: list<float32>
  }
  traffic  12000 rps, diurnal 30%
  metrics  prometheus "http://prometheus.monitoring:9090"
  metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)

  shadow 100% for 24h
  canary {
    1%   for 2h
    5%   for 6h
    25%  for 12h
    50%  for 12h
    100%
  }

  gate latency: p99 latency < 250ms        every 5m, fail after 2
  gate errors:  error rate < 0.5%          every 5m, fail after 2
  gate drift:   psi(scores) < 0.2          every 1h
  gate ctr:     ctr change > -1% relative, fail if shown harmful, power 80% at -3%, alpha 5%

  on latency, errors fail: rollback now
  on ctr fail:             rollback
  on drift fail:           pause, notify "#recs-ml-oncall"
}
"""


def demo_spec(body: str, traffic: str = "traffic 100 rps") -> str:
    """Rollout `demo` with pinned models, a one-field signature and metrics; `body` starts on line 9."""
    return f"""rollout demo {{
  service demo
  namespace ml
  model stable    scorer 1.0.0 @ {D1}
  model candidate scorer 1.0.1 @ {D2}
  signature {{ in x: float32  out score: float32 }}
  {traffic}
  metrics prometheus "http://prometheus:9090"
{body}
}}
"""


def sub(text: str, old: str, new: str) -> str:
    """Replace the first `old` in text by `new`; `old` must be there."""
    assert old in text, old
    return text.replace(old, new, 1)


# -- checks and their diagnostics -------------------------------------------------------------------


def rl4xx_rl5xx_rl65x(code: str) -> bool:
    """Codes of the artifact, compatibility, statistics, reference and privacy checks: RL4xx, RL5xx, RL650-RL699.

    Leaves out structure (RL3xx) and budget/policy (RL600-RL612), which most specs in those tests do not satisfy.
    """
    n = int(code[2:])
    return 400 <= n < 600 or 650 <= n < 700


def program_of(text: str, root: Path | None = None) -> Program:
    """Load text as `spec.rollout`, asserting it loads without diagnostics."""
    program = load_text(text, "spec.rollout", root)
    assert [d.message for d in program.diagnostics] == []
    return program


def check(text: str, keep: Callable[[str], bool] | None = None, root: Path | None = None) -> list[Diagnostic]:
    """Run every check on a spec that loads clean, leaving out what its `# waive` comments let go; with `keep`,
    only the diagnostics whose code it accepts."""
    program = program_of(text, root)
    diags = [d for d in program.waive(run_checks(program)) if d.suppression is None]
    return diags if keep is None else [d for d in diags if keep(d.code)]


def pos(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the nth occurrence of needle."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def one(diags: list[Diagnostic], code: str) -> Diagnostic:
    """The only diagnostic with this code."""
    found = [d for d in diags if d.code == code]
    assert len(found) == 1, [(d.code, d.message) for d in diags]
    return found[0]


def at(d: Diagnostic) -> tuple[int, int]:
    """Where the diagnostic starts, (line, column)."""
    assert d.span is not None
    return d.span.line, d.span.col


# -- the command line -------------------------------------------------------------------------------


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `rollout ARGV` in-process; return the exit code, stdout and stderr."""
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    out, err = capsys.readouterr()
    return code, out, err


# -- golden files -----------------------------------------------------------------------------------

GOLDEN = Path(__file__).resolve().parent / "golden"


def assert_golden(request: pytest.FixtureRequest, relative: str, text: str) -> None:
    """Compare generated text with `tests/golden/<relative>`; `pytest --update-goldens` rewrites it instead."""
    path = GOLDEN / relative
    if request.config.getoption("--update-goldens"):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run `pytest --update-goldens` to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{relative} differs from its golden file; review, then `pytest --update-goldens`"
