"""The starting capital of a run, validated the same way wherever it comes from: the share class's
`default_capital`, `--capital` on the CLI, the app's Capital fields, a live session request.

A capital must be a finite number above zero and at most `MAX_CAPITAL[currency]`. The bound is not a
risk limit (those live in the mode's `risk:` section and the venue files); it rejects values that can
only be typing mistakes or overflow, before they reach an instruction:

- 1e10 USDT is more than any single exchange's open interest in an ETH or BTC perp and far above
  what the venues' depth and position limits let a mode deploy; past it a result says nothing.
- 1e7 ETH is about 8 % of all ETH in existence.
- float64 carries ~16 significant digits: at 1e10 the hourly reconciliation (value change against the
  sum of attributed components, over ~15,000 hours) stays near 1e-4, well inside its 0.01 tolerance;
  at 1e30 it is meaningless (a 1e30 run "reconciled" to 6e14).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

MAX_CAPITAL: dict[str, float] = {"USDT": 1e10, "ETH": 1e7}

_CAPITAL: dict[str, TypeAdapter[float]] = {cur: TypeAdapter(Annotated[float, Field(strict=False, gt=0, le=bound, allow_inf_nan=False)])
            for cur, bound in MAX_CAPITAL.items()}


class CapitalError(ValueError):
    """The capital cannot be used; the message names where it came from and what is accepted."""


def check_capital(value: object, currency: str, source: str = "capital") -> float:
    """Return `value` as a float, or raise CapitalError naming `source` and the allowed range."""
    bound = MAX_CAPITAL.get(currency)
    if bound is None:
        raise CapitalError(f"{source}: unknown share-class currency {currency!r} "
                           f"(allowed: {', '.join(MAX_CAPITAL)})")
    if isinstance(value, bool):     # pydantic's lax float accepts True as 1.0; a capital never is one
        raise CapitalError(f"{source} must be a number of {currency}, got {value!r}")
    try:
        return float(_CAPITAL[currency].validate_python(value))
    except ValidationError as exc:
        kind = exc.errors()[0]["type"]
    if kind == "finite_number":
        why = "must be a finite number"
    elif kind == "greater_than":
        why = "must be positive"
    elif kind == "less_than_equal":
        why = f"is above the largest accepted capital {bound:,.0f} {currency}"
    else:
        why = f"must be a number of {currency}"
    shown = f"{value:g}" if isinstance(value, float) else repr(value)
    raise CapitalError(f"{source} {shown} {why} (allowed: 0 < capital <= {bound:g} {currency})")


def check_capital_text(text: str, currency: str | None, source: str = "capital") -> float:
    """Parse a capital typed by a person ("100,000", "1e6"). Without the currency, the widest bound
    applies here and the engine checks the share class's own bound when the run starts."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    try:
        value = float(cleaned)
    except ValueError:
        raise CapitalError(f"{source} {text.strip()!r} is not a number") from None
    widest = max(MAX_CAPITAL, key=MAX_CAPITAL.__getitem__)
    return check_capital(value, currency or widest, source)
