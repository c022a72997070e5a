"""Large inputs: `check`, `fmt`, `explain` and `graph` must take time in proportion to the input.

Issue 11 found inputs where time grew faster than the input (minutes for
100 kB).  This generates those shapes at several sizes and times each
command in a fresh process (start-up included), best of a few rounds.  Not a
test: run it by hand, copy the table into docs/benchmarks.md.

    python benchmarks/bench_large.py                 # 50, 100 and 200 kB, 3 rounds
    python benchmarks/bench_large.py --sizes 100 --rounds 1

The target is about 1 s per 100 kB for `check` and `fmt`; the last column is
the slowest command's time per 100 kB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def long_word(size: int) -> tuple[str, int]:
    """One long word, then a syntax error: error recovery once searched it quadratically."""
    return "rollout x {\n  service s\n  gate g: " + "w" * size + " <\n  ?\n}\n", 1


def one_line_rollouts(size: int) -> tuple[str, int]:
    """Many small rollouts, each with findings: IR paths and explain once went quadratic."""
    line = "rollout r{i} {{ service s canary {{ 1% for 1h 100% }} }}\n"
    count = size // len(line.format(i=1000))
    return "".join(line.format(i=i) for i in range(count)), count


def canary_stages(size: int) -> tuple[str, int]:
    item = "    5% for 1h\n"
    count = size // len(item)
    return "rollout x {\n  service s\n  canary {\n" + item * count + "    100%\n  }\n}\n", count


def gates(size: int) -> tuple[str, int]:
    item = "  gate g{i}: p99 latency < 250ms every 5m\n"
    count = size // len(item.format(i=1000))
    head = "rollout x {\n  service s\n  canary {\n    5% for 1h\n    100%\n  }\n"
    return head + "".join(item.format(i=i) for i in range(count)) + "  on g0 fail: rollback now\n}\n", count


SHAPES: dict[str, tuple[str, Callable[[int], tuple[str, int]]]] = {
    "long word, then an error": ("words", long_word),
    "one-line rollouts": ("rollouts", one_line_rollouts),
    "canary stages": ("stages", canary_stages),
    "gates": ("gates", gates),
}
COMMANDS = {
    "check": ["check"],
    "fmt": ["fmt", "--check"],
    "explain": ["explain"],
    "graph": ["graph", "--format", "json"],
}


def rollout_command() -> list[str]:
    script = shutil.which("rollout", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "rolloutlang"]


@dataclass(frozen=True)
class Timing:
    seconds: float  # best of the rounds; inf when a run was stopped
    crashed: bool = False  # `error[RL000]`: an internal error instead of an answer

    def cell(self, timeout: float) -> str:
        if self.seconds == float("inf"):
            return f"> {timeout:g} s"
        return f"{self.seconds:.2f} s" + (" (RL000)" if self.crashed else "")


def timed(argv: list[str], cwd: Path, rounds: int, timeout: float) -> Timing:
    """Best wall time of ``rounds`` runs, and whether a run crashed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    best = float("inf")
    crashed = False
    for _ in range(rounds):
        start = time.perf_counter()
        try:
            result = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    check=False, timeout=timeout, text=True)
        except subprocess.TimeoutExpired:
            return Timing(float("inf"))
        best = min(best, time.perf_counter() - start)
        crashed = crashed or "error[RL000]" in result.stderr
    return Timing(best, crashed)


def import_chain(folder: Path, length: int) -> Path:
    for i in range(length):
        nxt = f'import "f{i + 1}.rollout"\n' if i + 1 < length else ""
        (folder / f"f{i}.rollout").write_text(f"{nxt}gates g{i} {{\n  gate x{i}: p99 latency < 1s\n}}\n")
    entry = folder / "main.rollout"
    entry.write_text(f'import "f0.rollout"\nrollout r {{\n  use gates g{length - 1}\n  canary {{ 100% }}\n}}\n')
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200], help="sizes in kB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a run is stopped")
    args = parser.parse_args()
    rollout = rollout_command()
    print(f"best of {args.rounds}, fresh process each, {' '.join(rollout)}\n")
    print("| input | size | count | check | fmt | explain | graph | slowest per 100 kB |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="rollout-bench-") as tmp:
        folder = Path(tmp)
        (folder / "pyproject.toml").write_text("")
        for title, (stem, make) in SHAPES.items():
            for kb in args.sizes:
                text, count = make(kb * 1000)
                path = folder / f"{stem}-{kb}k.rollout"
                path.write_text(text)
                cells = {name: timed([*rollout, *verb, str(path)], folder, args.rounds, args.timeout)
                         for name, verb in COMMANDS.items()}
                per_100k = Timing(max(t.seconds for t in cells.values()) / (len(text) / 100_000))
                print(f"| {title} | {len(text) / 1000:.0f} kB | {count:,} | "
                      + " | ".join(cells[c].cell(args.timeout) for c in COMMANDS)
                      + f" | {per_100k.cell(args.timeout)} |", flush=True)
        chain = folder / "chain"
        chain.mkdir()
        (chain / "pyproject.toml").write_text("")
        entry = import_chain(chain, 1_000)
        chained = timed([*rollout, "check", str(entry)], chain, args.rounds, args.timeout)
        print(f"\nA chain of 1,000 imported files: `rollout check` {chained.cell(args.timeout)}.")


if __name__ == "__main__":
    main()
