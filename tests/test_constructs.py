"""Every construct of the language, parsed and lowered, with asserts on the IR it becomes.

One small spec per grammar rule and per option of the lowering's tables: the
values land in the IR in canonical units (seconds, bytes, fractions, rps), an
omitted option takes its documented default, and a wrong word gets its code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rolloutlang import ir
from rolloutlang.diagnostics import Diagnostic
from rolloutlang.loader import Program, load, load_text
from rolloutlang.lowering import BUSINESS_OPTIONS, DRIFT_OPTIONS, SLO_OPTIONS, SRM_OPTIONS, OptionSpec

ROOT = Path(__file__).resolve().parent.parent

DIGEST_A = "sha256:" + "5f1c0e" + "a" * 58
DIGEST_B = "sha256:" + "9ab04d" + "b" * 58


def _load(body: str) -> Program:
    return load_text(f"rollout r {{\n{body}\n}}\n", "t.rollout", root=ROOT)


def ok(body: str) -> ir.Rollout:
    """Lower a rollout body that must load cleanly; return the resolved rollout."""
    program = _load(body)
    assert [f"{d.code}: {d.message}" for d in program.diagnostics] == []
    (rollout,) = program.rollouts()
    return rollout


def errors(body: str) -> list[Diagnostic]:
    program = _load(body)
    found = [d for d in program.diagnostics if d.is_error]
    assert found, "expected an error"
    return found


def codes(body: str) -> list[str]:
    return [d.code for d in errors(body)]


# -- lexical ---------------------------------------------------------------------------


def test_newlines_and_comments_carry_no_meaning() -> None:
    spread = ok("service # the k8s service\n  ranker\nshadow\n 10%\n   for   # comment\n 1h")
    packed = ok("service ranker shadow 10% for 1h")
    assert spread.service == packed.service == "ranker"
    assert spread.shadow is not None and packed.shadow is not None
    assert spread.shadow.duration_s == packed.shadow.duration_s == 3600.0


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"#recs-ml-oncall"', "#recs-ml-oncall"),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"a\\b"', "a\\b"),
        (r'"line\nnext\ttab"', "line\nnext\ttab"),
    ],
)
def test_string_escapes(literal: str, value: str) -> None:
    assert ok(f"owner {literal}").owner == value


def test_unknown_escape_is_rl205() -> None:
    (diag,) = errors(r'owner "a\x"')
    assert diag.code == "RL205" and "\\x" in diag.message


def test_keywords_are_contextual() -> None:
    rollout = ok("gate canary: error rate < 1%\non canary fail: pause")
    assert rollout.gates[0].name == "canary" and rollout.rules[0].gates == ("canary",)


def test_compound_durations_are_one_token_and_an_error() -> None:
    assert codes("serving { warmup 1h30m }") == ["RL201"]
    assert codes("serving { warmup 1h 30m }") == ["RL010"]


# -- identity ------------------------------------------------------------------------


def test_service_namespace_owner() -> None:
    rollout = ok('service ranker\nnamespace recs\nowner "#recs"')
    assert (rollout.name, rollout.service, rollout.namespace, rollout.owner) == ("r", "ranker", "recs", "#recs")


@pytest.mark.parametrize("statement", ["service a", "namespace a", 'owner "a"', "traffic 10 rps",
                                       "shadow 5% for 1h", "holdout 1% on stable for 1d",
                                       'metrics prometheus "http://p"', "serving { warmup 1m }",
                                       "log requests 1% { }"])
def test_single_statements_given_twice_are_rl102(statement: str) -> None:
    assert codes(f"{statement}\n{statement}") == ["RL102"]


def test_two_rollouts_with_one_name_are_rl101() -> None:
    program = load_text("rollout a { }\nrollout a { }", "t.rollout", root=ROOT)
    assert [d.code for d in program.diagnostics] == ["RL101"]


def test_several_rollouts_in_one_file() -> None:
    program = load_text("rollout a { service x }\nrollout b { service y }", "t.rollout", root=ROOT)
    assert [(r.name, r.service) for r in program.rollouts()] == [("a", "x"), ("b", "y")]


# -- models ---------------------------------------------------------------------------


def test_model_with_digest_and_source() -> None:
    rollout = ok(f'model stable ranker 1.4.2 @ {DIGEST_A} from "models:/ranker/17"\n'
                 f'model candidate ranker 1.5.0 @ {DIGEST_B}')
    stable, candidate = rollout.model("stable"), rollout.model("candidate")
    assert stable is not None and candidate is not None
    assert (stable.name, stable.version, stable.registry_uri) == ("ranker", "1.4.2", "models:/ranker/17")
    assert stable.semver == ir.SemVer(major=1, minor=4, patch=2)
    assert stable.pin is not None and stable.pin.digest == DIGEST_A and stable.pin.tag is None
    assert stable.pin.algorithm == "sha256" and stable.pin.hex == DIGEST_A.split(":")[1]
    assert candidate.registry_uri is None and candidate.semver is not None and candidate.semver.minor == 5


@pytest.mark.parametrize(
    ("version", "semver"),
    [
        ("1.4.2", (1, 4, 2, "", "")),
        ("3.0.0-rc.1", (3, 0, 0, "rc.1", "")),
        ("2.1.0+git.5f1c0e", (2, 1, 0, "", "git.5f1c0e")),
        ("1.4.2-rc.1+build.5", (1, 4, 2, "rc.1", "build.5")),
        ("1.4", None),
        ("01.2.3", None),
        ("latest", None),
    ],
)
def test_model_versions(version: str, semver: tuple[int, int, int, str, str] | None) -> None:
    model = ok(f"model candidate m {version}").model("candidate")
    assert model is not None and model.version == version and model.pin is None
    if semver is None:
        assert model.semver is None
    else:
        assert model.semver is not None
        assert (model.semver.major, model.semver.minor, model.semver.patch, model.semver.prerelease,
                model.semver.build) == semver
        assert str(model.semver) == version


def test_tag_pin_loads_as_a_tag() -> None:
    model = ok("model stable m 1.0.0 @ latest").model("stable")
    assert model is not None and model.pin is not None
    assert (model.pin.tag, model.pin.digest) == ("latest", None)


def test_a_role_given_twice_is_rl101() -> None:
    assert codes("model stable m 1.0.0\nmodel stable m 1.0.1") == ["RL101"]


# -- signatures ------------------------------------------------------------------------


def test_shared_signature_applies_to_both_roles() -> None:
    rollout = ok("signature {\n in a: int64, b?: list<int64>\n out s: float32 }")
    (sig,) = rollout.signatures
    assert sig.applies_to == "both"
    assert [(f.name, f.optional, f.type.render()) for f in sig.inputs] == [
        ("a", False, "int64"), ("b", True, "list<int64>")]
    assert [(f.name, f.type.render()) for f in sig.outputs] == [("s", "float32")]
    assert rollout.signature_for("stable") is sig and rollout.signature_for("candidate") is sig


def test_per_role_signatures_and_fallback() -> None:
    rollout = ok("signature { in t: string out e: vector<float32, 256> }\n"
                 "signature candidate { in t: string out e: vector<float32, 384> }")
    stable, candidate = rollout.signature_for("stable"), rollout.signature_for("candidate")
    assert stable is not None and candidate is not None
    assert stable.applies_to == "both" and candidate.applies_to == "candidate"
    assert stable.outputs[0].type.dims == (256,) and candidate.outputs[0].type.dims == (384,)


def test_signature_sections_may_repeat() -> None:
    (sig,) = ok("signature { in a: int8 out x: bool in b: uint64 }").signatures
    assert [f.name for f in sig.inputs] == ["a", "b"] and [f.name for f in sig.outputs] == ["x"]


@pytest.mark.parametrize("scalar", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                                    "uint64", "float16", "float32", "float64", "string", "bytes", "category",
                                    "timestamp"])
def test_scalar_types(scalar: str) -> None:
    (sig,) = ok(f"signature {{ in x: {scalar} out y: float32 }}").signatures
    assert sig.inputs[0].type == ir.TypeRef(span=sig.inputs[0].type.span, base=scalar)


@pytest.mark.parametrize(
    ("text", "base", "element", "dims"),
    [
        ("list<int64>", "list", "int64", ()),
        ("vector<float32, 256>", "vector", "float32", (256,)),
        ("tensor<uint8, 3, 224, 224>", "tensor", "uint8", (3, 224, 224)),
        ("list<vector<float16, 64>>", "list", "vector<float16, 64>", ()),
    ],
)
def test_container_types(text: str, base: str, element: str, dims: tuple[int, ...]) -> None:
    (sig,) = ok(f"signature {{ out y: {text} }}").signatures
    t = sig.outputs[0].type
    assert (t.base, t.dims, t.render()) == (base, dims, text)
    assert t.element is not None and t.element.render() == element


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("list<int64, 3>", "RL210"),
        ("vector<float32>", "RL210"),
        ("vector<float32, 2, 3>", "RL210"),
        ("tensor<float32>", "RL210"),
        ("int64<3>", "RL210"),
        ("vectr<float32, 3>", "RL210"),
        ("list", "RL210"),
        ("vector<float32, 0>", "RL222"),
    ],
)
def test_bad_types(text: str, code: str) -> None:
    assert codes(f"signature {{ out y: {text} }}") == [code]


def test_unknown_type_has_a_did_you_mean() -> None:
    (diag,) = errors("signature { in x: flaot32 }")
    assert diag.code == "RL210" and "float32" in diag.help


def test_optional_output_is_rl209() -> None:
    assert codes("signature { out y?: float32 }") == ["RL209"]


def test_duplicate_field_and_shared_signature_twice() -> None:
    assert codes("signature { in a: int8, a: int16 }") == ["RL101"]
    assert codes("signature { in a: int8 }\nsignature { in b: int8 }") == ["RL101"]


# -- serving --------------------------------------------------------------------------


def test_serving_block() -> None:
    serving = ok(f'serving {{ image "reg/img" @ {DIGEST_A}\n replicas 6..24\n resources cpu 2, memory 4Gi, gpu 1\n'
                 " warmup 2m }").serving
    assert serving is not None
    assert serving.image == "reg/img" and serving.image_pin is not None and serving.image_pin.digest == DIGEST_A
    assert (serving.replicas_min, serving.replicas_max) == (6, 24)
    assert serving.resources is not None
    assert (serving.resources.cpu, serving.resources.memory_bytes, serving.resources.gpu) == (2.0, 4 * 2**30, 1)
    assert serving.warmup_s == 120.0


def test_fixed_replicas_and_defaults() -> None:
    serving = ok('serving { image "reg/img" replicas 4 }').serving
    assert serving is not None and serving.image_pin is None
    assert (serving.replicas_min, serving.replicas_max, serving.resources, serving.warmup_s) == (4, 4, None, None)


@pytest.mark.parametrize(
    ("resource", "field", "value"),
    [
        ("cpu 2", "cpu", 2.0),
        ("cpu 0.5", "cpu", 0.5),
        ("cpu 500m", "cpu", 0.5),
        ("memory 4Gi", "memory_bytes", 4 * 2**30),
        ("memory 1.5Gi", "memory_bytes", int(1.5 * 2**30)),
        ("memory 512Mi", "memory_bytes", 512 * 2**20),
        ("memory 512M", "memory_bytes", 512_000_000),
        ("memory 2G", "memory_bytes", 2_000_000_000),
        ("memory 64Ki", "memory_bytes", 65536),
        ("memory 1024", "memory_bytes", 1024),
        ("gpu 2", "gpu", 2),
    ],
)
def test_resources_units(resource: str, field: str, value: float) -> None:
    serving = ok(f"serving {{ resources {resource} }}").serving
    assert serving is not None and serving.resources is not None
    assert getattr(serving.resources, field) == value


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("serving { replicas 24..6 }", "RL211"),
        ("serving { resources disk 10Gi }", "RL203"),
        ("serving { resources memory 4GB }", "RL201"),
        ("serving { resources cpu 2cores }", "RL201"),
        ("serving { resources gpu 0.5 }", "RL201"),
        ("serving { warmup 2 }", "RL201"),
    ],
)
def test_serving_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


# -- consumers --------------------------------------------------------------------------


def test_consumers() -> None:
    consumers = ok('consumers {\n search-ranker expects embedding 256 adapter "pca-384-to-256"\n'
                   ' related-items expects embedding 384 via header "x-caller" = "related-items"\n'
                   ' ads expects embedding 384 via cookie "svc" ^= "ads-"\n'
                   ' batch expects embedding 384 via header "x-job" ~ "^nightly-[0-9]+$" }').consumers
    by = {c.name: c for c in consumers}
    assert list(by) == ["search-ranker", "related-items", "ads", "batch"]
    assert (by["search-ranker"].output, by["search-ranker"].expects_dim) == ("embedding", 256)
    assert by["search-ranker"].adapter == "pca-384-to-256" and by["search-ranker"].route is None
    route = by["related-items"].route
    assert route is not None and (route.kind, route.name, route.match, route.value) == (
        "header", "x-caller", "exact", "related-items")
    assert by["related-items"].adapter is None
    ads = by["ads"].route
    assert ads is not None and (ads.kind, ads.match, ads.value) == ("cookie", "prefix", "ads-")
    batch = by["batch"].route
    assert batch is not None and batch.match == "regex"


def test_consumer_dimension_must_be_positive_and_names_unique() -> None:
    assert codes("consumers { a expects e 0 }") == ["RL222"]
    assert codes("consumers { a expects e 3  a expects e 4 }") == ["RL101"]


# -- traffic and metrics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rps"),
    [
        ("12000 rps", 12000.0),
        ("12000rps", 12000.0),
        ("12000 rpm", 200.0),
        ("12000rpm", 200.0),
        ("720000 rph", 200.0),
        ("1e3 rps", 1000.0),
    ],
)
def test_traffic_rate_units(text: str, rps: float) -> None:
    traffic = ok(f"traffic {text}").traffic
    assert traffic is not None and traffic.rate_rps == pytest.approx(rps)
    assert traffic.diurnal_amplitude == 0.0 and traffic.peak_hour is None


def test_traffic_shape() -> None:
    traffic = ok("traffic 12000 rps, diurnal 30%, peak 20h").traffic
    assert traffic is not None
    assert traffic.diurnal_amplitude == pytest.approx(0.3) and traffic.peak_hour == 20.0
    half = ok("traffic 10 rps, peak 870m").traffic
    assert half is not None and half.peak_hour == 14.5


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("traffic 12000", "RL201"),
        ("traffic 12000 rpd", "RL201"),
        ("traffic 0 rps", "RL201"),
        ("traffic 10 rps, peak 25h", "RL201"),
        ("traffic 10 rps, diurnal 30", "RL201"),
        ("traffic 10 rps, diurnl 30%", "RL207"),
        ("traffic 10 rps, diurnal 30%, diurnal 20%", "RL208"),
    ],
)
def test_traffic_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


def test_metrics_source_with_queries() -> None:
    source = ok('metrics prometheus "http://prom:9090" {\n query a "up"\n query b "sum(x{y=\\"z\\"})" }'
                ).metrics_source
    assert source is not None and (source.kind, source.address) == ("prometheus", "http://prom:9090")
    assert [(q.name, q.query) for q in source.queries] == [("a", "up"), ("b", 'sum(x{y="z"})')]
    plain = ok('metrics prometheus "http://prom:9090"').metrics_source
    assert plain is not None and plain.queries == ()


def test_metrics_source_errors() -> None:
    (diag,) = errors('metrics prometheuss "http://p"')
    assert diag.code == "RL203" and "prometheus" in diag.help
    assert codes('metrics prometheus "http://p" { query a "x" query a "y" }') == ["RL101"]


# -- label metrics ----------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "baseline"), [("4.2%", 0.042), ("0.042", 0.042), ("50%", 0.5)])
def test_binary_baseline(written: str, baseline: float) -> None:
    (metric,) = ok(f"metric ctr: binary, baseline {written}").label_metrics
    assert (metric.name, metric.kind, metric.sd, metric.origin) == ("ctr", "binary", None, None)
    assert metric.baseline == pytest.approx(baseline)
    assert metric.delay.distribution == "immediate"


def test_continuous_metric() -> None:
    (metric,) = ok("metric revenue: continuous, sd 4.2, baseline 1.35").label_metrics
    assert (metric.kind, metric.baseline, metric.sd) == ("continuous", 1.35, 4.2)


@pytest.mark.parametrize(
    ("delay", "distribution", "fields"),
    [
        ("immediate", "immediate", {}),
        ("immediate()", "immediate", {}),
        ("fixed(2h)", "fixed", {"fixed_s": 7200.0}),
        ("exponential(mean 1h)", "exponential", {"mean_s": 3600.0}),
        ("lognormal(median 2h, p95 8h)", "lognormal", {"median_s": 7200.0, "p95_s": 28800.0}),
        ("lognormal(p95 12h, median 4h)", "lognormal", {"median_s": 14400.0, "p95_s": 43200.0}),
        ("lognormal(median 2h, sigma 1)", "lognormal",
         {"median_s": 7200.0, "p95_s": 7200.0 * math.exp(1.6448536269514722)}),
        ("lognormal(median 6h, sigma 0.5)", "lognormal",
         {"median_s": 21600.0, "p95_s": 21600.0 * math.exp(0.5 * 1.6448536269514722)}),
    ],
)
def test_label_delays(delay: str, distribution: str, fields: dict[str, float]) -> None:
    (metric,) = ok(f"metric ctr: binary, baseline 4.2%, labels {delay}").label_metrics
    assert metric.delay.distribution == distribution
    for name in ("median_s", "p95_s", "mean_s", "fixed_s"):
        expected = fields.get(name)
        actual = getattr(metric.delay, name)
        assert actual == (pytest.approx(expected) if expected is not None else None), name


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("metric c: binary", "RL213"),
        ("metric c: continuous, baseline 1.3", "RL213"),
        ("metric c: ratio, baseline 4%", "RL203"),
        ("metric c: binary, baseline 4%, labels lognorm(median 2h, p95 8h)", "RL214"),
        ("metric c: binary, baseline 4%, labels lognormal(median 8h, p95 2h)", "RL214"),
        ("metric c: binary, baseline 4%, labels lognormal(median 2h)", "RL214"),
        ("metric c: binary, baseline 4%, labels exponential(median 2h)", "RL207"),
        ("metric c: binary, baseline 4%, labels fixed(2h, 3h)", "RL214"),
        ("metric c: binary, baseline 4%, labels later", "RL214"),
        ("metric c: binary, baseline 4%, labels fixed(2)", "RL201"),
        ("metric c: binary, baseline 4%, delay fixed(2h)", "RL207"),
        ("metric c: binary, baseline 4%\nmetric c: binary, baseline 5%", "RL101"),
    ],
)
def test_label_metric_errors(body: str, code: str) -> None:
    assert code in codes(body)


def test_unknown_distribution_has_a_did_you_mean() -> None:
    (diag,) = errors("metric c: binary, baseline 4%, labels lognorm(median 2h, p95 8h)")
    assert diag.help == "did you mean `lognormal`?"


# -- shadow and strategies ------------------------------------------------------------------------


def test_shadow_for() -> None:
    shadow = ok("shadow 100% for 24h").shadow
    assert shadow is not None
    assert (shadow.percent, shadow.duration_s, shadow.alongside_canary, shadow.until_percent) == (
        100.0, 86400.0, False, None)


@pytest.mark.parametrize(("until", "value"), [("", None), (" until 25%", 25.0)])
def test_shadow_alongside_canary(until: str, value: float | None) -> None:
    shadow = ok(f"shadow 50% alongside canary{until}\ncanary {{ 1% for 1h 100% }}").shadow
    assert shadow is not None
    assert (shadow.percent, shadow.duration_s, shadow.alongside_canary, shadow.until_percent) == (
        50.0, None, True, value)


@pytest.mark.parametrize(("body", "code"), [("shadow 0% for 1h", "RL303"), ("shadow 50 for 1h", "RL201"),
                                            ("shadow 120% for 1h", "RL201"), ("shadow 10% for 3", "RL201")])
def test_shadow_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


def test_canary_stages_defaults_and_ends() -> None:
    canary = ok("canary {\n 1% for 2h\n ramp: 5% until approved\n 25% for 1d\n mpr: 50% for 7d\n"
                " park: 50% hold\n 100% }").strategy
    assert isinstance(canary, ir.Canary) and canary.kind == "canary"
    got = [(s.name, s.weight_percent, s.duration_s, s.until_approved, s.hold) for s in canary.stages]
    assert got == [
        ("stage-1", 1.0, 7200.0, False, False),
        ("ramp", 5.0, None, True, False),
        ("stage-3", 25.0, 86400.0, False, False),
        ("mpr", 50.0, 604800.0, False, False),
        ("park", 50.0, None, False, True),
        ("stage-6", 100.0, None, False, False),
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("canary { }", "RL302"),
        ("canary { a: 1% for 1h  a: 5% for 1h }", "RL101"),
        ("canary { 1 for 1h }", "RL201"),
        ("canary { 1% for 1 }", "RL201"),
        ("canary { 1% }\nrolling { }", "RL301"),
    ],
)
def test_canary_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


def test_blue_green_options() -> None:
    bg = ok("blue-green {\n preview for 2h, promote auto, scale down after 30m,\n}").strategy
    assert isinstance(bg, ir.BlueGreen) and bg.kind == "blue-green"
    assert (bg.preview_s, bg.promotion, bg.scale_down_delay_s) == (7200.0, "auto", 1800.0)


def test_blue_green_defaults() -> None:
    bg = ok("blue-green { }").strategy
    assert isinstance(bg, ir.BlueGreen)
    assert (bg.preview_s, bg.promotion, bg.scale_down_delay_s) == (None, "manual", None)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("blue-green { previw for 2h }", "RL207"),
        ("blue-green { preview for 2h promote manual }", "RL206"),
        ("blue-green { preview for 2h, preview for 1h }", "RL208"),
        ("blue-green { promote later }", "RL203"),
        ("blue-green { preview for 2 }", "RL201"),
    ],
)
def test_blue_green_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


def test_blue_green_unknown_option_suggests_the_right_one() -> None:
    (diag,) = errors("blue-green { previw for 2h }")
    assert diag.help.startswith("did you mean `preview for`?")


@pytest.mark.parametrize(
    ("options", "surge", "unavailable"),
    [
        ("", (25.0, "percent"), (0.0, "pods")),
        ("max surge 25%, max unavailable 0", (25.0, "percent"), (0.0, "pods")),
        ("max surge 2, max unavailable 10%", (2.0, "pods"), (10.0, "percent")),
        ("max unavailable 1", (25.0, "percent"), (1.0, "pods")),
    ],
)
def test_rolling(options: str, surge: tuple[float, str], unavailable: tuple[float, str]) -> None:
    rolling = ok(f"rolling {{ {options} }}").strategy
    assert isinstance(rolling, ir.Rolling) and rolling.kind == "rolling"
    assert (rolling.max_surge.value, rolling.max_surge.unit) == surge
    assert (rolling.max_unavailable.value, rolling.max_unavailable.unit) == unavailable


def test_rolling_errors() -> None:
    assert codes("rolling { max surge 1.5 }") == ["RL201"]
    assert codes("rolling { surge 25% }") == ["RL207"]


# -- routes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "match", "name", "value", "target"),
    [
        ('header "x-ml-preview" = "true" to candidate', "header", "exact", "x-ml-preview", "true", "candidate"),
        ('header "x-user" ~ "^(alice|bob)$" to candidate', "header", "regex", "x-user", "^(alice|bob)$",
         "candidate"),
        ('cookie "beta" ^= "ranker-" to candidate', "cookie", "prefix", "beta", "ranker-", "candidate"),
        ('header "x-caller" = "billing" to stable', "header", "exact", "x-caller", "billing", "stable"),
    ],
)
def test_routes(text: str, kind: str, match: str, name: str, value: str, target: str) -> None:
    (route,) = ok(f"route {text}").routes
    assert (route.match.kind, route.match.match, route.match.name, route.match.value, route.target) == (
        kind, match, name, value, target)


def test_routes_keep_their_order() -> None:
    routes = ok('route header "a" = "1" to candidate\nroute header "b" = "2" to stable').routes
    assert [r.match.name for r in routes] == ["a", "b"]


@pytest.mark.parametrize("text", ['header "x-ml-preview: true" = "" to candidate', 'header "x" ~ "(" to candidate',
                                  'cookie "a b" = "1" to stable'])
def test_bad_routes_are_rl212(text: str) -> None:
    assert codes(f"route {text}") == ["RL212"]


# -- gates ---------------------------------------------------------------------------------------

METRICS = 'metrics prometheus "http://prom:9090" { query gpu "avg(gpu)" }\n'
STAGES = "canary { smoke: 1% for 2h  ramp: 5% for 6h  mpr: 50% for 7d  100% }\n"


@pytest.mark.parametrize(
    ("condition", "signal", "percentile", "op", "threshold", "query"),
    [
        ("p99 latency < 250ms", "latency", 99.0, "<", 0.25, None),
        ("p95 latency <= 1.5s", "latency", 95.0, "<=", 1.5, None),
        ("p50 latency < 40ms", "latency", 50.0, "<", 0.04, None),
        ("error rate < 0.5%", "error_rate", None, "<", 0.005, None),
        ("errors < 1%", "error_rate", None, "<", 0.01, None),
        ("saturation < 85%", "saturation", None, "<", 0.85, None),
        ("query gpu < 0.9", "query", None, "<", 0.9, "gpu"),
        ("query gpu >= 10", "query", None, ">=", 10.0, "gpu"),
    ],
)
def test_slo_gate_conditions(condition: str, signal: str, percentile: float | None, op: str, threshold: float,
                             query: str | None) -> None:
    (gate,) = ok(f"{METRICS}gate g: {condition}").gates
    assert isinstance(gate, ir.SloGate) and gate.kind == "slo"
    assert (gate.signal, gate.percentile, gate.op, gate.query) == (signal, percentile, op, query)
    assert gate.threshold == pytest.approx(threshold)
    assert (gate.interval_s, gate.failure_limit, gate.from_stage, gate.origin) == (60.0, 1, None, None)


@pytest.mark.parametrize(
    ("options", "interval", "limit", "stage"),
    [
        ("every 5m", 300.0, 1, None),
        ("every 5m, fail after 2", 300.0, 2, None),
        (", fail after 3", 60.0, 3, None),
        ("from ramp", 60.0, 1, "ramp"),
        ("every 30s, fail after 4, from mpr", 30.0, 4, "mpr"),
    ],
)
def test_slo_gate_options(options: str, interval: float, limit: int, stage: str | None) -> None:
    (gate,) = ok(f"{STAGES}gate g: p99 latency < 250ms {options}").gates
    assert isinstance(gate, ir.SloGate)
    assert (gate.interval_s, gate.failure_limit, gate.from_stage) == (interval, limit, stage)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("gate g: p99 latency < 250", "RL201"),
        ("gate g: p99 latency == 250ms", "RL204"),
        ("gate g: p99 latency != 250ms", "RL204"),
        ("gate g: error rate < 0.5", "RL201"),
        ("gate g: saturation < 0.8", "RL201"),
        ("gate g: p99 latncy < 1s", "RL215"),
        ("gate g: throughput < 1", "RL215"),
        ("gate g: p99 latency < 1s, fail after 0", "RL222"),
        ("gate g: p99 latency < 1s, evry 5m", "RL207"),
        ("gate g: p99 latency < 1s, every 5m, every 1m", "RL208"),
        ("gate g: p99 latency < 1s every 5m fail after 2", "RL206"),
        ("gate g: error rate < 1%\ngate g: error rate < 2%", "RL101"),
        (f"{METRICS}gate g: query gpus < 1", "RL113"),
        (f"{STAGES}gate g: p99 latency < 1s, from mrp", "RL114"),
    ],
)
def test_slo_gate_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


def test_unknown_stage_suggests_a_stage() -> None:
    (diag,) = errors(f"{STAGES}gate g: p99 latency < 1s, from mrp")
    assert diag.help == "did you mean `mpr`?"


@pytest.mark.parametrize("statistic", ["psi", "kl", "js", "mmd"])
def test_drift_gate_defaults(statistic: str) -> None:
    (gate,) = ok(f"gate d: {statistic}(scores) < 0.2").gates
    assert isinstance(gate, ir.DriftGate) and gate.kind == "drift"
    assert (gate.statistic, gate.target, gate.op, gate.threshold) == (statistic, "scores", "<", 0.2)
    assert (gate.interval_s, gate.failure_limit, gate.bins, gate.min_samples, gate.reference, gate.delta,
            gate.from_stage) == (3600.0, 1, 10, None, "stable", None, None)


def test_adwin_takes_no_threshold_and_defaults_delta() -> None:
    (gate,) = ok("gate d: adwin(scores)").gates
    assert isinstance(gate, ir.DriftGate)
    assert (gate.statistic, gate.threshold, gate.delta) == ("adwin", None, 0.002)
    (tuned,) = ok("gate d: adwin(scores), delta 0.001, every 15m").gates
    assert isinstance(tuned, ir.DriftGate) and (tuned.delta, tuned.interval_s) == (0.001, 900.0)


@pytest.mark.parametrize(
    ("options", "field", "value"),
    [
        ("every 30m", "interval_s", 1800.0),
        ("fail after 2", "failure_limit", 2),
        ("from smoke", "from_stage", "smoke"),
        ("bins 20", "bins", 20),
        ("min samples 5000", "min_samples", 5000),
        ("vs training", "reference", "training"),
        ("vs stable", "reference", "stable"),
        ("delta 0.01", "delta", 0.01),
    ],
)
def test_drift_gate_options(options: str, field: str, value: object) -> None:
    (gate,) = ok(f"{STAGES}gate d: psi(country) < 0.1, {options}").gates
    assert getattr(gate, field) == value


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("gate d: psy(scores) < 0.2", "RL216"),
        ("gate d: psi(a, b) < 0.2", "RL216"),
        ("gate d: psi(scores)", "RL202"),
        ("gate d: psi(scores) < 0.2, bins 1", "RL222"),
        ("gate d: psi(scores) < 0.2, min samples 0", "RL222"),
        ("gate d: psi(scores) < 0.2, vs production", "RL203"),
        ("gate d: psi(scores) < -1", "RL222"),
        ("gate d: psi(scores) < 0.2, window 1h", "RL207"),
    ],
)
def test_drift_gate_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


CTR = "metric ctr: binary, baseline 4.2%, labels lognormal(median 2h, p95 8h)\n"
REVENUE = "metric revenue: continuous, baseline 1.35, sd 4.2\n"


HARM = "fail if shown harmful, power 80% at -3%"
NI = "pass if shown non-inferior"


@pytest.mark.parametrize(
    ("change", "margin", "relative", "effect"),
    [
        ("> -1% relative, fail if shown harmful, power 80% at -3%", -0.01, True, -0.03),
        ("> -1%, fail if shown harmful, power 80% at -3%", -0.01, True, -0.03),
        (">= -2.5%, pass if shown non-inferior", -0.025, True, 0.0),
        ("> -0.1% absolute, fail if shown harmful, power 80% at -0.3%", -0.001, False, -0.003),
        ("> -0.05 absolute, pass if shown non-inferior, power 90% at +0.01", -0.05, False, 0.01),
        ("< 3% relative, fail if shown harmful, power 80% at +6%", 0.03, True, 0.06),
        ("> 0%, fail if shown harmful, power 80% at -2%", 0.0, True, -0.02),
    ],
)
def test_business_gate_change(change: str, margin: float, relative: bool, effect: float) -> None:
    (gate,) = ok(f"{CTR}gate c: ctr change {change}").gates
    assert isinstance(gate, ir.BusinessGate) and gate.kind == "business"
    assert gate.metric == "ctr" and gate.margin == pytest.approx(margin) and gate.relative is relative
    assert gate.effect == pytest.approx(effect)


def test_business_gate_defaults() -> None:
    (gate,) = ok(f"{CTR}gate c: ctr change > -1% relative, {NI}").gates
    assert isinstance(gate, ir.BusinessGate)
    assert (gate.hypothesis, gate.effect, gate.test, gate.spending, gate.alpha, gate.power, gate.sided,
            gate.futility, gate.analysis, gate.interval_s, gate.tau, gate.from_stage) == (
        "non-inferiority", 0.0, "group-sequential", "obrien-fleming", None, 0.8, "one", False, "arrived", None,
        None, None)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("sequential obrien-fleming", {"test": "group-sequential", "spending": "obrien-fleming"}),
        ("sequential pocock", {"test": "group-sequential", "spending": "pocock"}),
        ("sequential hsd(-4)", {"test": "group-sequential", "spending": "hsd", "spending_gamma": -4.0}),
        ("fixed horizon", {"test": "fixed", "spending": None}),
        ("fixed", {"test": "fixed", "spending": None}),
        ("msprt, tau 2%", {"test": "msprt", "spending": None, "tau": 0.02}),
        ("bayesian", {"test": "bayesian", "spending": None}),
        ("alpha 1%", {"alpha": 0.01}),
        ("futility", {"futility": True}),
        ("one-sided", {"sided": "one"}),
        ("two-sided", {"sided": "two"}),
        ("analysis matured", {"analysis": "matured"}),
        ("analysis arrived", {"analysis": "arrived"}),
        ("every 6h", {"interval_s": 21600.0}),
        ("from mpr", {"from_stage": "mpr"}),
    ],
)
def test_business_gate_options(options: str, expected: dict[str, object]) -> None:
    (gate,) = ok(f"{CTR}{STAGES}gate c: ctr change > -1% relative, {HARM}, {options}").gates
    for field, value in expected.items():
        actual = getattr(gate, field)
        assert actual == (pytest.approx(value) if isinstance(value, float) else value), field


def test_continuous_business_gate() -> None:
    (gate,) = ok(f"{REVENUE}gate r: revenue change >= -0.05 absolute, fail if shown harmful, "
                 "power 90% at -0.1, fixed horizon, alpha 1%").gates
    assert isinstance(gate, ir.BusinessGate)
    assert (gate.metric, gate.op, gate.margin, gate.relative, gate.effect, gate.power, gate.test, gate.alpha) == (
        "revenue", ">=", -0.05, False, -0.1, 0.9, "fixed", 0.01)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (f"{CTR}gate c: ctr change > -0.5", "RL201"),
        (f"{CTR}gate c: ctr change > -1h, {NI}", "RL201"),
        (f"{CTR}gate c: ctr change > -1%, {HARM}, msprt, sequential pocock", "RL218"),
        (f"{CTR}gate c: ctr change > -1%, {HARM}, sequential halfway", "RL203"),
        (f"{CTR}gate c: ctr change > -1%, {HARM}, sequential hsd", "RL203"),
        (f"{CTR}gate c: ctr change > -1%, {HARM}, alpha 100%", "RL222"),
        (f"{CTR}gate c: ctr change > -1%, {NI}, power 0%", "RL222"),
        (f"{CTR}gate c: ctr change > -1%, {HARM}, analysis eventually", "RL203"),
        (f"{CTR}gate c: ctr change > -1%, {HARM}, alpah 5%", "RL207"),
        ("gate c: ctr change > -1%, pass if shown non-inferior", "RL112"),
        # the old forms: which test runs is not said, or said the retired way
        (f"{CTR}gate c: ctr change > -1%", "RL250"),
        (f"{CTR}gate c: ctr change > -1%, sequential obrien-fleming, alpha 5%, power 80%", "RL250"),
        (f"{CTR}gate c: ctr change > -1%, {NI}, min effect -2%", "RL254"),
        (f"{CTR}gate c: ctr change > -1%, {NI}, msprt, tau 0.02", "RL257"),
        # the effect must be on the side the test is about
        (f"{CTR}gate c: ctr change > -1%, fail if shown harmful, power 80% at -0.5%", "RL251"),
        (f"{CTR}gate c: ctr change > -1%, pass if shown non-inferior, power 80% at -2%", "RL251"),
        (f"{CTR}gate c: ctr change > +1%, pass if shown non-inferior", "RL251"),
        (f"{CTR}gate c: ctr change > -1%, fail if shown harmful", "RL252"),
        (f"{CTR}gate c: ctr change > -1%, {NI}, futility", "RL253"),
        (f"{CTR}gate c: ctr change > -1%, {HARM}, msprt, futility", "RL253"),
        (f"{CTR}gate c: ctr change > -1%, {HARM}, sequential pocock, tau 2%", "RL253"),
        (f"{CTR}gate c: ctr change > -1%, {HARM}, {NI}", "RL258"),
        (f"{CTR}gate c: ctr change > -100%, {NI}", "RL259"),
    ],
)
def test_business_gate_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


def test_a_business_gate_without_its_test_gets_both_spellings() -> None:
    (diag,) = errors(f"{CTR}gate c: ctr change > -1% relative")
    assert diag.code == "RL250"
    assert diag.message == "gate `c` does not say which test it runs"
    assert diag.help == ("add `fail if shown harmful, power 80% at -2%` to roll back only on evidence of a change "
                         "beyond -1%, or `pass if shown non-inferior` to promote only on evidence that the change is "
                         "within it")
    (diag,) = errors(f"{CTR}gate c: ctr change < +0.5% absolute")
    assert "`fail if shown harmful, power 80% at +1%`" in diag.help and "beyond +0.5% absolute" in diag.help


def test_the_retired_min_effect_says_the_new_spelling() -> None:
    (diag,) = errors(f"{CTR}gate c: ctr change > -1%, {NI}, power 90%, min effect -2%")
    assert diag.code == "RL254"
    assert diag.help == ("write `power 90% at -2%` (and `fail if shown harmful` or `pass if shown non-inferior`)")


def test_unknown_metric_suggests_a_declared_one() -> None:
    (diag,) = errors(f"{CTR}gate c: crt change > -1%, {NI}")
    assert diag.code == "RL112" and diag.help == "did you mean `ctr`?"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("p99 latency change < +10%", {"signal": "latency", "comparison": "change", "threshold": 0.1,
                                       "relative": True}),
        ("p95 latency change <= +15ms", {"signal": "latency", "comparison": "change", "threshold": 0.015,
                                         "relative": False}),
        ("error rate change < +0.1% absolute", {"signal": "error_rate", "comparison": "change",
                                                "threshold": 0.001, "relative": False}),
        ("errors change < +20%", {"signal": "error_rate", "comparison": "change", "threshold": 0.2,
                                  "relative": True}),
        ("saturation change < +5% absolute", {"signal": "saturation", "threshold": 0.05, "relative": False}),
        ("query gpu_util change < +0.05", {"signal": "query", "query": "gpu_util", "threshold": 0.05}),
        ("p99 latency < 250ms, baseline 180ms", {"comparison": "threshold", "baseline": 0.18}),
        ("error rate < 0.5%, baseline 0.1%, min samples 500", {"baseline": 0.001, "min_samples": 500}),
        ("query gpu_util < 0.9, baseline 0.6", {"baseline": 0.6}),
    ],
)
def test_slo_gates_compare_with_stable_and_know_its_value(condition: str, expected: dict[str, object]) -> None:
    (gate,) = ok(f'metrics prometheus "http://p" {{ query gpu_util "x" }}\ngate g: {condition}').gates
    assert isinstance(gate, ir.SloGate)
    for field, value in expected.items():
        actual = getattr(gate, field)
        assert actual == (pytest.approx(value) if isinstance(value, float) else value), field


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("gate g: p99 latency change < +10", "RL201"),
        ("gate g: p99 latency change < +10 relative", "RL201"),
        ("gate g: error rate change < +0.1", "RL201"),
        ("gate g: p99 latency < 250ms, baseline 180", "RL201"),
        ("gate g: p99 latency change < -100%", "RL259"),
        ("gate g: error rate < 1%, sigma 0.5", "RL293"),
        ("gate g: p99 latency < 250ms, sd 0.01", "RL293"),
        ("gate g: p99 latency < 250ms, sigma 0", "RL222"),
        ("gate g: p99 latency < 250ms, sigma 11", "RL222"),
        ("gate g: saturation < 80%, sd 0%", "RL222"),
        ("gate g: saturation < 80%, sd 0.05", "RL201"),
        ("gate g: query q < 1, sd 0", "RL222"),
    ],
)
def test_slo_change_and_baseline_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


def test_slo_spreads_for_the_simulator() -> None:
    latency, saturation, query = ok('metrics prometheus "http://p" { query q "up" }\n'
                                    "gate l: p99 latency < 250ms, baseline 180ms, sigma 0.6\n"
                                    "gate s: saturation < 80%, baseline 50%, sd 5%\n"
                                    "gate q: query q < 1, sd 0.02").gates
    assert isinstance(latency, ir.SloGate) and (latency.sigma, latency.sd) == (0.6, None)
    assert isinstance(saturation, ir.SloGate) and (saturation.sigma, saturation.sd) == (None, pytest.approx(0.05))
    assert isinstance(query, ir.SloGate) and query.sd == 0.02
    (found,) = errors("gate g: error rate < 1%, sigma 0.5")
    assert "belongs on a latency gate" in found.message and "drop it" in found.help
    (found,) = errors("gate g: p99 latency < 250ms, sd 0.01")
    assert found.help == "write `sigma` for this gate"


def test_sample_ratio_gate() -> None:
    (gate,) = ok(f"{STAGES}gate split: srm, alpha 0.1%, every 30m, from mpr, min samples 1000").gates
    assert isinstance(gate, ir.SrmGate)
    assert (gate.alpha, gate.interval_s, gate.from_stage, gate.min_samples) == (0.001, 1800.0, "mpr", 1000)
    (default,) = ok("gate split: srm").gates
    assert isinstance(default, ir.SrmGate) and (default.alpha, default.interval_s) == (0.001, 3600.0)


@pytest.mark.parametrize(
    ("condition", "spec"),
    [("p99 latency < 250ms", spec) for spec in SLO_OPTIONS if spec.field != "sd"]
    + [("saturation < 85%", spec) for spec in SLO_OPTIONS if spec.field == "sd"]
    + [("psi(scores) < 0.2", spec) for spec in DRIFT_OPTIONS]
    + [(f"ctr change > -1% relative, {HARM}", spec) for spec in BUSINESS_OPTIONS
       if spec.field not in ("harm", "non_inferiority", "power", "min_effect", "tau", "futility")]
    + [("ctr change > -1% relative", spec) for spec in BUSINESS_OPTIONS if spec.field == "non_inferiority"]
    + [("ctr change > -1% relative, fail if shown harmful", spec) for spec in BUSINESS_OPTIONS
       if spec.field == "power"]
    + [(f"ctr change > -1% relative, {HARM}, msprt", spec) for spec in BUSINESS_OPTIONS if spec.field == "tau"]
    + [("srm", spec) for spec in SRM_OPTIONS],
    ids=lambda x: x if isinstance(x, str) else " ".join(x.words),
)
def test_every_option_in_the_tables_lowers(condition: str, spec: OptionSpec) -> None:
    """Each option the lowering knows, spelled as its own example, is accepted on its kind of gate."""
    (gate,) = ok(f"{CTR}{STAGES}gate g: {condition}, {spec.example}").gates
    assert spec.example.startswith(" ".join(spec.words))
    field = {"sequential": "spending", "harm": "hypothesis", "non_inferiority": "hypothesis",
             "power": "effect"}.get(spec.field, spec.field)
    assert getattr(gate, field) is not None


def test_futility_is_an_option_of_sequential_harm_tests() -> None:
    (gate,) = ok(f"{CTR}gate g: ctr change > -1%, {HARM}, futility").gates
    assert isinstance(gate, ir.BusinessGate) and gate.futility


# -- rules --------------------------------------------------------------------------------------


GATES = "gate a: error rate < 1%\ngate b: p99 latency < 1s\n"


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ("rollback", [("rollback", False, None, None)]),
        ("rollback now", [("rollback", True, None, None)]),
        ("rollback after 30m", [("rollback", False, 1800.0, None)]),
        ("pause", [("pause", False, None, None)]),
        ('notify "#oncall"', [("notify", False, None, "#oncall")]),
        ('pause, notify "#a", notify "@b"', [("pause", False, None, None), ("notify", False, None, "#a"),
                                             ("notify", False, None, "@b")]),
    ],
)
def test_rule_actions(actions: str, expected: list[tuple[str, bool, float | None, str | None]]) -> None:
    (rule,) = ok(f"{GATES}on a, b fail: {actions}").rules
    assert rule.gates == ("a", "b") and rule.origin is None and rule.event == "fail"
    assert [(x.kind, x.immediate, x.after_s, x.channel) for x in rule.actions] == expected


def test_rules_on_a_gate_passing_promote() -> None:
    (rule,) = ok(f'{CTR}gate c: ctr change > -1%, {NI}\non c pass: promote, notify "#leads"').rules
    assert rule.event == "pass" and [a.kind for a in rule.actions] == ["promote", "notify"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (f"{GATES}on a fail: rollback, promote", "RL255"),
        (f"{GATES}on a fail: promote", "RL255"),
        (f"{GATES}on a pass: rollback", "RL256"),
        (f"{GATES}on a pass: pause", "RL256"),
        (f"{GATES}on a fail: rollbak", "RL203"),
        (f"{GATES}on a fail: rollback later", "RL206"),
        (f"{GATES}on a fail: rollback after 30", "RL201"),
        (f"{GATES}on a fail: notify oncall", "RL202"),
        (f"{GATES}on c fail: pause", "RL111"),
    ],
)
def test_rule_errors(body: str, code: str) -> None:
    assert codes(body) == [code]


# -- policy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("exposure <= 5% of requests before 24h",
         {"kind": "exposure", "max_percent": 5.0, "before_s": 86400.0, "max_requests": None}),
        ("exposure < 5% of requests", {"kind": "exposure", "max_percent": 5.0, "before_s": None}),
        ("exposure <= 2000000 requests before 2h",
         {"kind": "exposure", "max_requests": 2_000_000.0, "before_s": 7200.0, "max_percent": None}),
        ("duration <= 3d", {"kind": "duration", "max_duration_s": 259200.0, "max_percent": None}),
        ("duration < 2w", {"kind": "duration", "max_duration_s": 1209600.0}),
        ("false rollbacks <= 5%", {"kind": "false-rollbacks", "max_percent": 5.0, "gates": ()}),
        ("false rollbacks <= 5% across ctr, revenue", {"kind": "false-rollbacks", "gates": ("ctr", "revenue")}),
    ],
)
def test_budgets(text: str, expected: dict[str, object]) -> None:
    (budget,) = ok(f"budget {text}").budgets
    for field, value in expected.items():
        assert getattr(budget, field) == value, field


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("duration >= 3d", "RL220"),
        ("exposure > 5% of requests", "RL220"),
        ("exposure <= 5%", "RL202"),
        ("exposure <= 5% of calls", "RL202"),
        ("cost <= 5", "RL203"),
        ("duration <= 3", "RL201"),
        ("duration <= 3d, exposure <= 5% of requests", "RL206"),
    ],
)
def test_budget_errors(text: str, code: str) -> None:
    assert codes(f"budget {text}") == [code]


@pytest.mark.parametrize(
    ("effect", "target", "kind", "value", "unit", "after"),
    [
        ("ctr -2%", "ctr", "relative", -0.02, "fraction", 0.0),
        ("latency +15ms", "latency", "absolute", 0.015, "seconds", 0.0),
        ("errors 5% after 30m", "errors", "absolute", 0.05, "fraction", 1800.0),
        ("error-rate 2%", "error-rate", "absolute", 0.02, "fraction", 0.0),
        ("drift 0.3 after 6h", "drift", "absolute", 0.3, "number", 21600.0),
        ("ctr -0.1% absolute", "ctr", "absolute", -0.001, "fraction", 0.0),
        ("errors 50% relative", "errors", "relative", 0.5, "fraction", 0.0),
        ("revenue -3% after 2d", "revenue", "relative", -0.03, "fraction", 172800.0),
    ],
)
def test_scenario_effects(effect: str, target: str, kind: str, value: float, unit: str, after: float) -> None:
    revenue = "metric revenue: continuous, baseline 1.35, sd 4.2\n"
    (scenario,) = ok(f"{CTR}{revenue}scenario s {{ {effect} }}").scenarios
    (e,) = scenario.effects
    assert (scenario.name, e.target, e.kind, e.unit, e.after_s, e.delay) == ("s", target, kind, unit, after, None)
    assert e.value == pytest.approx(value)


def test_scenario_label_delay_effect() -> None:
    (scenario,) = ok(f"{CTR}scenario slow {{ ctr -1%, labels ctr lognormal(median 4h, p95 12h) }}").scenarios
    first, labels = scenario.effects
    assert first.kind == "relative"
    assert (labels.target, labels.kind) == ("ctr", "labels")
    assert labels.delay is not None and labels.delay.distribution == "lognormal"
    assert (labels.delay.median_s, labels.delay.p95_s) == (14400.0, 43200.0)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("scenario s { }", "RL221"),
        ("scenario s { ctr -200% absolute }", "RL201"),
        ("scenario s { ctr 5Gi }", "RL201"),
        ("scenario s { ctr -2% after 3 }", "RL201"),
        ("scenario s { labels ctr later }", "RL214"),
        ("scenario s { ctr -2% }\nscenario s { ctr -3% }", "RL101"),
    ],
)
def test_scenario_errors(body: str, code: str) -> None:
    assert codes(CTR + body) == [code]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("scenario s { crt -2% }", "scenario `s` changes unknown `crt`"),
        ("scenario s { labels clicks fixed(1h) }", "scenario `s` changes the labels of unknown metric `clicks`"),
    ],
)
def test_scenario_effects_name_something(body: str, message: str) -> None:
    (found,) = errors(CTR + body)
    assert (found.code, found.message) == ("RL130", message)
    assert found.span is not None and found.span.line == 3  # the rollout's line 1, the metric's line 2
    name = message.rsplit("`", 2)[1]
    assert body[found.span.col - 1:found.span.end_col - 1] == name
    assert "ctr" in found.help


def test_holdout() -> None:
    holdout = ok("holdout 1% on stable for 14d").holdout
    assert holdout is not None and (holdout.percent, holdout.role, holdout.duration_s) == (1.0, "stable", 1209600.0)
    other = ok("holdout 0.5% on candidate for 1w").holdout
    assert other is not None and (other.percent, other.role) == (0.5, "candidate")


@pytest.mark.parametrize("text", ["0% on stable for 1d", "100% on stable for 1d", "1 on stable for 1d",
                                  "1% on stable for 14"])
def test_holdout_errors(text: str) -> None:
    assert codes(f"holdout {text}") == ["RL201"]


def test_pipeline_hooks_keep_order() -> None:
    hooks = ok('pipeline {\n smoke "make smoke"\n contract "pytest tests/contract"\n'
               ' parity "python -m parity --sample 1000" }').pipeline
    assert [(h.name, h.command) for h in hooks] == [
        ("smoke", "make smoke"), ("contract", "pytest tests/contract"),
        ("parity", "python -m parity --sample 1000")]
    assert codes('pipeline { smoke "a" smoke "b" }') == ["RL101"]


def test_approvals() -> None:
    approvals = ok('canary { mpr: 50% for 7d  100% }\napprove promotion by "@a", "@b"\n'
                   'approve rollback by "@oncall"\napprove mpr by "@leads"').approvals
    assert [(a.what, a.approvers) for a in approvals] == [
        ("promotion", ("@a", "@b")), ("rollback", ("@oncall",)), ("mpr", ("@leads",))]


def test_approving_something_unknown_is_rl115() -> None:
    (diag,) = errors('canary { mpr: 50% for 7d  100% }\napprove promotoin by "@a"')
    assert diag.code == "RL115" and diag.help == "did you mean `promotion`?"


def test_request_log() -> None:
    log = ok("log requests 5% {\n fields trace_id, model_version, prediction, card_number, email\n"
             " pii card_number hashed, email dropped, phone\n retain 30d }").request_log
    assert log is not None
    assert (log.sample_percent, log.retain_s) == (5.0, 2592000.0)
    assert log.fields == ("trace_id", "model_version", "prediction", "card_number", "email")
    assert len(log.field_spans) == len(log.fields)
    assert [(p.name, p.treatment) for p in log.pii] == [
        ("card_number", "hashed"), ("email", "dropped"), ("phone", None)]


def test_request_log_defaults_and_errors() -> None:
    log = ok("log requests 0.5% { }").request_log
    assert log is not None and (log.sample_percent, log.fields, log.pii, log.retain_s) == (0.5, (), (), None)
    assert codes("log requests 5% { fields a, a }") == ["RL101"]
    assert codes("log requests 5% { pii a hashed, a dropped }") == ["RL101"]
    assert codes("log requests 5 { }") == ["RL201"]
    assert codes("log requests 5% { retain 30 }") == ["RL201"]


# -- gate sets, imports and use gates ------------------------------------------------------------------

POLICY = """
gates slo {
  metric ctr: binary, baseline 4.2%
  gate latency: p99 latency < 300ms   every 1m, fail after 3
  gate errors:  error rate < 1%       every 1m, fail after 2
  on latency, errors fail: rollback now
}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A tiny repository: a pyproject.toml marker and a shared policy file."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "slo.rollout").write_text(POLICY)
    (tmp_path / "teams" / "recs").mkdir(parents=True)
    return tmp_path


