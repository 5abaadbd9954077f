"""Each simulated venue operation's arithmetic, recomputed by hand on a hand-set market: what it
takes, what it gives, what it costs and what gas it burns.

The market (tests/unit/market_support.py): ETH 2,000 on spot and every perp, gas 10 gwei, the cost
table's spot / DEX buckets 5 / 7 / 13 bps (10k / 100k / 1m) and perp buckets 3 / 4 / 8 bps. The venue
numbers come from the shipped files: Binance spot taker 10 bps, perp taker 5 bps, withdrawal fee
3 USDT; Uniswap pool fee 30 bps; Instadapp flash fee 5 bps. Gas units come from the alchemy file.
"""
from __future__ import annotations

import math

import pytest

from engine.config import load_config
from engine.domain.instructions import WALLET, Instruction, Op
from engine.domain.portfolio import Portfolio
from engine.services.run_params import build_run_params
from tests.unit.market_support import MARK, market
from venues.simulated.venue import ExecutionRejected, SimulatedVenues

GWEI = 10.0


def params(mode: str, **overrides):
    return build_run_params(load_config(mode, cli_overrides=overrides))


@pytest.fixture(scope="module")
def usdt_params():
    return params("usdt_market_neutral")


@pytest.fixture(scope="module")
def eth_params():
    return params("eth_leveraged")


def gas(p, op: str) -> float:
    return p.gas_units[op] * GWEI * 1e-9


# ------------------------------------------------------------------------------ CEX spot
@pytest.mark.parametrize("qty, bucket_bps", [
    (2.0, 5.0),                                           # 4,000: the 10k bucket
    (25.0, 5.0 + 2.0 * math.log10(5.0)),                  # 50,000: log-linear between 10k and 100k
    (2_000.0, 13.0 * 2.0),                                # 4,000,000: square-root impact, 13 x sqrt(4)
])
def test_a_spot_buy_pays_the_notional_plus_taker_fee_and_slippage(usdt_params, qty, bucket_bps):
    p = Portfolio()
    p.account("binance").usdt = 5e6
    world = SimulatedVenues(p, market(), usdt_params)
    fill = world.execute(Instruction(Op.SPOT_TRADE, "binance", "ETH", qty), 0)
    notional = qty * MARK
    fee = notional * (10.0 + bucket_bps) * 1e-4
    assert fill.execution_cost == pytest.approx(fee) and fill.price == MARK and fill.gas_eth == 0.0
    assert p.cex["binance"].usdt == pytest.approx(5e6 - notional - fee)
    assert p.cex["binance"].spot["ETH"] == qty


def test_a_spot_sell_receives_the_notional_less_the_fee_and_cannot_sell_what_it_lacks(usdt_params):
    p = Portfolio()
    acct = p.account("binance")
    acct.spot["ETH"] = 1.0
    world = SimulatedVenues(p, market(), usdt_params)
    world.execute(Instruction(Op.SPOT_TRADE, "binance", "ETH", -1.0), 0)
    assert acct.usdt == pytest.approx(MARK - MARK * 15.0 * 1e-4) and acct.spot["ETH"] == 0.0
    with pytest.raises(ExecutionRejected, match="cannot sell"):
        world.execute(Instruction(Op.SPOT_TRADE, "binance", "ETH", -0.5), 0)
    with pytest.raises(ExecutionRejected, match="cannot buy"):
        world.execute(Instruction(Op.SPOT_TRADE, "binance", "ETH", 10.0), 0)
    assert acct.spot["ETH"] == 0.0


# ------------------------------------------------------------------------------ CEX perp
def test_a_perp_round_trip_realises_the_price_move_and_pays_two_fees(usdt_params):
    """Short 1 ETH at 2,000, buy it back at 2,100: realised -100, fees 8 bps (5 taker + 3 slippage)
    of each leg's notional; cash is the only thing left."""
    p = Portfolio()
    p.account("binance").usdt = 1_000.0
    world = SimulatedVenues(p, market(marks=(MARK, 2_100.0)), usdt_params)
    opened = world.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -1.0), 0)
    closed = world.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", 1.0), 1)
    assert opened.execution_cost == pytest.approx(MARK * 8e-4)
    assert closed.execution_cost == pytest.approx(2_100.0 * 8e-4) and closed.price == 2_100.0
    assert p.cex["binance"].usdt == pytest.approx(1_000.0 - 100.0 - (MARK + 2_100.0) * 8e-4)
    assert p.cex["binance"].perps["ETH"].size == 0.0


def test_funding_is_paid_on_the_current_mark_notional(usdt_params):
    """A 2 ETH short at a 2,100 mark and a +0.01 % rate receives 2 x 2,100 x 0.0001 = 0.42."""
    mv = market(marks=(MARK, 2_100.0))
    mv.funding[("binance", "ETH")][1] = 1e-4
    p = Portfolio()
    p.account("binance").usdt = 1_000.0
    p.account("binance").perp("ETH").trade(-2.0, MARK)
    world = SimulatedVenues(p, mv, usdt_params)
    [paid] = world.settle_funding(1)
    assert paid.payment_usd == pytest.approx(0.42) and p.cex["binance"].usdt == pytest.approx(1_000.42)
    assert world.settle_funding(0) == []                  # no rate between settlements


