"""A hand-set two-hour market for unit tests of the venue layer and the executors."""
from __future__ import annotations

from engine.domain.market import MarketView

MARK = 2_000.0
COSTS = ([5.0, 5.0], [7.0, 7.0], [13.0, 13.0])
PERP_COSTS = ([3.0, 3.0], [4.0, 4.0], [8.0, 8.0])


def market(marks: tuple[float, float] = (MARK, MARK), weeth: tuple[float, float] = (1.05, 1.05),
           highs: tuple[float, float] | None = None, lows: tuple[float, float] | None = None) -> MarketView:
    """Two hours; ETH spot and every venue's perp at `marks` (closes); `highs`/`lows`: every perp's
    bar range (none: only closes are known)."""
    spot = list(marks)
    venues = ("binance", "bybit", "okx")
    return MarketView(
        timestamps=["2024-06-01T00:00:00Z", "2024-06-01T01:00:00Z"],
        spot={"ETH": spot}, perp={(v, "ETH"): list(marks) for v in ("binance", "bybit", "okx")},
        funding={(v, "ETH"): [0.0, 0.0] for v in ("binance", "bybit", "okx")},
        supply_index={r: [1.0, 1.0] for r in ("weETH", "WETH")}, borrow_index={"WETH": [1.0, 1.0]},
        lst_oracle={"weETH": list(weeth)}, lst_market={"weETH": list(weeth)},
        gas_gwei=[10.0, 10.0],
        cost_bps={"ETH_USDT": COSTS, "ETHUSDT-PERP": PERP_COSTS, "ETH_weETH": COSTS},
        perp_high={(v, "ETH"): list(highs) for v in venues} if highs else {},
        perp_low={(v, "ETH"): list(lows) for v in venues} if lows else {},
    )
