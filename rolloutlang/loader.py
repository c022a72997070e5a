"""Loading: read, parse and lower a file and everything it imports, then resolve names.

Imports are paths relative to the repository root (the nearest folder above
the file holding `.git` or `pyproject.toml`, or `--root`).  An import may not
be absolute, leave the root, or form a cycle.  `use gates NAME` then pulls a
gate set's gates, rules and metrics into the rollout, so later stages see one
self-contained :class:`ir.Rollout`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from rolloutlang import ir
from rolloutlang.diagnostics import Diagnostic, did_you_mean, error, warning, word_list
from rolloutlang.lowering import lower
from rolloutlang.source import SourceError, SourceFile, Span, byte_span, decode_source, read_bytes, shown_path
from rolloutlang.syntax import parse
from rolloutlang.waivers import Waiver, apply_waivers, read_waivers

ROOT_MARKERS = (".git", "pyproject.toml", ".rollout-root")


@dataclass
class Program:
    """A loaded file, what it imports, and the diagnostics of all of them."""

    root: Path
    entry: str
    files: dict[str, ir.File] = field(default_factory=dict)
    sources: dict[str, SourceFile] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    io_error: bool = False
    waivers: list[Waiver] = field(default_factory=list)

    @property
    def main(self) -> ir.File | None:
        return self.files.get(self.entry)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    def rollouts(self) -> list[ir.Rollout]:
        main = self.main
        return list(main.rollouts) if main else []

    def waive(self, diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
        """The findings with those a `# waive` comment lets go marked suppressed, and the entry file's waivers
        that let go of nothing (RL143)."""
        return apply_waivers(diagnostics, self.waivers, report_unused=(self.entry,))


def find_root(start: Path) -> Path:
    """The repository root: nearest ancestor with a marker, else the file's folder."""
    here = start.resolve()
    folder = here if here.is_dir() else here.parent
    for candidate in (folder, *folder.parents):
        if any((candidate / m).exists() for m in ROOT_MARKERS):
            return candidate
    return folder


