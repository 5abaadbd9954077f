"""The net ETH delta after every step of a market-neutral program, replayed from its event log.

The replay is independent of the engine's own delta code: it adds up what each event says moved
(a perp trade's signed size, the ETH a USDT -> ETH swap bought, the LST a stake minted at the oracle
rate, every step's gas), so a test can check the band after each instruction of a backtest's entry
and of a live session's (whose events are the venues' fills and the chain's deltas read back).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.domain.events import Event


@dataclass(frozen=True)
class Step:
    event: Event
    net_eth: float              # net ETH delta after the step


def net_after_each_step(events: list[Event], lst_oracle: float) -> list[Step]:
    """Top-level events in order, each with the net delta after it. The loop's steps move no ETH but
    their gas: a supply moves the LST into AAVE, a borrow adds as much debt as wallet ETH, and a bundle
    (the atomic loop) stakes and supplies what it borrows (a flash fee of 0, as on Morpho)."""
    net = 0.0
    out = []
    for e in events:
        if e.parent is not None:
            continue
        if e.type == "perp_trade":
            net += e.amount
        elif e.type == "swap":
            if (e.asset, e.to_asset) != ("USDT", "ETH"):
                raise ValueError(f"the replay knows USDT -> ETH swaps only, not {e.asset} -> {e.to_asset}")
            net += e.amount_out
        elif e.type == "stake":
            net += e.amount_out * lst_oracle - e.amount
        elif e.type not in ("transfer", "bundle", "set_emode", "approve", "supply", "borrow"):
            raise ValueError(f"the replay does not know a {e.type} step")
        net -= e.gas_eth
        out.append(Step(e, net))
    return out
