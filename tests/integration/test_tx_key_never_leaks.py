"""The wallet's private key appears nowhere but in the keyring: not in logs (DEBUG included), the
nonce ledger / journal file, exception text, reprs, or the crash text a traceback would print.

The scan drives the paths that produce text: successful sends, a simulation refusal, a fee-cap
refusal, a node refusing a transaction, an RPC timeout, a key that does not match the stored wallet,
and a malformed key. Every hex spelling of the key is searched for.
"""

from __future__ import annotations

import logging
import pickle
import traceback
from decimal import Decimal as D
from pathlib import Path

import pytest

from engine.domain.onchain_ports import TransactionError
from engine.domain.venue_ports import VenueError
from tests.integration.chain.defi import WALLET_KEY, open_execution, wallet_store
from tests.integration.chain.rpc_proxy import RpcProxy
from venues.credentials import Secret
from venues.onchain.tx.signer import WalletSigner

OTHER_WALLET = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # anvil account 2, not the key's address


def spellings(key: str) -> list[str]:
    bare = key.removeprefix("0x")
    return [bare.lower(), bare.upper(), "0x" + bare.lower(), bare.lower()[:32], bare.lower()[32:]]


def crash_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


async def test_private_key_never_appears_in_logs_ledger_or_errors(defi, ledger, tmp_path: Path, caplog):
    log_file = tmp_path / "debug.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    proxy = await RpcProxy(defi.url).start()
    ex = await open_execution(defi, ledger, url=proxy.url, timeout_s=0.5)
    texts: list[str] = [repr(ex), repr(ex.tm), repr(ex.tm.signer), str(ex.tm.signer), repr(ex.ctx)]
    try:
        await ex.weth.wrap(D(2))
        await ex.aave.approve("WETH", D(1))
        await ex.aave.supply("WETH", D(1))
        for attempt in (
            lambda: ex.aave.borrow("WETH", D(100)),  # simulation refusal
            lambda: ex.uniswap.swap_exact_input("WETH", "USDT", D(1), reference_price=D(10**6)),
        ):
            try:
                await attempt()
            except TransactionError as exc:
                errors.append(exc)
        proxy.fault("rpc_error", "eth_sendRawTransaction")  # node refusal
        try:
            await ex.weth.wrap(D(1))
        except TransactionError as exc:
            errors.append(exc)
        proxy.fault("hang")  # RPC timeout
        try:
            await ex.aave.account()
        except VenueError as exc:
            errors.append(exc)
        proxy.heal()
        defi.chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(500 * 10**9))  # fee cap
        defi.chain.mine()
        try:
            await ex.weth.wrap(D(1))
        except TransactionError as exc:
            errors.append(exc)
        defi.chain.rpc("anvil_setNextBlockBaseFeePerGas", hex(10**9))
        defi.chain.mine()
    finally:
        await ex.close()
        await proxy.stop()

    # A key stored beside another wallet's address, and a malformed key: refused, without echo.
    mismatched = wallet_store(defi.url, wallet=OTHER_WALLET)
    with pytest.raises(TransactionError) as info:
        WalletSigner.from_keyring(mismatched, "testnet", "alchemy")
    errors.append(info.value)
    with pytest.raises(TransactionError) as info:
        WalletSigner(Secret(WALLET_KEY[:-2] + "zz"), venue="alchemy")
    errors.append(info.value)
    with pytest.raises(TypeError):
        pickle.dumps(WalletSigner(Secret(WALLET_KEY), venue="alchemy"))

    root.removeHandler(handler)
    root.setLevel(previous_level)
    handler.close()
    assert len(errors) == 7, [type(e).__name__ for e in errors]
    for exc in errors:
        texts += [str(exc), repr(exc), crash_text(exc)]
    texts.append(log_file.read_text())
    texts += [record.getMessage() for record in caplog.records]
    assert any("weth.deposit" in t for t in texts), "the scan must see real log output"
    for path in ledger.path.parent.glob(ledger.path.name + "*"):  # the db, -wal, -shm
        texts.append(path.read_bytes().decode("latin-1"))
    haystack = "\n".join(texts)
    for form in spellings(WALLET_KEY):
        assert form not in haystack, f"private key material ({form[:6]}...) leaked"
    # The ledger did record the transactions (the scan looked at a non-empty journal).
    assert len(ledger.events()) >= 6
