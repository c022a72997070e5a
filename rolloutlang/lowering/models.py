"""Lowering the models, their pins and signatures."""

from __future__ import annotations

import re
from typing import Literal, cast

from rolloutlang import ir, units
from rolloutlang.diagnostics import did_you_mean, error, one_of
from rolloutlang.lowering.phrases import LowererBase, fail, short, unquote
from rolloutlang.syntax import Node, Token

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)

MAX_VERSION_NUMBER = 2**53 - 1  # what npm's semver and JSON numbers hold exactly

SCALAR_TYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "string", "bytes", "category", "timestamp",
)
CONTAINER_TYPES = ("list", "vector", "tensor")


class ModelsLowering(LowererBase):
    """Models, artifact pins and signatures."""

    def model_version(self, node: Node) -> ir.ModelVersion:
        role = cast(ir.Role, node.toks("ROLE")[0].text)
        name = node.toks("NAME")[0].text
        vnode = node.node("version")
        assert vnode is not None
        vtok = vnode.tokens()[0]
        m = _SEMVER.match(vtok.text)
        semver = None
        if m:
            for part in m.group(1, 2, 3):
                # Compared by length first: a number of thousands of digits is never converted.
                if len(part) > 16 or int(part) > MAX_VERSION_NUMBER:
                    raise fail("RL222", f"a version number must be at most {MAX_VERSION_NUMBER}, got `{short(part)}`",
                                vtok.span, help="what npm's semver and JSON numbers hold exactly")
            semver = ir.SemVer(major=int(m.group(1)), minor=int(m.group(2)), patch=int(m.group(3)),
                               prerelease=m.group(4) or "", build=m.group(5) or "")
        pin_node = node.node("pin")
        source = node.node("model_source")
        return ir.ModelVersion(
            span=node.span,
            role=role,
            name=name,
            version=vtok.text,
            semver=semver,
            version_span=vtok.span,
            pin=self.pin(pin_node) if pin_node else None,
            registry_uri=unquote(source.toks("STRING")[0]) if source else None,
        )

    def signature(self, node: Node) -> ir.Signature:
        role_tok = node.tok("ROLE")
        inputs: list[ir.SignatureField] = []
        outputs: list[ir.SignatureField] = []
        for section in node.nodes("signature_section"):
            direction = section.toks("SIG_DIRECTION")[0].text
            target = inputs if direction == "in" else outputs
            for field_node in section.nodes("signature_field"):
                field_ = self.guard(lambda f=field_node: self.signature_field(f))  # type: ignore[misc]
                if field_ is not None:
                    target.append(field_)
        self.duplicate("input", ((f.name, f.span) for f in inputs))
        self.duplicate("output", ((f.name, f.span) for f in outputs))
        for f in outputs:
            if f.optional:
                self.diagnostics.append(error("RL209", f"output `{f.name}` cannot be optional", f.span,
                                              help="only inputs may be optional (`name?: type`)"))
        applies = cast(Literal["both", "stable", "candidate"], role_tok.text if role_tok else "both")
        return ir.Signature(span=node.span, applies_to=applies, inputs=tuple(inputs), outputs=tuple(outputs))

    def signature_field(self, node: Node) -> ir.SignatureField:
        type_node = node.node("type_ref")
        assert type_node is not None
        return ir.SignatureField(
            span=node.span,
            name=node.toks("NAME")[0].text,
            optional=node.tok("OPTIONAL") is not None,
            type=self.type_ref(type_node),
            personal=node.node("field_pii") is not None,
        )

    def type_ref(self, node: Node) -> ir.TypeRef:
        name_tok = node.toks("NAME")[0]
        base = name_tok.text
        args = [c for c in node.children if c is not name_tok]
        if base in SCALAR_TYPES:
            if args:
                raise fail("RL210", f"`{base}` takes no type arguments", node.span, help=f"write `{base}`")
            return ir.TypeRef(span=node.span, base=base)
        if base not in CONTAINER_TYPES:
            hint = did_you_mean(base, SCALAR_TYPES + CONTAINER_TYPES)
            raise fail("RL210", f"unknown type `{base}`", name_tok.span,
                        help=hint or f"types are {one_of(list(SCALAR_TYPES + CONTAINER_TYPES))}")
        if not args or not isinstance(args[0], Node):
            raise fail("RL210", f"`{base}` needs an element type", node.span,
                        help=f"write `{base}<float32" + (", 256>`" if base != "list" else ">`"))
        element = self.type_ref(args[0])
        dims: list[int] = []
        for a in args[1:]:
            if not isinstance(a, Token) or a.type != "NUMLIT":
                raise fail("RL210", "a dimension must be a whole number", a.span)
            dims.append(int(self.unit(a, lambda t: units.number(t, "a dimension", integer=True, minimum=1,
                                                                maximum=units.MAX_INT32))))
        if base == "list" and dims:
            raise fail("RL210", "`list` has no fixed size", args[1].span,
                        help=f"use `vector<{element.render()}, {dims[0]}>` for a fixed-size output")
        if base == "vector" and not dims:
            raise fail("RL210", "`vector` needs its dimension", node.span, label="no dimension",
                        help=f"write `vector<{element.render()}, 256>` with the real size, or "
                             f"`list<{element.render()}>` if the size varies")
        if base == "vector" and len(dims) != 1:
            raise fail("RL210", "`vector` has exactly one dimension", args[2].span,
                        help="use `tensor<T, D1, D2, ...>` for more than one dimension")
        if base == "tensor" and not dims:
            raise fail("RL210", "`tensor` needs its dimensions", node.span,
                        help=f"write them after the element type, as in `tensor<{element.render()}, 3, 224, 224>`")
        return ir.TypeRef(span=node.span, base=base, element=element, dims=tuple(dims))
