"""What every target shares: its input and output types, the template environment, and the one quoting filter.

Templates only place values.  Every value printed by a template goes through
the ``q`` filter (:func:`yaml_scalar`), which writes it as a JSON scalar: a
JSON string is a YAML double-quoted string, so no name, string, header,
regex or PromQL query from a spec can end a line, open a mapping or add a
key.  The environment's ``finalize`` hook refuses anything printed without
the filter, so a template that forgets it fails in tests instead of
shipping an injection.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from rolloutlang.diagnostics import Diagnostic
from rolloutlang.outputs import GENERATED_MARKER

if TYPE_CHECKING:
    import jinja2

    from rolloutlang import ir
    from rolloutlang.plan import Plan


@dataclass(frozen=True)
class CompileOptions:
    """Choices made on the command line rather than in the spec.

    Attributes:
        per_stage: write one routing object per stage (GitOps without a rollout controller).
        evaluator_image: image (pinned by digest) that runs `rollout evaluate` for gates a metrics
            provider cannot judge; overrides the spec's.
        ci_image: image (pinned by digest) the generated CI jobs run in; overrides the spec's
            `pipeline { image ... }`.
    """

    per_stage: bool = False
    evaluator_image: str | None = None
    ci_image: str | None = None


@dataclass(frozen=True)
class CompileInput:
    """One checked rollout, ready to compile.

    Attributes:
        rollout: the resolved IR (imports and `use gates` already merged in).
        plan: its plan graph; targets read phases and transitions from here, never the strategy.
        source_path: the spec's path relative to the repository root, as the generated header names it.
        options: command-line choices.
        sources: (path, text) of the spec and of every file it imports, the spec first; a target that
            runs `rollout evaluate` in the cluster ships them; a pipeline runs again when one changes.
    """

    rollout: ir.Rollout
    plan: Plan
    source_path: str
    options: CompileOptions = CompileOptions()
    sources: tuple[tuple[str, str], ...] = ()

    @property
    def source_paths(self) -> tuple[str, ...]:
        """The paths of :attr:`sources`, the spec first; just the spec when they are not known."""
        return tuple(path for path, _ in self.sources) or (self.source_path,)


@dataclass(frozen=True)
class Output:
    """One generated file: a path relative to the output folder (POSIX separators) and its text."""

    path: str
    text: str


@dataclass
class TargetResult:
    """What a target made of one rollout: its files, and what it could not express."""

    outputs: list[Output] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


class Target:
    """A compiler to one platform.  Subclasses set ``name`` and ``summary`` and implement :meth:`compile`."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def compile(self, unit: CompileInput) -> TargetResult:
        raise NotImplementedError

    def render(self, template: str, **context: Any) -> str:
        """Render ``templates/<name>/<template>`` (falling back to ``templates/common/``)."""
        return environment(self.name).get_template(template).render(**context)


# -- quoting ----------------------------------------------------------------------------


class Quoted(str):
    """Text already written as a safe YAML scalar; the only thing a template may print."""

    __slots__ = ()


class TemplateValueError(TypeError):
    """A template printed a value without the quoting filter, or a value no YAML scalar can hold."""


# Outside YAML's printable set, or read by YAML as a line break or a byte-order mark.
_UNSAFE_CHARS = re.compile("[^\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029\ufeff]")


def _escape_unsafe(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def yaml_scalar(value: object) -> Quoted:
    """Write a value as a YAML scalar that parses back to exactly that value, never to structure.

    Strings become JSON strings (YAML double-quoted scalars), with the
    characters YAML treats as line breaks or that are not printable
    escaped; numbers are written positionally (``0.00001``, not ``1e-05``,
    which YAML 1.1 readers take for a string); non-finite numbers and
    other types are refused.
    """
    if isinstance(value, Quoted):
        return value
    if value is None:
        return Quoted("null")
    if isinstance(value, bool):
        return Quoted("true" if value else "false")
    if isinstance(value, int):
        return Quoted(str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TemplateValueError(f"cannot write the non-finite number {value!r} into YAML")
        if value.is_integer() and abs(value) < 2**53:
            return Quoted(str(int(value)))
        text = format(Decimal(repr(value)), "f")
        return Quoted(text)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return Quoted(_UNSAFE_CHARS.sub(_escape_unsafe, text))
    raise TemplateValueError(f"cannot write a {type(value).__name__} as a YAML scalar: {value!r}")


def _finalize(value: object) -> object:
    if isinstance(value, Quoted):
        return value
    raise TemplateValueError(
        f"a template printed {value!r} without the `q` filter; every value goes through `| q` (targets/base.py)"
    )


def comment_text(text: str) -> str:
    """Text safe inside a one-line YAML comment: line breaks and control characters escaped."""
    return json.dumps(text, ensure_ascii=True)[1:-1]


def header(source_path: str) -> str:
    """The first line of every generated file: where it came from, and not to edit it by hand."""
    return f"# {GENERATED_MARKER} from {comment_text(source_path)}. DO NOT EDIT.\n"


# -- names ------------------------------------------------------------------------------

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def dns_label(*parts: str, max_length: int = 63) -> str:
    """A Kubernetes DNS-1123 label made from spec names: lower case, `-` for anything else.

    Spec names may hold upper case and `_`, which Kubernetes names may not.
    A name too long for the limit keeps its start and ends in a short hash of
    the whole, so distinct long names stay distinct and stable.
    """
    joined = "-".join(p for p in parts if p)
    name = _NOT_DNS.sub("-", joined.lower()).strip("-") or "x"
    if len(name) > max_length:
        digest = hashlib.sha256(joined.encode("utf-8")).hexdigest()[:8]
        name = name[: max_length - 9].rstrip("-") + "-" + digest
    return name


# -- the template environment -------------------------------------------------------------


@functools.cache
def environment(target: str) -> jinja2.Environment:
    """The jinja2 environment of one target: its templates first, then the common ones; strict and unescaped."""
    import jinja2

    def load(name: str) -> str | None:
        from importlib import resources

        root = resources.files("rolloutlang.targets") / "templates"
        for folder in (target, "common"):
            source = root / folder / name
            if source.is_file():
                return source.read_text(encoding="utf-8")
        return None

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    def q(value: object) -> Quoted:
        if isinstance(value, jinja2.Undefined):
            str(value)  # StrictUndefined raises here, naming the missing value
        return yaml_scalar(value)

    env.filters["q"] = q
    env.filters["comment"] = lambda value: Quoted(comment_text(str(value)))
    env.globals["header"] = lambda path: Quoted(header(path))
    return env
