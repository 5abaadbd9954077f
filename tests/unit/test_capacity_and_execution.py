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
    long_for_value,
    margin_target,
)
from engine.strategies.hedge import fund_margins, hedge_to
from engine.strategies.market_neutral import UsdtMarketNeutralStrategy
from tests.unit.market_support import MARK, market
from venues.simulated.venue import ExecutionRejected, SimulatedVenues


def params(mode: str, capital: float | None = None, **overrides):
    return build_run_params(load_config(mode, cli_overrides=overrides), capital)


#: The arithmetic below is worked by hand on these margin settings (not the shipped ones, which may move).
M25 = {"hedge.margin_ratio_target": 0.25, "rebalancing.margin_ratio_trigger": 0.15, "risk.margin_ratio_floor": 0.12}


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
    usable = 4.5e6 * (1.0 + params("eth_basis").strategy.margin_ratio_target)
    assert f"uses about {usable:,.0f} USDT" in warning and f"{1e9 - usable:,.0f} USDT stays idle" in warning
    assert capacity_warning(params("eth_leveraged")) is None                 # ETH class: not hedged


# ------------------------------------------------------------------------------ minimum capital
def test_the_minimum_capital_is_set_by_the_entry_legs():
    """eth_basis: the smallest legs are the 30 % shorts on Bybit and OKX, so the long must be at least
    100 / 0.3 = 333.33; the capital adds Bybit's own margin (0.25 x 30 % of it, no transfer) and the
    transfer venues' margins, each at least its 100 USDT floor: 333.33 + 25 + 100 + 100 = 558.33,
    x 1.02 for the entry costs = 569.5 -> 570. A margin transfer below 100 no longer sets it."""
    minimum, why = hedged_minimum_capital(params("eth_basis", **M25))
    assert minimum == 570.0 and "the bybit ETH perp short (30% of the long)" in why
    check_hedged_capital(params("eth_basis", 570.0, **M25))
    with pytest.raises(CapitalTooSmall, match="the minimum capital is 570 USDT"):
        check_hedged_capital(params("eth_basis", 569.0, **M25))
    # market-neutral: every venue is funded by transfer: 333.33 + 3 x 100 = 633.33 x 1.02 -> 650
    assert hedged_minimum_capital(params("usdt_market_neutral", **M25))[0] == 650.0
    # btc_basis: the spot venue is Binance (40 %): 333.33 + 0.25 x 0.4 x 333.33 + 2 x 100 = 566.67 -> 580
    assert hedged_minimum_capital(params("btc_basis", **M25))[0] == 580.0
    # the shipped margin targets (0.35 ETH, 0.32 BTC): the spot venue's own margin is a little larger
    assert hedged_minimum_capital(params("eth_basis"))[0] == 580.0         # 333.33 + 35 + 200 = 568.33
    assert hedged_minimum_capital(params("btc_basis"))[0] == 590.0         # 333.33 + 42.67 + 200 = 576
    check_hedged_capital(params("eth_leveraged", 0.001))        # not hedged: no CEX floor applies


def test_the_entry_costs_raise_the_minimum_of_the_market_neutral_modes():
    """The hedge is sized on what the entry leaves on-chain: L x (1 - cost) - gas. With 35 bps of swap
    cost and 17.95 USDT of gas the long must be (333.33 + 17.95) / 0.9965 = 352.52, the capital
    352.52 + 300 = 652.52 x 1.02 = 665.6 -> 670."""
    assert hedged_minimum_capital(params("usdt_market_neutral", **M25), 35e-4, 17.95)[0] == 670.0


def test_the_market_neutral_entry_prices_its_minimum_at_the_hour():
    """At 10 gwei and ETH 2,000 the loop's entry gas is (swap 180k + 3 transfers 100k + e-mode 55k +
    approval 55k + atomic entry 1.25M) x 10 gwei = 0.0184 ETH = 36.80 USDT; the swap costs 5 bps of
    slippage + 30 bps pool fee. Long >= (333.33 + 36.80) / 0.9965 = 371.43, capital 671.43 x 1.02 =
    684.9 -> 690."""
    mv = market()
    for capital, refused in ((680.0, True), (690.0, False)):
        run_params = params("usdt_market_neutral", capital, **M25)
        strategy = UsdtMarketNeutralStrategy(run_params)
        p = Portfolio()
        strategy.seed(p, mv)
        ctx = StrategyContext(p, mv, 0, snapshot(p, mv, 0, None), run_params)
        if refused:
            with pytest.raises(CapitalTooSmall, match=r"minimum capital is 690 USDT .*entry gas 36\.80 USDT"):
                strategy.require_capital(ctx)
        else:
            strategy.require_capital(ctx)


