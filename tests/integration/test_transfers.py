"""Transfers end to end: the real ccxt client against the loopback exchange emulator, whose wallet is
bridged to the local anvil chain, and the real web3 wallet (TxManager) on the same chain.

CEX -> wallet (a real ERC-20 / ETH transfer from the emulator's hot wallet, detected in the wallet
after confirmations), wallet -> CEX (paid to the venue's deposit address, credited after
confirmations), CEX -> CEX (binance withdraws to okx's deposit address), the whitelist refusing any
other address, the journal's steps, and a restart that resumes a transfer in flight without paying twice.
"""
from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal as D

import pytest

from engine.config import load_venue_config
from engine.domain.transfers import TransferRefused, TransferStatus
from engine.services.live.transfers import (
    TransferJournal,
    TransferService,
    TransferSettings,
    load_transfer_settings,
)
from tests.integration.chain.defi import WALLET
from tests.integration.emulator import TEST_KEYS, ExchangeEmulator
from venues.cex.account import RetryPolicy
from venues.cex.factory import build_cex_adapter
from venues.cex.transfers import CcxtTransfers
from venues.credentials import Secret, VenueCredentials
from venues.emulator.chain_bridge import ChainBridge, deposit_address_of
from venues.onchain.transfers import WalletTransfers

# anvil's published development account 2 (mnemonic "test test ... junk"): the emulator's hot wallet
HOT_WALLET_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
CONFIRMATIONS = 2
#: the emulated venues' withdrawal fees and minimums (Binance takes its fee out of the amount, OKX and
#: Bybit charge it on top)
FEES = {"USDT": D(1), "ETH": D("0.0005")}
MINIMUMS = {"USDT": D(5), "ETH": D("0.001")}


def cex_total(state, asset: str) -> D:
    """An emulated venue's holding of ``asset`` over all its accounts (spot + USD-M, funding + trading)."""
    return sum((state.balance(a, asset) for a in state.balances), D(0))


def creds(venue: str) -> VenueCredentials:
    keys = TEST_KEYS[venue]
    values = {"api_key": Secret(keys.api_key), "secret": Secret(keys.secret)}
    if keys.passphrase:
        values["passphrase"] = Secret(keys.passphrase)
    return VenueCredentials("production", venue, values)


@pytest.fixture
async def bridged(defi):
    """The emulator with its venues' wallets on the local chain; blocks are mined every 50 ms. The CEX
    side is the production configuration (Binance's testnet has no wallet endpoints), served by the
    emulator."""
    emulator = ExchangeEmulator()
    await emulator.start()
    bridge = ChainBridge(defi.url, HOT_WALLET_KEY, {"USDT": defi.stack.tokens["USDT"]}, confirmations=CONFIRMATIONS,
                         poll_s=0.05, fees=FEES, minimums=MINIMUMS)
    defi.admin.fund(bridge.hot_wallet, usdt=D(1_000_000))
    defi.admin.fund(WALLET, usdt=D(10_000))
    await bridge.start(emulator.venues)

    async def mine() -> None:
        while True:
            await asyncio.to_thread(defi.chain.mine)
            await asyncio.sleep(0.05)

    miner = asyncio.ensure_future(mine())
    adapters = {v: build_cex_adapter(v, load_venue_config(v), "production", creds(v), url_override=emulator.base_url(v),
                                     timeout_s=3.0, retry=RetryPolicy(attempts=2, base_delay_s=0.01),
                                     underlyings=["ETH"], rate_limit_ms=1) for v in ("binance", "okx", "bybit")}
    try:
        yield emulator, bridge, adapters
    finally:
        miner.cancel()
        await asyncio.gather(miner, return_exceptions=True)
        await asyncio.gather(*(a.close() for a in adapters.values()))
        await bridge.stop()
        await emulator.stop()