# ------------------------------------------------------------------------------ transfers
def test_a_wallet_deposit_costs_gas_and_a_withdrawal_costs_the_exchange_fee(usdt_params):
    p = Portfolio()
    p.wallet.add("USDT", 1_000.0)
    world = SimulatedVenues(p, market(), usdt_params)
    deposit = world.execute(Instruction(Op.TRANSFER, WALLET, "USDT", 400.0, to_venue="binance"), 0)
    assert deposit.amount_out == 400.0 and deposit.execution_cost == 0.0
    assert deposit.gas_eth == pytest.approx(gas(usdt_params, "VENUE_TRANSFER"))
    assert p.wallet.tokens["GAS_DEBT"] == pytest.approx(-deposit.gas_eth)    # a USDT class owes its gas
    back = world.execute(Instruction(Op.TRANSFER, "binance", "USDT", 100.0, to_venue=WALLET), 0)
    assert back.amount_out == 97.0 and back.execution_cost == 3.0 and back.gas_eth == 0.0
    assert p.wallet.tokens["USDT"] == 697.0 and p.cex["binance"].usdt == 300.0
    with pytest.raises(ExecutionRejected, match="cannot send"):
        world.execute(Instruction(Op.TRANSFER, "binance", "USDT", 301.0, to_venue="okx"), 0)


# ------------------------------------------------------------------------------ on-chain
def test_a_swap_pays_the_table_and_the_pool_fee(usdt_params):
    """1,000 USDT -> ETH: 5 bps (10k bucket) + 30 bps pool fee = 35 bps: 0.49825 ETH; cost 3.50."""
    p = Portfolio()
    p.wallet.add("USDT", 1_000.0)
    world = SimulatedVenues(p, market(), usdt_params)
    fill = world.execute(Instruction(Op.SWAP, "uniswap", "USDT", 1_000.0, to_asset="ETH"), 0)
    assert fill.amount_out == pytest.approx(1_000.0 * (1 - 35e-4) / MARK)
    assert fill.execution_cost == pytest.approx(3.5)
    assert fill.gas_eth == pytest.approx(gas(usdt_params, "TOKEN_SWAP"))
    assert p.wallet.tokens["USDT"] == 0.0 and p.wallet.tokens["ETH"] == pytest.approx(fill.amount_out)


def test_selling_an_lst_below_its_oracle_counts_the_discount_as_a_cost(usdt_params):
    """10 weETH at a market rate of 1.04 (oracle 1.05) is a 20,800 USD sale: 5 + 2 x log10(2.08) bps of
    slippage + 30 bps pool fee. It gets 10 x 1.04 x (1 - that) ETH; the cost is the oracle value given
    (10 x 1.05 ETH) minus what came back: the discount plus the fees."""
    mv = market()
    mv.lst_market["weETH"][:] = [1.04, 1.04]
    p = Portfolio()
    p.wallet.add("weETH", 10.0)
    world = SimulatedVenues(p, mv, usdt_params)
    fill = world.execute(Instruction(Op.SWAP, "uniswap", "weETH", 10.0, to_asset="ETH"), 0)
    out = 10.0 * 1.04 * (1 - (5.0 + 2.0 * math.log10(2.08) + 30.0) * 1e-4)
    assert fill.amount_out == pytest.approx(out)
    assert fill.execution_cost == pytest.approx((10.0 * 1.05 - out) * MARK)


def test_a_swap_beyond_the_pool_depth_limit_is_refused(usdt_params):
    p = Portfolio()
    p.wallet.add("USDT", 3e6)
    with pytest.raises(ExecutionRejected, match="depth limit max_order_usdt 2,000,000"):
        SimulatedVenues(p, market(), usdt_params).execute(Instruction(Op.SWAP, "uniswap", "USDT", 2.5e6,
                                                                     to_asset="ETH"), 0)
    assert p.wallet.tokens["USDT"] == 3e6


def test_staking_mints_at_the_oracle_rate_for_gas_only(eth_params):
    """ETH share class: gas comes out of free ETH (1 ETH staked of 1.01 held)."""
    p = Portfolio()
    p.wallet.add("ETH", 1.01)
    world = SimulatedVenues(p, market(), eth_params)
    fill = world.execute(Instruction(Op.STAKE, "etherfi", "ETH", 1.0, to_asset="weETH"), 0)
    assert fill.amount_out == pytest.approx(1.0 / 1.05) and fill.execution_cost == 0.0
    assert p.wallet.tokens["ETH"] == pytest.approx(0.01 - gas(eth_params, "STAKE_DEPOSIT"))
    assert "GAS_DEBT" not in p.wallet.tokens


def test_gas_beyond_the_free_eth_becomes_gas_debt(eth_params):
    p = Portfolio()
    p.wallet.add("ETH", 1.0)
    world = SimulatedVenues(p, market(), eth_params)
    world.execute(Instruction(Op.STAKE, "etherfi", "ETH", 1.0, to_asset="weETH"), 0)
    assert p.wallet.tokens["ETH"] == 0.0
    assert p.wallet.tokens["GAS_DEBT"] == pytest.approx(-gas(eth_params, "STAKE_DEPOSIT"))


