"""Where in the IR a diagnostic points: `rollouts[0].strategy.stages[1]`.

Tools reading `rollout check --format json` get a stable logical path next to
the line and column, as Terraform's and CUE's diagnostics do: it survives
reformatting, which moves lines but not meaning.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, fields

from rolloutlang import ir
from rolloutlang.source import Span

_Position = tuple[int, int]


@dataclass
class _Children:
    """A node's child nodes in one file, sorted by where they start, to find the ones holding a span."""

    starts: list[_Position] = field(default_factory=list)
    ends: list[_Position] = field(default_factory=list)
    # The furthest end among the children up to each index: no child left of
    # an index whose furthest end comes before a span can hold that span.
    reach: list[_Position] = field(default_factory=list)
    items: list[tuple[int, str, ir.Node]] = field(default_factory=list)  # (field order, path step, child)


class IrPaths:
    """The IR paths of any number of spans in one IR, in time that does not grow with the IR's width.

    A node's children are indexed once, on first use; a lookup then bisects
    at each level instead of scanning every sibling (a canary with 20,000
    stages and a finding on each stage stays linear).
    """

    def __init__(self, root: ir.File) -> None:
        self.root = root
        self._index: dict[int, dict[str, _Children]] = {}

    def path(self, span: Span) -> str:
        """The path of the deepest IR node whose span holds ``span``; "" when none does."""
        path = ""
        node: ir.Node = self.root
        while True:
            step = self._child_holding(node, span)
            if step is None:
                return path
            name, child = step
            path = f"{path}.{name}" if path and not name.startswith("[") else path + name
            node = child

    def _children(self, node: ir.Node) -> dict[str, _Children]:
        found = self._index.get(id(node))
        if found is not None:
            return found
        entries: list[tuple[int, str, ir.Node]] = []
        for f in fields(node):
            name, value = f.name, getattr(node, f.name)
            if isinstance(value, ir.Node):
                entries.append((len(entries), name, value))
            elif isinstance(value, tuple):
                entries.extend((len(entries) + i, f"{name}[{i}]", item)
                               for i, item in enumerate(value) if isinstance(item, ir.Node))
        by_file: dict[str, _Children] = {}
        for entry in sorted(entries, key=lambda e: (e[2].span.line, e[2].span.col, e[0])):
            span = entry[2].span
            index = by_file.setdefault(span.file, _Children())
            end = (span.end_line, span.end_col)
            index.starts.append((span.line, span.col))
            index.ends.append(end)
            index.reach.append(max(index.reach[-1], end) if index.reach else end)
            index.items.append(entry)
        self._index[id(node)] = by_file
        return by_file

    def _child_holding(self, node: ir.Node, span: Span) -> tuple[str, ir.Node] | None:
        """The first child, in field order, whose span holds ``span``."""
        index = self._children(node).get(span.file)
        if index is None:
            return None
        start, end = (span.line, span.col), (span.end_line, span.end_col)
        best: tuple[int, str, ir.Node] | None = None
        i = bisect.bisect_right(index.starts, start) - 1
        while i >= 0 and index.reach[i] >= end:
            if index.ends[i] >= end and (best is None or index.items[i][0] < best[0]):
                best = index.items[i]
            i -= 1
        return (best[1], best[2]) if best is not None else None


def ir_path(root: ir.File, span: Span) -> str:
    """The path of the deepest IR node whose span holds ``span``; "" when none does.

    For many spans in one IR, make one :class:`IrPaths` and ask it each time.
    """
    return IrPaths(root).path(span)
