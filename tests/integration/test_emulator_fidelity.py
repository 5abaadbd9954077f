"""The emulator against the real venues, as ccxt's maintainers recorded them (tests/fixtures/ccxt_static).

1. Every answer the emulator gives, on every endpoint the adapters use, carries the fields and JSON
   types of the recorded real answer for that endpoint (recursively; the emulator may send more).
2. The recorded answers themselves, replayed by the emulator through the real ccxt client, become the
   balances, positions and orders the recording says (ccxt's own parse of it, ``parsedResponse``)
   in the project's adapters, with the adapters' units (base asset, signed size).
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.venue_ports import (
    MarketKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    VenueFee,
    new_client_order_id,
)
from tests.integration.emulator import binance as emu_binance
from tests.integration.emulator import bybit as emu_bybit
from tests.integration.emulator import okx as emu_okx
from tests.integration.emulator.core import D
from tests.integration.fidelity import ENDPOINTS, case, merged, shape_problems
from tests.integration.test_emulator_adapters import adapter
from venues.cex import diagnostics
from venues.cex.adapter import CexVenueAdapter, dec
from venues.cex.numbers import fees_of

VENUES = ("binance", "bybit", "okx")


async def exercise(a: CexVenueAdapter, venue: str, emulator) -> None:
    """Calls that reach every endpoint in ENDPOINTS, with something in the books so lists have items."""
    await a.load_markets()
    state = emulator.venues[venue]
    spot, perp = "ETH/USDT", "ETH/USDT:USDT"
    await a.create_order(OrderRequest(perp, Side.SELL, OrderType.MARKET, Decimal("0.5"), new_client_order_id()))
    await a.create_order(OrderRequest(spot, Side.BUY, OrderType.LIMIT, Decimal("0.01"), new_client_order_id(),
                                      price=Decimal(2000)))
    await a.create_order(OrderRequest(perp, Side.BUY, OrderType.LIMIT, Decimal("0.1"), new_client_order_id(),
                                      price=Decimal(2000)))
    filled_spot = new_client_order_id()
    await a.create_order(OrderRequest(spot, Side.BUY, OrderType.MARKET, Decimal("0.01"), filled_spot))
    filled_perp = new_client_order_id()
    await a.create_order(OrderRequest(perp, Side.SELL, OrderType.MARKET, Decimal("0.1"), filled_perp))
    assert state.open_orders() and state.positions
    await a.fetch_balances()
    await a.fetch_positions()
    # cash and the funding the venue paid (income / execution list Funding / bills)
    paid = state.settle_funding(rate=Decimal("0.0001"))
    await a.fetch_cash()
    assert [p.payment_id for p in await a.fetch_funding_payments([perp], paid[0].ts_ms)] == [paid[0].record_id]
    await a.fetch_open_orders()
    await a.fetch_market_snapshot([spot, perp])
    assert (await a.fetch_order_by_client_id(spot, filled_spot)).status is OrderStatus.CLOSED
    assert (await a.fetch_order_by_client_id(perp, filled_perp)).status is OrderStatus.CLOSED
    # the second look of an uncertain submit: the order's trades by client id (Binance: by the orderId
    # its order look-up by client id gives, myTrades / userTrades)
    spot_fills = await a.fetch_fills_by_client_id(spot, filled_spot)
    perp_fills = await a.fetch_fills_by_client_id(perp, filled_perp)
    assert [f.amount for f in spot_fills] == [Decimal("0.01")] and [f.amount for f in perp_fills] == [Decimal("0.1")]
    await a.accounts[0].server_time_ms(samples=1)
    await diagnostics.account_mode(a)
    await a.cancel_all_orders()


@pytest.mark.parametrize("venue", VENUES)
async def test_every_emulator_answer_carries_the_recorded_fields_and_types(emulator, venue):
    emulator.record_answers = True
    a = adapter(emulator, venue)
    try:
        await exercise(a, venue, emulator)
    finally:
        await a.close()
    problems: list[str] = []
    for endpoint in (e for e in ENDPOINTS if e.venue == venue):
        answers = emulator.answers.get((venue, endpoint.method, endpoint.path), [])
        assert answers, f"the adapters never called {endpoint.method} {endpoint.path}"
        for method, description in endpoint.cases:
            want = case(venue, method, description)["httpResponse"]
            if endpoint.element and isinstance(want, list):      # a batch recording for a one-order endpoint
                want = merged(want)
            per_answer = []
            for got in answers:
                if not endpoint.wants(got):
                    continue
                items = got if endpoint.element and isinstance(got, list) else [got]
                found = [p for item in items for p in shape_problems(want, item, venue)] \
                    + ([] if items else ["$: emulator list is empty"])
                per_answer.append((any("list is empty" in p for p in found), found))
            assert per_answer, f"no answer of {endpoint.method} {endpoint.path} is the recording's kind"
            # an answer with an empty list says nothing about the items' shape when another one had items
            informative = [found for empty, found in per_answer if not empty] or [per_answer[0][1]]
            for found in informative:
                problems += [f"{endpoint.method} {endpoint.path} vs {method} '{description}': {p}" for p in found]
    problems = list(dict.fromkeys(problems))
    assert not problems, f"{len(problems)} difference(s):\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------ replays
def replay(emulator, venue: str, method: str, path: str, unified: str, description: str) -> dict:
    recorded = case(venue, unified, description)
    emulator.add_fault(venue, path, method, answer_json=recorded["httpResponse"])
    return recorded["parsedResponse"]


def expect_balances(parsed: dict, balances, account: str) -> None:
    got = {b.asset: b for b in balances if b.account == account}
    want = {asset: row for asset, row in parsed.items()
            if isinstance(row, dict) and "total" in row and row["total"] not in (None, 0)}
    assert set(got) == set(want), (sorted(got), sorted(want))
    for asset, row in want.items():
        b = got[asset]
        assert b.total == dec(row["total"]), asset
        assert b.free == (dec(row["free"]) or Decimal(0)), asset
        if row.get("used") is not None:
            assert b.used == dec(row["used"]), asset


def filled_order_answer(trade: dict, client_id: str, futures: bool) -> dict:
    """The recorded GET order answer (spot closed order / swap order) of the order a recorded trade
    belongs to, filled by that one trade: the recorded trades' orders were not recorded themselves."""
    recorded = case("binance", "fetchOpenOrder", "swap open order") if futures else \
        case("binance", "fetchOrder", "Fetch spot closed order")
    answer = dict(recorded["httpResponse"])
    answer.update({"symbol": trade["symbol"], "orderId": trade["orderId"], "clientOrderId": client_id,
                   "origQty": trade["qty"], "executedQty": trade["qty"], "status": "FILLED"})
    if futures:
        answer.update({"cumQty": trade["qty"], "avgPrice": trade["price"], "cumQuote": trade["quoteQty"]})
    else:
        answer["cummulativeQuoteQty"] = trade["quoteQty"]
    return answer


