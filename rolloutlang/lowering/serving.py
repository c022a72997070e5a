"""Lowering the serving block, header matches, consumers and routes."""

from __future__ import annotations

import re
from typing import Any, Literal, cast

from rolloutlang import ir, units
from rolloutlang.diagnostics import did_you_mean
from rolloutlang.lowering.phrases import LowererBase, fail, unquote
from rolloutlang.source import Span
from rolloutlang.syntax import Node

MAX_GPUS = 1_024


class ServingLowering(LowererBase):
    """The model server, and who reaches which version: consumers and routes."""

    def serving(self, node: Node) -> ir.Serving:
        out: dict[str, Any] = {}
        for item in node.children:
            if not isinstance(item, Node):
                continue
            if item.kind == "serving_image":
                out["image"] = unquote(item.toks("STRING")[0])
                out["image_span"] = item.span
                pin = item.node("pin")
                if pin:
                    out["image_pin"] = self.pin(pin)
            elif item.kind == "serving_replicas":
                nums = item.toks("NUMLIT")
                lo = int(self.unit(nums[0], lambda t: units.number(t, "replicas", integer=True, minimum=0,
                                                                   maximum=units.MAX_INT32)))
                hi = int(self.unit(nums[-1], lambda t: units.number(t, "replicas", integer=True, minimum=0,
                                                                    maximum=units.MAX_INT32)))
                if hi < lo:
                    raise fail("RL211", f"replica range {lo}..{hi} is empty", item.span,
                                help=f"write the smaller bound first: `{hi}..{lo}`")
                out["replicas_min"], out["replicas_max"] = lo, hi
            elif item.kind == "serving_resources":
                out["resources"] = self.resources(item)
            elif item.kind == "serving_warmup":
                out["warmup_s"] = self.unit(item.toks("NUMLIT")[0], lambda t: units.duration(t, "warm-up"))
            elif item.kind == "serving_port":
                tok = item.toks("NUMLIT")[0]
                port = self.unit(tok, lambda t: units.number(t, "a port", integer=True, minimum=1))
                if port > 65535:
                    raise fail("RL280", f"port {int(port)} is out of range", tok.span, label="not a TCP port",
                                help="a port is a whole number from 1 to 65535, e.g. `port 8080`")
                out["port"], out["port_span"] = int(port), item.span
        return ir.Serving(span=node.span, **out)

    def resources(self, node: Node) -> ir.Resources:
        out: dict[str, Any] = {}
        for r in node.nodes("resource"):
            name = r.toks("NAME")[0]
            value = r.toks("NUMLIT")[0]
            if name.text == "cpu":
                out["cpu"] = self.unit(value, units.cpu)
            elif name.text == "memory":
                out["memory_bytes"] = self.unit(value, units.memory)
            elif name.text == "gpu":
                out["gpu"] = int(self.unit(value, lambda t: units.number(t, "gpu", integer=True, minimum=0,
                                                                         maximum=MAX_GPUS)))
            else:
                hint = did_you_mean(name.text, ("cpu", "memory", "gpu"))
                raise fail("RL203", f"unknown resource `{name.text}`", name.span,
                            help=hint or "resources are `cpu`, `memory` and `gpu`")
        return ir.Resources(span=node.span, **out)

    def header_match(self, node: Node, span: Span) -> ir.HeaderMatch:
        kind = node.toks("MATCH_KIND")[0].text
        strings = node.toks("STRING")
        op = node.toks("MATCH_OP")[0].text
        match = {"=": "exact", "~": "regex", "^=": "prefix"}[op]
        name = unquote(strings[0])
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
            raise fail("RL212", f"`{name}` is not a valid {kind} name", strings[0].span,
                        help=f"a {kind} name is one token, e.g. \"x-ml-preview\"; put the value after `=`")
        value = unquote(strings[1])
        if match == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise fail("RL212", f"invalid regular expression: {exc.msg}", strings[1].span,
                            label=f"at position {exc.pos}" if exc.pos is not None else "",
                            help="`~` matches a regular expression; use `=` to match the value exactly") from None
        return ir.HeaderMatch(span=span, kind=cast(Literal["header", "cookie"], kind),
                              match=cast(Literal["exact", "regex", "prefix"], match), name=name, value=value)

    def consumer(self, node: Node) -> ir.Consumer:
        names = node.toks("NAME")
        dim = int(self.unit(node.toks("NUMLIT")[0],
                            lambda t: units.number(t, "the expected dimension", integer=True, minimum=1,
                                                   maximum=units.MAX_INT32)))
        adapter = node.node("consumer_adapter")
        route = node.node("consumer_route")
        switch = node.node("consumer_switch")
        switch_tok = switch.toks("NAME")[0] if switch is not None else None
        return ir.Consumer(
            span=node.span,
            name=names[0].text,
            output=names[1].text,
            expects_dim=dim,
            adapter=unquote(adapter.toks("STRING")[0]) if adapter else None,
            route=self.header_match(route, route.span) if route else None,
            switch=switch_tok.text if switch_tok is not None else None,
            switch_span=switch_tok.span if switch_tok is not None else None,
        )

    def route(self, node: Node) -> ir.Route:
        return ir.Route(span=node.span, match=self.header_match(node, node.span),
                        target=cast(ir.Role, node.toks("ROLE")[0].text))

    # traffic and metrics
