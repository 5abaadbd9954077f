"""The simulated venue layer's rules, on the shipped venue parameters and hand-set prices: initial
margin on orders that add exposure, depth and position limits, and liquidations that never pay.

The shipped venue files give every CEX initial margin 0.10, maintenance 0.05, a liquidation fee of
1.25 % of the notional, depth limits (max_order_usdt) of 10M (binance) / 5M (bybit, okx) / 2M
(uniswap) and position limits of 10M.
"""
from __future__ import annotations

import pytest

from engine.config import load_config
from engine.domain.instructions import Instruction, Op
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.domain.refusals import MarginRefused
from engine.services.run_params import build_run_params
from tests.unit.market_support import MARK, market
from venues.simulated.venue import ExecutionRejected, InsufficientMargin, SimulatedVenues, adds_exposure


@pytest.fixture(scope="module")
def basis_params():
    return build_run_params(load_config("eth_basis"))


@pytest.fixture(scope="module")
def loop_params():
    return build_run_params(load_config("usdt_market_neutral"))


def venues_with(params, usdt: float = 0.0, perp: float = 0.0, entry: float = MARK, mv: MarketView | None = None,
                venue: str = "binance") -> SimulatedVenues:
    p = Portfolio()
    acct = p.account(venue)
    acct.usdt = usdt
    if perp:
        acct.perp("ETH").trade(perp, entry)
    return SimulatedVenues(p, mv or market(), params)


def fee(params, qty: float, venue: str = "binance") -> float:
    notional = abs(qty) * MARK
    return notional * (params.cex[venue].perp_taker_bps + 3.0) * 1e-4      # 3 bps: the 10k bucket


# ------------------------------------------------------------------------------ initial margin
def test_opening_a_short_without_margin_is_refused_and_changes_nothing(basis_params):
    world = venues_with(basis_params, usdt=0.0)
    with pytest.raises(InsufficientMargin, match="initial margin") as exc:
        world.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -1.0), 0)
    assert isinstance(exc.value, MarginRefused) and isinstance(exc.value, ExecutionRejected)
    acct = world.p.cex["binance"]
    assert acct.usdt == 0.0 and acct.perps.get("ETH") is None or acct.perps["ETH"].size == 0.0


def test_a_short_needs_initial_margin_on_the_position_after_the_fee(basis_params):
    qty = -1.0                                     # 2,000 USDT notional: initial margin 200
    need = 0.10 * MARK + fee(basis_params, qty)
    ok = venues_with(basis_params, usdt=need + 1e-6)
    ok.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", qty), 0)
    assert ok.p.cex["binance"].perps["ETH"].size == qty
    short = venues_with(basis_params, usdt=need - 0.01)
    with pytest.raises(InsufficientMargin):
        short.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", qty), 0)


def test_growing_a_position_needs_margin_on_the_whole_position(basis_params):
    # 1 ETH short held with 250 USDT equity (12.5 %): adding 1 more needs 400 + fee
    world = venues_with(basis_params, usdt=250.0, perp=-1.0)
    with pytest.raises(InsufficientMargin, match=r"0\.1 x 4,000\.00"):
        world.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -1.0), 0)


def test_reducing_is_always_allowed_even_below_initial_margin(basis_params):
    world = venues_with(basis_params, usdt=120.0, perp=-1.0)      # 6 % < 10 % initial margin
    world.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", 0.5), 0)
    assert world.p.cex["binance"].perps["ETH"].size == -0.5


def test_flipping_through_zero_opens_the_other_side_and_needs_margin(basis_params):
    world = venues_with(basis_params, usdt=50.0, perp=-1.0)
    with pytest.raises(InsufficientMargin):
        world.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", 2.0), 0)
    assert adds_exposure(-1.0, 1.0) and adds_exposure(0.0, -1.0) and adds_exposure(-1.0, -2.0)
    assert not adds_exposure(-1.0, -0.5) and not adds_exposure(-1.0, 0.0)


