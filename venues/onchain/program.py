"""On-chain programs: several transactions that belong together, simulated as one before any is signed.

An ``OnchainProgram`` is the ordered list of calls an action needs (an exact approval, a credit
delegation, the executor's entry ...) plus what to watch: wallet tokens, the wallet's aTokens and
debt tokens, native ETH, and the AAVE account. ``ProgramRunner.ticket`` runs every call in order in
ONE ``eth_simulateV1`` of the latest block, with reads before the first call and after the last, and
returns the engine's ``PreSignTicket``; ``ProgramRunner.execute`` makes a fresh ticket, refuses the
program when its simulated health factor ends below the floor, then sends the calls one by one
through the TxManager (each simulated again, fee-capped, confirmed).

Native ETH has no balance getter a call can reach, so the simulation places a 12-byte read helper at
an unused address with a state override (it exists only inside the simulation):

    PUSH1 0x04  CALLDATALOAD      the 32-byte word after a 4-byte selector: the address
    BALANCE                       its ETH balance
    PUSH1 0x00  MSTORE            into memory[0:32]
    PUSH1 0x20  PUSH1 0x00  RETURN
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from eth_abi import decode as abi_decode

from engine.domain.onchain_ports import TransactionError, TxResult, TxStage
from engine.domain.presign import AccountRisk, PreSignTicket, TicketStep, TokenDelta, refuse_below_floor
from venues.onchain import abi
from venues.onchain.tx.manager import Simulation, TxCall
from venues.onchain.wallet import WalletContext, from_base_units

ETH_BALANCE_PROBE = "0x00000000000000000000000000000000000ba1a2"
ETH_BALANCE_PROBE_CODE = "0x6004353160005260206000f3"
AAVE_BASE_DECIMALS = 8  # getUserAccountData's base currency (USD, 8 decimals on the Ethereum markets)
NO_DEBT_HF = 2**256 - 1


@dataclass(frozen=True)
class WatchedToken:
    """A balance of the wallet the ticket reports. ``address`` None is native ETH."""

    label: str  # WETH, weETH, aweETH (collateral), variableDebtWETH (debt), ETH
    address: str | None
    decimals: int = 18
    kind: str = "wallet"  # wallet | collateral (aTokens) | debt (debt tokens)


@dataclass(frozen=True)
class OnchainProgram:
    """The calls of one action, in order, and what its ticket watches."""

    name: str
    calls: tuple[TxCall, ...]
    watch: tuple[WatchedToken, ...] = ()
    aave_pool: str | None = None  # report the AAVE account of the wallet on this Pool
    notes: tuple[str, ...] = ()

    def digest(self) -> str:
        """SHA-256 of the calls (target, value, calldata): a ticket belongs to exactly these calls."""
        h = hashlib.sha256()
        for call in self.calls:
            h.update(f"{(call.to or 'create').lower()}|{call.value}|{call.data.lower()}\n".encode())
        return h.hexdigest()


@dataclass(frozen=True)
class ProgramOutcome:
    """A program that was sent: the ticket it passed and every transaction's final result."""

    ticket: PreSignTicket
    results: tuple[TxResult, ...]

    @property
    def gas_used(self) -> int:
        return sum(r.gas_used for r in self.results)


class ProgramFailed(TransactionError):
    """A step of a program did not complete; ``completed`` holds the steps that did (final on chain)."""

    def __init__(self, program: OnchainProgram, step: int, error: TransactionError, completed: Sequence[TxResult]):
        super().__init__(
            error.venue,
            error.stage,
            f"{program.name}: step {step + 1} of {len(program.calls)} ({program.calls[step].label}) "
            f"failed after {len(completed)} completed: {error.detail}",
            operation=error.operation,
            revert=error.revert,
            tx_hash=error.tx_hash,
            nonce=error.nonce,
        )
        self.program = program
        self.step = step
        self.completed = tuple(completed)
        self.cause = error


