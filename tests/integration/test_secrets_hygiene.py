"""Secrets the process does not need are never read; the ones it uses never reach a log line.

check-venues used to read the wallet's private key (no check uses it) and keep it in memory; ccxt's
DEBUG log carried every signed query string and the key headers. Both checked here through the real
keyring API (an in-memory backend that records what was asked) and the real ccxt client.
"""
from __future__ import annotations

import argparse
import logging

from tests.integration.emulator import TEST_KEYS, store_test_keys
from tests.integration.memory_keyring import MemoryKeyring
from tests.integration.test_emulator_adapters import adapter
from venues import cli
from venues.credentials import CredentialStore

PRIVATE_KEY = "0x" + "5c" * 32
WALLET = "0x" + "ab" * 20


class RecordingKeyring(MemoryKeyring):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, str]] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.reads.append((service, username))
        return super().get_password(service, username)


async def test_check_venues_never_reads_the_private_key(emulator, capsys):
    backend = RecordingKeyring()
    store = store_test_keys(CredentialStore(backend))
    store.set("production", "alchemy", "rpc_url", "http://127.0.0.1:9/rpc")      # nothing listens: rpc FAILs
    store.set("production", "alchemy", "wallet_address", WALLET)
    store.set("production", "alchemy", "private_key", PRIVATE_KEY)
    backend.reads.clear()

    args = argparse.Namespace(mode="usdt_market_neutral", env="production", json=False, timeout=2.0)
    await cli.run_check_venues(args, store=store, url_overrides={v: emulator.base_url(v) for v in TEST_KEYS})
    out = capsys.readouterr().out
    assert "alchemy" in out and "rpc_url and wallet_address stored" in out
    read_fields = {username for service, username in backend.reads if service.endswith("/alchemy")}
    assert "private_key" not in read_fields and {"rpc_url", "wallet_address"} <= read_fields


async def test_debug_logs_hold_no_signature_and_no_key_header(emulator, caplog):
    caplog.set_level(logging.DEBUG)
    signatures: list[str] = []
    for venue in TEST_KEYS:
        a = adapter(emulator, venue)
        exchange = a.accounts[0].exchange
        sign = exchange.sign

        def recording_sign(*args, _sign=sign, **kwargs):
            request = _sign(*args, **kwargs)
            headers = request.get("headers") or {}
            for name in ("OK-ACCESS-SIGN", "X-BAPI-SIGN"):
                if name in headers:
                    signatures.append(headers[name])
            if "signature=" in request["url"]:
                signatures.append(request["url"].split("signature=")[1].split("&")[0])
            return request

        exchange.sign = recording_sign
        try:
            await a.load_markets()
            await a.fetch_balances()
            await a.fetch_open_orders("ETH/USDT")
        finally:
            await a.close()
    assert len(signatures) >= 6, "every venue signed requests"
    logged = caplog.text
    assert "Request:" in logged, "ccxt's DEBUG request lines were captured"
    for signature in signatures:
        assert signature not in logged
    for keys in TEST_KEYS.values():
        for value in (keys.api_key, keys.secret, keys.passphrase):
            assert not value or value not in logged
    assert "signature=***" in logged and "'X-BAPI-SIGN': '***'" in logged and "'OK-ACCESS-SIGN': '***'" in logged
