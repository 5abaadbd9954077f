"""OKX: one trading account serves spot and swaps; swaps trade in contracts (0.1 ETH / 0.01 BTC),
which `CexClient.contract_size` converts from the market's contractSize.

Quirks owned here:
- cancels go by the venue's own ids: orders-pending without instType lists every pending order of
  the account on every instrument type (100 per page), including instruments the adapter never
  loaded (futures, options, a symbol listed later), and cancel-batch-orders takes 20 of any
  instruments per request; the batches run concurrently;
- the dead-man switch is cancel-all-after for the whole trading account, in whole seconds 10..120
  (0 switches it off);
- key permissions, position mode and account level from /api/v5/account/config.
"""
from __future__ import annotations

import asyncio
from functools import partial
from decimal import Decimal
from typing import Any, Mapping, Sequence

from engine.domain.venue_ports import MarketKind, VenueError, VenueErrorKind, VenueOrder
from venues.cex.client import AccountMode, CexClient, KeyPermissions, RawOrder, Recheck, Sweep

#: sCodes meaning "nothing left to cancel" (already canceled, filled, or unknown).
GONE = frozenset({"51400", "51401", "51402"})
BATCH = 20        # cancel-batch-orders: at most 20 orders per request, instruments may be mixed
PAGE = 100        # orders-pending: at most 100 orders per page
MAX_PAGES = 20    # the e-stop's timeout bounds the sweep long before this
DEAD_MAN_MIN_S, DEAD_MAN_MAX_S = 10, 120   # cancel-all-after accepts 0 (off) or 10..120 s


