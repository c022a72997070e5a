"""Seeded simulation of boundary crossings, where the recursion would be too slow.

Paths of the score ``S_k = Z_k sqrt(t_k)`` are Brownian motion with drift
``drift`` on the information-fraction clock, sampled at the looks; a path
stops at its first look outside ``(lower_k, upper_k)``.  The seed is derived
from the inputs, so the same question always gets the same answer; results are
kept on disk (next to the parser cache) so a second `rollout check` does not
simulate again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE_VERSION = 1
_CHUNK = 4_000


@dataclass(frozen=True)
class SimulatedCrossings:
    """Per-look first-crossing frequencies and the Monte Carlo SE of their totals."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    paths: int
    standard_error: float


def _key(lower: Sequence[float], upper: Sequence[float], fractions: Sequence[float], drift: float, paths: int) -> str:
    payload = json.dumps([CACHE_VERSION, [repr(float(x)) for x in lower], [repr(float(x)) for x in upper],
                          [repr(float(x)) for x in fractions], repr(float(drift)), paths])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _cache_file(key: str) -> Path | None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "rolloutlang" / "crossings"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return folder / f"{key[:32]}.json"


def _load(path: Path | None) -> SimulatedCrossings | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SimulatedCrossings(tuple(float(x) for x in data["lower"]), tuple(float(x) for x in data["upper"]),
                                  int(data["paths"]), float(data["se"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(path: Path | None, result: SimulatedCrossings) -> None:
    if path is None:
        return
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"lower": result.lower, "upper": result.upper, "paths": result.paths,
                                   "se": result.standard_error}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass


def simulate_crossings(
    lower: Sequence[float],
    upper: Sequence[float],
    fractions: Sequence[float],
    drift: float,
    paths: int,
    *,
    use_cache: bool = True,
) -> SimulatedCrossings:
    """First-crossing frequencies of the bounds at the looks, from ``paths`` seeded paths."""
    key = _key(lower, upper, fractions, drift, paths)
    path = _cache_file(key) if use_cache else None
    cached = _load(path)
    if cached is not None:
        return cached
    lo = np.asarray(lower, dtype=np.float64)
    up = np.asarray(upper, dtype=np.float64)
    t = np.asarray(fractions, dtype=np.float64)
    increments = np.diff(np.concatenate(([0.0], t)))
    rng = np.random.default_rng(np.random.SeedSequence(int(key[:16], 16)))
    hits_low = np.zeros(t.size)
    hits_up = np.zeros(t.size)
    done = 0
    while done < paths:
        n = min(_CHUNK, paths - done)
        steps = rng.standard_normal((n, t.size)) * np.sqrt(increments) + drift * increments
        z = np.cumsum(steps, axis=1) / np.sqrt(t)
        out_low = z <= lo
        out_up = z >= up
        out = out_low | out_up
        stopped = out.any(axis=1)
        first = np.argmax(out, axis=1)
        rows = np.nonzero(stopped)[0]
        looks = first[rows]
        low_first = out_low[rows, looks]
        np.add.at(hits_low, looks[low_first], 1.0)
        np.add.at(hits_up, looks[~low_first], 1.0)
        done += n
    p_low = hits_low / paths
    p_up = hits_up / paths
    se = max(math.sqrt(p * (1.0 - p) / paths) for p in (float(p_low.sum()), float(p_up.sum())))
    result = SimulatedCrossings(tuple(float(x) for x in p_low), tuple(float(x) for x in p_up), paths, se)
    _store(path, result)
    return result