def add_markets(emulator) -> None:
    """The recordings trade LTC, ADA and SOL: list those markets (the replayed answers name them)."""
    binance, bybit, okx = (emulator.venues[v] for v in VENUES)
    for kind in ("spot", "perp"):
        for base, price in (("LTC", D("70")), ("SOL", D("240"))):
            binance.add_instrument(emu_binance.make_instrument(kind, base, price))
    for category in ("spot", "linear"):
        bybit.add_instrument(emu_bybit.make_instrument(category, "LTC", D("70")))
    for base, price, ct_val in (("LTC", D("70"), D("1")), ("ADA", D("0.3"), D("100"))):
        for inst in emu_okx.make_instruments(base, price, ct_val):
            okx.add_instrument(inst)


def adapter_for(emulator, venue: str, bases: tuple[str, ...]) -> CexVenueAdapter:
    a = adapter(emulator, venue)
    a.markets = {MarketKind.SPOT: {b: f"{b}/USDT" for b in bases}, MarketKind.PERP: {b: f"{b}/USDT:USDT" for b in bases}}
    return a


async def test_recorded_okx_answers_become_the_right_balances_positions_and_orders(emulator):
    add_markets(emulator)
    a = adapter_for(emulator, "okx", ("LTC", "ADA", "BTC"))
    try:
        await a.load_markets()
        parsed = replay(emulator, "okx", "GET", "api/v5/account/balance", "fetchBalance", "spot balance")
        expect_balances(parsed, await a.fetch_balances(), "trading")

        pos = replay(emulator, "okx", "GET", "api/v5/account/positions", "fetchPosition", "fetch position")
        (p,) = await a.fetch_positions(["LTC/USDT:USDT"])
        assert p.symbol == pos["symbol"] == "LTC/USDT:USDT"
        assert p.size == Decimal(2)                        # 2 contracts of 1 LTC, long
        assert (p.entry_price, p.mark_price, p.unrealized_pnl) == (Decimal("82.675"), Decimal("101.33"),
                                                                   Decimal("0.03731"))
        assert (p.leverage, p.margin_mode) == (Decimal(10), "cross") and p.liquidation_price is None

        orders = replay(emulator, "okx", "GET", "api/v5/trade/orders-pending", "fetchOpenOrders",
                        "fetch swap limit open order with take profit and stop loss")
        (o,) = await a.fetch_open_orders("ADA/USDT:USDT")
        want = orders[0]
        assert (o.order_id, o.client_order_id, o.side, o.status) == (want["id"], want["clientOrderId"], Side.BUY,
                                                                      OrderStatus.OPEN)
        assert o.amount == Decimal(5000) and o.filled == 0     # 50 contracts of 100 ADA
        assert o.price == Decimal("0.2")

        filled = replay(emulator, "okx", "GET", "api/v5/trade/order", "fetchOrder", "fetch spot order")
        emulator.add_fault("okx", "api/v5/trade/orders-pending", "GET", answer_json={"code": "0", "msg": "", "data": []})
        got = await a.fetch_order_by_client_id("LTC/USDT", filled["clientOrderId"])
        assert (got.status, got.filled, got.average) == (OrderStatus.CLOSED, Decimal("0.1"), Decimal("101.58"))
        assert got.order_id == "1339107111507525632"
        # a real spot buy: OKX took its fee in the LTC bought (fee -0.0001, feeCcy LTC)
        assert got.fees == (VenueFee("LTC", Decimal("0.0001")),) and filled["fee"]["currency"] == "LTC"
    finally:
        await a.close()


