"""What every on-chain adapter shares: the wallet's TxManager and reader, token units, allowances.

Amounts cross the engine boundary as ``Decimal`` token units and become integer base units here,
rounded *down* (never more than asked is sent or approved). Allowances are exact: ``ensure_allowance``
approves precisely what the next action pulls, and when a non-zero allowance must change it is first
set to zero, because mainnet USDT reverts on changing one non-zero allowance to another.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any, Mapping

from web3 import AsyncWeb3

from engine.domain.onchain_ports import TxResult
from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.onchain import abi
from venues.onchain.reader import ChainReader
from venues.onchain.tx.manager import TxCall, TxManager

MAX_UINT256 = 2**256 - 1


def to_base_units(amount: Decimal, decimals: int, what: str, *, rounding: str = ROUND_DOWN) -> int:
    """Token units -> integer base units. Refuses floats (they would already be rounded) and dust."""
    if not isinstance(amount, Decimal) or isinstance(amount, bool):
        raise TypeError(f"{what}: amounts are Decimal token units, got {type(amount).__name__} {amount!r}")
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"{what}: amount must be a positive number, got {amount}")
    raw = int((amount * (Decimal(10) ** decimals)).to_integral_value(rounding=rounding))
    if raw == 0:
        raise ValueError(f"{what}: {amount} is below one base unit of a {decimals}-decimals token")
    return raw


def from_base_units(raw: int, decimals: int) -> Decimal:
    return Decimal(int(raw)).scaleb(-decimals)


class WalletContext:
    """The wallet's TxManager and reader plus cached token decimals; one per wallet and chain."""

    def __init__(self, tm: TxManager, reader: ChainReader) -> None:
        self.tm = tm
        self.reader = reader
        self.w3: AsyncWeb3 = reader.w3
        self._decimals: dict[str, int] = {}

    @property
    def address(self) -> str:
        return self.tm.address

    def contract(self, address: str, contract_abi: list):
        return self.w3.eth.contract(address=self.reader.checksum(address), abi=contract_abi)

    async def read(self, operation: str, fn) -> Any:
        return await self.reader.call(operation, fn)

    async def decimals(self, token: str) -> int:
        token = self.reader.checksum(token)
        if token not in self._decimals:
            contract = self.contract(token, abi.ERC20)
            self._decimals[token] = int(await self.read("decimals", contract.functions.decimals().call))
        return self._decimals[token]

    async def raw(self, token: str, amount: Decimal, what: str, *, rounding: str = ROUND_DOWN) -> int:
        return to_base_units(amount, await self.decimals(token), what, rounding=rounding)

    async def balance_raw(self, token: str, holder: str | None = None, block: int | str = "latest") -> int:
        contract = self.contract(token, abi.ERC20)
        who = self.reader.checksum(holder or self.address)
        return int(
            await self.read(
                "balanceOf", lambda: contract.functions.balanceOf(who).call(block_identifier=block)
            )
        )

    async def balance(self, token: str, holder: str | None = None, block: int | str = "latest") -> Decimal:
        return from_base_units(await self.balance_raw(token, holder, block), await self.decimals(token))

    async def allowance_raw(self, token: str, spender: str) -> int:
        contract = self.contract(token, abi.ERC20)
        return int(
            await self.read(
                "allowance", contract.functions.allowance(self.address, self.reader.checksum(spender)).call
            )
        )

    def call(
        self, to: str, contract_abi: list, function: str, args: list, *, label: str, value: int = 0
    ) -> TxCall:
        """The transaction calling ``function(*args)`` on ``to`` (not sent: programs collect these)."""
        data = self.contract(to, contract_abi).encode_abi(function, args=args)
        return TxCall(to=self.reader.checksum(to), data=data, value=value, label=label)

    async def send(
        self, to: str, contract_abi: list, function: str, args: list, *, label: str, value: int = 0
    ) -> TxResult:
        return await self.tm.send(self.call(to, contract_abi, function, args, label=label, value=value))

    async def approval_calls(self, token: str, spender: str, raw_amount: int, label: str) -> list[TxCall]:
        """The calls that leave ``spender`` allowed exactly ``raw_amount`` (none when already covered;
        a reset to 0 first when a different non-zero allowance stands)."""
        current = await self.allowance_raw(token, spender)
        if current >= raw_amount:
            return []
        spender = self.reader.checksum(spender)
        contract = self.contract(token, abi.ERC20_WRITE)
        calls = []
        if current != 0:
            calls.append(
                TxCall(
                    self.reader.checksum(token),
                    contract.encode_abi("approve", args=[spender, 0]),
                    label=f"{label}: reset allowance to 0",
                )
            )
        calls.append(
            TxCall(
                self.reader.checksum(token),
                contract.encode_abi("approve", args=[spender, raw_amount]),
                label=f"{label}: approve {raw_amount}",
            )
        )
        return calls

    async def ensure_allowance(
        self, token: str, spender: str, raw_amount: int, *, label: str
    ) -> TxResult | None:
        """Approve ``spender`` for exactly ``raw_amount`` unless the allowance already covers it."""
        result = None
        for call in await self.approval_calls(token, spender, raw_amount, label):
            result = await self.tm.send(call)
        return result

    async def send_with_allowance(
        self,
        token: str,
        spender: str,
        raw_amount: int,
        to: str,
        contract_abi: list,
        function: str,
        args: list,
        *,
        label: str,
        value: int = 0,
    ) -> TxResult:
        """Approve exactly what the action pulls, then the action; simulated together first.

        With eth_simulateV1 the approval and the action run in one simulated state, so an action that
        would revert (a swap below its floor) is refused before the approval is signed, and no stray
        allowance is left behind. Without it the approval goes first and the action is simulated after.
        """
        approvals = await self.approval_calls(token, spender, raw_amount, label)
        action = TxCall(
            to=self.reader.checksum(to),
            data=self.contract(to, contract_abi).encode_abi(function, args=args),
            value=value,
            label=label,
        )
        if approvals and await self.tm.can_simulate_program():
            await self.tm.simulate_program([*approvals, action])
        for call in approvals:
            await self.tm.send(call)
        return await self.tm.send(action)

    async def received(self, result: TxResult, token: str) -> int:
        """Base units of ``token`` transferred to the wallet in the transaction (its Transfer events)."""
        receipt = await self.read(
            "eth_getTransactionReceipt", lambda: self.w3.eth.get_transaction_receipt(result.tx_hash)
        )
        token_l = token.lower()
        me = self.address.lower()[2:]
        total = 0
        for entry in receipt["logs"]:
            topics = [_hex(t) for t in entry["topics"]]
            if (
                entry["address"].lower() == token_l
                and topics
                and topics[0] == abi.TRANSFER_TOPIC
                and len(topics) == 3
                and topics[2][-40:] == me
            ):
                total += int(_hex(entry["data"]), 16)
        return total


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def require_address(table: Mapping[str, str | None], name: str, venue: str, what: str) -> str:
    """An address from the venue config table, or a CONFIG error naming the missing entry."""
    address = table.get(name)
    if address is None:
        raise VenueError(
            venue,
            VenueErrorKind.CONFIG,
            f"{what} {name!r} has no address in this environment (configs/venues/{venue}.yaml)",
        )
    return AsyncWeb3.to_checksum_address(address)


def round_up_units(amount: Decimal, decimals: int) -> int:
    return int((amount * (Decimal(10) ** decimals)).to_integral_value(rounding=ROUND_UP))
