"""Booking a live fill with its fee as the venue took it: a spot buy's fee in the coin bought comes
off the holding, a quote fee off the cash, an unreported one is the fee schedule's estimate; and the
book's value changes by exactly the attributed execution cost."""
from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.portfolio import Portfolio
from engine.domain.venue_ports import VenueFee, VenueFill
from engine.services.live.book_store import FillFee, apply_fill, fill_fee, quote_of, summed_fees
from venues.cex.numbers import fees_of, trades_fees

D = Decimal


def spot_value(p: Portfolio, venue: str, asset: str, price: float) -> float:
    acct = p.account(venue)
    return acct.usdt + acct.spot.get(asset, 0.0) * price


def test_quote_of_reads_the_settle_coin_of_a_perp_and_the_quote_of_a_pair():
    assert (quote_of("ETH/USDT"), quote_of("ETH/USDT:USDT"), quote_of("ETH/USDC:USDC")) == ("USDT", "USDT", "USDC")


def test_an_unreported_fee_is_the_taker_rate_on_the_notional_in_cash():
    assert fill_fee((), "ETH/USDT", 2_000.0, 10.0) == FillFee(cash=2.0)


def test_a_spot_buy_fee_in_the_coin_comes_off_the_holding_and_the_cash_pays_the_notional_only():
    p = Portfolio()
    p.account("bybit").usdt = 10_000.0
    fee = fill_fee((VenueFee("ETH", D("0.001")),), "ETH/USDT", 2_000.0, 10.0)
    assert fee == FillFee(cash=0.0, coin=0.001, reported=True)
    apply_fill(p, "bybit", "ETH", False, 1.0, 2_000.0, fee)
    assert p.cex["bybit"].spot["ETH"] == pytest.approx(0.999, abs=1e-15)
    assert p.cex["bybit"].usdt == 8_000.0


def test_the_value_change_equals_the_attributed_cost_with_the_coin_fee_at_the_valuation_price():
    p = Portfolio()
    p.account("okx").usdt = 10_000.0
    ref, price, qty = 1_999.0, 2_000.0, 1.5               # valued at ref, bought at price (slippage)
    before = spot_value(p, "okx", "ETH", ref)
    fee = fill_fee((VenueFee("ETH", D("0.0015")),), "ETH/USDT", qty * price, 10.0)
    apply_fill(p, "okx", "ETH", False, qty, price, fee)
    cost = fee.value(ref) + qty * (price - ref)            # as LiveCexExecutor attributes it
    assert spot_value(p, "okx", "ETH", ref) - before == pytest.approx(-cost, abs=1e-9)


def test_a_spot_sell_and_a_perp_pay_their_reported_fee_from_the_cash():
    p = Portfolio()
    acct = p.account("binance")
    acct.usdt, acct.spot["ETH"] = 1_000.0, 2.0
    sell = fill_fee((VenueFee("USDT", D("2")),), "ETH/USDT", 2_000.0, 10.0)
    apply_fill(p, "binance", "ETH", False, -1.0, 2_000.0, sell)
    assert (acct.spot["ETH"], acct.usdt) == (1.0, 2_998.0)
    short = fill_fee((VenueFee("USDT", D("0.5")),), "ETH/USDT:USDT", 2_000.0, 5.0)
    apply_fill(p, "binance", "ETH", True, -1.0, 2_000.0, short)
    assert acct.perps["ETH"].size == -1.0 and acct.usdt == pytest.approx(2_997.5)
    # a fill found at restart whose perp size was already taken from the venue: only its fee
    apply_fill(p, "binance", "ETH", True, -1.0, 2_000.0, short, size_from_venue=True)
    assert acct.perps["ETH"].size == -1.0 and acct.usdt == pytest.approx(2_997.0)


def test_a_fee_in_a_currency_the_book_does_not_hold_falls_back_to_the_estimate():
    # Binance charging BNB; a perp fee in the base coin is not how a linear perp settles either
    assert fill_fee((VenueFee("BNB", D("0.01")),), "ETH/USDT", 2_000.0, 10.0) == FillFee(cash=2.0)
    assert fill_fee((VenueFee("ETH", D("0.001")),), "ETH/USDT:USDT", 2_000.0, 5.0) == FillFee(cash=1.0)


def test_a_partial_fill_takes_its_share_of_the_order_fees():
    fee = fill_fee((VenueFee("ETH", D("0.004")), VenueFee("USDT", D("1"))), "ETH/USDT", 1.0, 10.0, share=0.25)
    assert fee == FillFee(cash=0.25, coin=0.001, reported=True)


def test_fills_fees_are_summed_per_currency_and_a_fill_without_its_fee_makes_the_sum_unknown():
    def fill(*fees: VenueFee) -> VenueFill:
        return VenueFill("okx", "ETH/USDT", "1", "c", None, D(1), D(2000), None, fees)
    both = summed_fees([fill(VenueFee("ETH", D("0.001"))), fill(VenueFee("ETH", D("0.002")))])
    assert both == (VenueFee("ETH", D("0.003")),)
    assert summed_fees([fill(VenueFee("ETH", D("0.001"))), fill()]) == ()
    assert summed_fees([]) == ()


def test_ccxt_fees_are_read_from_the_fees_list_else_the_single_fee():
    assert fees_of({"fees": [{"cost": 0.001, "currency": "ETH"}, {"cost": 0.002, "currency": "ETH"},
                             {"cost": 0.5, "currency": "USDT"}], "fee": {"cost": 9, "currency": "ETH"}}) == (
        VenueFee("ETH", D("0.003")), VenueFee("USDT", D("0.5")))
    assert fees_of({"fees": [], "fee": {"cost": "0.0001", "currency": "LTC"}}) == (VenueFee("LTC", D("0.0001")),)
    # not reported: no fee, a fee without currency or cost, a non-finite cost
    assert fees_of({"fee": None, "fees": []}) == ()
    assert fees_of({"fees": [{"cost": None, "currency": "ETH"}, {"cost": 1, "currency": None},
                             {"cost": float("nan"), "currency": "ETH"}]}) == ()
    assert fees_of(None) == ()


def test_an_orders_ccxt_trades_fees_are_summed_per_currency_and_one_without_its_fee_makes_it_unknown():
    eth = {"fee": {"cost": "0.0001", "currency": "ETH"}, "fees": []}
    usdt = {"fees": [{"cost": 0.25, "currency": "USDT"}]}
    assert trades_fees([eth, eth, usdt]) == (VenueFee("ETH", D("0.0002")), VenueFee("USDT", D("0.25")))
    assert trades_fees([eth, {"fee": None, "fees": []}]) == ()      # a partial sum is not the order's fee
    assert trades_fees([]) == () and trades_fees(None) == ()