async def test_recorded_bybit_answers_become_the_right_balances_positions_and_orders(emulator):
    add_markets(emulator)
    a = adapter_for(emulator, "bybit", ("LTC", "BTC"))
    try:
        await a.load_markets()
        parsed = replay(emulator, "bybit", "GET", "v5/account/wallet-balance", "fetchBalance",
                        "balance after availableToWithdraw update")
        expect_balances(parsed, await a.fetch_balances(), "unified")

        replay(emulator, "bybit", "GET", "v5/position/list", "fetchPositions", "Fetch linear position")
        (p,) = await a.fetch_positions(["LTC/USDT:USDT"])
        assert (p.symbol, p.size, p.entry_price, p.mark_price) == ("LTC/USDT:USDT", Decimal("1.2"),
                                                                   Decimal("64.59947917"), Decimal("71.1"))
        assert (p.unrealized_pnl, p.leverage) == (Decimal("7.800625"), Decimal(6))

        orders = replay(emulator, "bybit", "GET", "v5/order/realtime", "fetchOpenOrder",
                        "Fetch an open swap order by its ID and symbol")
        (o,) = await a.fetch_open_orders("BTC/USDT:USDT")
        assert (o.order_id, o.side, o.status, o.amount, o.price) == (
            orders["id"], Side.BUY, OrderStatus.OPEN, Decimal("0.001"), Decimal(102000))

        # a real spot buy's trade: Bybit took its fee in the ETH bought (execFee, feeCurrency ETH)
        trades = case("bybit", "fetchMyTrades", "spot trades without symbol")
        [row] = [r for r in trades["httpResponse"]["result"]["list"] if r.get("feeCurrency") == "ETH"][:1]
        assert row["side"] == "Buy" and fees_of(trades["parsedResponse"][0]) == (VenueFee("ETH", Decimal("0.000001")),)

        created = replay(emulator, "bybit", "POST", "v5/order/create", "createOrder", "create spot order")
        order = await a.create_order(OrderRequest("LTC/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.1"),
                                                  new_client_order_id(), price=Decimal(60)))
        assert order.order_id == created["id"] == "1609920528435648000"
    finally:
        await a.close()


