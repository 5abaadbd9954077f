"""A small synchronous client for deploying and administering the local chain.

The deployment sends ~90 transactions from anvil's unlocked accounts. Each goes out with an explicit
gas limit (no ``eth_estimateGas``, which would execute it twice) and, with anvil's automine, its
receipt is there as soon as the send returns, so the whole stack deploys in about a second. A
failed transaction is replayed with ``eth_call`` on the state before it to say why it reverted.

This is admin tooling for a chain we own; the workstation's own transactions go through
venues.onchain.tx (signed locally, simulated, fee-capped), never through this.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import requests
from eth_utils import to_checksum_address
from eth_utils.abi import get_abi_output_types
from web3 import Web3
from web3.utils.abi import get_abi_element

from venues.onchain.tx.reverts import decode_revert

DEFAULT_GAS = 16_000_000  # under the EIP-7825 per-transaction cap (2**24)


class DevChainError(RuntimeError):
    """A JSON-RPC error or a failed admin transaction on the local chain."""


class DevChain:
    """JSON-RPC to the local node, with contract encoding from web3 (no provider of its own)."""

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.codec = Web3()  # offline: ABI encoding/decoding only
        self._ids = itertools.count(1)
        self.transactions = 0

    # -- raw RPC ---------------------------------------------------------------------------------------
    def rpc(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        response = self.session.post(self.url, json=body, timeout=self.timeout_s)
        response.raise_for_status()
        payload = response.json()
        if "error" in payload:
            error = payload["error"]
            raise DevChainError(
                f"{method}: {error.get('message')} (code {error.get('code')})"
                + (f" data={error['data']}" if error.get("data") else "")
            )
        return payload["result"]

    def close(self) -> None:
        self.session.close()

    # -- contracts -------------------------------------------------------------------------------------
    def contract(self, abi: list, address: str | None = None):
        if address is None:
            return self.codec.eth.contract(abi=abi)
        return self.codec.eth.contract(abi=abi, address=to_checksum_address(address))

    def encode(self, contract, function: str, *args: Any) -> str:
        return contract.encode_abi(function, args=list(args))

    def call(self, contract, function: str, *args: Any, block: str = "latest") -> Any:
        """A view call; ``function`` is a name or, for overloads, a signature (``mint(address,uint256)``)."""
        element = get_abi_element(contract.abi, function, *args, abi_codec=self.codec.codec)
        data = self.encode(contract, function, *args)
        raw = self.rpc("eth_call", {"to": contract.address, "data": data}, block)
        types = get_abi_output_types(element)
        values = [
            to_checksum_address(v) if t == "address" else v
            for t, v in zip(types, self.codec.codec.decode(types, bytes.fromhex(raw[2:])))
        ]
        return values[0] if len(values) == 1 else tuple(values)

    # -- transactions ----------------------------------------------------------------------------------
    def send(
        self,
        sender: str,
        to: str | None,
        data: str = "0x",
        *,
        value: int = 0,
        gas: int = DEFAULT_GAS,
        what: str = "",
    ) -> dict:
        tx: dict[str, Any] = {"from": sender, "data": data, "gas": hex(gas), "value": hex(value)}
        if to is not None:
            tx["to"] = to
        tx_hash = self.rpc("eth_sendTransaction", tx)
        self.transactions += 1
        receipt = self.receipt(tx_hash, what=what)
        if int(receipt["status"], 16) != 1:
            raise DevChainError(f"{what or tx_hash} reverted: {self._why(tx, receipt)}")
        return receipt

    def receipt(self, tx_hash: str, *, what: str = "", timeout_s: float = 10.0) -> dict:
        """The receipt, polled: anvil's automine answers the send first and mines right after."""
        deadline = time.monotonic() + timeout_s
        delay = 0.0005
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise DevChainError(
                    f"{what or tx_hash}: no receipt after {timeout_s:g}s (is anvil mining? "
                    "automine must be on while deploying)"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _why(self, tx: dict, receipt: dict) -> str:
        before = hex(int(receipt["blockNumber"], 16) - 1)
        call = {k: v for k, v in tx.items() if k != "gas"}
        try:
            self.rpc("eth_call", call, before)
        except DevChainError as exc:
            text = str(exc)
            if " data=" in text:
                return decode_revert(text.split(" data=", 1)[1]).message
            return text
        return f"out of gas or reverted without data (gas used {int(receipt['gasUsed'], 16)})"

    def transact(
        self, sender: str, contract, function: str, *args: Any, value: int = 0, gas: int = DEFAULT_GAS
    ) -> dict:
        return self.send(
            sender,
            contract.address,
            self.encode(contract, function, *args),
            value=value,
            gas=gas,
            what=f"{function}({', '.join(_short(a) for a in args)})",
        )

    def deploy(self, sender: str, abi: list, bytecode: str, *args: Any, what: str = "") -> str:
        data = self.codec.eth.contract(abi=abi, bytecode=bytecode).constructor(*args).data_in_transaction
        receipt = self.send(sender, None, data, what=f"deploy {what}")
        return to_checksum_address(receipt["contractAddress"])

    # -- anvil admin -------------------------------------------------------------------------------------
    def accounts(self) -> list[str]:
        return [to_checksum_address(a) for a in self.rpc("eth_accounts")]

    def set_balance(self, address: str, wei: int) -> None:
        self.rpc("anvil_setBalance", address, hex(wei))

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def increase_time(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", hex(seconds))

    def snapshot(self) -> str:
        return self.rpc("evm_snapshot")

    def revert(self, snapshot_id: str) -> bool:
        return bool(self.rpc("evm_revert", snapshot_id))

    def block(self, tag: str = "latest") -> dict:
        return self.rpc("eth_getBlockByNumber", tag, False)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 20 else text[:10] + "…"
