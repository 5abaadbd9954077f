"""Pre-sign ticket: what an on-chain program will do, simulated on the chain's current state before
anything is signed.

A program is one or more transactions (approvals, a supply, the executor's flash-loan entry ...). The
venue layer runs all of them, in order, in one simulation of the latest block and fills a
``PreSignTicket``: the AAVE health factor and LTV before and after, what every watched token balance
of the wallet does, the gas each step uses, and the fee the transactions may pay at most. The app
shows it before a manual action; the live side calls ``refuse_below_floor`` and sends nothing whose
simulated health factor ends below its floor.

Plain data only (Decimal and int); no web3 type crosses into the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

WEI_PER_ETH = Decimal(10) ** 18
GWEI = Decimal(10) ** 9


@dataclass(frozen=True)
class TokenDelta:
    """A wallet balance before and after the program (token units; debt and aTokens included)."""

    token: str  # WETH, weETH, aweETH (collateral), variableDebtWETH (debt), ETH
    before: Decimal
    after: Decimal
    kind: str = "wallet"  # wallet | collateral | debt: a rising debt is a cost, not a gain

    @property
    def change(self) -> Decimal:
        return self.after - self.before


@dataclass(frozen=True)
class TicketStep:
    """One transaction of the program and the gas it used in the simulation."""

    label: str
    to: str
    gas_used: int
    gas_limit: int  # what it will be sent with: gas used x the configured margin
    value_wei: int = 0


@dataclass(frozen=True)
class AccountRisk:
    """The wallet's AAVE account at one point of the program (None health factor: no debt)."""

    collateral_base: Decimal  # in the Pool's base currency (USD on Ethereum)
    debt_base: Decimal
    health_factor: Decimal | None
    emode_category: int

    @property
    def ltv(self) -> Decimal:
        """Debt / collateral (what the loop targets), not the account's maximum LTV."""
        return self.debt_base / self.collateral_base if self.collateral_base else Decimal(0)


@dataclass(frozen=True)
class PreSignTicket:
    """A simulated program: risk before and after, balance deltas, gas and the fee cap."""

    program: str  # what it is, for people: "leverage entry to LTV 0.90 (morpho flash, etherfi stake)"
    chain_id: int
    wallet: str
    block_number: int  # the state simulated on (the latest block when the ticket was made)
    simulated_with: str  # eth_simulateV1
    steps: tuple[TicketStep, ...]
    before: AccountRisk | None  # None when the program does not touch AAVE
    after: AccountRisk | None
    deltas: tuple[TokenDelta, ...]
    base_fee_wei: int  # next block's base fee
    priority_fee_wei: int
    max_fee_per_gas_wei: int  # what each transaction offers at most per gas
    fee_cap_wei: int  # the configured cap (nothing above it is signed)
    digest: str  # identifies the exact calls simulated (targets, calldata, values)
    notes: tuple[str, ...] = ()  # sizing: flash amount, swap floor, bounds

    @property
    def gas_used(self) -> int:
        return sum(s.gas_used for s in self.steps)

    @property
    def gas_limit(self) -> int:
        return sum(s.gas_limit for s in self.steps)

    @property
    def expected_fee_eth(self) -> Decimal:
        """Gas used at the next block's base fee plus the tip."""
        return Decimal(self.gas_used * (self.base_fee_wei + self.priority_fee_wei)) / WEI_PER_ETH

    @property
    def max_fee_eth(self) -> Decimal:
        """The most the program can cost: every gas limit at the max fee per gas."""
        return Decimal(self.gas_limit * self.max_fee_per_gas_wei) / WEI_PER_ETH

    @property
    def hf_before(self) -> Decimal | None:
        return self.before.health_factor if self.before else None

    @property
    def hf_after(self) -> Decimal | None:
        return self.after.health_factor if self.after else None

    def delta(self, token: str) -> TokenDelta:
        for d in self.deltas:
            if d.token == token:
                return d
        raise KeyError(f"the ticket watches no token {token!r}; it watches {', '.join(d.token for d in self.deltas)}")

    def lines(self) -> list[str]:
        """The ticket as text, one fact per line (logs, the CLI, a dialog's copyable details)."""
        out = [
            f"program: {self.program}",
            f"simulated on block {self.block_number} of chain {self.chain_id} ({self.simulated_with}) "
            f"for {self.wallet}",
        ]
        if self.before is not None and self.after is not None:
            out.append(f"health factor: {format_hf(self.before.health_factor)} -> {format_hf(self.after.health_factor)}")
            out.append(f"LTV: {self.before.ltv:.4f} -> {self.after.ltv:.4f}")
            out.append(
                f"collateral: {self.before.collateral_base:,.2f} -> {self.after.collateral_base:,.2f}; "
                f"debt: {self.before.debt_base:,.2f} -> {self.after.debt_base:,.2f} (base currency)"
            )
        for d in self.deltas:
            if d.change:
                out.append(f"{d.token}: {d.before:,.6f} -> {d.after:,.6f} ({d.change:+,.6f})")
        for i, s in enumerate(self.steps, start=1):
            value = f", sends {Decimal(s.value_wei) / WEI_PER_ETH:f} ETH" if s.value_wei else ""
            out.append(f"step {i}: {s.label}: gas {s.gas_used:,} (limit {s.gas_limit:,}){value}")
        out.append(
            f"gas: {self.gas_used:,} used, {self.gas_limit:,} limit; fees: base {format_gwei(self.base_fee_wei)} "
            f"+ tip {format_gwei(self.priority_fee_wei)}, max {format_gwei(self.max_fee_per_gas_wei)} "
            f"(cap {format_gwei(self.fee_cap_wei)})"
        )
        out.append(f"cost: ~{self.expected_fee_eth:.6f} ETH expected, at most {self.max_fee_eth:.6f} ETH")
        out.extend(f"note: {n}" for n in self.notes)
        return out


class TicketRefused(Exception):
    """The simulated program breaks a limit; nothing may be signed for it."""

    def __init__(self, ticket: PreSignTicket, reason: str) -> None:
        super().__init__(f"{ticket.program}: refused before signing: {reason}")
        self.ticket = ticket
        self.reason = reason


def refuse_below_floor(ticket: PreSignTicket, hf_floor: Decimal) -> PreSignTicket:
    """Raise TicketRefused when the program leaves the health factor below ``hf_floor``.

    A program that ends without debt (health factor None) passes. One that starts below the floor
    passes only if it raises the health factor (a deleverage must stay possible when it is most
    needed); one that lowers a health factor that is already below the floor is refused too.
    """
    if not isinstance(hf_floor, Decimal):
        raise TypeError(f"hf_floor must be a Decimal, got {type(hf_floor).__name__}")
    after = ticket.hf_after
    if after is None or after >= hf_floor:
        return ticket
    before = ticket.hf_before
    if before is not None and before < hf_floor and after > before:
        return ticket
    raise TicketRefused(
        ticket,
        f"simulated health factor after the program {format_hf(after)} is below the floor {hf_floor}"
        + (f" (before: {format_hf(before)})" if before is not None else ""),
    )


def format_hf(hf: Decimal | None) -> str:
    return "∞ (no debt)" if hf is None else f"{hf:.4f}"


def format_gwei(wei: int) -> str:
    return f"{Decimal(wei) / GWEI:.3f} gwei"
