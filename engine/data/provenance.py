"""Where each aligned series' values came from: its own source, another venue, or a forward fill.

A backtest on substitutes is a backtest of something else: the OKX BTC perp has no price file at
all, so every one of its hours is the Binance (or Bybit) close, and a result that books OKX basis
there must say so. Each column builder records, per series, how many hours (or funding
settlements) took another source's value and from which, how many were carried forward, and what
cleaning the source file needed; the results report it as ``data_fallbacks`` and a series that is
more than half substitute is a warning at the start of the run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Above this share of substituted (other source or forward-filled) values a series is a warning.
MOSTLY_SUBSTITUTE = 0.5


@dataclass
class SeriesProvenance:
    """Counts for one aligned series over one run's window."""

    column: str                      # aligned column, e.g. "perp.okx.BTC"
    series: str                      # what an operator calls it, e.g. "okx BTC perp"
    unit: str                        # "hours" or "settlements" (funding)
    total: int                       # values in the window
    substitutes: dict[str, int] = field(default_factory=dict)   # other source -> values it supplied
    forward_filled: int = 0          # values carried forward from an earlier one
    cleaning: dict[str, int] = field(default_factory=dict)      # cleaning step -> rows in the file(s)
    flags: list[str] = field(default_factory=list)              # the human-readable details

    def substitute(self, source: str, count: int) -> None:
        if count:
            self.substitutes[source] = self.substitutes.get(source, 0) + int(count)

    def clean(self, steps: dict[str, int], source: str | None = None) -> None:
        for step, count in steps.items():
            if count:
                key = f"{source}: {step}" if source else step
                self.cleaning[key] = self.cleaning.get(key, 0) + int(count)

    @property
    def substituted(self) -> int:
        return sum(self.substitutes.values()) + self.forward_filled

    @property
    def own(self) -> int:
        return self.total - self.substituted

    @property
    def substitute_share(self) -> float:
        return self.substituted / self.total if self.total else 0.0

    @property
    def mostly_substitute(self) -> bool:
        return self.substitute_share > MOSTLY_SUBSTITUTE

    def warning(self) -> str:
        """The run-start warning for a series that is mostly not its own data."""
        parts = [f"{n:,} from {source}" for source, n in self.substitutes.items()]
        if self.forward_filled:
            parts.append(f"{self.forward_filled:,} carried forward")
        return (f"{self.series} is {self.substitute_share:.0%} substitute data: {self.substituted:,} of "
                f"{self.total:,} {self.unit} come from other sources ({', '.join(parts)}), not from the "
                f"{self.series} itself")

    def summary_line(self) -> str:
        """One line for the CLI summary."""
        parts = [f"{n:,} {source}" for source, n in self.substitutes.items()]
        if self.forward_filled:
            parts.append(f"{self.forward_filled:,} forward-filled")
        text = f"{self.series}: {self.own:,} of {self.total:,} {self.unit} own"
        if parts:
            text += f"; substitutes: {', '.join(parts)} ({self.substitute_share:.1%})"
        if self.cleaning:
            text += "; cleaning: " + ", ".join(f"{step} {n:,}" for step, n in self.cleaning.items())
        return text

    @property
    def noteworthy(self) -> bool:
        return bool(self.substituted or self.cleaning)

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": self.series, "unit": self.unit, "total": self.total, "own": self.own,
            "substituted": self.substituted, "substitute_share": round(self.substitute_share, 6),
            "substitutes": dict(self.substitutes), "forward_filled": self.forward_filled,
            "cleaning": dict(self.cleaning), "flags": list(self.flags),
        }

    @classmethod
    def from_dict(cls, column: str, d: dict[str, Any]) -> SeriesProvenance:
        return cls(column, d["series"], d["unit"], int(d["total"]), {k: int(n) for k, n in d["substitutes"].items()},
                   int(d["forward_filled"]), {k: int(n) for k, n in d["cleaning"].items()}, list(d["flags"]))