def _load_file(repo: Path, text: str, rel: str = "teams/recs/r.rollout") -> Program:
    path = repo / rel
    path.write_text(text)
    return load(path)


def test_gate_set_lowers_alone() -> None:
    program = load_text(POLICY, "policies/slo.rollout", root=ROOT)
    assert program.diagnostics == []
    assert program.main is not None and program.main.rollouts == ()
    (gs,) = program.main.gate_sets
    assert gs.name == "slo" and [g.name for g in gs.gates] == ["latency", "errors"]
    assert all(g.origin == "slo" for g in gs.gates) and gs.rules[0].origin == "slo"
    assert [m.name for m in gs.label_metrics] == ["ctr"] and gs.label_metrics[0].origin == "slo"


def test_use_gates_from_the_same_file() -> None:
    program = load_text(POLICY + "rollout r { use gates slo }", "t.rollout", root=ROOT)
    assert program.diagnostics == []
    (rollout,) = program.rollouts()
    assert [(g.name, g.origin) for g in rollout.gates] == [("latency", "slo"), ("errors", "slo")]
    latency = rollout.gate("latency")
    assert isinstance(latency, ir.SloGate) and (latency.threshold, latency.failure_limit) == (0.3, 3)


def test_use_gates_through_an_import(repo: Path) -> None:
    program = _load_file(repo, 'import "policies/slo.rollout"\n'
                               "rollout r {\n use gates slo\n gate drift: psi(s) < 0.2\n on drift fail: pause\n}\n")
    assert program.diagnostics == []
    assert program.entry == "teams/recs/r.rollout" and "policies/slo.rollout" in program.files
    (rollout,) = program.rollouts()
    assert [(g.name, g.origin) for g in rollout.gates] == [("drift", None), ("latency", "slo"), ("errors", "slo")]
    assert [r.gates for r in rollout.rules] == [("drift",), ("latency", "errors")]
    assert rollout.rules[1].actions[0].immediate is True
    assert [u.name for u in rollout.uses] == ["slo"]
    assert rollout.label_metric("ctr") is not None


