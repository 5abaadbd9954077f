"""Section titles of the config editor.

What each key does is its field description in engine.config.mode_models (the editor shows it as
the key's tooltip), so a key and its explanation live together.
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