async def test_recorded_binance_answers_become_the_right_balances_positions_and_orders(emulator):
    add_markets(emulator)
    a = adapter_for(emulator, "binance", ("LTC", "BTC", "SOL"))
    try:
        await a.load_markets()
        spot = replay(emulator, "binance", "GET", "api/v3/account", "fetchBalance", "Spot balance")
        usdm_case = case("binance", "fetchPositions", "Fetch linear positions using account endnpoint")
        emulator.add_fault("binance", "fapi/v3/account", "GET", answer_json=usdm_case["httpResponse"])
        balances = await a.fetch_balances()
        expect_balances(spot, balances, "spot")
        # USD-M (multi-asset margin): total = marginBalance, free = availableBalance (shared by the
        # collateral assets, so it may exceed one asset's total), used = initialMargin
        usdm = {b.asset: (b.total, b.free, b.used) for b in balances if b.account == "usdm"}
        assert usdm == {row["asset"]: (Decimal(row["marginBalance"]), Decimal(row["availableBalance"]),
                                       Decimal(row["initialMargin"]))
                        for row in usdm_case["httpResponse"]["assets"] if Decimal(row["marginBalance"])}

        positions = replay(emulator, "binance", "GET", "fapi/v3/positionRisk", "fetchPositions",
                           "Fetch linear positions without symbols")
        (p,) = await a.fetch_positions(["BTC/USDT:USDT"])
        want = positions[0]
        assert (p.symbol, p.size) == (want["symbol"], Decimal("0.009"))
        assert (p.entry_price, p.unrealized_pnl, p.liquidation_price) == (
            Decimal("67445.9"), Decimal("0.51106678"), Decimal("64846.98753790"))

        orders = replay(emulator, "binance", "GET", "api/v3/openOrders", "fetchOpenOrders", "Fetch spot open orders")
        (o,) = await a.fetch_open_orders("LTC/USDT")
        assert (o.order_id, o.client_order_id, o.side, o.status, o.amount, o.price) == (
            orders[0]["id"], orders[0]["clientOrderId"], Side.BUY, OrderStatus.OPEN, Decimal("0.2"), Decimal(50))

        # a recorded order's trades: its orderId from the order look-up, then myTrades / userTrades by it
        for symbol, path, description in (("LTC/USDT", "api/v3/myTrades", "Spot private trade"),
                                          ("BTC/USDT:USDT", "fapi/v1/userTrades", "Swap private trade")):
            trades = replay(emulator, "binance", "GET", path, "fetchMyTrades", description)
            row = case("binance", "fetchMyTrades", description)["httpResponse"][0]
            cid = new_client_order_id()
            futures = ":" in symbol
            emulator.add_fault("binance", "fapi/v1/openOrders" if futures else "api/v3/openOrders", "GET",
                               answer_json=[], times=1)
            emulator.add_fault("binance", "fapi/v1/order" if futures else "api/v3/order", "GET", times=2,
                               answer_json=filled_order_answer(row, cid, futures))
            found = await a.fetch_order_by_client_id(symbol, cid)
            [fill] = await a.fetch_fills_by_client_id(symbol, cid)
            want = (VenueFee(row["commissionAsset"], Decimal(row["commission"])),)
            assert fees_of(trades[0]) == want                      # ccxt's own parse of the recording
            assert found.fees == fill.fees == want and found.filled == Decimal(row["qty"])
            assert (fill.order_id, fill.amount, fill.price) == (row["orderId"], Decimal(row["qty"]),
                                                                 Decimal(row["price"]))

        created = replay(emulator, "binance", "POST", "api/v3/order", "createOrder", "spot +selfTradePrevention +iceberg")
        order = await a.create_order(OrderRequest("SOL/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.05"),
                                                  new_client_order_id(), price=Decimal(241)))
        assert (order.order_id, order.status, order.amount, order.price) == (
            created["id"], OrderStatus.OPEN, Decimal("0.05"), Decimal(241))
    finally:
        await a.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_fees_are_taken_and_reported_as_each_venue_does(emulator, venue):
    """A spot buy pays its fee in the coin bought, a spot sell and a perp trade in USDT; each venue
    reports them where it really does (Binance: the FULL create answer's fills and the order's trades,
    commission/commissionAsset; its GET order and futures order answers carry none, so a looked-up
    order gets the fees of its trades. Bybit: cumFeeDetail on the order, execFee and feeCurrency on
    its trades. OKX: fee/feeCcy on the order and on its fills), and the adapter turns them into the
    order's and fills' fees."""
    a = adapter(emulator, venue)
    state = emulator.venues[venue]
    spot, perp = "ETH/USDT", "ETH/USDT:USDT"
    rate = {kind: state.taker_fee[kind] for kind in ("spot", "perp")}
    try:
        await a.load_markets()
        eth_before = sum((b.get("ETH", D(0)) for b in state.balances.values()), D(0))
        buy, sell, short = new_client_order_id(), new_client_order_id(), new_client_order_id()
        created = await a.create_order(OrderRequest(spot, Side.BUY, OrderType.MARKET, Decimal("0.01"), buy))
        await a.create_order(OrderRequest(spot, Side.SELL, OrderType.MARKET, Decimal("0.005"), sell))
        await a.create_order(OrderRequest(perp, Side.SELL, OrderType.MARKET, Decimal("0.1"), short))
        eth_after = sum((b.get("ETH", D(0)) for b in state.balances.values()), D(0))
        assert eth_after - eth_before == Decimal("0.01") * (1 - rate["spot"]) - Decimal("0.005")
        buy_fee = (VenueFee("ETH", Decimal("0.01") * rate["spot"]),)
        sold = state.find_order(client_id=sell)
        sell_fee = (VenueFee("USDT", Decimal("0.005") * sold.avg_price * rate["spot"]),)
        shorted = state.find_order(client_id=short)
        perp_fee = (VenueFee("USDT", shorted.qty * shorted.instrument.contract_size * shorted.avg_price * rate["perp"]),)
        if venue == "binance":
            assert created.fees == buy_fee                                       # the FULL answer's fills
        for symbol, cid, want in ((spot, buy, buy_fee), (spot, sell, sell_fee), (perp, short, perp_fee)):
            assert (await a.fetch_order_by_client_id(symbol, cid)).fees == want, (symbol, cid)
            [fill] = await a.fetch_fills_by_client_id(symbol, cid)
            assert fill.fees == want, (symbol, cid)
        if venue == "binance":
            # the trades were read by the order's venue id (the GET order answer has no fee)
            trade_reads = [path for method, path in state.requests if path in ("api/v3/myTrades", "fapi/v1/userTrades")]
            assert trade_reads and (await a.fetch_fills_by_client_id(spot, new_client_order_id())) == []
    finally:
        await a.close()


