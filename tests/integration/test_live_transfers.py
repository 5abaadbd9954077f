"""The live router's transfer steps through the real, journaled TransferService.

The peers are real: the loopback exchange emulator speaking each venue's REST protocol to ccxt, its
wallets bridged to the local anvil chain (withdrawals paid on chain by a hot wallet, deposits credited
after confirmations), and the wallet's own TxManager paying the exchanges' deposit addresses.

- usdt_market_neutral's live entry funds the exchanges from the wallet through ``ServiceTransfers``
  (first, before any ETH exposure):
  every transfer is journaled as credited, the exchange accounts hold what was credited, the perps
  hedge the loop, and the book matches the chain.
- A CEX -> wallet step through the router books exactly what arrived on chain.
- A transfer that times out or fails raises ``TransferNotCompleted`` naming it, and nothing is sent a
  second time when the strategy asks again.
- In a live session, a wallet payment that times out stops the program naming the transfer; the
  next tick's chain check halts on exactly the difference; the late credit is recognised on resume.
"""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from engine.domain.instructions import WALLET as BOOK_WALLET
from engine.domain.instructions import Instruction, Op
from engine.domain.transfers import WALLET, TransferStatus
from engine.services.live.state import TradingState
from engine.services.live.transfer_port import ServiceTransfers, TransferNotCompleted
from tests.integration.chain.defi import WALLET as WALLET_ADDRESS
from tests.integration.chain.live import align_stack, onchain_service
from tests.integration.live_support import request, venue_positions, wait_until
from tests.integration.test_live_onchain_modes import chain_matches_book
from tests.integration.test_transfers import FEES, bridged, service  # noqa: F401 - the bridged emulator fixture

#: where a deposit ends at each emulated exchange: its trading account (Binance credits spot and the
#: service moves it to USD-M; OKX and Bybit credit funding and it is moved to trading / unified)
DEPOSIT_ACCOUNT = {"binance": "usdm", "okx": "trading", "bybit": "unified"}


def port(svc, timeout_s: float = 30.0) -> ServiceTransfers:
    return ServiceTransfers(svc, environment="testnet", timeout_s=timeout_s, gas_paid=svc.wallet.gas_paid)


