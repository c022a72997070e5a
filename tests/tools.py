"""The real tools some tests run (installed by `.ci/install-tools` into .tools/, or found on PATH).

A test that needs one calls :func:`require_tool`; where the tool is missing it
skips with a reason that says how to install it, so a skip is never silent.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# .tools/ (install-tools), then the running interpreter's own scripts (the test extra's
# check-jsonschema and actionlint, even when the venv is not activated).
_LOCAL = (ROOT / ".tools" / "bin", ROOT / ".tools" / "node_modules" / ".bin", Path(sys.executable).parent)


def find_tool(name: str) -> str | None:
    """Path of an executable: the project's .tools/ or the interpreter's folder first, then PATH."""
    for folder in _LOCAL:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_tool(name: str) -> str:
    """The tool's path, or skip the test saying why."""
    path = find_tool(name)
    if path is None:
        pytest.skip(f"`{name}` is not installed: run .ci/install-tools (CI does) or put it on PATH")
    return path