def test_the_shape_check_itself_finds_missing_keys_and_wrong_types():
    recorded = {"code": "0", "data": [{"px": "1.5", "sz": "2", "reduceOnly": "false", "algo": [], "x": None}]}
    assert shape_problems(recorded, {"code": "0", "data": [{"px": "1.5", "sz": "2", "reduceOnly": "false",
                                                             "algo": [], "x": 5, "extra": 1}]}, "okx") == []
    problems = shape_problems(recorded, {"code": 0, "data": [{"px": 1.5, "reduceOnly": False, "algo": {}}]}, "okx")
    assert problems == [
        '$.code: recorded numeric string "0", emulator number 0',
        '$.data[0].px: recorded numeric string "1.5", emulator number 1.5',
        '$.data[0].sz: missing (recorded numeric string "2")',
        '$.data[0].reduceOnly: recorded string "false", emulator boolean false',
        '$.data[0].algo: recorded array [], emulator object {}',
        '$.data[0].x: missing (recorded null null)',
    ]
    # Binance/Bybit: the recorder wrote numbers as text, so a number matches a numeric string there
    assert shape_problems({"orderId": "123"}, {"orderId": 123}, "binance") == []
    assert shape_problems({"list": [{"a": "1"}]}, {"list": []}, "bybit") == [
        "$.list: emulator list is empty, the recording has 1 item(s)"]


