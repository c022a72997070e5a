"""The `rollout` command line: help, exit codes, output formats, and a fast, light start."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rolloutlang import __version__
from rolloutlang.cli import main
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RANKER = EXAMPLES / "ranker-v2.rollout"
EMBEDDER = EXAMPLES / "embedder-v3.rollout"
VERBS = ("check", "fmt", "graph", "explain", "compile", "ci")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

BROKEN = "rollout r {\n  service ranker\n  traffic 12000\n}\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty repository as the working directory."""
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- help and version ------------------------------------------------------------------------------


def test_top_level_help_lists_the_verbs_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    assert "Examples:" in out and "rollout check examples/ranker-v2.rollout" in out
    for verb in VERBS:
        assert re.search(rf"^\s+{verb}\s", out, re.M), verb


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli([verb, "--help"], capsys)
    assert code == 0, err
    assert f"Usage: rollout {verb}" in out
    assert re.search(r"^\s+Examples?:", out, re.M), out
    assert re.search(rf"^\s+rollout {verb} \S", out, re.M), out


def test_short_help_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["check", "-h"], capsys)
    assert code == 0 and "Usage: rollout check" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0
    assert __version__ in out and "rollout" in out


def test_unknown_verb_suggests_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["chek", str(RANKER)], capsys)
    assert code == 2
    assert "no such command `chek`" in err
    assert "did you mean `check`?" in err.lower()
    assert "Traceback" not in out + err


def test_unknown_verb_without_a_close_match(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["zzzzzz"], capsys)
    assert code == 2 and "no such command `zzzzzz`" in err and "did you mean" not in err.lower()


def test_bad_option_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["check", "--format", "yaml", str(RANKER)], capsys)
    assert code == 2 and "'yaml' is not one of" in err


def test_check_without_files_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["check"], capsys)
    assert code == 2 and "Missing argument" in err


# -- exit codes --------------------------------------------------------------------------------------


def test_check_example_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["check", "--root", str(ROOT), str(RANKER)], capsys)
    assert code == 0, err
    assert "error[" not in err


def test_check_findings_exit_one(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "broken.rollout").write_text(BROKEN)
    code, _, err = run_cli(["check", "broken.rollout"], capsys)
    assert code == 1
    assert "error[RL201]" in err and "broken.rollout:3:11" in err
    assert err.rstrip().endswith("1 error")


def test_check_missing_file_exits_two(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["check", "nope.rollout"], capsys)
    assert code == 2
    assert "error[RL002]" in err and "no such file `nope.rollout`" in err


def test_io_problem_wins_over_findings(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "broken.rollout").write_text(BROKEN)
    code, _, err = run_cli(["check", "broken.rollout", "nope.rollout"], capsys)
    assert code == 2
    assert "error[RL201]" in err and "error[RL002]" in err


