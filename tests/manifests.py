"""What the Kubernetes target tests share: compiling specs, and the real validators for what comes out.

* Argo Rollouts objects against the upstream CRD schemas made strict the way
  kubectl's server-side validation is (an unknown field is an error);
* Istio objects against ``*.strict.schema.json``;
* core objects (Service, HPA, ConfigMap, RBAC) with ``kubernetes-validate --strict``;
* PromQL with promql-parser in-process (promtool, the authority, is in the tests).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from rolloutlang.diagnostics import Diagnostic
from rolloutlang.loader import Program, load, load_text
from rolloutlang.targets.base import CompileOptions, Output
from rolloutlang.targets.driver import compile_program

ROOT = Path(__file__).resolve().parent.parent
# ../shared beside the repository (the main checkout, CI); a worktree sits one level deeper.
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if (p / "schemas").is_dir()),
              ROOT.parent / "shared")
SCHEMAS = SHARED / "schemas"
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.rollout"))
K8S_VERSION = "1.30"
ARGS = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")


def compile_text(text: str, targets: list[str], root: Path | None = None, name: str = "spec.rollout",
                 **options: Any) -> tuple[list[Output], list[Diagnostic]]:
    return _compile(load_text(text, name, root or ROOT), targets, **options)


def compile_example(example: str, targets: list[str], **options: Any) -> tuple[list[Output], list[Diagnostic]]:
    return _compile(load(ROOT / "examples" / f"{example}.rollout", ROOT), targets, **options)


def _compile(program: Program, targets: list[str], **options: Any) -> tuple[list[Output], list[Diagnostic]]:
    result = compile_program(program, targets, CompileOptions(**options))
    return result.outputs, result.diagnostics


def documents(outputs: list[Output]) -> Iterator[tuple[str, dict[str, Any]]]:
    for out in outputs:
        for doc in yaml.safe_load_all(out.text):
            if doc is not None:
                yield out.path, doc


def by_kind(outputs: list[Output], kind: str) -> list[dict[str, Any]]:
    return [d for _, d in documents(outputs) if d.get("kind") == kind]


# -- schemas ------------------------------------------------------------------------------------------


def _strict(node: Any) -> Any:
    """kubectl validates strictly: a field the CRD schema does not list is an error (check_manifests.py does so too)."""
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if "properties" in node and "additionalProperties" not in node \
                and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    elif isinstance(node, list):
        node = [_strict(v) for v in node]
    return node


@functools.cache
def validator(kind: str) -> Any:
    import jsonschema

    files = {
        "Rollout": "argo-rollouts/rollout.schema.json",
        "AnalysisTemplate": "argo-rollouts/analysistemplate.schema.json",
        "VirtualService": "istio/virtualservice.strict.schema.json",
        "DestinationRule": "istio/destinationrule.strict.schema.json",
    }
    schema = json.loads((SCHEMAS / files[kind]).read_text(encoding="utf-8"))
    if kind in ("Rollout", "AnalysisTemplate"):
        schema = _strict(schema)
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"const": "argoproj.io/v1alpha1"}
        props["kind"] = {"const": kind}
        props["metadata"] = {"type": "object", "required": ["name"],
                             "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                                     "maxLength": 63},
                                            "namespace": {"type": "string"},
                                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                            "annotations": {"type": "object",
                                                            "additionalProperties": {"type": "string"}}},
                             "additionalProperties": False}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    return jsonschema.Draft7Validator(schema)


def schema_errors(doc: dict[str, Any]) -> list[str]:
    kind = doc.get("kind", "")
    if kind in ("Rollout", "AnalysisTemplate", "VirtualService", "DestinationRule"):
        return [f"{'/'.join(map(str, e.path))}: {e.message[:200]}" for e in validator(kind).iter_errors(doc)]
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc).splitlines()[0]]
    return []


# -- PromQL ---------------------------------------------------------------------------------------------


def prometheus_queries(outputs: list[Output]) -> list[tuple[str, str]]:
    """(template/metric, query) for every Prometheus metric generated."""
    out = []
    for t in by_kind(outputs, "AnalysisTemplate"):
        for m in t["spec"]["metrics"]:
            q = m["provider"].get("prometheus", {}).get("query")
            if q:
                out.append((f"{t['metadata']['name']}/{m['name']}", q))
    return out


def fill_args(query: str, values: dict[str, str] | None = None) -> str:
    values = values or {}
    return ARGS.sub(lambda m: values.get(m.group(1), "abc123"), query)
