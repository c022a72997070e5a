"""The README's first two commands are the contract with a new user and with CI."""

import os
import re
import shutil
import subprocess
import sys
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


def test_first_command_runs_on_a_copy_of_the_examples(tmp_path: Path) -> None:
    """After the install, the first command's chain checks, simulates and compiles (here on a copy)."""
    first = _bash_blocks((ROOT / "README.md").read_text())[0].strip()
    chain = first.split("&&", 1)[1].strip()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(["bash", "-c", chain], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scenario" in done.stdout and "null" in done.stdout
    written = sorted(p.name for p in (tmp_path / "deploy").iterdir())
    assert any(name.startswith("rollout-") for name in written) and any("virtualservice" in n for n in written)