@pytest.mark.parametrize("verb", ["fmt", "graph", "explain"])
def test_other_verbs_on_bad_input(verb: str, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every verb reads files the same way: findings exit 1, I/O problems exit 2, never a traceback."""
    (repo / "broken.rollout").write_text(BROKEN)
    (repo / "binary.rollout").write_bytes(b"\x00\x01\x02")
    for name, code, expected in [("broken.rollout", 1, "error[RL201]"), ("nope.rollout", 2, "error[RL002]"),
                                 ("binary.rollout", 2, "error[RL006]")]:
        got, out, err = run_cli([verb, "--no-color", name], capsys)
        assert (got, expected in err) == (code, True), (name, err)
        assert "Traceback" not in out + err
    assert (repo / "broken.rollout").read_text() == BROKEN, "a file with errors is never rewritten"


def test_absurd_path_is_an_io_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["check", "x" * 5000 + ".rollout"], capsys)
    assert code == 2
    assert "error[RL003]" in err and "file name too long" in err and "Traceback" not in out + err
    assert len(err.splitlines()[0]) < 200, "the path is shortened in the message"


# -- output formats ------------------------------------------------------------------------------------


def test_json_output_is_a_versioned_envelope(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "broken.rollout").write_text(BROKEN)
    code, out, err = run_cli(["check", "--format", "json", "broken.rollout"], capsys)
    assert code == 1 and err == ""
    doc = json.loads(out)
    assert doc["format_version"] == 1
    assert (doc["valid"], doc["error_count"], doc["warning_count"]) == (False, 1, 0)
    (diagnostic,) = doc["diagnostics"]
    assert diagnostic["code"] == "RL201" and diagnostic["severity"] == "error"
    assert diagnostic["range"] == {"file": "broken.rollout", "start": {"line": 3, "column": 11},
                                   "end": {"line": 3, "column": 16}}
    assert diagnostic["help"] == "write `traffic 12000 rps`"


def test_json_output_on_a_clean_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["check", "--format", "json", "--root", str(ROOT), str(RANKER)], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["valid"] is True and doc["error_count"] == 0
    assert all({"code", "severity", "message"} <= set(d) for d in doc["diagnostics"])


def test_json_output_for_an_io_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["check", "--format", "json", "nope.rollout"], capsys)
    assert code == 2
    assert [d["code"] for d in json.loads(out)["diagnostics"]] == ["RL002"]


def _warning_only_spec(repo: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A spec that today's checks find warnings in, and no errors; skips if none is found."""
    text = EMBEDDER.read_text(encoding="utf-8")
    variants = {
        "only infrastructure gates": text.replace(
            "  gate embedding: mmd(embedding) < 0.05, vs training, every 30m, min samples 2000\n", ""
        ).replace('  on embedding fail:       rollback after 30m, notify "#search-ml-oncall"\n', "").replace(
            "  scenario bad-vectors { embedding 0.2 after 20m }\n", ""),
        "no signature": re.sub(r"  signature stable \{.*?\n  \}\n  signature candidate \{.*?\n  \}\n", "", text,
                               flags=re.S),
    }
    for name, variant in variants.items():
        path = repo / f"{name.replace(' ', '-')}.rollout"
        path.write_text(variant, encoding="utf-8")
        code, out, _ = run_cli(["check", "--format", "json", path.name], capsys)
        doc = json.loads(out)
        if code == 0 and doc["warning_count"] > 0 and doc["error_count"] == 0:
            return path
    pytest.skip("no spec here gives warnings without errors: the checks' warnings changed; "
                "add a variant that triggers one of them")


def test_strict_turns_warnings_into_errors(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _warning_only_spec(repo, capsys)
    code, out, _ = run_cli(["check", "--format", "json", path.name], capsys)
    lenient = json.loads(out)
    assert code == 0 and lenient["valid"] is True
    # a finding waived in the spec (`# waive`) is listed, marked suppressed, and counts as neither
    warned = [d["code"] for d in lenient["diagnostics"] if d["severity"] == "warning" and "suppressed" not in d]
    assert warned

    code, out, _ = run_cli(["check", "--strict", "--format", "json", path.name], capsys)
    strict = json.loads(out)
    assert code == 1 and strict["valid"] is False
    assert strict["warning_count"] == 0 and strict["error_count"] == len(warned)
    assert [d["code"] for d in strict["diagnostics"] if d["severity"] == "error" and "suppressed" not in d] == warned

    code, _, err = run_cli(["check", "--strict", "--no-color", path.name], capsys)
    assert code == 1 and f"error[{warned[0]}]" in err


def test_dump_ir_prints_json_with_the_rollout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["check", "--dump-ir", "--root", str(ROOT), str(RANKER)], capsys)
    assert code == 0
    ir = json.loads(out)
    assert ir["rollouts"][0]["name"] == "ranker-v2"
    assert ir["path"] == "examples/ranker-v2.rollout"


def test_stdin(repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BROKEN.encode())))
    code, _, err = run_cli(["check", "-"], capsys)
    assert code == 1
    assert "<stdin>:3:11" in err and "traffic 12000" in err


