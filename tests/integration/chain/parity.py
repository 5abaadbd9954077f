"""The engine beside the real AAVE v3 Pool: an engine MarketView filled hour by hour from the chain, and
the relative errors between what the engine computes and what the Pool reports.

The engine values AAVE positions as scaled balance x index x price (engine.components.risk), which
is what the Pool does in wei (rayMul half-up, then x price / 10^decimals rounded down, in 8-decimal
base currency). Prices come from the historical hour (the engine's own inputs); the feeds on chain are
the same numbers rounded to 8 decimals. Indices are the Pool's normalized ones: the engine's daily
AaveScan indices follow mainnet's rate model and utilisation, the local Pool its own, so comparing
balances needs the Pool's indices fed into the engine's maths.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from engine.domain.market import MarketView
from venues.onchain.devstack.history import HourState

RAY = 10**27
RESERVES = ("WETH", "weETH")  # the loop's debt and collateral


def rel(engine: float, chain: float) -> float:
    """|engine - chain| / |chain| (0 when both are 0)."""
    if chain == 0:
        return 0.0 if engine == 0 else float("inf")
    return abs(engine - chain) / abs(chain)


def empty_view() -> MarketView:
    return MarketView(
        timestamps=[], spot={"ETH": []}, perp={}, funding={},
        supply_index={r: [] for r in RESERVES}, borrow_index={r: [] for r in RESERVES},
        lst_oracle={"weETH": [], "wstETH": []}, lst_market={"weETH": [], "wstETH": []},
        gas_gwei=[], cost_bps={},
    )


async def append_hour(view: MarketView, aave, hour: HourState, block: int) -> int:
    """One more hour in ``view``: the hour's prices and the Pool's indices at ``block``; returns t."""
    view.timestamps.append(str(hour.timestamp))
    view.spot["ETH"].append(float(hour.eth_usd))
    for lst in ("weETH", "wstETH"):
        view.lst_oracle[lst].append(float(hour.oracle[lst]))
        view.lst_market[lst].append(float(hour.market[lst]))
    for state in await asyncio.gather(*(aave.reserve_state(reserve, block) for reserve in RESERVES)):
        view.supply_index[state.asset].append(state.normalized_income_ray / RAY)
        view.borrow_index[state.asset].append(state.normalized_variable_debt_ray / RAY)
    view.gas_gwei.append(0.0)
    return len(view.timestamps) - 1


@dataclass
class ParityErrors:
    """The worst relative error seen per quantity, and at which hour."""

    worst: dict[str, tuple[float, int]] = field(default_factory=dict)

    def add(self, name: str, engine: float, chain: float, hour: int) -> float:
        error = rel(engine, chain)
        if error >= self.worst.get(name, (-1.0, 0))[0]:
            self.worst[name] = (error, hour)
        return error

    def max(self, name: str) -> float:
        return self.worst[name][0]

    def lines(self) -> list[str]:
        return [f"{name:<44} max rel. error {err:.2e} ({f'hour {hour}' if hour >= 0 else 'the liquidation'})"
                for name, (err, hour) in self.worst.items()]
