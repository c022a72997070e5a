from pathlib import Path

from rolloutlang.loader import load

ROOT = Path(__file__).resolve().parent.parent


def test_ranker_example_loads_cleanly() -> None:
    program = load(ROOT / "examples" / "ranker-v2.rollout")
    assert [d.message for d in program.diagnostics] == []
    (rollout,) = program.rollouts()
    assert rollout.name == "ranker-v2"
