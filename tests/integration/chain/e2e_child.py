"""The 48-hour end-to-end session in a process of its own, so the test can kill it with SIGKILL.

    python -m tests.integration.chain.e2e_child SPEC.json

The session is the one `python main.py live` builds (bootstrap.live_trading_service, real ccxt to the
parent's loopback emulator, the real web3 write side to the parent's anvil stack, the journal on disk
in ``journal_dir``). Only the key store (the emulator's test keys and the stack's wallet, in memory)
and the transfer port differ: transfers go to the parent over HTTP (``RemoteTransfers``), where the
tests' LoopbackTransfers moves the USDT on chain and at the emulator, as in the in-process test.

The parent drives it hour by hour over stdin; the session ticks on its own clock meanwhile:

- ``entry``: wait for the entry (two ticks and a trade), then report (below);
- ``check N``: wait until N more ticks have run (the parent moved the market just before), report;
- ``tx``: sign and broadcast one small WETH wrap through the session's TxManager (its nonce ledger
  in the journal); prints ``TX <nonce>`` once the node has it (the parent holds the blocks);
- ``manual VENUE SIDE AMOUNT``: place a reduce-only manual perp market order through the session's
  own manual-order path (order gate, journal, venue); prints ``MANUAL started`` and does not wait.

A report takes the session's lock (no tick runs while it is held: a quiet book), reads the chain's
holdings, prints one line ``BOOK {json}`` (``session_report``) and keeps the lock until the parent
answers ``ok`` on stdin, so what the parent reads at the emulator and on chain is what the book saw.
"""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bootstrap import DATA_DIR, live_trading_service
from engine.config import load_venue_configs
from engine.domain.onchain_live import ChainHoldings, TransferReceipt, TransferUnavailable
from engine.services.live import LiveStartRequest
from engine.services.live.manual_orders import ManualOrder
from tests.integration.emulator import TEST_KEYS, store_test_keys
from tests.integration.memory_keyring import MemoryKeyring
from venues.cex.account import RetryPolicy
from venues.credentials import CredentialStore
from venues.onchain import abi
from venues.onchain.devstack.overrides import PROTOCOL_VENUES


