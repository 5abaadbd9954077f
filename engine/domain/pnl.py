"""P&L component keys. The sum of these equals the change in value every hour."""
from __future__ import annotations

COMPONENTS: tuple[str, ...] = (
    "lending",          # aToken growth through the supply (liquidity) index
    "borrow",           # debt growth through the variable borrow index (negative)
    "staking",          # LST oracle exchange-rate growth
    "rewards",          # restaking / seasonal rewards credited
    "funding",          # perp funding settlements on current notional
    "perp_mtm",         # perp mark-to-market
    "spot_price",       # price change of spot holdings (ETH, BTC, LST/ETH exposure, gas debt)
    "execution_costs",  # fees, slippage, peg difference on swaps, flash fees, transfer fees
    "gas",              # ETH gas burned
    "liquidation",      # liquidation penalties (AAVE bonus, CEX liquidation fee)
)
COMPONENT_INDEX = {name: i for i, name in enumerate(COMPONENTS)}
