"""The live/paper executors' gatekeeping: which instructions count as risk-reducing (what REDUCING
lets through and what skips the new-exposure checks), and the pre-trade checks on the book."""
from __future__ import annotations

import pytest

from engine.config import load_config
from engine.domain.instructions import Instruction, Op
from engine.domain.portfolio import Portfolio
from engine.services.live.execution import PaperExecutor, is_risk_reducing
from engine.services.live.pretrade import PreTradeRefused, check_order
from engine.services.live.state import TradingHalted, TradingStateMachine
from engine.services.run_params import build_run_params
from tests.unit.market_support import MARK, market
from venues.simulated.venue import SimulatedVenues


@pytest.fixture(scope="module")
def params():
    return build_run_params(load_config("eth_basis"))


def book(perp: float = -2.0, spot: float = 2.0, usdt: float = 5_000.0) -> Portfolio:
    p = Portfolio()
    acct = p.account("binance")
    acct.usdt = usdt
    acct.spot["ETH"] = spot
    if perp:
        acct.perp("ETH").trade(perp, MARK)
    return p


def perp(amount: float, venue: str = "binance") -> Instruction:
    return Instruction(Op.PERP_TRADE, venue, "ETH", amount)


@pytest.mark.parametrize("ins, reducing", [
    (perp(1.0), True),                               # buys back part of the 2 ETH short
    (perp(2.0), True),                               # closes it exactly
    (perp(3.0), False),                              # closes and opens a 1 ETH long
    (perp(-0.5), False),                             # grows the short
    (perp(1.0, "okx"), False),                       # opens on a venue with no position
    (Instruction(Op.SPOT_TRADE, "binance", "ETH", -1.0), True),
    (Instruction(Op.SPOT_TRADE, "binance", "ETH", 1.0), False),
    (Instruction(Op.REPAY, "aave_v3", "WETH", 1.0), True),
    (Instruction(Op.TRANSFER, "binance", "USDT", 100.0, to_venue="okx"), True),
    (Instruction(Op.BORROW, "aave_v3", "WETH", 1.0), False),
    (Instruction(Op.STAKE, "etherfi", "ETH", 1.0, to_asset="weETH"), False),
    (Instruction(Op.SWAP, "uniswap", "USDT", 100.0, to_asset="ETH"), False),
    (Instruction(Op.BUNDLE, "morpho", children=[Instruction(Op.FLASH_BORROW, "morpho", "WETH", 1.0),
                                                Instruction(Op.REPAY, "aave_v3", "WETH", 1.0)]), True),
    (Instruction(Op.BUNDLE, "morpho", children=[Instruction(Op.FLASH_BORROW, "morpho", "WETH", 1.0),
                                                Instruction(Op.BORROW, "aave_v3", "WETH", 1.0)]), False),
])
def test_what_counts_as_risk_reducing(ins, reducing):
    assert is_risk_reducing(ins, book()) is reducing


def test_a_flat_book_has_nothing_to_reduce():
    assert not is_risk_reducing(perp(1.0), book(perp=0.0))
    assert not is_risk_reducing(perp(-1.0), book(perp=0.0))


def paper(params, state: TradingStateMachine, portfolio: Portfolio, refused: list) -> PaperExecutor:
    mv = market()
    return PaperExecutor(SimulatedVenues(portfolio, mv, params), state, portfolio, params=params, market=mv,
                         on_refused=refused.append)


def test_reducing_state_lets_only_risk_reducing_orders_through(params):
    state = TradingStateMachine()
    state.reduce("test")
    p = book()
    ex = paper(params, state, p, [])
    with pytest.raises(TradingHalted, match="reduce-only orders only"):
        ex.execute(perp(-0.5), 0)                   # would grow the short
    with pytest.raises(TradingHalted):
        ex.execute(perp(3.0), 0)                    # would flip it long
    with pytest.raises(TradingHalted):
        ex.execute(Instruction(Op.SPOT_TRADE, "binance", "ETH", 0.1), 0)
    assert p.cex["binance"].perps["ETH"].size == -2.0 and ex.sent == 0
    ex.execute(perp(1.0), 0)                        # buys back half: allowed
    assert p.cex["binance"].perps["ETH"].size == -1.0 and ex.sent == 1
    state.halt("test")
    with pytest.raises(TradingHalted):
        ex.execute(perp(1.0), 0)                    # HALTED: not even reducing


def test_paper_pre_trade_refusal_is_reported_and_nothing_executes(params):
    refused: list = []
    p = book(usdt=1e7)
    ex = paper(params, TradingStateMachine(), p, refused)
    with pytest.raises(PreTradeRefused, match="order-size cap 10,000,000 USDT"):
        ex.execute(perp(-6_000.0), 0)               # 12M notional
    assert len(refused) == 1 and ex.refused == 1 and ex.sent == 0
    assert p.cex["binance"].perps["ETH"].size == -2.0


def test_the_position_limit_is_the_tighter_of_the_risk_and_the_exchange_limit(params):
    p = book(perp=-2_000.0, usdt=1e6)              # 4M short; risk.max_position_usdt 5M (venue 10M)
    with pytest.raises(PreTradeRefused, match=r"6,000,000 USDT, above risk.max_position_usdt 5,000,000"):
        check_order(perp(-1_000.0), p, market(), 0, params, reducing=False)
    # the same order as a reduction is not a new position: no size or position check
    assert check_order(perp(1_000.0), p, market(), 0, params, reducing=True) == MARK


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), -float("inf"), 0.0])
def test_amounts_no_venue_can_take_are_refused_even_when_reducing(params, amount):
    with pytest.raises(PreTradeRefused, match="not a finite, non-zero number"):
        check_order(perp(amount), book(), market(), 0, params, reducing=True)
