"""Trading state machine, risk limits and the SQLite journal (no venue needed)."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from engine.domain.venue_ports import OrderRequest, OrderType, Side
from engine.services.live.journal import Journal
from engine.services.live.risk_limits import RiskLimits, RiskReading, evaluate
from engine.services.live.state import TradingHalted, TradingState, TradingStateMachine

LIMITS = RiskLimits(max_drawdown=0.1, max_daily_loss=0.03, max_position_usdt=1_000_000, hf_floor=1.01,
                    margin_ratio_floor=0.12, max_data_age_seconds=120, breach_action="halt")


def test_halted_refuses_everything_until_an_explicit_reset():
    changes = []
    sm = TradingStateMachine(changes.append)
    assert sm.allows(reduce_only=False)
    sm.halt("e-stop")
    assert not sm.allows(False) and not sm.allows(True)
    with pytest.raises(TradingHalted, match="HALTED"):
        sm.check(True, "binance buy ETH/USDT:USDT")
    assert sm.reduce("risk") is None                 # REDUCING never downgrades HALTED
    assert sm.state is TradingState.HALTED
    sm.reset("operator")
    assert sm.state is TradingState.ACTIVE
    assert [(c.previous.value, c.current.value) for c in changes] == [("ACTIVE", "HALTED"), ("HALTED", "ACTIVE")]


def test_reducing_lets_only_reduce_only_orders_through():
    sm = TradingStateMachine()
    sm.reduce("drawdown")
    assert sm.allows(True) and not sm.allows(False)
    with pytest.raises(TradingHalted, match="reduce-only"):
        sm.check(False, "x")


def test_each_limit_breaches_alone():
    ok = RiskReading(value=100, peak_value=100, day_start_value=100, largest_position_usdt=10,
                     health_factor=1.05, margin_ratios={"binance": 0.3}, data_age_seconds=5)
    assert evaluate(LIMITS, ok) == []
    cases = {
        "max_drawdown": dict(value=85, day_start_value=85),
        "max_daily_loss": dict(value=96, peak_value=100, day_start_value=100),
        "max_position_usdt": dict(largest_position_usdt=2_000_000),
        "hf_floor": dict(health_factor=1.005),
        "margin_ratio_floor[binance]": dict(margin_ratios={"binance": 0.1}),
        "max_data_age_seconds": dict(data_age_seconds=300),
    }
    for limit, change in cases.items():
        reading = dataclasses.replace(ok, **change)
        assert [b.limit for b in evaluate(LIMITS, reading)] == [limit], limit


def test_journal_round_trip(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    req = OrderRequest("ETH/USDT:USDT", Side.SELL, OrderType.MARKET, Decimal("1.5"), "bw0123456789abcdef")
    j.order_submitted("s1", "binance", req)
    assert [o.client_order_id for o in j.open_orders()] == ["bw0123456789abcdef"]
    j.order_update("bw0123456789abcdef", "closed", "42", Decimal("1.5"), Decimal("3000"))
    j.fill("bw0123456789abcdef", "binance", "ETH/USDT:USDT", "sell", Decimal("1.5"), Decimal("3000"))
    j.close()
    j2 = Journal(tmp_path / "j.sqlite3")                 # survives a restart
    assert j2.open_orders() == []
    assert j2.positions() == {("binance", "ETH/USDT:USDT"): Decimal("-1.5")}
