"""How long a fresh `rollout check` takes on one example, against `python -c pass` in the same run.

Editors and pre-commit hooks start a new process on every save, so this is
the number users feel.  Not a test (timings are noisy): run it by hand and
copy the table into docs/benchmarks.md.

    python benchmarks/bench_startup.py             # 15 rounds
    python benchmarks/bench_startup.py --rounds 30

Run it with the Python of an environment made as a user makes one
(`pip install .`, not `-e` and without the test extras): an editable
install adds a path finder to every start (~10 ms), and the test extras add
interegular, which lark imports when it is there (~7 ms).

Each round runs every command once, in turn, so a busy machine slows them
alike; the table shows the best and the median round, and each as a multiple
of `python -c pass` (the best round of each command against the best of
`pass`).  Bytecode caching is switched on for the children (as for an
installed tool) and every command runs once before timing.  Then
``python -X importtime`` says where the start-up of one check goes, by
top-level package (best of five).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def rollout_command() -> list[str]:
    script = shutil.which("rollout", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "rolloutlang"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return time.perf_counter() - start


def import_times(argv: list[str], runs: int = 5) -> dict[str, float]:
    """Cumulative import time (s) of each top-level package, best of ``runs``."""
    best: dict[str, float] = {}
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=ROOT, env=child_env(),
                                capture_output=True, text=True, check=False)
        seen: dict[str, float] = {}
        for line in result.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
            if m and len(m.group(2)) == 1:  # a module imported at the top level
                name = m.group(3)
                top = name if name.startswith("rolloutlang") else name.split(".")[0]
                seen[top] = seen.get(top, 0.0) + int(m.group(1)) / 1e6
        for name, seconds in seen.items():
            best[name] = min(best.get(name, seconds), seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rollout = rollout_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "rollout --version": [*rollout, "--version"],
    }
    for example in sorted(EXAMPLES.glob("*.rollout")):
        kind = "business gate" if re.search(r"\bpower\b", example.read_text()) else "no business gate"
        commands[f"rollout check {example.stem} ({kind})"] = [*rollout, "check", str(example)]
    for argv in commands.values():
        timed(argv)  # warm-up: bytecode written, parser cache built
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, argv in commands.items():
            times[name].append(timed(argv))
    base = min(times["python -c pass"])
    print(f"{args.rounds} rounds, {' '.join(rollout)}\n")
    print("| command | best | median | best / `python -c pass` |")
    print("|---|---|---|---|")
    for name, values in times.items():
        print(f"| `{name}` | {min(values) * 1000:.0f} ms | {statistics.median(values) * 1000:.0f} ms "
              f"| {min(values) / base:.1f}x |")
    print("\nImports of one `rollout check shadow-eval` (best of 5, cumulative, top level):\n")
    found = import_times(["-m", "rolloutlang", "check", str(EXAMPLES / "shadow-eval.rollout")])
    print("| package | import time |")
    print("|---|---|")
    for name, seconds in sorted(found.items(), key=lambda kv: -kv[1])[:12]:
        print(f"| `{name}` | {seconds * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
