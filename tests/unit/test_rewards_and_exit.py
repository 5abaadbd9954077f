"""Reward book, reward sale and exit value on small hand-made markets, checked by hand arithmetic."""
from __future__ import annotations

import math

import pytest

from engine.components.exit_value import exit_value
from engine.components.rewards import RewardBook
from engine.config import load_config
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.domain.rewards import RewardPayout
from engine.services.run_params import build_run_params
from venues.simulated.venue import SimulatedVenues

HOURS = 100
ETH = 2_000.0
GWEI = 10.0
COSTS = {
    "EIGEN_ETH": (10.0, 16.0, 35.0),
    "ETHFI_ETH": (15.0, 25.0, 50.0),
    "ETH_USDT": (5.0, 7.0, 13.0),
    "ETH_weETH": (20.0, 24.0, 35.0),
    "ETHUSDT-PERP": (3.0, 4.0, 8.0),
}


def market(oracle: float = 1.05, peg: float = 1.04) -> MarketView:
    flat = [1.0] * HOURS
    return MarketView(
        timestamps=[f"h{i}" for i in range(HOURS)],
        spot={"ETH": [ETH] * HOURS},
        perp={("binance", "ETH"): [ETH + 5.0] * HOURS},
        funding={("binance", "ETH"): [0.0] * HOURS},
        supply_index={"weETH": flat, "WETH": flat},
        borrow_index={"WETH": [1.1] * HOURS},
        lst_oracle={"weETH": [oracle] * HOURS},
        lst_market={"weETH": [peg] * HOURS},
        gas_gwei=[GWEI] * HOURS,
        cost_bps={pair: tuple([b] * HOURS for b in buckets) for pair, buckets in COSTS.items()},
    )


def payout(kind="eigen_weekly", token="EIGEN", start=-50, end=49, at=60, per_eeth=0.2, price=0.001,
           king=True) -> RewardPayout:
    return RewardPayout(kind=kind, token=token, label=f"{token} test", period_start_hour=start,
                        period_end_hour=end, payout_hour=at, per_eeth=per_eeth, price_eth=price,
                        price_source="test pool", pool_fee_bps=30.0, via_king=king)


def test_owed_is_the_period_average_balance_with_hours_before_the_run_holding_nothing():
    book = RewardBook([payout()], "base_eigen", HOURS)
    book.eligible[:50] = 10.0          # held 10 eETH over the 50 period hours inside the run
    average, tokens = book.owed(book.payouts[0])
    assert average == pytest.approx(10.0 * 50 / 100)            # the period has 100 hours, 50 before the run
    assert tokens == pytest.approx(average * 0.2)


def test_rewards_mode_selects_the_streams():
    payouts = [payout(), payout("ethfi_topup", "ETHFI"), payout("ethfi_season", "ETHFI", king=False)]
    assert [p.kind for p in RewardBook(payouts, "base_eigen", HOURS).payouts] == ["eigen_weekly", "ethfi_topup"]
    assert len(RewardBook(payouts, "base_eigen_seasonal", HOURS).payouts) == 3
    assert not RewardBook(payouts, "base_only", HOURS).active
    assert not RewardBook([payout(at=HOURS)], "base_eigen", HOURS).active      # paid after the run


def _venues(mode: str) -> tuple[SimulatedVenues, Portfolio]:
    params = build_run_params(load_config(mode))
    portfolio = Portfolio()
    return SimulatedVenues(portfolio, market(), params), portfolio


def test_eth_class_sale_pays_the_bucket_pool_fee_and_king_plus_swap_gas():
    venues, p = _venues("eth_staking_only")
    tokens = 4_000.0                       # 4 ETH of EIGEN at 0.001 ETH: $8,000, the 10k bucket
    sale = venues.sell_reward(60, payout(), tokens)
    gross = tokens * 0.001
    proceeds = gross * (1 - (10.0 + 30.0) * 1e-4)
    gas = (150_000 + 180_000) * GWEI * 1e-9          # UNWRAP_KING_TOKEN + TOKEN_SWAP
    assert (sale.gross_value, sale.proceeds, sale.gas) == pytest.approx((gross, proceeds, gas))
    assert sale.net_value == pytest.approx(proceeds - gas)
    assert p.wallet.tokens["ETH"] == pytest.approx(proceeds - gas)       # gas paid from the proceeds
    assert "GAS_DEBT" not in p.wallet.tokens


