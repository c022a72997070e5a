"""Typed literals with units: durations, percentages, memory, counts.

The lexer reads every number, with or without a unit, as one token; this
module knows which units each kind of value accepts and explains a wrong or
missing one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rolloutlang.diagnostics import one_of

# A number and its unit, as the lexer reads them (NUMLIT): the unit runs to the end of the word.
_NUMBER = re.compile(r"^([+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(%|[A-Za-z_][A-Za-z0-9_]*)?$")
# `1h30m`: durations written with several units.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
MEMORY_UNITS = {
    "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}
CPU_UNITS = {"": 1.0, "m": 0.001}

# The ranges every value is checked against when a spec is lowered, so that
# nothing downstream (plan, statistics, targets, JSON) meets a number it
# cannot compute with: no infinity from `1e400`, no zero where a division
# follows, no count that would take a year to loop over.
MAX_NUMBER = 1e15  # any plain number, count or threshold, in absolute value
MAX_DURATION_S = 520 * DURATION_UNITS["w"]  # 520w, ten years
MIN_INTERVAL_S = 1.0  # `every`: monitoring systems sample every few seconds at best
MAX_INT32 = 2**31 - 1  # replicas, dimensions: what Kubernetes and the tensor formats hold


class UnitError(ValueError):
    """A literal that does not fit where it stands; message and hint are for people.

    ``code`` is RL201 for a wrong or missing unit, RL222 for a value out of its range.
    """

    def __init__(self, message: str, help: str = "", code: str = "RL201") -> None:
        super().__init__(message)
        self.message = message
        self.help = help
        self.code = code


def check_range(value: float, text: str, what: str, low: float | None = None, high: float | None = None,
                unit: str = "", *, above: bool = False, below: bool = False) -> float:
    """``value`` if it is finite and within [low, high], else an RL222 UnitError that states the range.

    ``above`` and ``below`` make the bounds strict: `more than 0%`, `less than 100%`.
    """
    fits_low = low is None or value > low or (value == low and not above)
    fits_high = high is None or value < high or (value == high and not below)
    if math.isfinite(value) and fits_low and fits_high:
        return value
    shown_low = "" if low is None else f"{_fmt(low)}{unit}"
    shown_high = "" if high is None else f"{_fmt(high)}{unit}"
    low_rule = shown_low and f"{'more than' if above else 'at least'} {shown_low}"
    high_rule = shown_high and f"{'less than' if below else 'at most'} {shown_high}"
    if low_rule and high_rule and not (above or below):
        rule = f"between {shown_low} and {shown_high}"
    else:
        rule = " and ".join(r for r in (low_rule, high_rule) if r)
    raise UnitError(f"{what} must be {rule}, got `{text}`", code="RL222")


@dataclass(frozen=True)
class Literal:
    number: float
    unit: str
    text: str


def is_number(text: str) -> bool:
    """Whether `text` is a number with an optional unit, like `12`, `2.5h` or `-1%`."""
    return _NUMBER.match(text) is not None


def split(text: str) -> Literal:
    m = _NUMBER.match(text)
    if not m:
        raise UnitError(f"`{text}` is not a number", "write a number such as `5`, `2.5` or `30m`")
    return Literal(float(m.group(1)), m.group(2) or "", text)


def duration(text: str, what: str = "a duration", minimum: float = 0.0, maximum: float = MAX_DURATION_S) -> float:
    """Seconds from `30s`, `5m`, `2h`, `1d`, `250ms`, `1w`, within [minimum, maximum] seconds."""
    lit = split(text)
    if lit.unit == "":
        n = _fmt(lit.number)
        likely = ("ms", "s") if "latency" in what else ("m", "h")
        raise UnitError(
            f"missing unit: {what} needs a unit",
            f"write `{n}{likely[0]}`, `{n}{likely[1]}` or another of {one_of(list(DURATION_UNITS))}",
        )
    if lit.unit not in DURATION_UNITS and re.fullmatch(f"(?:{_DURATION_PART.pattern})+", text):
        total = sum(float(n) * DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        raise UnitError(f"a duration takes one unit, got `{text}`", f"write `{format_duration(total)}`")
    if lit.unit not in DURATION_UNITS:
        close = [u for u in DURATION_UNITS if u.lower() == lit.unit.lower()] or [
            u for u in ("ms", "s", "m", "h", "d", "w") if lit.unit.startswith(u)]
        return_hint = f"write `{_fmt(lit.number)}{close[0]}`; " if close else ""
        raise UnitError(
            f"`{text}` is not a duration",
            f"{return_hint}durations use {one_of(list(DURATION_UNITS))}, e.g. `30m` or `2h`",
        )
    if lit.number < 0:
        raise UnitError(f"{what} cannot be negative (`{text}`)",
                        f"write a length of time such as `{_fmt(-lit.number)}{lit.unit}`")
    seconds = lit.number * DURATION_UNITS[lit.unit]
    if not (math.isfinite(seconds) and minimum <= seconds <= maximum):
        rule = f"at most {format_duration(maximum)}" if minimum == 0 else \
            f"between {format_duration(minimum)} and {format_duration(maximum)}"
        raise UnitError(f"{what} must be {rule}, got `{text}`", code="RL222",
                        help="ten years (`520w`) is the longest duration a spec can hold"
                        if seconds > maximum and maximum == MAX_DURATION_S else "")
    return seconds


# The smallest share of traffic other than 0% a spec can write (one request in 10^8): below it a weight is
# rounding noise, and subnormal shares reach the statistics as no information at all.
MIN_SHARE_PERCENT = 1e-6


def percent(text: str, what: str = "a percentage", *, allow_negative: bool = False, max_value: float = 100.0,
            share: bool = False) -> float:
    """A percentage as written (`4.2%` -> 4.2); range-checked to [0, max_value].

    A ``share`` of traffic is 0% or at least :data:`MIN_SHARE_PERCENT`.
    """
    lit = split(text)
    if lit.unit != "%":
        if lit.unit == "":
            raise UnitError(
                f"missing unit: {what} needs `%`",
                f"write `{_fmt(lit.number)}%`" + (f" (or `{_fmt(lit.number * 100)}%` if you meant a fraction)"
                                                  if 0 < abs(lit.number) <= 1 else ""),
            )
        raise UnitError(f"`{text}` is not a percentage", f"{what} is written like `5%`")
    if not allow_negative and lit.number < 0:
        raise UnitError(f"{what} cannot be negative (`{text}`)", f"{what} is a share from 0% to {_fmt(max_value)}%")
    if share and 0 < abs(lit.number) < MIN_SHARE_PERCENT:
        raise UnitError(f"{what} `{text}` is too small to tell from 0%", code="RL222",
                        help=f"write 0%, or a share of at least {_fmt(MIN_SHARE_PERCENT)}%")
    if lit.number > max_value or lit.number < -max_value:
        raise UnitError(
            f"{what} `{text}` is over {_fmt(max_value)}%",
            f"{what} is a share from 0% to {_fmt(max_value)}%" if not allow_negative
            else f"{what} is between -{_fmt(max_value)}% and {_fmt(max_value)}%",
        )
    return lit.number


def number(text: str, what: str = "a number", *, integer: bool = False, minimum: float | None = None,
           maximum: float | None = None, above: bool = False, below: bool = False) -> float:
    """A plain number without a unit, in [minimum, maximum] (``above``/``below``: strictly).

    Without a maximum a number is at most MAX_NUMBER in absolute value.
    """
    lit = split(text)
    if lit.unit:
        raise UnitError(f"{what} takes no unit, got `{text}`", f"write `{_fmt(lit.number)}`")
    if minimum is not None and lit.number < minimum:
        raise UnitError(f"{what} must be at least {_fmt(minimum)}, got `{text}`", code="RL222")
    if maximum is None and minimum is None:
        check_range(lit.number, text, what, -MAX_NUMBER, MAX_NUMBER)
    else:
        check_range(lit.number, text, what, minimum, MAX_NUMBER if maximum is None else maximum, above=above,
                    below=below)
    if integer and lit.number != int(lit.number):
        raise UnitError(f"{what} must be a whole number, got `{text}`")
    return lit.number


def fraction_or_percent(text: str, what: str) -> float:
    """`5%` -> 0.05; a bare number in [0, 1] is taken as a fraction."""
    lit = split(text)
    if lit.unit == "%":
        return percent(text, what, allow_negative=True) / 100.0
    if lit.unit == "":
        return check_range(lit.number, text, what, -MAX_NUMBER, MAX_NUMBER)
    raise UnitError(f"`{text}` is not a percentage or a number", f"{what} is written like `5%` or `0.05`")


MAX_MEMORY_BYTES = 1024 * MEMORY_UNITS["Ti"]
MAX_CPU_CORES = 10_000.0


def memory(text: str) -> int:
    lit = split(text)
    if lit.unit not in MEMORY_UNITS:
        raise UnitError(f"`{text}` is not a memory size", f"use {one_of(list(MEMORY_UNITS)[1:])}, e.g. `4Gi`")
    size = lit.number * MEMORY_UNITS[lit.unit]
    if not (math.isfinite(size) and 1 <= size <= MAX_MEMORY_BYTES):
        raise UnitError(f"memory must be between 1 byte and 1024Ti, got `{text}`", code="RL222")
    return int(size)


def cpu(text: str) -> float:
    lit = split(text)
    if lit.unit not in CPU_UNITS:
        raise UnitError(f"`{text}` is not a CPU amount", "write cores (`2`, `0.5`) or millicores (`500m`)")
    cores = lit.number * CPU_UNITS[lit.unit]
    if not (math.isfinite(cores) and 0.001 <= cores <= MAX_CPU_CORES):
        raise UnitError(f"CPU must be between 1m and {_fmt(MAX_CPU_CORES)} cores, got `{text}`", code="RL222")
    return cores


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 7200 -> `2h`, 90 -> `90s`, 0.25 -> `250ms`."""
    for unit in ("w", "d", "h", "m", "s"):
        size = DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{_fmt(seconds / size)}{unit}"
    if seconds < 1:
        return f"{_fmt(seconds * 1000)}ms"
    return f"{_fmt(seconds)}s"


