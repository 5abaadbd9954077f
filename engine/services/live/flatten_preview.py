"""The flatten, previewed before the operator confirms it: every step, and a pre-sign ticket for each
on-chain transaction simulated on the chain's current block.

Why a dry run rather than a list: the flatten is a program that adapts to what each step did (the ETH
the slices sell is what the loop's exit freed; the perps are cut to the exposure left). So the preview
runs the very same ``flatten_program`` on a copy of the session's book:

- **live, on-chain steps**: each instruction is simulated on the chain after the plan's earlier ones,
  in one ``eth_simulateV1`` of a pinned block (``ChainPlanSimulation``); the simulated wallet before
  and after is booked into the copy exactly as the router books a real step, so the next
  instruction is sized from what the chain would do, and each step carries its ``PreSignTicket``
  (health factor before/after, token deltas, gas, fee cap);
- **CEX steps, and every step in paper mode**: filled by the session's simulated venue layer at the
  live marks with the cost model (no chain is simulated in paper mode, and the preview says so).

After every step the engine's own health factor and net delta are recorded. The preview refuses
(``refusal``) when a simulation reverts, a ticket ends below the HF floor (``refuse_below_floor``),
the engine's health factor would be lowered below the floor, or a step cannot be planned; nothing is
ever sent by a preview.

Confirming executes exactly the previewed plan: the service simulates again under the session's lock,
and if the fresh preview differs materially from the one the operator saw (``differences``) nothing
is sent and the fresh one is handed back to be shown. While the flatten runs, each instruction the
program produces is compared with the previewed one (``as_previewed``); one that deviates stops the
flatten before it is sent.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Protocol, runtime_checkable

from engine.components.risk import snapshot
from engine.domain.instructions import Fill, Instruction, Op
from engine.domain.onchain_live import OnchainPreviewPort
from engine.domain.presign import PreSignTicket, TicketRefused, format_hf, refuse_below_floor
from engine.execution.ledger import RunningLedger
from engine.services.live.flatten import flatten_program
from engine.services.live.market_feed import perp_symbol, spot_symbol
from engine.services.live.onchain_routing import OnchainRouter, routes_onchain

#: Relative change of an amount that makes a plan different (the book or the block moved under it).
AMOUNT_TOLERANCE = 1e-3
#: Absolute change of a simulated or computed health factor that makes a plan different.
HF_TOLERANCE = 1e-3
#: While executing: an instruction further than this (relative) from the previewed one is not sent.
EXECUTION_TOLERANCE = 5e-3
MAX_STEPS = 200                      # a runaway program is a bug, never a plan to show


class FlattenPreviewStale(RuntimeError):
    """The plan changed materially since the preview the operator confirmed: nothing was sent; show
    ``fresh`` and ask again."""

    def __init__(self, fresh: FlattenPreview, why: str) -> None:
        super().__init__(f"the flatten plan changed since it was previewed ({why}): nothing was sent; "
                         "review the new preview")
        self.fresh = fresh
        self.why = why


class FlattenRefused(RuntimeError):
    """The preview refuses the flatten (a simulation reverts or a step breaks the HF floor)."""

    def __init__(self, preview: FlattenPreview) -> None:
        super().__init__(f"flatten refused before anything was sent: {preview.refusal}")
        self.preview = preview


@dataclass(frozen=True)
class PreviewStep:
    """One instruction of the flatten as previewed."""

    number: int
    where: str                            # "chain" (simulated on chain) | "cex" | "simulated" (paper)
    action: str                           # for people: "binance ETH perp buy 1.2 (reduce-only)"
    instruction: Instruction
    ticket: PreSignTicket | None = None   # on-chain steps of a live session
    hf_after: float | None = None         # the engine's health factor after the step (None: no debt)
    delta_after: tuple[tuple[str, float], ...] = ()   # the engine's net delta per asset after the step
    cost: float = 0.0                     # execution cost (USD) the step is expected to incur
    gas_eth: float = 0.0

    def lines(self) -> list[str]:
        delta = ", ".join(f"{a} {v:+.6f}" for a, v in self.delta_after) or "flat"
        out = [(f"{self.number}. [{self.where}] {self.action}: HF after {format_hf(_dec(self.hf_after))}, "
                f"delta after {delta}")]
        if self.ticket is not None:
            out += [f"     {line}" for line in self.ticket.lines()]
        return out


@dataclass(frozen=True)
class FlattenPreview:
    """What a confirmed flatten will do, made before anything is sent."""

    request_id: str
    mode: str
    execution: str
    made_at: float
    timestamp: str                        # the market snapshot the plan was sized on
    source: str                           # how it was simulated, in words (paper says it plainly)
    block_number: int | None              # the chain block the tickets were simulated on
    hf_floor: float
    hf_before: float | None
    delta_before: tuple[tuple[str, float], ...]
    steps: tuple[PreviewStep, ...]
    refusal: str | None = None            # why it cannot be confirmed (None: it can)
    cannot_unwind: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.refusal is None

    @property
    def tickets(self) -> tuple[PreSignTicket, ...]:
        return tuple(s.ticket for s in self.steps if s.ticket is not None)

    def lines(self) -> list[str]:
        delta = ", ".join(f"{a} {v:+.6f}" for a, v in self.delta_before) or "flat"
        out = [f"flatten preview of {self.request_id} ({self.mode}, {self.execution}) at {self.timestamp}",
               self.source,
               f"now: HF {format_hf(_dec(self.hf_before))} (floor {self.hf_floor}), delta {delta}"]
        if not self.steps:
            out.append("nothing to close")
        for step in self.steps:
            out += step.lines()
        out += [f"cannot unwind: {c}" for c in self.cannot_unwind]
        out.append(f"REFUSED: {self.refusal}" if self.refusal else "ready: confirm to send exactly these steps")
        return out

    def differences(self, fresh: FlattenPreview) -> str | None:
        """Why ``fresh`` (simulated again at confirmation) is not the plan this preview showed, or None."""
        if (self.refusal is None) != (fresh.refusal is None):
            return f"now {'refused: ' + str(fresh.refusal) if fresh.refusal else 'no longer refused'}"
        if len(self.steps) != len(fresh.steps):
            return f"{len(fresh.steps)} steps instead of {len(self.steps)}"
        for old, new in zip(self.steps, fresh.steps):
            why = instruction_difference(old.instruction, new.instruction, AMOUNT_TOLERANCE)
            if why:
                return f"step {old.number}: {why}"
            if not _close_hf(old.hf_after, new.hf_after):
                return f"step {old.number}: health factor after {format_hf(_dec(new.hf_after))} instead of " \
                       f"{format_hf(_dec(old.hf_after))}"
            if old.ticket is not None and new.ticket is not None:
                if not _close_hf(_float(old.ticket.hf_after), _float(new.ticket.hf_after)):
                    return (f"step {old.number}: simulated health factor {format_hf(new.ticket.hf_after)} instead "
                            f"of {format_hf(old.ticket.hf_after)}")
                for a, b in zip(old.ticket.deltas, new.ticket.deltas):
                    if not _close(float(a.change), float(b.change), AMOUNT_TOLERANCE, abs_tol=1e-9):
                        return f"step {old.number}: {a.token} {b.change:+f} instead of {a.change:+f}"
        return None


@dataclass
class _DryRun:
    steps: list[PreviewStep] = field(default_factory=list)
    refusal: str | None = None
    block: int | None = None


def _dec(x: float | None) -> Decimal | None:
    return None if x is None else Decimal(repr(x))


def _float(x: Decimal | None) -> float | None:
    return None if x is None else float(x)


def _close(a: float, b: float, rel: float, abs_tol: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def _close_hf(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= HF_TOLERANCE


def instruction_difference(planned: Instruction, now: Instruction, rel: float) -> str | None:
    """Why ``now`` is not the instruction ``planned`` (same action, amounts within ``rel``), or None."""
    if (planned.op, planned.venue, planned.asset, planned.to_asset) != (now.op, now.venue, now.asset, now.to_asset):
        return f"{describe(now)} instead of {describe(planned)}"
    if not _close(planned.amount, now.amount, rel):
        return f"{describe(now)} instead of {describe(planned)} (amount moved more than {rel:.1%})"
    if len(planned.children) != len(now.children):
        return f"{describe(now)} instead of {describe(planned)}"
    for a, b in zip(planned.children, now.children):
        why = instruction_difference(a, b, rel)
        if why:
            return why
    return None


def describe(ins: Instruction) -> str:
    if ins.op is Op.PERP_TRADE:
        return f"{ins.venue} {ins.asset} perp {'buy' if ins.amount > 0 else 'sell'} {abs(ins.amount):.8g} (reduce-only)"
    if ins.op is Op.SPOT_TRADE:
        return f"{ins.venue} {ins.asset} spot {'buy' if ins.amount > 0 else 'sell'} {abs(ins.amount):.8g}"
    if ins.op is Op.BUNDLE:
        debt = next((c.amount for c in ins.children if c.op is Op.REPAY), 0.0)
        coll = next((c for c in ins.children if c.op is Op.WITHDRAW), None)
        what = f"repay {debt:.6g} WETH debt, withdraw and sell {coll.amount:.6g} {coll.asset}" if coll else "bundle"
        return f"{ins.venue}: exit the loop atomically ({what})"
    if ins.op is Op.SWAP:
        return f"{ins.venue}: sell {ins.amount:.8g} {ins.asset} for {ins.to_asset}"
    return f"{ins.venue}: {ins.op.value} {ins.amount:.8g} {ins.asset}"


def _net_delta(risk) -> tuple[tuple[str, float], ...]:
    delta = dict(risk.delta_cex)
    delta["ETH"] = delta.get("ETH", 0.0) + risk.delta_onchain_eth
    return tuple((a, v) for a, v in sorted(delta.items()) if abs(v) > 1e-9)


def _hf(risk) -> float | None:
    return None if math.isinf(risk.health_factor) or math.isnan(risk.health_factor) else float(risk.health_factor)


async def build_flatten_preview(session, world_factory: Callable, cannot_unwind: Sequence[str] = ()) -> FlattenPreview:
    """Dry-run the session's flatten on a copy of its book (see the module docstring). The caller
    holds the session's lock, so no tick moves the book under the dry run."""
    s = session
    t = await s.ensure_prices()
    mv, params = s.feed.view, s.params
    floor = float(s.limits.hf_floor)
    book = copy.deepcopy(s.portfolio)
    world = world_factory(book, mv, params)
    live = s.execution.sends_orders
    chain = s.onchain if live else None
    sim = None
    if chain is not None and isinstance(chain, OnchainPreviewPort):
        sim = chain.plan_simulation(hf_floor=Decimal(repr(floor)), target_ltv=params.strategy.target_ltv or None)
    booker = OnchainRouter(chain, book, mv, params, s.state, RunningLedger(), s.manager.numeraire,
                           hf_floor=floor) if chain is not None else None
    risk0 = snapshot(book, mv, t, params.aave)
    run = _DryRun()
    program = flatten_program(book, mv, t, params)
    try:
        ins = next(program, None)
        while ins is not None:
            if len(run.steps) >= MAX_STEPS:
                run.refusal = f"the flatten program produced more than {MAX_STEPS} steps: not a plan to send"
                break
            number = len(run.steps) + 1
            hf_before = _hf(snapshot(book, mv, t, params.aave))
            ticket = None
            try:
                if live and routes_onchain(ins):
                    if sim is None or booker is None:
                        raise ValueError("this session's chain cannot simulate a plan before signing, so "
                                         "the on-chain steps cannot be previewed")
                    simulated = await sim.add(ins)
                    ticket = simulated.ticket
                    run.block = sim.block_number
                    fill = booker.book_simulated(ins, simulated.before, simulated.after, simulated.gas_eth, t)
                    where = "chain"
                else:
                    fill = world.execute(await _as_the_venue_fills(s, ins) if live else ins, t)
                    where = "cex" if live else "simulated"
            except Exception as exc:          # noqa: BLE001 - any failure of a step is the preview's refusal
                run.refusal = f"step {number} ({describe(ins)}) cannot be done: {exc}"
                break
            risk = snapshot(book, mv, t, params.aave)
            step = PreviewStep(number, where, describe(ins), ins, ticket, _hf(risk), _net_delta(risk),
                               float(fill.execution_cost), float(fill.gas_eth))
            run.steps.append(step)
            refusal = _floor_refusal(step, hf_before, floor)
            if refusal:
                run.refusal = f"step {number} ({step.action}): {refusal}"
                break
            ins = _next(program, fill)
    finally:
        program.close()
    if live and chain is not None:
        source = (f"live: on-chain steps simulated on block {run.block:,} (eth_simulateV1, one state for the whole "
                  "plan); CEX orders sized from the book at the live marks" if run.block is not None else
                  "live: no on-chain step; CEX orders sized from the book at the live marks")
    elif live:
        source = "live: CEX orders sized from the book at the live marks (no on-chain leg)"
    else:
        source = ("paper: previewed on the simulated book at live prices with the cost model; nothing is "
                  "simulated on a chain and nothing is sent to a venue")
    return FlattenPreview(
        request_id=s.request_id, mode=s.mode, execution=s.execution.value, made_at=time.time(),
        timestamp=str(mv.timestamps[t]), source=source, block_number=run.block, hf_floor=floor,
        hf_before=_hf(risk0), delta_before=_net_delta(risk0), steps=tuple(run.steps), refusal=run.refusal,
        cannot_unwind=tuple(cannot_unwind))


