"""Execution manager: drives a strategy program, routes each Instruction to the venue port, logs the
events and books execution costs and gas into the P&L ledger (DESIGN §2, §6).

It is also the execution boundary every backtest, paper and live instruction crosses: an amount no
venue could execute (NaN, infinite, a negative stake) is refused here loudly, as InvalidInstruction,
whatever the strategy computed.
"""
from __future__ import annotations

import math
from typing import Awaitable, Callable, Protocol

from engine.components.event_log import EventLog
from engine.components.pnl_ledger import PnlLedger
from engine.domain.instructions import Fill, Instruction, Op
from engine.domain.market import MarketView
from engine.domain.refusals import InvalidInstruction, MarginRefused
from engine.strategies.base import Program

#: Signed trades: the sign is the side, so zero is no order at all. Every other operation moves a
#: quantity that cannot be negative (approvals and the e-mode switch carry none).
_SIGNED = (Op.PERP_TRADE, Op.SPOT_TRADE)


def validate_instruction(ins: Instruction) -> None:
    """Raise InvalidInstruction unless every amount in `ins` (and its children) can be executed."""
    what = f"{ins.op.value} {ins.amount!r} {ins.asset} on {ins.venue}" + (f" ({ins.reason})" if ins.reason else "")
    if not math.isfinite(ins.amount):
        raise InvalidInstruction(f"refused {what}: the amount is not a finite number")
    if ins.op in _SIGNED:
        if ins.amount == 0.0:
            raise InvalidInstruction(f"refused {what}: a trade of zero is not an order")
    elif ins.amount < 0.0:
        raise InvalidInstruction(f"refused {what}: the amount must not be negative")
    for child in ins.children:
        validate_instruction(child)


class ExecutionPort(Protocol):
    """What the manager needs from a venue layer (simulated in backtests and paper trading)."""

    def execute(self, ins: Instruction, t: int, charge_gas: bool = True) -> Fill: ...


class ExecutionManager:
    def __init__(self, port: ExecutionPort, market: MarketView, ledger: PnlLedger, log: EventLog,
                 currency: str, rejected_exc: type[Exception] | tuple[type[Exception], ...]) -> None:
        self.port = port
        self.mv = market
        self.ledger = ledger
        self.log = log
        self.currency = currency
        self.rejected_exc = rejected_exc
        self.instructions_executed = 0

    def run(self, program: Program, t: int) -> int:
        """Execute a program to completion at hour t; returns the number of fills. A rejection stops
        the program (logged as an event) and leaves the portfolio as the executed part made it."""
        run = _ProgramRun(self, program, t)
        ins = run.start()
        while ins is not None:
            run.validate(ins)
            try:
                fill = self.port.execute(ins, t)
            except self.rejected_exc as exc:
                ins = run.rejected(ins, exc)
                continue
            ins = run.filled(fill)
        return run.fills

    async def run_async(self, program: Program, t: int,
                        execute: Callable[[Instruction, int], Awaitable[Fill]]) -> int:
        """The live variant: each instruction is awaited (an order round-trip) before the next."""
        run = _ProgramRun(self, program, t)
        ins = run.start()
        while ins is not None:
            run.validate(ins)
            try:
                fill = await execute(ins, t)
            except self.rejected_exc as exc:
                ins = run.rejected(ins, exc)
                continue
            ins = run.filled(fill)
        return run.fills

    def _record(self, fill: Fill, t: int) -> None:
        eth = self.mv.eth[t]
        if fill.execution_cost:
            self.ledger.book("execution_costs",
                             -fill.execution_cost if self.currency == "USDT" else -fill.execution_cost / eth)
        if fill.gas_eth:
            self.ledger.book("gas", -fill.gas_eth * eth if self.currency == "USDT" else -fill.gas_eth)
        parent = self._log_fill(fill, t, parent=None)
        for child in fill.children:
            self._log_fill(child, t, parent=parent)

    def _log_fill(self, fill: Fill, t: int, parent: int | None) -> int:
        ins = fill.instruction
        ev = self.log.add(
            self.mv.timestamps[t], t, ins.venue, ins.op.value, asset=ins.asset, amount=fill.amount_in,
            to_asset=ins.to_asset or ins.to_venue, amount_out=fill.amount_out, price=fill.price,
            execution_cost_usd=fill.execution_cost,   # a bundle parent carries its children's total
            gas_eth=fill.gas_eth, parent=parent, iteration=ins.iteration, reason=ins.reason,
        )
        return ev.order


class _ProgramRun:
    """Bookkeeping of one program run shared by the sync (backtest/paper) and async (live) drivers."""

    def __init__(self, manager: ExecutionManager, program: Program, t: int) -> None:
        self.manager, self.program, self.t = manager, program, t
        self.fills = 0

    def start(self) -> Instruction | None:
        return next(self.program, None)

    def filled(self, fill: Fill) -> Instruction | None:
        self.manager._record(fill, self.t)
        self.fills += 1
        self.manager.instructions_executed += 1
        try:
            return self.program.send(fill)
        except StopIteration:
            return None

    def validate(self, ins: Instruction) -> None:
        try:
            validate_instruction(ins)
        except InvalidInstruction:
            self.program.close()
            raise

    def rejected(self, ins: Instruction, exc: Exception) -> Instruction | None:
        """Log the refusal. A margin refusal is handed to the program, which may skip that leg and
        go on (the next instruction is returned); any other refusal stops the program (None)."""
        m = self.manager
        m.log.add(m.mv.timestamps[self.t], self.t, ins.venue, "rejected", asset=ins.asset, amount=ins.amount,
                  reason=f"{ins.op.value}: {exc}")
        if not isinstance(exc, MarginRefused):
            self.program.close()
            return None
        try:
            return self.program.throw(exc)
        except StopIteration:
            return None
        except MarginRefused as raised:
            if raised is not exc:
                raise
            return None     # the program did not handle it: it has stopped
