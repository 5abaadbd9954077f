"""Ports a live session needs from the chain and from the transfer service, in engine terms.

A live session books what the strategy owns (its *book*); the chain and the venues stay the truth.
For the on-chain wallet the session never guesses what an instruction did: it reads the wallet's
holdings before and after (``ChainHoldings``, in the engine's token names: ``ETH`` is native ETH plus
WETH, AAVE positions as scaled balances) and books the difference. Anything the wallet held that the
strategy does not own (gas money, a foreign balance) therefore never enters the book.

``TransferPort`` is "move asset A from venue X to venue Y" (CEX -> wallet withdrawals, wallet -> CEX
deposits, CEX -> CEX). Its implementation lives in the transfer service; where none is installed the
session refuses a transfer step clearly instead of pretending it happened.

Plain data only (floats, Decimal, str): no web3 or ccxt type crosses into the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, Sequence, runtime_checkable

from engine.domain.instructions import Instruction
from engine.domain.presign import PreSignTicket

CHAIN_TOLERANCE = 1e-9  # relative: what separates "equal" from "different" for chain balances in token units


@dataclass(frozen=True)
class ChainHoldings:
    """The wallet on one chain at one block, in the engine's terms."""

    chain: str  # the venue name of the chain ("ethereum")
    block_number: int
    tokens: dict[str, float]  # free wallet balances: ETH (native + WETH), USDT, wstETH, weETH ...
    supply_scaled: dict[str, float]  # AAVE aToken scaled balances (token units)
    debt_scaled: dict[str, float]  # AAVE variable-debt scaled balances
    emode: bool
    health_factor: float | None  # None: no debt
    # The same positions in underlying units (scaled x the chain's index now). The book converts a
    # change with its own market view's index, so valuing it moves no money.
    supply: dict[str, float] = field(default_factory=dict)
    debt: dict[str, float] = field(default_factory=dict)

    def minus(self, other: "ChainHoldings") -> "ChainHoldings":
        """What changed from ``other`` to this (used as the booked delta of one instruction)."""

        def diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
            return {k: a.get(k, 0.0) - b.get(k, 0.0) for k in set(a) | set(b)}

        return ChainHoldings(self.chain, self.block_number, diff(self.tokens, other.tokens),
                             diff(self.supply_scaled, other.supply_scaled),
                             diff(self.debt_scaled, other.debt_scaled), self.emode, self.health_factor,
                             diff(self.supply, other.supply), diff(self.debt, other.debt))

    def is_empty(self) -> bool:
        return not any(any(v for v in d.values()) for d in (self.tokens, self.supply, self.debt))


@dataclass(frozen=True)
class ChainStep:
    """What one instruction did on chain: its transactions (final), the gas they burned."""

    gas_eth: float
    tx_hashes: tuple[str, ...] = ()
    note: str = ""  # e.g. "fell back to AAVE flashLoanSimple: Morpho Blue holds 0 WETH"
    ticket: PreSignTicket | None = None


@dataclass(frozen=True)
class PendingChainTx:
    """A transaction signed by this wallet and not final yet."""

    chain: str
    nonce: int
    tx_hash: str
    label: str


@dataclass(frozen=True)
class ChainCancelResult:
    """One pending transaction the e-stop offered to cancel, and what became of it."""

    chain: str
    nonce: int
    outcome: str  # "cancelled" | "mined first" | "failed: ..." | "timeout"
    elapsed_ms: float
    tx_hash: str | None = None


@runtime_checkable
class OnchainInstructionPort(Protocol):
    """The wallet's write side on one chain, for engine instructions (venue layer implements it)."""

    @property
    def chain(self) -> str: ...

    @property
    def wallet(self) -> str: ...

    async def holdings(self) -> ChainHoldings: ...

    async def execute(self, ins: Instruction, *, hf_floor: Decimal, target_ltv: float | None) -> ChainStep:
        """Execute one on-chain instruction (a BUNDLE is one atomic executor transaction). Raises the
        venue layer's TransactionError (a VenueError) when it does not complete."""
        ...

    def halt(self, reason: str) -> None:
        """Nothing new is signed from now on (synchronous: the e-stop calls it inside the press)."""
        ...

    def resume(self) -> None: ...

    def pending(self) -> list[PendingChainTx]: ...

    async def cancel(self, nonce: int) -> ChainCancelResult:
        """Replace the pending transaction at ``nonce`` by a 0-value self-transfer with bumped fees."""
        ...

    async def close(self) -> None: ...


class TransferUnavailable(RuntimeError):
    """No transfer service can move this asset between these venues here (said plainly)."""


@dataclass(frozen=True)
class TransferReceipt:
    """A transfer that has arrived: what left the source and what the destination credited."""

    asset: str
    source: str
    destination: str
    sent: Decimal
    received: Decimal
    fee: Decimal = Decimal(0)
    reference: str = ""  # withdrawal id / tx hash
    gas_eth: float = 0.0  # a wallet -> CEX deposit pays gas


@runtime_checkable
class TransferPort(Protocol):
    """Move ``amount`` of ``asset`` from venue ``source`` to venue ``destination`` ("wallet" for the
    on-chain address) and wait until it is credited there."""

    async def transfer(self, asset: str, amount: Decimal, source: str, destination: str) -> TransferReceipt: ...


@dataclass
class NoTransfers:
    """The transfer port when no transfer service is installed: every move is refused, naming it."""

    venues: Sequence[str] = field(default_factory=tuple)

    async def transfer(self, asset: str, amount: Decimal, source: str, destination: str) -> TransferReceipt:
        raise TransferUnavailable(
            f"moving {amount} {asset} from {source} to {destination} needs the transfer service, which this "
            "build does not have: move it by hand, then acknowledge the difference")


@dataclass(frozen=True)
class SimulatedChainStep:
    """One on-chain instruction of a plan, simulated on the chain after the plan's earlier steps.

    ``before`` / ``after`` are the wallet as the simulation reads it around the step, in the book's
    terms (``after`` with the step's expected gas already taken off ETH), so the engine can book the
    step exactly as the router books a real one and size the plan's next instruction from it."""

    ticket: PreSignTicket
    before: ChainHoldings
    after: ChainHoldings
    gas_eth: float


@runtime_checkable
class ChainPlanSimulation(Protocol):
    """A plan of on-chain instructions simulated one after another on one pinned block."""

    @property
    def block_number(self) -> int | None: ...

    async def add(self, ins: Instruction) -> SimulatedChainStep:
        """Simulate ``ins`` after every instruction added before it. Raises the venue layer's
        TransactionError (a VenueError) when the simulation reverts, ValueError when the instruction
        cannot be planned (nothing to unwind, not a step a plan knows)."""
        ...


@runtime_checkable
class OnchainPreviewPort(Protocol):
    """An on-chain port that can simulate a plan before anything is signed (the flatten preview)."""

    def plan_simulation(self, *, hf_floor: Decimal, target_ltv: float | None) -> ChainPlanSimulation: ...