class RemoteTransfers:
    """TransferPort that asks the parent's transfer endpoint to move the asset and waits for it."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def transfer(self, asset: str, amount: Decimal, source: str, destination: str) -> TransferReceipt:
        body = {"asset": asset, "amount": str(amount), "source": source, "destination": destination}
        async with aiohttp.ClientSession() as http, http.post(self.url, json=body) as answer:
            got = await answer.json()
        if "error" in got:
            raise TransferUnavailable(got["error"])
        return TransferReceipt(got["asset"], got["source"], got["destination"], Decimal(got["sent"]),
                               Decimal(got["received"]), Decimal(got["fee"]), got["reference"], float(got["gas_eth"]))


def holdings_json(h: ChainHoldings) -> dict[str, Any]:
    return {"tokens": h.tokens, "supply": h.supply, "debt": h.debt, "supply_scaled": h.supply_scaled,
            "debt_scaled": h.debt_scaled, "emode": h.emode, "health_factor": h.health_factor,
            "block": h.block_number}


def session_report(s, now: ChainHoldings) -> dict[str, Any]:
    """What the parent compares with the venues and the chain: the book, the chain read just now, the
    market view's AAVE indices at the last hour, and the session's state and reconciliation."""
    mv = s.feed.view
    t = len(mv.timestamps) - 1
    w = s.portfolio.wallet
    return {
        "ticks": s.ticks, "trades": s.trades, "state": s.state.state.value, "phase": s.phase.value,
        "reason": s.state.history[-1].reason if s.state.history else "", "last_error": s.last_error,
        "reconciliation_error": s.reconciliation_error, "entered": s.cycle.entered,
        "capital": s.capital, "currency": s.params.strategy.currency,
        "perps": {v: {a: p.size for a, p in acct.perps.items()} for v, acct in s.portfolio.cex.items()},
        "wallet": {"tokens": dict(w.tokens), "supply_scaled": dict(w.supply_scaled), "debt_scaled": dict(w.debt_scaled)},
        "supply_index": {r: float(mv.supply_index[r][t]) for r in mv.supply_index},
        "borrow_index": {r: float(mv.borrow_index[r][t]) for r in mv.borrow_index},
        "chain": holdings_json(now),
        "chain_at_start": holdings_json(s.chain_recovery.found) if s.chain_recovery is not None else None,
        "steps": [r.op for r in s.router.progress.steps] if s.router is not None else [],
    }


async def report(s, lines: asyncio.Queue[str]) -> None:
    async with s.lock:
        now = await s.onchain.holdings()
        s.chain_holdings = now
        print("BOOK " + json.dumps(session_report(s, now)), flush=True)
        answer = (await lines.get()).strip()
        if answer != "ok":
            raise SystemExit(f"the parent answered {answer!r} to a report")


async def wait_ticks(s, ticks: int, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while s.ticks < ticks:
        if loop.time() > deadline:
            raise SystemExit(f"tick {ticks} did not come within {timeout:g} s (at {s.ticks}: {s.last_error})")
        await asyncio.sleep(0.01)


async def main(spec: dict) -> None:
    store = store_test_keys(CredentialStore(MemoryKeyring()))
    for field in ("rpc_url", "private_key", "wallet_address", "executor_address"):
        store.set("testnet", "alchemy", field, spec[field])
    configs = load_venue_configs((*PROTOCOL_VENUES, "instadapp", "alchemy"), overrides=spec["overrides"])
    emulator = spec["emulator"].rstrip("/")
    service = live_trading_service(
        store=store, url_overrides={v: f"{emulator}/{v}" for v in TEST_KEYS}, journal_dir=Path(spec["journal_dir"]),
        data_dir=DATA_DIR, cache_dir=Path(spec["cache_dir"]), timeout_s=5.0, rate_limit_ms=1,
        retry=RetryPolicy(attempts=2, base_delay_s=0.01), check_timeout_s=2.0, onchain_configs=configs,
        transfers=RemoteTransfers(spec["transfers_url"]))
    rid = await service.start(LiveStartRequest(mode=spec["mode"], execution="live", **spec["request"]))
    s = service.session(rid)
    print(f"STARTED {rid} phase={s.phase.value}", flush=True)
    lines: asyncio.Queue[str] = asyncio.Queue()

    async def read_stdin() -> None:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            await lines.put(line)

    reader = asyncio.ensure_future(read_stdin())
    background: set[asyncio.Task] = set()
    try:
        while True:
            command = (await lines.get()).split()
            if not command:
                continue
            if command[0] == "entry":
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 120
                while not (s.ticks >= 2 and s.trades > 0):
                    if loop.time() > deadline:
                        raise SystemExit(f"no entry within 120 s: {s.last_error}")
                    await asyncio.sleep(0.02)
                await report(s, lines)
            elif command[0] == "check":
                await wait_ticks(s, s.ticks + int(command[1]))
                await report(s, lines)
            elif command[0] == "tx":
                # One wallet transaction through the session's own TxManager (nonce ledger on disk):
                # signed, journaled, broadcast; the parent holds the blocks, so it stays pending.
                async with s.lock:
                    ex = s.onchain.ex
                    nonce = await ex.tm.submit(ex.ctx.call(ex.aave.token("WETH"), abi.WETH9, "deposit", [],
                                                           value=10**15, label="wrap in flight"))
                print(f"TX {nonce}", flush=True)
            elif command[0] == "manual":
                venue, side, amount = command[1:4]
                order = ManualOrder(venue, "ETH", "perp", side, Decimal(amount), reduce_only=True)
                task = asyncio.ensure_future(service.manual_order(rid, order))
                background.add(task)
                print("MANUAL started", flush=True)
            else:
                raise SystemExit(f"unknown command {command!r}")
    finally:
        reader.cancel()
        await service.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
