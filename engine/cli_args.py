"""Range checks for numeric command-line options, shared by every headless command.

argparse's ``type=float`` accepts ``inf``, ``nan`` and ``1e308``. Each of those is a real way to get
a run that misbehaves quietly (``--dead-man inf`` used to leave the exchange-side cancel-after
unarmed while trading), so every numeric option states its finite range and is checked once, after
parsing, with a one-line message naming the option.
"""
from __future__ import annotations

import math


class OptionRangeError(ValueError):
    """A numeric option is not finite or outside its range (the message names the option)."""


def check_range(value: float | None, option: str, low: float, high: float, *, unit: str = "",
                zero_means: str | None = None) -> float | int | None:
    """``value`` unchanged if it is None, finite and in [low, high] (or 0 when ``zero_means`` says
    what 0 does); otherwise OptionRangeError naming ``option`` and the allowed range."""
    if value is None:
        return None
    suffix = f" {unit}" if unit else ""
    allowed = f"{_num(low)}..{_num(high)}{suffix}" + (f", or 0 ({zero_means})" if zero_means else "")
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionRangeError(f"{option} must be a finite number ({allowed}), got {value}")
    if zero_means is not None and value == 0:
        return value
    if not low <= value <= high:
        raise OptionRangeError(f"{option} must be within {allowed}, got {_num(value)}")
    return value


def _num(x: float) -> str:
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10_000 else str(x)
    return f"{x:g}"
