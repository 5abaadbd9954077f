"""What a strategy program's run came to, as a value the caller acts on (never parsed from text).

A program either runs to its end, or an instruction stops it. Why it stopped decides what happens
next: the trading state refusing it (HALTED, or REDUCING for an order that adds risk) is the state
doing its job; a refusal by a venue or a pre-trade check means nothing executed and the program's
plan does not fit the account; a venue error (timeout, outage, a fill not confirmed) leaves the
outcome to the next reconciliation. Which exception types mean which is declared by whoever builds
the execution manager (`Failures`); any other exception is a bug and propagates.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class StopKind(str, Enum):
    HALTED = "halted"            # the trading state refused the instruction
    REJECTED = "rejected"        # a venue or a pre-trade check refused it; nothing executed
    VENUE_ERROR = "venue_error"  # the venue failed; what it did is reconciled from its own state


@dataclass(frozen=True, slots=True)
class ProgramStop:
    kind: StopKind
    venue: str
    operation: str               # the instruction's op ("perp_trade", ...)
    reason: str                  # the refusal's or the error's own message

    def __str__(self) -> str:
        return f"{self.venue} {self.operation}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ProgramOutcome:
    fills: int
    stop: ProgramStop | None = None

    @property
    def completed(self) -> bool:
        """The program ran to its end."""
        return self.stop is None

    @property
    def halted(self) -> bool:
        return self.stop is not None and self.stop.kind is StopKind.HALTED


@dataclass(frozen=True)
class Failures:
    """The exception types that stop a program, by kind. Anything else raised is a bug."""

    halted: tuple[type[BaseException], ...] = ()
    rejected: tuple[type[BaseException], ...] = ()
    venue_error: tuple[type[BaseException], ...] = ()

    @property
    def all(self) -> tuple[type[BaseException], ...]:
        return self.halted + self.rejected + self.venue_error

    def kind_of(self, exc: BaseException) -> StopKind:
        if isinstance(exc, self.halted):
            return StopKind.HALTED
        if isinstance(exc, self.rejected):
            return StopKind.REJECTED
        return StopKind.VENUE_ERROR