class Okx(CexClient):
    MARKET_TYPES = ("spot", "swap")
    KINDS = frozenset({MarketKind.SPOT, MarketKind.PERP})
    ACCOUNT_NAME = "trading"

    def cash_of(self, balance: Mapping[str, Any], asset: str) -> Decimal:
        """Trading account: the currency's ``cashBal``. ``eq`` (ccxt's total) includes the swaps'
        unrealised P&L (``upl``), which is not cash: a price move must not read as a cash change."""
        info = balance.get("info")
        data = info.get("data") if isinstance(info, Mapping) else None
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], Mapping):
            raise self.malformed("fetch_balance", "the account balance answer has no single entry in data")
        return self.cash_row(data[0].get("details"), "ccy", asset, "cashBal", "details")

    # -- raw endpoints of the emergency path (single attempts, unpaced) --------------------------------
    async def pending(self, inst_id: str | None = None) -> list[RawOrder]:
        """One page (newest first) of the account's pending orders on every instrument type, or one instId."""
        params: dict[str, str] = {"limit": str(PAGE)}
        if inst_id is not None:
            params["instId"] = inst_id
        answer = await self.read("fetch_open_orders", self.exchange.privateGetTradeOrdersPending, params,
                                 attempts=1, priority=True)
        return list(answer.get("data") or [])

    async def cancel_batch(self, rows: list[RawOrder]) -> tuple[list[RawOrder], dict[str, str]]:
        """Cancel up to 20 listed orders (any instruments) in one request.

        Returns (the listed rows the venue cancelled, errors by "instId ordId"). Orders already gone are
        neither; when every item of the batch fails ccxt raises on the first one, and a "gone" failure is
        then taken for all (the read-back reports any survivor).
        """
        request = [{"instId": r["instId"], "ordId": r["ordId"]} for r in rows]
        try:
            answer = await self.write("cancel_orders", self.exchange.privatePostTradeCancelBatchOrders, request,
                                      priority=True)
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return [], {}
            raise
        by_id = {r["ordId"]: r for r in rows}
        done: list[RawOrder] = []
        errors: dict[str, str] = {}
        for item in answer.get("data") or []:
            row = by_id.get(str(item.get("ordId")))
            code = str(item.get("sCode"))
            if row is None or code in GONE:
                continue
            if code == "0":
                done.append(row)
            else:
                errors[f"{row['instId']} {row['ordId']}"] = f"cancel refused: {code} {item.get('sMsg') or ''}".strip()
        return done, errors

    async def cancel_rows(self, rows: list[RawOrder]) -> Sweep:
        """Cancel listed orders in batches of 20 (instruments mixed), all batches concurrently."""
        rows = [r for r in rows if r.get("ordId") and r.get("instId")]
        batches = [rows[i:i + BATCH] for i in range(0, len(rows), BATCH)]
        outcomes = await asyncio.gather(*(self.cancel_batch(b) for b in batches), return_exceptions=True)
        sweep = Sweep()
        for batch, outcome in zip(batches, outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                sweep.fail(f"{self.account} batch of {len(batch)}", outcome)
                continue
            done, errors = outcome
            sweep.canceled.extend(self.canceled_raw(done))
            sweep.errors.update(errors)
            sweep.kinds.update(dict.fromkeys(errors, VenueErrorKind.REJECTED))
        return sweep

    # -- the client's behaviour ---------------------------------------------------------------------------
    async def cancel_symbol(self, symbol: str) -> list[VenueOrder]:
        sweep = await self.cancel_rows(await self.pending(self.market_id(symbol)))
        if sweep.errors:
            raise VenueError(self.venue, VenueErrorKind.UNKNOWN, "; ".join(sweep.errors.values()),
                             operation="cancel_orders")
        return sweep.canceled

    async def cancel_account_wide(self, managed: Sequence[str]) -> Sweep:
        """Every pending order of the account, re-read until a page comes back short; instruments the
        mode does not trade are read back afterwards to verify."""
        managed_ids = {self.market_id(s) for s in managed}
        sweep = Sweep()
        foreign: set[str] = set()
        for _ in range(MAX_PAGES):
            try:
                rows = await self.pending()
            except VenueError as exc:
                sweep.fail(f"{self.account} (every instrument)", exc, "could not list pending orders: ")
                break
            foreign.update(r["instId"] for r in rows if r.get("instId") and r["instId"] not in managed_ids)
            page = await self.cancel_rows(rows)
            sweep.merge(page)
            if len(rows) < PAGE or page.errors or not page.canceled:
                break
        for inst_id in sorted(foreign):
            sweep.recheck.append((f"{self.account} {inst_id}", partial(self.pending, inst_id)))
        return sweep

    def verify_reads(self, managed: Sequence[str], recheck: Sequence[Recheck]) -> list[Recheck]:
        """One read of every pending order of the account, every instrument type (a full page of 100
        means orders are left, which the caller reports)."""
        return [(f"{self.account} (every instrument)", self.pending)]

    async def fills_by_client_id(self, symbol: str, client_order_id: str,
                                 since_ms: int | None) -> list[RawOrder] | None:
        """OKX fills carry the order's clOrdId: the last 3 days' fills of the instrument, filtered."""
        trades = await self.read("fetch_my_trades", self.exchange.fetch_my_trades, symbol, since_ms, 100)
        return [t for t in trades if str((t.get("info") or {}).get("clOrdId")) == client_order_id]

    def dead_man_coverage(self, managed_perps: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("all orders of the OKX trading account",), ()

    def dead_man_seconds(self, requested: float) -> float:
        return float(min(max(round(requested), DEAD_MAN_MIN_S), DEAD_MAN_MAX_S))

    async def set_dead_man(self, timeout_ms: int, managed_perps: Sequence[str]) -> None:
        await self.write("cancel_all_orders_after", self.exchange.cancel_all_orders_after, timeout_ms, priority=True)

    async def key_permissions(self, needs_futures: bool) -> KeyPermissions:
        perm = {p.strip() for p in str((await self._config()).get("perm", "")).split(",") if p.strip()}
        return KeyPermissions("trade" in perm, "withdraw" in perm, f"permissions: {', '.join(sorted(perm)) or 'none'}")

    async def account_mode(self) -> AccountMode:
        config = await self._config()
        level = int(config.get("acctLv") or 0)
        hedged = config.get("posMode") == "long_short_mode"
        names = {1: "spot (simple)", 2: "spot and futures", 3: "multi-currency margin", 4: "portfolio margin"}
        return AccountMode(hedged, level >= 2, f"account mode {names.get(level, level)}, "
                                               f"{'long/short' if hedged else 'net'} position mode")

    async def _config(self) -> dict:
        data = (await self.read("account/config", self.exchange.privateGetAccountConfig)).get("data") or [{}]
        return data[0]
