"""Routing a live strategy program's on-chain instructions (and wallet transfers) to the chain.

The live executor sends CEX trades through the OrderGate; every instruction whose venue is on-chain
(AAVE, Lido, ether.fi, Uniswap, the flash-loan bundles) comes here, as do transfers that touch the
wallet. The router

1. checks the trading state (REDUCING lets only risk-reducing instructions through, HALTED none)
   and the pending-transaction hold (nothing that adds risk while a wallet transaction is pending),
   with no await before the port is called;
2. reads the wallet's holdings from the chain, has the venue layer execute the instruction (a BUNDLE
   is one atomic executor transaction, simulated first and refused below the HF floor), and reads
   the holdings again;
3. books exactly what changed on chain into the strategy's book, so the book's wallet keeps matching
   the chain by construction, and prices the step: its execution cost is the value the book lost
   beyond the gas (slippage, pool fee, flash premium, rounding), so attribution reconciles.

A step that fails part-way (a program of several transactions whose third reverts) still changed the
chain: the router books what did change, charges it to execution costs and gas in the ledger, and
re-raises, so the program stops with the book matching the chain and the progress list saying which
steps completed and which did not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from engine.components.valuation import value_usd
from engine.domain.instructions import WALLET, Fill, Instruction, Op
from engine.domain.market import MarketView
from engine.domain.numeraire import Numeraire
from engine.domain.onchain_live import (
    ChainHoldings,
    NoTransfers,
    OnchainInstructionPort,
    TransferPort,
    TransferReceipt,
)
from engine.domain.params import RunParams
from engine.domain.portfolio import Portfolio
from engine.execution.ledger import Ledger
from engine.services.live.pending_tx_hold import PendingTxHold
from engine.services.live.state import TradingStateMachine

#: Instructions the chain executes (everything but CEX trades and transfers).
ONCHAIN_OPS = frozenset({Op.APPROVE, Op.SET_EMODE, Op.SUPPLY, Op.WITHDRAW, Op.BORROW, Op.REPAY, Op.STAKE,
                         Op.SWAP, Op.BUNDLE, Op.FLASH_BORROW, Op.FLASH_REPAY})
_SCALED = {Op.SUPPLY: "supply", Op.WITHDRAW: "supply", Op.BORROW: "debt", Op.REPAY: "debt"}


class OnchainRefused(RuntimeError):
    """The venue layer refused an on-chain instruction before signing anything (a plan that cannot
    be made: nothing to deleverage, a bundle it does not know)."""


def engine_token(token: str) -> str:
    """The book's name of a token: AAVE's WETH reserve and native ETH are both the wallet's ETH."""
    return "ETH" if token in ("ETH", "WETH") else token


def routes_onchain(ins: Instruction) -> bool:
    return ins.op in ONCHAIN_OPS


def touches_wallet(ins: Instruction) -> bool:
    return ins.op is Op.TRANSFER and WALLET in (ins.venue, ins.to_venue)


@dataclass(frozen=True)
class StepRecord:
    """One on-chain instruction of a program, as it ended (the consistent, reported state)."""

    op: str
    venue: str
    what: str
    status: str  # "done" | "failed"
    tx_hashes: tuple[str, ...] = ()
    gas_eth: float = 0.0
    detail: str = ""
    at: float = 0.0


@dataclass
class ProgramProgress:
    """The on-chain steps of the current program: what was done and what stopped it."""

    steps: list[StepRecord] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{s.status:6} {s.what}" + (f" ({', '.join(h[:10] for h in s.tx_hashes)})" if s.tx_hashes else "")
                + (f": {s.detail}" if s.detail else "") for s in self.steps]


StepHook = Callable[[StepRecord], None]


def _describe(ins: Instruction) -> str:
    if ins.op is Op.BUNDLE:
        kids = "+".join(c.op.value for c in ins.children)
        return f"{ins.venue} atomic bundle ({kids})"
    if ins.op is Op.SWAP:
        return f"{ins.venue} swap {ins.amount:.8g} {ins.asset} -> {ins.to_asset}"
    if ins.op is Op.TRANSFER:
        return f"transfer {ins.amount:.8g} {ins.asset} {ins.venue} -> {ins.to_venue}"
    return f"{ins.venue} {ins.op.value} {ins.amount:.8g} {ins.asset}".rstrip()


