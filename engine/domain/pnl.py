"""P&L component keys. The sum of these equals the change in value every hour."""
from __future__ import annotations

COMPONENTS: tuple[str, ...] = (
    "lending",          # aToken growth through the supply (liquidity) index
    "borrow",           # debt growth through the variable borrow index (negative)
    "staking",          # LST oracle exchange-rate growth
    "lst_peg",          # LSTs' market rate vs their oracle rate (what an exit gets vs what AAVE counts)
    "rewards",          # ether.fi reward payments, net of their sale cost and gas
    "funding",          # perp funding settlements on current notional
    "perp_mtm",         # perp mark-to-market
    "spot_price",       # price change of spot holdings (ETH, BTC, LST/ETH exposure, gas debt)
    "execution_costs",  # fees, slippage, peg difference on swaps, flash fees, transfer fees
    "gas",              # ETH gas burned
    "liquidation",      # liquidation penalties (AAVE bonus, CEX liquidation fee)
)
COMPONENT_INDEX = {name: i for i, name in enumerate(COMPONENTS)}
