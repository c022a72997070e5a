"""The GitHub Actions target, checked by the tools GitHub users run: SchemaStore's workflow schema
(check-jsonschema) and actionlint, with its expression-injection check, on every example and on a
workflow full of hostile spec values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rolloutlang.targets import get_target
from tests.pipelines import EXAMPLES, compile_example, write
from tests.test_targets_pipeline import HOSTILE, _hostile_unit
from tests.tools import require_tool


@pytest.fixture(scope="module")
def workflows(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every example's workflow, and one per hostile value, under one repository's .github/workflows."""
    root = tmp_path_factory.mktemp("repo")
    paths = write(root, [compile_example(name, "github") for name in EXAMPLES])
    for i, value in enumerate(HOSTILE):
        (out,) = get_target("github").compile(_hostile_unit(value)).outputs
        path = root / ".github" / "workflows" / f"hostile-{i}.yml"
        path.write_text(out.text)
        paths.append(path)
    return paths


def test_every_workflow_passes_schemastore_schema(workflows: list[Path]) -> None:
    tool = require_tool("check-jsonschema")
    done = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", *map(str, workflows)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_workflow_passes_actionlint(workflows: list[Path]) -> None:
    tool = require_tool("actionlint")
    done = subprocess.run([tool, "-no-color", "-shellcheck=", "-pyflakes=", *map(str, workflows)],
                          capture_output=True, text=True, check=False, cwd=workflows[0].parents[2])
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_actionlint_would_catch_a_spec_value_pasted_into_a_script(tmp_path: Path) -> None:
    """The check above can fail: the same workflow with the hook command pasted into `run:` does."""
    tool = require_tool("actionlint")
    (out,) = get_target("github").compile(_hostile_unit("${{ github.event.issue.title }}")).outputs
    unsafe = out.text.replace('timeout "$ROLLOUT_HOOK_TIMEOUT" sh -c "$ROLLOUT_HOOK_COMMAND"',
                              "sh -c '${{ github.event.issue.title }}'")
    assert unsafe != out.text
    path = tmp_path / ".github" / "workflows" / "unsafe.yml"
    path.parent.mkdir(parents=True)
    path.write_text(unsafe)
    done = subprocess.run([tool, "-no-color", "-shellcheck=", "-pyflakes=", str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "potentially untrusted" in done.stdout
