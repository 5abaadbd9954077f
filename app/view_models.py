"""Plain values the controllers hand to the widgets (the widgets import no controller)."""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.services.live import EmergencyStopReport


@dataclass(frozen=True)
class CancelRow:
    """One venue's cancel-all progress at one moment (a copy: the service keeps mutating its own)."""

    request_id: str
    venue: str
    status: str               # pending | cancelling | done | failed | timeout
    canceled: int
    error: str
    elapsed_ms: float


@dataclass
class EStopPress:
    """What one press did, synchronously: which sessions are HALTED and how long that took."""

    at: float                                   # time.time() of the press
    halted_ms: float                            # press -> every session HALTED
    request_ids: list[str] = field(default_factory=list)
    source: str = "button"
    note: str = ""
    reports: dict[str, EmergencyStopReport] | None = None   # filled when the cancel-all finished
    error: str = ""
    finished_ms: float | None = None            # press -> every venue done, failed or timed out
