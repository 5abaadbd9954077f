"""The execution manager on the real simulated venues: what it books and logs for a fill, how it logs
an atomic bundle, and what a refusal does to the program that sent it (a venue refusal stops it, a
margin refusal is handed back to it, an impossible amount stops the run), in both drivers."""
from __future__ import annotations

import asyncio

import pytest

from engine.components.event_log import EventLog
from engine.config import load_config
from engine.domain.instructions import WALLET, Instruction, Op
from engine.domain.pnl import COMPONENT_INDEX
from engine.domain.portfolio import Portfolio
from engine.domain.refusals import InvalidInstruction, MarginRefused
from engine.domain.numeraire import Numeraire
from engine.execution.ledger import HourlyLedger
from engine.execution.manager import ExecutionManager
from engine.execution.outcome import Failures, StopKind
from engine.services.run_params import build_run_params
from tests.unit.market_support import MARK, market
from venues.simulated.venue import ExecutionRejected, SimulatedVenues


def make(mode: str, portfolio: Portfolio):
    """The manager as the backtest builds it: the simulated venues, an hourly ledger and the log."""
    params = build_run_params(load_config(mode))
    mv = market()
    ledger, log = HourlyLedger(mv.hours), EventLog()
    ledger.start_hour(0)
    world = SimulatedVenues(portfolio, mv, params)
    manager = ExecutionManager(world, mv, ledger, log, Numeraire(params.strategy.currency, mv),
                               Failures(rejected=(ExecutionRejected,)))
    return manager, ledger, log


def booked(ledger: HourlyLedger, component: str) -> float:
    """What hour 0 booked on `component` (the hour is closed to read it)."""
    ledger.close_hour()
    return float(ledger.rows[0][COMPONENT_INDEX[component]])


def test_a_fill_books_its_cost_and_gas_in_the_share_currency_and_is_logged():
    p = Portfolio()
    p.wallet.add("USDT", 1_000.0)
    manager, ledger, log = make("usdt_market_neutral", p)
    received = []

    def program():
        fill = yield Instruction(Op.SWAP, "uniswap", "USDT", 1_000.0, to_asset="ETH", reason="entry")
        received.append(fill.amount_out)

    manager.run(program(), 0)
    [event] = log.events
    assert (event.type, event.venue, event.asset, event.to_asset, event.reason) == ("swap", "uniswap", "USDT", "ETH", "entry")
    assert received == [event.amount_out]                       # the program saw its own fill
    assert booked(ledger, "execution_costs") == pytest.approx(-event.execution_cost_usd)
    assert booked(ledger, "gas") == pytest.approx(-event.gas_eth * MARK)       # USDT class: gas at the ETH price


def test_an_eth_share_class_books_costs_in_eth():
    p = Portfolio()
    p.wallet.add("ETH", 1.0)
    manager, ledger, log = make("eth_staking_only", p)
    p.wallet.add("weETH", 1.0)

    def program():
        yield Instruction(Op.SWAP, "uniswap", "weETH", 1.0, to_asset="ETH")

    manager.run(program(), 0)
    [event] = log.events
    assert booked(ledger, "execution_costs") == pytest.approx(-event.execution_cost_usd / MARK)
    assert booked(ledger, "gas") == pytest.approx(-event.gas_eth)


def test_a_bundle_is_one_parent_event_with_its_children():
    p = Portfolio()
    p.wallet.add("ETH", 1.0)
    p.wallet.emode = True
    manager, ledger, log = make("eth_leveraged", p)
    staked = 10.0

    def program():
        yield Instruction(Op.BUNDLE, "morpho", reason="entry", gas_op="ATOMIC_ENTRY", children=[
            Instruction(Op.FLASH_BORROW, "morpho", "WETH", 9.0),
            Instruction(Op.STAKE, "etherfi", "ETH", staked, to_asset="weETH"),
            Instruction(Op.SUPPLY, "aave_v3", "weETH", staked / 1.05),
            Instruction(Op.BORROW, "aave_v3", "WETH", 9.0),
            Instruction(Op.FLASH_REPAY, "morpho", "WETH", 9.0),
        ])

    manager.run(program(), 0)
    parent, *children = log.events
    assert parent.type == "bundle" and parent.parent is None and parent.gas_eth > 0.0
    assert [c.type for c in children] == ["flash_borrow", "stake", "supply", "borrow", "flash_repay"]
    assert all(c.parent == parent.order and c.gas_eth == 0.0 for c in children)
    assert booked(ledger, "gas") == pytest.approx(-parent.gas_eth)        # charged once
    assert manager.instructions_executed == 1


