"""A minimal client for Prometheus's HTTP API: instant queries at a moment in time.

Only the standard library, so `rollout evaluate` starts fast in its job.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

DEFAULT_TIMEOUT_S = 30.0


class PrometheusError(Exception):
    """Prometheus answered, and said the query is wrong (``bad_data``) or failed executing it."""


class Unreachable(PrometheusError):
    """No answer: the server is down, the address is wrong, or it timed out."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector (or a scalar, with no labels) at the query time."""

    value: float
    labels: dict[str, str] = field(default_factory=dict)


def query(address: str, promql: str, at: float, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Sample]:
    """Run an instant query at unix time ``at``; an empty list for an empty vector.

    Raises:
        Unreachable: no usable answer from the server.
        PrometheusError: the server rejected or failed the query.
    """
    base = address.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise Unreachable(f"`{address}` is not an http(s) address")
    data = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"}).encode()
    request = urllib.request.Request(base + "/api/v1/query", data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        message = _error_message(body) or f"HTTP {exc.code}"
        if exc.code in (400, 422):
            raise PrometheusError(message) from None
        raise Unreachable(message) from None
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot reach Prometheus at {address}: {reason}") from None
    try:
        payload = json.loads(body)
    except ValueError:
        raise Unreachable(f"{address} did not answer with Prometheus JSON") from None
    if payload.get("status") != "success":
        raise PrometheusError(payload.get("error") or "query failed")
    return _samples(payload.get("data") or {})


def _error_message(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except ValueError:
        return ""
    return str(payload.get("error") or "") if isinstance(payload, dict) else ""


def _number(text: object) -> float:
    try:
        return float(str(text))  # Prometheus writes "NaN", "+Inf" and "-Inf" as strings
    except ValueError:
        return math.nan


def _samples(data: dict[str, object]) -> list[Sample]:
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return [Sample(_number(result[1]))]
    if kind == "vector" and isinstance(result, list):
        out = []
        for item in result:
            if isinstance(item, dict) and isinstance(item.get("value"), list) and len(item["value"]) == 2:
                labels = item.get("metric") or {}
                out.append(Sample(_number(item["value"][1]), {str(k): str(v) for k, v in labels.items()}))
        return out
    raise PrometheusError(f"expected an instant vector or a scalar, got a {kind}")