def test_stdin_clean(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(RANKER.read_bytes())))
    code, _, err = run_cli(["check", "--root", str(ROOT), "-"], capsys)
    assert code == 0, err


def test_several_files_at_once(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "a.rollout").write_text(BROKEN)
    (repo / "b.rollout").write_text(BROKEN.replace("traffic 12000", "canary { 150% for 1h }"))
    code, out, _ = run_cli(["check", "--format", "json", "a.rollout", "b.rollout"], capsys)
    assert code == 1
    found = [(d["range"]["file"], d["code"]) for d in json.loads(out)["diagnostics"]]
    assert found == [("a.rollout", "RL201"), ("b.rollout", "RL201")]


def test_several_files_clean_and_broken(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "broken.rollout").write_text(BROKEN)
    code, _, err = run_cli(["check", "--root", str(ROOT), str(RANKER), str(repo / "broken.rollout")], capsys)
    assert code == 1 and err.count("error[") == 1


def test_no_color_has_no_ansi(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "broken.rollout").write_text(BROKEN)
    code, _, plain = run_cli(["check", "--no-color", "broken.rollout"], capsys)
    assert code == 1 and "error[RL201]" in plain
    assert not ANSI.search(plain) and "\x1b" not in plain


def test_colour_rendering_is_only_paint() -> None:
    """The coloured text is the plain text plus escape codes, nothing else."""
    from rolloutlang.diagnostics import render_text
    from rolloutlang.loader import load_text

    program = load_text(BROKEN, "broken.rollout", ROOT)
    (diagnostic,) = program.diagnostics
    coloured = render_text(diagnostic, program.sources, colour=True)
    plain = render_text(diagnostic, program.sources, colour=False)
    assert ANSI.search(coloured) and not ANSI.search(plain)
    assert ANSI.sub("", coloured) == plain


def test_color_flag_forces_colour_in_a_pipe(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "broken.rollout").write_text(BROKEN)
    _, _, coloured = run_cli(["check", "--color", "broken.rollout"], capsys)
    assert ANSI.search(coloured)


def test_text_output_is_rustc_like(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "broken.rollout").write_text(BROKEN)
    _, _, err = run_cli(["check", "--no-color", "broken.rollout"], capsys)
    assert err.splitlines()[:7] == [
        "error[RL201]: missing unit: a request rate needs `rps`, `rpm` or `rph`",
        " --> broken.rollout:3:11",
        "  |",
        "3 |   traffic 12000",
        "  |           ^^^^^",
        "  |",
        "  = help: write `traffic 12000 rps`",
    ]


