"""``python main.py demo --no-window`` as a newcomer runs it: the exchange emulator and the chain answer,
the keys are stored (the OS keyring under the demo prefix inside tests/run.sh; a marked in-memory store
without one), and Ctrl-C stops everything."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.integration.emulator import TEST_KEYS
from tests.integration.test_devchain_cli import peers_or_skip

REPO = Path(__file__).resolve().parents[2]


def read_until_ready(proc: subprocess.Popen, timeout_s: float) -> tuple[dict, list[str]]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line.rstrip())
        if line.startswith("demo ready "):
            return json.loads(line.removeprefix("demo ready ")), lines
    raise AssertionError(f"the demo did not get ready within {timeout_s:g} s:\n" + "\n".join(lines))


def test_demo_no_window_starts_the_venues_and_stores_the_keys():
    peers_or_skip()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "main.py", "demo", "--no-window"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        info, _lines = read_until_ready(proc, 120)
        ready_s = time.monotonic() - started
        # the exchanges answer the real protocol paths
        binance = requests.get(info["exchanges"]["binance"] + "/api/v3/time", timeout=5).json()
        assert abs(binance["serverTime"] / 1000 - time.time()) < 5
        okx = requests.get(info["exchanges"]["okx"] + "/api/v5/public/time", timeout=5).json()
        assert okx["code"] == "0"

        def rpc(method: str) -> str:
            return requests.post(info["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": method, "params": []},
                                 timeout=5).json()["result"]

        assert int(rpc("eth_chainId"), 16) == 11155111
        first = int(rpc("eth_blockNumber"), 16)
        time.sleep(2.5)
        assert int(rpc("eth_blockNumber"), 16) > first, "the demo chain mines a block every second"
        # the keys
        if info["keys"].startswith("OS keyring"):
            import keyring

            from venues.credentials import CredentialStore
            from venues.demo import DemoKeyring

            store = CredentialStore(DemoKeyring(keyring.get_keyring()))
            creds = store.load("testnet", "binance", ["api_key", "secret"])
            assert creds.reveal("api_key") == TEST_KEYS["binance"].api_key
            assert store.load("testnet", "alchemy", ["rpc_url"]).reveal("rpc_url") == info["rpc_url"]
            # the operator's own testnet entries are untouched (the demo writes under its own prefix)
            assert CredentialStore().load("testnet", "binance", ["api_key"]).reveal("api_key") != \
                TEST_KEYS["binance"].api_key
            for venue in ("binance", "bybit", "okx", "alchemy"):
                store.delete("testnet", venue)
        else:
            assert info["keys"].startswith("IN-MEMORY store") and "forgotten on exit" in info["keys"]
        print(f"\ndemo --no-window ready in {ready_s:.1f} s ({info['keys'].split(' (')[0]})")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "demo stopped: emulator and chain are down" in out
    with pytest.raises(requests.ConnectionError):
        requests.post(info["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                      timeout=2)


def test_without_a_keyring_the_demo_says_its_store_is_in_memory():
    from keyring.backends import fail

    from venues.demo import demo_store

    store, description = demo_store(fail.Keyring())
    assert description.startswith("IN-MEMORY store (no usable OS keyring") and "forgotten on exit" in description
    store.set("testnet", "okx", "api_key", "k")
    assert store.load("testnet", "okx", ["api_key"]).reveal("api_key") == "k"
