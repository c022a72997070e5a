"""The `rollout` command line.

Each verb imports only what it needs: `rollout check` must start fast and
never load scipy, simpy or numpy (the power pass loads scipy only when a spec
has a business gate to size).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from rolloutlang import __version__
from rolloutlang.diagnostics import MAX_DIAGNOSTICS, Diagnostic, Severity, cap, count_text, render_json, render_text

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., Any])


def _colour(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return sys.stderr.isatty()


def _root_option(fn: F) -> F:
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Repository root that imports are relative to (default: nearest folder with .git or pyproject.toml).",
    )(fn)


def _colour_option(fn: F) -> F:
    return click.option("--color/--no-color", "color", default=None, help="Colour the output (default: on a TTY).")(fn)


class _Group(click.Group):
    """Unknown verbs get a did-you-mean, like every other name in rolloutlang."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        from rolloutlang.diagnostics import did_you_mean

        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            hint = did_you_mean(name, self.list_commands(ctx))
            ctx.fail(f"no such command `{name}`." + (f" {hint[0].upper() + hint[1:]}" if hint else ""))
        return super().resolve_command(ctx, args)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rollout")
@click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks for internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """rollout: check, format, explain, graph, simulate and compile .rollout files, and judge their gates.

    \b
    Examples:
      rollout check examples/ranker-v2.rollout
      rollout fmt --check examples/*.rollout
      rollout explain examples/ranker-v2.rollout > comment.md
      rollout compile examples/ranker-v2.rollout -t argo,istio -o deploy/ranker
      rollout evaluate examples/ranker-v2.rollout --gate ctr --look 2
      rollout simulate examples/ranker-v2.rollout --report simulate.html
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _emit(diagnostics: Sequence[Diagnostic], sources: dict[str, Any], fmt: str, colour: bool,
          limit: int = MAX_DIAGNOSTICS, default_path: str = ".",
          finish: Callable[[list[Diagnostic]], list[Diagnostic]] | None = None) -> None:
    """Print findings in order, at most ``limit`` of them (the rest counted); ``finish`` completes those printed."""
    ordered = sorted(diagnostics, key=lambda d: d.sort_key())
    if fmt in ("gitlab", "text"):
        # A waived finding is kept where a format can say so (JSON, SARIF); the others count it or leave it out.
        ordered = [d for d in ordered if d.suppression is None]
    if fmt == "gitlab":
        from rolloutlang.codequality import render_code_quality

        # A code quality report lists every finding: it has nowhere to count the ones left out.
        click.echo(render_code_quality(finish(ordered) if finish else ordered, default_path), nl=False)
        return
    shown, omitted = cap(ordered, limit)
    if finish is not None:
        shown = finish(shown)
    if fmt == "json":
        click.echo(render_json(shown, omitted), nl=False)
        return
    if fmt == "sarif":
        from rolloutlang.sarif import render_sarif

        click.echo(render_sarif(shown, len(omitted)), nl=False)
        return
    for d in shown:
        click.echo(render_text(d, sources, colour=colour), err=True, color=colour)
        click.echo("", err=True)
    if omitted:
        click.echo(f"... {count_text(omitted) or f'{len(omitted):,} notes'} more not shown "
                   "(`--max-diagnostics 0` shows all)", err=True)
    summary = count_text(sorted(diagnostics, key=lambda d: d.sort_key()))
    if summary:
        click.echo(summary, err=True)


def _load(path: Path, root: Path | None) -> Any:
    from rolloutlang.loader import load

    if str(path) == "-":
        from rolloutlang.loader import load_bytes

        return load_bytes(sys.stdin.buffer.read(), "<stdin>", root)
    return load(path, root)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "gitlab"]), default="text",
              show_default=True,
              help="How to print findings: for people, for tools, SARIF 2.1.0 for code review (GitHub code "
                   "scanning), or a GitLab code quality report.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--dump-ir", is_flag=True, help="Print the IR the compiler understood, as JSON.")
@click.option("--max-diagnostics", "limit", type=click.IntRange(min=0), default=MAX_DIAGNOSTICS, show_default=True,
              help="Show at most this many findings and count the rest; 0 shows all.")
@_root_option
@_colour_option
def check(files: tuple[Path, ...], fmt: str, strict: bool, dump_ir: bool, limit: int, root: Path | None,
          color: bool | None) -> None:
    """Parse, lower and check rollout files.

    Exit status: 0 clean, 1 problems found, 2 usage or I/O problems.

    \b
    Examples:
      rollout check examples/ranker-v2.rollout
      rollout check --strict --format sarif specs/*.rollout > findings.sarif
      rollout check --format gitlab specs/*.rollout > gl-code-quality-report.json
      rollout check --dump-ir examples/ranker-v2.rollout | jq '.rollouts[0].strategy'
    """
    diagnostics: list[Diagnostic] = []
    sources: dict[str, Any] = {}
    io_error = False
    dumps = []
    # The IR each semantic finding is in, to give it its IR path once we know it is shown.
    found_in: dict[int, Any] = {}
    for path in files:
        program = _load(path, root)
        sources.update(program.sources)
        io_error = io_error or program.io_error
        found = list(program.diagnostics)
        semantic: list[Diagnostic] = []
        if program.main is not None and not program.has_errors:
            semantic = _run_checks(program)
            if dump_ir:
                from rolloutlang import irjson

                dumps.append(irjson.dump_json(program.main))
        # waive() keeps the findings' order (then adds RL143 for unused waivers): the checks' findings are
        # the ones after the loader's, and only they have IR paths.
        checked = range(len(found), len(found) + len(semantic))
        for i, d in enumerate(program.waive([*found, *semantic])):
            is_semantic = i in checked
            if strict and d.severity is Severity.WARNING:
                d = dataclasses.replace(d, severity=Severity.ERROR)
            if is_semantic and program.main is not None:
                found_in[id(d)] = program.main
            diagnostics.append(d)
    if dump_ir:
        for text in dumps:
            click.echo(text)

    def with_paths(shown: list[Diagnostic]) -> list[Diagnostic]:
        if fmt == "text":  # the text shows no IR paths (JSON, SARIF and GitLab fingerprints do)
            return shown
        return _with_ir_paths(shown, found_in)

    _emit(diagnostics, sources, fmt, _colour(color), limit, default_path=files[0].as_posix(), finish=with_paths)
    if fmt == "text" and not any(d.suppression is None for d in diagnostics):
        click.echo(f"no problems in {len(files)} file{'s' if len(files) != 1 else ''}", err=True)
    if io_error:
        sys.exit(EXIT_USAGE)
    if any(d.is_error for d in diagnostics):
        sys.exit(EXIT_FINDINGS)


def _with_ir_paths(diagnostics: list[Diagnostic], found_in: dict[int, Any]) -> list[Diagnostic]:
    """Give each semantic finding its logical IR path (`rollouts[0].gates[2]`) for the JSON and SARIF outputs.

    ``found_in`` maps a finding (by ``id``) to the IR it is in; only the findings shown are looked up.
    """
    from rolloutlang.irpath import IrPaths

    indexes: dict[int, IrPaths] = {}
    out = []
    for d in diagnostics:
        file_ir = found_in.get(id(d))
        if file_ir is not None and d.span is not None and not d.path:
            paths = indexes.setdefault(id(file_ir), IrPaths(file_ir))
            d = dataclasses.replace(d, path=paths.path(d.span))
        out.append(d)
    return out


def _run_checks(program: Any) -> list[Diagnostic]:
    try:
        from rolloutlang.checks import run_checks
    except ImportError:  # the semantic passes land with the checks issue
        return []
    return list(run_checks(program))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--check", "check_only", is_flag=True, help="Write nothing; exit 1 if any file would change.")
@click.option("--diff", is_flag=True, help="Print a unified diff of the changes instead of writing.")
@_colour_option
def fmt(files: tuple[Path, ...], check_only: bool, diff: bool, color: bool | None) -> None:
    """Rewrite rollout files in the one canonical layout, comments kept.

    A file that does not parse is never rewritten. Files are replaced
    atomically, so an interrupted run leaves either the old or the new text.

    \b
    Examples:
      rollout fmt examples/ranker-v2.rollout
      rollout fmt --check examples/*.rollout     # in CI
      rollout fmt --diff ranker-v2.rollout       # show, don't write
    """
    from rolloutlang.formatter import format_file

    changed = 0
    failed = False
    io_error = False
    for path in files:
        outcome = format_file(path, write=not (check_only or diff))
        if outcome.diagnostics:
            failed = True
            io_error = io_error or outcome.io_error
            _emit(outcome.diagnostics, outcome.sources, "text", _colour(color))
            continue
        if outcome.changed:
            changed += 1
            if diff:
                click.echo(outcome.diff, nl=False)
            elif check_only:
                click.echo(f"would reformat {path}", err=True)
            else:
                click.echo(f"reformatted {path}", err=True)
    if io_error:
        sys.exit(EXIT_USAGE)
    if failed or ((check_only or diff) and changed):
        sys.exit(EXIT_FINDINGS)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "json"]), default="mermaid",
              show_default=True, help="Graph syntax to print.")
@_root_option
@_colour_option
def graph(file: Path, fmt: str, root: Path | None, color: bool | None) -> None:
    """Print the plan graph: phases, and the promote, rollback and pause edges.

    \b
    Examples:
      rollout graph examples/ranker-v2.rollout
      rollout graph --format dot examples/ranker-v2.rollout | dot -Tsvg > plan.svg
    """
    from rolloutlang.plan import build_plan, render_plan

    program = _load(file, root)
    if program.main is None or program.has_errors:
        _fail_program(program, _colour(color))
    rollouts = program.rollouts()
    if fmt == "json" and len(rollouts) > 1:
        from rolloutlang.plan import render_plans_json

        click.echo(render_plans_json([build_plan(r) for r in rollouts]), nl=False)
        return
    for rollout in rollouts:
        click.echo(render_plan(build_plan(rollout), fmt), nl=False)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--simulate", "with_simulation", is_flag=True,
              help="Also simulate the plan (`rollout simulate`) and show its figures beside the power table.")
@click.option("--runs", type=click.IntRange(min=1, max=10_000_000), default=None,
              help="With --simulate: runs per scenario (default 2000).")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="With --simulate: the seed.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With --simulate: processes to run on (default: every core).")
@_root_option
@_colour_option
def explain(file: Path, with_simulation: bool, runs: int | None, seed: int, workers: int | None, root: Path | None,
            color: bool | None) -> None:
    """Explain a plan in markdown, for a pull-request comment.

    Phases with weights, durations and exposure; what each gate triggers; the
    power of each business gate at each look; the warnings. With --simulate,
    the simulated rollback, promotion and pause rates, exposure and times of
    every scenario, and each gate's simulated power beside its analytic one.

    \b
    Examples:
      rollout explain examples/ranker-v2.rollout > comment.md
      rollout explain --simulate --seed 1 examples/ranker-v2.rollout > comment.md
    """
    from rolloutlang.explain import explain_program

    program = _load(file, root)
    if program.main is None or program.has_errors:
        _fail_program(program, _colour(color))
    options = None
    if with_simulation:
        from rolloutlang.simulator.runner import DEFAULT_RUNS, Options

        options = Options(runs=runs or DEFAULT_RUNS, seed=seed, workers=workers)
    click.echo(explain_program(program, options), nl=False)


def _target_option(value: tuple[str, ...]) -> list[str]:
    from rolloutlang.targets import UnknownTarget, resolve

    names = [n.strip() for v in value for n in v.split(",") if n.strip()]
    try:
        return resolve(names)
    except UnknownTarget as exc:
        raise click.BadParameter(str(exc), param_hint="'--target'") from exc


@cli.command(name="compile")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--target", "-t", "target_names", multiple=True, required=True, metavar="NAME",
              help="What to compile to (repeatable, or comma-separated); `all` for every target.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write one file per object under this folder (default: print to stdout).")
@click.option("--per-stage", is_flag=True, help="Routing targets: write one routing object per stage.")
@click.option("--evaluator-image", default=None, metavar="IMAGE@sha256:...",
              help="Image that runs `rollout evaluate` for business and drift gates (overrides the spec).")
@click.option("--ci-image", default=None, metavar="IMAGE@sha256:...",
              help="CI targets: the image the pipeline's jobs run in (overrides the spec's `pipeline { image }`).")
@click.option("--check", "check_only", is_flag=True,
              help="With -o: write nothing; exit 1 if any file under the folder would change.")
@click.option("--force", is_flag=True, help="With -o: overwrite files that rolloutlang did not generate.")
@_root_option
@_colour_option
def compile_(files: tuple[Path, ...], target_names: tuple[str, ...], out_dir: Path | None, per_stage: bool,
             evaluator_image: str | None, ci_image: str | None, check_only: bool, force: bool, root: Path | None,
             color: bool | None) -> None:
    """Compile rollout files to deployment configs.

    The spec is checked first, as `rollout check` would; nothing is written
    when it has errors, or when a target cannot express something it says.
    Output is byte-identical for the same input, whatever the folder or clock.

    \b
    Examples:
      rollout compile examples/ranker-v2.rollout --target argo
      rollout compile examples/ranker-v2.rollout -t argo,istio -o deploy/ranker
      rollout compile --check -t all -o deploy/ranker examples/ranker-v2.rollout   # in CI
      rollout compile examples/fraud-scorer.rollout -t gitlab,github -o .          # the CI pipelines
    """
    from rolloutlang.targets.driver import compile_program, write_outputs

    targets = _target_option(target_names)
    if check_only and out_dir is None:
        raise click.UsageError("--check compares against files on disk; give the folder with -o")
    from rolloutlang.targets.base import CompileOptions

    options = CompileOptions(per_stage=per_stage, evaluator_image=evaluator_image, ci_image=ci_image)
    diagnostics: list[Diagnostic] = []
    sources: dict[str, Any] = {}
    outputs = []
    io_error = False
    for path in files:
        program = _load(path, root)
        sources.update(program.sources)
        io_error = io_error or program.io_error
        result = compile_program(program, targets, options)
        diagnostics.extend(result.diagnostics)
        outputs.extend(result.outputs)
    colour = _colour(color)
    if io_error or any(d.is_error for d in diagnostics):
        _emit(diagnostics, sources, "text", colour)
        sys.exit(EXIT_USAGE if io_error else EXIT_FINDINGS)
    if out_dir is None:
        _emit(diagnostics, sources, "text", colour)
        for out in outputs:
            click.echo(f"---\n# file: {out.path}\n{out.text}", nl=False)
        return
    report = write_outputs(out_dir, outputs, check_only=check_only, force=force)
    diagnostics.extend(report.diagnostics)
    _emit(diagnostics, sources, "text", colour)
    for line in report.lines:
        click.echo(line, err=True)
    if report.io_error:
        sys.exit(EXIT_USAGE)
    if any(d.is_error for d in diagnostics) or (check_only and report.changed):
        sys.exit(EXIT_FINDINGS)


class _CiGroup(click.Group):
    """`rollout ci`: the pipeline steps, imported only when one runs (rolloutlang/ci.py)."""

    def _real(self) -> click.Group:
        from rolloutlang.ci import ci

        return ci

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._real().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._real().get_command(ctx, cmd_name)


@cli.group(name="ci", cls=_CiGroup)
def ci_group() -> None:
    """Steps the generated CI pipelines run against the cluster.

    They read and change the cluster through kubectl with the job's
    kubeconfig, and stop with a plain explanation when the live state is not
    what the step expects.

    \b
    Examples:
      rollout ci apply manifests/
      rollout ci live --rollout ranker-v2 -n recs --expect stable --stable sha256:... --candidate sha256:...
      rollout ci paused --rollout ranker-v2 -n recs --step mpr --weight 50
      rollout ci notify --channel "#recs-ml-oncall" --message "ranker-v2: the pipeline failed"
    """


EXIT_INCONCLUSIVE = 3


def _parse_time(text: str | None) -> float:
    """`now`, unix seconds, or an RFC 3339 time (`2025-06-01T12:00:00Z`) as unix seconds."""
    import math
    import time
    from datetime import datetime

    if text is None or text == "now":
        return time.time()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and 0 <= seconds < 253402300800:  # up to the year 9999
            return seconds
        raise click.BadParameter(f"`{text}` is not a time", param_hint="'--at'")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"`{text}` is not a time: write `now`, unix seconds or `2025-06-01T12:00:00Z`",
                                 param_hint="'--at'") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"`{text}` has no time zone: add `Z` for UTC", param_hint="'--at'")
    return parsed.timestamp()


def _parse_wait(text: str | None) -> float:
    from rolloutlang import units

    if text is None:
        return 0.0
    try:
        return units.duration(text, "the confirmation wait")
    except units.UnitError as exc:
        raise click.BadParameter(exc.message + (f"; {exc.help}" if exc.help else ""),
                                 param_hint="'--confirm-after'") from None


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--gate", "gate_name", required=True, metavar="NAME", help="The gate to judge.")
@click.option("--rollout", "rollout_name", default=None, metavar="NAME",
              help="The rollout, when the file has several.")
@click.option("--prometheus", "address", default=None, metavar="URL",
              help="Prometheus to read (default: the spec's `metrics prometheus` address).")
@click.option("--at", "at_text", default=None, metavar="TIME",
              help="When to judge: `now` (default), unix seconds, or RFC 3339 such as 2025-06-01T12:00:00Z.")
@click.option("--look", type=click.IntRange(min=1), default=None,
              help="A business gate's look, 1-based (default: its last look).")
@click.option("--canary-hash", default=None, metavar="HASH",
              help="The candidate's pod-template hash, for queries that select its pods ($pods).")
@click.option("--confirm-after", "confirm_text", default=None, metavar="DURATION",
              help="On a failure, judge again this much later and fail only if it still fails.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Print for people, or the statistics as JSON.")
@click.option("--on-fail", type=click.Choice(["exit", "pause"]), default="exit", show_default=True,
              help="In a cluster: `pause` pauses the Argo Rollout on a failure and exits 0.")
@click.option("--on-inconclusive", type=click.Choice(["exit", "pause"]), default="exit", show_default=True,
              help="In a cluster: `pause` pauses the Argo Rollout when the data cannot decide, and exits 0.")
@click.option("--argo-rollout", default=None, metavar="NAME", help="The Argo Rollout to pause.")
@click.option("--namespace", default=None, metavar="NS",
              help="Its namespace (default: the spec's, else the pod's own).")
@_root_option
@_colour_option
def evaluate(file: Path, gate_name: str, rollout_name: str | None, address: str | None, at_text: str | None,
             look: int | None, canary_hash: str | None, confirm_text: str | None, fmt: str, on_fail: str,
             on_inconclusive: str, argo_rollout: str | None, namespace: str | None, root: Path | None,
             color: bool | None) -> None:
    """Judge one gate in production from Prometheus: pass, fail or inconclusive.

    Business gates apply the spec's test to the labelled counts of both arms,
    spending alpha at the information actually reached; drift gates compare
    the candidate's binned distribution with the reference's; SLO gates run
    the query the generated AnalysisTemplate runs. No data is never a pass:
    an empty or NaN result is inconclusive.

    Exit status: 0 pass, 1 fail, 3 inconclusive, 2 usage, I/O or query errors.
    With --on-fail/--on-inconclusive pause (Argo's job metrics use them), the
    Rollout is paused and the exit status is 0, so the analysis does not abort.

    \b
    Examples:
      rollout evaluate examples/ranker-v2.rollout --gate ctr --look 2
      rollout evaluate examples/ranker-v2.rollout --gate drift --prometheus http://localhost:9090 --format json
      rollout evaluate spec.rollout --gate ctr --at 2025-06-01T12:00:00Z
    """
    import json
    import time

    from rolloutlang.evaluate import EvaluationError, evaluate_gate, iso_time
    from rolloutlang.plan import build_plan
    from rolloutlang.prometheus import query

    at = _parse_time(at_text)
    confirm_s = _parse_wait(confirm_text)
    program = _load(file, root)
    if program.main is None or program.has_errors:
        _fail_program(program, _colour(color))
    rollout = _one_rollout(program, rollout_name, file)
    if address is None:
        if rollout.metrics_source is None:
            raise click.UsageError("the rollout has no `metrics prometheus` source: pass --prometheus URL")
        address = rollout.metrics_source.address
    if "pause" in (on_fail, on_inconclusive) and not argo_rollout:
        raise click.UsageError("--on-fail/--on-inconclusive pause need --argo-rollout NAME")

    def fetch(promql: str, when: float) -> Any:
        assert address is not None
        return query(address, promql, when)

    plan = build_plan(rollout)
    try:
        result = evaluate_gate(rollout, plan, gate_name, fetch, at, look=look, pod_hash=canary_hash)
        if result.verdict == "fail" and confirm_s > 0:
            later = at + confirm_s
            wait = later - time.time()
            if wait > 0:
                time.sleep(wait)
            started = result.statistics.get("started_at")
            again = evaluate_gate(rollout, plan, gate_name, fetch, later, look=look, pod_hash=canary_hash,
                                  start=_parse_time(started) if isinstance(started, str) else None)
            again.notes.insert(0, f"failed at {iso_time(at)} too; confirmed after {confirm_text}"
                               if again.verdict == "fail" else f"failed at {iso_time(at)}, not confirmed "
                               f"{confirm_text} later")
            again.queries = result.queries + again.queries
            result = again
    except EvaluationError as exc:
        click.echo(f"error[RL740]: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    action = ""
    if (result.verdict == "fail" and on_fail == "pause") or (result.verdict == "inconclusive"
                                                              and on_inconclusive == "pause"):
        from rolloutlang.evaluate import in_cluster_namespace, pause_rollout

        ns = namespace or rollout.namespace or in_cluster_namespace()
        if ns is None:
            raise click.UsageError("say the Rollout's namespace with --namespace")
        assert argo_rollout is not None
        try:
            pause_rollout(argo_rollout, ns)
        except OSError as exc:
            click.echo(f"error[RL741]: cannot pause Rollout `{argo_rollout}`: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        action = f"paused Rollout {ns}/{argo_rollout}"
        result.notes.append(action)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=False))
    else:
        click.echo(_evaluation_text(result))
    if action:
        sys.exit(EXIT_OK)
    sys.exit(result.exit_code)


def _evaluation_text(result: Any) -> str:
    from rolloutlang.evaluate import iso_time

    lines = [f"{result.verdict.upper()}: gate `{result.gate}` of `{result.rollout}` at {iso_time(result.at)}",
             f"  {result.reason}"]
    for key, value in result.statistics.items():
        if value is None or isinstance(value, list):
            continue
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"  {key}: {shown}")
    lines.extend(f"  note: {n}" for n in result.notes)
    return "\n".join(lines)


def _one_rollout(program: Any, rollout_name: str | None, file: Path) -> Any:
    """The rollout a verb works on: the file's only one, or the one named with --rollout."""
    rollouts = program.rollouts()
    chosen = [r for r in rollouts if rollout_name in (None, r.name)]
    if not chosen or (rollout_name is None and len(chosen) > 1):
        names = ", ".join(f"`{r.name}`" for r in rollouts) or "none"
        raise click.UsageError(f"say which rollout with --rollout (the file has {names})" if chosen
                               else f"no rollout `{rollout_name}` in {file} (it has {names})")
    return chosen[0]


class _Progress:
    """A progress bar on standard error, on a terminal only, once a run has taken a second."""

    def __init__(self) -> None:
        import time

        self.started = time.monotonic()
        self.shown = False
        self.enabled = sys.stderr.isatty()

    def __call__(self, fraction: float) -> None:
        import time

        if not self.enabled or time.monotonic() - self.started < 1.0:
            return
        done = int(30 * min(max(fraction, 0.0), 1.0))
        sys.stderr.write(f"\r  simulating [{'#' * done}{' ' * (30 - done)}] {fraction * 100:3.0f}%")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def _report_path(report: Path | None, force: bool) -> None:
    """Refuse to replace a file at --report that rolloutlang did not write (unless --force)."""
    from rolloutlang.outputs import is_generated

    if report is None or force or not report.exists():
        return
    if report.is_dir() or not is_generated(report):
        raise click.UsageError(f"{report} exists and was not written by rolloutlang: pass --force to replace it")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--scenario", "scenario_names", multiple=True, metavar="NAME",
              help="Simulate this scenario only (repeatable): `null`, `at-mde` or one of the spec's "
                   "(default: all of them).")
@click.option("--runs", type=click.IntRange(min=1, max=10_000_000), default=None,
              help="Runs per scenario (default 2000: a rate near 5% then has a standard error of 0.5 points).")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True,
              help="The random seed: the same seed gives the same output, whatever --workers says.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes to run on (default: every core).")
@click.option("--effect", "effects", multiple=True, metavar="TARGET=FROM..TO",
              help="Also sweep an effect across sizes, e.g. `ctr=-5%..0%` or `latency=0ms..40ms` (repeatable).")
@click.option("--points", type=click.IntRange(min=2, max=101), default=9, show_default=True,
              help="Sizes per --effect sweep.")
@click.option("--approval-delay", "approval_text", default="2h", show_default=True, metavar="DURATION",
              help="Mean wait for a person at an approval, a `hold` or a manual promotion (exponential).")
@click.option("--start-hour", type=click.FloatRange(min=0, max=24, max_open=True), default=None, metavar="HOUR",
              help="Hour of day the rollout starts (needs `peak` on the traffic line; default: the spec's `start`, "
                   "else the worst start for its first business gate).")
@click.option("--strict", is_flag=True,
              help="Exit 1 when the simulated plan misses a budget or a gate's declared power (by more than two "
                   "standard errors).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="A table for people, or the JSON document (docs/simulate.md).")
@click.option("--report", type=click.Path(path_type=Path), default=None, metavar="FILE.html",
              help="Also write a self-contained HTML page with plots.")
@click.option("--force", is_flag=True, help="Replace a --report file that rolloutlang did not write.")
@click.option("--rollout", "rollout_name", default=None, metavar="NAME",
              help="The rollout, when the file has several.")
@_root_option
@_colour_option
def simulate(file: Path, scenario_names: tuple[str, ...], runs: int | None, seed: int, workers: int | None,
             effects: tuple[str, ...], points: int, approval_text: str, start_hour: float | None, strict: bool,
             fmt: str, report: Path | None, force: bool, rollout_name: str | None, root: Path | None,
             color: bool | None) -> None:
    """Simulate a plan: false rollbacks, detection power, exposure and time, per scenario.

    Thousands of runs of the whole plan (every phase, gate, rule, wait and
    label delay) under `null` (the candidate is stable), `at-mde` (each
    business gate at the change its power is sized for), the spec's own
    scenarios and any --effect sweep. Every rate comes with its Monte Carlo
    standard error.

    Exit status: 0 done, 1 the spec has errors (or, with --strict, the plan
    misses a budget or a declared power), 2 usage or I/O problems.

    \b
    Examples:
      rollout simulate examples/ranker-v2.rollout
      rollout simulate examples/ranker-v2.rollout --scenario null --runs 10000 --seed 7
      rollout simulate examples/ranker-v2.rollout --effect ctr=-5%..0% --report sim.html
      rollout simulate spec.rollout --seed 1 --strict --format json --report simulate.html > simulate.json
    """
    import json

    from rolloutlang import units
    from rolloutlang.checks import CheckContext, check_rollout

    colour = _colour(color)
    try:
        approval_s = units.duration(approval_text, "the approval delay")
    except units.UnitError as exc:
        raise click.BadParameter(exc.message, param_hint="'--approval-delay'") from None
    program = _load(file, root)
    if program.main is None or program.has_errors:
        _fail_program(program, colour)
    rollout = _one_rollout(program, rollout_name, file)
    found = check_rollout(CheckContext(rollout=rollout, program=program))
    errors = [d for d in found if d.is_error]
    shown = errors or [d for d in found if d.code.startswith("RL8")]
    if shown:
        _emit(shown, program.sources, "text", colour)
    if errors:
        sys.exit(EXIT_FINDINGS)
    _report_path(report, force)

    from rolloutlang.plan import build_plan
    from rolloutlang.simulator import runner

    start_phase = None
    if start_hour is not None:
        traffic = rollout.traffic
        if traffic is None or traffic.peak_hour is None:
            raise click.UsageError("--start-hour needs `peak` on the traffic line (when the day's traffic peaks)")
        from rolloutlang.stats.traffic import phase

        start_phase = phase(start_hour, traffic.peak_hour)
    try:
        sweeps = [runner.parse_sweep(rollout, text, points) for text in dict.fromkeys(effects)]  # each sweep once
        options = runner.Options(runs=runs or runner.DEFAULT_RUNS, seed=seed, workers=workers,
                                 scenarios=scenario_names, sweeps=sweeps, approval_delay_s=approval_s,
                                 start_phase=start_phase)
        progress = _Progress()
        try:
            simulation = runner.simulate(rollout, build_plan(rollout), options, spec=file.as_posix(),
                                         on_progress=progress)
        finally:
            progress.close()
    except runner.SimulationError as exc:
        raise click.UsageError(str(exc)) from None
    doc = simulation.to_json()
    if report is not None:
        from rolloutlang.outputs import write_atomic
        from rolloutlang.simulator.report import render_report

        try:
            write_atomic(report, render_report(doc))
        except OSError as exc:
            click.echo(f"error[RL702]: cannot write {report}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_USAGE)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        from rolloutlang.simulator.text import render_text

        click.echo(render_text(doc), nl=False)
    from rolloutlang.simulator.promises import promises

    misses = [c for c in promises(simulation.model, doc["scenarios"]) if c.missed]
    if misses:
        _emit([c.diagnostic(strict) for c in misses], program.sources, "text", colour)
        if strict:
            sys.exit(EXIT_FINDINGS)


def _fail_program(program: Any, colour: bool) -> NoReturn:
    _emit(program.diagnostics, program.sources, "text", colour)
    sys.exit(EXIT_USAGE if program.io_error else EXIT_FINDINGS)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `rollout` console script; never shows a traceback."""
    import gc

    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    # One command reads at most a few MB of source into trees of frozen,
    # acyclic objects: the cyclic garbage collector finds nothing to free and
    # would rescan those trees again and again (half the time of a 300 kB
    # `check`).  Plain reference counting still frees everything.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="rollout", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        # A pipeline step that refuses (rolloutlang/ci.py) is a finding, not a usage error.
        sys.exit(EXIT_FINDINGS if getattr(exc, "is_refusal", False) else EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USAGE)
    except BrokenPipeError:
        sys.exit(EXIT_FINDINGS)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        if debug:
            raise
        click.echo(f"error[RL000]: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("  = help: this is a bug in rolloutlang; rerun with --debug and report the traceback", err=True)
        sys.exit(EXIT_USAGE)
    finally:
        if gc_was_enabled:
            gc.enable()
