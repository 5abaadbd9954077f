"""Bybit: one unified account serves spot and linear perps.

Quirks owned here:
- ccxt passes Bybit's params through verbatim, so a client order id is ``orderLinkId``;
- the unified fetchOrder only sees the last 500 orders by id: an order is found by client id through
  the history endpoint, which filters on orderLinkId directly;
- cancel-all takes one category and settle coin per call (spot; linear USDT; linear USDC) and covers
  every symbol of those, so three calls cancel the whole account (ccxt paces Bybit cancel-alls at
  1/s; the emergency path skips that local pacing);
- its disconnect-cancel (DCP) fires only when a private websocket subscribed to 'dcp' drops, which
  this REST client holds none of: no dead-man switch;
- key permissions from /v5/user/query-api, the account mode from /v5/account/info.
"""
from __future__ import annotations

import asyncio
from typing import Sequence

from engine.domain.venue_ports import MarketKind, VenueOrder
from venues.cex.client import AccountMode, CexClient, KeyPermissions, Sweep

#: Linear perps settle in USDT or USDC (USDC perps: BTCPERP...); cancel-all needs one settle coin per call.
SETTLE_COINS = ("USDT", "USDC")


class Bybit(CexClient):
    MARKET_TYPES = ("spot", "linear")
    KINDS = frozenset({MarketKind.SPOT, MarketKind.PERP})
    ACCOUNT_NAME = "unified"
    CLIENT_ID_PARAM = "orderLinkId"

    async def find_by_client_id(self, symbol: str, client_order_id: str) -> VenueOrder | None:
        ex = self.exchange
        rows = await self.read("fetch_canceled_and_closed_orders", ex.fetch_canceled_and_closed_orders,
                               symbol, None, None, self.client_id_params(client_order_id))
        matches = [o for o in rows if o.get("clientOrderId") == client_order_id]
        return self.order(matches[0], symbol, client_order_id) if matches else None

    async def cancel_account_wide(self, managed: Sequence[str]) -> Sweep:
        scopes: list[dict[str, str]] = []
        if self.serves(MarketKind.SPOT):
            scopes.append({"type": "spot"})
        if self.serves(MarketKind.PERP):
            scopes.extend({"type": "swap", "subType": "linear", "settleCoin": coin} for coin in SETTLE_COINS)
        ex = self.exchange
        answers = await asyncio.gather(*(self.write("cancel_all_orders", ex.cancel_all_orders, None, scope,
                                                    priority=True) for scope in scopes))
        return Sweep([o for raw in answers for o in self.listed_orders(raw)])

    def dead_man_coverage(self, managed_perps: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (), ("Bybit: its disconnect-cancel (DCP) fires only when a private websocket subscribed to "
                    "'dcp' drops; this REST adapter holds none",)

    async def key_permissions(self, needs_futures: bool) -> KeyPermissions:
        r = (await self.read("query-api", self.exchange.privateGetV5UserQueryApi)).get("result", {})
        perms = r.get("permissions") or {}
        read_only = str(r.get("readOnly")) == "1"
        trade = not read_only and bool(perms.get("Spot")) and bool(perms.get("ContractTrade"))
        withdraw = "Withdraw" in (perms.get("Wallet") or [])
        return KeyPermissions(trade, withdraw, f"read-only: {'yes' if read_only else 'no'}, "
                                               f"spot {perms.get('Spot') or []}, contract {perms.get('ContractTrade') or []}")

    async def account_mode(self) -> AccountMode:
        r = (await self.read("account/info", self.exchange.privateGetV5AccountInfo)).get("result", {})
        status = int(r.get("unifiedMarginStatus") or 0)
        unified = status >= 3        # 3/4 = UTA 1.0 (pro), 5/6 = UTA 2.0; 1 = classic account
        return AccountMode(False, unified, f"unified account status {status}, margin mode {r.get('marginMode')}")