class ProgramRunner:
    """Tickets and execution of programs for the wallet of ``ctx``."""

    def __init__(self, ctx: WalletContext) -> None:
        self.ctx = ctx
        self.tm = ctx.tm

    # ------------------------------------------------------------------------------------------ reads
    def _reads(self, program: OnchainProgram) -> list[TxCall]:
        wallet = self.ctx.address
        word = "0x70a08231" + wallet[2:].lower().rjust(64, "0")  # balanceOf(wallet) / the probe's input
        reads = [
            TxCall(ETH_BALANCE_PROBE if t.address is None else self.ctx.reader.checksum(t.address), word,
                   label=f"read {t.label}")
            for t in program.watch
        ]
        if program.aave_pool is not None:
            pool = self.ctx.contract(program.aave_pool, abi.AAVE_POOL)
            reads.append(TxCall(pool.address, pool.encode_abi("getUserAccountData", args=[wallet]),
                                label="read AAVE account"))
            reads.append(TxCall(pool.address, pool.encode_abi("getUserEMode", args=[wallet]), label="read e-mode"))
        return reads

    def _account(self, account: Simulation, emode: Simulation) -> AccountRisk:
        collateral, debt, _, _, _, hf = abi_decode(["uint256"] * 6, bytes.fromhex(account.return_data[2:]))
        (category,) = abi_decode(["uint256"], bytes.fromhex(emode.return_data[2:]))
        return AccountRisk(
            collateral_base=from_base_units(collateral, AAVE_BASE_DECIMALS),
            debt_base=from_base_units(debt, AAVE_BASE_DECIMALS),
            health_factor=None if debt == 0 or hf == NO_DEBT_HF else from_base_units(hf, 18),
            emode_category=int(category),
        )

    # ------------------------------------------------------------------------------------------ ticket
    async def ticket(self, program: OnchainProgram) -> PreSignTicket:
        """Simulate the whole program on the latest block; raises TransactionError(SIMULATION) with the
        decoded revert of the first call that fails, or TransactionError(FEES) above the fee cap."""
        if not program.calls:
            raise ValueError(f"{program.name}: a program needs at least one call")
        if any(call.to is None for call in program.calls):
            return await self._creation_ticket(program)
        return (await self.tickets([program]))[0]

    async def tickets(self, programs: Sequence[OnchainProgram], *, block: int | None = None) -> list[PreSignTicket]:
        """Simulate several programs one after the other in ONE eth_simulateV1 of ``block`` (the latest
        when None), each seeing the state the previous ones leave, and return one ticket per program
        (its own reads before and after it). This is how a plan of several on-chain actions (a flatten:
        the loop's exit, then the sales of what it freed) is checked before anything is signed: the
        second action's simulation starts where the first one's ends, not on today's wallet."""
        if not programs:
            raise ValueError("no program to simulate")
        for program in programs:
            if not program.calls:
                raise ValueError(f"{program.name}: a program needs at least one call")
            if any(call.to is None for call in program.calls):
                raise ValueError(f"{program.name}: a contract creation is simulated on its own, not in a program")
        if not await self.tm.can_simulate_program():
            raise TransactionError(
                self.tm.venue,
                TxStage.SIMULATION,
                f"{programs[0].name}: this RPC has no eth_simulateV1, so the program cannot be simulated as "
                "one; use an RPC that has it (geth, reth, anvil, Alchemy, Infura do)",
                operation=programs[0].name,
            )
        if block is None:
            block = int(await self.ctx.read("eth_blockNumber", lambda: self.ctx.w3.eth.block_number))
        overrides = (
            {ETH_BALANCE_PROBE: {"code": ETH_BALANCE_PROBE_CODE}}
            if any(t.address is None for p in programs for t in p.watch)
            else None
        )
        calls: list[TxCall] = []
        for program in programs:
            reads = self._reads(program)
            calls += [*reads, *program.calls, *reads]
        results = await self.tm.simulate_program(calls, state_overrides=overrides, block=block)
        fees = await self.tm.fee_quote()
        out = []
        at = 0
        for program in programs:
            n = len(self._reads(program))
            m = len(program.calls)
            out.append(self._ticket_of(program, results[at:at + n], results[at + n:at + n + m],
                                       results[at + n + m:at + 2 * n + m], block, fees))
            at += 2 * n + m
        return out

    def _ticket_of(self, program: OnchainProgram, before: Sequence[Simulation], steps_sim: Sequence[Simulation],
                   after: Sequence[Simulation], block: int, fees) -> PreSignTicket:
        deltas = tuple(
            TokenDelta(
                t.label,
                from_base_units(int(b.return_data, 16), t.decimals),
                from_base_units(int(a.return_data, 16), t.decimals),
                t.kind,
            )
            for t, b, a in zip(program.watch, before[:len(program.watch)], after[:len(program.watch)], strict=True)
        )
        k = len(program.watch)
        risk_before = risk_after = None
        if program.aave_pool is not None:
            risk_before = self._account(before[k], before[k + 1])
            risk_after = self._account(after[k], after[k + 1])
        steps = tuple(
            TicketStep(
                call.label,
                call.to or "(contract creation)",
                int(sim.gas_used or 0),
                call.gas_limit or self.tm.settings.gas_limit(int(sim.gas_used or 0)),
                call.value,
            )
            for call, sim in zip(program.calls, steps_sim, strict=True)
        )
        return PreSignTicket(
            program=program.name,
            chain_id=self.tm.chain_id,
            wallet=self.ctx.address,
            block_number=block,
            simulated_with=steps_sim[0].method,
            steps=steps,
            before=risk_before,
            after=risk_after,
            deltas=deltas,
            base_fee_wei=fees.base_fee_wei,
            priority_fee_wei=fees.priority_fee_wei,
            max_fee_per_gas_wei=fees.max_fee_wei,
            fee_cap_wei=fees.cap_wei,
            digest=program.digest(),
            notes=program.notes,
        )

    async def _creation_ticket(self, program: OnchainProgram) -> PreSignTicket:
        """A contract creation alone: eth_call runs it (eth_simulateV1 cannot build one on every node),
        eth_estimateGas prices it; it touches no balance but the gas."""
        if len(program.calls) != 1 or program.aave_pool is not None:
            raise ValueError(f"{program.name}: a contract creation is simulated on its own, not in a program")
        (call,) = program.calls
        block = int(await self.ctx.read("eth_blockNumber", lambda: self.ctx.w3.eth.block_number))
        simulation = await self.tm.simulate(call)
        gas = await self.tm.estimate_gas(call)
        fees = await self.tm.fee_quote()
        balances = []
        for t in program.watch:
            raw = (int(await self.ctx.read("eth_getBalance", lambda: self.ctx.w3.eth.get_balance(self.ctx.address)))
                   if t.address is None else await self.ctx.balance_raw(t.address))
            balances.append(TokenDelta(t.label, from_base_units(raw, t.decimals),
                                       from_base_units(raw - (call.value if t.address is None else 0), t.decimals)))
        return PreSignTicket(
            program=program.name, chain_id=self.tm.chain_id, wallet=self.ctx.address, block_number=block,
            simulated_with=simulation.method, steps=(TicketStep(call.label, "(contract creation)", gas,
                                                                self.tm.settings.gas_limit(gas), call.value),),
            before=None, after=None, deltas=tuple(balances), base_fee_wei=fees.base_fee_wei,
            priority_fee_wei=fees.priority_fee_wei, max_fee_per_gas_wei=fees.max_fee_wei,
            fee_cap_wei=fees.cap_wei, digest=program.digest(), notes=program.notes,
        )

    # ------------------------------------------------------------------------------------------ execute
    async def execute(self, program: OnchainProgram, *, hf_floor: Decimal | None) -> ProgramOutcome:
        """Ticket on the current state -> refuse below ``hf_floor`` -> send every call in order.

        ``hf_floor`` None skips the floor (programs that hold no debt risk, such as an approval);
        the live side always passes its floor. A failed step raises ``ProgramFailed`` naming it and
        carrying the steps that completed (those are final on chain: the program is not atomic
        unless it is a single executor transaction).
        """
        ticket = await self.ticket(program)
        if hf_floor is not None:
            refuse_below_floor(ticket, hf_floor)
        done: list[TxResult] = []
        for i, call in enumerate(program.calls):
            try:
                done.append(await self.tm.send(call))
            except TransactionError as exc:
                raise ProgramFailed(program, i, exc, done) from None
        return ProgramOutcome(ticket, tuple(done))
