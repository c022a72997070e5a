"""The built wheel is the product: it installs ONE namespace and runs outside the repo.

An editable install can hide a sub-package missing from the wheel, so this
builds the wheel, installs it into a fresh folder and runs it from elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build_dir = tmp_path_factory.mktemp("src")
    # Build from a copy so the build leaves nothing in the work tree.
    src = build_dir / "rolloutlang-src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
                                      ".hypothesis"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("rolloutlang-*.whl")
    return found


def test_wheel_holds_one_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = sorted({n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")})
    assert top == ["rolloutlang"]
    for required in (
        "rolloutlang/grammar/rollout.lark",
        "rolloutlang/grammar/__init__.py",
        "rolloutlang/simulator/__init__.py",
        "rolloutlang/targets/__init__.py",
        "rolloutlang/checks/__init__.py",
        "rolloutlang/stats/__init__.py",
        "rolloutlang/stats/designs.py",
        "rolloutlang/py.typed",
        "rolloutlang/cli.py",
        "rolloutlang/scenarios.py",
        "rolloutlang/simulator/engine.py",
        "rolloutlang/simulator/report.py",
    ):
        assert required in names, required


def test_installed_wheel_runs_outside_the_repo(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    assert not (target / "targets").exists() and not (target / "simulator").exists()
    assert not (target / "grammar").exists()
    spec = tmp_path / "work" / "ranker-v2.rollout"
    spec.parent.mkdir()
    shutil.copy(ROOT / "examples" / "ranker-v2.rollout", spec)
    env = dict(os.environ, PYTHONPATH=str(target))
    where = subprocess.run(
        [sys.executable, "-c", "import rolloutlang, rolloutlang.grammar as g; print(rolloutlang.__file__)"],
        cwd=spec.parent, env=env, capture_output=True, text=True, check=True,
    )
    assert where.stdout.strip().startswith(str(target)), where.stdout
    run = subprocess.run(
        [sys.executable, "-m", "rolloutlang", "check", spec.name],
        cwd=spec.parent, env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    # The simulator ships too (its modules are mapped into the one namespace).
    run = subprocess.run(
        [sys.executable, "-m", "rolloutlang", "simulate", spec.name, "--runs", "5", "--scenario", "outage",
         "--workers", "1", "--format", "json"],
        cwd=spec.parent, env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert '"name": "outage"' in run.stdout
    script = target / "bin" / "rollout"
    assert script.exists()