def display_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def load(path: Path, root: Path | None = None, text: str | None = None) -> Program:
    """Load one entry file (or text standing for it) and its imports."""
    try:
        root = (root or find_root(path)).resolve()
        entry = display_path(path, root) if text is None else path.as_posix()
    except (OSError, ValueError) as exc:  # e.g. a name too long, or a NUL byte, in the path
        program = Program(root=Path.cwd(), entry=path.as_posix(), io_error=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        program.diagnostics.append(error("RL003", f"cannot read `{shown_path(path)}`: {reason.lower()}"))
        return program
    program = Program(root=root, entry=entry)
    _load_files(program, path, entry, text)
    if program.main is not None and not program.has_errors:
        _resolve(program)
    return program


def _load_files(program: Program, path: Path, entry: str, text: str | None) -> None:
    """Load the entry file and, depth first, everything it imports.

    An explicit stack, not recursion: a chain of a thousand imports is as
    fine as a chain of two.  ``frames`` is the chain of files being imported,
    each with the imports it has left to follow.
    """
    entry_ir = _load_file(program, path, entry, text, at=None)
    if entry_ir is None:
        return
    frames: list[tuple[str, Iterator[ir.Import]]] = [(entry, iter(entry_ir.imports))]
    on_chain = {entry}
    while frames:
        name, imports = frames[-1]
        imp = next(imports, None)
        if imp is None:
            frames.pop()
            on_chain.discard(name)
            continue
        target = _import_target(program, imp)
        if target is None:
            continue
        if target in on_chain:
            chain = [n for n, _ in frames]
            cycle = _chain_text([*chain[chain.index(target):], target])
            program.diagnostics.append(
                error("RL122", f"import cycle: {cycle}", _import_span(program, imp),
                      label=f"`{target}` is already being imported",
                      help="move the shared definitions into a file that imports neither")
            )
            continue
        if target in program.files or target in program.sources:
            continue
        imported = _load_file(program, program.root / target, target, None, at=_import_span(program, imp))
        if imported is not None:
            frames.append((target, iter(imported.imports)))
            on_chain.add(target)


def _chain_text(files: list[str]) -> str:
    """`a -> b -> a`; a long chain keeps its ends and says how many files it skips."""
    if len(files) <= 8:
        return " -> ".join(files)
    return " -> ".join([*files[:3], f"... {len(files) - 5:,} more ...", *files[-2:]])


def _load_file(program: Program, path: Path, name: str, text: str | None, at: Span | None) -> ir.File | None:
    """Read, parse and lower one file; ``at`` is the import that asked for it (None for the entry file)."""
    data = b""
    try:
        if text is not None:
            source_text = text
        else:
            data = read_bytes(path)
            source_text = decode_source(data)
    except SourceError as exc:
        span = None
        message = exc.message
        if at is not None:
            # A problem with an imported file is reported at its import.
            span = at
            message = f"cannot import `{name}`: {exc.message}"
        else:
            program.io_error = True
            if exc.offset is not None:
                # Locate byte-level problems (binary, bad UTF-8) in the file itself.
                span = byte_span(name, data, exc.offset)
        program.diagnostics.append(error(exc.code, message, span, help=exc.help))
        return None
    src = SourceFile(name, source_text, origin=path.resolve() if text is None else None)
    program.sources[name] = src
    result = parse(src)
    program.diagnostics.extend(result.diagnostics)
    waivers, problems = read_waivers(src, result.comments, result.tree)
    program.waivers.extend(waivers)
    program.diagnostics.extend(problems)
    if result.tree is None:
        return None
    file_ir, diags = lower(result.tree, name)
    program.diagnostics.extend(diags)
    if file_ir is None:
        return None
    program.files[name] = file_ir
    return file_ir


def _narrow(program: Program, span: Span, pattern: str, group: int = 0) -> Span:
    """The part of `span` that matches `pattern`: point at the word, not the statement."""
    src = program.sources.get(span.file)
    if src is None or not 1 <= span.line <= src.line_count or not 1 <= span.end_line <= src.line_count:
        return span
    start = src.offset(span.line, span.col)
    end = src.offset(span.end_line, span.end_col)
    m = re.compile(pattern).search(src.text, start, max(start, end))
    if m is None or m.start(group) < 0:
        return span
    return src.span(m.start(group), m.end(group))


def _plain(names: list[str]) -> str:
    """`a, b, c` for a help line, ending in a count past two dozen names."""
    return word_list(names, ", ", quote=False)


def _word(name: str) -> str:
    return r"(?<![\w-])(" + re.escape(name) + r")(?![\w-])"


def _import_span(program: Program, imp: ir.Import) -> Span:
    return _narrow(program, imp.span, r'"(?:[^"\\\n]|\\.)*"')


def _import_target(program: Program, imp: ir.Import) -> str | None:
    raw = imp.path
    span = _import_span(program, imp)
    if not raw.strip():
        program.diagnostics.append(
            error("RL123", "import path is empty", span,
                  help="name a file relative to the repository root, e.g. `import \"policies/slo.rollout\"`")
        )
        return None
    pure = PurePosixPath(raw)
    if raw.startswith(("/", "~", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        program.diagnostics.append(
            error("RL120", f"import path `{raw}` is absolute", span,
                  help="imports are relative to the repository root, e.g. `import \"policies/slo.rollout\"`")
        )
        return None
    try:
        resolved = (program.root / pure).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        program.diagnostics.append(error("RL123", f"cannot import `{raw}`: {exc}", span))
        return None
    try:
        rel = resolved.relative_to(program.root)
    except ValueError:
        program.diagnostics.append(
            error("RL121", f"import `{raw}` leaves the repository", span,
                  notes=(f"the repository root is {program.root}",),
                  help="import only files inside the repository; copy shared policies into it")
        )
        return None
    try:
        is_dir, is_file = resolved.is_dir(), resolved.is_file()
    except (OSError, ValueError):
        is_dir = is_file = False
    if is_dir:
        program.diagnostics.append(
            error("RL123", f"import `{rel.as_posix()}` is a directory, not a rollout file", span,
                  help="import one `.rollout` file")
        )
        return None
    if not is_file:
        program.diagnostics.append(
            error("RL123", f"imported file `{rel.as_posix()}` does not exist", span,
                  help=_similar_file(program, rel) or "paths are relative to the repository root")
        )
        return None
    return rel.as_posix()


def _similar_file(program: Program, rel: PurePosixPath | Path) -> str:
    """A did-you-mean over the repository's rollout files, compared without `.rollout`."""
    try:
        found = itertools.islice((p for p in program.root.rglob("*.rollout") if ".git" not in p.parts), 2000)
        candidates = {p.relative_to(program.root).with_suffix("").as_posix(): p.relative_to(program.root).as_posix()
                      for p in found}
    except OSError:
        return ""
    wanted = PurePosixPath(rel.as_posix())
    stem = wanted.with_suffix("").as_posix() if wanted.suffix == ".rollout" else wanted.as_posix()
    hint = did_you_mean(stem, candidates)
    if not hint:
        return ""
    guess = hint[len("did you mean `"):-len("`?")]
    return f"did you mean `{candidates[guess]}`?"


def _resolve(program: Program) -> None:
    """Bring used gate sets into rollouts and check that names refer to something."""
    main = program.main
    assert main is not None
    visible: dict[str, ir.GateSet] = {}
    for f in program.files.values():
        for gs in f.gate_sets:
            first = visible.setdefault(gs.name, gs)
            if first is not gs and first.span.file != gs.span.file:  # within one file, lowering reports it
                program.diagnostics.append(
                    error("RL101", f"gate set `{gs.name}` is defined twice", gs.span,
                          notes=(f"first defined at {first.span}",),
                          help="rename one of them: `use gates` must know which one it means")
                )
    resolved: list[ir.Rollout] = []
    for rollout in main.rollouts:
        gates = list(rollout.gates)
        rules = list(rollout.rules)
        metrics = list(rollout.label_metrics)
        for use in rollout.uses:
            used = visible.get(use.name)
            if used is None:
                hint = did_you_mean(use.name, visible)
                program.diagnostics.append(
                    error("RL110", f"no gate set named `{use.name}`",
                          _narrow(program, use.span, r"gates\s+" + _word(use.name), 1),
                          help=hint or ("import the file that defines it: `import \"policies/slo.rollout\"`"
                                        if not visible else f"known gate sets: {_plain(sorted(visible))}"))
                )
                continue
            own = {g.name for g in gates}
            for g in used.gates:
                if g.name in own:
                    local = next(x.span for x in gates if x.name == g.name)
                    program.diagnostics.append(
                        error("RL101", f"gate `{g.name}` from gate set `{used.name}` clashes with a gate of the "
                              "same name", _narrow(program, local, r"gate\s+" + _word(g.name), 1),
                              notes=(f"gate set `{used.name}` defines it at {g.span}",),
                              help="rename the local gate, or drop it and use the shared one")
                    )
                    continue
                gates.append(g)
            rules.extend(used.rules)
            metrics.extend(m for m in used.label_metrics if m.name not in {x.name for x in metrics})
        updated = replace(rollout, gates=tuple(gates), rules=tuple(rules), label_metrics=tuple(metrics))
        _check_names(program, updated)
        resolved.append(updated)
    program.files[program.entry] = replace(main, rollouts=tuple(resolved))


def _check_names(program: Program, rollout: ir.Rollout) -> None:
    from rolloutlang.plan import POINT_NAMES, phase_names

    gate_names = [g.name for g in rollout.gates]
    metric_names = [m.name for m in rollout.label_metrics]
    stage_names = phase_names(rollout)
    refs = _PhaseReferences(program, rollout, stage_names)
    for rule in rollout.rules:
        for name, span in zip(rule.gates, rule.gate_spans, strict=True):
            if name not in gate_names:
                hint = did_you_mean(name, gate_names)
                program.diagnostics.append(
                    error("RL111", f"rule names unknown gate `{name}`", span,
                          help=hint or (f"gates here: {_plain(gate_names)}" if gate_names else
                                        f"define it with `gate {name}: ...`"))
                )
    queries = [q.name for q in rollout.metrics_source.queries] if rollout.metrics_source else []
    for gate in rollout.gates:
        if isinstance(gate, ir.BusinessGate) and gate.metric not in metric_names:
            hint = did_you_mean(gate.metric, metric_names)
            program.diagnostics.append(
                error("RL112", f"gate `{gate.name}` measures unknown metric `{gate.metric}`", gate.metric_span,
                      help=hint or f"declare it: `metric {gate.metric}: binary, baseline 4.2%, "
                                   "labels lognormal(median 2h, p95 8h)`")
            )
        if isinstance(gate, ir.SloGate) and gate.signal == "query" and gate.query not in queries:
            hint = did_you_mean(gate.query or "", queries)
            program.diagnostics.append(
                error("RL113", f"gate `{gate.name}` uses unknown query `{gate.query}`",
                      _narrow(program, gate.span, r"query\s+" + _word(gate.query or ""), 1),
                      help=hint or "define it in the metrics block: `metrics prometheus \"URL\" "
                                   f"{{ query {gate.query} \"<promql>\" }}`")
            )
        if gate.from_stage is not None:
            refs.check(gate.from_stage, _narrow(program, gate.span, r"from\s+" + _word(gate.from_stage), 1),
                       f"gate `{gate.name}`", "starts from")
    _check_effect_names(program, rollout, metric_names, gate_names)
    for approval in rollout.approvals:
        allowed = [*POINT_NAMES, *stage_names]
        where = _narrow(program, approval.span, r"approve\s+" + _word(approval.what), 1)
        if approval.what not in allowed:
            hint = did_you_mean(approval.what, allowed)
            program.diagnostics.append(
                error("RL115", f"cannot approve `{approval.what}`", where,
                      help=hint or "approve `promotion`, `rollback` or a phase by name: "
                                   + _plain(stage_names or ["mpr"]))
            )
        else:
            refs.check(approval.what, where, "an approval", "waits at", extra=POINT_NAMES)
    for hook in rollout.pipeline:
        if hook.phase is not None:
            refs.check(hook.phase, hook.phase_span or hook.span, f"hook `{hook.name}`", "runs at")
    for consumer in rollout.consumers:
        if consumer.switch is not None and consumer.switch != "promotion":
            refs.check(consumer.switch, consumer.switch_span or consumer.span, f"consumer `{consumer.name}`",
                       "switches at", extra=("promotion",))
    if isinstance(rollout.strategy, ir.Canary):
        for stage in rollout.strategy.stages:
            if stage.name in (*_PHASE_WORDS, *POINT_NAMES):
                program.diagnostics.append(error(
                    "RL140", f"stage `{stage.name}` takes the name of {_phase_word_meaning(stage.name)}",
                    _narrow(program, stage.span, _word(stage.name), 1), label="a reserved name",
                    help=f"name the stage for what it is, e.g. `{stage.name}-stage: ...`: `{stage.name}` in "
                         "`from`, `approve` and hooks always means the phase"))


_PHASE_WORDS = ("shadow", "preview", "rolling", "bake", "holdout")
_ABSENT_PHASE_HELP = {
    "shadow": "add a shadow phase (`shadow 100% for 24h`); a shadow `alongside canary` runs during the stages and "
              "has no phase of its own",
    "preview": "a preview is the first phase of `blue-green { preview for 2h }`",
    "rolling": "`rolling` is the phase of a rolling update",
    "bake": "add a bake after promotion: `bake for 2h`",
    "holdout": "add a holdout after promotion: `holdout 1% on stable for 14d`",
}


def _phase_word_meaning(word: str) -> str:
    return {"promotion": "the promotion", "rollback": "the rollback"}.get(word, f"the {word} phase")


@dataclass
class _PhaseReferences:
    """Checks the names that point at a phase of the plan: `from`, `approve`, hooks, consumer switches."""

    program: Program
    rollout: ir.Rollout
    names: list[str]

    def check(self, name: str, span: Span, who: str, verb: str, extra: tuple[str, ...] = ()) -> None:
        """``who`` ``verb`` ``name``: `gate x` `starts from` `mpr`."""
        what = f"{who} {verb}"
        if name in self.names:
            stage = self._stage(name)
            if stage is not None and stage.auto_name:
                self.program.diagnostics.append(warning(
                    "RL141", f"{what} `{name}`, a name the stage has only by its position", span,
                    label="means another stage once one is added before it",
                    help=f"name the stage where it is written (`ramp: {stage.weight_percent:g}% ...`) and write "
                         "that name here"))
            return
        if name in extra:
            return
        hint = did_you_mean(name, [*self.names, *extra])
        absent = _ABSENT_PHASE_HELP.get(name)
        if not hint and absent is None:
            # `from shadw` in a rollout without a shadow: the word it means, and how to add that phase
            import difflib  # only when a name is wrong

            meant = difflib.get_close_matches(name, _PHASE_WORDS, n=1, cutoff=0.6)
            if meant:
                hint = f"did you mean `{meant[0]}`? " + (f"this rollout has no {meant[0]} phase: "
                                                         + _ABSENT_PHASE_HELP[meant[0]])
        if name == "shadow" and self.rollout.shadow is not None and self.rollout.shadow.alongside_canary:
            message = f"{what} `shadow`, but the shadow has no phase of its own: it runs alongside the canary"
            absent = "name the stage to start from; the shadow mirrors during the stages below its `until` weight"
        elif absent is not None:
            message = f"{what} `{name}`, but this rollout has no {name} phase"
        else:
            noun = "stage" if isinstance(self.rollout.strategy, ir.Canary) else "phase"
            message = f"{what} unknown {noun} `{name}`"
        phases = f"phases: {_plain(self.names)}" if self.names else "this rollout has no phases yet"
        self.program.diagnostics.append(
            error("RL114", message, span, help=hint or absent or phases))

    def _stage(self, name: str) -> ir.CanaryStage | None:
        if isinstance(self.rollout.strategy, ir.Canary):
            return next((s for s in self.rollout.strategy.stages if s.name == name), None)
        return None


def _check_effect_names(program: Program, rollout: ir.Rollout, metric_names: list[str], gate_names: list[str]) -> None:
    """RL130: a scenario effect names a metric, a gate, or `latency`, `errors` or `drift`."""
    from rolloutlang.scenarios import KEYWORDS, names_known, target_span

    for scenario in rollout.scenarios:
        for effect in scenario.effects:
            if names_known(rollout, effect):
                continue
            if effect.kind == "labels":
                hint = did_you_mean(effect.target, metric_names)
                program.diagnostics.append(error(
                    "RL130", f"scenario `{scenario.name}` changes the labels of unknown metric `{effect.target}`",
                    _narrow(program, effect.span, r"labels\s+" + _word(effect.target), 1),
                    help=hint or (f"metrics here: {', '.join(metric_names)}" if metric_names
                                  else "declare it: `metric ctr: binary, baseline 4.2%`")))
                continue
            known = [*metric_names, *gate_names, *KEYWORDS]
            hint = did_you_mean(effect.target, known)
            program.diagnostics.append(error(
                "RL130", f"scenario `{scenario.name}` changes unknown `{effect.target}`", target_span(effect),
                help=hint or "an effect names a label metric, a gate, or `latency`, `errors` or `drift`"))


def load_text(text: str, name: str = "<input>", root: Path | None = None) -> Program:
    """Load source given as text (tests, stdin)."""
    return load(Path(name), root or Path.cwd(), text=text)


def load_bytes(data: bytes, name: str = "<input>", root: Path | None = None) -> Program:
    try:
        text = decode_source(data)
    except SourceError as exc:
        program = Program(root=(root or Path.cwd()).resolve(), entry=name, io_error=True)
        program.diagnostics.append(error(exc.code, exc.message, None, help=exc.help))
        return program
    return load_text(text, name, root)
