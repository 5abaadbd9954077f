"""Venue-specific readiness reads that have no unified ccxt method: key permissions, position/account
mode and funding interval. Each returns plain facts; the checks decide OK/WARN/FAIL.

Sources (each venue's REST docs, as ccxt calls them):
- Binance: GET /sapi/v1/account/apiRestrictions (enableSpotAndMarginTrading, enableFutures,
  enableWithdrawals; not available on the testnet), GET /fapi/v1/positionSide/dual (hedge mode),
  GET /fapi/v1/fundingInfo (lists only symbols whose funding interval differs from the 8 h default).
- Bybit: GET /v5/user/query-api (readOnly, permissions), GET /v5/account/info (unifiedMarginStatus,
  marginMode); funding interval in minutes on the instrument (ccxt's funding rate ``interval``).
- OKX: GET /api/v5/account/config (perm "read_only,trade,withdraw", posMode, acctLv); funding interval
  = nextFundingTime - fundingTime (ccxt's ``interval``).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.cex.account import CcxtAccount
from venues.cex.adapter import CexVenueAdapter, dec


@dataclass(frozen=True)
class KeyPermissions:
    can_trade: bool
    can_withdraw: bool
    detail: str


@dataclass(frozen=True)
class AccountMode:
    hedge_mode: bool
    can_trade_perps: bool
    detail: str


class NotAvailable(Exception):
    """The venue offers no way to read this in the current environment (e.g. Binance testnet sapi)."""


def _first(adapter: CexVenueAdapter, ccxt_id: str) -> CcxtAccount:
    for account in adapter.accounts:
        if account.ccxt_id == ccxt_id:
            return account
    raise VenueError(adapter.venue, VenueErrorKind.CONFIG, f"no {ccxt_id} client in the adapter")


async def key_permissions(adapter: CexVenueAdapter) -> KeyPermissions:
    account = adapter.accounts[0]
    ex = account.exchange
    if account.ccxt_id == "binance":
        if "sapi" not in ex.urls.get("api", {}):
            raise NotAvailable("Binance's testnet has no API-key restrictions endpoint (sapi)")
        r = await account.read("apiRestrictions", ex.sapiGetAccountApiRestrictions)
        spot, futures = bool(r.get("enableSpotAndMarginTrading")), bool(r.get("enableFutures"))
        needs_futures = any(a.ccxt_id == "binanceusdm" for a in adapter.accounts)
        return KeyPermissions(spot and (futures or not needs_futures), bool(r.get("enableWithdrawals")),
                              f"spot trading {'on' if spot else 'off'}, futures {'on' if futures else 'off'}, "
                              f"IP restricted: {'yes' if r.get('ipRestrict') else 'no'}")
    if account.ccxt_id == "bybit":
        r = (await account.read("query-api", ex.privateGetV5UserQueryApi)).get("result", {})
        perms = r.get("permissions") or {}
        read_only = str(r.get("readOnly")) == "1"
        trade = not read_only and bool(perms.get("Spot")) and bool(perms.get("ContractTrade"))
        withdraw = "Withdraw" in (perms.get("Wallet") or [])
        return KeyPermissions(trade, withdraw, f"read-only: {'yes' if read_only else 'no'}, "
                                               f"spot {perms.get('Spot') or []}, contract {perms.get('ContractTrade') or []}")
    if account.ccxt_id == "okx":
        data = (await account.read("account/config", ex.privateGetAccountConfig)).get("data") or [{}]
        perm = {p.strip() for p in str(data[0].get("perm", "")).split(",") if p.strip()}
        return KeyPermissions("trade" in perm, "withdraw" in perm, f"permissions: {', '.join(sorted(perm)) or 'none'}")
    raise NotAvailable(f"no permission read for {account.ccxt_id}")


async def account_mode(adapter: CexVenueAdapter) -> AccountMode:
    account = adapter.perp_accounts()[0] if adapter.perp_accounts() else adapter.accounts[0]
    ex = account.exchange
    if account.ccxt_id == "binanceusdm":
        r = await account.read("fetch_position_mode", ex.fetch_position_mode)
        hedged = bool(r.get("hedged"))
        return AccountMode(hedged, True, "hedge (dual-side) position mode" if hedged else "one-way position mode")
    if account.ccxt_id == "bybit":
        r = (await account.read("account/info", ex.privateGetV5AccountInfo)).get("result", {})
        status = int(r.get("unifiedMarginStatus") or 0)
        unified = status >= 3        # 3/4 = UTA 1.0 (pro), 5/6 = UTA 2.0; 1 = classic account
        return AccountMode(False, unified, f"unified account status {status}, margin mode {r.get('marginMode')}")
    if account.ccxt_id == "okx":
        data = (await account.read("account/config", ex.privateGetAccountConfig)).get("data") or [{}]
        level = int(data[0].get("acctLv") or 0)
        hedged = data[0].get("posMode") == "long_short_mode"
        names = {1: "spot (simple)", 2: "spot and futures", 3: "multi-currency margin", 4: "portfolio margin"}
        return AccountMode(hedged, level >= 2, f"account mode {names.get(level, level)}, "
                                               f"{'long/short' if hedged else 'net'} position mode")
    raise NotAvailable(f"no account-mode read for {account.ccxt_id}")


async def funding_interval_hours(adapter: CexVenueAdapter, symbol: str) -> Decimal:
    account = adapter.account_for(symbol)
    ex = account.exchange
    if account.ccxt_id == "binanceusdm":
        intervals = await account.read("fetch_funding_intervals", ex.fetch_funding_intervals, [symbol])
        entry = intervals.get(symbol) if isinstance(intervals, dict) else None
        interval = entry.get("interval") if entry else None
        if interval is None:          # not listed = Binance's default schedule
            return Decimal(8)
    else:
        rate = await account.read("fetch_funding_rate", ex.fetch_funding_rate, symbol)
        interval = rate.get("interval")
    hours = dec(str(interval)[:-1]) if isinstance(interval, str) and interval.endswith("h") else None
    if hours is None:
        raise VenueError(adapter.venue, VenueErrorKind.UNKNOWN, f"{symbol}: the venue did not report a funding interval")
    return hours