def service(tmp_path, adapters, execution, whitelist) -> TransferService:
    journal = TransferJournal(tmp_path / "journal-testnet.sqlite3")
    wallet = WalletTransfers(execution.ctx, {"USDT": execution.aave.token("USDT")}, confirmations=CONFIRMATIONS)
    cex = {v: CcxtTransfers(a.accounts[0]) for v, a in adapters.items()}
    accounts = load_transfer_settings("testnet").venue_accounts        # where each venue deposits and trades
    return TransferService(journal, cex, wallet, TransferSettings(CONFIRMATIONS, 0.05, whitelist, 30.0, accounts))


async def test_cex_to_wallet_usdt_and_eth_arrive_on_chain(bridged, execution, tmp_path):
    """Binance: USD-M -> spot first (a journaled move), then the withdrawal, its fee taken out of the
    amount; OKX: trading -> funding first, the fee charged on top. The journal holds both fees."""
    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {"wallet": execution.ctx.address})
    usdt = execution.aave.token("USDT")
    before_usdt = await execution.ctx.balance(usdt)
    before_eth = await execution.ctx.w3.eth.get_balance(execution.ctx.address)
    binance = emulator.venues["binance"]
    spot0, usdm0 = binance.balance("spot", "USDT"), binance.balance("usdm", "USDT")
    t = await svc.cex_to_wallet("binance", "USDT", D("1250.5"))
    assert t.status is TransferStatus.SENT and t.withdraw_id
    assert (t.amount, t.fee, t.fee_included, t.debit, t.arrives) == (D("1250.5"), D(1), True, D("1250.5"), D("1249.5"))
    assert binance.balance("usdm", "USDT") == usdm0 - D("1250.5") and binance.balance("spot", "USDT") == spot0
    [move] = svc.journal.moves(t.id)
    assert (move.id, move.status, move.from_account, move.to_account, move.amount) == \
        (f"{t.id}-out", "done", "linear", "spot", D("1250.5"))
    assert [(m.from_account, m.to_account, m.amount) for m in binance.internal_transfers] == [("usdm", "spot", D("1250.5"))]
    done = await svc.wait(t.id, 20)
    assert done.status is TransferStatus.ARRIVED, done
    assert await execution.ctx.balance(usdt) == before_usdt + D("1249.5")
    assert [s for s, _ in svc.journal.events(t.id)] == ["requested", "move requested", "move sending", "move done",
                                                         "sent", "sent", "arrived"]
    assert done.tx_hash == bridge.withdrawals["binance"][0].tx_hash and done.fee == D(1)
    # native ETH from OKX: moved trading -> funding (amount and fee), withdrawn from funding, fee on top
    okx = emulator.venues["okx"]
    trading0 = okx.balance("trading", "ETH")
    eth = await svc.wait((await svc.cex_to_wallet("okx", "ETH", D("0.75"))).id, 20)
    assert eth.status is TransferStatus.ARRIVED, eth
    assert (eth.fee, eth.fee_included, eth.debit) == (D("0.0005"), False, D("0.7505"))
    assert await execution.ctx.w3.eth.get_balance(execution.ctx.address) == before_eth + 75 * 10 ** 16
    assert okx.balance("trading", "ETH") == trading0 - D("0.7505") and okx.balance("funding", "ETH") == 0
    assert [(m.client_id, m.from_account, m.to_account) for m in okx.internal_transfers] == \
        [(f"{eth.id}out", "trading", "funding")]


