"""How long `rollout check` takes on every example, in-process, after a warm-up run.

Not a test (timings are noisy in CI): run it by hand and read the numbers.

    python benchmarks/bench_check.py            # 20 rounds
    python benchmarks/bench_check.py --rounds 5

The first run pays for imports and for building the LALR tables (about half a
second); the numbers that matter for an editor or a pre-commit hook are the
warm ones, which should stay well under a second for all examples together.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rolloutlang.cli import main  # noqa: E402 - after the path is set


def check(files: list[Path]) -> int:
    """One `rollout check` over the files; output is swallowed, the exit code returned."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            main(["check", "--no-color", "--root", str(ROOT), *map(str, files)])
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def timed(files: list[Path]) -> tuple[float, int]:
    start = time.perf_counter()
    code = check(files)
    return time.perf_counter() - start, code


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    examples = sorted((ROOT / "examples").glob("*.rollout"))

    cold, code = timed(examples)
    print(f"cold (imports + grammar + all {len(examples)} examples): {cold * 1000:8.1f} ms  exit {code}")

    per_file: dict[str, list[float]] = {p.name: [] for p in examples}
    together: list[float] = []
    for _ in range(args.rounds):
        for path in examples:
            per_file[path.name].append(timed([path])[0])
        together.append(timed(examples)[0])

    for name, times in per_file.items():
        print(f"  {name:32s} median {statistics.median(times) * 1000:7.1f} ms   max {max(times) * 1000:7.1f} ms")
    median = statistics.median(together)
    print(f"warm, all examples in one run: median {median * 1000:7.1f} ms   max {max(together) * 1000:7.1f} ms")
    print("OK: well under a second" if max(together) < 1.0 else "SLOW: a warm check of all examples took >= 1 s")


if __name__ == "__main__":
    main_()
