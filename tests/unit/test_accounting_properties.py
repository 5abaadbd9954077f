"""Property tests: the closed-form market-move attribution equals the independent valuation change
for any holdings and any price move, in both share-class currencies (the reconciliation invariant).
The value is mark-to-market (LSTs at their market rate), so `lst_peg` is part of every sum."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.components.pnl_attribution import attribute_market_move
from engine.components.valuation import lst_peg_usd, to_numeraire, value_usd
from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio

amount = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
price = st.floats(min_value=100.0, max_value=100_000.0)
index = st.floats(min_value=1.0, max_value=1.5)
rate = st.floats(min_value=0.9, max_value=1.3)


def two_hour_market(draw) -> MarketView:
    def pair(gen):
        return [draw(gen), draw(gen)]
    return MarketView(
        timestamps=["a", "b"],
        spot={"ETH": pair(price), "BTC": pair(price)},
        perp={("binance", "ETH"): pair(price), ("okx", "BTC"): pair(price)},
        funding={},
        supply_index={r: pair(index) for r in ("USDT", "WETH", "weETH")},
        borrow_index={r: pair(index) for r in ("USDT", "WETH")},
        lst_oracle={"weETH": pair(rate)},
        lst_market={"weETH": pair(rate)},
        gas_gwei=[1.0, 1.0], cost_bps={},
    )


@st.composite
def scenario(draw):
    mv = two_hour_market(draw)
    p = Portfolio()
    w = p.wallet
    for token in ("ETH", "USDT", "weETH", "GAS_DEBT"):
        w.tokens[token] = draw(amount)
    for reserve in ("USDT", "WETH", "weETH"):
        w.supply_scaled[reserve] = draw(positive)
    for reserve in ("USDT", "WETH"):
        w.debt_scaled[reserve] = draw(positive)
    a = p.account("binance")
    a.usdt = draw(amount)
    a.spot["ETH"] = draw(positive)
    a.perp("ETH").trade(draw(amount), draw(price))
    o = p.account("okx")
    o.spot["BTC"] = draw(positive)
    o.perp("BTC").trade(draw(amount), draw(price))
    return p, mv


@settings(max_examples=300, deadline=None)
@given(scenario(), st.sampled_from(["USDT", "ETH"]))
def test_market_move_components_sum_to_value_change(case, currency):
    p, mv = case
    v0_usd, v1_usd = value_usd(p, mv, 0), value_usd(p, mv, 1)
    m0_usd, m1_usd = v0_usd + lst_peg_usd(p, mv, 0), v1_usd + lst_peg_usd(p, mv, 1)
    move = attribute_market_move(p, mv, 0, 1, v0_usd, currency)
    total = move.lending + move.borrow + move.staking + move.lst_peg + move.perp_mtm + move.spot_price
    change = to_numeraire(m1_usd, currency, mv, 1) - to_numeraire(m0_usd, currency, mv, 0)
    scale = 1.0 + sum(abs(x) for x in (v0_usd, v1_usd, m0_usd, m1_usd)) / (1.0 if currency == "USDT" else 100.0)
    assert abs(total - change) <= 1e-9 * scale
    # the protocol value (oracle rates) moves by everything but lst_peg
    protocol = to_numeraire(v1_usd, currency, mv, 1) - to_numeraire(v0_usd, currency, mv, 0)
    assert abs(total - move.lst_peg - protocol) <= 1e-9 * scale
    # peg_b is the market-vs-oracle value at b of the holdings (what the simulation books trades against)
    assert abs(move.peg_b - to_numeraire(lst_peg_usd(p, mv, 1), currency, mv, 1)) <= 1e-9 * scale


@settings(max_examples=100, deadline=None)
@given(scenario(), st.sampled_from(["USDT", "ETH"]))
def test_lst_peg_is_the_market_oracle_gap_and_nothing_else(case, currency):
    """With the market rate equal to the oracle rate at both hours there is no peg P&L; moving only
    the market rate moves only lst_peg, by units x (market change) at the ETH price."""
    p, mv = case
    mv.lst_market["weETH"] = list(mv.lst_oracle["weETH"])
    v0 = value_usd(p, mv, 0)
    assert attribute_market_move(p, mv, 0, 1, v0, currency).lst_peg == 0.0
    mv.lst_market["weETH"] = [mv.lst_oracle["weETH"][0], mv.lst_oracle["weETH"][1] * 0.95]
    move = attribute_market_move(p, mv, 0, 1, v0, currency)
    w = p.wallet
    units = w.tokens["weETH"] + w.supply_scaled["weETH"] * mv.supply_index["weETH"][1]
    expected_usd = units * (mv.lst_market["weETH"][1] - mv.lst_oracle["weETH"][1]) * mv.eth[1]
    expected = expected_usd if currency == "USDT" else expected_usd / mv.eth[1]
    assert abs(move.lst_peg - expected) <= 1e-9 * (1.0 + abs(expected_usd))


@settings(max_examples=100, deadline=None)
@given(scenario())
def test_components_have_the_right_signs(case):
    """Supply indices only grow and debt only costs; with ETH/BTC prices and marks held flat, lending
    >= 0, borrow <= 0 and the market move is exactly lending + borrow + staking."""
    p, mv = case
    for r in mv.supply_index:
        lo, hi = sorted(mv.supply_index[r])
        mv.supply_index[r] = [lo, hi]
    for r in mv.borrow_index:
        lo, hi = sorted(mv.borrow_index[r])
        mv.borrow_index[r] = [lo, hi]
    for series in (mv.spot, mv.perp):
        for k in series:
            series[k] = [series[k][0], series[k][0]]
    mv.eth = mv.spot["ETH"]
    move = attribute_market_move(p, mv, 0, 1, value_usd(p, mv, 0), "USDT")
    assert move.lending >= 0.0
    assert move.borrow <= 0.0
    assert move.perp_mtm == 0.0