async def test_wallet_to_cex_is_credited_after_confirmations(bridged, execution, tmp_path):
    """OKX credits the deposit to its funding account; the service moves it to trading (journaled,
    with OKX's clientId) before it counts the transfer credited."""
    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {})
    okx = emulator.venues["okx"]
    before = okx.balance("trading", "USDT")
    usdt = execution.aave.token("USDT")
    wallet_before = await execution.ctx.balance(usdt)
    t = await svc.wallet_to_cex("okx", "USDT", D(300))
    assert t.status is TransferStatus.SENT and t.address == deposit_address_of("okx") and t.tx_hash
    assert (t.fee, t.debit) == (D(0), D(300))
    assert await execution.ctx.balance(usdt) == wallet_before - D(300)
    done = await svc.wait(t.id, 20)
    assert done.status is TransferStatus.CREDITED, done
    assert done.detail == "okx credited 300 USDT, moved 300 funding -> trading"
    assert okx.balance("trading", "USDT") == before + D(300) and okx.balance("funding", "USDT") == 0
    assert [(m.client_id, m.from_account, m.to_account, m.amount) for m in okx.internal_transfers] == \
        [(f"{t.id}in", "funding", "trading", D(300))]
    deposit = bridge.deposits["okx"][0]
    assert deposit.tx_hash == t.tx_hash and deposit.confirmations >= CONFIRMATIONS


@pytest.mark.parametrize("venue, path, trading, found_by", [
    ("binance", "sapi/v1/asset/transfer", "usdm", "its MAIN_UMFUTURE history"),
    ("okx", "api/v5/asset/transfer", "trading", "asset/transfer-state by clientId"),
    ("bybit", "v5/asset/transfer/inter-transfer", "unified", "query-inter-transfer-list by transferId"),
])
async def test_a_deposit_is_moved_to_the_trading_account_once(bridged, execution, tmp_path, venue, path, trading,
                                                               found_by):
    """Binance credits spot (the perps margin from USD-M: MAIN_UMFUTURE), OKX and Bybit credit funding
    (trading 18 / UNIFIED): the service moves the credit to the trading account. A restart after the
    move was made but before its answer was journaled finds it at the venue (``found_by``) and does not
    move it again."""
    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {})
    state = emulator.venues[venue]
    before = {a: state.balance(a, "USDT") for a in state.balances}
    t = await svc.wallet_to_cex(venue, "USDT", D(500))
    # the move's answer is lost: the move is made at the venue, the journal holds it as 'sending'
    emulator.add_fault(venue, path, "POST", drop_answer=True, times=1)
    move = None
    for _ in range(400):
        t = await svc.advance(t.id)
        move = svc.journal.move(f"{t.id}-in")
        if move is not None and move.status == "sending":
            break
        await asyncio.sleep(0.05)
    assert t.status is TransferStatus.SENT and move is not None and move.status == "sending"
    assert state.balance(trading, "USDT") == before[trading] + D(500)          # the venue made it
    assert svc.in_flight(venue) == [t]                                         # not booked as finished yet
    svc.journal.close()
    restarted = service(tmp_path, adapters, execution, {})
    [resumed] = await restarted.resume()
    assert resumed.status is TransferStatus.CREDITED, resumed
    found = restarted.journal.move(f"{t.id}-in")
    assert found is not None and found.detail == "found at the venue" and found.venue_id
    assert state.requests.count(("POST", path)) == 1 and len(state.internal_transfers) == 1
    assert {a: state.balance(a, "USDT") for a in state.balances} == \
        {a: before[a] + (D(500) if a == trading else D(0)) for a in state.balances}
    assert restarted.in_flight(venue) == []


async def test_withdrawal_terms_round_the_amount_and_refuse_below_the_minimum(bridged, execution, tmp_path):
    """The venue's precision and minimum, read before anything is journaled: the amount is rounded
    down with Decimal to the venue's step and journaled exactly as sent; below the minimum nothing is
    journaled or sent, and the message says why."""
    _emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {"wallet": execution.ctx.address})
    plan = await svc.plan_withdrawal("bybit", "USDT", D("25.1234567"), execution.ctx.address)
    assert (plan.amount, plan.fee, plan.terms.minimum, plan.terms.step, plan.debit) == \
        (D("25.123456"), D(1), D(5), D("0.000001"), D("26.123456"))
    assert "withdrawal fee 1 USDT on top, 26.123456 debited, 25.123456 arrives" in plan.line()
    t = await svc.cex_to_wallet("bybit", "USDT", D("25.1234567"))
    assert t.amount == D("25.123456") and t.fee == D(1)
    assert bridge.withdrawals["bybit"][0].amount == D("25.123456")
    assert (await svc.wait(t.id, 20)).status is TransferStatus.ARRIVED
    with pytest.raises(TransferRefused, match=r"4.99 USDT is below binance's minimum withdrawal of 5 USDT: nothing sent"):
        await svc.cex_to_wallet("binance", "USDT", D("4.99"))
    with pytest.raises(TransferRefused, match=r"0.0000000099 ETH is below okx's minimum withdrawal of 0.001 ETH "
                                              r"\(rounded down to its step 0.00000001: 0\): nothing sent"):
        await svc.cex_to_wallet("okx", "ETH", D("0.0000000099"))
    assert len(svc.transfers()) == 1 and not bridge.withdrawals["binance"] and not bridge.withdrawals["okx"]