def test_aave_balances_are_scaled_by_the_hours_index(eth_params):
    """Supply 10 weETH at a liquidity index of 1.02: 10 / 1.02 scaled, worth 10 x 1.03 / 1.02 an hour
    later at 1.03. Borrow 5 WETH at a borrow index of 1.10 (ETH arrives in the wallet); withdrawing or
    repaying more than there is takes what there is."""
    mv = market()
    mv.supply_index["weETH"][:] = [1.02, 1.03]
    mv.borrow_index["WETH"][:] = [1.10, 1.12]
    p = Portfolio()
    p.wallet.add("weETH", 10.0)
    p.wallet.add("ETH", 1.0)
    world = SimulatedVenues(p, mv, eth_params)
    world.execute(Instruction(Op.SUPPLY, "aave_v3", "weETH", 10.0), 0)
    assert p.wallet.supply_scaled["weETH"] == pytest.approx(10.0 / 1.02) and p.wallet.tokens["weETH"] == 0.0
    world.execute(Instruction(Op.BORROW, "aave_v3", "WETH", 5.0), 0)
    assert p.wallet.debt_scaled["WETH"] == pytest.approx(5.0 / 1.10)
    eth_after_borrow = p.wallet.tokens["ETH"]
    assert eth_after_borrow == pytest.approx(6.0 - gas(eth_params, "COLLATERAL_SUPPLIED") - gas(eth_params, "LOAN_CREATED"))
    held = 10.0 / 1.02 * 1.03
    fill = world.execute(Instruction(Op.WITHDRAW, "aave_v3", "weETH", 50.0), 1)
    assert fill.amount_out == pytest.approx(held) and p.wallet.supply_scaled["weETH"] == 0.0
    owed = 5.0 / 1.10 * 1.12
    fill = world.execute(Instruction(Op.REPAY, "aave_v3", "WETH", 9.0), 1)
    assert fill.amount_in == pytest.approx(owed) and p.wallet.debt_scaled["WETH"] == pytest.approx(0.0, abs=1e-15)
    assert p.wallet.tokens["ETH"] == pytest.approx(eth_after_borrow - owed - gas(eth_params, "COLLATERAL_WITHDRAWN")
                                                   - gas(eth_params, "LOAN_REPAID"))


def test_a_flash_bundle_pays_its_fee_and_gas_once(eth_params):
    """Instadapp's 5 bps on a 9 WETH flash loan: 0.0045 ETH fee (9 x 2,000 x 0.0005 = 9 USD of cost)
    and one ATOMIC_ENTRY gas charge for the whole bundle."""
    p = params("eth_leveraged", **{"leverage.flash_venue": "instadapp"})
    port = Portfolio()
    port.wallet.add("ETH", 1.0)
    port.wallet.emode = True
    world = SimulatedVenues(port, market(), p)
    staked = 10.0 - 9.0 * 0.0005
    bundle = Instruction(Op.BUNDLE, "instadapp", gas_op="ATOMIC_ENTRY", children=[
        Instruction(Op.FLASH_BORROW, "instadapp", "WETH", 9.0),
        Instruction(Op.STAKE, "etherfi", "ETH", staked, to_asset="weETH"),
        Instruction(Op.SUPPLY, "aave_v3", "weETH", staked / 1.05),
        Instruction(Op.BORROW, "aave_v3", "WETH", 9.0),
        Instruction(Op.FLASH_REPAY, "instadapp", "WETH", 9.0),
    ])
    fill = world.execute(bundle, 0)
    assert fill.gas_eth == pytest.approx(gas(p, "ATOMIC_ENTRY")) and all(c.gas_eth == 0.0 for c in fill.children)
    repay = fill.children[-1]
    assert repay.amount_out == pytest.approx(9.0 * 1.0005) and repay.execution_cost == pytest.approx(9.0 * 0.0005 * MARK)
    assert fill.execution_cost == pytest.approx(9.0 * 0.0005 * MARK)
    assert port.wallet.supply_scaled["weETH"] == pytest.approx(staked / 1.05)
    assert port.wallet.tokens.get("GAS_DEBT", 0.0) == pytest.approx(-fill.gas_eth)     # 0 ETH left to pay it


def test_a_bundle_that_does_not_repay_its_flash_loan_leaves_nothing_changed(eth_params):
    port = Portfolio()
    port.wallet.add("ETH", 1.0)
    world = SimulatedVenues(port, market(), eth_params)
    bundle = Instruction(Op.BUNDLE, "morpho", gas_op="ATOMIC_ENTRY", children=[
        Instruction(Op.FLASH_BORROW, "morpho", "WETH", 9.0),
        Instruction(Op.STAKE, "etherfi", "ETH", 10.0, to_asset="weETH"),
    ])
    with pytest.raises(ExecutionRejected, match="flash loan not repaid"):
        world.execute(bundle, 0)
    assert port.wallet.tokens == {"ETH": 1.0} and not port.wallet.supply_scaled
