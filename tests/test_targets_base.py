"""The machinery every target shares: the quoting filter, the template guard, names, the registry, `rollout compile`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import jinja2
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rolloutlang import targets
from rolloutlang.outputs import GENERATED_MARKER
from rolloutlang.targets.base import (
    CompileInput,
    Output,
    Target,
    TargetResult,
    TemplateValueError,
    dns_label,
    header,
    yaml_scalar,
)
from tests.helpers import RANKER_SPEC, run_cli

HOSTILE = [
    "plain",
    'quote " and \\ backslash',
    "colon: value",
    "# not a comment",
    "line\nbreak: injected",
    "x\r\nreplicas: 999",
    "{{ args.x }}",
    "${{ github.event.issue.title }}",
    "$(rm -rf /) `id`",
    "*anchor",
    "&anchor",
    "!!python/object:os.system",
    "- item",
    "? key",
    "@at",
    "%percent",
    "yes",
    "no",
    "null",
    "~",
    "0x1F",
    "1e3",
    "",
    " leading and trailing ",
    "tab\there",
    "unicode: ünïcødé ✓ 模型",
    "line\u2028separator\u2029paragraph\u0085next",
    "\ufeffbom",
    "nul\x00byte",
    "x" * 10_000,
]


def _round_trip(value: object) -> object:
    text = f"key: {yaml_scalar(value)}\nafter: 1\n"
    return yaml.safe_load(text)


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings_come_back_as_the_same_string(value: str) -> None:
    assert _round_trip(value) == {"key": value, "after": 1}


@given(st.text())
def test_any_string_round_trips(value: str) -> None:
    assert _round_trip(value) == {"key": value, "after": 1}


@pytest.mark.parametrize("value", [0, 1, -7, 2**40, 0.5, 1e-05, 123456.789, 1e20, True, False, None])
def test_scalars_round_trip_with_their_type(value: object) -> None:
    assert _round_trip(value) == {"key": value, "after": 1}


def test_small_floats_are_written_positionally() -> None:
    assert yaml_scalar(1e-05) == "0.00001"
    assert yaml_scalar(2.0) == "2"


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), object(), [1], {"a": 1}])
def test_values_no_scalar_can_hold_are_refused(value: object) -> None:
    with pytest.raises(TemplateValueError):
        yaml_scalar(value)


def _env() -> jinja2.Environment:
    from rolloutlang.targets.base import environment

    return environment("test-only")


def test_a_template_cannot_print_a_value_without_the_filter() -> None:
    env = _env()
    with pytest.raises(TemplateValueError, match="without the `q` filter"):
        env.from_string("name: {{ name }}\n").render(name="x\ninjected: true")
    out = env.from_string("name: {{ name | q }}\n").render(name="x\ninjected: true")
    assert yaml.safe_load(out) == {"name": "x\ninjected: true"}


def test_undefined_values_fail_loudly() -> None:
    with pytest.raises(jinja2.UndefinedError):
        _env().from_string("name: {{ missing | q }}\n").render()


def test_header_names_the_source_and_cannot_be_broken_by_the_path() -> None:
    text = header("specs/evil\nkind: Secret.rollout")
    assert text.count("\n") == 1 and text.startswith(f"# {GENERATED_MARKER} from ")
    assert yaml.safe_load(text + "a: 1\n") == {"a": 1}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("ranker-v2",), "ranker-v2"),
        (("Ranker_V2", "canary"), "ranker-v2-canary"),
        (("--x--",), "x"),
        (("",), "x"),
    ],
)
def test_dns_labels(parts: tuple[str, ...], expected: str) -> None:
    assert dns_label(*parts) == expected


def test_long_dns_labels_stay_distinct_and_within_the_limit() -> None:
    a, b = dns_label("a" * 100, "one"), dns_label("a" * 100, "two")
    assert a != b and len(a) <= 63 and len(b) <= 63
    assert a == dns_label("a" * 100, "one")


# -- the registry and `rollout compile` --------------------------------------------------------------


class _EchoTarget(Target):
    """A target for these tests: one file per rollout naming it, and a refusal when asked."""

    name: ClassVar[str] = "echo"
    summary: ClassVar[str] = "test target"

    def compile(self, unit: CompileInput) -> TargetResult:
        text = header(unit.source_path) + f"name: {yaml_scalar(unit.rollout.name)}\n"
        return TargetResult(outputs=[Output(f"{unit.rollout.name}/echo.yaml", text)])


@pytest.fixture
def echo_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(targets.TARGETS, "echo", f"{__name__}:_EchoTarget")


def test_unknown_targets_get_a_did_you_mean(echo_target: None) -> None:
    with pytest.raises(targets.UnknownTarget, match="did you mean `echo`"):
        targets.resolve(["ecco"])
    assert targets.resolve(["all"]) == targets.target_names()


def _spec(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    spec = tmp_path / "ranker.rollout"
    spec.write_text(RANKER_SPEC)
    return spec


def test_compile_prints_to_stdout_without_a_folder(tmp_path: Path, echo_target: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["compile", str(_spec(tmp_path)), "--target", "echo"], capsys)
    assert code == 0, err
    assert "# file: ranker-v2/echo.yaml" in out and 'name: "ranker-v2"' in out


def test_compile_writes_refuses_user_files_and_checks(tmp_path: Path, echo_target: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path)
    out_dir = tmp_path / "deploy"
    code, _, err = run_cli(["compile", str(spec), "-t", "echo", "-o", str(out_dir)], capsys)
    assert code == 0, err
    written = out_dir / "ranker-v2" / "echo.yaml"
    first = written.read_bytes()
    assert first.startswith(b"# Code generated by rolloutlang from ranker.rollout. DO NOT EDIT.\n")

    # Same input, same bytes; --check finds nothing to do.
    assert run_cli(["compile", str(spec), "-t", "echo", "-o", str(out_dir)], capsys)[0] == 0
    assert written.read_bytes() == first
    assert run_cli(["compile", "--check", str(spec), "-t", "echo", "-o", str(out_dir)], capsys)[0] == 0

    # A file a person wrote is never overwritten without --force.
    written.write_text("mine: true\n")
    code, _, err = run_cli(["compile", str(spec), "-t", "echo", "-o", str(out_dir)], capsys)
    assert code == 2 and "RL702" in err and "--force" in err
    assert written.read_text() == "mine: true\n"
    assert run_cli(["compile", "--check", str(spec), "-t", "echo", "-o", str(out_dir)], capsys)[0] == 2
    assert run_cli(["compile", "--force", str(spec), "-t", "echo", "-o", str(out_dir)], capsys)[0] == 0
    assert written.read_bytes() == first


def test_compile_writes_nothing_when_the_spec_has_errors(tmp_path: Path, echo_target: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path)
    spec.write_text(RANKER_SPEC.replace("gate latency:", "gaet latency:"))
    out_dir = tmp_path / "deploy"
    code, out, err = run_cli(["compile", str(spec), "-t", "echo", "-o", str(out_dir)], capsys)
    assert code == 1 and "RL014" in err and out == ""
    assert not out_dir.exists()


def test_compile_with_an_unknown_target_is_a_usage_error(tmp_path: Path, echo_target: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["compile", str(_spec(tmp_path)), "--target", "ecco"], capsys)
    assert code == 2 and "did you mean `echo`" in err


def test_groups_expand_in_registry_order() -> None:
    assert targets.resolve(["cluster"]) == ["argo", "istio"]
    assert targets.resolve(["github", "ci", "istio"]) == ["istio", "gitlab", "github"]
    assert targets.resolve(["all"]) == ["argo", "istio", "gitlab", "github"]
