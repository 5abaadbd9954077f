"""Capacity and minimum capital of the hedged modes, the capital check, the execution boundary
(invalid amounts refused loudly, a margin refusal handed back to the program) and the hedge
program skipping an unfunded venue — on the shipped configs and the real simulated venues."""
from __future__ import annotations

import math

import pytest

from engine.components.event_log import EventLog
from engine.components.risk import snapshot
from engine.config import CapitalError, check_capital, check_capital_text, load_config
from engine.domain.instructions import Instruction, Op
from engine.domain.numeraire import Numeraire
from engine.domain.portfolio import Portfolio
from engine.domain.refusals import InvalidInstruction
from engine.execution.ledger import HourlyLedger
from engine.execution.manager import ExecutionManager, validate_instruction
from engine.execution.outcome import Failures
from engine.services.run_params import build_run_params
from engine.strategies.base import StrategyContext
from engine.strategies.capacity import (
    CAPACITY_HEADROOM,
    CapitalTooSmall,
    capacity_warning,
    check_hedged_capital,
    hedged_capacity,
    hedged_minimum_capital,
)
from engine.strategies.hedge import hedge_to
from tests.unit.market_support import MARK, market
from venues.simulated.venue import ExecutionRejected, SimulatedVenues


def params(mode: str, capital: float | None = None, **overrides):
    return build_run_params(load_config(mode, cli_overrides=overrides), capital)


# ------------------------------------------------------------------------------ capacity
def test_basis_capacity_is_bound_by_the_risk_limit_on_the_spot_leg():
    cap = hedged_capacity(params("eth_basis"))
    # risk.max_position_usdt 5M < every venue's 10M; the spot leg carries all of the long
    assert cap.long_usd == pytest.approx(5e6 * CAPACITY_HEADROOM)
    assert cap.position_usd == pytest.approx(5e6)
    assert "risk.max_position_usdt 5,000,000" in cap.binding and "bybit ETH spot leg" in cap.binding


def test_a_perp_short_binds_when_it_carries_the_whole_long():
    """All of the hedge on OKX with a 9M risk limit: the OKX short's 5M depth limit on its entry
    order is below 9M x 0.9 on the position, so it binds."""
    p = params("eth_basis", **{"hedge.allocation.binance": 0.0, "hedge.allocation.bybit": 0.0,
                               "hedge.allocation.okx": 1.0, "risk.max_position_usdt": 9e6})
    cap = hedged_capacity(p)
    assert cap.long_usd == pytest.approx(5e6)
    assert "okx depth limit max_order_usdt 5,000,000" in cap.binding


def test_market_neutral_capacity_is_bound_by_the_entry_swap():
    cap = hedged_capacity(params("usdt_market_neutral"))
    assert cap.long_usd == pytest.approx(2e6) and "uniswap depth limit" in cap.binding


def test_the_capacity_warning_names_the_idle_capital():
    assert capacity_warning(params("eth_basis")) is None                     # 100k: nothing idle
    warning = capacity_warning(params("eth_basis", 1e9))
    usable = 4.5e6 * 1.25
    assert f"uses about {usable:,.0f} USDT" in warning and f"{1e9 - usable:,.0f} USDT stays idle" in warning
    assert capacity_warning(params("eth_leveraged")) is None                 # ETH class: not hedged


# ------------------------------------------------------------------------------ minimum capital
def test_the_minimum_capital_makes_every_entry_order_reach_its_floor():
    minimum, why = hedged_minimum_capital(params("eth_basis"))
    # the smallest margin transfer: 0.25 x 30 % of C / 1.25 >= 100  ->  C >= 1,666.7, with 2 % for costs
    assert minimum == 1_700.0 and "margin transfer to okx" in why
    check_hedged_capital(params("eth_basis", 1_700.0))
    with pytest.raises(CapitalTooSmall, match="the minimum capital is 1,700 USDT"):
        check_hedged_capital(params("eth_basis", 1_699.0))
    check_hedged_capital(params("eth_leveraged", 0.001))        # not hedged: no CEX floor applies


# ------------------------------------------------------------------------------ the capital check
@pytest.mark.parametrize("value, needle", [
    (math.inf, "must be a finite number"), (math.nan, "must be a finite number"), (-1.0, "must be positive"),
    (0.0, "must be positive"), (1e30, "above the largest accepted capital"), (True, "must be a number"),
])
def test_unusable_capitals_are_refused_with_the_reason(value, needle):
    with pytest.raises(CapitalError, match=needle):
        check_capital(value, "USDT", "--capital")


