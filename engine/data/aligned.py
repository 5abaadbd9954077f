"""AlignedMarketData: the one hourly frame a run reads, as plain float64 numpy columns.

Built once per run by the historical provider (or loaded from its cache); the engine loop then
indexes arrays by hour and never touches pandas. Arrays are read-only because the same arrays may
be shared between runs through the cache and an accidental in-place edit would corrupt them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from engine.domain.rewards import RewardPayout
from engine.data.provenance import SeriesProvenance

FUNDING_HOURS_UTC: tuple[int, ...] = (0, 8, 16)


@dataclass
class AlignedMarketData:
    """Hourly UTC grid (inclusive start..end) and same-length float64 columns with no NaN.

    fallbacks: human-readable flags for every hour where a value did not come from the series'
               own source at that hour (forward fills, other-venue substitutes, dedup choices).
    notes:     cleaning facts that did not change any value in the window (e.g. identical duplicate
               rows dropped), kept so a user can audit what was done to the raw files.
    gas_units: operation name -> gas units (operation_gas_costs_summary).
    aave_risk_params: the parsed aave_v3_risk_parameters.json.
    reward_payouts: ether.fi reward distributions paid inside the window, on this grid's hours.
    reward_benchmark: (UTC day, DeFiLlama eETH reward APY %) for the window's days that have one.
    provenance: per column, how many values came from another source or a forward fill, and the
               cleaning its source file needed (results: ``data_fallbacks``).
    """

    index: pd.DatetimeIndex
    columns: dict[str, np.ndarray]
    fallbacks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gas_units: dict[str, int] = field(default_factory=dict)
    aave_risk_params: dict[str, Any] = field(default_factory=dict)
    reward_payouts: list[RewardPayout] = field(default_factory=list)
    reward_benchmark: list[tuple[int, float]] = field(default_factory=list)
    provenance: dict[str, SeriesProvenance] = field(default_factory=dict)

    def substitute_warnings(self) -> list[str]:
        """One warning per series that is more than half substitute (OKX BTC perp: all of it)."""
        return [p.warning() for p in self.provenance.values() if p.mostly_substitute]

    def provenance_summary(self) -> dict[str, dict[str, Any]]:
        """``data_fallbacks`` for the results: every series, keyed by column."""
        return {column: p.to_dict() for column, p in self.provenance.items()}

    def __post_init__(self) -> None:
        if not isinstance(self.index, pd.DatetimeIndex) or str(self.index.tz) != "UTC":
            raise ValueError("AlignedMarketData.index must be a tz-aware UTC pandas DatetimeIndex")
        n = len(self.index)
        for name, values in self.columns.items():
            if not isinstance(values, np.ndarray) or values.dtype != np.float64 or values.shape != (n,):
                raise ValueError(
                    f"AlignedMarketData column {name!r} must be a float64 array of shape ({n},), got "
                    f"{type(values).__name__} {getattr(values, 'dtype', None)} "
                    f"{getattr(values, 'shape', None)}"
                )
            if not np.isfinite(values).all():
                bad = int(np.count_nonzero(~np.isfinite(values)))
                raise ValueError(f"AlignedMarketData column {name!r} has {bad} NaN/inf values")
            values.flags.writeable = False

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(
                f"no column {name!r} in the aligned data; "
                f"available columns: {', '.join(sorted(self.columns))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __len__(self) -> int:
        return len(self.index)

    @property
    def start(self) -> pd.Timestamp:
        return self.index[0]

    @property
    def end(self) -> pd.Timestamp:
        return self.index[-1]

    @cached_property
    def hours_of_day(self) -> np.ndarray:
        """Hour of day (0..23, UTC) for each row, int64."""
        hours = np.asarray(self.index.hour, dtype=np.int64)
        hours.flags.writeable = False
        return hours

    @cached_property
    def is_funding_hour(self) -> np.ndarray:
        """True at the perp funding settlement hours 00/08/16 UTC."""
        mask = np.isin(self.hours_of_day, FUNDING_HOURS_UTC)
        mask.flags.writeable = False
        return mask
