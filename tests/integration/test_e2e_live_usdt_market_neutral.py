"""End to end: usdt_market_neutral live on the loopback exchange emulator + the local DeFi stack,
following 48 historical hours time-warped, with a real kill -9 of the session in the middle.

Each hour the shipped data moves both worlds: the emulator's ETH spot and perp prices on every venue,
and the stack's AAVE oracle, LST exchange rates, Uniswap pools and clock (HistoryFollower). The
session trades the real programs: entry (USDT deposits to the CEXs through the test transfer service
first, then the long leg built in band-sized tranches with the perp shorts leading each swap, then
e-mode and the Morpho flash-loan loop once) and whatever rebalances the hours ask for.

- Hours 0..KILL_HOUR run in a child process (tests/integration/chain/e2e_child.py: the session
  bootstrap builds for `python main.py live`, real ccxt and web3, the journal on disk). The child
  ticks on its own clock; each hour the test moves the market, asks the child to report after the
  next tick, and compares the child's book (held still under the session lock while it looks) with
  the venues and the chain.
- At KILL_HOUR two things are in flight when the child is SIGKILLed: a wallet transaction signed by
  the session's TxManager (journaled in its nonce ledger, broadcast, blocks held so it stays
  pending), and a manual reduce-only perp order sent through the session's own order path that the
  venue has booked but whose answer it holds back (the emulator answers 30 s late), journaled as
  ``submitted``.
- ``python main.py journal show`` reads the journal the crash left: both are there, unfinished.
- The session restarts (in the test's process, from the same journal): recovery reads the wallet,
  the AAVE position and the pending nonces from the chain and every venue's orders and positions,
  resolves the in-flight order by its client id, shows the pending transaction, and waits: nothing
  reaches a venue or the chain until the operator has resolved the transaction (blocks come again;
  it is mined first or replaced by a cancel) and acknowledged. Then the book equals the venues and
  the chain again (the fill once, the wrap and its gas booked, the AAVE position the journal's:
  the loop is not entered a second time), and the session follows the rest of the 48 hours with
  the same checks every hour.
- Nothing lost or duplicated: every journaled order is at its venue exactly once (and the venues
  hold no other), the journal's fills add up to the venues' positions, every transaction of the
  nonce ledger that reached the chain took one nonce and the wallet's nonce counts exactly those
  plus the test transfers' deposits.
- At the end, the e-stop with OKX hung and a wallet transaction pending halts everything within
  budget and the pending transaction is replaced within one block.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import signal
import sqlite3
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from engine.data import DataRequirements, HistoricalDataProvider
from engine.domain.onchain_ports import TransactionError
from engine.services.live.emergency_stop import CancelStatus
from engine.services.live.session import SessionPhase
from engine.services.live.state import TradingState
from main import main
from tests.integration.chain.defi import FAST_TRANSACTIONS, WALLET, WALLET_KEY
from tests.integration.chain.e2e_child import session_report
from tests.integration.chain.live import LoopbackTransfers, onchain_service
from tests.integration.live_support import request, venue_positions, wait_until
from venues.onchain import abi
from venues.onchain.devstack.history import HistoryFollower, hours
from venues.onchain.devstack.overrides import venue_overrides

ROOT = Path(__file__).resolve().parents[2]
DATA = __import__("bootstrap").DATA_DIR
HOURS = 48
KILL_HOUR = 24
START = "2024-08-04 00:00"          # into the August 2024 sell-off: ETH fell hundreds of dollars
# The shipped max_daily_loss (3 %) halts this session at hour ~42: the 2024-08-05 weETH discount, read
# from the stack's pool each tick, marks a 3.02 % daily loss (the backtest of these days draws down
# 3.75 %). That halt is the limit working; this test is about the book following the venues and the
# chain hour by hour across a crash, so it runs with room for the sell-off.
SESSION: dict[str, Any] = {"capital": 20_000.0, "tick_seconds": 0.1, "data_timeout_seconds": 5.0,
                           "cancel_timeout_seconds": 3.0, "risk_overrides": {"max_daily_loss": 0.06},
                           "dead_man_seconds": None}
#: the order-entry endpoint of each venue's perps at the emulator
PERP_ORDER_PATH = {"binance": "fapi/v1/order", "bybit": "v5/order/create", "okx": "api/v5/trade/order"}
IN_FLIGHT_SIZE = "0.1"               # ETH; a whole OKX contract and above every venue's minimum


def set_emulator_eth(emulator, price: Decimal) -> None:
    for state in emulator.venues.values():
        for inst in state.instruments.values():
            if inst.base == "ETH":
                inst.price = price.quantize(inst.tick)


def check_hour(k: int, report: dict[str, Any], origin: dict[str, Any], emulator) -> None:
    """The book of ``report`` (a session_report) equals the venues and the chain, and reconciles.

    The wallet part of the book is its seed (the capital) plus every change on chain since
    ``origin``, the chain when the first session started: across a restart nothing may be lost."""
    assert report["state"] == "ACTIVE", (k, report["reason"], report["last_error"])
    assert report["reconciliation_error"] < 0.01, (k, report["reconciliation_error"])
    now, book = report["chain"], report["wallet"]
    for token in set(now["tokens"]) | set(book["tokens"]):
        seeded = report["capital"] if token == report["currency"] else 0.0
        change = now["tokens"].get(token, 0.0) - origin["tokens"].get(token, 0.0)
        assert book["tokens"].get(token, 0.0) == pytest.approx(seeded + change, rel=1e-9, abs=1e-9), (k, token)
    for side, index, scaled in (("supply", "supply_index", "supply_scaled"), ("debt", "borrow_index", "debt_scaled")):
        for reserve, underlying in now[side].items():
            booked = book[scaled].get(reserve, 0.0) * report[index].get(reserve, 0.0)
            assert booked == pytest.approx(underlying - origin[side].get(reserve, 0.0), rel=1e-6, abs=1e-9), \
                (k, side, reserve)
    for venue, size in venue_positions(emulator).items():
        booked = report["perps"].get(venue, {}).get("ETH", 0.0)
        assert abs(float(size) - booked) < 1e-6, (k, venue, size, booked)


class Child:
    """The session process: commands on stdin, reports on stdout, its log in a file."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, spec: dict[str, Any], folder: Path) -> Child:
        path = folder / "child.json"
        path.write_text(json.dumps(spec))
        log = folder / "child.log"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.chain.e2e_child", str(path), cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log.open("w"),
            env={**os.environ, "PYTHONPATH": str(ROOT)}, limit=2**22)
        return cls(proc, log)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())

    async def line(self, prefix: str, timeout: float) -> str:
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), max(deadline - loop.time(), 0.01))
            except TimeoutError:
                raise AssertionError(f"no {prefix!r} from the session process within {timeout:g} s: "
                                     f"{self.log.read_text()[-3000:]}") from None
            if not raw:
                raise AssertionError(f"the session process ended: {self.log.read_text()[-3000:]}")
            text = raw.decode()
            if text.startswith(prefix):
                return text[len(prefix):].strip()

    async def report(self, command: str, timeout: float = 60.0) -> dict[str, Any]:
        """Ask for a report; the child holds its session still until ``release``."""
        self.send(command)
        return json.loads(await self.line("BOOK ", timeout))

    def release(self) -> None:
        self.send("ok")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)     # kill -9: no stop, no flush beyond what was journaled


