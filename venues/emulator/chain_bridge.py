"""The exchange emulator's bridge to a chain: real withdrawals out of a hot wallet, real deposits in.

A real exchange pays withdrawals from a hot wallet and credits a deposit once the chain holds it
under enough blocks. The bridge does both on the local chain (anvil), so the workstation's transfer
path is exercised end to end with the real ccxt client on one side and real web3 on the other:

- a withdrawal debits the venue balance at once, then the hot wallet signs and sends a native ETH
  transfer or an ERC-20 ``transfer`` to the address; the record turns ``completed`` with its tx hash
  once the transaction is mined (``failed``, balance refunded, if it reverts or cannot be sent);
- each venue has one deposit address (a fixed, key-less address derived from the venue's name: the
  emulator never spends from it). A poll of the chain finds native ETH sent to it and ERC-20
  ``Transfer`` logs to it; the deposit is ``pending`` until ``confirmations`` blocks hold it, then it
  is credited to the venue's wallet account (OKX and Bybit: funding; Binance: spot), as the real
  venues credit deposits;
- a withdrawal is charged the configured fee per asset (``fees``) on top of its amount, and refused
  below the configured minimum (``minimums``), and both are reported where the venues report them.

Only the emulator uses this module; nothing in the workstation imports it.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3

NATIVE = "ETH"
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
_ERC20 = [
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
]


def deposit_address_of(venue: str) -> str:
    """The venue's deposit address: an address no one holds the key of (derived from a hash)."""
    return to_checksum_address(keccak(text=f"basis-emulator-deposit/{venue}")[-20:])


@dataclass
class Withdrawal:
    id: str
    venue: str
    asset: str
    amount: Decimal
    address: str
    client_id: str
    created_ms: int
    status: str = "processing"          # processing | completed | failed
    tx_hash: str = ""
    fee: Decimal = Decimal(0)
    updated_ms: int = 0
    error: str = ""
    fee_included: bool = False          # Binance: the address receives amount - fee
    account: str = ""

    @property
    def debit(self) -> Decimal:
        return self.amount if self.fee_included else self.amount + self.fee

    @property
    def on_chain(self) -> Decimal:
        return self.amount - self.fee if self.fee_included else self.amount


@dataclass
class Deposit:
    venue: str
    asset: str
    amount: Decimal
    address: str
    tx_hash: str
    block: int
    created_ms: int
    confirmations: int = 0
    credited: bool = False


@dataclass
class _Token:
    address: str
    decimals: int


