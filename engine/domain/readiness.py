"""Readiness check results: what a pre-live check of one venue found, as plain values.

The checks themselves talk to venues (venues.checks); their results are shown by the app and the
command line and gate production live starts, so the result type lives here, where every layer
may use it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any


class CheckStatus(str, Enum):
    OK = "OK"
    WARN = "WARN"      # works, but look at it
    FAIL = "FAIL"      # do not go live
    SKIP = "SKIP"      # not run; the message says why


@dataclass(frozen=True)
class CheckResult:
    venue: str
    check: str
    status: CheckStatus
    message: str
    hint: str = ""
    latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        d["latency_ms"] = None if self.latency_ms is None else round(self.latency_ms, 1)
        return d