async def test_cex_to_cex_moves_through_the_chain(bridged, execution, tmp_path):
    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {"okx": deposit_address_of("okx")})
    binance, okx = emulator.venues["binance"], emulator.venues["okx"]
    b0, o0 = cex_total(binance, "USDT"), okx.balance("trading", "USDT")
    done = await svc.wait((await svc.cex_to_cex("binance", "okx", "USDT", D(4000))).id, 20)
    assert done.status is TransferStatus.CREDITED, done
    # Binance debits 4000 (its fee of 1 comes out of it); OKX credits 3999 to funding, moved to trading
    assert cex_total(binance, "USDT") == b0 - D(4000) and okx.balance("trading", "USDT") == o0 + D(3999)


async def test_addresses_off_the_whitelist_are_refused_before_anything_moves(bridged, execution, tmp_path):
    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {"wallet": "0x" + "11" * 20, "okx": "0x" + "22" * 20})
    with pytest.raises(TransferRefused, match=r"refusing to withdraw to the wallet 0x7099.*not on the withdrawal "
                                              r"whitelist \(configs/transfers.yaml; wallet 0x1111"):
        await svc.cex_to_wallet("binance", "USDT", D(10))
    with pytest.raises(TransferRefused, match="not on the withdrawal whitelist"):
        await svc.cex_to_cex("binance", "okx", "USDT", D(10))
    with pytest.raises(TransferRefused, match="whitelist names 0x2222"):
        await svc.wallet_to_cex("okx", "USDT", D(10))
    assert svc.transfers() == [] and bridge.withdrawals["binance"] == []
    assert not [r for r in emulator.venues["binance"].requests if r[1].startswith("sapi/v1/capital/withdraw/apply")]
    # an exchange whose accounts configs/transfers.yaml does not name is refused, naming the key
    unnamed = dataclasses.replace(svc.settings, venue_accounts={k: v for k, v in svc.settings.venue_accounts.items()
                                                                if k != "okx"})
    bare = TransferService(svc.journal, svc.cex, svc.wallet, unnamed)
    with pytest.raises(TransferRefused, match=r"configs/transfers.yaml: venue_accounts.okx is missing"):
        await bare.wallet_to_cex("okx", "USDT", D(10))
    assert bare.transfers() == [] and bridge.deposits["okx"] == []


