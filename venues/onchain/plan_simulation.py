"""A plan of on-chain instructions simulated step after step on one block, before anything is signed.

The flatten's preview needs the ticket of every on-chain transaction it will send, and those depend
on each other: the ETH the slices sell is the WETH the loop's exit frees. Simulating each step on
today's wallet would refuse the sales (the WETH is not there yet) or price them on the wrong state.
So the plan is kept as a list of programs (one per instruction) and each new instruction is
simulated after all earlier ones in ONE ``eth_simulateV1`` of the block pinned at the first step
(``ProgramRunner.tickets``): its ticket starts where the previous one ends.

Each instruction is built the way ``ChainInstructionExecutor`` would build it at execution, except
that the amounts it adapts to the wallet (WETH to wrap, "all of it" for a position) are read from
the simulated state after the previous steps, not from the chain. The calls themselves (the
executor's exit, the exact approvals, the swaps with their oracle floor) are the ones execution
sends; a preview never signs: the executor's plan is taken out of its adapter.

Every program watches the same balances (native ETH, WETH, the wallet tokens, the aTokens and debt
tokens of the reserves) and the AAVE account, so the steps' before/after read the same way and
translate to the engine's ``ChainHoldings``.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import TYPE_CHECKING

from engine.domain.instructions import Instruction, Op
from engine.domain.onchain_live import ChainHoldings, SimulatedChainStep
from engine.domain.onchain_ports import TransactionError, TxStage
from engine.domain.presign import PreSignTicket
from venues.onchain import abi
from venues.onchain.program import OnchainProgram, WatchedToken
from venues.onchain.tx.manager import TxCall
from venues.onchain.wallet import MAX_UINT256

if TYPE_CHECKING:
    from venues.onchain.live_port import ChainInstructionExecutor

ALL = Decimal("0.999999")      # as the executor: a request for this share of a position or more takes all
HAIR = Decimal("1.000001")     # a float request a hair above what is held is all of it


class ChainPlanSimulator:
    """Implements engine.domain.onchain_live.ChainPlanSimulation for one ``ChainInstructionExecutor``."""

    def __init__(self, port: ChainInstructionExecutor, *, hf_floor: Decimal, target_ltv: float | None) -> None:
        self.port = port
        self.hf_floor = hf_floor
        self.target_ltv = target_ltv
        self.programs: list[OnchainProgram] = []
        self.tickets: list[PreSignTicket] = []
        self._block: int | None = None
        self._watch: tuple[WatchedToken, ...] | None = None
        self._gas_eth = Decimal(0)            # what the earlier steps' gas takes off native ETH

    @property
    def block_number(self) -> int | None:
        return self._block

    # ------------------------------------------------------------------ reading the simulated state
    async def _watched(self) -> tuple[WatchedToken, ...]:
        if self._watch is None:
            ctx, aave = self.port.ex.ctx, self.port.aave
            watch = [WatchedToken("ETH", None), WatchedToken("WETH", self.port.weth_token)]
            for t in self.port.tokens:
                watch.append(WatchedToken(t, aave.token(t), await ctx.decimals(aave.token(t))))
            for r in self.port.reserves:
                decimals = await ctx.decimals(aave.token(r))
                watch.append(WatchedToken(f"a{r}", aave.a_token(r), decimals, kind="collateral"))
                watch.append(WatchedToken(f"{r} debt", aave.debt_token(r), decimals, kind="debt"))
            self._watch = tuple(watch)
        return self._watch

    def _state(self, ticket: PreSignTicket | None, side: str) -> dict[str, Decimal]:
        """Balances by watch label ``before`` or ``after`` the ticket (the last one when None)."""
        ticket = ticket if ticket is not None else (self.tickets[-1] if self.tickets else None)
        if ticket is None:
            return {}
        return {d.token: (d.before if side == "before" else d.after) for d in ticket.deltas}

    async def _current(self, label: str) -> Decimal:
        """A watched balance after the plan so far (the chain's own when nothing was simulated yet)."""
        state = self._state(None, "after")
        if label in state:
            return state[label]
        ctx, aave = self.port.ex.ctx, self.port.aave
        if label == "ETH":
            raw = int(await ctx.read("eth_getBalance", lambda: ctx.w3.eth.get_balance(ctx.address)))
            return Decimal(raw) / Decimal(10) ** 18
        if label == "WETH":
            return await ctx.balance(self.port.weth_token)
        if label.startswith("a") and label[1:] in self.port.reserves:
            return await ctx.balance(aave.a_token(label[1:]))
        return await ctx.balance(aave.token(label))

    def _holdings(self, values: dict[str, Decimal], ticket: PreSignTicket, after: bool) -> ChainHoldings:
        """The book's view of the simulated wallet: ETH is native + WETH less the gas the plan's steps
        so far will have burned (the simulation itself charges none)."""
        tokens = {t: float(values.get(t, Decimal(0))) for t in self.port.tokens}
        gas = self._gas_eth
        tokens["ETH"] = float(values.get("ETH", Decimal(0)) + values.get("WETH", Decimal(0)) - gas)
        supply = {r: float(values.get(f"a{r}", Decimal(0))) for r in self.port.reserves}
        debt = {r: float(values.get(f"{r} debt", Decimal(0))) for r in self.port.reserves}
        risk = ticket.after if after else ticket.before
        hf = None if risk is None or risk.health_factor is None else float(risk.health_factor)
        emode = bool(risk is not None and risk.emode_category)
        return ChainHoldings(self.port.chain, ticket.block_number, tokens, {}, {}, emode, hf, supply, debt)

    # ------------------------------------------------------------------ the steps
    async def add(self, ins: Instruction) -> SimulatedChainStep:
        if self._block is None:
            ctx = self.port.ex.ctx
            self._block = int(await ctx.read("eth_blockNumber", lambda: ctx.w3.eth.block_number))
        program = replace(await self._program(ins), watch=await self._watched(), aave_pool=self.port.aave.pool_address)
        runner = self.port.ex.programs
        if runner is None:
            raise TransactionError(self.port.chain, TxStage.SIMULATION, "no program runner on this chain",
                                   operation="preview")
        tickets = await runner.tickets([*self.programs, program], block=self._block)
        ticket = tickets[-1]
        self.programs.append(program)
        self.tickets = tickets
        before = self._holdings(self._state(ticket, "before"), ticket, after=False)
        self._gas_eth += ticket.expected_fee_eth
        after = self._holdings(self._state(ticket, "after"), ticket, after=True)
        return SimulatedChainStep(ticket, before, after, float(ticket.expected_fee_eth))

    async def _program(self, ins: Instruction) -> OnchainProgram:
        if ins.op is Op.BUNDLE:
            return await self._exit(ins)
        if ins.op is Op.WITHDRAW:
            return await self._withdraw(ins)
        if ins.op is Op.SWAP:
            return await self._swap(ins)
        raise ValueError(f"{ins.venue} {ins.op.value} is not a step a flatten preview simulates")

    async def _exit(self, ins: Instruction) -> OnchainProgram:
        ops = {c.op for c in ins.children}
        if not (Op.REPAY in ops and Op.WITHDRAW in ops):
            raise ValueError("only a loop exit (repay + withdraw) is previewed as a bundle")
        if self.programs:
            raise ValueError("the loop's exit must be the plan's first on-chain step (it is sized on the chain now)")
        executor = self.port.ex.executor
        if executor is None:
            raise TransactionError(self.port.chain, TxStage.VERIFICATION,
                                   "an atomic bundle needs the wallet's LeverageExecutor (store executor_address "
                                   "in the keyring after `python main.py executor deploy`)", operation="bundle")
        plan = await executor.plan_exit(await self.port.exit_request(ins))
        program = executor.take_program(plan)
        if plan.fallback_reason:
            program = replace(program, notes=(*program.notes, plan.fallback_reason))
        return program

    async def _withdraw(self, ins: Instruction) -> OnchainProgram:
        aave, ctx = self.port.aave, self.port.ex.ctx
        have = await self._current(f"a{ins.asset}")
        amount = Decimal(repr(float(ins.amount)))
        token = aave.token(ins.asset)
        raw = MAX_UINT256 if amount >= have * ALL else await ctx.raw(token, amount, f"withdraw {ins.asset}")
        call = ctx.call(aave.pool_address, abi.AAVE_POOL_WRITE, "withdraw", [token, raw, ctx.address],
                        label=f"aave_v3.withdraw {'all' if raw == MAX_UINT256 else amount} {ins.asset}")
        return OnchainProgram(f"withdraw {ins.asset} from AAVE", (call,))

    async def _swap(self, ins: Instruction) -> OnchainProgram:
        uniswap, ctx = self.port.ex.uniswap, self.port.ex.ctx
        if uniswap is None:
            raise TransactionError(self.port.chain, TxStage.SIMULATION, "no Uniswap configured", operation="swap")
        token_in = "WETH" if ins.asset == "ETH" else ins.asset
        token_out = "WETH" if ins.to_asset == "ETH" else ins.to_asset
        amount = Decimal(repr(float(ins.amount)))
        calls: list[TxCall] = []
        if token_in == "WETH":
            weth = await self._current("WETH")
            if weth < amount:
                native = await self._current("ETH") - self._gas_eth
                short = (amount - weth).quantize(Decimal("1e-18"), rounding=ROUND_UP)
                if native - self.port.gas_reserve < short:
                    raise ValueError(f"the wallet would hold {weth} WETH and {native} ETH (gas reserve "
                                     f"{self.port.gas_reserve}) after the earlier steps: {amount} WETH is not there")
                value = int(short * Decimal(10) ** 18)
                calls.append(ctx.call(self.port.weth_token, abi.WETH9, "deposit", [], value=value,
                                      label=f"weth.deposit {short} ETH"))
        else:
            have = await self._current(token_in)
            if have < amount <= have * HAIR:
                amount = have
        decimals = await ctx.decimals(uniswap.token(token_in))
        amount = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)
        swap = await uniswap.swap_call(token_in, token_out, amount)
        calls += await ctx.approval_calls(swap.token_in, uniswap.router, swap.raw_in, f"uniswap: {token_in} to sell")
        calls.append(swap.call)
        note = (f"amountOutMinimum {swap.floor} {token_out} from the oracle price {swap.price:.8g} less the pool "
                "fee and the configured slippage")
        return OnchainProgram(f"sell {amount} {token_in} for {token_out} on Uniswap (floor {swap.floor:.8g})",
                              tuple(calls), notes=(note,))