# ------------------------------------------------------------------------------ depth and position limits
def test_orders_beyond_the_depth_limit_are_refused(basis_params, loop_params):
    depth = basis_params.cex["okx"].max_order_usdt                   # 5M
    world = venues_with(basis_params, usdt=10e6, venue="okx")
    with pytest.raises(ExecutionRejected, match="depth limit max_order_usdt 5,000,000"):
        world.execute(Instruction(Op.PERP_TRADE, "okx", "ETH", -(depth / MARK) * 1.01), 0)
    world.execute(Instruction(Op.PERP_TRADE, "okx", "ETH", -(depth / MARK) * 0.99), 0)
    spot = venues_with(basis_params, usdt=20e6, venue="bybit")
    with pytest.raises(ExecutionRejected, match="depth limit"):
        spot.execute(Instruction(Op.SPOT_TRADE, "bybit", "ETH", 6e6 / MARK), 0)
    dex = SimulatedVenues(Portfolio(), market(), loop_params)
    dex.p.wallet.add("USDT", 3e6)
    with pytest.raises(ExecutionRejected, match="depth limit max_order_usdt 2,000,000"):
        dex.execute(Instruction(Op.SWAP, "uniswap", "USDT", 2.5e6, to_asset="ETH"), 0)
    assert dex.p.wallet.tokens["USDT"] == 3e6                        # nothing taken


def test_positions_beyond_the_exchange_limit_are_refused(basis_params):
    world = venues_with(basis_params, usdt=5e6, perp=-4_000.0)         # 8M short
    with pytest.raises(ExecutionRejected, match="position limit max_position_usdt 10,000,000"):
        world.execute(Instruction(Op.PERP_TRADE, "binance", "ETH", -1_500.0), 0)    # -> 11M


# ------------------------------------------------------------------------------ liquidations
def test_a_liquidation_costs_the_fee_out_of_the_remaining_equity(basis_params):
    # 1 ETH short from 2,000 with 150 USDT; the mark rises to 2,060: equity 90 < 5 % of 2,060
    world = venues_with(basis_params, usdt=150.0, perp=-1.0, mv=market((MARK, 2_060.0)))
    [liq] = world.liquidate(1)
    assert liq.venue == "binance" and liq.repaid_or_closed == 1.0
    assert liq.loss_usd == pytest.approx(0.0125 * 2_060.0)         # the fee fits in the 90 left
    assert world.p.cex["binance"].usdt == pytest.approx(90.0 - 0.0125 * 2_060.0)
    assert liq.deficit_usd == 0.0 and "owes" not in liq.trigger


def test_a_gap_through_zero_keeps_the_negative_balance_as_a_debt(basis_params):
    """The mark jumps 2,000 -> 2,300 in one hour on a 1 ETH short with 150 USDT: equity -150. The
    liquidation closes the short, charges no fee (nothing is left) and keeps the -150 as a debt: it
    never writes the negative balance off as a gain."""
    world = venues_with(basis_params, usdt=150.0, perp=-1.0, mv=market((MARK, 2_300.0)))
    [liq] = world.liquidate(1)
    assert liq.loss_usd == 0.0
    assert liq.deficit_usd == pytest.approx(150.0)
    assert "owes 150.00 USDT" in liq.trigger
    acct = world.p.cex["binance"]
    assert acct.usdt == pytest.approx(-150.0) and acct.perps["ETH"].size == 0.0


def test_a_liquidation_never_books_a_gain_at_any_gap(basis_params):
    for mark in (2_060.0, 2_100.0, 2_150.0, 2_200.0, 3_000.0, 10_000.0):
        world = venues_with(basis_params, usdt=150.0, perp=-1.0, mv=market((MARK, mark)))
        equity_before = 150.0 - (mark - MARK)
        [liq] = world.liquidate(1)
        assert liq.loss_usd >= 0.0
        # the account's equity after = before - fee: the liquidation takes, never gives
        assert world.p.cex["binance"].usdt == pytest.approx(equity_before - liq.loss_usd)


def test_aave_bad_debt_stays_owed_instead_of_becoming_a_gain(loop_params):
    """Collateral worth less than the debt (an oracle crash): the liquidator seizes all of it and
    repays only what it pays for at the bonus; the loss is the bonus, the rest of the debt stays."""
    mv = market(weeth=(1.05, 0.80))
    p = Portfolio()
    p.wallet.emode = True
    p.wallet.supply_scaled["weETH"] = 100.0          # 100 weETH: 105 ETH, then 80 ETH of collateral
    p.wallet.debt_scaled["WETH"] = 94.0
    world = SimulatedVenues(p, mv, loop_params)
    [liq] = world.liquidate(1)
    bonus = loop_params.aave.emode.liquidation_bonus
    assert liq.seized == pytest.approx(100.0)
    assert liq.loss_usd == pytest.approx(80.0 * MARK * bonus / (1 + bonus))
    assert liq.loss_usd > 0.0
    assert p.wallet.debt_scaled["WETH"] == pytest.approx(94.0 - 80.0 / (1 + bonus))
