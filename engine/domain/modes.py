"""How a strategy's instructions are executed: the three ways one strategy runs."""
from __future__ import annotations

from enum import StrEnum


class ExecutionMode(StrEnum):
    """backtest: historical data, simulated fills; paper: live market data, simulated fills (no order
    reaches a venue); live: live market data, real orders."""

    BACKTEST = "backtest"
    PAPER = "paper"
    LIVE = "live"

    @property
    def sends_orders(self) -> bool:
        """Orders reach a venue (and the venue's account is the truth the book is checked against)."""
        return self is ExecutionMode.LIVE

    @classmethod
    def parse(cls, value: str | ExecutionMode) -> ExecutionMode:
        """The mode named by ``value``; ValueError naming the allowed values otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"execution {value!r} (allowed: {', '.join(m.value for m in cls)})") from None


#: The execution modes a live trading session can run in.
SESSION_MODES: tuple[ExecutionMode, ...] = (ExecutionMode.PAPER, ExecutionMode.LIVE)