async def test_a_restart_resumes_in_flight_transfers_without_paying_twice(bridged, execution, tmp_path):
    """A withdrawal accepted just before a crash (journal still 'requested') is found by its client id;
    a wallet payment signed before a crash is found in the nonce ledger; both finish after the restart."""
    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {"wallet": execution.ctx.address})
    binance = emulator.venues["binance"]
    # the crash: journaled, then the venue accepted it, then the process died before recording 'sent'
    from engine.domain.transfers import Transfer, TransferKind
    t = Transfer(id="crashedwithdrawal01", kind=TransferKind.CEX_TO_WALLET, asset="USDT", amount=D(42),
                 source="binance", destination="wallet", address=execution.ctx.address,
                 status=TransferStatus.REQUESTED, created_at=1.0, updated_at=1.0, fee=D(1), fee_included=True)
    svc.journal.insert(t)
    await svc.cex["binance"].withdraw("USDT", D(42), execution.ctx.address, t.id)
    # and a wallet payment signed under its transfer label, journal still 'requested'
    p = Transfer(id="crashedpayment00001", kind=TransferKind.WALLET_TO_CEX, asset="USDT", amount=D(7),
                 source="wallet", destination="okx", address=deposit_address_of("okx"),
                 status=TransferStatus.REQUESTED, created_at=2.0, updated_at=2.0)
    svc.journal.insert(p)
    assert svc.wallet is not None
    await svc.wallet.pay("USDT", D(7), p.address, f"transfer {p.id}")
    svc.journal.close()

    restarted = service(tmp_path, adapters, execution, {"wallet": execution.ctx.address})
    assert [x.id for x in restarted.in_flight("okx")] == [p.id] and [x.id for x in restarted.in_flight("binance")] == [t.id]
    resumed = {x.id: x for x in await restarted.resume()}
    assert resumed[t.id].status is TransferStatus.SENT and resumed[p.id].status is TransferStatus.SENT
    assert (await restarted.wait(t.id, 20)).status is TransferStatus.ARRIVED
    assert (await restarted.wait(p.id, 20)).status is TransferStatus.CREDITED
    assert len(bridge.withdrawals["binance"]) == 1                # the withdrawal was not requested again
    assert len(bridge.deposits["okx"]) == 1                       # nor the payment sent again
    assert binance.requests.count(("POST", "sapi/v1/capital/withdraw/apply")) == 1


async def test_the_factory_wires_okx_and_the_wallet_from_config_and_keyring(bridged, defi, tmp_path):
    """build_transfer_service as `python main.py transfer` uses it: OKX keys and the wallet's rpc_url and key
    from the keyring, the chain's token addresses from the devchain override file, the journal beside the
    live journal; OKX (its demo environment has wallet endpoints) -> wallet and back on testnet."""
    import yaml

    from tests.integration.chain.defi import FAST_TRANSACTIONS, wallet_store
    from tests.integration.emulator import store_test_keys
    from venues.onchain.devstack.overrides import venue_overrides
    from venues.transfer_factory import build_transfer_service

    emulator, bridge, _ = bridged
    store = store_test_keys(wallet_store(defi.url), environments=("testnet",))
    override = tmp_path / "devchain.yaml"
    override.write_text(yaml.safe_dump(venue_overrides(defi.stack, transactions=FAST_TRANSACTIONS)))
    svc, close = await build_transfer_service(
        "testnet", store, cex_venues=["okx"], journal_path=tmp_path / "journal-testnet.sqlite3",
        override_file=override, url_overrides={"okx": emulator.base_url("okx")},
        extra_whitelist={"wallet": WALLET}, timeout_s=5.0, retry=RetryPolicy(attempts=2, base_delay_s=0.01),
        rate_limit_ms=1)
    try:
        assert svc.settings.confirmations == load_transfer_settings("testnet").confirmations
        svc = TransferService(svc.journal, svc.cex, svc.wallet, dataclasses.replace(svc.settings, poll_interval_s=0.05))
        out = await svc.wait((await svc.cex_to_wallet("okx", "USDT", D(250))).id, 30)
        assert out.status is TransferStatus.ARRIVED, out
        back = await svc.wait((await svc.wallet_to_cex("okx", "USDT", D(100))).id, 30)
        assert back.status is TransferStatus.CREDITED, back
        assert [t.status for t in svc.transfers()] == [TransferStatus.ARRIVED, TransferStatus.CREDITED]
    finally:
        await close()