class OnchainRouter:
    """Executes on-chain instructions for one live session through an ``OnchainInstructionPort``."""

    def __init__(self, port: OnchainInstructionPort, portfolio: Portfolio, market: MarketView, params: RunParams,
                 state: TradingStateMachine, ledger: Ledger, numeraire: Numeraire, *, hf_floor: float,
                 transfers: TransferPort | None = None, on_step: StepHook | None = None,
                 hold: PendingTxHold | None = None) -> None:
        self.port = port
        self.hold = hold      # new risk waits while a transaction of the wallet is pending
        self.portfolio = portfolio
        self.mv = market
        self.params = params
        self.state = state
        self.ledger = ledger
        self.numeraire = numeraire
        self.hf_floor = Decimal(repr(hf_floor))
        self.transfers: TransferPort = transfers if transfers is not None else NoTransfers()
        self.on_step = on_step
        self.progress = ProgramProgress()
        self.last_holdings: ChainHoldings | None = None

    # ------------------------------------------------------------------ instructions
    async def execute(self, ins: Instruction, t: int, *, reducing: bool) -> Fill:
        self.state.check(reducing, f"{ins.venue} {ins.op.value}")
        if self.hold is not None:
            self.hold.check(reducing, f"{ins.venue} {ins.op.value}")
        before = await self.port.holdings()
        try:
            step = await self.port.execute(ins, hf_floor=self.hf_floor,
                                           target_ltv=self.params.strategy.target_ltv or None)
        except ValueError as exc:           # nothing was signed: the plan itself was refused
            self._record(StepRecord(ins.op.value, ins.venue, _describe(ins), "failed", detail=str(exc),
                                    at=time.time()))
            raise OnchainRefused(f"{ins.venue} {ins.op.value}: {exc}") from None
        except Exception as exc:
            after = await self.port.holdings()
            self._book_partial(before, after, t)
            self._record(StepRecord(ins.op.value, ins.venue, _describe(ins), "failed",
                                    tuple(getattr(exc, "completed_hashes", ()) or ()), 0.0, str(exc), time.time()))
            raise
        after = await self.port.holdings()
        fill = self._book(ins, before, after, step.gas_eth, t)
        self._record(StepRecord(ins.op.value, ins.venue, _describe(ins), "done", step.tx_hashes, step.gas_eth,
                                step.note, time.time()))
        return fill

    def book_simulated(self, ins: Instruction, before: ChainHoldings, after: ChainHoldings, gas_eth: float,
                       t: int) -> Fill:
        """Book a step the chain only simulated (a flatten preview's copy of the book), exactly as a
        real step is booked, so the plan's next instruction is sized from what the chain would do."""
        return self._book(ins, before, after, gas_eth, t)

    async def transfer(self, ins: Instruction, t: int) -> Fill:
        """A transfer that touches the wallet, through the transfer port (refused when none exists)."""
        self.state.check(True, f"{ins.venue} -> {ins.to_venue} transfer")
        before = await self.port.holdings()
        try:
            receipt = await self.transfers.transfer(ins.asset, Decimal(repr(ins.amount)), ins.venue, ins.to_venue)
        except Exception as exc:
            self._record(StepRecord("transfer", ins.venue, _describe(ins), "failed", detail=str(exc), at=time.time()))
            raise
        after = await self.port.holdings()
        fill = self._book_transfer(ins, receipt, before, after, t)
        self._record(StepRecord("transfer", ins.venue, _describe(ins), "done",
                                (receipt.reference,) if receipt.reference else (), receipt.gas_eth,
                                f"received {receipt.received} {receipt.asset}"
                                + (f" (fee {receipt.fee} {receipt.asset})" if receipt.fee else ""), time.time()))
        return fill

    async def book_chain_since_last(self, t: int, component: str = "gas") -> None:
        """Book what changed on chain since the last booked step (the gas of the e-stop's cancels, or a
        pending transaction that was mined before its cancel), its value change charged to
        ``component``, so the book keeps matching the chain."""
        if self.last_holdings is None:
            return
        before, after = self.last_holdings, await self.port.holdings()
        v0 = value_usd(self.portfolio, self.mv, t)
        self._apply(self._without_interest(after.minus(before), t), after, t)
        lost = v0 - value_usd(self.portfolio, self.mv, t)
        if lost:
            self.ledger.book(component, -self.numeraire.from_usd(lost, t))

    def adopt(self, journaled: ChainHoldings, found: ChainHoldings, t: int) -> None:
        """Book what changed on chain between the journal's last record and now (restart recovery,
        after the operator's acknowledgement), so the resumed book matches the chain."""
        self._apply(self._without_interest(found.minus(journaled), t), found, t)

    def _without_interest(self, delta: ChainHoldings, t: int) -> ChainHoldings:
        """``delta`` with its AAVE changes taken from the *scaled* balances (at the book's index).

        Between two reads far apart (the record written after the last step, hours before a crash
        or an e-stop's cancel, and now) the underlying amounts also grew by the interest of the whole
        gap, which the book's scaled balances already earn through the index: booking the underlying
        change would count that interest a second time (more debt and more supply than the chain
        holds). A step's own before/after are read moments apart, so there the underlying change is
        the step itself and is booked as it is."""
        supply = {r: d * self.mv.supply_index[r][t] if r in self.mv.supply_index else delta.supply.get(r, 0.0)
                  for r, d in delta.supply_scaled.items()}
        debt = {r: d * self.mv.borrow_index[r][t] if r in self.mv.borrow_index else delta.debt.get(r, 0.0)
                for r, d in delta.debt_scaled.items()}
        return replace(delta, supply=supply, debt=debt)

    def start_program(self) -> None:
        self.progress = ProgramProgress()

    # ------------------------------------------------------------------ booking
    def _apply(self, delta: ChainHoldings, after: ChainHoldings, t: int) -> None:
        """Book a change read from the chain. AAVE positions move by the underlying amount that changed,
        scaled with the book's own index, so the change is valued at exactly what it is worth now.
        A position the chain closed completely is closed in the book too (no index dust left)."""
        w = self.portfolio.wallet
        for token, change in delta.tokens.items():
            if change:
                w.add(token, change)
        for book, changes, closed, index in ((w.supply_scaled, delta.supply, after.supply, self.mv.supply_index),
                                             (w.debt_scaled, delta.debt, after.debt, self.mv.borrow_index)):
            for reserve, change in changes.items():
                if not change:
                    continue
                if closed.get(reserve, 0.0) <= 0.0:
                    book[reserve] = 0.0
                else:
                    book[reserve] = max(book.get(reserve, 0.0) + change / index[reserve][t], 0.0)
        w.emode = after.emode
        self.last_holdings = after

    def _book(self, ins: Instruction, before: ChainHoldings, after: ChainHoldings, gas_eth: float, t: int) -> Fill:
        delta = after.minus(before)
        v0 = value_usd(self.portfolio, self.mv, t)
        self._apply(delta, after, t)
        v1 = value_usd(self.portfolio, self.mv, t)
        eth_usd = self.mv.price_usd("ETH", t)
        cost = (v0 - v1) - gas_eth * eth_usd
        amount_in, amount_out, price = self._amounts(ins, delta, gas_eth, t)
        return Fill(ins, amount_in, amount_out, price, cost, gas_eth)

    def _book_partial(self, before: ChainHoldings, after: ChainHoldings, t: int) -> None:
        """A failed step's completed transactions: book them, and their value change as a cost."""
        delta = after.minus(before)
        if delta.is_empty():
            self.last_holdings = after
            return
        v0 = value_usd(self.portfolio, self.mv, t)
        self._apply(delta, after, t)
        lost = v0 - value_usd(self.portfolio, self.mv, t)
        if lost:
            self.ledger.book("execution_costs", -self.numeraire.from_usd(lost, t))

    def _book_transfer(self, ins: Instruction, receipt: TransferReceipt, before: ChainHoldings,
                       after: ChainHoldings, t: int) -> Fill:
        v0 = value_usd(self.portfolio, self.mv, t)
        if WALLET in (ins.venue, ins.to_venue):
            self._apply(after.minus(before), after, t)
        if ins.venue != WALLET:
            self._cex_add(ins.venue, ins.asset, -float(receipt.sent))
        if ins.to_venue != WALLET:
            self._cex_add(ins.to_venue, ins.asset, float(receipt.received))
        v1 = value_usd(self.portfolio, self.mv, t)
        cost = (v0 - v1) - receipt.gas_eth * self.mv.price_usd("ETH", t)
        return Fill(ins, float(receipt.sent), float(receipt.received), 1.0, cost, receipt.gas_eth)

    def _cex_add(self, venue: str, asset: str, amount: float) -> None:
        acct = self.portfolio.account(venue)
        if asset == "USDT":
            acct.usdt += amount
        else:
            acct.spot[asset] = acct.spot.get(asset, 0.0) + amount

    def _amounts(self, ins: Instruction, delta: ChainHoldings, gas_eth: float, t: int) -> tuple[float, float, float]:
        """What the strategy sees in the Fill: the chain's own amounts (what arrived is what it gets)."""
        tokens = dict(delta.tokens)
        tokens["ETH"] = tokens.get("ETH", 0.0) + gas_eth            # gas is the fill's, not the trade's
        if ins.op in (Op.SWAP, Op.STAKE):
            sold = -tokens.get(engine_token(ins.asset), 0.0)
            bought = tokens.get(engine_token(ins.to_asset), 0.0)
            return sold, bought, (bought / sold if sold else 0.0)
        side = _SCALED.get(ins.op)
        if side is not None:
            underlying = abs((delta.supply if side == "supply" else delta.debt).get(ins.asset, 0.0))
            return underlying, underlying, 0.0
        return 0.0, 0.0, 0.0

    def _record(self, record: StepRecord) -> None:
        self.progress.steps.append(record)
        if self.on_step is not None:
            self.on_step(record)
