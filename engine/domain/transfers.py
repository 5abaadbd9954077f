"""Transfers between an exchange account and the wallet, or between two exchanges, as engine types.

A transfer moves an asset over the chain: an exchange withdrawal pays it to an address (the wallet,
or another exchange's deposit address), the wallet pays it to an exchange's deposit address. Either
way there is a moment it leaves (the withdrawal is accepted, the wallet's transaction is final) and a
moment it lands (the wallet sees it under enough blocks; the exchange credits the deposit). The
journal records each step, so a restart resumes the transfers in flight instead of repeating them.

The ports say what the transfer service needs of an exchange (venues/cex/transfers.py, ccxt) and
of the wallet (venues/onchain/transfers.py, web3); no SDK type crosses them.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Protocol, runtime_checkable

#: the wallet as a transfer's source or destination
WALLET = "wallet"


class TransferKind(str, Enum):
    CEX_TO_WALLET = "cex_to_wallet"
    WALLET_TO_CEX = "wallet_to_cex"
    CEX_TO_CEX = "cex_to_cex"


class TransferStatus(str, Enum):
    REQUESTED = "requested"      # journaled; nothing may have left yet (a restart looks before resending)
    SENT = "sent"                # left the source: withdraw id and/or tx hash known
    ARRIVED = "arrived"          # in the wallet under enough confirmations (final)
    CREDITED = "credited"        # credited by the destination exchange (final)
    FAILED = "failed"            # final; ``detail`` says why and whether anything moved

    @property
    def final(self) -> bool:
        return self in (TransferStatus.ARRIVED, TransferStatus.CREDITED, TransferStatus.FAILED)


@dataclass(frozen=True)
class Transfer:
    """One transfer as the journal holds it."""

    id: str
    kind: TransferKind
    asset: str
    amount: Decimal
    source: str                  # a CEX venue name or WALLET
    destination: str             # a CEX venue name or WALLET
    address: str                 # where the asset is paid on chain
    status: TransferStatus
    created_at: float
    updated_at: float
    withdraw_id: str = ""        # the exchange's withdrawal id (CEX sources)
    tx_hash: str = ""            # the chain transaction that carried it
    detail: str = ""
    #: the source exchange's withdrawal fee (0 for a wallet payment: its gas is read from the chain);
    #: ``fee_included``: the venue takes it out of ``amount`` (Binance) instead of debiting it on top
    #: (OKX, Bybit)
    fee: Decimal = Decimal(0)
    fee_included: bool = False

    @property
    def debit(self) -> Decimal:
        """What leaves the source: the amount, and the fee where it is charged on top."""
        return self.amount if self.fee_included else self.amount + self.fee

    @property
    def arrives(self) -> Decimal:
        """What reaches the destination address."""
        return self.amount - self.fee if self.fee_included else self.amount


class TransferRefused(ValueError):
    """A transfer that must not be attempted (an address outside the whitelist, a bad amount); nothing
    was journaled or sent."""


@dataclass(frozen=True)
class WithdrawalState:
    """An exchange's view of one withdrawal: ``status`` "pending" | "ok" | "failed" | "canceled"."""

    withdraw_id: str
    status: str
    tx_hash: str | None
    amount: Decimal
    fee: Decimal | None = None       # as the venue's record reports it (None: not reported)


@dataclass(frozen=True)
class DepositState:
    """An exchange's view of one deposit: ``status`` "pending" (confirming) | "ok" (credited) | "failed"."""

    tx_hash: str
    status: str
    amount: Decimal


@dataclass(frozen=True)
class WithdrawalTerms:
    """What an exchange asks of one withdrawal of an asset on the chain it moves on: its ``fee``, the
    ``minimum`` amount and the amount's ``step`` (its precision)."""

    asset: str
    fee: Decimal
    minimum: Decimal
    step: Decimal
    #: the venue takes the fee out of the amount (Binance: the address receives amount - fee) rather
    #: than debiting it on top (OKX; Bybit with feeType 0, ccxt's default)
    fee_included: bool = False


@runtime_checkable
class CexTransferPort(Protocol):
    """The wallet endpoints of one exchange account."""

    @property
    def venue(self) -> str: ...

    @property
    def finds_by_client_id(self) -> bool:
        """Whether a withdrawal can be looked up by the client id it was sent with (a restart needs it
        to know whether a withdrawal it did not see acknowledged was made)."""
        ...

    async def deposit_address(self, asset: str) -> str: ...

    async def withdraw(self, asset: str, amount: Decimal, address: str, client_id: str) -> str:
        """Request the withdrawal (sent once, never retried); returns the exchange's withdrawal id."""
        ...

    async def find_withdrawal(self, asset: str, *, withdraw_id: str = "", client_id: str = "") -> WithdrawalState | None:
        ...

    async def find_deposit(self, asset: str, tx_hash: str) -> DepositState | None: ...

    async def withdrawal_terms(self, asset: str) -> WithdrawalTerms:
        """The venue's fee, minimum and precision for withdrawing ``asset`` (read before sending)."""
        ...

    def move_step(self, asset: str) -> Decimal:
        """The precision the venue (or its client) gives a move's amount (0: none): the service rounds
        to it before journaling the move, so the journal holds exactly what moved."""
        ...

    async def move(self, asset: str, amount: Decimal, from_account: str, to_account: str, client_id: str) -> str:
        """Move ``amount`` between two accounts of this exchange (sent once, never retried); returns the
        venue's transfer id. Account names are ccxt's ("spot", "linear", "funding", "trading", "unified")."""
        ...

    async def find_move(self, asset: str, amount: Decimal, from_account: str, to_account: str, client_id: str,
                        since_ms: int) -> str | None:
        """The venue's id of a move made with ``client_id`` (or, where the venue keeps no client id, of
        that amount between those accounts since ``since_ms``); None when there is none."""
        ...


@runtime_checkable
class WalletTransferPort(Protocol):
    """The wallet's side: pay an exchange, see what arrived."""

    @property
    def address(self) -> str: ...

    @property
    def confirmations(self) -> int:
        """Blocks (its own included) a transaction needs before the wallet counts it as arrived."""
        ...

    async def payment_step(self, asset: str) -> Decimal:
        """The smallest unit a payment of ``asset`` moves (one base unit of the token)."""
        ...

    async def pay(self, asset: str, amount: Decimal, to: str, label: str) -> str:
        """Send ``amount`` of ``asset`` to ``to``; returns the final transaction's hash."""
        ...

    async def find_payment(self, label: str) -> str | None:
        """The hash of a payment the wallet signed under ``label`` before a restart (None: never signed)."""
        ...

    async def arrival(self, asset: str, tx_hash: str, amount: Decimal) -> int | None:
        """Confirmations of ``tx_hash`` if it paid at least ``amount`` of ``asset`` to the wallet (None:
        not mined yet). Raises ValueError if it is mined but reverted or paid something else."""
        ...