def test_control_characters_in_the_source_are_not_echoed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An escape sequence in a spec must not reach the terminal raw, even on a TTY."""
    from rolloutlang.diagnostics import render_text
    from rolloutlang.loader import load_text

    evil = 'rollout r {\n  owner "\x1b[2J\x1b[31mhi" frob\n}\n'
    program = load_text(evil, "evil.rollout", ROOT)
    assert program.diagnostics
    for diagnostic in program.diagnostics:
        assert "\x1b" not in render_text(diagnostic, program.sources, colour=False)
    (repo / "evil.rollout").write_text(evil)
    code, _, err = run_cli(["check", "--no-color", "evil.rollout"], capsys)
    assert code == 1 and "\x1b" not in err


def test_carets_line_up_under_tabs() -> None:
    from rolloutlang.diagnostics import render_text
    from rolloutlang.loader import load_text

    program = load_text("rollout r {\n\ttraffic\t12000\n}\n", "tabs.rollout", ROOT)
    (diagnostic,) = program.diagnostics
    lines = render_text(diagnostic, program.sources).splitlines()
    source, marker = lines[3], lines[4]
    assert source == "2 | \ttraffic\t12000"
    assert marker == "  | \t       \t^^^^^"


@pytest.mark.parametrize("before", [0, 10, 5_000, 100_000])
def test_a_long_line_is_cut_around_the_caret(before: int) -> None:
    """A 1 MB one-line file with errors prints a window of the line, never the whole of it."""
    from rolloutlang.diagnostics import SNIPPET_WIDTH, render_text
    from rolloutlang.loader import load_text

    text = "rollout r { owner " + '"' + "x" * before + '"' + " traffic 12000 " + "# " + "y" * 100_000 + "\n}\n"
    program = load_text(text, "long.rollout", ROOT)
    (diagnostic,) = program.diagnostics
    lines = render_text(diagnostic, program.sources).splitlines()
    source, marker = lines[3], lines[4]
    assert len(source) <= SNIPPET_WIDTH + 12
    # The caret is under `12000` in the window shown.
    start = marker.index("^")
    assert source[start:start + 5] == "12000" and marker[start:] == "^^^^^"
    assert source.endswith("...") and (before < 30 or "| ..." in source)


# -- internal errors ---------------------------------------------------------------------------------


def test_internal_error_is_rl000_without_traceback(repo: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_load(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("rolloutlang.loader.load", broken_load)
    (repo / "a.rollout").write_text(BROKEN)
    code, out, err = run_cli(["check", "a.rollout"], capsys)
    assert code == 2
    assert err.startswith("error[RL000]: internal error: RuntimeError: simulated bug")
    assert "--debug" in err
    assert "Traceback" not in out + err


def test_debug_shows_the_traceback(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_load(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("rolloutlang.loader.load", broken_load)
    (repo / "a.rollout").write_text(BROKEN)
    with pytest.raises(RuntimeError, match="simulated bug"):
        main(["--debug", "check", "a.rollout"])


# -- a light start -------------------------------------------------------------------------------------

PLAIN = """\
rollout plain {
  service ranker
  canary {
    5% for 1h
    100%
  }
  gate latency: p99 latency < 250ms every 5m
  gate drift:   psi(scores) < 0.2 every 1h
  on latency fail: rollback now
  on drift fail:   pause
}
"""

PROBE = """\
import sys
from rolloutlang.cli import main
try:
    main(["check", "--no-color", sys.argv[1]])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in ("scipy", "simpy", "numpy", "networkx", "jinja2", "pydantic") if m in sys.modules)