def test_the_bound_depends_on_the_currency_and_text_is_parsed_like_a_person_types_it():
    assert check_capital(1e10, "USDT") == 1e10
    with pytest.raises(CapitalError, match="1e\\+07 ETH"):
        check_capital(2e7, "ETH")
    assert check_capital_text(" 100,000 ", None) == 100_000.0
    with pytest.raises(CapitalError, match="'lots' is not a number"):
        check_capital_text("lots", "USDT")
    with pytest.raises(CapitalError):
        build_run_params(load_config("eth_leveraged"), 5e7)      # 5e7 ETH: above the ETH bound


# ------------------------------------------------------------------------------ execution boundary
@pytest.mark.parametrize("ins", [
    Instruction(Op.STAKE, "etherfi", "ETH", -0.0446, to_asset="weETH"),
    Instruction(Op.SWAP, "uniswap", "USDT", math.nan, to_asset="ETH"),
    Instruction(Op.PERP_TRADE, "binance", "ETH", math.inf),
    Instruction(Op.PERP_TRADE, "binance", "ETH", 0.0),
    Instruction(Op.BUNDLE, "morpho", children=[Instruction(Op.FLASH_BORROW, "morpho", "WETH", -1.0)]),
])
def test_amounts_no_venue_could_execute_are_refused_loudly(ins):
    with pytest.raises(InvalidInstruction):
        validate_instruction(ins)


def test_valid_amounts_pass_the_boundary():
    for ins in (Instruction(Op.PERP_TRADE, "binance", "ETH", -1.0), Instruction(Op.APPROVE, "aave_v3", "USDT"),
                Instruction(Op.STAKE, "etherfi", "ETH", 0.0, to_asset="weETH")):
        validate_instruction(ins)


def manager_for(p: Portfolio, run_params) -> tuple[ExecutionManager, EventLog]:
    mv = market()
    log = EventLog()
    return ExecutionManager(SimulatedVenues(p, mv, run_params), mv, HourlyLedger(2), log, Numeraire("USDT", mv),
                            Failures(rejected=(ExecutionRejected,))), log


def test_an_invalid_instruction_stops_the_run_instead_of_reaching_the_venue():
    p = Portfolio()
    p.wallet.add("ETH", 1.0)
    manager, log = manager_for(p, params("eth_leveraged"))

    def program():
        yield Instruction(Op.STAKE, "etherfi", "ETH", -0.5, to_asset="weETH", reason="entry")

    with pytest.raises(InvalidInstruction, match="must not be negative"):
        manager.run(program(), 0)
    assert p.wallet.tokens == {"ETH": 1.0} and len(log) == 0


def test_the_hedge_skips_a_venue_without_initial_margin_and_hedges_the_others():
    """Binance holds no margin: its short is refused (an event says so), Bybit and OKX still get
    theirs; before, the first refusal stopped the program and left every venue unhedged."""
    run_params = params("eth_basis")
    p = Portfolio()
    for venue, usdt in (("binance", 0.0), ("bybit", 500.0), ("okx", 500.0)):
        p.account(venue).usdt = usdt
    manager, log = manager_for(p, run_params)
    ctx = StrategyContext(p, market(), 0, snapshot(p, market(), 0, None), run_params)
    outcome = manager.run(hedge_to(ctx, 2.0, "delta"), 0)      # hedge a 2 ETH long: 0.8 / 0.6 / 0.6 ETH
    assert outcome.fills == 2 and outcome.completed, "the margin refusal skipped one leg, the program went on"
    assert p.cex["binance"].perps.get("ETH") is None or p.cex["binance"].perps["ETH"].size == 0.0
    assert p.cex["bybit"].perps["ETH"].size == pytest.approx(-0.6)
    assert p.cex["okx"].perps["ETH"].size == pytest.approx(-0.6)
    [refusal] = [e for e in log.events if e.type == "rejected"]
    assert refusal.venue == "binance" and "initial margin" in refusal.reason
    assert refusal.amount == pytest.approx(-0.8)
    assert f"{0.1 * 0.8 * MARK:,.2f} USDT" in refusal.reason          # the initial margin it lacked