@pytest.mark.parametrize("mode", ["eth_basis", "btc_basis", "usdt_market_neutral"])
@pytest.mark.parametrize("value", [500.0, 650.0, 1_000.0, 1_250.0, 1_500.0, 3_000.0, 1e5])
def test_the_long_leg_and_its_margins_spend_exactly_the_value(mode, value):
    """V = L + every venue's margin target at L, where a transfer venue's target is at least its floor;
    a large account is the plain V / (1 + m)."""
    run_params = params(mode)
    m = run_params.strategy.margin_ratio_target
    long_usd = long_for_value(run_params, value)
    targets = [margin_target(run_params, v, long_usd) for v in ("binance", "bybit", "okx")]
    assert long_usd + sum(targets) == pytest.approx(value)
    assert long_usd <= value / (1.0 + m) * (1 + 1e-12)
    if value >= 1e4:
        assert long_usd == pytest.approx(value / (1.0 + m))


def test_the_long_leg_by_hand():
    """Margin target 0.25: a venue's floor binds while 0.25 x its share x L < 100."""
    mn = params("usdt_market_neutral", **M25)
    assert long_for_value(mn, 1_000.0) == pytest.approx(700.0)                     # all three at 100
    assert long_for_value(mn, 1_500.0) == pytest.approx(1_300.0 / 1.1)             # Binance's 0.1 L > 100
    basis = params("eth_basis", **M25)                                             # Bybit: 0.075 L, no floor
    assert long_for_value(basis, 1_000.0) == pytest.approx(800.0 / 1.075)
    assert long_for_value(basis, 1_000.0, 0.002) == pytest.approx(800.0 / 1.077)


def test_a_needed_top_up_below_the_floor_is_rounded_up_and_says_so():
    """A 1,000 USDT long: Binance's target is max(0.25 x 0.4 x 1,000, 100) = 100. Its short of 0.5 ETH at
    2,000 with 60 USDT of equity (ratio 0.06 < trigger 0.15) is 40 short: below the floor, but Binance
    needs it, so 100 goes (97 arrive after Bybit's withdrawal fee). OKX (0.3 ETH, 95 USDT: ratio 0.158)
    is 5 short of its 100 floor but not in danger: nothing goes."""
    run_params = params("eth_basis", 1_250.0, **M25)
    mv = market()
    p = Portfolio()
    p.account("bybit").usdt = 500.0
    p.account("binance").usdt = 60.0
    p.account("binance").perp("ETH").trade(-0.5, MARK)
    p.account("okx").usdt = 95.0
    p.account("okx").perp("ETH").trade(-0.3, MARK)
    manager, log = manager_for(p, run_params)
    ctx = StrategyContext(p, mv, 0, snapshot(p, mv, 0, None), run_params)
    manager.run(fund_margins(ctx, 1_000.0, "bybit", 300.0, "margin:binance"), 0)
    [transfer] = [e for e in log.events if e.type == "transfer"]
    assert transfer.to_asset == "binance" and transfer.amount == 100.0
    assert "rounded up to binance's min_order_usdt 100 from the 40.00 USDT shortfall" in transfer.reason
    assert p.account("bybit").usdt == 400.0 and p.account("binance").usdt == pytest.approx(60.0 + 97.0)


def test_a_top_up_the_source_cannot_round_up_is_not_sent():
    run_params = params("eth_basis", 1_250.0, **M25)
    mv = market()
    p = Portfolio()
    p.account("bybit").usdt = 80.0
    p.account("binance").usdt = 60.0
    p.account("binance").perp("ETH").trade(-0.5, MARK)
    manager, log = manager_for(p, run_params)
    ctx = StrategyContext(p, mv, 0, snapshot(p, mv, 0, None), run_params)
    manager.run(fund_margins(ctx, 1_000.0, "bybit", 80.0, "margin:binance"), 0)
    assert [e for e in log.events if e.type == "transfer"] == []


def test_a_shortfall_above_the_floor_is_sent_as_it_is():
    run_params = params("eth_basis", **M25)
    mv = market()
    p = Portfolio()
    p.account("bybit").usdt = 10_000.0
    p.account("binance").usdt = 500.0
    p.account("binance").perp("ETH").trade(-20.0, MARK)          # 40,000 notional, ratio 0.0125
    p.account("okx").usdt = 10_000.0                              # above its 7,500 target
    manager, log = manager_for(p, run_params)
    ctx = StrategyContext(p, mv, 0, snapshot(p, mv, 0, None), run_params)
    manager.run(fund_margins(ctx, 100_000.0, "bybit", 10_000.0, "margin:binance"), 0)
    [transfer] = [e for e in log.events if e.type == "transfer"]
    # target 0.25 x 0.4 x 100,000 = 10,000; equity 500: 9,500, within the 10,000 available
    assert transfer.amount == pytest.approx(9_500.0) and "rounded" not in transfer.reason


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
