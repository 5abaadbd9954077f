"""EIP-1559 fees under a hard cap, and the bump a replacement needs.

- The next block's base fee comes from ``eth_feeHistory`` (its last ``baseFeePerGas`` entry is the
  *next* block's, which the protocol fixes from the latest block), the tip from the node's
  ``eth_maxPriorityFeePerGas`` bounded by the configured ceiling.
- ``maxFeePerGas = min(cap, 2 x next base fee + tip)``: room for the base fee to rise for a few
  blocks, never above the cap. If even ``next base fee + tip`` is above the cap the transaction could
  not be included now, so it is refused before signing, naming both numbers.
- A replacement must raise both fields by at least the configured bump (nodes require +10 %), and
  by more when the market moved; a replacement above the cap is refused the same way.
"""

from __future__ import annotations

import math

from engine.domain.onchain_ports import FeeQuote
from venues.onchain.tx.settings import TxSettings, gwei


class FeeCapExceeded(Exception):
    """The fee a transaction needs is above the configured cap (message names cap and fee)."""


def quote(next_base_fee_wei: int, suggested_tip_wei: int, settings: TxSettings) -> FeeQuote:
    cap = settings.max_fee_per_gas_wei
    tip = max(0, min(suggested_tip_wei, settings.max_priority_fee_wei))
    needed = next_base_fee_wei + tip
    if needed > cap:
        raise FeeCapExceeded(
            f"the next block needs {gwei(needed)} per gas (base fee {gwei(next_base_fee_wei)} + tip "
            f"{gwei(tip)}), above the cap max_fee_per_gas_gwei = {gwei(cap)}: nothing was signed; wait for "
            "lower fees or raise the cap in configs/venues/alchemy.yaml"
        )
    return FeeQuote(
        base_fee_wei=next_base_fee_wei,
        priority_fee_wei=tip,
        max_fee_wei=min(cap, 2 * next_base_fee_wei + tip),
        cap_wei=cap,
    )


def bumped(
    previous_max_fee_wei: int,
    previous_tip_wei: int,
    market: FeeQuote | None,
    settings: TxSettings,
    *,
    what: str = "replacement",
) -> FeeQuote:
    """Fees for a replacement at the same nonce: at least +bump on both, at least the market's."""
    factor = 1 + settings.replacement_fee_bump
    tip = math.ceil(previous_tip_wei * factor)
    required = math.ceil(previous_max_fee_wei * factor)
    base = previous_max_fee_wei - previous_tip_wei
    preferred = required
    if market is not None:
        base = market.base_fee_wei
        tip = max(tip, market.priority_fee_wei)
        required = max(required, market.base_fee_wei + tip)  # includable in the next block
        preferred = max(required, 2 * market.base_fee_wei + tip)
    tip = max(tip, 1)  # a zero tip cannot be bumped by a percentage
    required = max(required, tip)
    cap = settings.max_fee_per_gas_wei
    if required > cap:
        raise FeeCapExceeded(
            f"the {what} needs maxFeePerGas {gwei(required)} (+{settings.replacement_fee_bump:.1%} over "
            f"{gwei(previous_max_fee_wei)}, and at least base fee + tip), above the cap "
            f"max_fee_per_gas_gwei = {gwei(cap)}: not sent; raise the cap in configs/venues/alchemy.yaml "
            "to replace it"
        )
    return FeeQuote(
        base_fee_wei=base, priority_fee_wei=min(tip, required), max_fee_wei=min(preferred, cap), cap_wei=cap
    )