async def serve_transfers(transfers: LoopbackTransfers) -> tuple[web.AppRunner, str]:
    """The child's transfer port calls this endpoint; the transfer itself is the in-process test's."""

    async def transfer(req: web.Request) -> web.Response:
        body = await req.json()
        try:
            r = await transfers.transfer(body["asset"], Decimal(body["amount"]), body["source"], body["destination"])
        except Exception as exc:  # noqa: BLE001 - handed to the session as a refused transfer step
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"})
        return web.json_response({"asset": r.asset, "source": r.source, "destination": r.destination,
                                  "sent": str(r.sent), "received": str(r.received), "fee": str(r.fee),
                                  "reference": r.reference, "gas_eth": r.gas_eth})

    app = web.Application()
    app.router.add_post("/transfer", transfer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]          # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/transfer"


async def journal_show(journal_dir: Path, *, process: bool) -> dict[str, Any]:
    """``python main.py journal show --json`` as an operator runs it: a process of its own, or (to
    spare the interpreter's start) the same command in this one."""
    args = ["journal", "show", "--env", "testnet", "--journal-dir", str(journal_dir), "--json"]
    if not process:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(args) == 0
        return json.loads(out.getvalue())
    proc = await asyncio.create_subprocess_exec(sys.executable, "main.py", *args, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    text, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return json.loads(text)


def order_lines(view: dict[str, Any], cid: str) -> list[tuple[str, str]]:
    return [(i["kind"], i["text"]) for i in view["items"] if i["ref"] == cid]


def emulator_orders(emulator) -> dict[str, str]:
    """client order id -> venue, of every order any venue booked."""
    out: dict[str, str] = {}
    for venue, st in emulator.venues.items():
        for o in st.orders.values():
            assert o.client_id not in out, f"client order id {o.client_id} booked twice"
            out[o.client_id] = venue
    return out


def journal_rows(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


# Two sessions (a child process that starts, enters and is killed; a restart that recovers and runs
# on) take about 1.5x the in-process replay (210 s against 144 s, side by side on this 2-core machine
# at load ~7). The suite's 300 s hang guard could fire under heavier load with nothing hung; this
# test's own guard is 600 s (every wait inside it has its own timeout and fails naming what it waited for).
@pytest.mark.timeout(600)
async def test_usdt_market_neutral_live_48_hours_with_a_kill_9_in_the_middle(emulator, cex_store, defi, tmp_path,
                                                                              cache_dir):
    started = time.monotonic()
    data = HistoricalDataProvider(DATA, cache_dir).load(
        DataRequirements(spot=("ETH",), lsts=("weETH", "wstETH")), START, None)
    states = list(hours(data, 0, HOURS + 1))
    follower = HistoryFollower(defi.admin)
    t0 = int(defi.chain.block()["timestamp"], 16)
    journal = tmp_path / "journal-testnet.sqlite3"

    def apply(k: int) -> None:
        hour = dataclasses.replace(states[k], timestamp=t0 + 3600 * (k + 1))
        follower.apply(hour)
        set_emulator_eth(emulator, hour.eth_usd)

    apply(0)
    defi.admin.fund(defi.stack.wallet, usdt=Decimal(30_000))
    transfers = LoopbackTransfers(defi, emulator)
    runner, transfers_url = await serve_transfers(transfers)
    spec = {"overrides": venue_overrides(defi.stack, "testnet", FAST_TRANSACTIONS), "rpc_url": defi.url,
            "private_key": WALLET_KEY, "wallet_address": WALLET, "executor_address": defi.stack.executor,
            "emulator": f"http://127.0.0.1:{emulator.port}", "transfers_url": transfers_url,
            "journal_dir": str(tmp_path), "cache_dir": str(cache_dir), "mode": "usdt_market_neutral",
            "request": SESSION}
    hf_seen: list[float] = []
    svc = None
    try:
        # ---- hours 0..KILL_HOUR: the session in its own process
        child = await Child.start(spec, tmp_path)
        try:
            await child.line("STARTED ", 120)
            first = await child.report("entry", timeout=120)
            origin = first["chain_at_start"]
            check_hour(0, first, origin, emulator)
            child.release()
            phases = {"entry": time.monotonic() - started}
            for k in range(1, KILL_HOUR + 1):
                apply(k)
                # The next tick that starts after the move trades on it; the report runs between ticks.
                r = await child.report(f"check {2 if k == 1 else 1}")
                check_hour(k, r, origin, emulator)
                hf_seen.append(r["chain"]["health_factor"])
                child.release()
            held = {v: s.get("ETH", 0.0) for v, s in r["perps"].items()}
            assert sum(1 for size in held.values() if size < 0) == 3, held      # shorts on all three exchanges
            assert r["wallet"]["debt_scaled"].get("WETH", 0.0) > 0               # the loop is on AAVE
            before_kill = r
            phases["child hours"] = time.monotonic() - started - sum(phases.values())

            # ---- the kill, with a transaction and an order in flight
            defi.chain.rpc("evm_setAutomine", False)         # blocks held: the wallet's transaction waits
            child.send("tx")
            wrap_nonce = int(await child.line("TX ", 60))
            venue = min(held, key=lambda v: held[v])                            # the largest short
            known = set(emulator_orders(emulator))
            # the venue books the order, then holds its answer back (longer than the child lives)
            emulator.add_fault(venue, PERP_ORDER_PATH[venue], "POST", answer_late_s=30.0, times=1)
            child.send(f"manual {venue} buy {IN_FLIGHT_SIZE}")
            await child.line("MANUAL started", 30)
            await wait_until(lambda: set(emulator_orders(emulator)) - known, timeout=30,
                             what="the venue to book the order in flight")
        finally:
            child.kill()
            await child.proc.wait()
        assert child.proc.returncode == -signal.SIGKILL
        (in_flight,) = set(emulator_orders(emulator)) - known
        order = next(o for o in emulator.venues[venue].orders.values() if o.client_id == in_flight)
        assert order.status == "filled" and order.filled * order.instrument.contract_size == Decimal(IN_FLIGHT_SIZE)
        moved_at_kill = len(transfers.moved)
        phases["kill"] = time.monotonic() - started - sum(phases.values())

        # ---- the journal after the crash, read as an operator reads it: both are there, unfinished
        crashed = await journal_show(tmp_path, process=True)
        lines = order_lines(crashed, in_flight)
        assert [kind for kind, _ in lines] == ["order"] and lines[0][1].endswith("submitted"), lines
        assert any(u.startswith(f"order {in_flight} ") and "submitted" in u for u in crashed["unfinished"]), \
            crashed["unfinished"]
        wrap = [i for i in crashed["items"] if i["kind"] == "tx" and f"nonce {wrap_nonce} " in i["text"]]
        assert wrap and wrap[-1]["text"].endswith("'wrap in flight': sent"), wrap
        wrap_hash = wrap[-1]["ref"]
        assert any(u.startswith(f"transaction {wrap_hash} nonce {wrap_nonce} ") for u in crashed["unfinished"]), \
            crashed["unfinished"]
        assert crashed["lease"] is not None                                  # the dead process's lease
        phases["journal show"] = time.monotonic() - started - sum(phases.values())

        # ---- restart: recovery from the venues and the chain, nothing new before the acknowledgement
        svc = onchain_service(emulator, cex_store, defi, tmp_path, cache_dir, transfers)
        rid = await svc.start(request("usdt_market_neutral", **SESSION))
        s = svc.session(rid)
        assert s.phase is SessionPhase.AWAITING_ACK
        report = svc.recovery(rid)
        assert report is not None and report.needs_acknowledgement and not report.blocking, report.lines()
        resolved = [d for d in report.differences if d.kind == "order_resolved"]
        assert len(resolved) == 1 and in_flight in resolved[0].detail and resolved[0].venue == venue, report.lines()
        pending = [d for d in report.differences if d.kind == "transaction_pending"]
        assert len(pending) == 1 and f"nonce {wrap_nonce} " in pending[0].detail, report.lines()
        assert {d.kind for d in report.differences} <= {"order_resolved", "transaction_pending",
                                                        "chain_balance_changed"}, report.lines()
        assert report.book is not None and report.book["entered"]
        journaled_chain = report.book["chain"]
        orders_waiting = set(emulator_orders(emulator))
        await asyncio.sleep(0.5)
        assert s.ticks == 0 and s.phase is SessionPhase.AWAITING_ACK
        assert set(emulator_orders(emulator)) == orders_waiting                # no new risk while it waits
        assert [p.nonce for p in s.onchain.pending()] == [wrap_nonce]           # nothing signed meanwhile
        # The operator lets blocks come and replaces the stuck wrap (it may be mined first), then
        # acknowledges; the market has not moved since the kill hour.
        defi.chain.rpc("evm_setAutomine", True)
        cancelled = await svc.cancel_pending_transactions(rid, timeout_s=20)
        assert [c.outcome for c in cancelled] in (["cancelled"], ["mined first"]), cancelled
        svc.acknowledge_recovery(rid)
        await wait_until(lambda: s.ticks >= 2, timeout=60, what="two ticks after the acknowledgement")
        async with s.lock:
            now = await s.onchain.holdings()
            s.chain_holdings = now
            resumed = session_report(s, now)
            # the in-flight fill is in the book once: the venues' sizes, the crash's book plus that fill;
            # the wrap (or its cancel) and its gas are booked as the chain has them
            check_hour(KILL_HOUR, resumed, origin, emulator)
            assert resumed["perps"][venue]["ETH"] == pytest.approx(
                before_kill["perps"][venue]["ETH"] + float(IN_FLIGHT_SIZE), abs=1e-9)       # a buy of a short
            # the AAVE position is the journal's (the loop was not entered again) and the chain's
            assert resumed["entered"] and "bundle" not in resumed["steps"], resumed["steps"]
            # (the scaled balances: the underlying ones grew by the interest of the hours since)
            for side in ("supply_scaled", "debt_scaled"):
                assert resumed["wallet"][side] == pytest.approx(report.book["wallet"][side], rel=1e-12), side
                assert getattr(now, side) == pytest.approx(journaled_chain[side], rel=1e-12), side
        assert len(transfers.moved) == moved_at_kill                          # no transfer sent again

        phases["recovery"] = time.monotonic() - started - sum(phases.values())
        # ---- after the restart: the rest of the 48 hours in this process
        for k in range(KILL_HOUR + 1, HOURS + 1):
            apply(k)
            ticks = s.ticks
            await wait_until(lambda ticks=ticks: s.ticks >= ticks + 1, timeout=30, what=f"hour {k}")
            async with s.lock:                       # between two ticks: a quiet book
                now = await s.onchain.holdings()
                s.chain_holdings = now
                r = session_report(s, now)
                check_hour(k, r, origin, emulator)
                hf_seen.append(now.health_factor)
        assert min(hf_seen) > s.limits.hf_floor
        moves = [float(h.eth_usd) for h in states]
        assert max(moves) - min(moves) > 100                 # the hours really moved the market

        phases["hours after"] = time.monotonic() - started - sum(phases.values())
        # ---- the e-stop with OKX hung and a wallet transaction pending
        ex = s.onchain.ex
        weth = ex.aave.token("WETH")
        book_aave = {side: dict(getattr(s.portfolio.wallet, side)) for side in ("supply_scaled", "debt_scaled")}
        defi.chain.rpc("evm_setAutomine", False)
        nonce = await ex.tm.submit(ex.ctx.call(weth, abi.WETH9, "deposit", [], value=10**15, label="pending wrap"))
        emulator.set_faults("okx", hang=True)
        handle = svc.emergency_stop("end of the replay")
        assert handle.halted_ms < 50 and s.state.state is TradingState.HALTED
        try:
            await ex.tm.send(ex.ctx.call(weth, abi.WETH9, "deposit", [], value=1, label="after the press"))
            raise AssertionError("a transaction was signed after the press")
        except TransactionError:
            pass
        head = int(defi.chain.rpc("eth_blockNumber"), 16)

        def cancel_sent() -> bool:
            # recorded in the ledger before it is broadcast: wait until the node has it
            return any(r.kind == "cancel" and defi.chain.rpc("eth_getTransactionByHash", r.tx_hash) is not None
                       for r in ex.tm.ledger.by_nonce(ex.tm.chain_id, ex.tm.address, nonce))

        done = False

        async def miner():
            while not done and not cancel_sent():
                await asyncio.sleep(0.005)
            while not done:
                await asyncio.to_thread(defi.chain.mine)
                await asyncio.sleep(0.05)
        mining = asyncio.ensure_future(miner())
        try:
            results = await svc.cancel_pending_transactions(rid, timeout_s=10)
            estop = (await asyncio.wait_for(handle.done, 10))[rid]
        finally:
            done = True
            await mining
            defi.chain.rpc("evm_setAutomine", True)
        assert [x.outcome for x in results] == ["cancelled"]
        # the cancel's gas is booked; the AAVE position is not touched by it (its interest since the
        # last step is in the index, not a change to book)
        for side, booked in book_aave.items():
            assert getattr(s.portfolio.wallet, side) == pytest.approx(booked, rel=1e-12), side
        assert int(defi.chain.rpc("eth_getTransactionReceipt", results[0].tx_hash)["blockNumber"], 16) == head + 1
        v = estop.venues
        assert v["binance"].status is v["bybit"].status is CancelStatus.DONE
        # Healthy venues confirm long before the hung one is given up at its timeout (the budgets
        # themselves are measured by tests/perf/bench_estop_chain.py, not asserted on a loaded machine).
        assert v["okx"].status is CancelStatus.TIMEOUT and v["okx"].elapsed_ms >= 3000
        assert max(v["binance"].elapsed_ms, v["bybit"].elapsed_ms) < v["okx"].elapsed_ms
        phases["e-stop"] = time.monotonic() - started - sum(phases.values())
        ticks, trades, steps = s.ticks, s.trades, len(s.router.progress.steps)
        recon = s.reconciliation_error
        await svc.close()
        svc = None
        emulator.clear_faults("okx")

        # ---- nothing lost, nothing duplicated, across both sessions
        at_venues = emulator_orders(emulator)
        rows = journal_rows(journal, "SELECT client_order_id, venue, status FROM orders")
        placed = {cid: v for cid, v, status in rows if status != "not_placed"}
        assert at_venues == placed, (sorted(set(at_venues) ^ set(placed)), rows)
        fills = journal_rows(journal, "SELECT client_order_id, venue, side, amount FROM fills")
        assert len({(cid, v, side, a) for cid, v, side, a in fills}) == len(fills)     # each fill booked once
        assert sum(1 for cid, *_ in fills if cid == in_flight) == 1
        for venue_name, size in venue_positions(emulator).items():
            journaled = sum((Decimal(a) if side == "buy" else -Decimal(a))
                            for _cid, v, side, a in fills if v == venue_name)
            assert journaled == size, (venue_name, journaled, size)
        txs = journal_rows(journal, "SELECT tx_hash, nonce, status FROM chain_transactions")
        on_chain = [(h, n) for h, n, status in txs if status in ("mined", "confirmed", "reverted")]
        for tx_hash, n in on_chain:
            receipt = defi.chain.rpc("eth_getTransactionReceipt", tx_hash)
            assert receipt is not None, (tx_hash, n)
        assert len({n for _, n in on_chain}) == len(on_chain)              # one transaction per nonce
        deposits = sum(1 for source, _dest, _amount in transfers.moved if source == "wallet")
        assert int(defi.chain.rpc("eth_getTransactionCount", WALLET, "latest"), 16) == len(on_chain) + deposits

        after = await journal_show(tmp_path, process=False)
        resolution = order_lines(after, in_flight)
        assert [kind for kind, _ in resolution] == ["order", "order_status", "fill"], resolution
        assert resolution[1][1].startswith("closed") or resolution[1][1].startswith("filled"), resolution
        assert not after["unfinished"], after["unfinished"]
        wrap_after = [i["text"] for i in after["items"] if i["kind"] == "tx" and i["ref"] == wrap_hash]
        assert wrap_after[0].split(": ", 1)[1].startswith("signed"), wrap_after
        assert wrap_after[-1].split(": ", 1)[1].split(" ")[0] in ("replaced", "confirmed"), wrap_after
        # the loop was entered once over both sessions (its atomic bundle is one journaled step)
        bundles = [i for i in after["items"] if i["kind"] == "event" and i["text"].startswith("chain_step ")
                   and json.loads(i["text"].split(" ", 1)[1])["op"] == "bundle"]
        assert len(bundles) == 1, bundles
        print(f"\n48 h replay, kill -9 at hour {KILL_HOUR} with {venue} order {in_flight} and wrap nonce {wrap_nonce} "
              f"({cancelled[0].outcome}) in flight: "
              f"{before_kill['ticks']} ticks before it + {ticks} after the restart, {len(placed)} orders at the venues "
              f"(= journal), {len(on_chain)} transactions, {len(transfers.moved)} transfers, last session "
              f"{trades} orders / {steps} on-chain steps, min HF {min(hf_seen):.4f}, recon error {recon:.2e}, "
              f"{time.monotonic() - started:.1f} s (" + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()) + ")")
    finally:
        defi.chain.rpc("evm_setAutomine", True)
        if svc is not None:
            await svc.close()
        await runner.cleanup()
