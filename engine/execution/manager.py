"""Execution manager: drives a strategy program, routes each Instruction to the venue port, logs the
events and books execution costs and gas into the ledger.

A program is a generator of Instructions that receives each Fill back. The manager runs it to its
end, or until an instruction fails in one of the ways its `Failures` declares (the trading state
refused it, a venue or a pre-trade check refused it, the venue errored): that stop is logged as a
"rejected" event and returned in the `ProgramOutcome`. A margin refusal is handed to the program,
which may skip that leg and go on. Anything else an execution raises is a bug and propagates. The
sync driver (`run`) serves backtests and paper sessions, whose fills are simulated; the async one
(`run_async`) awaits each live order's round trip.

It is also the execution boundary every backtest, paper and live instruction crosses: an amount no
venue could execute (NaN, infinite, a negative stake) is refused here loudly, as InvalidInstruction,
whatever the strategy computed.
"""
from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Protocol

from engine.components.event_log import EventLog
from engine.domain.instructions import Fill, Instruction, Op
from engine.domain.market import MarketView
from engine.domain.numeraire import Numeraire
from engine.domain.refusals import InvalidInstruction, MarginRefused
from engine.execution.ledger import Ledger
from engine.execution.outcome import Failures, ProgramOutcome, ProgramStop
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


AsyncExecute = Callable[[Instruction, int], Awaitable[Fill]]


class ExecutionManager:
    def __init__(self, port: ExecutionPort | None, market: MarketView, ledger: Ledger, log: EventLog,
                 numeraire: Numeraire, failures: Failures) -> None:
        """``port`` executes instructions for `run` (None where only `run_async` is used)."""
        self.port = port
        self.mv = market
        self.ledger = ledger
        self.log = log
        self.numeraire = numeraire
        self.failures = failures
        self._stopping = failures.all
        self.instructions_executed = 0

    def run(self, program: Program, t: int) -> ProgramOutcome:
        """Execute a program to completion at step t. A stop leaves the portfolio as the executed part
        made it."""
        if self.port is None:
            raise RuntimeError("this execution manager has no synchronous execution port")
        run = _ProgramRun(self, program, t)
        ins = run.start()
        while ins is not None:
            run.validate(ins)
            try:
                fill = self.port.execute(ins, t)
            except self._stopping as exc:
                ins = run.stopped(ins, exc)
                continue
            ins = run.filled(fill)
        return run.outcome()

    async def run_async(self, program: Program, t: int, execute: AsyncExecute) -> ProgramOutcome:
        """The live variant: each instruction is awaited (an order round-trip) before the next."""
        run = _ProgramRun(self, program, t)
        ins = run.start()
        while ins is not None:
            run.validate(ins)
            try:
                fill = await execute(ins, t)
            except self._stopping as exc:
                ins = run.stopped(ins, exc)
                continue
            ins = run.filled(fill)
        return run.outcome()

    def _record(self, fill: Fill, t: int) -> None:
        if fill.execution_cost:
            self.ledger.book("execution_costs", -self.numeraire.from_usd(fill.execution_cost, t))
        if fill.gas_eth:
            self.ledger.book("gas", -self.numeraire.from_eth(fill.gas_eth, t))
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
        self.stop: ProgramStop | None = None

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

    def stopped(self, ins: Instruction, exc: BaseException) -> Instruction | None:
        """Log the refusal. A margin refusal is handed to the program, which may skip that leg and
        go on (the next instruction is returned); anything else stops the program (None) and is the
        outcome's stop."""
        m = self.manager
        m.log.add(m.mv.timestamps[self.t], self.t, ins.venue, "rejected", asset=ins.asset, amount=ins.amount,
                  reason=f"{ins.op.value}: {exc}")
        stop = ProgramStop(m.failures.kind_of(exc), ins.venue, ins.op.value, str(exc))
        if not isinstance(exc, MarginRefused):
            self.stop = stop
            self.program.close()
            return None
        try:
            return self.program.throw(exc)
        except StopIteration:
            return None
        except MarginRefused as raised:
            if raised is not exc:
                raise
            self.stop = stop           # the program did not handle it: it has stopped
            return None

    def outcome(self) -> ProgramOutcome:
        return ProgramOutcome(self.fills, self.stop)
