"""Sweep axes from the command line: `--grid key=v1,v2,...` (values as `--set` reads them) and
Optuna ranges `key=lo..hi`."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from engine.config import ConfigError, parse_cli_overrides


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[Any, ...] = ()
    low: float | None = None           # a range (Optuna searches only)
    high: float | None = None

    @property
    def is_range(self) -> bool:
        return self.low is not None


class GridError(ValueError):
    """A malformed --grid argument."""


def parse_axis(text: str, allow_range: bool = False) -> Axis:
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise GridError(f"--grid {text!r}: expected key=v1,v2,... (e.g. leverage.target_ltv=0.86,0.88,0.9)")
    if ".." in values and "," not in values:
        if not allow_range:
            raise GridError(f"--grid {text!r}: a range lo..hi needs --optuna (a grid lists its values)")
        lo, _, hi = values.partition("..")
        bounds = [_value(key, part, text) for part in (lo, hi)]
        if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds) or bounds[0] >= bounds[1]:
            raise GridError(f"--grid {text!r}: a range needs two numbers lo < hi")
        return Axis(key, (), float(bounds[0]), float(bounds[1])) if any(isinstance(b, float) for b in bounds) \
            else Axis(key, (), bounds[0], bounds[1])
    parsed = tuple(_value(key, part, text) for part in values.split(","))
    if len(set(map(repr, parsed))) != len(parsed):
        raise GridError(f"--grid {text!r}: a value is listed twice")
    return Axis(key, parsed)


def _value(key: str, part: str, text: str) -> Any:
    if not part.strip():
        raise GridError(f"--grid {text!r}: empty value")
    try:
        return parse_cli_overrides([f"{key}={part.strip()}"])[key]
    except ConfigError as exc:
        raise GridError(f"--grid {text!r}: {exc.errors[0].message}") from None


def parse_axes(texts: list[str], allow_range: bool = False) -> list[Axis]:
    axes = [parse_axis(t, allow_range) for t in texts]
    keys = [a.key for a in axes]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup:
        raise GridError(f"--grid {dup}: given more than once")
    return axes


def expand(axes: list[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the first axis varying slowest."""
    if not axes:
        return [{}]
    return [dict(zip([a.key for a in axes], combo)) for combo in itertools.product(*(a.values for a in axes))]
