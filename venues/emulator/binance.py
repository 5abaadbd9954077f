"""Binance dialect: spot (/api/v3, /sapi/v1) and USD-M futures (/fapi/v1, /fapi/v3).

Signed requests: header X-MBX-APIKEY, HMAC-SHA256 (hex) of the query string (GET/DELETE) or the form
body (POST) up to ``&signature=``, and a ``timestamp`` inside ``recvWindow`` of the server clock (no
more than 1 s ahead) — Binance's rules, with Binance's error codes (-2015 key, -1022 signature,
-1021 timestamp).
"""
from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import web

from venues.emulator import transfers
from venues.emulator.core import D, Instrument, Order, RejectOrder, TestKeys, VenueState, fmt, \
    json_response

_SIGNED = {
    "api/v3/account", "api/v3/order", "api/v3/openOrders", "sapi/v1/account/apiRestrictions",
    "fapi/v3/account", "fapi/v2/account", "fapi/v1/leverageBracket", "fapi/v3/positionRisk",
    "fapi/v1/openOrders", "fapi/v1/order", "fapi/v1/allOpenOrders", "fapi/v1/positionSide/dual",
    "fapi/v1/countdownCancelAll", "fapi/v1/income", "api/v3/myTrades", "fapi/v1/userTrades",
    *transfers.BINANCE_SIGNED,
}
_STATUS = {"open": "NEW", "filled": "FILLED", "canceled": "CANCELED"}
_REJECT = {"funds": (-2010, "Account has insufficient balance for requested action."),
           "min_qty": (-1013, "Filter failure: LOT_SIZE"),
           "unknown_symbol": (-1121, "Invalid symbol."),
           "duplicate_id": (-2010, "Duplicate order sent."),
           "not_open": (-2011, "Unknown order sent.")}


def make_instrument(kind: str, base: str, price: Decimal) -> Instrument:
    """A ``{base}USDT`` market of ``kind`` ("spot" | "perp"), keyed "spot:SOLUSDT" / "perp:SOLUSDT"."""
    return Instrument(f"{base}USDT", base, "USDT", kind, price, D("0.01"), D("0.001"), D("0.001"),
                      key=f"{kind}:{base}USDT")


def default_state(keys: TestKeys) -> VenueState:
    instruments = {}
    for kind in ("spot", "perp"):
        for base, price in (("ETH", D("2500")), ("BTC", D("60000"))):
            inst = make_instrument(kind, base, price)
            instruments[inst.key] = inst
    state = VenueState("binance", keys, instruments, {"spot": {"USDT": D("100000"), "ETH": D("10"), "BTC": D("1")},
                                                     "usdm": {"USDT": D("50000")}})
    # VIP 0 taker fees, as configs/venues/binance.yaml (the book charges those rates)
    state.taker_fee = {"spot": D("0.001"), "perp": D("0.0005")}
    return state