async def test_market_neutral_entry_funds_the_exchanges_through_the_transfer_service(
        bridged, execution, defi, cex_store, tmp_path, cache_dir):  # noqa: F811
    emulator, bridge, adapters = bridged
    align_stack(defi, "usdt_market_neutral", cache_dir)
    defi.admin.fund(defi.stack.wallet, usdt=D(30_000))
    transfers = service(tmp_path, adapters, execution, {"wallet": WALLET_ADDRESS})
    before = {v: emulator.venues[v].balance(a, "USDT") for v, a in DEPOSIT_ACCOUNT.items()}
    live = onchain_service(emulator, cex_store, defi, tmp_path, cache_dir, port(transfers))
    try:
        rid = await live.start(request("usdt_market_neutral", capital=20_000.0, tick_seconds=0.2,
                                       data_timeout_seconds=5.0))
        s = live.session(rid)
        await wait_until(lambda: s.ticks >= 3 and s.trades > 0, timeout=120, what="the entry and two ticks")
        st = live.status(rid)
        assert st.state == "ACTIVE", (st.state_reason, st.last_error, st.breaches)
        steps = s.router.progress.steps
        ops = [r.op for r in steps]
        # the margins go to the exchanges before the entry takes any ETH exposure
        assert ops[:3] == ["transfer"] * 3 and ops.index("swap") > 2
        assert all(r.status == "done" for r in steps), s.router.progress.lines()
        # Every transfer step of the program is a journaled transfer, credited by the exchange.
        moved = transfers.transfers()
        assert moved and len(moved) == ops.count("transfer")
        assert all(t.source == WALLET and t.status is TransferStatus.CREDITED for t in moved), moved
        for t in moved:
            assert [x for x, _ in transfers.journal.events(t.id)][-1] == "credited"
        # the trading accounts hold what was credited and moved there (the deposits of this session,
        # nothing else): the wallet pays whole token units (6 decimals of USDT, journaled as paid and
        # what the book booked from the chain), the move to the trading account is rounded down to the venue's transfer
        # precision (ccxt's 0.01 USDT at OKX and Bybit), and the dust stays in the deposit account
        paid: dict[str, D] = {}
        credited: dict[str, D] = {}
        for t in moved:
            assert t.amount == t.amount.quantize(D("0.000001"))       # journaled as paid: whole USDT base units
            paid[t.destination] = paid.get(t.destination, D(0)) + t.amount
            move = transfers.journal.move(f"{t.id}-in")
            assert move is not None and move.status == "done", (t, move)
            credited[t.destination] = credited.get(t.destination, D(0)) + move.amount
        for venue, amount in credited.items():
            # less the taker fees of the session's fills on that account, plus any funding it was paid
            vs = emulator.venues[venue]
            fees = sum((t.fee for t in vs.trades if vs.account_of(t.order.instrument) == DEPOSIT_ACCOUNT[venue]
                        and t.fee_asset == "USDT"), D(0))                 # a spot buy pays in the coin
            funding = sum((r.amount for r in vs.funding), D(0))
            assert vs.balance(DEPOSIT_ACCOUNT[venue], "USDT") == before[venue] + amount - fees + funding
            assert [d.tx_hash for d in bridge.deposits[venue]] == [t.tx_hash for t in moved if t.destination == venue]
            assert sum(d.amount for d in bridge.deposits[venue]) == paid[venue]
            assert paid[venue] - amount < D("0.01") * sum(1 for t in moved if t.destination == venue)
        # the receipts' references are the payments' hashes, and their gas was booked as gas
        transfer_steps = [r for r in steps if r.op == "transfer"]
        assert [r.tx_hashes for r in transfer_steps] == [(t.tx_hash,) for t in moved]
        assert all(r.gas_eth > 0 for r in transfer_steps)
        assert sum(venue_positions(emulator).values()) < 0          # the perps hedge the loop's net ETH
        assert st.reconciliation_error < 0.01
        chain_matches_book(s)

        # CEX -> wallet through the router: the book takes exactly what arrived on chain.
        venue = next(iter(credited))
        async with s.lock:
            hour = len(s.feed.view.timestamps) - 1
            book_cex = s.portfolio.account(venue).usdt
            book_wallet = s.portfolio.wallet.tokens.get("USDT", 0.0)
            at_venue = emulator.venues[venue].balance(DEPOSIT_ACCOUNT[venue], "USDT")
            fill = await s.router.transfer(Instruction(Op.TRANSFER, venue, "USDT", 150.0, to_venue=BOOK_WALLET), hour)
            s.chain_holdings = await s.onchain.holdings()
            back = transfers.transfers()[-1]
            assert back.source == venue and back.destination == WALLET and back.status is TransferStatus.ARRIVED
            assert [x for x, _ in transfers.journal.events(back.id)][-1] == "arrived"
            # the venue's withdrawal fee is journaled, debited from the venue and booked as a cost
            assert back.fee == FEES["USDT"] and back.debit - back.arrives == FEES["USDT"]
            assert (fill.amount_in, fill.amount_out) == (float(back.debit), float(back.arrives))
            assert fill.execution_cost == pytest.approx(float(FEES["USDT"]) * s.router.mv.price_usd("USDT", hour), abs=1e-6)
            assert emulator.venues[venue].balance(DEPOSIT_ACCOUNT[venue], "USDT") == at_venue - back.debit
            assert s.portfolio.account(venue).usdt == pytest.approx(book_cex - float(back.debit), abs=1e-9)
            assert s.portfolio.wallet.tokens["USDT"] == pytest.approx(book_wallet + float(back.arrives), abs=1e-6)
            chain_matches_book(s)
            assert s.router.progress.steps[-1].status == "done"
            assert s.router.progress.steps[-1].detail == \
                f"received {back.arrives} USDT (fee {back.debit - back.arrives} USDT)"
        assert s.state.state is TradingState.ACTIVE
    finally:
        await live.close()


