"""Account-wide open-order reads and cancels by the venue's own symbol ids (the emergency path).

Why raw ids instead of ccxt's unified methods: those resolve a unified symbol through the loaded
markets and refuse one they do not know (BadSymbol) — a symbol listed after our ``load_markets``, or a
market type the adapter never loads (OKX futures and options). An emergency stop must cancel those
orders too, and loading the full market list on the emergency path would cost a multi-MB download on
Binance (exchangeInfo) before the first cancel. The venues' own endpoints take the id the
open-orders listing returned, so no market lookup is needed at all.

Every call here is a single attempt that skips ccxt's local pacing (``priority``): the e-stop's
per-venue timeout bounds it and nothing retries into that budget.
"""
from __future__ import annotations

from typing import Any

from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.cex.account import CcxtAccount

# ccxt implicit methods per Binance client: (read open orders, cancel every open order of one symbol).
# Without a symbol the read costs weight 80 (spot, of 6000/min) or 40 (USD-M, of 2400/min); cancelling
# always needs a symbol.
_BINANCE = {
    "binance": ("privateGetOpenOrders", "privateDeleteOpenOrders"),
    "binanceusdm": ("fapiPrivateGetOpenOrders", "fapiPrivateDeleteAllOpenOrders"),
}
# OKX sCodes meaning "nothing left to cancel" (already canceled, filled, or unknown).
OKX_GONE = frozenset({"51400", "51401", "51402"})
OKX_BATCH = 20        # cancel-batch-orders: at most 20 orders per request, instruments may be mixed
OKX_PAGE = 100        # orders-pending: at most 100 orders per page


def supports_binance(account: CcxtAccount) -> bool:
    return account.ccxt_id in _BINANCE


async def binance_open_orders(account: CcxtAccount, symbol_id: str | None = None) -> list[dict[str, Any]]:
    """Raw open orders of one symbol id, or of every symbol of the account (``symbol_id`` None)."""
    method = getattr(account.exchange, _BINANCE[account.ccxt_id][0])
    params = {"symbol": symbol_id} if symbol_id is not None else {}
    return await account.read("fetch_open_orders", method, params, attempts=1, priority=True)


async def binance_cancel_symbol(account: CcxtAccount, symbol_id: str,
                                listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cancel every open order of ``symbol_id``; returns the raw rows of what was cancelled.

    Spot answers with the cancelled orders (OCO lists carry theirs in ``orderReports``) and with
    "Unknown order" (-2011) when none was open; USD-M only answers "done", so the rows ``listed`` for
    the symbol before the cancel stand for what it cancelled.
    """
    method = getattr(account.exchange, _BINANCE[account.ccxt_id][1])
    try:
        answer = await account.write("cancel_all_orders", method, {"symbol": symbol_id}, priority=True)
    except VenueError as exc:
        if exc.kind is VenueErrorKind.NOT_FOUND:
            return []
        raise
    if not isinstance(answer, list):
        return listed
    rows: list[dict[str, Any]] = []
    for row in answer:
        if isinstance(row, dict):
            rows.extend(r for r in row.get("orderReports") or [row] if isinstance(r, dict) and r.get("orderId"))
    return rows


async def okx_pending(account: CcxtAccount, inst_id: str | None = None) -> list[dict[str, Any]]:
    """One page (newest first) of the account's pending orders on every instrument type, or one instId."""
    params: dict[str, str] = {"limit": str(OKX_PAGE)}
    if inst_id is not None:
        params["instId"] = inst_id
    answer = await account.read("fetch_open_orders", account.exchange.privateGetTradeOrdersPending, params,
                                attempts=1, priority=True)
    return list(answer.get("data") or [])


async def okx_cancel_batch(account: CcxtAccount, rows: list[dict[str, Any]]) -> tuple[list[dict], dict[str, str]]:
    """Cancel up to 20 listed orders (any instruments) in one request.

    Returns (the listed rows the venue cancelled, errors by "instId ordId"). Orders already gone are
    neither; when every item of the batch fails ccxt raises on the first one, and a "gone" failure is
    then taken for all (the read-back reports any survivor).
    """
    request = [{"instId": r["instId"], "ordId": r["ordId"]} for r in rows]
    try:
        answer = await account.write("cancel_orders", account.exchange.privatePostTradeCancelBatchOrders, request,
                                     priority=True)
    except VenueError as exc:
        if exc.kind is VenueErrorKind.NOT_FOUND:
            return [], {}
        raise
    by_id = {r["ordId"]: r for r in rows}
    done: list[dict] = []
    errors: dict[str, str] = {}
    for item in answer.get("data") or []:
        row = by_id.get(str(item.get("ordId")))
        code = str(item.get("sCode"))
        if row is None or code in OKX_GONE:
            continue
        if code == "0":
            done.append(row)
        else:
            errors[f"{row['instId']} {row['ordId']}"] = f"cancel refused: {code} {item.get('sMsg') or ''}".strip()
    return done, errors
