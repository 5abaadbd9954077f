"""OKX v5 dialect: spot and USDT swaps under /api/v5 (swaps trade in contracts: 0.1 ETH, 0.01 BTC).

Signed requests: headers OK-ACCESS-KEY, OK-ACCESS-PASSPHRASE, OK-ACCESS-TIMESTAMP (ISO 8601, ms) and
OK-ACCESS-SIGN = base64 HMAC-SHA256 of timestamp + METHOD + request path with query + body; the
timestamp must be within 30 s of the server clock. Error codes as OKX: 50111 key, 50105 passphrase,
50113 signature, 50102 timestamp expired.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import web

from venues.emulator import transfers
from venues.emulator.core import D, Instrument, Order, RejectOrder, TestKeys, VenueState, fmt, \
    json_response

_STATE = {"open": "live", "filled": "filled", "canceled": "canceled"}
_REJECT = {"funds": ("51008", "Order failed. Insufficient balance"),
           "min_qty": ("51020", "Order amount should be greater than the min available amount"),
           "unknown_symbol": ("51001", "Instrument ID does not exist"),
           "duplicate_id": ("51016", "Duplicated clOrdId"),
           "not_open": ("51400", "Order cancellation failed as the order has been filled, canceled or does not exist")}


def make_instruments(base: str, price: Decimal, ct_val: Decimal) -> tuple[Instrument, Instrument]:
    """The ``{base}-USDT`` spot market and its USDT swap (``ct_val`` base units per contract)."""
    spot = Instrument(f"{base}-USDT", base, "USDT", "spot", price, D("0.01"), D("0.000001"), D("0.0001"))
    swap = Instrument(f"{base}-USDT-SWAP", base, "USDT", "perp", price, D("0.01"), D("0.01"), D("0.01"),
                      contract_size=ct_val)
    return spot, swap


def default_state(keys: TestKeys) -> VenueState:
    instruments = {}
    for base, price, ct_val in (("ETH", D("2499"), D("0.1")), ("BTC", D("59990"), D("0.01"))):
        for inst in make_instruments(base, price, ct_val):
            instruments[inst.key] = inst
    state = VenueState("okx", keys, instruments, {"trading": {"USDT": D("100000"), "ETH": D("10"), "BTC": D("1")},
                                                 "funding": {}})
    # VIP 0 taker fees, as configs/venues/okx.yaml (the book charges those rates)
    state.taker_fee = {"spot": D("0.001"), "perp": D("0.0005")}
    return state


def _iso_ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


class OkxDialect:
    def __init__(self, state: VenueState) -> None:
        self.s = state

    def rate_limited(self) -> web.Response:
        """The venue's answer to a request over its rate limit (the emulator adds Retry-After)."""
        return json_response({"msg": "Too Many Requests", "code": "50011", "data": []}, 429)

    def ok(self, data: list) -> web.Response:
        """OKX's envelope; trade endpoints also stamp when the gateway received and answered (us)."""
        now_us = str(self.s.now_ms() * 1000)
        return json_response({"code": "0", "msg": "", "data": data, "inTime": now_us, "outTime": now_us})

    @staticmethod
    def error(code: str, msg: str, status: int = 200, data: list | None = None) -> web.Response:
        return json_response({"code": code, "msg": msg, "data": data or []}, status)

    def auth(self, request: web.Request, signed_path: str, body: bytes) -> web.Response | None:
        h = request.headers
        if h.get("OK-ACCESS-KEY") != self.s.keys.api_key or self.s.faults.bad_auth:
            return self.error("50111", "Invalid OK-ACCESS-KEY", 401)
        if h.get("OK-ACCESS-PASSPHRASE") != self.s.keys.passphrase:
            return self.error("50105", "Your OK-ACCESS-PASSPHRASE is incorrect.", 401)
        ts = h.get("OK-ACCESS-TIMESTAMP", "")
        message = ts + request.method + signed_path + body.decode()
        expected = base64.b64encode(hmac.new(self.s.keys.secret.encode(), message.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected.decode(), h.get("OK-ACCESS-SIGN", "")):
            return self.error("50113", "Invalid Sign", 401)
        try:
            skew = abs(self.s.now_ms() - _iso_ms(ts))
        except ValueError:
            return self.error("50112", "Invalid OK-ACCESS-TIMESTAMP", 401)
        if skew > 30_000:
            return self.error("50102", "Timestamp request expired", 401)
        return None

    def market_json(self, i: Instrument) -> dict:
        common = {"instId": i.venue_id, "tickSz": fmt(i.tick), "lotSz": fmt(i.lot), "minSz": fmt(i.min_qty),
                  "state": "live", "listTime": "1606468572000", "expTime": "", "maxMktSz": "1000000"}
        if i.kind == "spot":
            return {**common, "instType": "SPOT", "baseCcy": i.base, "quoteCcy": i.quote, "settleCcy": "",
                    "ctVal": "", "ctMult": "", "ctValCcy": "", "ctType": "", "lever": "10", "uly": "",
                    "instFamily": ""}
        return {**common, "instType": "SWAP", "baseCcy": "", "quoteCcy": "", "settleCcy": i.quote,
                "ctVal": fmt(i.contract_size), "ctMult": "1", "ctValCcy": i.base, "ctType": "linear",
                "lever": "100", "uly": f"{i.base}-{i.quote}", "instFamily": f"{i.base}-{i.quote}"}

    def order_json(self, o: Order) -> dict:
        inst = o.instrument
        spot = inst.kind == "spot"
        filled = bool(o.filled)
        return {"instId": inst.venue_id, "instType": "SPOT" if spot else "SWAP", "ordId": o.order_id,
                "clOrdId": o.client_id, "tag": "", "px": fmt(o.price) if o.price else "", "pxUsd": "", "pxVol": "",
                "pxType": "", "sz": fmt(o.qty), "side": o.side, "ordType": o.type, "state": _STATE[o.status],
                "accFillSz": fmt(o.filled), "fillSz": fmt(o.filled), "fillPx": fmt(o.avg_price) if filled else "",
                "fillTime": str(o.updated_ms) if filled else "", "tradeId": "1" if filled else "",
                "avgPx": fmt(o.avg_price) if filled else "", "cTime": str(o.created_ms), "uTime": str(o.updated_ms),
                "fee": fmt(-o.fee) if o.fee else "0",
                "feeCcy": o.fee_asset or (inst.base if spot and o.side == "buy" else inst.quote),
                "rebate": "0",
                "rebateCcy": inst.quote, "pnl": "0", "reduceOnly": str(o.reduce_only).lower(),
                "tdMode": "cash" if spot else "cross", "posSide": "net", "lever": "" if spot else "10", "ccy": "",
                "tgtCcy": "base_ccy" if spot and o.type == "market" else "", "category": "normal",
                "source": "", "stpId": "", "stpMode": "cancel_maker", "cancelSource": "", "cancelSourceReason": "",
                "quickMgnType": "", "algoClOrdId": "", "algoId": "", "attachAlgoClOrdId": "", "attachAlgoOrds": [],
                "linkedAlgoOrd": {"algoId": ""}, "isTpLimit": "false", "slOrdPx": "", "slTriggerPx": "",
                "slTriggerPxType": "", "tpOrdPx": "", "tpTriggerPx": "", "tpTriggerPxType": ""}

    def fill_json(self, t) -> dict:
        """One row of trade/fills(-history) (fields as OKX's recorded answer; sizes in contracts)."""
        o = t.order
        inst = o.instrument
        spot = inst.kind == "spot"
        return {"side": o.side, "fillSz": fmt(t.qty), "fillPx": fmt(t.price), "fillPxVol": "", "fillFwdPx": "",
                "fee": fmt(-t.fee), "fillPnl": "0", "ordId": o.order_id, "feeRate": "0", "instType": "SPOT" if spot else "SWAP",
                "fillPxUsd": "", "instId": inst.venue_id, "clOrdId": o.client_id, "posSide": "net",
                "billId": t.trade_id, "fillMarkVol": "", "tag": "", "fillTime": str(t.ts_ms),
                "execType": "M" if o.type == "limit" else "T", "fillIdxPx": "", "tradeId": t.trade_id,
                "fillMarkPx": "" if spot else fmt(inst.price), "feeCcy": t.fee_asset or inst.quote, "ts": str(t.ts_ms)}

    async def handle(self, request: web.Request, path: str, body: bytes, auth_only: bool = False) -> web.Response | None:
        """Answer one request; ``auth_only``: only check its signature (None when it passes)."""
        raw_query = request.raw_path.partition("?")[2]
        signed_path = "/" + path + ("?" + raw_query if raw_query else "")
        private = not (path.startswith("api/v5/public/") or path.startswith("api/v5/market/"))
        if private:
            denied = self.auth(request, signed_path, body)
            if denied is not None:
                return denied
        if auth_only:
            return None
        p = json.loads(body) if request.method == "POST" and body else dict(parse_qsl(raw_query))
        try:
            return self.route(request.method, path.removeprefix("api/v5/"), p)
        except RejectOrder as exc:
            code, msg = _REJECT.get(exc.reason, ("51000", str(exc)))
            return self.error("1", "Operation failed.", data=[{"sCode": code, "sMsg": msg, "ordId": "", "clOrdId": ""}])

    def bills(self, p) -> list[dict]:
        """account/bills(-archive): the funding fees (type 8; subType 173 expense, 174 income) of the
        trading account, newest first, at most ``limit`` (default 100)."""
        if p.get("type", "8") != "8":
            return []
        rows = [r for r in self.s.funding if r.instrument.kind == "perp"
                and p.get("instType", "SWAP") == "SWAP" and p.get("ccy") in (None, r.instrument.quote)
                and p.get("instId") in (None, r.instrument.venue_id)]
        rows.sort(key=lambda r: r.ts_ms, reverse=True)
        return [{"bal": fmt(r.balance_after), "balChg": fmt(r.amount), "billId": r.record_id, "ccy": r.instrument.quote,
                 "clOrdId": "", "execType": "", "fee": "0", "fillFwdPx": "", "fillIdxPx": "", "fillMarkPx": "",
                 "fillMarkVol": "", "fillPxUsd": "", "fillPxVol": "", "fillTime": "", "from": "",
                 "instId": r.instrument.venue_id, "instType": "SWAP", "interest": "0", "mgnMode": "cross",
                 "notes": "", "ordId": "", "pnl": fmt(r.amount), "posBal": "0", "posBalChg": "0",
                 "px": fmt(r.mark), "subType": "174" if r.amount >= 0 else "173", "sz": fmt(abs(r.qty)),
                 "tag": "", "to": "", "tradeId": "", "ts": str(r.ts_ms), "type": "8"}
                for r in rows[:int(p.get("limit") or 100)]]

    def route(self, method: str, path: str, p) -> web.Response:
        s = self.s
        if path in transfers.OKX_PATHS:
            return transfers.okx(self, method, path, p)
        if path == "public/time":
            return self.ok([{"ts": str(s.now_ms())}])
        if path == "public/instruments":
            kind = {"SPOT": "spot", "SWAP": "perp"}.get(p.get("instType", ""))
            return self.ok([self.market_json(i) for i in s.instruments.values() if i.kind == kind])
        if path == "market/ticker":
            i = s.instrument(p["instId"])
            return self.ok([{"instType": "SPOT" if i.kind == "spot" else "SWAP", "instId": i.venue_id,
                             "last": fmt(i.price), "lastSz": "1", "askPx": fmt(i.ask), "askSz": "1",
                             "bidPx": fmt(i.bid), "bidSz": "1", "open24h": fmt(i.price), "high24h": fmt(i.price),
                             "low24h": fmt(i.price), "volCcy24h": "1000", "vol24h": "1000", "ts": str(s.now_ms()),
                             "sodUtc0": fmt(i.price), "sodUtc8": fmt(i.price)}])
        if path == "public/funding-rate":
            i = s.instrument(p["instId"])
            nxt = s.next_funding_ms()
            return self.ok([{"instType": "SWAP", "instId": i.venue_id, "fundingRate": fmt(s.funding_rate),
                             "fundingTime": str(nxt), "nextFundingRate": "",
                             "nextFundingTime": str(nxt + s.funding_interval_h * 3_600_000),
                             "method": "current_period", "ts": str(s.now_ms())}])
        if path == "public/mark-price":
            items = [i for i in s.instruments.values() if i.kind == "perp" and p.get("instId") in (None, i.venue_id)]
            return self.ok([{"instType": "SWAP", "instId": i.venue_id, "markPx": fmt(i.price), "ts": str(s.now_ms())}
                            for i in items])
        if path == "account/config":
            perm = ",".join(["read_only"] + (["trade"] if s.can_trade and not s.read_only else [])
                            + (["withdraw"] if s.can_withdraw else []))
            return self.ok([{"uid": "1", "mainUid": "1", "acctLv": str(s.account_level),
                             "posMode": "long_short_mode" if s.hedge_mode else "net_mode", "autoLoan": False,
                             "greeksType": "PA", "level": "Lv1", "levelTmp": "", "ctIsoMode": "automatic",
                             "mgnIsoMode": "automatic", "perm": perm, "label": "emulator", "ip": "", "roleType": "0",
                             "kycLv": "2", "liquidationGear": "-1", "opAuth": "0", "spotOffsetType": "",
                             "spotRoleType": "0", "spotTraderInsts": [], "traderInsts": []}])
        if path == "account/balance":
            bal = s.balances["trading"]
            upnl = sum((s.unrealized(k) for k in s.positions), D(0))
            details = []
            for asset, amount in sorted(bal.items()):
                eq = amount + (upnl if asset == "USDT" else 0)
                frozen = s.locked("trading", asset)
                usd = eq if asset == "USDT" else D(0)
                details.append({
                    "ccy": asset, "eq": fmt(eq), "cashBal": fmt(amount), "availBal": fmt(amount - frozen),
                    "availEq": fmt(eq - frozen), "frozenBal": fmt(frozen), "ordFrozen": fmt(frozen),
                    "upl": fmt(upnl if asset == "USDT" else D(0)), "uplLiab": "0", "eqUsd": fmt(usd),
                    "disEq": fmt(usd), "fixedBal": "0", "borrowFroz": "0", "crossLiab": "0", "liab": "0",
                    "interest": "0", "isoEq": "0", "isoLiab": "0", "isoUpl": "0", "maxLoan": "0", "twap": "0",
                    "spotIsoBal": "0", "stgyEq": "0", "smtSyncEq": "0", "spotCopyTradingEq": "0",
                    "colBorrAutoConversion": "0", "collateralEnabled": asset == "USDT", "collateralRestrict": False,
                    "accAvgPx": "", "openAvgPx": "", "imr": "", "mmr": "", "mgnRatio": "", "notionalLever": "",
                    "clSpotInUseAmt": "", "maxSpotInUse": "", "spotInUseAmt": "", "spotBal": "", "spotUpl": "",
                    "spotUplRatio": "", "totalPnl": "", "totalPnlRatio": "", "rewardBal": "", "uTime": str(s.now_ms())})
            total = sum((D(str(d["eqUsd"])) for d in details if d["eqUsd"]), D(0))
            return self.ok([{"totalEq": fmt(total), "adjEq": fmt(total), "availEq": fmt(total), "isoEq": "0",
                             "borrowFroz": "0", "imr": "0", "mmr": "0", "mgnRatio": "", "ordFroz": "0", "upl": fmt(upnl),
                             "notionalUsd": "0", "notionalUsdForBorrow": "0", "notionalUsdForFutures": "0",
                             "notionalUsdForOption": "0", "notionalUsdForSwap": "0", "uTime": str(s.now_ms()),
                             "details": details}])
        if path in ("account/bills", "account/bills-archive"):
            return self.ok(self.bills(p))
        if path == "account/positions":
            wanted = set(p["instId"].split(",")) if p.get("instId") else None
            out = []
            for key, pos in s.positions.items():
                i = s.instruments[key]
                if pos.qty == 0 or (wanted is not None and i.venue_id not in wanted):
                    continue
                notional = abs(pos.qty) * i.contract_size * i.price
                out.append({"instId": i.venue_id, "instType": "SWAP", "mgnMode": "cross", "posSide": "net",
                            "pos": fmt(pos.qty), "availPos": "", "posCcy": "", "avgPx": fmt(pos.entry), "bePx": fmt(pos.entry),
                            "markPx": fmt(i.price), "idxPx": fmt(i.price), "last": fmt(i.price), "usdPx": "",
                            "upl": fmt(s.unrealized(key)), "uplRatio": "0", "uplLastPx": fmt(s.unrealized(key)),
                            "uplRatioLastPx": "0", "lever": "10", "liqPx": "", "liqPenalty": "0",
                            "notionalUsd": fmt(notional), "margin": "", "imr": fmt(notional / 10), "mmr": "0",
                            "mgnRatio": "", "ccy": "USDT", "posId": str(1000 + list(s.instruments).index(key)), "tradeId": "1",
                            "adl": "1", "fee": "0", "fundingFee": "0", "pnl": "0", "realizedPnl": "0",
                            "interest": "", "liab": "", "liabCcy": "", "optVal": "", "pendingCloseOrdLiabVal": "",
                            "baseBal": "", "baseBorrowed": "", "baseInterest": "", "quoteBal": "", "quoteBorrowed": "",
                            "quoteInterest": "", "spotInUseAmt": "", "spotInUseCcy": "", "clSpotInUseAmt": "",
                            "maxSpotInUseAmt": "", "bizRefId": "", "bizRefType": "", "closeOrderAlgo": [],
                            "deltaBS": "", "deltaPA": "", "gammaBS": "", "gammaPA": "", "thetaBS": "", "thetaPA": "",
                            "vegaBS": "", "vegaPA": "", "cTime": str(s.now_ms()), "uTime": str(s.now_ms())})
            return self.ok(out)
        if path == "trade/orders-pending":
            # Every instrument type unless instType/instId narrow it; newest first, `limit` (max 100) per page.
            inst_kind = {"SPOT": "spot", "SWAP": "perp"}.get(p.get("instType", ""))
            orders = [o for o in s.open_orders() if p.get("instId") in (None, o.instrument.venue_id)
                      and (not p.get("instType") or o.instrument.kind == inst_kind)]
            orders.sort(key=lambda o: int(o.order_id), reverse=True)
            return self.ok([self.order_json(o) for o in orders[:min(int(p.get("limit") or 100), 100)]])
        if path in ("trade/fills", "trade/fills-history"):
            inst_kind = {"SPOT": "spot", "SWAP": "perp"}.get(p.get("instType", ""))
            since = int(p.get("begin") or 0)
            rows = [t for t in s.trades if t.ts_ms >= since and p.get("instId") in (None, t.order.instrument.venue_id)
                    and (not p.get("instType") or t.order.instrument.kind == inst_kind)
                    and p.get("ordId") in (None, t.order.order_id)]
            rows.sort(key=lambda t: t.ts_ms, reverse=True)
            return self.ok([self.fill_json(t) for t in rows[:min(int(p.get("limit") or 100), 100)]])
        if path == "trade/order" and method == "GET":
            order = s.find_order(p.get("ordId"), p.get("clOrdId"))
            if order is None or order.instrument.venue_id != p.get("instId"):
                return self.error("51603", "Order does not exist")
            return self.ok([self.order_json(order)])
        if path == "trade/order" and method == "POST":
            return self._place_batch([p])
        if path == "trade/batch-orders" and method == "POST":     # ccxt's default for createOrder
            return self._place_batch(p)
        if path == "trade/cancel-order" and method == "POST":
            return self._cancel_batch([p])
        if path == "trade/cancel-batch-orders" and method == "POST":
            return self._cancel_batch(p)
        if path == "trade/cancel-all-after" and method == "POST":
            # Dead-man switch for every order of the account: timeOut 0 (off) or 10..120 seconds.
            seconds = int(str(p.get("timeOut", "")) or -1)
            if seconds != 0 and not 10 <= seconds <= 120:
                return self.error("51000", "Parameter timeOut error")
            deadline = s.arm_dead_man("*", seconds * 1000)
            return self.ok([{"triggerTime": str(deadline or 0), "tag": "", "ts": str(s.now_ms())}])
        return self.error("50000", f"emulator: no route {method} {path}", 404)

    def _place_batch(self, items: list[dict]) -> web.Response:
        out = []
        for p in items:
            try:
                o = self.s.place(p["instId"], p["side"], p["ordType"], Decimal(str(p["sz"])),
                                 Decimal(str(p["px"])) if p.get("px") else None, p.get("clOrdId"),
                                 reduce_only=str(p.get("reduceOnly")).lower() == "true")
            except RejectOrder as exc:
                code, msg = _REJECT.get(exc.reason, ("51000", str(exc)))
                out.append({"clOrdId": p.get("clOrdId", ""), "ordId": "", "sCode": code, "sMsg": msg, "tag": ""})
                continue
            out.append({"clOrdId": o.client_id, "ordId": o.order_id, "sCode": "0", "sMsg": "Order placed",
                        "tag": "", "ts": str(self.s.now_ms())})
        if all(item["sCode"] != "0" for item in out):
            return self.error("1", "All operations failed", data=out)
        return self.ok(out)

    def _cancel_batch(self, items: list[dict]) -> web.Response:
        out = []
        for item in items:
            order = self.s.find_order(item.get("ordId"), item.get("clOrdId"))
            if order is None or order.status != "open" or order.instrument.venue_id != item.get("instId"):
                out.append({"ordId": item.get("ordId", ""), "clOrdId": item.get("clOrdId", ""), "sCode": "51400",
                            "sMsg": _REJECT["not_open"][1]})
                continue
            self.s.cancel(order)
            out.append({"ordId": order.order_id, "clOrdId": order.client_id, "sCode": "0", "sMsg": ""})
        if len(items) == 1 and out[0]["sCode"] != "0":
            return self.error("1", "Operation failed.", data=out)
        return self.ok(out)
