"""Lowering: the concrete syntax tree becomes the typed IR.

This pass owns the meaning of every word: units, option names, gate
conditions, rule actions.  A wrong word gets a located diagnostic with the
accepted spellings and a did-you-mean; lowering goes on past it so one run
reports every mistake.

One module per construct, each a part of :class:`Lowerer`: ``models``
(models, pins, signatures), ``serving`` (the server, consumers, routes),
``traffic`` (the traffic model, metrics, label metrics), ``strategy``
(shadow, canary, blue-green, rolling), ``gates``, ``rules`` and ``policy``
(budgets, scenarios, holdout, pipeline, approvals, request logging);
``phrases`` holds what they share and ``rollout`` the file as a whole.
"""

from __future__ import annotations

from rolloutlang.lowering.gates import BUSINESS_OPTIONS, DRIFT_OPTIONS, SLO_OPTIONS, SRM_OPTIONS
from rolloutlang.lowering.phrases import LoweringError, OptionSpec, Phrase, join_spans, unquote
from rolloutlang.lowering.rollout import Lowerer, lower

__all__ = [
    "BUSINESS_OPTIONS",
    "DRIFT_OPTIONS",
    "SLO_OPTIONS",
    "SRM_OPTIONS",
    "Lowerer",
    "LoweringError",
    "OptionSpec",
    "Phrase",
    "join_spans",
    "lower",
    "unquote",
]
