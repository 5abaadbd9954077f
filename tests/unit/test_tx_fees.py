"""EIP-1559 fee choice under the cap, and replacement bumps."""

from __future__ import annotations

import pytest

from engine.domain.onchain_ports import FeeQuote
from venues.onchain.tx.fees import FeeCapExceeded, bumped, quote
from venues.onchain.tx.settings import TxSettings

GWEI = 10**9


def settings(cap_gwei: float = 100, tip_gwei: float = 2, bump: float = 0.125) -> TxSettings:
    return TxSettings(
        gas_limit_margin=1.25,
        max_fee_per_gas_wei=int(cap_gwei * GWEI),
        max_priority_fee_wei=int(tip_gwei * GWEI),
        confirmations=2,
        stuck_after_s=60,
        replacement_fee_bump=bump,
        max_replacements=3,
        poll_interval_s=1,
        private_rpc_url=None,
    )


def test_max_fee_leaves_room_for_two_base_fees_under_the_cap():
    q = quote(10 * GWEI, 1 * GWEI, settings())
    assert (q.base_fee_wei, q.priority_fee_wei, q.max_fee_wei, q.cap_wei) == (
        10 * GWEI,
        GWEI,
        21 * GWEI,
        100 * GWEI,
    )


def test_tip_is_bounded_by_the_configured_ceiling():
    assert quote(10 * GWEI, 50 * GWEI, settings(tip_gwei=2)).priority_fee_wei == 2 * GWEI


def test_max_fee_is_clamped_to_the_cap_when_the_base_fee_is_high_but_payable():
    q = quote(60 * GWEI, 2 * GWEI, settings(cap_gwei=100))
    assert q.max_fee_wei == 100 * GWEI


def test_above_the_cap_is_refused_with_both_numbers():
    with pytest.raises(FeeCapExceeded) as info:
        quote(150 * GWEI, 2 * GWEI, settings(cap_gwei=100))
    text = str(info.value)
    assert "152 gwei" in text and "base fee 150 gwei" in text and "max_fee_per_gas_gwei = 100 gwei" in text
    assert "nothing was signed" in text


def test_replacement_bumps_both_fields_by_at_least_the_configured_fraction():
    q = bumped(20 * GWEI, 2 * GWEI, None, settings())
    assert q.max_fee_wei == 22_500_000_000 and q.priority_fee_wei == 2_250_000_000


def test_replacement_follows_a_market_that_moved_more_than_the_bump():
    market = FeeQuote(
        base_fee_wei=30 * GWEI, priority_fee_wei=3 * GWEI, max_fee_wei=63 * GWEI, cap_wei=100 * GWEI
    )
    q = bumped(20 * GWEI, 2 * GWEI, market, settings())
    assert q.priority_fee_wei == 3 * GWEI and q.max_fee_wei == 63 * GWEI


def test_a_zero_tip_still_gets_bumped():
    assert bumped(10 * GWEI, 0, None, settings()).priority_fee_wei >= 1


def test_replacement_above_the_cap_is_refused():
    with pytest.raises(FeeCapExceeded) as info:
        bumped(95 * GWEI, 2 * GWEI, None, settings(cap_gwei=100), what="cancel")
    assert "the cancel needs maxFeePerGas 106.9 gwei" in str(info.value)


def test_replacement_capped_but_still_includable():
    market = FeeQuote(
        base_fee_wei=60 * GWEI, priority_fee_wei=2 * GWEI, max_fee_wei=100 * GWEI, cap_wei=100 * GWEI
    )
    q = bumped(50 * GWEI, 2 * GWEI, market, settings(cap_gwei=100))
    assert q.max_fee_wei == 100 * GWEI  # 2 x 60 + tip would be 122: clamped to the cap
    assert q.max_fee_wei >= 60 * GWEI + q.priority_fee_wei  # still includable in the next block
