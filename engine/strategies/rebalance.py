"""Why a strategy rebalances, as a value the program branches on (never a string parsed with
startswith). Its text ("margin:binance", "delta", ...) is what events and instructions show."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class RebalanceKind(str, Enum):
    MARGIN = "margin"                  # a venue's margin ratio fell below the trigger: move value to it
    MARGIN_EXCESS = "margin_excess"    # a venue holds margin above the ceiling: bring the surplus home
    DELTA = "delta"                    # net delta drifted beyond the trigger: resize the hedge
    HF_FLOOR = "hf_floor"              # the health factor fell below its floor: deleverage
    CAPACITY = "capacity"              # a leg grew past its position limit: shrink it to its target


@dataclass(frozen=True, slots=True)
class Rebalance:
    kind: RebalanceKind
    venue: str | None = None           # the venue a margin rebalance is about
    note: str = ""                     # why, when the kind alone does not say it

    @property
    def moves_margin(self) -> bool:
        """Value moves to the perp venues (their margin is short, or a leg must shrink to its target)."""
        return self.kind in (RebalanceKind.MARGIN, RebalanceKind.CAPACITY)

    def __str__(self) -> str:
        text = f"{self.kind.value}:{self.venue}" if self.venue else self.kind.value
        return f"{text} ({self.note})" if self.note else text


DELTA = Rebalance(RebalanceKind.DELTA)
HF_FLOOR = Rebalance(RebalanceKind.HF_FLOOR)
CAPACITY = Rebalance(RebalanceKind.CAPACITY)


def margin(venue: str, note: str = "") -> Rebalance:
    return Rebalance(RebalanceKind.MARGIN, venue, note)


def margin_excess(venue: str) -> Rebalance:
    return Rebalance(RebalanceKind.MARGIN_EXCESS, venue)