def test_a_venue_refusal_is_logged_and_stops_the_program():
    p = Portfolio()
    p.wallet.add("USDT", 100.0)
    manager, _, log = make("usdt_market_neutral", p)
    closed = []

    def program():
        try:
            yield Instruction(Op.TRANSFER, WALLET, "USDT", 60.0, to_venue="binance", reason="entry")
            yield Instruction(Op.TRANSFER, WALLET, "USDT", 60.0, to_venue="bybit", reason="entry")   # 40 left
            yield Instruction(Op.TRANSFER, WALLET, "USDT", 10.0, to_venue="okx", reason="entry")
        finally:
            closed.append(True)

    outcome = manager.run(program(), 0)
    assert outcome.fills == 1 and outcome.stop is not None and outcome.stop.kind is StopKind.REJECTED
    assert (outcome.stop.venue, outcome.stop.operation) == (WALLET, "transfer")
    assert [e.type for e in log.events] == ["transfer", "rejected"]
    rejected = log.events[-1]
    assert rejected.venue == WALLET and rejected.amount == 60.0 and rejected.reason.startswith("transfer: wallet has")
    assert closed == [True] and "okx" not in p.cex                        # nothing after the refusal ran


def test_a_margin_refusal_is_handed_back_and_the_program_goes_on():
    p = Portfolio()
    p.account("bybit").usdt = 1_000.0
    manager, _, log = make("eth_basis", p)
    seen = []

    def program():
        for venue in ("binance", "bybit"):                                # binance holds no margin
            try:
                yield Instruction(Op.PERP_TRADE, venue, "ETH", -1.0)
            except MarginRefused as exc:
                seen.append(str(exc))

    outcome = manager.run(program(), 0)
    assert outcome.fills == 1 and outcome.completed                    # the program handled it
    assert [(e.venue, e.type) for e in log.events] == [("binance", "rejected"), ("bybit", "perp_trade")]
    assert len(seen) == 1 and "initial margin" in seen[0]
    assert p.cex["bybit"].perps["ETH"].size == -1.0


def test_a_margin_refusal_the_program_does_not_catch_stops_it_quietly():
    p = Portfolio()
    manager, _, log = make("eth_basis", p)

    def program():
        yield Instruction(Op.PERP_TRADE, "binance", "ETH", -1.0)
        yield Instruction(Op.PERP_TRADE, "okx", "ETH", -1.0)

    outcome = manager.run(program(), 0)
    assert outcome.fills == 0 and outcome.stop is not None and outcome.stop.kind is StopKind.REJECTED
    assert [(e.venue, e.type) for e in log.events] == [("binance", "rejected")]


def test_an_impossible_amount_stops_the_run_before_any_venue_sees_it():
    p = Portfolio()
    p.wallet.add("ETH", 1.0)
    manager, _, log = make("eth_staking_only", p)

    def program():
        yield Instruction(Op.STAKE, "etherfi", "ETH", float("nan"), to_asset="weETH")

    with pytest.raises(InvalidInstruction, match="not a finite number"):
        manager.run(program(), 0)
    assert p.wallet.tokens == {"ETH": 1.0} and len(log) == 0


def test_the_async_driver_has_the_same_rules():
    """Live sessions await each fill: a refusal logs and stops, a margin refusal is handed back."""
    p = Portfolio()
    p.account("bybit").usdt = 1_000.0
    manager, _, log = make("eth_basis", p)

    async def execute(ins, t):
        await asyncio.sleep(0)
        return manager.port.execute(ins, t)

    def program():
        try:
            yield Instruction(Op.PERP_TRADE, "binance", "ETH", -1.0)
        except MarginRefused:
            pass
        yield Instruction(Op.PERP_TRADE, "bybit", "ETH", -1.0)
        yield Instruction(Op.SPOT_TRADE, "bybit", "ETH", 100.0)          # cannot pay: stops here
        yield Instruction(Op.PERP_TRADE, "okx", "ETH", -1.0)

    outcome = asyncio.run(manager.run_async(program(), 0, execute))
    assert outcome.fills == 1 and outcome.stop is not None and outcome.stop.venue == "bybit"
    assert [(e.venue, e.type) for e in log.events] == [("binance", "rejected"), ("bybit", "perp_trade"),
                                                       ("bybit", "rejected")]
