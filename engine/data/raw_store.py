"""RawStore: parses each data file at most once per provider and remembers the result.

available_window() and load() both need the parsed sources; keeping them here means a cold load
parses every file once, and column builders can share sources (the OKX perp reuses the Binance one).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from engine.data import catalog, readers

T = TypeVar("T")


class RawStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._parsed: dict[tuple[str, str], Any] = {}

    def path(self, rel: str) -> Path:
        return catalog.resolve(self.data_dir, rel)

    def _get(self, kind: str, rel: str, parse: Callable[[Path], T]) -> T:
        key = (kind, rel)
        if key not in self._parsed:
            self._parsed[key] = parse(self.path(rel))
        return self._parsed[key]

    def derived(self, key: tuple[str, ...], compute: Callable[[], T]) -> T:
        """Memoize a value computed from parsed sources (e.g. a venue's de-duplicated funding)."""
        full_key = ("derived", "/".join(key))
        if full_key not in self._parsed:
            self._parsed[full_key] = compute()
        return self._parsed[full_key]

    def spot(self, asset: str) -> readers.TimeSeries:
        return self.spot_bars(asset).close

    def spot_bars(self, asset: str) -> readers.Bars:
        rel = catalog.SPOT_FILES[asset]
        return self._get("bars", rel, partial(_read_bars, rel=rel, label=f"{catalog.SPOT_SOURCES[asset]} close"))

    def spot_fallbacks(self, asset: str) -> list[readers.TimeSeries]:
        """Other venues' spot closes for `asset`, in priority order."""
        return [bars.close for bars in self.spot_fallback_bars(asset)]

    def spot_fallback_bars(self, asset: str) -> list[readers.Bars]:
        return [self._get("bars", rel, partial(_read_bars, rel=rel, label=f"{label} close"))
                for label, rel in catalog.SPOT_FALLBACK_FILES[asset]]

    def perp(self, venue: str, asset: str) -> readers.TimeSeries | None:
        """The venue's own perp closes, or None when the pack has no file (OKX BTC)."""
        bars = self.perp_bars(venue, asset)
        return bars.close if bars is not None else None

    def perp_bars(self, venue: str, asset: str) -> readers.Bars | None:
        rel = catalog.PERP_FILES.get((venue, asset))
        if rel is None:
            return None
        return self._get("bars", rel, partial(_read_bars, rel=rel, label=f"{venue} {asset} perp"))

    def funding(self, venue: str, asset: str) -> readers.RawRows:
        rel = catalog.FUNDING_FILES[(venue, asset)]
        return self._get(
            "funding", rel, lambda p: readers.read_funding_rows(p, rel, f"{venue} {asset} funding")
        )

    def aave(self, reserve: str) -> readers.AaveSnapshots:
        rel = catalog.AAVE_RATE_FILES[reserve]
        return self._get(
            "aave", rel, lambda p: readers.read_aave_snapshots(p, rel, f"AAVE {reserve} daily indices")
        )

    def lst_oracle(self, lst: str) -> readers.TimeSeries:
        rel = catalog.LST_ORACLE_FILES[lst]
        return self._get(
            "oracle", rel, lambda p: readers.read_lst_oracle(p, rel, f"{lst}/ETH AAVE oracle", lst)
        )

    def lst_peg(self, lst: str) -> readers.TimeSeries:
        rel = catalog.LST_PEG_FILES[lst]
        return self._get("peg", rel, lambda p: readers.read_peg_market(p, rel, f"{lst} market peg"))

    def gas(self) -> readers.TimeSeries:
        rel = catalog.GAS_PRICES_FILE
        return self._get("gas", rel, lambda p: readers.read_gas_gwei(p, rel, "gas price"))

    def execution_costs(self) -> readers.CostTable:
        rel = catalog.EXECUTION_COSTS_FILE
        return self._get("costs", rel, lambda p: readers.read_execution_costs(p, rel))

    def gas_units(self) -> dict[str, int]:
        return self._get("gas_units", catalog.GAS_UNITS_FILE, readers.read_gas_units)

    def risk_params(self) -> dict[str, Any]:
        return self._get("risk", catalog.AAVE_RISK_PARAMS_FILE, readers.read_risk_params)


def _read_bars(path: Path, *, rel: str, label: str) -> readers.Bars:
    return readers.read_bars(path, rel, label)
