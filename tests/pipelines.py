"""What the CI target tests share: compiling the examples and specs to pipelines, reading them back.

The examples that do not name a pipeline image compile with ``CI_IMAGE`` (as
``--ci-image`` would give it); the YAML is read back with PyYAML, which keeps
``"on"`` a string because the targets quote it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from rolloutlang.diagnostics import Diagnostic
from rolloutlang.loader import load, load_text
from rolloutlang.targets.base import CompileOptions, Output
from rolloutlang.targets.driver import compile_program

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.rollout"))
CI_IMAGE = "registry.example.com/ml/rollout-ci@sha256:" + "4f" * 32
CI_TARGETS = ("gitlab", "github")


@functools.cache
def compile_example(name: str, target: str) -> Output:
    """The one file a CI target writes for ``examples/NAME.rollout``."""
    program = load(ROOT / "examples" / f"{name}.rollout", ROOT)
    result = compile_program(program, [target], CompileOptions(ci_image=None if _has_image(name) else CI_IMAGE))
    assert not result.has_errors, [(d.code, d.message) for d in result.diagnostics]
    (output,) = result.outputs
    return output


def _has_image(name: str) -> bool:
    return 'image    "registry.example.com/risk/rollout-ci"' in (ROOT / "examples" / f"{name}.rollout").read_text()


def compile_text(text: str, target: str, *, ci_image: str | None = CI_IMAGE, name: str = "spec.rollout",
                 root: Path | None = None) -> tuple[list[Output], list[Diagnostic]]:
    program = load_text(text, name, root)
    result = compile_program(program, [target], CompileOptions(ci_image=ci_image))
    return result.outputs, result.diagnostics


def parse(text: str) -> Any:
    return yaml.safe_load(text)


def write(folder: Path, outputs: list[Output]) -> list[Path]:
    paths = []
    for out in outputs:
        path = folder / out.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out.text, encoding="utf-8")
        paths.append(path)
    return paths