def test_usdt_class_sale_continues_to_usdt_and_owes_gas_in_eth():
    venues, p = _venues("usdt_market_neutral_no_leverage")
    sale = venues.sell_reward(60, payout(king=False), 4_000.0)
    eth_out = 4.0 * (1 - 40.0 * 1e-4)
    hop = 5.0                                   # $7,968 of WETH -> USDT: the 10k bucket
    usdt = eth_out * ETH * (1 - (hop + venues.params.swap_fee_bps) * 1e-4)
    gas_eth = 180_000 * GWEI * 1e-9                                       # a seasonal drop: no KING to unwrap
    assert sale.token_out == "USDT" and sale.proceeds == pytest.approx(usdt)
    assert p.wallet.tokens["USDT"] == pytest.approx(usdt)
    assert p.wallet.tokens["GAS_DEBT"] == pytest.approx(-gas_eth)
    assert sale.gas == pytest.approx(gas_eth * ETH)


def test_a_reward_worth_less_than_its_costs_is_left_unclaimed_and_an_unpriced_one_is_never_sold():
    venues, p = _venues("eth_staking_only")
    assert venues.sell_reward(60, payout(), 1.0) is None          # 0.001 ETH against 0.0033 ETH of gas
    assert venues.sell_reward(60, payout(price=None), 4_000.0) is None
    assert p.wallet.tokens == {}


def test_exit_value_of_a_loop_sells_the_collateral_at_market_and_repays_through_a_flash_loan():
    params = build_run_params(load_config("eth_leveraged"))
    mv = market(oracle=1.05, peg=1.04)
    p = Portfolio()
    p.wallet.supply_scaled["weETH"] = 100.0           # 100 weETH collateral
    p.wallet.debt_scaled["WETH"] = 80.0               # 88 WETH of debt at the 1.1 borrow index
    p.wallet.tokens["ETH"] = 0.5
    out = exit_value(p, mv, HOURS - 1, params)
    mtm = 100 * 1.04 - 88 + 0.5                        # ETH, weETH at its market rate
    notional = 100 * 1.04 * ETH                        # $208k: between the 100k and 1m buckets
    bps = 24.0 + (35.0 - 24.0) * (math.log10(notional) - 5) + params.swap_fee_bps
    dex = 100 * 1.04 * bps * 1e-4
    gas = params.gas_units["ATOMIC_DELEVERAGE_ONE_SWAP"] * GWEI * 1e-9
    assert out.mark_to_market == pytest.approx(mtm)
    assert out.costs["dex_swaps"] == pytest.approx(dex) and out.costs["gas"] == pytest.approx(gas)
    assert out.costs["flash_fees"] == 0.0             # Morpho's flash loan is free
    assert out.value == pytest.approx(mtm - dex - gas)


def test_exit_value_of_a_hedge_closes_the_perp_and_sells_the_eth_for_usdt():
    params = build_run_params(load_config("usdt_market_neutral_no_leverage"))
    mv = market(oracle=1.05, peg=1.05)
    p = Portfolio()
    p.wallet.tokens["weETH"] = 10.0
    acct = p.account("binance")
    acct.usdt = 5_000.0
    acct.perp("ETH").trade(-10.5, ETH)
    out = exit_value(p, mv, HOURS - 1, params)
    mark = ETH + 5.0
    perp_notional = 10.5 * mark
    perp_bps = params.cex["binance"].perp_taker_bps + 3.0 + (4.0 - 3.0) * math.log10(perp_notional / 1e4)
    lst_notional = 10.5 * ETH
    lst_bps = 20.0 + (24.0 - 20.0) * math.log10(lst_notional / 1e4) + params.swap_fee_bps
    eth_after = 10.5 * (1 - lst_bps * 1e-4)
    usdt_bps = 5.0 + (7.0 - 5.0) * math.log10(eth_after * ETH / 1e4) + params.swap_fee_bps
    assert out.costs["cex_fees"] == pytest.approx(perp_notional * perp_bps * 1e-4)
    assert out.costs["dex_swaps"] == pytest.approx(lst_notional * lst_bps * 1e-4 + eth_after * ETH * usdt_bps * 1e-4)
    assert out.costs["gas"] == pytest.approx(2 * 180_000 * GWEI * 1e-9 * ETH)       # LST swap + ETH -> USDT
    mtm = 5_000.0 + 10.5 * ETH - 10.5 * (mark - ETH)
    assert out.mark_to_market == pytest.approx(mtm)
    assert out.value == pytest.approx(mtm - sum(out.costs.values()))