class ChainBridge:
    """Withdrawals and deposits of every emulated venue, on one chain.

    ``tokens``: asset -> ERC-20 address of the assets the venues move (ETH is native and needs none).
    ``hot_wallet_key`` signs the withdrawals; fund its address with ETH (gas, ETH withdrawals) and the
    tokens. ``confirmations``: blocks (the deposit's own included) before a deposit is credited.
    """

    def __init__(self, rpc_url: str, hot_wallet_key: str, tokens: Mapping[str, str], *, confirmations: int = 2,
                 poll_s: float = 0.1, fees: Mapping[str, Decimal] | None = None,
                 minimums: Mapping[str, Decimal] | None = None) -> None:
        if confirmations < 1:
            raise ValueError("confirmations must be at least 1")
        self.rpc_url = rpc_url
        self.w3: Any = AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
        self._account = Account.from_key(hot_wallet_key)
        self.hot_wallet = self._account.address
        self._token_addresses = {a: to_checksum_address(t) for a, t in tokens.items()}
        self._tokens: dict[str, _Token] = {}
        self.confirmations = confirmations
        self.poll_s = poll_s
        #: asset -> fee per withdrawal (every venue on this chain; a test may set one venue's own by
        #: replacing it) and asset -> minimum withdrawal amount
        self.fees: dict[str, Decimal] = dict(fees or {})
        self.minimums: dict[str, Decimal] = dict(minimums or {})
        self.withdrawals: dict[str, list[Withdrawal]] = {}
        self.deposits: dict[str, list[Deposit]] = {}
        self._venues: dict[str, Any] = {}             # venue name -> VenueState
        self._ids = itertools.count(7_000_001)
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._poller: asyncio.Task | None = None
        self._scanned: int | None = None
        self.errors: list[str] = []                   # poll failures, for a test or a log to read

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self, venues: Mapping[str, Any]) -> None:
        """Serve these VenueStates (name -> state): start scanning from the current head."""
        for asset, address in self._token_addresses.items():
            decimals = await self.w3.eth.contract(address=address, abi=_ERC20).functions.decimals().call()
            self._tokens[asset] = _Token(address, int(decimals))
        self._venues = dict(venues)
        for name, state in self._venues.items():
            state.chain = self
            self.withdrawals.setdefault(name, [])
            self.deposits.setdefault(name, [])
        self._scanned = await self.w3.eth.block_number
        self._poller = asyncio.ensure_future(self._poll_loop())

    async def stop(self) -> None:
        tasks = [t for t in (self._poller, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._poller = None
        await self.w3.provider.disconnect()

    # -- what the dialects call --------------------------------------------------------------------
    def assets(self) -> list[str]:
        return [NATIVE, *self._tokens]

    def deposit_address(self, venue: str) -> str:
        return deposit_address_of(venue)

    def withdrawal_fee(self, asset: str) -> Decimal:
        """The fee a venue charges per withdrawal of ``asset`` on this chain (0 unless configured)."""
        return self.fees.get(asset, Decimal(0))

    def withdraw(self, state: Any, asset: str, amount: Decimal, address: str, client_id: str = "",
                 fee: Decimal | None = None, account: str | None = None, fee_included: bool = False) -> Withdrawal:
        """Debit ``account`` (default: the venue's wallet account) by the amount and the fee now and
        send the amount on chain in the background. Raises ValueError (unknown asset, bad address,
        below the minimum, insufficient balance) before anything is debited."""
        if asset not in self.assets():
            raise ValueError(f"{asset} cannot be withdrawn on this chain (assets: {', '.join(self.assets())})")
        try:
            to = to_checksum_address(address)
        except ValueError:
            raise ValueError(f"invalid address {address!r}") from None
        if amount <= 0:
            raise ValueError("amount must be positive")
        if amount < self.minimums.get(asset, Decimal(0)):
            raise ValueError(f"amount below the minimum withdrawal {self.minimums[asset]}")
        fee = self.withdrawal_fee(asset) if fee is None else fee
        account = state.wallet_account if account is None else account
        if fee_included and amount <= fee:
            raise ValueError(f"amount below the withdrawal fee {fee}")
        if account not in state.balances:
            raise ValueError(f"unknown account {account}")
        record = Withdrawal(str(next(self._ids)), state.name, asset, amount, to, client_id, state.now_ms(), fee=fee,
                            fee_included=fee_included, account=account)
        if state.balance(account, asset) - state.locked(account, asset) < record.debit:
            raise ValueError("insufficient balance")
        state.balances[account][asset] = state.balance(account, asset) - record.debit
        record.updated_ms = record.created_ms
        self.withdrawals.setdefault(state.name, []).append(record)
        task = asyncio.ensure_future(self._send(state, account, record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return record

    # -- internals ---------------------------------------------------------------------------------
    async def _send(self, state: Any, account: str, record: Withdrawal) -> None:
        try:
            async with self._send_lock:         # one nonce sequence for the hot wallet
                tx: dict[str, Any] = {"from": self.hot_wallet, "chainId": await self.w3.eth.chain_id,
                                      "nonce": await self.w3.eth.get_transaction_count(self.hot_wallet, "pending")}
                block = await self.w3.eth.get_block("latest")
                tip = 10 ** 9
                tx.update(maxPriorityFeePerGas=tip, maxFeePerGas=2 * int(block["baseFeePerGas"]) + tip)
                if record.asset == NATIVE:
                    tx.update(to=record.address, value=int(record.on_chain.scaleb(18)), gas=21_000)
                else:
                    token = self._tokens[record.asset]
                    contract = self.w3.eth.contract(address=token.address, abi=_ERC20)
                    tx.update(to=token.address, value=0, gas=100_000,
                              data=contract.encode_abi("transfer", args=[record.address,
                                                                         int(record.on_chain.scaleb(token.decimals))]))
                signed = self._account.sign_transaction(tx)
                tx_hash = await self.w3.eth.send_raw_transaction(signed.raw_transaction)
            record.tx_hash = "0x" + bytes(tx_hash).hex().removeprefix("0x")
            receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=600, poll_latency=self.poll_s)
            if receipt["status"] != 1:
                raise RuntimeError("the withdrawal transaction reverted")
            record.status = "completed"
        except asyncio.CancelledError:
            raise
        except Exception as exc:        # noqa: BLE001 - any failure fails the withdrawal and refunds it
            record.status, record.error = "failed", str(exc) or type(exc).__name__
            state.balances[account][record.asset] = state.balance(account, record.asset) + record.debit
        record.updated_ms = state.now_ms()

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:    # noqa: BLE001 - a failed poll is retried; the error is kept
                self.errors.append(str(exc) or type(exc).__name__)
            await asyncio.sleep(self.poll_s)

    async def _poll(self) -> None:
        head = await self.w3.eth.block_number
        assert self._scanned is not None
        if head > self._scanned:
            await self._scan(self._scanned + 1, head)
            self._scanned = head
        for venue, deposits in self.deposits.items():
            state = self._venues[venue]
            for d in deposits:
                if d.credited:
                    continue
                d.confirmations = head - d.block + 1
                if d.confirmations >= self.confirmations:
                    account = state.wallet_account
                    state.balances[account][d.asset] = state.balance(account, d.asset) + d.amount
                    d.credited = True

    async def _scan(self, first: int, last: int) -> None:
        by_address = {deposit_address_of(v).lower(): v for v in self._venues}
        now_ms = int(time.time() * 1000)
        for number in range(first, last + 1):
            block = await self.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                to = (tx.get("to") or "").lower()
                if to in by_address and int(tx["value"]) > 0:
                    receipt = await self.w3.eth.get_transaction_receipt(tx["hash"])
                    if receipt["status"] == 1:
                        self._found(by_address[to], NATIVE, Decimal(int(tx["value"])).scaleb(-18), to, tx["hash"],
                                    number, now_ms)
        if not self._tokens:
            return
        topics_to = ["0x" + "0" * 24 + a.removeprefix("0x") for a in by_address]
        logs = await self.w3.eth.get_logs({"fromBlock": first, "toBlock": last,
                                           "address": [t.address for t in self._tokens.values()],
                                           "topics": [TRANSFER_TOPIC, None, topics_to]})
        asset_of = {t.address.lower(): (a, t) for a, t in self._tokens.items()}
        for log in logs:
            asset, token = asset_of[str(log["address"]).lower()]
            to = "0x" + bytes(log["topics"][2]).hex()[-40:]
            raw = int.from_bytes(bytes(log["data"]), "big")
            self._found(by_address[to], asset, Decimal(raw).scaleb(-token.decimals), to, log["transactionHash"],
                        int(log["blockNumber"]), now_ms)

    def _found(self, venue: str, asset: str, amount: Decimal, address: str, tx_hash: Any, block: int,
               now_ms: int) -> None:
        hx = "0x" + bytes(tx_hash).hex().removeprefix("0x")
        self.deposits[venue].append(Deposit(venue, asset, amount, to_checksum_address(address), hx, block, now_ms))

