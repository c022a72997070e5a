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
from typing import TYPE_CHECKING, Any, TypeVar

from rolloutlang import ir
from rolloutlang.diagnostics import Diagnostic

if TYPE_CHECKING:
    from rolloutlang.loader import Program
    from rolloutlang.plan import Plan

# Modules holding passes, in the order their findings read best.
PASS_MODULES: tuple[str, ...] = (
    "rolloutlang.checks.references",
    "rolloutlang.checks.structure",
    "rolloutlang.checks.artifacts",
    "rolloutlang.checks.compatibility",
    "rolloutlang.checks.statistics",
    "rolloutlang.checks.policy",
    "rolloutlang.checks.privacy",
    "rolloutlang.checks.scenarios",
)


T = TypeVar("T")


@dataclass
class CheckContext:
    """What a pass may read: the resolved rollout, the program, and what passes derive once and share.

    `rollout explain` keeps the context after the checks ran, so it shows the
    same plan and power figures the checks judged, without computing them again.
    """

    rollout: ir.Rollout
    program: Program
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` the first time ``key`` is asked for, the same value after."""
        if key not in self._cache:
            self._cache[key] = build()
        value: T = self._cache[key]
        return value

    @property
    def plan(self) -> Plan:
        from rolloutlang.plan import build_plan

        return self.cached("plan", lambda: build_plan(self.rollout))


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


def check_rollout(ctx: CheckContext) -> list[Diagnostic]:
    """Run every pass over one rollout."""
    return [d for _name, fn in passes() for d in fn(ctx)]


def run_checks(program: Program) -> list[Diagnostic]:
    """Run every pass over every rollout of the program's entry file."""
    return [d for rollout in program.rollouts() for d in check_rollout(CheckContext(rollout=rollout, program=program))]
