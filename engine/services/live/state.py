"""Trading state: ACTIVE, REDUCING (only risk-reducing orders), HALTED (nothing but cancels).

The state changes synchronously — no await — so an emergency stop takes effect the instant it is
pressed: every order goes through `OrderGate`, which checks `allows()` right before it sends.
Leaving HALTED needs an explicit `reset()`; nothing else moves the state out of it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable

log = logging.getLogger(__name__)


class TradingState(str, Enum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class TradingHalted(RuntimeError):
    """An order was refused because of the trading state."""


@dataclass(frozen=True, slots=True)
class StateChange:
    previous: TradingState
    current: TradingState
    reason: str
    at: float                   # time.time()
    monotonic: float            # time.perf_counter(), for latency measurements


class TradingStateMachine:
    def __init__(self, on_change: Callable[[StateChange], None] | None = None) -> None:
        self._state = TradingState.ACTIVE
        self._listeners: list[Callable[[StateChange], None]] = [on_change] if on_change else []
        self.history: list[StateChange] = []

    @property
    def state(self) -> TradingState:
        return self._state

    def subscribe(self, listener: Callable[[StateChange], None]) -> None:
        self._listeners.append(listener)

    def allows(self, reduce_only: bool) -> bool:
        """May an order be sent now? REDUCING lets only reduce-only orders through."""
        if self._state is TradingState.ACTIVE:
            return True
        return self._state is TradingState.REDUCING and reduce_only

    def check(self, reduce_only: bool, what: str) -> None:
        if not self.allows(reduce_only):
            raise TradingHalted(f"{what} refused: trading is {self._state.value}"
                                + ("" if self._state is TradingState.HALTED else " (reduce-only orders only)"))

    def halt(self, reason: str) -> StateChange | None:
        return self._move(TradingState.HALTED, reason)

    def reduce(self, reason: str) -> StateChange | None:
        """ACTIVE -> REDUCING. Never downgrades HALTED."""
        if self._state is TradingState.HALTED:
            return None
        return self._move(TradingState.REDUCING, reason)

    def reduce_for_flatten(self, reason: str) -> StateChange | None:
        """The one way out of HALTED other than reset: a confirmed flatten may send reduce-only orders."""
        return self._move(TradingState.REDUCING, reason)

    def reset(self, reason: str) -> StateChange | None:
        """The explicit operator action that returns to ACTIVE."""
        return self._move(TradingState.ACTIVE, reason)

    def _move(self, new: TradingState, reason: str) -> StateChange | None:
        if new is self._state:
            return None
        change = StateChange(self._state, new, reason, time.time(), time.perf_counter())
        self._state = new
        self.history.append(change)
        # The state has changed before any listener runs, and a listener's failure (a view, the
        # journal) is logged, never raised: a HALT must hold whatever a listener does.
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                log.exception("trading-state listener failed (the state is %s regardless)", new.value)
        return change