@runtime_checkable
class TradableAmount(Protocol):
    """A CEX port that says what an order really trades (its lot rounding)."""

    async def tradable_amount(self, symbol: str, amount: Decimal) -> Decimal: ...


async def _as_the_venue_fills(session, ins: Instruction) -> Instruction:
    """A live CEX order as its venue will fill it (rounded down to the lot), so the dry run leaves the
    residue the real flatten leaves and previews the order that closes it."""
    if ins.op not in (Op.PERP_TRADE, Op.SPOT_TRADE):
        return ins
    port = session.venues.get(ins.venue)
    if not isinstance(port, TradableAmount):
        return ins
    symbol = perp_symbol(ins.asset) if ins.op is Op.PERP_TRADE else spot_symbol(ins.asset)
    traded = float(await port.tradable_amount(symbol, Decimal(repr(abs(ins.amount)))))
    return replace(ins, amount=math.copysign(traded, ins.amount))


def _next(program: Iterator[Instruction], fill: Fill) -> Instruction | None:
    try:
        return program.send(fill)  # type: ignore[attr-defined]
    except StopIteration:
        return None


def _floor_refusal(step: PreviewStep, hf_before: float | None, floor: float) -> str | None:
    """A ticket below the floor (the chain's word), or the engine's health factor lowered below it."""
    if step.ticket is not None:
        try:
            refuse_below_floor(step.ticket, Decimal(repr(floor)))
        except TicketRefused as refused:
            return refused.reason
    after = step.hf_after
    if after is not None and after < floor and (hf_before is None or after < hf_before):
        return (f"the health factor after it would be {after:.4f}, below the floor {floor}"
                + (f" (before: {hf_before:.4f})" if hf_before is not None else ""))
    return None


def as_previewed(program: Iterator[Instruction], preview: FlattenPreview, stopped: list[str]):
    """Pass ``program`` through while each instruction is the previewed one (within
    EXECUTION_TOLERANCE); the first that is not ends the program before it is sent, its reason in
    ``stopped``."""
    planned = [s.instruction for s in preview.steps]
    i = 0
    try:
        ins = next(program)
        while True:
            if i >= len(planned):
                stopped.append(f"{describe(ins)} was not in the previewed plan: not sent; preview again")
                return
            why = instruction_difference(planned[i], ins, EXECUTION_TOLERANCE)
            if why:
                stopped.append(f"step {i + 1}: {why}: not sent; preview again")
                return
            fill = yield ins
            i += 1
            ins = program.send(fill)  # type: ignore[attr-defined]
    except StopIteration:
        return
    finally:
        program.close()  # type: ignore[attr-defined]
