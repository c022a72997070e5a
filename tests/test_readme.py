"""The README's first two commands are the contract with a new user and with CI."""

import re
from pathlib import Path

from rolloutlang.loader import load_text

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_first_two_commands_install_run_and_test() -> None:
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    first, second = blocks[0].strip(), blocks[1].strip()
    assert first.startswith("pip install .") and "rollout " in first and "examples/" in first
    assert second == "pip install -e '.[test]' && pytest"


def test_ci_runs_the_readme_test_command() -> None:
    second = _bash_blocks((ROOT / "README.md").read_text())[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert second in ci


def test_readme_example_loads() -> None:
    (block,) = re.findall(r"```rollout\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    program = load_text(block, "README.md", root=ROOT)
    assert [d.message for d in program.diagnostics if d.is_error] == []


def test_readme_example_exists() -> None:
    first = _bash_blocks((ROOT / "README.md").read_text())[0]
    path = re.search(r"(examples/\S+\.rollout)", first)
    assert path and (ROOT / path.group(1)).is_file()
