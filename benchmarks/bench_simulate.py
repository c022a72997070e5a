"""`rollout simulate` on the ranking example: runs per second, against a per-request baseline, and memory.

Not a test (timings are noisy on a shared machine): run it by hand and copy
the numbers into docs/benchmarks.md.

    python benchmarks/bench_simulate.py                 # everything, best of 3
    python benchmarks/bench_simulate.py --rounds 5 --runs 10000
    python benchmarks/bench_simulate.py --skip-baseline

* speed: 10,000 runs of examples/ranker-v2.rollout (scenario `null`, the
  one that runs longest: every run goes to promotion) in-process after a
  warm-up, on 1 and on 2 workers, at its 12,000 rps and at 10 rps;
* baseline: the same plan at 10 rps simulated request by request with SimPy
  (benchmarks/per_request_baseline.py), a few runs;
* memory: peak traced allocations (tracemalloc, numpy's arrays included) and
  peak RSS of a fresh process simulating 10,000 runs on one worker at 100 and
  at 100,000 rps.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from rolloutlang.loader import load_text  # noqa: E402
from rolloutlang.plan import build_plan  # noqa: E402
from rolloutlang.simulator import runner  # noqa: E402
from rolloutlang.simulator.model import build_plan_model  # noqa: E402

SPEC = ROOT / "examples" / "ranker-v2.rollout"


def ranker(rate: str | None = None):  # type: ignore[no-untyped-def]
    text = SPEC.read_text(encoding="utf-8")
    if rate is not None:
        text = text.replace("traffic 12000 rps", f"traffic {rate} rps")
    (rollout,) = load_text(text, "ranker-v2.rollout", root=ROOT).rollouts()
    return rollout, build_plan(rollout)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def simulate_seconds(rate: str | None, runs: int, workers: int, rounds: int) -> tuple[float, float]:
    """(best wall time, CPU time of that round) of simulating ``runs`` runs of the `null` scenario."""
    rollout, plan = ranker(rate)
    runner.simulate(rollout, plan, runner.Options(runs=200, scenarios=("null",), workers=1))  # warm-up
    best = (float("inf"), 0.0)
    for _ in range(rounds):
        start, cpu = time.perf_counter(), cpu_seconds()
        runner.simulate(rollout, plan, runner.Options(runs=runs, scenarios=("null",), workers=workers)).to_json()
        best = min(best, (time.perf_counter() - start, cpu_seconds() - cpu))
    return best


def baseline_seconds(runs: int) -> tuple[float, list[str]]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from per_request_baseline import Run

    rollout, plan = ranker("10")
    model = build_plan_model(rollout, plan)
    outcomes = []
    start = time.perf_counter()
    for i in range(runs):
        outcomes.append(Run(model, np.random.default_rng(i)).run())
    return (time.perf_counter() - start) / runs, outcomes


MEMORY_PROBE = """
import json, resource, sys, tracemalloc
sys.path.insert(0, {root!r})
from rolloutlang.loader import load_text
from rolloutlang.plan import build_plan
from rolloutlang.simulator import runner
text = open({spec!r}).read().replace("traffic 12000 rps", "traffic {rate} rps")
(rollout,) = load_text(text, "ranker-v2.rollout").rollouts()
plan = build_plan(rollout)
runner.simulate(rollout, plan, runner.Options(runs=20, scenarios=("null",), workers=1))
tracemalloc.start()
runner.simulate(rollout, plan, runner.Options(runs={runs}, scenarios=("null",), workers=1)).to_json()
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({{"traced_peak": peak, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def memory(rate: int, runs: int) -> dict[str, int]:
    code = MEMORY_PROBE.format(root=str(ROOT), spec=str(SPEC), rate=rate, runs=runs)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    print(f"{args.runs:,} runs; best of {args.rounds} rounds, in-process after a warm-up")
    speeds = {}
    for rate in (None, "10"):
        for workers in (1, 2):
            seconds, cpu = simulate_seconds(rate, args.runs, workers, args.rounds)
            speeds[(rate, workers)] = args.runs / seconds
            print(f"  ranker-v2 at {rate or '12000'} rps, {workers} worker(s): {seconds:.2f} s "
                  f"({cpu:.2f} s CPU), {args.runs / seconds:,.0f} runs/s")
    if not args.skip_baseline:
        per_run, outcomes = baseline_seconds(args.baseline_runs)
        print(f"  per-request SimPy baseline at 10 rps: {per_run:.2f} s a run ({1 / per_run:.3f} runs/s), "
              f"outcomes {outcomes}")
        for workers in (1, 2):
            print(f"  ratio, {workers} worker(s), both at 10 rps: {speeds[('10', workers)] * per_run:,.0f}x")
    for rate in (100, 100_000):
        m = memory(rate, args.runs)
        print(f"  memory at {rate:,} rps, {args.runs:,} runs, 1 worker: traced peak "
              f"{m['traced_peak'] / 2**20:.1f} MiB, max RSS {m['maxrss_kb'] / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
