"""What a gate's comparison means: which side of `<`, `<=`, `>` or `>=` is healthy.

One table for the scalar checks and the kernel's arrays alike (the operators
work elementwise on numpy arrays); NaN is never on the healthy side.  No
numpy here, so `rollout check` can ask without importing it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def holds(op: str, value: float, threshold: float) -> bool:
    """Whether a value is on the healthy side of a gate's comparison."""
    return bool(COMPARE[op](value, threshold))
