"""The IR as JSON, checked against its own types: what `rollout check --dump-ir` prints.

The IR's classes are plain dataclasses (:mod:`rolloutlang.ir` says why);
pydantic reads their annotations here and checks, in strict mode, that every
field holds what its type says before the IR leaves the process for other
tools.  Only `--dump-ir` and the tests pay for building these validators.
"""

from __future__ import annotations

import functools
import json
import os
from typing import TYPE_CHECKING

from rolloutlang import ir

if TYPE_CHECKING:
    from pydantic import TypeAdapter


@functools.cache
def _adapter() -> TypeAdapter[ir.File]:
    # pydantic looks for plugins in every installed package's metadata when it
    # builds validators; a command line tool has none to offer (a user's own
    # setting wins).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from pydantic import TypeAdapter

    return TypeAdapter(ir.File)  # strict: each class carries its config (ir.node)


def validate(file: ir.File) -> ir.File:
    """``file`` itself, once every field of every node is shown to hold its declared type.

    Raises pydantic's ``ValidationError``, naming the field, when one does not:
    that is a bug in the lowering, not in the user's file.
    """
    return _adapter().validate_python(file)


def dump_json(file: ir.File) -> str:
    """The validated IR as indented JSON, the shape ``--dump-ir`` documents; finite numbers only (issue 11)."""
    data = _adapter().dump_python(validate(file), mode="json")
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