async def test_a_transfer_that_does_not_arrive_in_time_is_named_and_never_sent_again(
        bridged, execution, tmp_path):  # noqa: F811
    _emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {})
    transfers = port(svc, timeout_s=0.01)          # the payment alone takes longer: it is still 'sent'
    with pytest.raises(TransferNotCompleted, match=r"transfer (\w+) \(300 USDT wallet -> okx\) is still sent after "
                                                   r"0.01 s .*not sent again; follow it with python main.py transfer "
                                                   r"resume --env testnet") as raised:
        await transfers.transfer("USDT", D(300), WALLET, "okx")
    tid = raised.value.transfer_id
    assert [t.id for t in svc.transfers()] == [tid] and raised.value.status is TransferStatus.SENT
    # The strategy asks again (its next rebalance): refused, naming the first, nothing paid.
    with pytest.raises(TransferNotCompleted, match=f"transfer {tid} of this session is still sent"):
        await transfers.transfer("USDT", D(300), WALLET, "okx")
    # A session restarted meanwhile (a fresh adapter) sees the unfinished transfer in the journal.
    with pytest.raises(TransferNotCompleted, match=f"transfer {tid} .* is still sent: finish it first"):
        await port(svc).transfer("USDT", D(300), WALLET, "okx")
    assert len(svc.transfers()) == 1
    # what `transfer resume` does: the one payment is followed to its credit, it was made once
    assert (await svc.wait(tid, 20)).status is TransferStatus.CREDITED
    assert len(bridge.deposits["okx"]) == 1


async def test_a_failed_transfer_is_named_and_never_sent_again(bridged, execution, tmp_path):  # noqa: F811
    """Bybit makes the withdrawal but the answer is lost, and Bybit cannot look it up by client id:
    the transfer fails saying so; the adapter sends nothing more this session."""
    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {"wallet": execution.ctx.address})
    transfers = port(svc)
    emulator.add_fault("bybit", "v5/asset/withdraw/create", "POST", drop_answer=True, times=1)
    with pytest.raises(TransferNotCompleted, match=r"transfer \w+ \(12 USDT bybit -> wallet\) failed: .*cannot look "
                                                   r"it up by client id") as raised:
        await transfers.transfer("USDT", D(12), "bybit", WALLET)
    assert raised.value.status is TransferStatus.FAILED
    with pytest.raises(TransferNotCompleted, match=f"transfer {raised.value.transfer_id} of this session failed"):
        await transfers.transfer("USDT", D(12), "bybit", WALLET)
    assert len(bridge.withdrawals["bybit"]) == 1
    assert emulator.venues["bybit"].requests.count(("POST", "v5/asset/withdraw/create")) == 1
    assert len(svc.transfers()) == 1


async def test_a_refused_transfer_sends_nothing_and_does_not_block_the_next(bridged, execution, tmp_path):  # noqa: F811
    from engine.domain.onchain_live import TransferUnavailable

    _emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {})           # the wallet is not whitelisted
    transfers = port(svc)
    with pytest.raises(TransferUnavailable, match="refused, nothing sent: refusing to withdraw to the wallet"):
        await transfers.transfer("USDT", D(10), "binance", WALLET)
    assert svc.transfers() == [] and bridge.withdrawals["binance"] == []
    receipt = await transfers.transfer("USDT", D(25), WALLET, "bybit")
    assert receipt.received == D(25) and receipt.sent == D(25) and receipt.reference == svc.transfers()[0].tx_hash
    assert receipt.gas_eth > 0


async def test_the_live_service_builds_the_transfer_service_from_the_keyring(emulator, cex_store, defi, tmp_path,
                                                                             cache_dir):
    """Without a TransferPort given, a live session with on-chain legs gets ServiceTransfers when the
    wallet's keys and configs/transfers.yaml are there; without the wallet key it keeps NoTransfers
    and its warnings say why."""
    from bootstrap import DATA_DIR, live_trading_service
    from engine.domain.onchain_live import NoTransfers
    from tests.integration.chain.defi import FAST_TRANSACTIONS
    from tests.integration.chain.live import store_wallet
    from venues.cex.account import RetryPolicy
    from venues.onchain.devstack.overrides import local_venue_configs

    align_stack(defi, "usdt_market_neutral", cache_dir)
    defi.admin.fund(defi.stack.wallet, usdt=D(30_000))
    live = live_trading_service(
        store=store_wallet(cex_store, defi), url_overrides={v: emulator.base_url(v) for v in emulator.venues},
        journal_dir=tmp_path, data_dir=DATA_DIR, cache_dir=cache_dir, timeout_s=5.0, rate_limit_ms=1,
        retry=RetryPolicy(attempts=2, base_delay_s=0.01), check_timeout_s=2.0,
        onchain_configs=local_venue_configs(defi.stack, transactions=FAST_TRANSACTIONS))
    factory = live.transfer_factory
    assert factory is not None
    try:
        built, note = await factory("testnet", ["okx"])
        try:
            assert note == "" and isinstance(built, ServiceTransfers)
            assert built.service.wallet is not None and set(built.service.cex) == {"okx"}
            assert built.service.journal.path == tmp_path / "journal-testnet.sqlite3"
        finally:
            await built.close()
        cex_store.delete("testnet", "alchemy", "private_key")
        refused, note = await factory("testnet", ["okx"])
        assert isinstance(refused, NoTransfers) and note.startswith("transfers: no transfer service (")
        assert "private_key" in note
    finally:
        await live.close()