def human_duration(seconds: float) -> str:
    """A readable approximation in one unit, as the language writes a duration: `30h`, `2.5d`, `2.5h`, `45m`."""
    if seconds >= 2 * 86400:
        return f"{_fmt(round(seconds / 86400, 1))}d"
    if seconds >= 3600:
        return f"{_fmt(round(seconds / 3600, 1))}h"
    if seconds >= 60:
        return f"{_fmt(round(seconds / 60, 1))}m"
    return f"{_fmt(round(seconds, 3))}s"


def duration_text(seconds: float) -> str:
    """A duration as the language writes it, in one unit: `24h`, `90m`, `7d`, `30h`, `45s` (rounded when long)."""
    if seconds == 0:
        return "0s"
    if seconds > 0 and seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds / 86400:g}d"
    if seconds > 0 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds > 0 and seconds % 60 == 0 and seconds < 3 * 3600:
        return f"{seconds / 60:g}m"
    if seconds >= 3 * 3600:
        return human_duration(seconds)
    return format_duration(seconds)


def format_percent(value: float) -> str:
    """A share already in percent, as written in specs: 5 -> `5%`, 0.5 -> `0.5%`."""
    return f"{value:g}%"


def format_count(n: float) -> str:
    """A count of requests or labels: `1,234,567`."""
    return f"{round(n):,}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"