@pytest.mark.parametrize("venue", VENUES)
async def test_recorded_answers_become_the_right_cash_and_funding(emulator, venue):
    """Cash from the field that excludes unrealised P&L, funding signed as the account sees it."""
    add_markets(emulator)
    if venue == "binance":
        spot = replay(emulator, venue, "GET", "api/v3/account", "fetchBalance", "Spot balance")
        linear = case(venue, "fetchBalance", "Linear swap balance")
        emulator.add_fault(venue, "fapi/v3/account", "GET", answer_json=linear["httpResponse"])
        usdt = next(r for r in linear["httpResponse"]["assets"] if r["asset"] == "USDT")
        want_cash = dec(spot["USDT"]["total"] if "USDT" in spot else 0) + Decimal(usdt["walletBalance"])
        rows = replay(emulator, venue, "GET", "fapi/v1/income", "fetchFundingHistory",
                      "fetch portfolio margin funding history")
        symbol, bases = "BTC/USDT:USDT", ("BTC",)
        want_funding = [Decimal(r["info"]["income"]) for r in rows]
    elif venue == "bybit":
        balance = case(venue, "fetchBalance", "balance after availableToWithdraw update")
        emulator.add_fault(venue, "v5/account/wallet-balance", "GET", answer_json=balance["httpResponse"])
        coin = next(c for c in balance["httpResponse"]["result"]["list"][0]["coin"] if c["coin"] == "USDT")
        assert coin["walletBalance"] != coin["equity"]          # the recording holds uPnL: equity is not cash
        want_cash = Decimal(coin["walletBalance"])
        parsed = replay(emulator, venue, "GET", "v5/execution/list", "fetchFundingHistory", "linear funding history")
        # ccxt's parse (limited to 2 rows by the recording's input) leaves execFee's sign as its amount
        assert [r["amount"] for r in parsed] == [float(r["info"]["execFee"]) for r in parsed]
        recorded = case(venue, "fetchFundingHistory", "linear funding history")["httpResponse"]["result"]["list"]
        rows = [{"id": r["execId"]} for r in recorded]
        symbol, bases = "LTC/USDT:USDT", ("LTC",)
        # execFee is what the account paid: a long at a negative rate receives (-execFee > 0)
        want_funding = [-Decimal(r["execFee"]) for r in recorded]
    else:
        balance = case(venue, "fetchBalance", "spot balance")
        emulator.add_fault(venue, "api/v5/account/balance", "GET", answer_json=balance["httpResponse"])
        row = next(d for d in balance["httpResponse"]["data"][0]["details"] if d["ccy"] == "USDT")
        want_cash = Decimal(row["cashBal"])
        rows, symbol, bases, want_funding = [], "ETH/USDT:USDT", ("ETH",), []     # no recorded OKX bills
    a = adapter_for(emulator, venue, bases)
    try:
        assert (await a.fetch_cash()).amount == want_cash
        got = await a.fetch_funding_payments([symbol], 0)
        assert sorted(p.amount for p in got) == sorted(want_funding)
        assert {p.payment_id for p in got} == {r["id"] for r in rows}
    finally:
        await a.close()