class BinanceDialect:
    def __init__(self, state: VenueState) -> None:
        self.s = state

    def rate_limited(self) -> web.Response:
        """The venue's answer to a request over its rate limit (the emulator adds Retry-After)."""
        return json_response({"code": -1003, "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 "
                                            "requests per minute. Please use WebSocket Streams for live updates "
                                            "to avoid polling the API."}, 429)

    # -- helpers -----------------------------------------------------------------------------------
    def inst(self, kind: str, symbol: str) -> Instrument:
        return self.s.instrument(f"{kind}:{symbol}")

    @staticmethod
    def error(code: int, msg: str, status: int = 400) -> web.Response:
        return json_response({"code": code, "msg": msg}, status)

    def auth(self, request: web.Request, raw_query: str, body: bytes) -> web.Response | None:
        if request.headers.get("X-MBX-APIKEY") != self.s.keys.api_key or self.s.faults.bad_auth:
            return self.error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        payload = body.decode() if request.method == "POST" else raw_query
        signed, sep, signature = payload.rpartition("&signature=")
        if not sep:
            return self.error(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        expected = hmac.new(self.s.keys.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return self.error(-1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(signed))
        ts, window = int(params.get("timestamp", 0)), int(params.get("recvWindow", 5000))
        now = self.s.now_ms()
        if ts > now + 1000 or now - ts > window:
            return self.error(-1021, "Timestamp for this request is outside of the recvWindow.")
        return None

    def order_json(self, o: Order, futures: bool, *, placed: bool = False) -> dict:
        """An order as Binance answers it; ``placed``: the spot POST answer (newOrderRespType FULL),
        whose ``fills`` carry each trade's commission in the asset it was taken in (the bought coin
        on a buy). The GET answer and every futures answer report no fee, as on Binance."""
        out = {
            "symbol": o.instrument.venue_id, "orderId": int(o.order_id), "clientOrderId": o.client_id,
            "price": fmt(o.price or D(0)), "origQty": fmt(o.qty), "executedQty": fmt(o.filled),
            "status": _STATUS[o.status], "timeInForce": "GTC", "type": o.type.upper(), "side": o.side.upper(),
            "updateTime": o.updated_ms, "stopPrice": "0",
        }
        if futures:
            out.update({"avgPrice": fmt(o.avg_price), "cumQty": fmt(o.filled), "cumQuote": fmt(o.filled * o.avg_price),
                        "reduceOnly": o.reduce_only, "closePosition": False, "positionSide": "BOTH",
                        "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": o.type.upper(),
                        "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0,
                        "time": o.created_ms})
        else:
            # one superset of the POST (RESULT/FULL) and GET answers: both carry these
            out.update({"orderListId": -1, "transactTime": o.created_ms, "time": o.created_ms,
                        "cummulativeQuoteQty": fmt(o.filled * o.avg_price), "isWorking": True,
                        "workingTime": o.created_ms, "selfTradePreventionMode": "NONE", "icebergQty": "0",
                        "origQuoteOrderQty": "0",
                        "fills": [self.fill_json(t) for t in self.s.trades if t.order is o] if placed else []})
        return out

    @staticmethod
    def fill_json(t) -> dict:
        """One entry of a spot FULL order answer's ``fills``."""
        return {"price": fmt(t.price), "qty": fmt(t.qty), "commission": fmt(t.fee),
                "commissionAsset": t.fee_asset, "tradeId": int(t.trade_id)}

    def market_json(self, inst: Instrument) -> dict:
        filters = [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": fmt(inst.tick)},
            {"filterType": "LOT_SIZE", "minQty": fmt(inst.min_qty), "maxQty": "100000", "stepSize": fmt(inst.lot)},
            {"filterType": "MIN_NOTIONAL" if inst.kind == "perp" else "NOTIONAL",
             "notional": "5", "minNotional": "5"},
        ]
        if inst.kind == "spot":
            return {"symbol": inst.venue_id, "status": "TRADING", "baseAsset": inst.base, "baseAssetPrecision": 8,
                    "quoteAsset": inst.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": True, "ocoAllowed": True,
                    "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "filters": filters,
                    "permissions": [], "permissionSets": [["SPOT"]]}
        return {"symbol": inst.venue_id, "pair": inst.venue_id, "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
                "baseAsset": inst.base, "quoteAsset": inst.quote, "marginAsset": inst.quote, "pricePrecision": 2,
                "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
                "filters": filters, "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"]}

    def ticker_json(self, inst: Instrument) -> dict:
        return {"symbol": inst.venue_id, "priceChange": "0", "priceChangePercent": "0",
                "weightedAvgPrice": fmt(inst.price), "prevClosePrice": fmt(inst.price), "lastPrice": fmt(inst.price),
                "lastQty": "1", "openPrice": fmt(inst.price), "highPrice": fmt(inst.price), "lowPrice": fmt(inst.price),
                "volume": "1000", "quoteVolume": fmt(inst.price * 1000), "openTime": self.s.now_ms() - 86_400_000,
                "closeTime": self.s.now_ms(), "firstId": 1, "lastId": 100, "count": 100,
                **({"bidPrice": fmt(inst.bid), "bidQty": "1", "askPrice": fmt(inst.ask), "askQty": "1"}
                   if inst.kind == "spot" else {})}

    # -- dispatch ----------------------------------------------------------------------------------
    async def handle(self, request: web.Request, path: str, body: bytes, auth_only: bool = False) -> web.Response | None:
        """Answer one request; ``auth_only``: only check its signature (None when it passes)."""
        raw_query = request.raw_path.partition("?")[2]
        if path in _SIGNED:
            denied = self.auth(request, raw_query, body)
            if denied is not None:
                return denied
        if auth_only:
            return None
        params = dict(parse_qsl(body.decode())) if request.method == "POST" else dict(parse_qsl(raw_query))
        futures = path.startswith("fapi/")
        kind = "perp" if futures else "spot"
        parts = path.split("/", 2)          # "fapi/v1/ticker/24hr" -> "ticker/24hr"
        key = (request.method, parts[2] if len(parts) == 3 else path)
        try:
            return self.route(key, params, kind, futures)
        except RejectOrder as exc:
            code, msg = _REJECT.get(exc.reason, (-1000, str(exc)))
            if exc.reason == "funds" and futures:
                code, msg = -2019, "Margin is insufficient."
            return self.error(code, msg)

    def route(self, key: tuple[str, str], p: dict, kind: str, futures: bool) -> web.Response:
        s = self.s
        method, path = key
        if method == "GET" and path == "time":
            return json_response({"serverTime": s.now_ms()})
        if method == "GET" and path == "exchangeInfo":
            markets = [self.market_json(i) for i in s.instruments.values() if i.kind == kind]
            return json_response({"timezone": "UTC", "serverTime": s.now_ms(), "rateLimits": [],
                                  "exchangeFilters": [], "assets": [], "symbols": markets})
        if method == "GET" and path == "ticker/24hr":
            if "symbol" in p:
                return json_response(self.ticker_json(self.inst(kind, p["symbol"])))
            return json_response([self.ticker_json(i) for i in s.instruments.values() if i.kind == kind])
        if method == "GET" and path == "premiumIndex":
            def one(i: Instrument) -> dict:
                return {"symbol": i.venue_id, "markPrice": fmt(i.price), "indexPrice": fmt(i.price - i.tick),
                        "estimatedSettlePrice": fmt(i.price), "lastFundingRate": fmt(s.funding_rate),
                        "interestRate": "0.0001", "nextFundingTime": s.next_funding_ms(), "time": s.now_ms()}
            if "symbol" in p:
                return json_response(one(self.inst("perp", p["symbol"])))
            return json_response([one(i) for i in s.instruments.values() if i.kind == "perp"])
        if method == "GET" and path == "fundingInfo":
            # Binance lists only symbols whose funding parameters were adjusted; the rest are 8-hourly.
            adjusted = [] if s.funding_interval_h == 8 else [
                {"symbol": i.venue_id, "adjustedFundingRateCap": "0.02", "adjustedFundingRateFloor": "-0.02",
                 "fundingIntervalHours": s.funding_interval_h, "disclaimer": False}
                for i in s.instruments.values() if i.kind == "perp"]
            return json_response(adjusted)
        if method == "GET" and path == "account/apiRestrictions":
            return json_response({"ipRestrict": False, "createTime": 1700000000000, "enableReading": True,
                                  "enableSpotAndMarginTrading": s.can_trade and not s.read_only,
                                  "enableFutures": s.can_trade and not s.read_only,
                                  "enableWithdrawals": s.can_withdraw, "enableInternalTransfer": False,
                                  "enableMargin": False, "permitsUniversalTransfer": False,
                                  "enableVanillaOptions": False, "enablePortfolioMarginTrading": False})
        if method == "GET" and path == "account":
            if futures:
                return self.futures_account()
            bal = s.balances["spot"]
            return json_response({
                "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                    "seller": "0.00000000"},
                "canTrade": s.can_trade, "canWithdraw": s.can_withdraw, "canDeposit": True, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False, "updateTime": s.now_ms(),
                "accountType": "SPOT",
                "balances": [{"asset": a, "free": fmt(v - s.locked("spot", a)), "locked": fmt(s.locked("spot", a))}
                             for a, v in sorted(bal.items())],
                "permissions": ["SPOT"], "uid": 354937868})
        if method == "GET" and path == "leverageBracket":
            return json_response([{"symbol": i.venue_id, "notionalCoef": 1.0, "brackets": [
                {"bracket": 1, "initialLeverage": 50, "notionalCap": 1000000, "notionalFloor": 0,
                 "maintMarginRatio": 0.005, "cum": 0}]} for i in s.instruments.values() if i.kind == "perp"])
        if method == "GET" and path == "positionRisk":
            out = []
            for inst_key, pos in s.positions.items():
                if pos.qty == 0:
                    continue
                inst = s.instruments[inst_key]
                out.append({"symbol": inst.venue_id, "positionSide": "BOTH", "positionAmt": fmt(pos.qty),
                            "entryPrice": fmt(pos.entry), "breakEvenPrice": fmt(pos.entry), "markPrice": fmt(inst.price),
                            "unRealizedProfit": fmt(s.unrealized(inst_key)), "liquidationPrice": "0", "isolatedMargin": "0",
                            "notional": fmt(pos.qty * inst.price), "marginAsset": "USDT", "isolatedWallet": "0",
                            "initialMargin": fmt(abs(pos.qty * inst.price) / 10), "maintMargin": "0",
                            "positionInitialMargin": "0", "openOrderInitialMargin": "0", "adl": 1,
                            "bidNotional": "0", "askNotional": "0", "updateTime": s.now_ms()})
            return json_response(out)
        if futures and method == "GET" and path == "income":
            return json_response(self.income(p))
        if path in transfers.BINANCE_PATHS:
            return transfers.binance(self, method, path, p)
        if method == "GET" and path == "positionSide/dual":
            return json_response({"dualSidePosition": s.hedge_mode})
        if path == "openOrders" and method == "GET":
            orders = s.open_orders(f"{kind}:{p['symbol']}" if "symbol" in p else None, kind)
            return json_response([self.order_json(o, futures) for o in orders])
        if (path == "openOrders" and method == "DELETE") or (path == "allOpenOrders" and method == "DELETE"):
            # Reading open orders works without a symbol (weight 80 spot / 40 USD-M); cancelling them does not.
            if "symbol" not in p:
                return self.error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
            orders = s.open_orders(f"{kind}:{self.inst(kind, p['symbol']).venue_id}", kind)
            for o in orders:
                s.cancel(o)
            if futures:
                return json_response({"code": 200, "msg": "The operation of cancel all open order is done."})
            if not orders:
                return self.error(-2011, "Unknown order sent.")
            return json_response([self.order_json(o, futures) for o in orders])
        if path == "order":
            return self.order_endpoint(method, p, kind, futures)
        if method == "GET" and path == ("userTrades" if futures else "myTrades"):
            return self.my_trades(p, kind, futures)
        if futures and method == "POST" and path == "countdownCancelAll":
            # Auto-cancel all open orders of one symbol when no heartbeat renews the countdown (ms).
            inst = self.inst("perp", p["symbol"])
            countdown = int(p["countdownTime"])
            if countdown < 0:
                return self.error(-1102, "Mandatory parameter 'countdownTime' was not sent, was empty/null, or malformed.")
            s.arm_dead_man(inst.key, countdown)
            return json_response({"symbol": inst.venue_id, "countdownTime": str(countdown)})
        return self.error(-1000, f"emulator: no route {method} {path}", 404)

    def my_trades(self, p: dict, kind: str, futures: bool) -> web.Response:
        """GET api/v3/myTrades (spot) / fapi/v1/userTrades (USD-M): the account's trades of one symbol
        (mandatory), optionally of one ``orderId``, within startTime..endTime, from ``fromId``, oldest
        first, at most ``limit`` (default 500, at most 1000). Each carries its commission in the asset
        it was taken in (the coin bought on a spot buy), as Binance reports it; the GET order answer
        carries none, so this is where a looked-up order's fee comes from."""
        if "symbol" not in p:
            return self.error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        inst = self.inst(kind, p["symbol"])
        since, until = int(p.get("startTime") or 0), int(p.get("endTime") or 2**62)
        limit = min(int(p.get("limit") or 500), 1000)
        order_id, from_id = p.get("orderId"), int(p.get("fromId") or 0)
        rows = [t for t in self.s.trades if t.order.instrument is inst and since <= t.ts_ms <= until
                and int(t.trade_id) >= from_id and order_id in (None, t.order.order_id)]
        return json_response([self.trade_json(t, futures) for t in rows[:limit]])

    @staticmethod
    def trade_json(t, futures: bool) -> dict:
        """One trade as Binance lists it (the emulator's resting limit orders fill as makers, its
        market orders as takers)."""
        o = t.order
        out = {"symbol": o.instrument.venue_id, "id": int(t.trade_id), "orderId": int(o.order_id),
               "price": fmt(t.price), "qty": fmt(t.qty), "quoteQty": fmt(t.qty * t.price),
               "commission": fmt(t.fee), "commissionAsset": t.fee_asset, "time": t.ts_ms}
        if futures:
            out.update({"side": o.side.upper(), "realizedPnl": fmt(t.realized), "marginAsset": o.instrument.quote,
                        "positionSide": "BOTH", "maker": o.type == "limit", "buyer": o.side == "buy"})
        else:
            out.update({"orderListId": -1, "isBuyer": o.side == "buy", "isMaker": o.type == "limit",
                        "isBestMatch": True})
        return out

    def income(self, p: dict) -> list[dict]:
        """fapi/v1/income: the account's funding fees (incomeType FUNDING_FEE; the emulator books no
        other income type), oldest first, within startTime..endTime, at most ``limit`` (default 100)."""
        if p.get("incomeType", "FUNDING_FEE") != "FUNDING_FEE":
            return []
        since, until = int(p.get("startTime") or 0), int(p.get("endTime") or 2**62)
        rows = [r for r in self.s.funding if r.instrument.kind == "perp" and since <= r.ts_ms <= until
                and p.get("symbol") in (None, r.instrument.venue_id)]
        return [{"symbol": r.instrument.venue_id, "incomeType": "FUNDING_FEE", "income": fmt(r.amount),
                 "asset": r.instrument.quote, "info": "FUNDING_FEE", "time": r.ts_ms, "tranId": int(r.record_id),
                 "tradeId": ""} for r in rows[:int(p.get("limit") or 100)]]

    def futures_account(self) -> web.Response:
        s = self.s
        wallet = s.balance("usdm", "USDT")
        upnl = sum((s.unrealized(v) for v in s.positions), D(0))
        margin = sum((abs(p.qty * s.instruments[v].price) / 10 for v, p in s.positions.items()), D(0))
        asset = {"asset": "USDT", "walletBalance": fmt(wallet), "unrealizedProfit": fmt(upnl), "marginAvailable": True,
                 "marginBalance": fmt(wallet + upnl), "maintMargin": "0", "initialMargin": fmt(margin),
                 "positionInitialMargin": fmt(margin), "openOrderInitialMargin": "0",
                 "crossWalletBalance": fmt(wallet), "crossUnPnl": fmt(upnl),
                 "availableBalance": fmt(wallet + upnl - margin), "maxWithdrawAmount": fmt(wallet - margin),
                 "updateTime": s.now_ms()}
        positions = [{"symbol": s.instruments[k].venue_id, "positionSide": "BOTH", "positionAmt": fmt(p.qty),
                      "unrealizedProfit": fmt(s.unrealized(k)), "isolatedMargin": "0",
                      "notional": fmt(p.qty * s.instruments[k].price), "isolatedWallet": "0",
                      "initialMargin": fmt(abs(p.qty * s.instruments[k].price) / 10), "maintMargin": "0",
                      "updateTime": s.now_ms()}
                     for k, p in s.positions.items() if p.qty != 0]
        return json_response({"feeTier": 0, "canTrade": s.can_trade, "canDeposit": True, "canWithdraw": s.can_withdraw,
                              "tradeGroupId": -1, "updateTime": 0, "multiAssetsMargin": False,
                              "totalInitialMargin": fmt(margin), "totalMaintMargin": "0",
                              "totalWalletBalance": fmt(wallet), "totalUnrealizedProfit": fmt(upnl),
                              "totalMarginBalance": fmt(wallet + upnl), "totalPositionInitialMargin": fmt(margin),
                              "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": fmt(wallet),
                              "totalCrossUnPnl": fmt(upnl), "availableBalance": asset["availableBalance"],
                              "maxWithdrawAmount": asset["maxWithdrawAmount"], "assets": [asset],
                              "positions": positions})

    def order_endpoint(self, method: str, p: dict, kind: str, futures: bool) -> web.Response:
        s = self.s
        if method == "POST":
            o = s.place(f"{kind}:{p['symbol']}", p["side"].lower(), p["type"].lower(), Decimal(p["quantity"]),
                        Decimal(p["price"]) if "price" in p else None, p.get("newClientOrderId"),
                        reduce_only=p.get("reduceOnly") == "true")
            return json_response(self.order_json(o, futures, placed=True))
        order = s.find_order(p.get("orderId"), p.get("origClientOrderId"))
        if order is None or order.instrument.key != f"{kind}:{p.get('symbol')}":
            return self.error(-2013 if method == "GET" else -2011,
                              "Order does not exist." if method == "GET" else "Unknown order sent.")
        if method == "DELETE":
            s.cancel(order)
        return json_response(self.order_json(order, futures))
