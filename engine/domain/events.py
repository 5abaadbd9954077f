"""The event record: every state change gets a globally ordered event (docs/ARCHITECTURE.md, Events)."""
from __future__ import annotations

from dataclasses import dataclass

EVENT_COLUMNS = (
    "order", "timestamp", "hour", "venue", "type", "asset", "amount", "to_asset", "amount_out",
    "price", "execution_cost_usd", "gas_eth", "parent", "iteration", "reason",
)


@dataclass(slots=True)
class Event:
    order: int                  # global, strictly increasing across the run
    timestamp: str              # ISO hour (UTC)
    hour: int                   # index into the hourly grid (lets the UI seek)
    venue: str
    type: str
    asset: str = ""
    amount: float = 0.0
    to_asset: str = ""
    amount_out: float = 0.0
    price: float = 0.0
    execution_cost_usd: float = 0.0
    gas_eth: float = 0.0
    parent: int | None = None   # order of the enclosing atomic bundle
    iteration: int | None = None  # sequential leverage-loop iteration
    reason: str = ""

    def as_row(self) -> tuple:
        return tuple(getattr(self, c) for c in EVENT_COLUMNS)