async def test_bybit_withdraws_to_the_wallet_and_credits_a_deposit(bridged, execution, tmp_path):
    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {"wallet": execution.ctx.address})
    before = await execution.ctx.w3.eth.get_balance(execution.ctx.address)
    out = await svc.wait((await svc.cex_to_wallet("bybit", "ETH", D("1.5"))).id, 20)
    assert out.status is TransferStatus.ARRIVED, out
    assert await execution.ctx.w3.eth.get_balance(execution.ctx.address) == before + 15 * 10 ** 17
    bybit = emulator.venues["bybit"]
    # accountType UTA (what ccxt sends for a unified account): drawn from UNIFIED, the fee on top
    assert bridge.withdrawals["bybit"][0].account == "unified" and out.fee == D("0.0005") and not out.fee_included
    assert bybit.balance("unified", "ETH") == D(10) - D("1.5005")
    usdt0 = bybit.balance("unified", "USDT")
    back = await svc.wait((await svc.wallet_to_cex("bybit", "USDT", D(55))).id, 20)
    assert back.status is TransferStatus.CREDITED, back
    # credited to FUND, moved to UNIFIED with a transferId UUID
    assert bybit.balance("unified", "USDT") == usdt0 + D(55) and bybit.balance("funding", "USDT") == 0
    [move] = bybit.internal_transfers
    assert (move.from_account, move.to_account, move.amount) == ("funding", "unified", D(55))
    assert len(move.client_id) == 36 and move.client_id.count("-") == 4


async def test_a_withdrawal_whose_answer_is_lost_is_found_by_its_client_id(bridged, execution, tmp_path):
    """The venue makes the withdrawal and the connection drops before the answer: Binance is asked by
    client id and the transfer goes on (one withdrawal); Bybit cannot be asked, so the transfer fails
    saying the withdrawal may exist and is not sent again."""
    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {"wallet": execution.ctx.address})
    emulator.add_fault("binance", "sapi/v1/capital/withdraw/apply", "POST", drop_answer=True, times=1)
    t = await svc.cex_to_wallet("binance", "USDT", D(99))
    assert t.status is TransferStatus.SENT and t.withdraw_id == bridge.withdrawals["binance"][0].id
    assert (await svc.wait(t.id, 20)).status is TransferStatus.ARRIVED
    assert len(bridge.withdrawals["binance"]) == 1

    emulator.add_fault("bybit", "v5/asset/withdraw/create", "POST", drop_answer=True, times=1)
    lost = await svc.cex_to_wallet("bybit", "USDT", D(12))
    assert lost.status is TransferStatus.FAILED
    assert "cannot look it up by client id: check its withdrawal history for 12 USDT" in lost.detail
    assert len(bridge.withdrawals["bybit"]) == 1, "the venue made it; the workstation did not send it twice"


async def test_the_fee_the_venue_records_replaces_the_quote_in_the_journal(bridged, execution, tmp_path):
    """The fee changed between the quote and the withdrawal: the journal ends with the fee OKX's
    withdrawal record reports (what it debited), and says both."""
    from engine.domain.transfers import Transfer, TransferKind

    emulator, bridge, adapters = bridged
    svc = service(tmp_path, adapters, execution, {"wallet": execution.ctx.address})
    okx = emulator.venues["okx"]
    trading0 = okx.balance("trading", "USDT")
    quoted = Transfer(id="quotedfee0000000001", kind=TransferKind.CEX_TO_WALLET, asset="USDT", amount=D(100),
                      source="okx", destination="wallet", address=execution.ctx.address,
                      status=TransferStatus.REQUESTED, created_at=1.0, updated_at=1.0, fee=D(3))
    svc.journal.insert(quoted)
    done = await svc.wait(quoted.id, 20)
    assert done.status is TransferStatus.ARRIVED, done
    assert done.fee == FEES["USDT"] and done.debit == D(101)
    assert any("okx charged a fee of 1 USDT (quoted 3)" in d for _, d in svc.journal.events(quoted.id)), \
        svc.journal.events(quoted.id)
    assert bridge.withdrawals["okx"][0].fee == FEES["USDT"]
    # the move to funding was sized on the quote (103); the venue debited 101 from funding
    assert okx.balance("trading", "USDT") == trading0 - D(103) and okx.balance("funding", "USDT") == D(2)