async def test_a_wallet_payment_that_times_out_stops_the_program_and_the_next_tick_halts_on_the_difference(
        bridged, execution, defi, cex_store, tmp_path, cache_dir):  # noqa: F811
    """The entry's first wallet -> exchange payment is on chain but not credited within the step's
    timeout: the program stops there naming the transfer id (nothing after it runs, nothing is paid
    again); the next tick's chain check finds the wallet short of the book by exactly the payment and
    halts, naming the difference. The exchange credits it later; `transfer resume` (the service's
    resume) recognises that credit, moves it to the trading account and never pays a second time."""
    emulator, bridge, adapters = bridged
    align_stack(defi, "usdt_market_neutral", cache_dir)
    defi.admin.fund(defi.stack.wallet, usdt=D(30_000))
    transfers = service(tmp_path, adapters, execution, {"wallet": WALLET_ADDRESS})
    usdt = execution.aave.token("USDT")
    live = onchain_service(emulator, cex_store, defi, tmp_path, cache_dir, port(transfers, timeout_s=0.01))
    try:
        rid = await live.start(request("usdt_market_neutral", capital=20_000.0, tick_seconds=0.2,
                                       data_timeout_seconds=5.0))
        s = live.session(rid)
        await wait_until(lambda: any(r.op == "transfer" for r in s.router.progress.steps), timeout=120,
                         what="the entry's first transfer step")
        await wait_until(lambda: s.state.state is TradingState.HALTED, timeout=60, what="the halt")
        [t] = transfers.transfers()
        assert t.source == WALLET and t.status is TransferStatus.SENT and t.tx_hash
        steps = s.router.progress.steps
        last = steps[-1]
        assert last.op == "transfer" and last.status == "failed"
        assert f"transfer {t.id} (" in last.detail and "is still sent after 0.01 s" in last.detail
        assert "not sent again; follow it with python main.py transfer resume --env testnet" in last.detail
        assert [r.op for r in steps].count("transfer") == 1            # the program stopped at it
        # the next tick compared the chain with the book: the wallet is short by exactly the payment
        paid = t.amount                 # the journal holds what the wallet paid (whole USDT base units)
        st = live.status(rid)
        assert st.state == "HALTED"
        assert "position_mismatch[chain:ethereum USDT]" in st.state_reason, st.state_reason
        reported = float(st.state_reason.split("position_mismatch[chain:ethereum USDT] ")[1].split()[0])
        assert reported == pytest.approx(-float(paid), abs=0.01), st.state_reason
        assert len(bridge.deposits[t.destination]) == 1
        # the late credit: the exchange credits the deposit after the timeout; resume recognises it
        wallet_usdt = await execution.ctx.balance(usdt)
        await wait_until(lambda: bridge.deposits[t.destination][0].credited, timeout=30, what="the late credit")
        [resumed] = await transfers.resume()
        assert resumed.id == t.id and resumed.status is TransferStatus.CREDITED, resumed
        moved_in = transfers.journal.move(f"{t.id}-in")
        assert moved_in is not None and moved_in.status == "done"
        assert transfers.in_flight(t.destination) == []
        assert await execution.ctx.balance(usdt) == wallet_usdt             # nothing paid again
        assert len(bridge.deposits[t.destination]) == 1
        assert sum(1 for x in transfers.transfers() if x.destination == t.destination) == 1
    finally:
        await live.close()
