"""Where in the IR a diagnostic points: `rollouts[0].strategy.stages[1]`.

Tools reading `rollout check --format json` get a stable logical path next to
the line and column, as Terraform's and CUE's diagnostics do: it survives
reformatting, which moves lines but not meaning.
"""

from __future__ import annotations

from pydantic import BaseModel

from rolloutlang import ir
from rolloutlang.source import Span


def _contains(outer: Span, inner: Span) -> bool:
    return (
        outer.file == inner.file
        and (outer.line, outer.col) <= (inner.line, inner.col)
        and (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)
    )


def ir_path(root: ir.File, span: Span) -> str:
    """The path of the deepest IR node whose span holds ``span``; "" when none does."""
    path = ""
    node: BaseModel = root
    while True:
        step = _child_holding(node, span)
        if step is None:
            return path
        name, child = step
        path = f"{path}.{name}" if path and not name.startswith("[") else path + name
        node = child


def _child_holding(node: BaseModel, span: Span) -> tuple[str, ir.Node] | None:
    for field in type(node).model_fields:
        value = getattr(node, field)
        if isinstance(value, ir.Node) and _contains(value.span, span):
            return field, value
        if isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, ir.Node) and _contains(item.span, span):
                    return f"{field}[{i}]", item
    return None