def test_local_metric_wins_over_the_set(repo: Path) -> None:
    program = _load_file(repo, 'import "policies/slo.rollout"\n'
                               "rollout r { metric ctr: binary, baseline 3%\n use gates slo }\n")
    assert program.diagnostics == []
    (rollout,) = program.rollouts()
    metric = rollout.label_metric("ctr")
    assert metric is not None and metric.baseline == pytest.approx(0.03) and metric.origin is None
    assert len(rollout.label_metrics) == 1


def test_transitive_imports_make_sets_visible(repo: Path) -> None:
    (repo / "policies" / "all.rollout").write_text('import "policies/slo.rollout"\ngates none { }\n')
    program = _load_file(repo, 'import "policies/all.rollout"\nrollout r { use gates slo }\n')
    assert program.diagnostics == []
    assert set(program.files) == {"teams/recs/r.rollout", "policies/all.rollout", "policies/slo.rollout"}
    (rollout,) = program.rollouts()
    assert {g.name for g in rollout.gates} == {"latency", "errors"}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('import "/etc/slo.rollout"\nrollout r { }', "RL120"),
        ('import "~/slo.rollout"\nrollout r { }', "RL120"),
        ('import "../outside.rollout"\nrollout r { }', "RL121"),
        ('import "policies/slo.rollot"\nrollout r { }', "RL123"),
        ('import "policies/slo.rollout"\nrollout r { use gates sol }', "RL110"),
        ("rollout r { use gates slo }", "RL110"),
        ('import "policies/slo.rollout"\nrollout r { gate errors: error rate < 2%\n use gates slo }', "RL101"),
    ],
)
def test_import_and_use_errors(repo: Path, text: str, code: str) -> None:
    program = _load_file(repo, text)
    assert [d.code for d in program.diagnostics] == [code]


def test_import_errors_explain_themselves(repo: Path) -> None:
    (missing,) = _load_file(repo, 'import "policies/slo.rollot"\nrollout r { }').diagnostics
    assert missing.help == "did you mean `policies/slo.rollout`?"
    (unknown,) = _load_file(repo, 'import "policies/slo.rollout"\nrollout r { use gates sol }').diagnostics
    assert unknown.help == "did you mean `slo`?"


def test_import_cycle_is_rl122(repo: Path) -> None:
    (repo / "a.rollout").write_text('import "b.rollout"\ngates a { }\n')
    (repo / "b.rollout").write_text('import "a.rollout"\ngates b { }\n')
    program = load(repo / "a.rollout")
    (diag,) = program.diagnostics
    assert diag.code == "RL122" and "a.rollout -> b.rollout -> a.rollout" in diag.message


def test_root_marker_decides_import_base(repo: Path) -> None:
    """The same import line works from any folder: paths are relative to the root, not the file."""
    (repo / "teams" / "recs" / "deep").mkdir()
    program = _load_file(repo, 'import "policies/slo.rollout"\nrollout r { use gates slo }',
                         rel="teams/recs/deep/r.rollout")
    assert program.diagnostics == [] and program.root == repo.resolve()
