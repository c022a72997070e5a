"""Semantic checks: compiler passes over a resolved rollout and its plan graph.

Each pass is a function ``(ctx: CheckContext) -> Iterable[Diagnostic]``
registered with :func:`check_pass`; a pass module is imported by
:data:`PASS_MODULES`.  Passes never raise for bad specs and never import
scipy at module level (the power pass imports ``rolloutlang.stats`` inside
its function, and only when a business gate needs sizing).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rolloutlang import ir
from rolloutlang.diagnostics import Diagnostic

if TYPE_CHECKING:
    from rolloutlang.loader import Program

# Modules holding passes, in the order their findings read best.
PASS_MODULES: tuple[str, ...] = (
    "rolloutlang.checks.references",
    "rolloutlang.checks.structure",
    "rolloutlang.checks.artifacts",
    "rolloutlang.checks.compatibility",
    "rolloutlang.checks.statistics",
    "rolloutlang.checks.policy",
    "rolloutlang.checks.privacy",
)


@dataclass
class CheckContext:
    """What a pass may read: the resolved rollout, the program, and a lazily built plan."""

    rollout: ir.Rollout
    program: Program
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def plan(self) -> Any:
        if "plan" not in self._cache:
            from rolloutlang.plan import build_plan

            self._cache["plan"] = build_plan(self.rollout)
        return self._cache["plan"]


PassFn = Callable[[CheckContext], Iterable[Diagnostic]]
_PASSES: list[tuple[str, PassFn]] = []


def check_pass(name: str) -> Callable[[PassFn], PassFn]:
    """Register a pass under a short name (shown by `--debug` and in docs)."""

    def register(fn: PassFn) -> PassFn:
        _PASSES.append((name, fn))
        return fn

    return register


def passes() -> list[tuple[str, PassFn]]:
    for module in PASS_MODULES:
        importlib.import_module(module)
    return list(_PASSES)


def run_checks(program: Program) -> list[Diagnostic]:
    """Run every pass over every rollout of the program's entry file."""
    out: list[Diagnostic] = []
    registered = passes()
    for rollout in program.rollouts():
        ctx = CheckContext(rollout=rollout, program=program)
        for _name, fn in registered:
            out.extend(fn(ctx))
    return out
