"""Bybit v5 dialect (unified trading account): spot and linear categories under /v5.

Signed requests: headers X-BAPI-API-KEY, X-BAPI-TIMESTAMP, X-BAPI-RECV-WINDOW and X-BAPI-SIGN =
HMAC-SHA256 hex of timestamp + key + recv_window + (query string | JSON body); the timestamp must be
within recv_window behind and 1 s ahead of the server clock. Error codes as Bybit: 10003 invalid key,
10004 bad signature, 10002 timestamp outside the window.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import web

from venues.emulator import transfers
from venues.emulator.core import D, Instrument, Order, RejectOrder, TestKeys, VenueState, fmt, \
    json_response

_STATUS = {"open": "New", "filled": "Filled", "canceled": "Cancelled"}
_REJECT = {"funds": (170131, "Insufficient balance."), "min_qty": (170136, "Order quantity is too low."),
           "unknown_symbol": (10001, "params error: symbol invalid"),
           "duplicate_id": (110072, "OrderLinkedID is duplicate"),
           "not_open": (110001, "Order does not exist.")}
_CATEGORY_KIND = {"spot": "spot", "linear": "perp"}


def make_instrument(category: str, base: str, price: Decimal, quote: str = "USDT") -> Instrument:
    """A market of ``category`` ("spot" | "linear"), keyed "linear:SOLUSDT". Linear markets settle in
    their quote coin (USDT, or USDC for Bybit's USDC perps, whose ids end in PERP)."""
    venue_id = f"{base}PERP" if category == "linear" and quote == "USDC" else f"{base}{quote}"
    return Instrument(venue_id, base, quote, _CATEGORY_KIND[category], price, D("0.01"), D("0.001"), D("0.001"),
                      key=f"{category}:{venue_id}")


def _fee_rate(t) -> Decimal:
    """The fee rate a trade paid (its fee over what it was taken on: the coin bought on a spot buy,
    else the notional)."""
    inst = t.order.instrument
    base = t.qty if t.fee_asset == inst.base else t.qty * inst.contract_size * t.price
    return t.fee / base if base else D(0)


def default_state(keys: TestKeys) -> VenueState:
    instruments = {}
    for category in _CATEGORY_KIND:
        for base, price in (("ETH", D("2501")), ("BTC", D("60010"))):
            inst = make_instrument(category, base, price)
            instruments[inst.key] = inst
    state = VenueState("bybit", keys, instruments, {"unified": {"USDT": D("100000"), "ETH": D("10"), "BTC": D("1")},
                                                   "funding": {}})
    # VIP 0 taker fees, as configs/venues/bybit.yaml (the book charges those rates)
    state.taker_fee = {"spot": D("0.001"), "perp": D("0.00055")}
    return state


class BybitDialect:
    def __init__(self, state: VenueState) -> None:
        self.s = state

    def rate_limited(self) -> web.Response:
        """The venue's answer to a request over its rate limit (the emulator adds Retry-After)."""
        return json_response({"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {},
                              "time": self.s.now_ms()}, 429)

    def ok(self, result: dict | list) -> web.Response:
        return json_response({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                              "time": self.s.now_ms()})

    def error(self, code: int, msg: str, status: int = 200) -> web.Response:
        return json_response({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {},
                              "time": self.s.now_ms()}, status)

    def auth(self, request: web.Request, payload: str) -> web.Response | None:
        h = request.headers
        if h.get("X-BAPI-API-KEY") != self.s.keys.api_key or self.s.faults.bad_auth:
            return self.error(10003, "API key is invalid.", 401)
        ts, window = h.get("X-BAPI-TIMESTAMP", "0"), h.get("X-BAPI-RECV-WINDOW", "5000")
        expected = hmac.new(self.s.keys.secret.encode(), (ts + self.s.keys.api_key + window + payload).encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, h.get("X-BAPI-SIGN", "")):
            return self.error(10004, "error sign! origin_string[...]", 401)
        now = self.s.now_ms()
        if not (now - int(window) <= int(ts) < now + 1000):
            return self.error(10002, f"invalid request, please check your server timestamp or recv_window param. "
                                     f"req_timestamp[{ts}],server_timestamp[{now}],recv_window[{window}]")
        return None

    def inst(self, category: str, symbol: str) -> Instrument:
        return self.s.instrument(f"{category}:{symbol}")

    def order_json(self, o: Order) -> dict:
        category = "spot" if o.instrument.kind == "spot" else "linear"
        inst = o.instrument
        leaves = o.qty - o.filled if o.status == "open" else D(0)
        fee_coin = o.fee_asset or (inst.base if inst.kind == "spot" and o.side == "buy" else inst.quote)
        return {"orderId": o.order_id, "orderLinkId": o.client_id, "symbol": inst.venue_id,
                "category": category, "price": fmt(o.price or D(0)), "qty": fmt(o.qty),
                "side": o.side.capitalize(), "orderStatus": _STATUS[o.status], "avgPrice": fmt(o.avg_price),
                "cumExecQty": fmt(o.filled), "cumExecValue": fmt(o.filled * o.avg_price), "cumExecFee": fmt(o.fee),
                "cumFeeDetail": {fee_coin: fmt(o.fee)} if o.filled else {},
                "leavesQty": fmt(leaves), "leavesValue": fmt(leaves * (o.price or inst.price)), "timeInForce": "GTC",
                "orderType": o.type.capitalize(), "reduceOnly": o.reduce_only, "closeOnTrigger": False,
                "createdTime": str(o.created_ms), "updatedTime": str(o.updated_ms), "positionIdx": 0,
                "triggerPrice": "", "triggerBy": "", "triggerDirection": 0, "stopLoss": "", "takeProfit": "",
                "slLimitPrice": "0", "tpLimitPrice": "0", "slTriggerBy": "", "tpTriggerBy": "", "tpslMode": "",
                "stopOrderType": "", "cancelType": "UNKNOWN" if o.status != "canceled" else "CancelByUser",
                "createType": "CreateByUser", "rejectReason": "EC_NoError", "lastPriceOnCreated": fmt(inst.price),
                "smpType": "None", "smpGroup": 0, "smpOrderId": "", "blockTradeId": "", "isLeverage": "",
                "orderIv": "", "placeType": "", "marketUnit": "", "slippageTolerance": "0",
                "slippageToleranceType": "UNKNOWN", "extraFees": ""}

    def execution_json(self, t) -> dict:
        """One row of v5/execution/list (fields as Bybit's recorded answer)."""
        o = t.order
        inst = o.instrument
        spot = inst.kind == "spot"
        value = t.qty * t.price
        return {"symbol": inst.venue_id, "orderType": o.type.capitalize(), "underlyingPrice": "",
                "orderLinkId": o.client_id, "orderId": o.order_id, "stopOrderType": "" if spot else "UNKNOWN",
                "execTime": str(t.ts_ms), "feeCurrency": t.fee_asset if spot else "",
                "createType": "CreateByUser", "feeRate": fmt(_fee_rate(t)), "tradeIv": "", "blockTradeId": "",
                "markPrice": "" if spot else fmt(inst.price), "execPrice": fmt(t.price), "markIv": "",
                "orderQty": fmt(o.qty), "orderPrice": fmt(o.price or t.price), "execValue": fmt(value),
                "closedSize": "" if spot else "0", "execType": "Trade", "seq": t.trade_id,
                "side": o.side.capitalize(), "indexPrice": "", "leavesQty": "0", "isMaker": o.type == "limit",
                "execFee": fmt(t.fee), "execId": t.trade_id, "marketUnit": "baseCoin" if spot else "",
                "execQty": fmt(t.qty)}

    def funding_json(self, r) -> dict:
        """A Funding row of v5/execution/list: the payment as a fee (``execFee`` > 0 paid, < 0 received),
        the rate in ``feeRate``, the position's notional in ``execValue``."""
        inst = r.instrument
        qty = abs(r.qty)
        return {"symbol": inst.venue_id, "orderType": "UNKNOWN", "underlyingPrice": "", "orderLinkId": "",
                "orderId": f"{r.ts_ms // 1000}-{inst.venue_id}-{r.record_id}-{'Buy' if r.qty > 0 else 'Sell'}",
                "stopOrderType": "UNKNOWN", "execTime": str(r.ts_ms), "feeCurrency": "", "createType": "",
                "feeRate": fmt(r.rate), "tradeIv": "", "blockTradeId": "", "markPrice": fmt(r.mark),
                "execPrice": fmt(r.mark), "markIv": "", "orderQty": "0", "orderPrice": "0",
                "execValue": fmt(qty * r.mark), "closedSize": "0", "execType": "Funding", "seq": r.record_id,
                "side": "Buy" if r.qty > 0 else "Sell", "indexPrice": "", "leavesQty": "0", "isMaker": False,
                "execFee": fmt(-r.amount), "execId": r.record_id, "marketUnit": "", "execQty": fmt(qty)}

    def market_json(self, inst: Instrument) -> dict:
        if inst.kind == "spot":
            return {"symbol": inst.venue_id, "baseCoin": inst.base, "quoteCoin": inst.quote, "status": "Trading",
                    "innovation": "0", "marginTrading": "none",
                    "lotSizeFilter": {"basePrecision": fmt(inst.lot), "quotePrecision": "0.0000001",
                                      "minOrderQty": fmt(inst.min_qty), "maxOrderQty": "10000",
                                      "minOrderAmt": "5", "maxOrderAmt": "10000000"},
                    "priceFilter": {"tickSize": fmt(inst.tick)}}
        return {"symbol": inst.venue_id, "contractType": "LinearPerpetual", "status": "Trading",
                "baseCoin": inst.base, "quoteCoin": inst.quote, "settleCoin": inst.quote,
                "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": "2",
                "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
                "priceFilter": {"minPrice": "0.01", "maxPrice": "1000000", "tickSize": fmt(inst.tick)},
                "lotSizeFilter": {"maxOrderQty": "10000", "minOrderQty": fmt(inst.min_qty), "qtyStep": fmt(inst.lot),
                                  "postOnlyMaxOrderQty": "10000", "minNotionalValue": "5"},
                "unifiedMarginTrade": True, "fundingInterval": self.s.funding_interval_h * 60, "copyTrading": "both"}

    def ticker_json(self, inst: Instrument) -> dict:
        out = {"symbol": inst.venue_id, "bid1Price": fmt(inst.bid), "bid1Size": "1", "ask1Price": fmt(inst.ask),
               "ask1Size": "1", "lastPrice": fmt(inst.price), "prevPrice24h": fmt(inst.price), "price24hPcnt": "0",
               "highPrice24h": fmt(inst.price), "lowPrice24h": fmt(inst.price), "turnover24h": "1000000",
               "volume24h": "1000"}
        if inst.kind == "perp":
            out.update({"indexPrice": fmt(inst.price - inst.tick), "markPrice": fmt(inst.price),
                        "prevPrice1h": fmt(inst.price), "fundingRate": fmt(self.s.funding_rate),
                        "nextFundingTime": str(self.s.next_funding_ms()), "openInterest": "100",
                        "openInterestValue": fmt(inst.price * 100), "predictedDeliveryPrice": "", "basisRate": "",
                        "deliveryFeeRate": "", "deliveryTime": "0", "basis": ""})
        else:
            out.update({"usdIndexPrice": fmt(inst.price)})
        return out

    async def handle(self, request: web.Request, path: str, body: bytes, auth_only: bool = False) -> web.Response | None:
        """Answer one request; ``auth_only``: only check its signature (None when it passes)."""
        raw_query = request.raw_path.partition("?")[2]
        private = not path.startswith("v5/market/")
        if private:
            denied = self.auth(request, body.decode() if request.method == "POST" else raw_query)
            if denied is not None:
                return denied
        if auth_only:
            return None
        p = json.loads(body) if request.method == "POST" and body else dict(parse_qsl(raw_query))
        try:
            return self.route(request.method, path, p)
        except RejectOrder as exc:
            code, msg = _REJECT.get(exc.reason, (10001, str(exc)))
            return self.error(code, msg)

    def route(self, method: str, path: str, p: dict) -> web.Response:
        s = self.s
        category = p.get("category", "")
        kind = _CATEGORY_KIND.get(category)
        if path in transfers.BYBIT_PATHS:
            return transfers.bybit(self, method, path, p)
        if path == "v5/market/time":
            now = s.now_ms()
            return self.ok({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})
        if path == "v5/market/instruments-info":
            if p.get("status") == "PreLaunch":
                return self.ok({"category": category, "list": [], "nextPageCursor": ""})
            items = [self.market_json(i) for i in s.instruments.values() if i.kind == kind]
            return self.ok({"category": category, "list": items, "nextPageCursor": ""})
        if path == "v5/market/tickers":
            items = [self.ticker_json(i) for i in s.instruments.values()
                     if i.kind == kind and p.get("symbol") in (None, i.venue_id)]
            return self.ok({"category": category, "list": items})
        if path == "v5/user/query-api":
            perms = {"ContractTrade": ["Order", "Position"] if s.can_trade else [],
                     "Spot": ["SpotTrade"] if s.can_trade else [],
                     "Wallet": ["AccountTransfer", "SubMemberTransfer"] + (["Withdraw"] if s.can_withdraw else []),
                     "Options": [], "Derivatives": [], "CopyTrading": [], "BlockTrade": [], "Exchange": [],
                     "NFT": []}
            return self.ok({"id": "1", "note": "emulator", "apiKey": s.keys.api_key, "readOnly": int(s.read_only),
                            "secret": "", "permissions": perms, "ips": ["*"], "type": 1, "deadlineDay": 80,
                            "expiredAt": "2030-01-01T00:00:00Z", "createdAt": "2024-01-01T00:00:00Z",
                            "unified": 0, "uta": 1, "userID": 1, "isMaster": True})
        if path == "v5/account/info":
            return self.ok({"marginMode": "REGULAR_MARGIN", "updatedTime": str(s.now_ms()), "unifiedMarginStatus": 6,
                            "dcpStatus": "OFF", "timeWindow": 10, "smpGroup": 0, "isMasterTrader": False,
                            "spotHedgingStatus": "OFF"})
        if path == "v5/account/wallet-balance":
            bal = s.balances["unified"]
            upnl = sum((s.unrealized(k) for k in s.positions), D(0))
            coins = []
            for asset, amount in sorted(bal.items()):
                equity = amount + (upnl if asset == "USDT" else 0)
                coins.append({"coin": asset, "equity": fmt(equity), "walletBalance": fmt(amount),
                              "locked": fmt(s.locked("unified", asset)), "totalPositionIM": "0", "totalOrderIM": "0",
                              "totalPositionMM": "0", "unrealisedPnl": fmt(upnl if asset == "USDT" else D(0)),
                              "cumRealisedPnl": "0", "borrowAmount": "0", "accruedInterest": "0",
                              "availableToBorrow": "", "availableToWithdraw": "", "bonus": "0",
                              "spotHedgingQty": "0", "collateralSwitch": True, "marginCollateral": True,
                              "usdValue": fmt(equity)})
            usdt = bal.get("USDT", D(0))
            return self.ok({"list": [{"accountType": "UNIFIED", "totalEquity": fmt(usdt + upnl),
                                      "totalWalletBalance": fmt(usdt), "totalMarginBalance": fmt(usdt + upnl),
                                      "totalAvailableBalance": fmt(usdt + upnl), "totalPerpUPL": fmt(upnl),
                                      "totalInitialMargin": "0", "totalMaintenanceMargin": "0",
                                      "accountIMRate": "0", "accountMMRate": "0", "accountLTV": "0", "coin": coins}]})
        if path == "v5/position/list":
            items = []
            for key, pos in s.positions.items():
                inst = s.instruments[key]
                if pos.qty == 0 or (p.get("symbol") not in (None, inst.venue_id)):
                    continue
                items.append({"symbol": inst.venue_id, "side": "Buy" if pos.qty > 0 else "Sell", "size": fmt(abs(pos.qty)),
                              "avgPrice": fmt(pos.entry), "positionValue": fmt(abs(pos.qty) * pos.entry),
                              "leverage": "10", "markPrice": fmt(inst.price), "liqPrice": "", "bustPrice": "",
                              "positionIdx": 0, "tradeMode": 0, "positionStatus": "Normal", "autoAddMargin": 0,
                              "riskId": 1, "riskLimitValue": "2000000", "isReduceOnly": False, "tpslMode": "Full",
                              "takeProfit": "", "stopLoss": "", "trailingStop": "0", "adlRankIndicator": 2,
                              "unrealisedPnl": fmt(s.unrealized(key)), "cumRealisedPnl": "0",
                              "positionBalance": fmt(abs(pos.qty) * pos.entry / 10), "seq": 1,
                              "createdTime": str(s.now_ms()), "updatedTime": str(s.now_ms()),
                              "leverageSysUpdatedTime": "", "mmrSysUpdatedTime": "",
                              "positionIM": "0", "positionMM": "0"})
            return self.ok({"category": "linear", "list": items, "nextPageCursor": ""})
        if path in ("v5/order/realtime", "v5/order/history"):
            want_open = path == "v5/order/realtime"
            orders = [o for o in s.orders.values()
                      if o.instrument.kind == kind and (o.status == "open") == want_open
                      and p.get("symbol") in (None, o.instrument.venue_id)
                      and p.get("orderLinkId") in (None, o.client_id) and p.get("orderId") in (None, o.order_id)]
            return self.ok({"category": category, "list": [self.order_json(o) for o in orders],
                            "nextPageCursor": ""})
        if path == "v5/execution/list" and p.get("execType") == "Funding":
            since = int(p.get("startTime") or 0)
            funding = [r for r in s.funding if r.instrument.kind == kind and r.ts_ms >= since
                       and p.get("symbol") in (None, r.instrument.venue_id)]
            funding.sort(key=lambda r: r.ts_ms, reverse=True)
            return self.ok({"nextPageCursor": "", "category": category,
                            "list": [self.funding_json(r) for r in funding[:int(p.get("size") or p.get("limit") or 50)]]})
        if path == "v5/execution/list":
            since = int(p.get("startTime") or 0)
            rows = [t for t in s.trades if t.order.instrument.kind == kind and t.ts_ms >= since
                    and p.get("symbol") in (None, t.order.instrument.venue_id)
                    and p.get("orderLinkId") in (None, t.order.client_id) and p.get("orderId") in (None, t.order.order_id)]
            rows.sort(key=lambda t: t.ts_ms, reverse=True)
            return self.ok({"nextPageCursor": "", "category": category,
                            "list": [self.execution_json(t) for t in rows[:int(p.get("limit") or 50)]]})
        if path == "v5/order/create" and method == "POST":
            o = s.place(f"{category}:{p['symbol']}", p["side"].lower(), p["orderType"].lower(), Decimal(str(p["qty"])),
                        Decimal(str(p["price"])) if p.get("price") else None, p.get("orderLinkId"),
                        reduce_only=bool(p.get("reduceOnly")))
            return self.ok({"orderId": o.order_id, "orderLinkId": o.client_id})
        if path == "v5/order/cancel" and method == "POST":
            order = s.find_order(p.get("orderId"), p.get("orderLinkId"))
            if order is None or order.instrument.key != f"{category}:{p.get('symbol')}":
                raise RejectOrder("not_open", "order not found")
            s.cancel(order)
            return self.ok({"orderId": order.order_id, "orderLinkId": order.client_id})
        if path == "v5/order/cancel-all" and method == "POST":
            # Linear needs a scope (symbol, baseCoin or settleCoin); spot may cancel the whole category.
            if category == "linear" and not any(p.get(k) for k in ("symbol", "baseCoin", "settleCoin")):
                return self.error(10001, "Missing some parameters that must be filled in, symbol or settleCoin "
                                         "or baseCoin")
            orders = [o for o in s.open_orders(kind=kind) if p.get("symbol") in (None, o.instrument.venue_id)
                      and p.get("baseCoin") in (None, o.instrument.base)
                      and p.get("settleCoin") in (None, o.instrument.quote)]
            for o in orders:
                s.cancel(o)
            return self.ok({"list": [{"orderId": o.order_id, "orderLinkId": o.client_id} for o in orders],
                            "success": "1"})
        return self.error(10001, f"emulator: no route {method} {path}", 404)
