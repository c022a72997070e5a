"""`rollout check` on the examples, this tree against another revision, in fresh processes.

Not a test (timings are noisy on a shared machine): run it by hand and read
the numbers.  Each round runs both trees, in alternating order, as a user
would: a new Python process checking every example of its own tree (the two
trees' examples say the same plans, each in its own version of the language).
The other revision is exported with `git archive` into a temporary folder and
run with this venv's packages.  Both run from byte-compiled modules, as an
installed package does (`PYTHONDONTWRITEBYTECODE` is dropped for the runs).

    python benchmarks/bench_check_vs_main.py                  # against `main`, 15 rounds
    python benchmarks/bench_check_vs_main.py --ref 61fd3a8 --rounds 30

Reports, for each, the best and the median wall time and CPU time (user +
system of the child process: less disturbed by other work on a shared
machine), and their ratios, including the median of each round's ratio (the
two runs of a round are back to back, so a slow spell on the machine slows
both).  The issue-6 target: this tree within 10% of the
revision before it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = (
    "import sys\n"
    "from rolloutlang.cli import main\n"
    "try:\n"
    "    main(['check', '--no-color', '--root', sys.argv[1], *sys.argv[2:]])\n"
    "except SystemExit as exc:\n"
    "    sys.exit(exc.code)\n"
)


def export(ref: str, into: Path) -> Path:
    """The tree of ``ref`` (a git revision of this repository) under ``into``."""
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", ref], cwd=ROOT, stdout=out, check=True)
    tree = into / "tree"
    tree.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def run(tree: Path) -> tuple[float, float]:
    """Wall and CPU seconds for one fresh `rollout check` of the tree's examples."""
    examples = sorted(str(p) for p in (tree / "examples").glob("*.rollout"))
    # Installed packages run from byte-compiled files; so do both trees here (the warm-up writes them).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, str(tree), *examples], cwd=tree, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"`rollout check` failed in {tree}:\n{done.stdout}{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="main", help="the revision to compare with (default: main)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        other = export(args.ref, Path(tmp))
        trees = {"this tree": ROOT, args.ref: other}
        for tree in trees.values():  # warm-up: .pyc files and the cached LALR tables
            run(tree)
        wall: dict[str, list[float]] = {name: [] for name in trees}
        cpu: dict[str, list[float]] = {name: [] for name in trees}
        for i in range(args.rounds):
            order = list(trees.items()) if i % 2 == 0 else list(reversed(trees.items()))
            for name, tree in order:
                w, c = run(tree)
                wall[name].append(w)
                cpu[name].append(c)
    for label, table in (("wall", wall), ("cpu", cpu)):
        for name, values in table.items():
            print(f"{label:>4} {name:>12}: best {min(values) * 1000:7.1f} ms   median "
                  f"{statistics.median(values) * 1000:7.1f} ms   ({len(values)} fresh processes)")
        mine, theirs = table["this tree"], table[args.ref]
        paired = statistics.median(m / t for m, t in zip(mine, theirs, strict=True))
        print(f"{label:>4} ratio (this tree / {args.ref}): best {min(mine) / min(theirs):.3f}   "
              f"median {statistics.median(mine) / statistics.median(theirs):.3f}   "
              f"median of the rounds' ratios {paired:.3f}")


if __name__ == "__main__":
    main()
