"""Calculator unit tests with values computed by hand."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from engine.domain.portfolio import PerpPosition
from engine.math import aave, costs, leverage, metrics, perp


def test_scaled_balance_round_trip_and_interest():
    # 1000 USDT supplied at index 1.05 -> 952.38095 scaled; at index 1.06 it is worth 1009.5238
    scaled = aave.to_scaled(1000.0, 1.05)
    assert scaled == pytest.approx(952.3809524, rel=1e-9)
    assert aave.from_scaled(scaled, 1.06) == pytest.approx(1000.0 * 1.06 / 1.05, rel=1e-12)


def test_health_factor_emode_loop():
    # 10 weETH at 1.05 ETH = 10.5 ETH collateral, LT 0.95, debt 9 ETH -> HF = 9.975 / 9 = 1.108333
    assert aave.health_factor(10.5, 0.95, 9.0) == pytest.approx(1.1083333333)
    assert aave.health_factor(10.5, 0.95, 0.0) == math.inf
    assert aave.ltv(10.5, 9.0) == pytest.approx(0.857142857)


def test_liquidation_close_factor_and_bonus():
    # HF 0.98: half the debt (close factor 0.5); HF 0.9 (< 0.95): all of it
    assert aave.liquidation_repay(100.0, 0.98, 0.5, 0.95) == 50.0
    assert aave.liquidation_repay(100.0, 0.90, 0.5, 0.95) == 100.0
    assert aave.liquidation_repay(100.0, 1.00, 0.5, 0.95) == 0.0
    # repay 50 with a 1% bonus seizes 50.5 of collateral, capped by what exists
    assert aave.liquidation_seized(50.0, 0.01, 1000.0) == pytest.approx(50.5)
    assert aave.liquidation_seized(50.0, 0.01, 40.0) == 40.0


def test_deleverage_withdrawal_reaches_target_hf():
    c, p, d, lt, s = 100.0, 1.05, 100.5, 0.95, 1.04   # HF = 100*1.05*0.95/100.5 = 0.99254
    w = aave.deleverage_withdrawal(c, p, d, lt, 1.03, s)
    hf_after = (c - w) * p * lt / (d - w * s)
    assert hf_after == pytest.approx(1.03, rel=1e-12)
    assert aave.deleverage_withdrawal(c, p, 10.0, lt, 1.03, s) == 0.0


def test_flash_loan_amount_gives_target_ltv():
    e, l = 10.0, 0.9
    f = leverage.flash_loan_amount(e, l)
    assert f == pytest.approx(90.0)
    assert f / (e + f) == pytest.approx(l)
    with pytest.raises(ValueError):
        leverage.flash_loan_amount(e, 1.0)


def test_sequential_loop_semantics():
    # None: until borrow < min; each stake is the previous borrow (l = 0.5: 8, 4, 2, 1 -> next 0.5 < 0.6)
    steps = leverage.sequential_loop(8.0, 0.5, None, 0.6)
    assert [s.stake_eth for s in steps] == [8.0, 4.0, 2.0, 1.0]
    assert [s.borrow_eth for s in steps] == [4.0, 2.0, 1.0, 0.0]
    # 0: stake and supply only; 1: exactly one borrow re-staked
    assert [(s.stake_eth, s.borrow_eth) for s in leverage.sequential_loop(8.0, 0.5, 0, 0.01)] == [(8.0, 0.0)]
    assert [(s.stake_eth, s.borrow_eth) for s in leverage.sequential_loop(8.0, 0.5, 1, 0.01)] == [
        (8.0, 4.0), (4.0, 0.0)]


def test_funding_on_current_notional():
    # short 2 ETH, mark 3000, rate +0.01% -> receives 0.6 USDT; long pays
    assert perp.funding_payment(-2.0, 3000.0, 0.0001) == pytest.approx(0.6)
    assert perp.funding_payment(2.0, 3000.0, 0.0001) == pytest.approx(-0.6)
    # uses the mark at settlement, not the entry: same position at mark 4000 receives 0.8
    assert perp.funding_payment(-2.0, 4000.0, 0.0001) == pytest.approx(0.8)


def test_margin_ratio_and_liquidation():
    assert perp.margin_ratio(1500.0, 10000.0) == 0.15
    assert perp.margin_ratio(1500.0, 0.0) == math.inf
    assert perp.is_liquidatable(400.0, 10000.0, 0.05)
    assert not perp.is_liquidatable(600.0, 10000.0, 0.05)


def test_perp_position_entry_and_realized():
    pos = PerpPosition()
    assert pos.trade(-2.0, 3000.0) == 0.0
    assert pos.trade(-2.0, 3200.0) == 0.0
    assert pos.entry_price == pytest.approx(3100.0)
    assert pos.unrealized(3000.0) == pytest.approx(400.0)   # short 4 from 3100 to 3000
    realized = pos.trade(1.0, 3000.0)                          # buy back 1 at 3000: +100
    assert realized == pytest.approx(100.0)
    assert pos.size == -3.0 and pos.entry_price == pytest.approx(3100.0)
    realized = pos.trade(5.0, 3050.0)                          # close 3 (+150), flip long 2 at 3050
    assert realized == pytest.approx(150.0)
    assert pos.size == 2.0 and pos.entry_price == 3050.0


def test_slippage_buckets_interpolate_in_log_notional():
    assert costs.slippage_bps(5_000, 5, 7, 13) == 5
    assert costs.slippage_bps(100_000, 5, 7, 13) == pytest.approx(7)
    assert costs.slippage_bps(1_000_000, 5, 7, 13) == pytest.approx(13)
    # sqrt(10k*100k) = 31,623 is half way in log space: 6 bps
    assert costs.slippage_bps(math.sqrt(1e4 * 1e5), 5, 7, 13) == pytest.approx(6.0)


def test_slippage_keeps_growing_as_the_square_root_of_size_beyond_the_largest_bucket():
    """Past the 1m bucket the impact is 1m bps x sqrt(size / 1m): 4x the size, 2x the bps; a 1e9
    order no longer costs what a 1e6 one does."""
    assert costs.slippage_bps(4_000_000, 5, 7, 13) == pytest.approx(26.0)
    assert costs.slippage_bps(1e9, 5, 7, 13) == pytest.approx(13 * math.sqrt(1000))
    sizes = np.geomspace(1e6, 1e9, 50)
    bps = [costs.slippage_bps(n, 5, 7, 13) for n in sizes]
    assert all(b2 > b1 for b1, b2 in itertools.pairwise(bps))
    # continuous at the bucket edge
    assert costs.slippage_bps(1e6 * (1 + 1e-9), 5, 7, 13) == pytest.approx(costs.slippage_bps(1e6 * (1 - 1e-9), 5, 7, 13))


def test_gas_cost():
    # 150k gas at 20 gwei = 0.003 ETH
    assert costs.gas_cost_eth(150_000, 20.0) == pytest.approx(0.003)


def test_metrics_by_hand():
    v = np.array([100.0, 110.0, 99.0, 120.0])
    assert metrics.max_drawdown(v) == pytest.approx(0.1)          # 110 -> 99
    assert metrics.apr(100.0, 105.0, 8760) == pytest.approx(0.05)
    assert metrics.apy(100.0, 105.0, 4380) == pytest.approx(1.05 ** 2 - 1)
    r = np.array([0.1, -0.1, 120 / 99 - 1])
    assert metrics.volatility(v) == pytest.approx(np.std(r, ddof=1) * math.sqrt(365))   # v as daily closes
    assert metrics.sharpe(v) == pytest.approx(np.mean(r) / np.std(r, ddof=1) * math.sqrt(365))
    assert metrics.sharpe(np.array([1.0, 1.0, 1.0])) is None


def test_daily_closes_take_each_days_last_hour():
    hourly = np.arange(60, dtype=float)            # 2.5 days of hours starting at midnight
    day = np.arange(60) // 24
    assert metrics.daily_closes(hourly, day).tolist() == [23.0, 47.0, 59.0]   # the partial day: its latest
    # hour-to-hour noise inside a day does not reach the daily series
    noisy = hourly + np.where(np.arange(60) % 2 == 0, 5.0, -5.0)
    assert metrics.daily_closes(noisy, day).tolist() == [18.0, 42.0, 54.0]
