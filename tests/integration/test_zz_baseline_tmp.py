"""End to end: usdt_market_neutral live on the loopback exchange emulator + the local DeFi stack,
following 48 historical hours time-warped (one hour every few ticks).

Each hour the shipped data moves both worlds: the emulator's ETH spot and perp prices on every venue,
and the stack's AAVE oracle, LST exchange rates, Uniswap pools and clock (HistoryFollower). The
session trades the real programs: entry (swap, e-mode, the Morpho flash-loan loop, USDT deposits to
the CEXs through the test transfer service, perp shorts) and whatever rebalances the hours ask for.
Every hour: the book equals the chain (every token, scaled AAVE balance) and the venues (every perp),
and P&L attribution reconciles. At the end, the e-stop with OKX hung and a wallet transaction
pending halts everything within budget and the pending transaction is replaced within one block.

(The kill -9 recovery runs in tests/integration/test_live_chain_recovery.py with a separate process;
this test's session lives in the test's own event loop with the emulator, so it cannot be killed.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from decimal import Decimal

from engine.data import DataRequirements, HistoricalDataProvider
from engine.domain.onchain_ports import TransactionError
from engine.services.live.emergency_stop import CancelStatus
from engine.services.live.state import TradingState
from tests.integration.chain.live import LoopbackTransfers, onchain_service
from tests.integration.live_support import request, venue_positions, wait_until
from tests.integration.test_live_onchain_modes import chain_matches_book
from venues.onchain import abi
from venues.onchain.devstack.history import HistoryFollower, hours

DATA = __import__("bootstrap").DATA_DIR
HOURS = 48
START = "2024-08-04 00:00"          # into the August 2024 sell-off: ETH fell hundreds of dollars


def set_emulator_eth(emulator, price: Decimal) -> None:
    for state in emulator.venues.values():
        for inst in state.instruments.values():
            if inst.base == "ETH":
                inst.price = price.quantize(inst.tick)


def perps_match(s, emulator) -> None:
    positions = venue_positions(emulator)
    for venue, size in positions.items():
        acct = s.portfolio.cex.get(venue)
        booked = acct.perps["ETH"].size if acct and "ETH" in acct.perps else 0.0
        assert abs(float(size) - booked) < 1e-6, (venue, size, booked)


async def test_usdt_market_neutral_live_follows_48_hours(emulator, cex_store, defi, tmp_path, cache_dir):
    started = time.monotonic()
    data = HistoricalDataProvider(DATA, cache_dir).load(
        DataRequirements(spot=("ETH",), lsts=("weETH", "wstETH")), START, None)
    states = list(hours(data, 0, HOURS + 1))
    follower = HistoryFollower(defi.admin)
    t0 = int(defi.chain.block()["timestamp"], 16)

    def apply(k: int) -> None:
        hour = dataclasses.replace(states[k], timestamp=t0 + 3600 * (k + 1))
        follower.apply(hour)
        set_emulator_eth(emulator, hour.eth_usd)

    apply(0)
    defi.admin.fund(defi.stack.wallet, usdt=Decimal(30_000))
    transfers = LoopbackTransfers(defi, emulator)
    svc = onchain_service(emulator, cex_store, defi, tmp_path, cache_dir, transfers)
    try:
        # The shipped max_daily_loss (3 %) halts this session at hour ~42: the 2024-08-05 weETH discount,
        # now read from the stack's pool each tick, marks a 3.02 % daily loss (the backtest of these days
        # draws down 3.75 %). That halt is the limit working; this test is about the book following the
        # venues and the chain hour by hour, so it runs with room for the sell-off.
        rid = await svc.start(request("usdt_market_neutral", capital=20_000.0, tick_seconds=0.1,
                                      data_timeout_seconds=5.0, cancel_timeout_seconds=3.0,
                                      risk_overrides={"max_daily_loss": 0.06}))
        s = svc.session(rid)
        await wait_until(lambda: s.ticks >= 2 and s.trades > 0, timeout=90, what="the entry")
        hf_seen = []
        for k in range(1, HOURS + 1):
            apply(k)
            ticks = s.ticks
            # The next tick that starts after the move trades on it; the check then runs between ticks.
            await wait_until(lambda: s.ticks >= ticks + 2 if k == 1 else s.ticks >= ticks + 1, timeout=30,
                             what=f"hour {k}")
            async with s.lock:                       # between two ticks: a quiet book
                st = svc.status(rid)
                assert st.state == "ACTIVE", (k, st.state_reason, st.breaches, st.last_error)
                s.chain_holdings = await s.onchain.holdings()
                chain_matches_book(s)
                perps_match(s, emulator)
                assert s.reconciliation_error < 0.01, (k, s.reconciliation_error)
                hf_seen.append(s.chain_holdings.health_factor)
        assert min(hf_seen) > s.limits.hf_floor
        moves = [float(h.eth_usd) for h in states]
        assert max(moves) - min(moves) > 100                 # the hours really moved the market

        # ---- the e-stop with OKX hung and a wallet transaction pending
        ex = s.onchain.ex
        weth = ex.aave.token("WETH")
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
            report = (await asyncio.wait_for(handle.done, 10))[rid]
        finally:
            done = True
            await mining
            defi.chain.rpc("evm_setAutomine", True)
        assert [r.outcome for r in results] == ["cancelled"]
        assert int(defi.chain.rpc("eth_getTransactionReceipt", results[0].tx_hash)["blockNumber"], 16) == head + 1
        v = report.venues
        assert v["binance"].status is v["bybit"].status is CancelStatus.DONE
        # Healthy venues confirm long before the hung one is given up at its timeout (the budgets
        # themselves are measured by tests/perf/bench_estop_chain.py, not asserted on a loaded machine).
        assert v["okx"].status is CancelStatus.TIMEOUT and v["okx"].elapsed_ms >= 3000
        assert max(v["binance"].elapsed_ms, v["bybit"].elapsed_ms) < v["okx"].elapsed_ms
        print(f"\n48 h replay: {s.ticks} ticks, {s.trades} orders, {len(s.router.progress.steps)} on-chain steps, "
              f"{len(transfers.moved)} transfers, min HF {min(hf_seen):.4f}, recon error {s.reconciliation_error:.2e}, "
              f"{time.monotonic() - started:.1f} s")
    finally:
        await svc.close()
