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
# A 1 ETH short entered at 2,000 with 150 USDT reaches maintenance (5 %) where 150 - (P - 2,000) =
# 0.05 P: the breach price P* = 2,150 / 1.05 = 2,047.62. Between two closes the mark is taken to move
# in a straight line, so a close beyond P* means the mark passed P* inside the hour.
BREACH = 2_150.0 / 1.05


def test_a_liquidation_closes_at_the_breach_price_and_costs_the_fee(basis_params):
    world = venues_with(basis_params, usdt=150.0, perp=-1.0, mv=market((MARK, 2_060.0)))
    [liq] = world.liquidate(1)
    assert liq.venue == "binance" and liq.repaid_or_closed == 1.0
    assert liq.price == pytest.approx(BREACH)
    assert liq.loss_usd == pytest.approx(0.0125 * BREACH)          # the fee on the notional closed
    # at the breach price the account still holds its maintenance margin; the fee comes out of it
    assert world.p.cex["binance"].usdt == pytest.approx(0.05 * BREACH - 0.0125 * BREACH)
    # the hour's move was attributed up to the close 2,060; the short really stopped at P*
    assert liq.mark_adjustment_usd == pytest.approx(2_060.0 - BREACH)
    assert liq.deficit_usd == 0.0 and "owes" not in liq.trigger
    assert "margin ratio 0.0437 < maintenance 0.05 at the hour's high mark" in liq.trigger


def test_the_hours_high_liquidates_a_short_the_close_would_not(basis_params):
    # close 2,030: equity 120 >= 5 % of 2,030; the bar's high 2,060 took it below maintenance
    world = venues_with(basis_params, usdt=150.0, perp=-1.0,
                        mv=market((MARK, 2_030.0), highs=(MARK, 2_060.0), lows=(MARK, 2_020.0)))
    [liq] = world.liquidate(1)
    assert liq.price == pytest.approx(BREACH)
    assert liq.mark_adjustment_usd == pytest.approx(2_030.0 - BREACH)   # it closed above the close
    assert world.p.cex["binance"].usdt == pytest.approx((0.05 - 0.0125) * BREACH)
    calm = venues_with(basis_params, usdt=150.0, perp=-1.0,
                       mv=market((MARK, 2_030.0), highs=(MARK, 2_045.0), lows=(MARK, 2_020.0)))
    assert calm.liquidate(1) == []                                       # the high stayed below P*


def test_a_long_is_liquidated_at_the_hours_low(basis_params):
    # 1 ETH long from 2,000 with 150 USDT: maintenance where 150 + (P - 2,000) = 0.05 P
    breach = 1_850.0 / 0.95
    world = venues_with(basis_params, usdt=150.0, perp=1.0,
                        mv=market((MARK, 1_980.0), highs=(MARK, 2_010.0), lows=(MARK, 1_940.0)))
    [liq] = world.liquidate(1)
    assert liq.price == pytest.approx(breach)
    assert "at the hour's low mark" in liq.trigger
    assert world.p.cex["binance"].usdt == pytest.approx((0.05 - 0.0125) * breach)
    assert liq.mark_adjustment_usd == pytest.approx(breach - 1_980.0)


def test_an_hour_starting_below_zero_closes_at_its_start_and_keeps_the_debt(basis_params):
    """The account enters the hour already under water (mark 2,200 on the 150 USDT short: equity
    -50): it closes at the hour's start, charges no fee (nothing is left) and keeps the -50 as a
    debt: it never writes the negative balance off as a gain."""
    world = venues_with(basis_params, usdt=150.0, perp=-1.0, mv=market((2_200.0, 2_300.0)))
    [liq] = world.liquidate(1)
    assert liq.price == 2_200.0
    assert liq.loss_usd == 0.0
    assert liq.deficit_usd == pytest.approx(50.0)
    assert "owes 50.00 USDT" in liq.trigger
    acct = world.p.cex["binance"]
    assert acct.usdt == pytest.approx(-50.0) and acct.perps["ETH"].size == 0.0


def test_a_liquidation_never_books_a_gain_at_any_move(basis_params):
    for mark in (2_060.0, 2_100.0, 2_150.0, 2_200.0, 3_000.0, 10_000.0):
        world = venues_with(basis_params, usdt=150.0, perp=-1.0, mv=market((MARK, mark)))
        [liq] = world.liquidate(1)
        assert liq.loss_usd >= 0.0
        # equity after = equity at the breach price - fee, below the hour's starting equity of 150
        assert world.p.cex["binance"].usdt == pytest.approx(150.0 - (liq.price - MARK) - liq.loss_usd)
        assert world.p.cex["binance"].usdt < 150.0


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
