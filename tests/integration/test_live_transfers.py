"""The live router's transfer steps through the real, journaled TransferService.

The peers are real: the loopback exchange emulator speaking each venue's REST protocol to ccxt, its
wallets bridged to the local anvil chain (withdrawals paid on chain by a hot wallet, deposits credited
after confirmations), and the wallet's own TxManager paying the exchanges' deposit addresses.

- usdt_market_neutral's live entry funds the exchanges from the wallet through ``ServiceTransfers``:
  every transfer is journaled as credited, the exchange accounts hold what was credited, the perps
  hedge the loop, and the book matches the chain.
- A CEX -> wallet step through the router books exactly what arrived on chain.
- A transfer that times out or fails raises ``TransferNotCompleted`` naming it, and nothing is sent a
  second time when the strategy asks again.
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
from tests.integration.test_transfers import bridged, service  # noqa: F401 - the bridged emulator fixture

#: where a deposit lands at each emulated exchange (the funding / unified account)
DEPOSIT_ACCOUNT = {"binance": "spot", "okx": "trading", "bybit": "unified"}


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
        assert ops[0] == "swap" and "transfer" in ops and ops.index("transfer") > ops.index("bundle")
        assert all(r.status == "done" for r in steps), s.router.progress.lines()
        # Every transfer step of the program is a journaled transfer, credited by the exchange.
        moved = transfers.transfers()
        assert moved and len(moved) == ops.count("transfer")
        assert all(t.source == WALLET and t.status is TransferStatus.CREDITED for t in moved), moved
        for t in moved:
            assert [x for x, _ in transfers.journal.events(t.id)][-1] == "credited"
        # the exchanges hold what was credited (the deposits of this session, nothing else)
        # (the wallet pays whole token units: 6 decimals of USDT, what the book booked from the chain)
        credited: dict[str, D] = {}
        for t in moved:
            credited[t.destination] = credited.get(t.destination, D(0)) + t.amount.quantize(D("0.000001"), "ROUND_DOWN")
        for venue, amount in credited.items():
            # less the taker fees of the session's fills on that account, plus any funding it was paid
            vs = emulator.venues[venue]
            fees = sum((t.fee for t in vs.trades if vs.account_of(t.order.instrument) == DEPOSIT_ACCOUNT[venue]), D(0))
            funding = sum((r.amount for r in vs.funding), D(0))
            assert vs.balance(DEPOSIT_ACCOUNT[venue], "USDT") == before[venue] + amount - fees + funding
            assert [d.tx_hash for d in bridge.deposits[venue]] == [t.tx_hash for t in moved if t.destination == venue]
            assert sum(d.amount for d in bridge.deposits[venue]) == amount
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
            t = len(s.feed.view.timestamps) - 1
            book_cex = s.portfolio.account(venue).usdt
            book_wallet = s.portfolio.wallet.tokens.get("USDT", 0.0)
            at_venue = emulator.venues[venue].balance(DEPOSIT_ACCOUNT[venue], "USDT")
            fill = await s.router.transfer(Instruction(Op.TRANSFER, venue, "USDT", 150.0, to_venue=BOOK_WALLET), t)
            s.chain_holdings = await s.onchain.holdings()
            back = transfers.transfers()[-1]
            assert back.source == venue and back.destination == WALLET and back.status is TransferStatus.ARRIVED
            assert [x for x, _ in transfers.journal.events(back.id)][-1] == "arrived"
            assert fill.amount_in == fill.amount_out == 150.0
            assert emulator.venues[venue].balance(DEPOSIT_ACCOUNT[venue], "USDT") == at_venue - D(150)
            assert s.portfolio.account(venue).usdt == pytest.approx(book_cex - 150.0, abs=1e-9)
            assert s.portfolio.wallet.tokens["USDT"] == pytest.approx(book_wallet + 150.0, abs=1e-6)
            chain_matches_book(s)
            assert s.router.progress.steps[-1].status == "done"
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
