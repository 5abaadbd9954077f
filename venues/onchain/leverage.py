"""Atomic leverage and deleverage through the project's LeverageExecutor, for one wallet.

Implements engine.domain.onchain_ports.AtomicLeveragePort. A plan is sized with the engine's own
maths, so the chain does what a backtest of the same mode does:

- entry: ``engine.math.leverage.flash_loan_for_target_ltv`` (F = l / (1 - l) x E with nothing
  supplied yet, no fee and staking at the oracle's rate), from the position read on chain, the flash
  fee of the lender and, when buying the LST on Uniswap, the pool's quote;
- partial exit: ``engine.math.aave.deleverage_withdrawal`` with the sale price quoted by Uniswap's
  QuoterV2 for the amount sold (iterated: the quote depends on the size);
- full exit: the whole debt (read by the contract at execution) and all the collateral.

The calls (an exact credit delegation or aToken approval where the current one falls short, then the
executor's ``enter`` / ``exit``) form one program whose pre-sign ticket is simulated before the plan
is returned; ``execute`` simulates again on the state of the moment, refuses the program below the
caller's health-factor floor and sends it. The contract itself reverts when the account ends outside
the requested bounds or a swap / stake returns less than its floor.

The flash lender is Morpho Blue (no fee) unless the request names AAVE. When Morpho cannot serve
the loan (no Morpho on the chain or no code at its address, less WETH in it than the loan, or the
Morpho program reverting in the simulation while the AAVE one passes) the plan is made again with
AAVE ``flashLoanSimple`` and its ``fallback_reason`` and ticket notes say why; the caller does not
pick the lender by hand. ``fallback_to_aave=False`` turns that off (the Morpho error is raised).

Before the first plan the executor is verified: its runtime code must hash to the pinned hash, its
owner must be this wallet and its Pool, Morpho, WETH and router must be the configured ones.
Anything else is refused before a single transaction is signed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from typing import Awaitable, Callable, Literal, TypeVar

from engine.domain.onchain_ports import (
    EntryRoute,
    FlashLender,
    LeverageEntryRequest,
    LeverageExitRequest,
    LeverageOutcome,
    LeveragePlan,
    TransactionError,
    TxStage,
)
from engine.domain.venue_ports import AaveAccountData
from engine.math.aave import deleverage_withdrawal
from engine.math.leverage import flash_loan_for_target_ltv
from venues.onchain import abi
from venues.onchain.aave_v3 import AaveV3Adapter
from venues.onchain.etherfi import EtherFiAdapter
from venues.onchain.executor_code import (
    ExecutorIdentity,
    executor_abi,
    identity_problems,
    read_identity,
)
from venues.onchain.lido import LidoAdapter
from venues.onchain.program import OnchainProgram, ProgramRunner, WatchedToken
from venues.onchain.tx.manager import TxCall
from venues.onchain.uniswap import FEE_DENOMINATOR, UniswapV3Adapter
from venues.onchain.wallet import WalletContext, from_base_units

VENUE = "leverage_executor"
MAX_UINT = 2**256 - 1
WAD = Decimal(10) ** 18
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
LENDER_CODE = {FlashLender.MORPHO: 0, FlashLender.AAVE: 1}
ROUTE_SWAP, ROUTE_LIDO, ROUTE_ETHERFI = 0, 1, 2
ALLOWANCE_HORIZON_S = 3600  # full exit: the aToken approval covers an hour of supply interest
SECONDS_PER_YEAR = Decimal(365 * 24 * 3600)
QUOTE_ITERATIONS = 4


_Request = TypeVar("_Request", LeverageEntryRequest, LeverageExitRequest)


class MorphoCannotServe(TransactionError):
    """Morpho Blue cannot lend this flash loan: not on this chain, no code at its address, less WETH
    than the loan, or its loan reverted in the simulation (``cause``). Nothing was signed."""

    def __init__(self, message: str, cause: TransactionError | None = None) -> None:
        super().__init__(VENUE, TxStage.SIMULATION, message, operation="morpho flash loan")
        self.cause = cause


def _e18(x: Decimal) -> int:
    """Token units or an 18-decimal fixed-point fraction (LTV, health factor) -> integer, rounded down."""
    return int((x * WAD).to_integral_value(rounding=ROUND_DOWN))


@dataclass(frozen=True)
class _Position:
    """The wallet's loop as the sizing sees it, read at one block."""

    collateral: Decimal  # LST units supplied
    debt: Decimal  # WETH owed
    price: Decimal  # ETH (WETH) per LST at AAVE's oracle
    account: AaveAccountData


