"""The cash comparison's arithmetic: baselines, funding read but not booked, tolerance, each payment
booked once, the foreign share of a payment, book-only allocations, persistence with the book."""
from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from engine.domain.portfolio import CexAccount, Portfolio
from engine.domain.venue_ports import VenueFundingPayment
from engine.services.live.cash_recon import CashBook, cash_mismatches

D = Decimal
SYM = "ETH/USDT:USDT"


class Marks:
    """The part of a MarketView the settlement reads: perp marks by (venue, asset)."""

    def __init__(self, mark: float) -> None:
        self.perp = {(v, "ETH"): np.array([mark]) for v in ("binance", "okx")}


def book(usdt: float, size: float = 0.0) -> Portfolio:
    p = Portfolio()
    acct = p.cex["okx"] = CexAccount(usdt=usdt)
    if size:
        acct.perp("ETH").size = size
    return p


def pay(amount: str, ts: int, pid: str, venue: str = "okx") -> VenueFundingPayment:
    return VenueFundingPayment(venue, SYM, "USDT", D(amount), ts, pid)


def test_venue_cash_less_baseline_against_book_cash_within_tolerance():
    p = book(5_000.0)
    base = {"okx": D("95000")}
    assert cash_mismatches(p, {"okx": D("100000.004")}, base, {"okx": 0.01}) == {}
    wrong = cash_mismatches(p, {"okx": D("99500")}, base, {"okx": 0.01})
    (where, diff), = wrong.items()
    assert diff == pytest.approx(-500.0)
    assert where.startswith("okx USDT cash: book 5000.00, venue 4500.00") and "tolerance 0.01" in where
    # no baseline yet: not compared
    assert cash_mismatches(p, {"okx": D("1")}, {}, {"okx": 0.01}) == {}


def test_funding_read_but_not_booked_counts_on_the_books_side():
    p = book(5_000.0)
    assert cash_mismatches(p, {"okx": D("100003")}, {"okx": D("95000")}, {"okx": 0.01}, {"okx": 3.0}) == {}


def test_each_payment_is_taken_once_and_the_cursor_moves_to_the_latest():
    c = CashBook(["okx"], {"okx": 0.01}, start_ms=1_000)
    assert c.take([pay("1", 500, "old")]) == 0                     # before the session: not the book's
    assert c.take([pay("1.5", 2_000, "a"), pay("2", 2_000, "b")]) == 2
    assert c.take([pay("1.5", 2_000, "a"), pay("2", 2_000, "b"), pay("-1", 3_000, "c")]) == 1
    assert c.cursor["okx"] == 3_000 and c.seen["okx"] == {"c"}
    assert c.unbooked() == {"okx": pytest.approx(2.5)}


def test_settlement_books_the_payment_and_splits_a_foreign_positions_share():
    p = book(1_000.0, size=-2.0)
    c = CashBook(["okx"], {"okx": 0.01}, start_ms=0)
    c.baseline["okx"] = D("9000")
    c.take([pay("3", 10, "x")])
    # the account also holds a short of 1 ETH the session does not own: a third of the payment is its
    done = c.settle(p, Marks(2_500.0), 0, {("okx", SYM): -1.0})
    assert p.cex["okx"].usdt == pytest.approx(1_002.0)
    assert c.baseline["okx"] == D("9001")
    assert done[0].payment_usd == pytest.approx(2.0) and done[0].rate == pytest.approx(2.0 / (2.0 * 2_500.0))
    assert c.pending == [] and c.mismatches(p, {"okx": D("10003")}) == {}


def test_missing_baselines_and_book_only_allocations():
    p = book(5_000.0)
    p.cex["binance"] = CexAccount(usdt=5_000.0)
    c = CashBook(["okx", "binance"], {"okx": 0.01, "binance": 0.01}, start_ms=0)
    assert c.set_missing_baselines(p, {"okx": D("100000"), "binance": D("150000")}) == ["okx", "binance"]
    assert c.baseline == {"okx": D("95000.0"), "binance": D("145000.0")}
    # the book moves 1,000 USDT from binance to okx without a withdrawal: the venues did not move
    p.cex["binance"].usdt -= 1_000.0
    p.cex["okx"].usdt += 1_000.0
    c.allocated("binance", "okx", 1_000.0)
    assert c.mismatches(p, {"okx": D("100000"), "binance": D("150000")}) == {}


def test_baselines_and_cursor_survive_the_book_and_a_changed_venue_is_measured_again():
    c = CashBook(["okx", "binance"], {"okx": 0.01, "binance": 0.01}, start_ms=0)
    c.baseline = {"okx": D("95000.5"), "binance": D("1")}
    c.take([pay("1", 7, "p1")])
    saved = {"cash": c.to_book()}
    again = CashBook(["okx", "binance"], {"okx": 0.01, "binance": 0.01}, start_ms=99)
    again.restore(saved, remeasure=["binance"])
    assert again.baseline == {"okx": D("95000.5")}
    assert again.cursor["okx"] == 7 and again.seen["okx"] == {"p1"}
    assert again.take([pay("1", 7, "p1")]) == 0                    # booked before the restart: not again


def test_a_payment_made_before_the_baseline_read_is_in_the_baseline_not_booked_again():
    p = book(5_000.0)
    c = CashBook(["okx"], {"okx": 0.01}, start_ms=1_000)
    c.set_missing_baselines(p, {"okx": D("100003")}, read_at_ms=5_000)   # 3 USDT paid at 2_000 is in it
    assert c.take([pay("3", 2_000, "early")]) == 0
    assert c.mismatches(p, {"okx": D("100003")}) == {}
    assert c.take([pay("1", 8_000, "later")]) == 1 and c.mismatches(p, {"okx": D("100004")}) == {}
