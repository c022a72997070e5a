"""A stand-in for kubectl (and its argo rollouts plugin) in the pipeline tests.

Every call is appended to ``$FAKE_KUBECTL_STATE/calls.jsonl``; ``get
rollouts.argoproj.io NAME`` prints ``$FAKE_KUBECTL_STATE/rollout.json`` (or
fails as kubectl does when there is none); ``apply`` of a file whose name holds
``broken`` fails.  :func:`install` puts it on a PATH folder as ``kubectl``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path


def install(folder: Path) -> Path:
    """Write an executable `kubectl` into ``folder`` that runs this file with this interpreter."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "kubectl"
    exe.write_text(f"#!{sys.executable}\nimport runpy, sys\nsys.argv[0] = 'kubectl'\n"
                   f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


def calls(state: Path) -> list[list[str]]:
    log = state / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def main(argv: list[str]) -> int:
    state = Path(os.environ["FAKE_KUBECTL_STATE"])
    state.mkdir(parents=True, exist_ok=True)
    with (state / "calls.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(argv) + "\n")
    if argv[:2] == ["get", "rollouts.argoproj.io"]:
        live = state / "rollout.json"
        if not live.exists():
            print(f'Error from server (NotFound): rollouts.argoproj.io "{argv[2]}" not found', file=sys.stderr)
            return 1
        print(live.read_text())
        return 0
    if argv[:1] == ["apply"]:
        target = argv[argv.index("--filename") + 1]
        if "broken" in target:
            print(f"error: error validating {target!r}", file=sys.stderr)
            return 1
        print(f"applied {target}")
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
