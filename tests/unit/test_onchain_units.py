"""Decimal token units <-> integer base units at the port boundary; uniswap price/tick math; linking."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from venues.onchain.devstack.artifacts import Artifact
from venues.onchain.devstack.uniswap_math import (
    aligned_tick,
    price_from_sqrt_x96,
    raw_price,
    sqrt_price_x96,
    tick_at,
)
from venues.onchain.wallet import from_base_units, to_base_units


def test_amounts_round_down_never_up():
    assert to_base_units(D("1.2345679"), 6, "x") == 1_234_567
    assert to_base_units(D("0.000000000000000001"), 18, "x") == 1
    assert from_base_units(1_234_567, 6) == D("1.234567")


@pytest.mark.parametrize("bad", [1.5, 2, "3"])
def test_only_decimals_are_accepted(bad):
    with pytest.raises(TypeError, match="amounts are Decimal"):
        to_base_units(bad, 18, "supply WETH")


@pytest.mark.parametrize("bad", [D(0), D(-1), D("NaN"), D("Infinity")])
def test_non_positive_or_non_finite_amounts_are_refused(bad):
    with pytest.raises(ValueError, match="supply WETH"):
        to_base_units(bad, 18, "supply WETH")


def test_dust_below_one_base_unit_is_refused():
    with pytest.raises(ValueError, match="below one base unit"):
        to_base_units(D("0.0000001"), 6, "supply USDT")


def test_sqrt_price_round_trip_and_decimals():
    # 3000 USDT (6 decimals) per WETH (18 decimals), WETH as token0.
    price = raw_price(D(3000), 18, 6)
    assert price == D("3E-9")
    back = price_from_sqrt_x96(sqrt_price_x96(price))
    assert abs(back / price - 1) < D("1e-24")  # one unit of a ~4e24 sqrtPriceX96, squared
    from decimal import getcontext

    assert getcontext().prec == 28  # the math used a local context


def test_ticks_align_to_the_fee_tier_spacing():
    tick = tick_at(D("1.0001") ** 125)
    assert tick in (124, 125)
    assert aligned_tick(125, 3000, up=False) == 120 and aligned_tick(125, 3000, up=True) == 180
    assert aligned_tick(-125, 3000, up=False) == -180 and aligned_tick(-120, 3000, up=True) == -120
    assert aligned_tick(10**7, 3000, up=True) == 887220  # clamped inside MAX_TICK


def test_library_placeholders_are_replaced_at_their_offsets():
    placeholder = "__$0123456789abcdef0123456789abcdef01$__"
    artifact = Artifact(
        "Pool", [], "0x6001" + placeholder + "6002", {"contracts/L.sol": {"L": [{"start": 2, "length": 20}]}}
    )
    linked = artifact.link({"L": "0x" + "ab" * 20})
    assert linked == "0x6001" + "ab" * 20 + "6002"
    with pytest.raises(ValueError, match="needs libraries L"):
        artifact.link({})
