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
from functools import partial
from decimal import Decimal
from typing import Any, Mapping, Sequence

from engine.domain.venue_ports import MarketKind, VenueOrder
from venues.cex.client import AccountMode, CexClient, KeyPermissions, RawOrder, Recheck, Sweep, number

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

    def cash_of(self, balance: Mapping[str, Any], asset: str) -> Decimal:
        """Unified account: the coin's ``walletBalance`` (``equity`` adds the perps' unrealised P&L)."""
        info = balance.get("info")
        result = info.get("result") if isinstance(info, Mapping) else None
        accounts = result.get("list") if isinstance(result, Mapping) else None
        if not isinstance(accounts, list) or len(accounts) != 1 or not isinstance(accounts[0], Mapping):
            raise self.malformed("fetch_balance", "the wallet-balance answer has no single account in result.list")
        return self.cash_row(accounts[0].get("coin"), "coin", asset, "walletBalance", "coin")

    def funding_amount(self, row: Mapping[str, Any]) -> Decimal | None:
        """v5 execution/list rows of execType Funding carry the payment as a *fee*: ``execFee`` > 0 is
        paid, < 0 received (a long receives at a negative rate: execFee -0.00005586 at feeRate
        -0.00000383, ccxt/ccxt#19629). ccxt 4.5 passes execFee through unchanged as its ``amount``
        (ccxt/ccxt#26404): the venue's own field is read and negated here."""
        info = row.get("info")
        fee = number(info.get("execFee")) if isinstance(info, Mapping) else None
        return None if fee is None else -fee

    async def cancel_account_wide(self, managed: Sequence[str]) -> Sweep:
        scopes: list[dict[str, str]] = []
        if self.serves(MarketKind.SPOT):
            scopes.append({"type": "spot"})
        if self.serves(MarketKind.PERP):
            scopes.extend({"type": "swap", "subType": "linear", "settleCoin": coin} for coin in SETTLE_COINS)
        ex = self.exchange
        answers = await asyncio.gather(*(self.write("cancel_all_orders", ex.cancel_all_orders, None, scope,
                                                    priority=True) for scope in scopes), return_exceptions=True)
        sweep = Sweep()
        for scope, answer in zip(scopes, answers):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer
                sweep.fail(self._scope_name(scope), answer)
            else:
                sweep.canceled.extend(self.listed_orders(answer))
        return sweep

    @staticmethod
    def _scope_name(scope: dict[str, str]) -> str:
        return "spot" if scope["type"] == "spot" else f"linear {scope['settleCoin']}"

    def _scopes(self) -> list[dict[str, str]]:
        """Cancel-all and open-order reads take one category (and, for linear, one settle coin) each."""
        out: list[dict[str, str]] = []
        if self.serves(MarketKind.SPOT):
            out.append({"category": "spot"})
        if self.serves(MarketKind.PERP):
            out.extend({"category": "linear", "settleCoin": coin} for coin in SETTLE_COINS)
        return out

    async def open_orders_of(self, params: dict[str, str]) -> list[RawOrder]:
        """One unpaced read of a whole category's open orders (the e-stop's verification)."""
        answer = await self.read("fetch_open_orders", self.exchange.privateGetV5OrderRealtime, params,
                                 attempts=1, priority=True)
        return list(((answer or {}).get("result") or {}).get("list") or [])

    def verify_reads(self, managed: Sequence[str], recheck: Sequence[Recheck]) -> list[Recheck]:
        """One read per category and settle coin: every symbol the cancel-alls covered."""
        return [(f"open orders {params['category']}" + (f" {params['settleCoin']}" if "settleCoin" in params else ""),
                 partial(self.open_orders_of, params)) for params in self._scopes()]

    async def fills_by_client_id(self, symbol: str, client_order_id: str,
                                 since_ms: int | None) -> list[RawOrder] | None:
        """Bybit's execution list filters on orderLinkId directly."""
        trades = await self.read("fetch_my_trades", self.exchange.fetch_my_trades, symbol, since_ms, 100,
                                 self.client_id_params(client_order_id))
        return [t for t in trades if str((t.get("info") or {}).get("orderLinkId")) == client_order_id]

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
