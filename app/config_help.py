"""One-line explanations shown next to each key in the config editor.

The engine's models say what a value may be; these say what it *does*, for an operator who has not
read the code. Keys without an entry simply show no help.
"""
from __future__ import annotations

SECTION_TITLES = {
    "lending": "Lending (AAVE v3 supply)",
    "staking": "Staking (liquid staking token)",
    "leverage": "Leverage loop (AAVE v3)",
    "hedge": "Hedge (perp shorts on CEXs)",
    "rebalancing": "Rebalancing triggers",
    "risk": "Risk limits (live trading)",
}

FIELD_HELP = {
    "mode": "The strategy this file configures; pick another mode with the selector above.",
    "share_class": "Currency the results are reported in and whether price exposure is allowed "
                   "(usdt_stable must hedge every ETH/BTC exposure; eth_directional never hedges).",
    "description": "Free text shown in listings.",
    "lending.enabled": "Supply one asset on AAVE v3 and earn its supply rate (pure_lending).",
    "lending.asset": "The asset supplied on AAVE.",
    "staking.enabled": "Hold a liquid staking token and earn the staking rate.",
    "staking.lst_type": "weETH (ether.fi) or wstETH (Lido).",
    "staking.rewards_mode": "Rewards counted on top of the staking rate: base_only; base_eigen (KING weekly "
                            "EIGEN + ETHFI top-ups, paid on their dates at pool prices); base_eigen_seasonal "
                            "(also the ETHFI seasonal airdrops, conservative end). wstETH: base_only.",
    "leverage.enabled": "Loop the LST on AAVE: supply as collateral, borrow WETH, stake it, repeat.",
    "leverage.emode": "Use AAVE's ETH-correlated e-mode (higher LTV for LST collateral against WETH debt).",
    "leverage.target_ltv": "Debt / collateral value the loop aims for; must stay below the e-mode maximum LTV.",
    "leverage.loop_method": "atomic: one flash-loan bundle; sequential: stake/supply/borrow per iteration.",
    "leverage.max_iterations": "Sequential loop cap: empty = loop until the next borrow is below the minimum; "
                               "0 = no loop; N = at most N iterations.",
    "leverage.min_borrow_eth": "Stop looping when the next borrow would be smaller than this (ETH).",
    "leverage.flash_venue": "Flash-loan provider for the atomic loop; empty for sequential.",
    "hedge.enabled": "Short USDT-margined perps against the long leg.",
    "hedge.underlying": "The asset hedged (and held long in the basis modes).",
    "hedge.spot_venue": "CEX holding the spot leg in basis modes; empty when the long leg is on-chain.",
    "hedge.allocation": "Share of the hedge placed on each exchange; the weights must sum to 1.",
    "hedge.margin_ratio_target": "Equity / notional placed at each perp venue at entry (above the venues' "
                                 "initial margin).",
    "rebalancing.enabled": "Act on the triggers below during the run.",
    "rebalancing.margin_ratio_trigger": "Move value to a perp venue when its margin ratio falls below this.",
    "rebalancing.margin_ratio_ceiling": "Move a venue's surplus margin back to the long leg when its margin ratio rises above this.",
    "rebalancing.delta_drift_trigger": "Resize the hedge when |net delta| drifts above this fraction of the position.",
    "rebalancing.hf_floor": "Deleverage when the AAVE health factor falls below this.",
    "rebalancing.hf_target": "Health factor to restore when deleveraging.",
    "risk.max_drawdown": "Live: stop (or reduce) when the value falls this fraction below its peak.",
    "risk.max_daily_loss": "Live: stop (or reduce) after losing this fraction in one day.",
    "risk.max_position_usdt": "Largest CEX spot or perp position, in USDT: legs are sized within it in "
                              "backtests and live; capital beyond it stays idle.",
    "risk.hf_floor": "Live: health factor below which trading is halted or reduced.",
    "risk.margin_ratio_floor": "Live: margin ratio below which trading is halted or reduced.",
    "risk.max_data_age_seconds": "Live: market data older than this stops trading.",
    "risk.breach_action": "What a breached limit does: halt (cancel only) or reduce (risk-reducing orders only).",
}
