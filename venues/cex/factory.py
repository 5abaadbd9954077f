"""Build a CexVenueAdapter from a venue config, an environment and keyring credentials.

The venue file says which ccxt classes to use (``ccxt_id``, ``ccxt_perp_id``), which symbols to trade
(``markets``) and whether an environment is the exchange's sandbox (testnet; OKX: demo trading, which
ccxt selects with a header). Tests pass ``url_override`` to point every REST base URL of the client at
a loopback emulator; the path part of each URL is kept, so the emulator sees the real paths.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import ccxt.async_support as ccxt_async

from engine.domain.venue_ports import MarketKind
from venues.cex.account import RetryPolicy
from venues.cex.adapter import CexVenueAdapter
from venues.cex.binance import BinanceSpot, BinanceUsdm
from venues.cex.bybit import Bybit
from venues.cex.client import CexClient
from venues.cex.okx import Okx
from venues.credentials import VenueCredentials

# The client class of each supported ccxt class: its fetchMarkets types (loading only those keeps
# load_markets to a few requests), the market kinds it serves and the venue's own quirks.
CLIENTS: Mapping[str, type[CexClient]] = {
    "binance": BinanceSpot,
    "binanceusdm": BinanceUsdm,
    "bybit": Bybit,
    "okx": Okx,
}
_HOST = re.compile(r"^[a-z]+://[^/]+", re.IGNORECASE)


class CexConfigError(ValueError):
    """The venue config cannot be turned into an adapter (names the venue and key)."""


def required_credential_fields(ccxt_id: str) -> list[str]:
    """Keyring fields a ccxt class needs for private calls (OKX also needs the passphrase)."""
    required = getattr(ccxt_async, ccxt_id)().requiredCredentials   # no session is opened before a call
    mapping = (("apiKey", "api_key"), ("secret", "secret"), ("password", "passphrase"))
    return [field for key, field in mapping if required.get(key)]


def rewrite_urls(urls: Any, base: str) -> Any:
    """Replace scheme://host of every URL in ccxt's ``urls['api']`` (nested dicts) by ``base``."""
    if isinstance(urls, str):
        return _HOST.sub(base.rstrip("/"), urls, count=1)
    if isinstance(urls, dict):
        return {k: rewrite_urls(v, base) for k, v in urls.items()}
    return urls


def _make_exchange(ccxt_id: str, *, sandbox: bool, credentials: VenueCredentials | None, timeout_s: float,
                   url_override: str | None, rate_limit_ms: int | None) -> Any:
    types = list(CLIENTS[ccxt_id].MARKET_TYPES)
    cls = getattr(ccxt_async, ccxt_id)
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": int(timeout_s * 1000),
        "options": {
            "fetchMarkets": {"types": types},
            "fetchCurrencies": False,
            "fetchMargins": False,
            # The adapter always passes a symbol; this only silences ccxt's rate-limit warning.
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            # ccxt refuses Binance's futures testnet by default; the testnet environment means it.
            "disableFuturesSandboxWarning": True,
        },
    }
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    if credentials is not None:
        for ccxt_key, field in (("apiKey", "api_key"), ("secret", "secret"), ("password", "passphrase")):
            value = credentials.reveal(field)
            if value is not None:
                config[ccxt_key] = value
    exchange = cls(config)
    # load_markets calls fetch_currencies whenever `has` says it can (private on Bybit, several MB on
    # Binance); the adapter needs no currency metadata, so switch it off on this instance.
    exchange.has = {**exchange.has, "fetchCurrencies": False}
    production_urls = exchange.urls["api"]
    if sandbox:
        exchange.set_sandbox_mode(True)
    if url_override is not None:
        # A loopback venue (the emulator) answers every endpoint family, also those a real testnet
        # lacks (Binance's testnet has no sapi, so no wallet endpoints): start from the production
        # families and let the testnet's own addresses win where it has them.
        urls = exchange.urls["api"]
        if isinstance(urls, dict) and isinstance(production_urls, dict):
            urls = {**production_urls, **urls}
        exchange.urls["api"] = rewrite_urls(urls, url_override)
    return exchange


def _attr(obj: Any, path: str, venue: str) -> Any:
    cur = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else getattr(cur, part, None)
        if cur is None:
            raise CexConfigError(f"configs/venues/{venue}.yaml: missing key {path!r}")
    return cur


def build_cex_adapter(venue: str, venue_config: Any, environment: str, credentials: VenueCredentials | None, *,
                      url_override: str | None = None, timeout_s: float = 10.0,
                      retry: RetryPolicy = RetryPolicy(), underlyings: list[str] | None = None,
                      rate_limit_ms: int | None = None) -> CexVenueAdapter:
    """An adapter for ``venue`` (a CexVenueConfig) in ``environment`` ("testnet" | "production").

    ``underlyings`` limits the traded symbols (e.g. ["ETH"] for eth_basis); None keeps all configured.
    ``credentials`` None gives a public-only adapter (market data works, private calls fail AUTH).
    ``rate_limit_ms`` overrides ccxt's pacing between requests (its per-venue default when None; rate
    limiting stays on either way); tests against the loopback emulator use a small value.
    """
    env = _attr(venue_config, f"environments.{environment}", venue)
    sandbox = bool(_attr(env, "sandbox", venue))
    ids = [_attr(venue_config, "ccxt_id", venue)]
    perp_id = venue_config.get("ccxt_perp_id") if isinstance(venue_config, Mapping) \
        else getattr(venue_config, "ccxt_perp_id", None)
    if perp_id:
        ids.append(perp_id)
    for ccxt_id in ids:
        if ccxt_id not in CLIENTS:
            raise CexConfigError(f"configs/venues/{venue}.yaml: ccxt id {ccxt_id!r} is not supported; "
                                 f"allowed: {', '.join(CLIENTS)}")
    secrets = credentials.secret_values() if credentials is not None else []
    accounts: list[CexClient] = []
    for ccxt_id in ids:
        client = CLIENTS[ccxt_id]
        kinds = client.KINDS
        if perp_id and ccxt_id == ids[0]:      # a separate perp client takes the perps
            kinds = kinds - {MarketKind.PERP}
        exchange = _make_exchange(ccxt_id, sandbox=sandbox, credentials=credentials, timeout_s=timeout_s,
                                  url_override=url_override, rate_limit_ms=rate_limit_ms)
        accounts.append(client(venue, exchange, kinds, secrets=secrets, retry=retry))
    configured = _attr(venue_config, "markets", venue)
    markets: dict[MarketKind, dict[str, str]] = {}
    for kind, key in ((MarketKind.SPOT, "spot"), (MarketKind.PERP, "perp")):
        table = configured.get(key) if isinstance(configured, Mapping) else getattr(configured, key)
        markets[kind] = {u: s for u, s in dict(table or {}).items() if underlyings is None or u in underlyings}
    return CexVenueAdapter(venue, accounts, markets=markets)
