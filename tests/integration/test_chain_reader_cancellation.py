"""Timed-out and cancelled RPC reads leave nothing behind: the next read works and the process can exit.

Regression test for web3's AsyncHTTPProvider, whose process-wide session lock leaks when a request is
cancelled while the lock is being acquired (see venues/onchain/http_provider.py): after that every RPC
read hung and the test process never exited. The peer is a loopback JSON-RPC server that answers
slowly, so every short-timeout read is cancelled mid-flight.
"""
from __future__ import annotations

import asyncio
import threading

import pytest
from aiohttp import web
from web3._utils.http_session_manager import HTTPSessionManager

from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.cex.account import RetryPolicy
from venues.onchain.reader import ChainReader

CHAIN_ID = 11155111
BLOCK = {"number": hex(1234), "timestamp": hex(1_700_000_000), "hash": "0x" + "11" * 32,
         "parentHash": "0x" + "22" * 32, "transactions": [], "gasLimit": hex(30_000_000), "gasUsed": "0x0",
         "miner": "0x" + "00" * 20, "difficulty": "0x0", "extraData": "0x", "logsBloom": "0x" + "00" * 256,
         "nonce": "0x0000000000000000", "receiptsRoot": "0x" + "33" * 32, "sha3Uncles": "0x" + "44" * 32,
         "size": "0x0", "stateRoot": "0x" + "55" * 32, "totalDifficulty": "0x0", "transactionsRoot": "0x" + "66" * 32,
         "uncles": [], "baseFeePerGas": hex(10**9), "mixHash": "0x" + "77" * 32}


@pytest.fixture
async def slow_rpc():
    """A JSON-RPC endpoint on 127.0.0.1 that takes `delay` seconds per answer."""
    state = {"delay": 0.3, "requests": 0}

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        state["requests"] += 1
        await asyncio.sleep(state["delay"])
        result = {"eth_chainId": hex(CHAIN_ID), "eth_getBlockByNumber": BLOCK}[body["method"]]
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": result})

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/", state
    await runner.cleanup()


def reader(url: str, timeout_s: float) -> ChainReader:
    return ChainReader(url, tokens={}, contracts={}, timeout_s=timeout_s, retry=RetryPolicy(attempts=1))


async def test_cancelled_reads_do_not_break_later_reads_or_leave_threads(slow_rpc):
    url, state = slow_rpc
    threads_before = {t.ident for t in threading.enumerate()}
    impatient = [reader(url, timeout_s=0.02 + 0.01 * i) for i in range(10)]
    try:
        outcomes = await asyncio.gather(*(r.chain_head() for r in impatient for _ in range(3)),
                                        return_exceptions=True)
    finally:
        for r in impatient:
            await r.close()
    assert all(isinstance(o, VenueError) and o.kind is VenueErrorKind.TIMEOUT for o in outcomes), outcomes

    # and a cancellation from outside (a cancelled venue check, an emergency stop) mid-request
    victim = reader(url, timeout_s=5)
    task = asyncio.ensure_future(victim.chain_head())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await victim.close()

    patient = reader(url, timeout_s=5)
    try:
        head = await asyncio.wait_for(patient.chain_head(), 10)
    finally:
        await patient.close()
    assert (head.chain_id, head.block_number) == (CHAIN_ID, 1234)
    assert state["requests"] > 2, "some reads were cancelled while the server was answering them"
    assert not HTTPSessionManager._lock.locked(), "web3's process-wide session lock is never left held"
    stuck = [t.name for t in threading.enumerate()
             if t.ident not in threads_before and t.is_alive() and not t.daemon]
    assert not stuck, f"reads left threads behind that would block interpreter exit: {stuck}"
