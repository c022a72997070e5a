"""`rollout compile` from loaded program to files: check, compile each rollout per target, write.

The spec is checked exactly as `rollout check` checks it, and the plan the
checks built is the one the targets read.  Nothing is written unless every
rollout compiled for every target without an error, and nothing a person
wrote is overwritten without `--force`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from rolloutlang.diagnostics import Diagnostic, error
from rolloutlang.outputs import is_generated, write_atomic
from rolloutlang.targets import get_target
from rolloutlang.targets.base import CompileInput, CompileOptions, Output
from rolloutlang.waivers import apply_waivers

if TYPE_CHECKING:
    from rolloutlang.loader import Program


@dataclass
class CompileResult:
    outputs: list[Output] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


def compile_program(program: Program, targets: list[str], options: CompileOptions) -> CompileResult:
    """Check a loaded program and compile each of its rollouts for each target.

    Returns the outputs only when no stage reported an error; the
    diagnostics always (lowering, checks, and what a target cannot express).
    """
    from rolloutlang.checks import CheckContext, check_rollout

    result = CompileResult(diagnostics=list(program.diagnostics))
    if program.main is None or program.has_errors:
        return result
    contexts = [CheckContext(rollout=r, program=program) for r in program.rollouts()]
    # `# waive` comments let findings go here as in `rollout check` (which reports the waivers that match nothing).
    waived = partial(apply_waivers, waivers=program.waivers)
    for ctx in contexts:
        result.diagnostics.extend(waived(check_rollout(ctx)))
    if result.has_errors:
        return result
    outputs: list[Output] = []
    sources = tuple(sorted(((path, src.text) for path, src in program.sources.items()),
                           key=lambda item: (item[0] != program.entry, item[0])))
    for ctx in contexts:
        unit = CompileInput(rollout=ctx.rollout, plan=ctx.plan, source_path=program.entry, options=options,
                            sources=sources)
        for name in targets:
            compiled = get_target(name).compile(unit)
            # Two targets may say the same thing about one construct; say it once.
            result.diagnostics.extend(d for d in waived(compiled.diagnostics) if d not in result.diagnostics)
            outputs.extend(compiled.outputs)
    seen: dict[str, Output] = {}
    for out in outputs:
        if out.path in seen:
            result.diagnostics.append(error(
                "RL701", f"two generated objects would be written to the same file `{out.path}`",
                help="give the rollouts in this file distinct names, or compile them one file at a time"))
        seen[out.path] = out
    if not result.has_errors:
        result.outputs = outputs
    return result


@dataclass
class WriteReport:
    lines: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    changed: int = 0
    io_error: bool = False


def _safe_relative(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not PurePosixPath(path).is_absolute() and ".." not in parts


def write_outputs(out_dir: Path, outputs: list[Output], *, check_only: bool = False,
                  force: bool = False) -> WriteReport:
    """Write each output under ``out_dir`` atomically; with ``check_only``, only say what would change.

    Every destination is vetted before the first write, so a refusal leaves the folder as it was.
    """
    report = WriteReport()
    plan: list[tuple[Path, Output]] = []
    for out in outputs:
        if not _safe_relative(out.path):
            raise ValueError(f"a target produced an unsafe output path: {out.path!r}")
        dest = out_dir.joinpath(*PurePosixPath(out.path).parts)
        try:
            current = dest.read_text(encoding="utf-8") if dest.is_file() else None
        except (OSError, UnicodeDecodeError):
            current = ""
        if current == out.text:
            continue
        if dest.exists() and not dest.is_file():
            report.diagnostics.append(error("RL702", f"cannot write `{dest}`: a folder of that name is in the way",
                                            help="move it away, or write to another folder with -o"))
            continue
        if current is not None and not force and not is_generated(dest):
            report.diagnostics.append(error(
                "RL702", f"refusing to overwrite `{dest}`: rolloutlang did not generate it",
                help="move the file away, choose another folder with -o, or pass --force to overwrite it"))
            continue
        plan.append((dest, out))
    report.changed = len(plan)
    if report.diagnostics:
        report.io_error = True
        return report
    unchanged = len(outputs) - len(plan)
    if check_only:
        report.lines.extend(f"would write {dest}" for dest, _ in plan)
        if not plan:
            report.lines.append(f"{len(outputs)} files up to date in {out_dir}")
        return report
    for dest, out in plan:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(dest, out.text)
        except OSError as exc:
            report.diagnostics.append(error("RL003", f"cannot write `{dest}`: {exc.strerror or exc}",
                                            help="check the folder's permissions and free space"))
            report.io_error = True
            return report
    report.lines.append(f"wrote {len(plan)} file{'s' if len(plan) != 1 else ''} to {out_dir}"
                        + (f" ({unchanged} unchanged)" if unchanged else ""))
    return report