class LeverageExecutorAdapter:
    """The wallet's LeverageExecutor at ``address``."""

    def __init__(
        self,
        ctx: WalletContext,
        address: str,
        *,
        aave: AaveV3Adapter,
        uniswap: UniswapV3Adapter,
        quoter: str,
        morpho: str | None,
        lido: LidoAdapter | None = None,
        etherfi: EtherFiAdapter | None = None,
    ) -> None:
        self.ctx = ctx
        self.address = ctx.reader.checksum(address)
        self.aave = aave
        self.uniswap = uniswap
        self.quoter = ctx.contract(quoter, abi.QUOTER_V2)
        self.morpho = ctx.reader.checksum(morpho) if morpho else None
        self.staking: dict[str, LidoAdapter | EtherFiAdapter] = {
            a.lst: a for a in (lido, etherfi) if a is not None
        }
        self.contract = ctx.contract(self.address, executor_abi())
        self.runner = ProgramRunner(ctx)
        self.weth = aave.token("WETH")
        self._identity: ExecutorIdentity | None = None
        self._programs: dict[str, OnchainProgram] = {}

    # ------------------------------------------------------------------------------------------ identity
    def _refuse(self, message: str) -> TransactionError:
        return TransactionError(
            VENUE,
            TxStage.VERIFICATION,
            f"executor {self.address}: {message}; nothing is signed for it (deploy the shipped "
            "contract with `python main.py executor deploy` and store its address)",
            operation="verify executor",
        )

    async def identity(self) -> ExecutorIdentity:
        """Read the deployed executor's code hash and configuration (no checks)."""
        return await read_identity(self.ctx.w3, self.address, self.ctx.read)

    async def verify(self) -> ExecutorIdentity:
        """The executor, checked: the pinned code, this wallet's, on the configured protocols."""
        if self._identity is not None:
            return self._identity
        found = await self.identity()
        problems = identity_problems(found, owner=self.ctx.address, pool=self.aave.pool_address,
                                     morpho=self.morpho, weth=self.weth, swap_router=self.uniswap.router)
        if problems:
            raise self._refuse("; ".join(problems))
        self._identity = found
        return found

    # ------------------------------------------------------------------------------------------ market reads
    async def _flash_fee(self, lender: FlashLender) -> Decimal:
        if lender is FlashLender.MORPHO:
            if self.morpho is None:
                raise MorphoCannotServe("no Morpho Blue on this chain (configs/venues/morpho.yaml)")
            code = await self.ctx.read("eth_getCode Morpho", lambda: self.ctx.w3.eth.get_code(self.morpho))
            if not code:
                raise MorphoCannotServe(f"no Morpho Blue contract at {self.morpho} on this chain")
            return Decimal(0)  # Morpho.flashLoan takes back exactly the amount lent
        pool = self.ctx.contract(self.aave.pool_address, abi.AAVE_FLASH_PREMIUM)
        bps = await self.ctx.read("Pool.FLASHLOAN_PREMIUM_TOTAL", pool.functions.FLASHLOAN_PREMIUM_TOTAL().call)
        return Decimal(int(bps)) / Decimal(10_000)

    async def _quote(self, token_in: str, token_out: str, amount_in_wei: int, fee: int) -> int:
        params = (self.uniswap.token(token_in), self.uniswap.token(token_out), amount_in_wei, fee, 0)
        out = await self.ctx.read(
            "QuoterV2.quoteExactInputSingle", self.quoter.functions.quoteExactInputSingle(params).call
        )
        return int(out[0])

    async def _state(self, lst: str) -> _Position:
        position, p_lst, p_weth = await asyncio.gather(
            self.aave.position([lst, "WETH"]), self.aave.oracle_price(lst), self.aave.oracle_price("WETH")
        )
        return _Position(position.assets[lst].supply, position.assets["WETH"].variable_debt, p_lst / p_weth,
                         position.account)

    def _watch(self, lst: str) -> tuple[WatchedToken, ...]:
        return (
            WatchedToken("ETH", None),
            WatchedToken("WETH", self.weth),
            WatchedToken(lst, self.aave.token(lst)),
            WatchedToken(f"a{lst} (AAVE collateral)", self.aave.a_token(lst), kind="collateral"),
            WatchedToken("WETH debt (AAVE)", self.aave.debt_token("WETH"), kind="debt"),
        )

    async def _morpho_can_lend(self, lender: FlashLender, amount_wei: int) -> None:
        """Morpho lends what it holds: refuse a loan larger than its WETH balance before simulating."""
        if lender is not FlashLender.MORPHO or self.morpho is None:
            return
        held = await self.ctx.balance_raw(self.weth, self.morpho)
        if held < amount_wei:
            raise MorphoCannotServe(
                f"Morpho Blue holds {from_base_units(held, 18):.6f} WETH, the flash loan needs "
                f"{from_base_units(amount_wei, 18):.6f}")

    async def _plan(self, kind: Literal["entry", "exit"], lender: FlashLender, lst: str, program: OnchainProgram,
                    flash: Decimal, collateral_change: Decimal, debt_change: Decimal) -> LeveragePlan:
        try:
            ticket = await self.runner.ticket(program)
        except TransactionError as exc:
            if lender is FlashLender.MORPHO and exc.stage is TxStage.SIMULATION:
                raise MorphoCannotServe(f"the Morpho flash-loan program reverted in the simulation: {exc.detail}",
                                        cause=exc) from None
            raise
        self._programs[ticket.digest] = program
        return LeveragePlan(kind, lender, lst, flash, collateral_change, debt_change, ticket)

    async def _with_fallback(self, request: _Request,
                             planner: Callable[[_Request, str], Awaitable[LeveragePlan]]) -> LeveragePlan:
        """Plan with the requested lender; from Morpho fall back to AAVE when Morpho cannot serve."""
        if request.lender is not FlashLender.MORPHO:
            return await planner(request, "")
        try:
            return await planner(request, "")
        except MorphoCannotServe as why:
            if not request.fallback_to_aave:
                raise
            reason = str(why.detail)
            try:
                plan = await planner(replace(request, lender=FlashLender.AAVE),
                                     f"fell back to AAVE flashLoanSimple: {reason}")
            except TransactionError:
                # The AAVE program fails too: the revert was not about Morpho's liquidity. Report the
                # first failure, which names the real cause.
                if why.cause is not None:
                    raise why.cause from None
                raise
            return replace(plan, fallback_reason=reason)

    # ------------------------------------------------------------------------------------------ entry
    async def plan_entry(self, request: LeverageEntryRequest) -> LeveragePlan:
        return await self._with_fallback(request, self._plan_entry)

    async def _plan_entry(self, request: LeverageEntryRequest, fallback_note: str) -> LeveragePlan:
        await self.verify()
        lst, l = request.lst, request.target_ltv
        if not Decimal(0) < l < Decimal(1):
            raise ValueError(f"target_ltv must be in (0, 1), got {l}")
        state, fee = await asyncio.gather(self._state(lst), self._flash_fee(request.lender))
        price = state.price
        equity = request.equity_weth + request.equity_eth
        pool_fee = self.uniswap.fee_tier("WETH", lst)
        if request.route is EntryRoute.STAKE:
            if lst not in self.staking:
                raise ValueError(f"no staking venue for {lst} in this environment (configs/venues/lido|etherfi.yaml)")
            rate = await self.staking[lst].rate()  # ETH per LST when staking at the protocol
            conversion = price / rate
        else:
            conversion = price * (1 - Decimal(pool_fee) / FEE_DENOMINATOR)  # first guess, then quoted
        flash = Decimal(0)
        for _ in range(QUOTE_ITERATIONS if request.route is EntryRoute.SWAP else 1):
            flash = Decimal(repr(flash_loan_for_target_ltv(
                float(state.collateral * price), float(state.debt), float(l),
                equity_eth=float(equity), fee_rate=float(fee), conversion=float(conversion))))
            if request.route is EntryRoute.SWAP:
                spend = equity + flash * (1 - fee)
                bought = from_base_units(await self._quote("WETH", lst, _e18(spend), pool_fee), 18)
                conversion = bought * price / spend
        flash_wei = _e18(flash)
        await self._morpho_can_lend(request.lender, flash_wei)
        converted = equity + flash * (1 - fee)
        if request.route is EntryRoute.STAKE:
            expected_units = converted / rate
        else:
            expected_units = converted * conversion / price
        # The floor: staking at the protocol or buying at the oracle price less the pool fee, each less
        # the configured maximum slippage (the rule the Uniswap adapter applies to every swap).
        floor = (
            expected_units * (1 - self.uniswap.max_slippage)
            if request.route is EntryRoute.STAKE
            else self.uniswap.minimum_out(converted, 1 / price, pool_fee)
        )
        bounds = (_e18(request.min_health_factor), MAX_UINT, _e18(l - request.ltv_tolerance),
                  _e18(l + request.ltv_tolerance))
        staking = self.staking.get(lst)
        route_code, staking_pool, rebasing = ROUTE_SWAP, ZERO_ADDRESS, ZERO_ADDRESS
        if request.route is EntryRoute.STAKE:
            assert staking is not None
            if isinstance(staking, LidoAdapter):
                route_code = ROUTE_LIDO  # ETH straight into wstETH: staked and wrapped in one step
            else:
                route_code, staking_pool, rebasing = ROUTE_ETHERFI, staking.liquidity_pool, staking.eeth
        entry = (
            LENDER_CODE[request.lender], route_code, self.aave.token(lst), staking_pool, rebasing, pool_fee,
            _e18(request.equity_weth), flash_wei, _e18(floor), bounds,
        )
        calls = await self._delegation_calls(flash_wei)
        if request.equity_weth > 0:
            calls += await self.ctx.approval_calls(
                self.weth, self.address, _e18(request.equity_weth), f"{VENUE}: WETH equity {request.equity_weth}"
            )
        calls.append(TxCall(
            self.address, self.contract.encode_abi("enter", args=[entry]), value=_e18(request.equity_eth),
            label=f"{VENUE}.enter: flash {flash:.6f} WETH ({request.lender.value}) -> {request.route.value} {lst}",
        ))
        notes = (
            f"position before: {state.collateral:.6f} {lst} ({state.collateral * price:.6f} ETH at the "
            f"oracle), {state.debt:.6f} WETH debt; equity added {equity} ETH",
            f"flash {flash:.9f} WETH from {request.lender.value} (fee {fee}), borrowed back for the wallet "
            f"through credit delegation",
            f"expected +{expected_units:.9f} {lst} collateral (floor {floor:.9f}), +{flash:.9f} WETH debt",
            f"bounds: LTV {l} ± {request.ltv_tolerance}, health factor >= {request.min_health_factor}",
        ) + ((fallback_note,) if fallback_note else ())
        program = OnchainProgram(
            f"leverage entry to LTV {l} ({request.lender.value} flash, {request.route.value} {lst})",
            tuple(calls), self._watch(lst), self.aave.pool_address, notes,
        )
        return await self._plan("entry", request.lender, lst, program, flash, expected_units, flash)

    async def _delegation_calls(self, amount_wei: int) -> list[TxCall]:
        token = self.aave.debt_token("WETH")
        contract = self.ctx.contract(token, abi.CREDIT_DELEGATION)
        current = int(await self.ctx.read(
            "variableDebtWETH.borrowAllowance",
            contract.functions.borrowAllowance(self.ctx.address, self.address).call,
        ))
        if current >= amount_wei:
            return []
        return [self.ctx.call(token, abi.CREDIT_DELEGATION, "approveDelegation", [self.address, amount_wei],
                              label=f"aave_v3.approveDelegation {from_base_units(amount_wei, 18):.6f} WETH to the executor")]

    # ------------------------------------------------------------------------------------------ exit
    async def plan_exit(self, request: LeverageExitRequest) -> LeveragePlan:
        return await self._with_fallback(request, self._plan_exit)

    async def _plan_exit(self, request: LeverageExitRequest, fallback_note: str) -> LeveragePlan:
        await self.verify()
        lst = request.lst
        state, fee = await asyncio.gather(self._state(lst), self._flash_fee(request.lender))
        collateral, debt, price = state.collateral, state.debt, state.price
        if debt <= 0:
            raise ValueError(f"no WETH debt to repay on AAVE for {self.ctx.address}: nothing to deleverage")
        pool_fee = self.uniswap.fee_tier(lst, "WETH")
        a_token = self.aave.a_token(lst)
        if request.target_health_factor is None:
            return await self._plan_full_exit(request, state, fee, pool_fee, a_token, fallback_note)
        h = request.target_health_factor
        account = state.account
        hf = account.health_factor
        if hf is not None and hf >= h:
            raise ValueError(f"health factor {hf:.6f} is already at or above the target {h}: nothing to deleverage")
        lt = Decimal(account.current_liquidation_threshold_bps) / Decimal(10_000)
        sale = price * (1 - Decimal(pool_fee) / FEE_DENOMINATOR)  # first guess, then quoted
        withdraw = Decimal(0)
        for _ in range(QUOTE_ITERATIONS):
            withdraw = Decimal(repr(deleverage_withdrawal(
                float(collateral), float(price), float(debt), float(lt), float(h), float(sale / (1 + fee)))))
            if withdraw >= collateral:
                raise ValueError(
                    f"selling collateral at {sale:.6f} WETH per {lst} cannot bring the health factor to {h}: "
                    "exit fully instead")
            sale = from_base_units(await self._quote(lst, "WETH", _e18(withdraw), pool_fee), 18) / withdraw
        withdraw_wei = _e18(withdraw)
        floor = self.uniswap.minimum_out(withdraw, price, pool_fee)
        # The flash loan repays what the sale's floor can pay back; whatever the sale brings above the
        # floor repays more debt inside the same transaction, so all the proceeds go to the debt.
        flash_wei = min(int((floor * WAD / (1 + fee)).to_integral_value(rounding=ROUND_DOWN)) - 1, _e18(debt))
        await self._morpho_can_lend(request.lender, flash_wei)
        bounds = (_e18(h - request.hf_tolerance), _e18(h + request.hf_tolerance), 0, _e18(Decimal(1)))
        exit_params = (LENDER_CODE[request.lender], self.aave.token(lst), pool_fee, flash_wei, withdraw_wei,
                       _e18(floor), bounds)
        calls = await self.ctx.approval_calls(a_token, self.address, withdraw_wei,
                                              f"{VENUE}: a{lst} {withdraw:.6f} to withdraw")
        calls.append(TxCall(
            self.address, self.contract.encode_abi("exit", args=[exit_params]),
            label=f"{VENUE}.exit: flash {from_base_units(flash_wei, 18):.6f} WETH ({request.lender.value}), "
                  f"sell {withdraw:.6f} {lst}",
        ))
        expected_repaid = withdraw * sale - from_base_units(flash_wei, 18) * fee
        notes = (
            f"position before: {collateral:.6f} {lst}, {debt:.6f} WETH debt, health factor "
            f"{'∞' if hf is None else f'{hf:.6f}'}",
            f"withdraw and sell {withdraw:.9f} {lst} at {sale:.6f} WETH each (quoted; floor {floor:.9f} WETH)",
            f"flash {from_base_units(flash_wei, 18):.9f} WETH from {request.lender.value} (fee {fee}); the sale's "
            f"surplus repays more debt: about {expected_repaid:.9f} WETH repaid in all",
            f"bounds: health factor {h} ± {request.hf_tolerance}",
        ) + ((fallback_note,) if fallback_note else ())
        program = OnchainProgram(
            f"deleverage to health factor {h} ({request.lender.value} flash, sell {lst})",
            tuple(calls), self._watch(lst), self.aave.pool_address, notes,
        )
        return await self._plan("exit", request.lender, lst, program, from_base_units(flash_wei, 18),
                                -withdraw, -expected_repaid)

    async def _plan_full_exit(self, request: LeverageExitRequest, state: _Position, fee: Decimal,
                              pool_fee: int, a_token: str, fallback_note: str) -> LeveragePlan:
        lst, collateral, debt, price = request.lst, state.collateral, state.debt, state.price
        # The contract reads the whole debt at execution: an hour of interest on top of what is owed now.
        await self._morpho_can_lend(request.lender, _e18(debt * Decimal("1.001")))
        floor = self.uniswap.minimum_out(collateral, price, pool_fee)
        if floor < debt * (1 + fee):
            raise ValueError(
                f"selling all {collateral:.6f} {lst} at the floor ({floor:.6f} WETH) would not repay the "
                f"{debt:.6f} WETH debt and the flash fee: add WETH or deleverage in steps")
        reserve = await self.aave.reserve_state(lst)
        growth = 1 + reserve.liquidity_rate * ALLOWANCE_HORIZON_S / SECONDS_PER_YEAR
        allowance_wei = int((Decimal(_e18(collateral)) * growth).to_integral_value(rounding="ROUND_UP")) + 1
        bounds = (MAX_UINT, MAX_UINT, 0, 0)  # no debt left: health factor "infinite", LTV 0
        exit_params = (LENDER_CODE[request.lender], self.aave.token(lst), pool_fee, MAX_UINT, MAX_UINT,
                       _e18(floor), bounds)
        calls = await self.ctx.approval_calls(a_token, self.address, allowance_wei,
                                              f"{VENUE}: all a{lst} (+1 h of interest)")
        calls.append(TxCall(
            self.address, self.contract.encode_abi("exit", args=[exit_params]),
            label=f"{VENUE}.exit: repay all {debt:.6f} WETH ({request.lender.value} flash), sell all {lst}",
        ))
        notes = (
            f"position before: {collateral:.6f} {lst}, {debt:.6f} WETH debt",
            f"flash the whole debt from {request.lender.value} (fee {fee}), withdraw and sell every {lst} "
            f"(floor {floor:.9f} WETH), the rest back to the wallet",
        ) + ((fallback_note,) if fallback_note else ())
        program = OnchainProgram(
            f"full exit ({request.lender.value} flash, sell all {lst})", tuple(calls), self._watch(lst),
            self.aave.pool_address, notes,
        )
        return await self._plan("exit", request.lender, lst, program, debt, -collateral, -debt)

    def take_program(self, plan: LeveragePlan) -> OnchainProgram:
        """The calls behind ``plan`` (a preview simulates them with the steps after it); the plan can no
        longer be executed here afterwards: a preview never signs what it planned."""
        program = self._programs.pop(plan.ticket.digest, None)
        if program is None:
            raise ValueError("this plan was not made by this executor adapter (plan it here first)")
        return program

    # ------------------------------------------------------------------------------------------ execute
    async def execute(self, plan: LeveragePlan, *, hf_floor: Decimal) -> LeverageOutcome:
        program = self._programs.get(plan.ticket.digest)
        if program is None:
            raise ValueError("this plan was not made by this executor adapter (plan it here first)")
        await self.verify()
        outcome = await self.runner.execute(program, hf_floor=hf_floor)
        self._programs.pop(plan.ticket.digest, None)
        flash, premium = await self._reported_flash(outcome.results[-1].tx_hash, plan.kind)
        return LeverageOutcome(plan, outcome.ticket, outcome.results, flash, premium, await self.aave.account())

    async def _reported_flash(self, tx_hash: str, kind: str) -> tuple[Decimal, Decimal]:
        receipt = await self.ctx.read(
            "eth_getTransactionReceipt", lambda: self.ctx.w3.eth.get_transaction_receipt(tx_hash)
        )
        event = self.contract.events.Entered() if kind == "entry" else self.contract.events.Exited()
        for entry in receipt["logs"]:
            if entry["address"].lower() != self.address.lower():
                continue
            try:
                args = event.process_log(entry)["args"]
            except Exception:  # noqa: BLE001 - another event of the executor
                continue
            return from_base_units(args["flashAmount"], 18), from_base_units(args["premium"], 18)
        raise TransactionError(VENUE, TxStage.EXECUTION, f"no {kind} event from the executor in {tx_hash}")
