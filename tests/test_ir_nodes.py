"""The IR's classes: immutable keyword-only dataclasses whose every field holds its declared type.

`rolloutlang.ir` builds them without pydantic so that `rollout check` starts
fast; these tests hold the contract pydantic used to enforce at every
construction: the IR of every example and lifecycle spec validates strictly
through `rolloutlang.irjson`, a float field never holds an int, and a node
cannot be changed or given a field it does not have.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import typing
from pathlib import Path
from typing import Any

import pytest

from rolloutlang import ir, irjson
from rolloutlang.loader import load
from rolloutlang.source import Span
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted([*(ROOT / "examples").glob("*.rollout"), *(ROOT / "tests" / "specs").glob("*.rollout")])
SPAN = Span("a.rollout", 1, 1, 1, 5)


def _ir(path: Path) -> ir.File:
    program = load(path, path.parent.parent)
    assert program.main is not None and not program.has_errors, [d.message for d in program.diagnostics]
    return program.main


def _nodes(value: Any) -> typing.Iterator[Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and type(value).__module__ == ir.__name__:
        yield value
        for f in dataclasses.fields(value):
            yield from _nodes(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _nodes(item)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_the_ir_of_every_spec_validates_strictly(path: Path) -> None:
    file = _ir(path)
    assert irjson.validate(file) == file


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_float_fields_hold_floats(path: Path) -> None:
    """pydantic used to turn a stray int into a float; now the lowering must write floats itself."""
    found = []
    for node in _nodes(_ir(path)):
        hints = typing.get_type_hints(type(node), vars(ir))
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if float in (typing.get_args(hints[f.name]) or (hints[f.name],)) and type(value) is int:
                found.append(f"{type(node).__name__}.{f.name} = {value!r}")
    assert found == []


def test_validation_names_the_field_that_breaks_the_schema() -> None:
    file = _ir(ROOT / "examples" / "ranker-v2.rollout")
    rollout = file.rollouts[0]
    for broken, field in [(dataclasses.replace(rollout, name=5), "rollouts.0.name"),
                          (dataclasses.replace(rollout, gates=list(rollout.gates)), "rollouts.0.gates")]:
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            irjson.validate(dataclasses.replace(file, rollouts=(broken,)))


def test_a_node_cannot_change_or_take_stray_fields() -> None:
    pin = ir.ArtifactPin(span=SPAN, digest="sha256:" + "a" * 64)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot set field 'tag'"):
        pin.tag = "latest"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del pin.tag  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot set attribute 'colour'"):
        pin.colour = "red"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="no field 'colour'"):
        ir.ArtifactPin(span=SPAN, colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="needs the keyword argument 'span'"):
        ir.ArtifactPin(digest="sha256:00")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ir.SemVer(1, 2, 3)  # type: ignore[misc]


def test_nodes_compare_hash_copy_and_pickle_by_value() -> None:
    a = ir.SemVer(major=1, minor=2, patch=3)
    assert a == ir.SemVer(major=1, minor=2, patch=3) and hash(a) == hash(ir.SemVer(major=1, minor=2, patch=3))
    assert a != ir.SemVer(major=1, minor=2, patch=4)
    assert a != (1, 2, 3, "", "")
    assert str(a) == "1.2.3" and repr(a) == "SemVer(major=1, minor=2, patch=3, prerelease='', build='')"
    file = _ir(ROOT / "examples" / "ranker-v2.rollout")
    assert pickle.loads(pickle.dumps(file)) == file
    assert copy.deepcopy(file) == file
    assert len({file, copy.deepcopy(file)}) == 1
    renamed = dataclasses.replace(file.rollouts[0], name="other")
    assert renamed.name == "other" and renamed.gates == file.rollouts[0].gates


def test_dump_ir_is_the_validated_ir_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "examples" / "ranker-v2.rollout"
    code, out, _ = run_cli(["check", "--dump-ir", "--root", str(ROOT), str(path)], capsys)
    assert code == 0
    dumped = json.loads(out)
    assert dumped == json.loads(json.dumps(dataclasses.asdict(_ir(path))))
    assert dumped["rollouts"][0]["strategy"]["kind"] == "canary"
