"""No secret reaches logs (DEBUG, every logger), exception text or tracebacks, check-venues output
(text and JSON) or the config files — exercised through the real ccxt and web3 code paths."""
from __future__ import annotations

import argparse
import json
import logging
import traceback
from pathlib import Path

import pytest

from engine.config import CONFIG_ROOT, load_venue_config
from tests.integration.emulator import TEST_KEYS
from venues import cli
from venues.cex.factory import build_cex_adapter
from venues.checks import Status
from engine.domain.venue_ports import VenueError

CEX = ("binance", "bybit", "okx")
RPC_KEY = "alchemy-like-provider-key-8c21d"


def all_secrets() -> list[str]:
    out = []
    for keys in TEST_KEYS.values():
        out += [keys.api_key, keys.secret] + ([keys.passphrase] if keys.passphrase else [])
    return out + [RPC_KEY]


async def test_logs_exceptions_results_and_configs_stay_clean(emulator, cex_store, chain, local_configs, caplog,
                                                             capsys):
    caplog.set_level(logging.DEBUG)            # ccxt logs request headers (API key, passphrase) at DEBUG
    rpc_url = chain.w3.provider.endpoint_uri + f"/?apikey={RPC_KEY}"     # the key rides in the URL, like Alchemy's
    cex_store.set("production", "alchemy", "rpc_url", rpc_url)
    cex_store.set("production", "alchemy", "wallet_address", chain.wallet)

    # 1. a full check run with keys (ccxt signed requests + web3 calls), printed as text and as JSON
    for as_json in (False, True):
        # generous: every venue's checks share one loop, and a loaded CI machine is slow to build ccxt clients
        args = argparse.Namespace(mode="usdt_market_neutral", env="production", json=as_json, timeout=30.0)
        await cli.run_check_venues(args, store=cex_store, url_overrides={v: emulator.base_url(v) for v in CEX})
    printed = capsys.readouterr().out
    results = json.loads(printed[printed.index("[\n"):])
    assert {r["venue"] for r in results} >= {"binance", "okx", "alchemy"}
    assert any(r["venue"] == "alchemy" and r["check"] == "chain_id" and r["status"] == Status.FAIL.value
               for r in results), ("production expects chain 1: the RPC was really called",
                                [r for r in results if r["venue"] == "alchemy"])

    # 2. a failing authenticated call: the exception, its chain and its traceback
    emulator.set_faults("okx", bad_auth=True)
    creds = cex_store.load("production", "okx")
    adapter = build_cex_adapter("okx", load_venue_config("okx"), "production", creds,
                                url_override=emulator.base_url("okx"), timeout_s=3, rate_limit_ms=1)
    try:
        with pytest.raises(VenueError) as info:
            await adapter.fetch_balances()
    finally:
        await adapter.close()
    exc_text = "".join(traceback.format_exception(info.value))

    assert caplog.records, "DEBUG logging was captured"
    haystacks = {"logs": caplog.text, "check-venues output": printed, "exception": exc_text}
    for secret in all_secrets():
        for name, text in haystacks.items():
            assert secret not in text, f"a secret leaked into the {name}"

    # 3. the config files never hold a secret
    for path in Path(CONFIG_ROOT).rglob("*"):
        if path.is_file():
            content = path.read_text(errors="replace")
            assert not any(secret in content for secret in all_secrets()), f"secret in {path}"
