"""WalletTransfers: the wallet's side of CEX transfers on web3 (implements
engine.domain.transfers.WalletTransferPort).

Paying an exchange is an ordinary transaction through the wallet's TxManager (simulated, fee-capped,
signed in memory, in the nonce ledger under the transfer's label, returned once final). Detecting an
arrival reads the receipt of the exchange's withdrawal transaction: native ETH must be the
transaction's value to the wallet, an ERC-20 must be a ``Transfer`` log of the token to the wallet;
either must carry at least the amount, and count as arrived once ``confirmations`` blocks hold it.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from eth_utils import keccak

from engine.domain.onchain_ports import LedgerStatus
from venues.onchain import abi
from venues.onchain.tx.manager import TxCall
from venues.onchain.wallet import WalletContext, from_base_units, to_base_units

NATIVE = "ETH"
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")


class WalletTransfers:
    def __init__(self, ctx: WalletContext, tokens: Mapping[str, str], *, confirmations: int) -> None:
        """``tokens``: asset -> ERC-20 address of the assets that move (ETH is native)."""
        if confirmations < 1:
            raise ValueError("confirmations must be at least 1")
        self.ctx = ctx
        self.tokens = {a: ctx.reader.checksum(t) for a, t in tokens.items()}
        self._confirmations = confirmations

    @property
    def address(self) -> str:
        return self.ctx.address

    @property
    def confirmations(self) -> int:
        return self._confirmations

    def _token(self, asset: str) -> str:
        if asset not in self.tokens:
            raise ValueError(f"the wallet moves no {asset} on this chain (assets: {', '.join([NATIVE, *self.tokens])})")
        return self.tokens[asset]

    async def payment_step(self, asset: str) -> Decimal:
        """One base unit of ``asset`` (the token's decimals; ETH 18): a payment is in whole units."""
        decimals = 18 if asset == NATIVE else await self.ctx.decimals(self._token(asset))
        return Decimal(1).scaleb(-int(decimals))

    async def pay(self, asset: str, amount: Decimal, to: str, label: str) -> str:
        to = self.ctx.reader.checksum(to)
        if asset == NATIVE:
            call = TxCall(to=to, value=to_base_units(amount, 18, f"{amount} ETH"), label=label, gas_limit=21_000)
            result = await self.ctx.tm.send(call)
        else:
            token = self._token(asset)
            raw = await self.ctx.raw(token, amount, f"{amount} {asset}")
            result = await self.ctx.send(token, abi.ERC20_TRANSFER, "transfer", [to, raw], label=label)
        return result.tx_hash

    async def find_payment(self, label: str) -> str | None:
        by_label = getattr(self.ctx.tm.ledger, "by_label", None)
        if by_label is None:
            raise TypeError(f"{type(self.ctx.tm.ledger).__name__} cannot look transactions up by label")
        signed = [tx for tx in by_label(label) if tx.status is not LedgerStatus.FAILED]
        return signed[-1].tx_hash if signed else None

    async def gas_paid(self, tx_hash: str) -> float:
        """ETH the wallet paid for ``tx_hash`` (gas used x effective price; 0 before it is mined), so a
        live session books a payment's gas as gas."""
        w3 = self.ctx.w3
        receipt = await self.ctx.read(f"eth_getTransactionReceipt({tx_hash})", lambda: _receipt(w3, tx_hash))
        if receipt is None:
            return 0.0
        return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"]) / 1e18

    async def arrival(self, asset: str, tx_hash: str, amount: Decimal) -> int | None:
        w3 = self.ctx.w3
        receipt = await self.ctx.read(f"eth_getTransactionReceipt({tx_hash})", lambda: _receipt(w3, tx_hash))
        if receipt is None:
            return None
        if int(receipt["status"]) != 1:
            raise ValueError(f"transaction {tx_hash} reverted: nothing arrived")
        me = self.address.lower()
        if asset == NATIVE:
            tx = await self.ctx.read(f"eth_getTransactionByHash({tx_hash})", lambda: w3.eth.get_transaction(tx_hash))
            if str(tx.get("to") or "").lower() != me:
                raise ValueError(f"transaction {tx_hash} does not pay the wallet")
            paid = from_base_units(int(tx["value"]), 18)
        else:
            token = self._token(asset).lower()
            raw = sum(int.from_bytes(bytes(log["data"]), "big") for log in receipt["logs"]
                      if str(log["address"]).lower() == token and len(log["topics"]) == 3
                      and bytes(log["topics"][0]) == TRANSFER_TOPIC
                      and "0x" + bytes(log["topics"][2]).hex()[-40:] == me)
            paid = from_base_units(raw, await self.ctx.decimals(self._token(asset)))
        if paid < amount:
            raise ValueError(f"transaction {tx_hash} paid the wallet {paid} {asset}, less than {amount}")
        head = await self.ctx.read("eth_blockNumber", lambda: w3.eth.block_number)
        return int(head) - int(receipt["blockNumber"]) + 1


async def _receipt(w3: Any, tx_hash: str) -> Any:
    from web3.exceptions import TransactionNotFound

    try:
        return await w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return None