checked = "rolloutlang.checks" in sys.modules
print("RESULT", code, checked, ",".join(heavy) or "-")
"""


def _probe(path: Path, cwd: Path) -> tuple[int, bool, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", PROBE, str(path)], cwd=cwd, capture_output=True, text=True,
                            env=env, timeout=120)
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("RESULT"))
    _, code, checked, heavy = line.split()
    return int(code), checked == "True", [] if heavy == "-" else heavy.split(",")


def test_check_without_business_gates_imports_no_scipy_simpy_numpy_pydantic(repo: Path) -> None:
    (repo / "plain.rollout").write_text(PLAIN)
    code, checked, heavy = _probe(repo / "plain.rollout", repo)
    assert code in (0, 1)
    assert checked, "the semantic checks did not run, so this test would prove nothing"
    assert heavy == []


def test_check_on_the_ranker_imports_no_simpy() -> None:
    """ranker-v2 has a business gate: the power check loads numpy, never scipy, the simulator, networkx or pydantic."""
    code, checked, heavy = _probe(RANKER, ROOT)
    assert code == 0 and checked
    assert heavy == ["numpy"]


def test_a_clean_check_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    # A newcomer running the README's first command sees that something happened.
    code, out, err = run_cli(["check", "--root", str(ROOT), str(ROOT / "examples" / "ranker-v2.rollout")], capsys)
    assert (code, out, err) == (0, "", "no problems in 1 file\n")


# -- a cap on how many findings one run shows ------------------------------------------------------------

MANY_ERRORS = "rollout r {\n" + "".join(f"  gate g{i}: p99 latency < {i}\n" for i in range(1, 13)) + "}\n"


def test_findings_past_the_cap_are_counted_not_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text(MANY_ERRORS)
    code, _, err = run_cli(["check", "--max-diagnostics", "5", "--root", str(tmp_path), str(spec)], capsys)
    assert code == 1
    assert err.count("error[RL201]") == 5
    assert "... 7 errors more not shown (`--max-diagnostics 0` shows all)" in err
    assert err.rstrip().endswith("12 errors")
    code, _, err = run_cli(["check", "--max-diagnostics", "0", "--root", str(tmp_path), str(spec)], capsys)
    assert code == 1 and err.count("error[RL201]") == 12 and "not shown" not in err


def test_the_cap_in_json_and_sarif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text(MANY_ERRORS)
    _, out, _ = run_cli(["check", "--format", "json", "--max-diagnostics", "5", str(spec)], capsys)
    doc = json.loads(out)
    assert (len(doc["diagnostics"]), doc["error_count"], doc["omitted_count"]) == (5, 12, 7)
    _, out, _ = run_cli(["check", "--format", "sarif", "--max-diagnostics", "5", str(spec)], capsys)
    run = json.loads(out)["runs"][0]
    assert (len(run["results"]), run["properties"]) == (5, {"omittedResultCount": 7})


def test_the_default_cap_is_two_hundred(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.rollout"
    spec.write_text("".join(f"rollout r{i} {{ service s }}\n" for i in range(150)))
    code, out, _ = run_cli(["check", "--format", "json", str(spec)], capsys)
    doc = json.loads(out)
    assert code == 1 and len(doc["diagnostics"]) == 200
    assert doc["omitted_count"] == doc["warning_count"] + doc["error_count"] - 200 > 0


def test_a_list_of_thousands_of_names_ends_in_a_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rolloutlang.diagnostics import word_list

    assert word_list(["a", "b", "c"]) == "`a`, `b` or `c`"
    assert word_list([f"g{i}" for i in range(30)], " and ").endswith("`g22` and 7 more")
    spec = tmp_path / "spec.rollout"
    gates = "".join(f"  gate g{i}: p99 latency < 250ms every 5m\n" for i in range(3_000))
    spec.write_text("rollout x {\n  canary {\n    5% for 1h\n    100%\n  }\n" + gates + "}\n")
    code, _, err = run_cli(["check", "--max-diagnostics", "0", "--root", str(tmp_path), str(spec)], capsys)
    assert code == 1 and "RL610" in err and "RL510" in err and "2,977 more" in err
    assert max(len(line) for line in err.splitlines()) < 1_000


# -- where text diagnostics say a file is ------------------------------------------------------------


def test_text_names_files_from_the_current_folder_json_from_the_root(
        repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An editor or terminal opens `path:line:col` from where `rollout` ran; JSON keeps the stable root path."""
    (repo / "specs").mkdir()
    (repo / "elsewhere").mkdir()
    (repo / "specs" / "broken.rollout").write_text("rollout r {\n  gate\n}\n")
    monkeypatch.chdir(repo / "specs")
    _, _, err = run_cli(["check", "--no-color", "broken.rollout"], capsys)
    assert "--> broken.rollout:" in err
    monkeypatch.chdir(repo / "elsewhere")
    _, _, err = run_cli(["check", "--no-color", "../specs/broken.rollout"], capsys)
    assert "--> ../specs/broken.rollout:" in err
    _, out, _ = run_cli(["check", "--format", "json", "../specs/broken.rollout"], capsys)
    assert {d["range"]["file"] for d in json.loads(out)["diagnostics"]} == {"specs/broken.rollout"}
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"rollout r {\n  gate\n}\n")))
    _, _, err = run_cli(["check", "--no-color", "-"], capsys)
    assert "--> <stdin>:" in err
