"""`rollout compile` against `rollout check` on the ranking example: the target is compile <= 2x check.

Not a test (timings are noisy in CI): run it by hand and read the numbers.

    python benchmarks/bench_compile.py              # 20 warm rounds, 5 fresh processes
    python benchmarks/bench_compile.py --rounds 5 --processes 3

Both verbs parse, lower, plan and check the spec; compile then builds the
Argo Rollouts and Istio objects and renders them through jinja2.  Warm numbers
are in one process after a first run (imports, grammar, template compilation
paid); fresh ones are whole `python -m rolloutlang` processes, best of N,
because a CI job runs the command once.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rolloutlang.cli import main  # noqa: E402 - after the path is set

SPEC = ROOT / "examples" / "ranker-v2.rollout"
VERBS = {
    "check": ["check", "--no-color", "--root", str(ROOT), str(SPEC)],
    "compile": ["compile", "--no-color", "--root", str(ROOT), "-t", "argo,istio", str(SPEC)],
}


def run(argv: list[str]) -> float:
    sink = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            main(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise RuntimeError(f"{argv[0]} exited {exc.code}: {sink.getvalue()[-500:]}") from None
    return time.perf_counter() - start


def fresh(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rolloutlang", *argv], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args()
    cold = {verb: run(argv) for verb, argv in VERBS.items()}
    warm = {verb: [run(argv) for _ in range(args.rounds)] for verb, argv in VERBS.items()}
    procs = {verb: [fresh(argv) for _ in range(args.processes)] for verb, argv in VERBS.items()}
    print(f"{'':28}{'check':>10}{'compile':>10}{'ratio':>8}")
    rows = [
        ("first run in process (ms)", cold["check"], cold["compile"]),
        ("warm median (ms)", statistics.median(warm["check"]), statistics.median(warm["compile"])),
        ("warm best (ms)", min(warm["check"]), min(warm["compile"])),
        (f"fresh process, best of {args.processes} (ms)", min(procs["check"]), min(procs["compile"])),
    ]
    for label, check, comp in rows:
        print(f"{label:28}{check * 1000:10.1f}{comp * 1000:10.1f}{comp / check:8.2f}")


if __name__ == "__main__":
    main_()
