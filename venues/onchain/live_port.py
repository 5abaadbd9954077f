"""Engine instructions on the chain: the venue side of engine.domain.onchain_live.OnchainInstructionPort.

A live session's on-chain steps arrive as the same ``Instruction`` records a backtest executes, and
are carried out here with the protocol adapters (every transaction simulated, fee-capped, signed in
memory, confirmed by the TxManager):

- APPROVE: no transaction of its own: every supply, repay, swap and wrap approves exactly what it
  spends right before it (no standing allowance is left behind);
- SET_EMODE: the configured e-mode category (none sent when the account already has it);
- SUPPLY / WITHDRAW / BORROW / REPAY on AAVE (the whole position with ``max`` when the request is
  all of it, so no index dust is left); WETH is wrapped from native ETH where the wallet's WETH is short;
- STAKE: Lido submit + wstETH wrap, ether.fi deposit + weETH wrap (WETH unwrapped first if needed,
  native ETH below the gas reserve never used);
- SWAP on Uniswap v3 with the oracle floor and the configured slippage (ETH is swapped as WETH);
- BUNDLE: one LeverageExecutor transaction — an entry (flash loan, stake, supply, borrow) to the
  strategy's target LTV, or an exit to the health factor the bundle's amounts leave (fully when it
  takes all the collateral); Morpho first with the automatic AAVE fallback.

The book's token names are the engine's: ``ETH`` is native ETH plus WETH (AAVE's WETH reserve is the
wallet's ETH). The gas a step burned is summed from the receipts of every nonce it used, approvals
included.
"""

from __future__ import annotations

import asyncio
import time
from decimal import ROUND_DOWN, Decimal
from typing import Any, Callable, Sequence

from engine.domain.instructions import Instruction, Op
from engine.domain.onchain_live import ChainCancelResult, ChainHoldings, ChainStep, PendingChainTx
from engine.domain.onchain_ports import (
    MAX,
    PENDING_STATUSES,
    EntryRoute,
    LeverageEntryRequest,
    LeverageExitRequest,
    TransactionError,
    TxStage,
)
from venues.onchain.execution import OnchainExecution
from venues.onchain.plan_simulation import ChainPlanSimulator
from venues.onchain.tx.manager import MinedBeforeCancel
from venues.onchain.wallet import from_base_units

WEI = Decimal(10) ** 18
ALL = Decimal("0.999999")  # a request for this share of a position or more takes all of it


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


class ChainInstructionExecutor:
    """The wallet of one ``OnchainExecution`` executing engine instructions."""

    def __init__(self, execution: OnchainExecution, *, chain: str, emode_category: int,
                 gas_reserve_eth: Decimal, tokens: Sequence[str] = ("USDT", "wstETH", "weETH"),
                 reserves: Sequence[str] = ("USDT", "WETH", "wstETH", "weETH"),
                 ltv_tolerance: Decimal = Decimal("0.002"), hf_tolerance: Decimal = Decimal("0.002"),
                 on_close: Callable[[], None] | None = None) -> None:
        if execution.aave is None or execution.weth is None:
            raise ValueError("on-chain live execution needs AAVE v3 and WETH in the venue configuration")
        self.ex = execution
        self._chain = chain
        self.emode_category = emode_category
        self.gas_reserve = gas_reserve_eth
        self.tokens = tuple(tokens)
        self.reserves = tuple(reserves)
        self.ltv_tolerance = ltv_tolerance
        self.hf_tolerance = hf_tolerance
        self.aave = execution.aave
        self.weth_token = self.aave.token("WETH")
        self._on_close = on_close

    # ------------------------------------------------------------------ identity
    @property
    def chain(self) -> str:
        return self._chain

    @property
    def wallet(self) -> str:
        return self.ex.ctx.address

    # ------------------------------------------------------------------ reads
    async def holdings(self) -> ChainHoldings:
        """The wallet's tokens, AAVE scaled balances, e-mode and health factor, every read pinned to
        one block (the head, read once): a reading never mixes a balance from before a transaction
        with a debt from after it. The block is recorded in the reading."""
        ctx = self.ex.ctx
        block = int(await ctx.read("eth_blockNumber", lambda: ctx.w3.eth.block_number))
        native_raw, token_raw, position = await asyncio.gather(
            ctx.read("eth_getBalance", lambda: ctx.w3.eth.get_balance(ctx.address, block)),
            asyncio.gather(*(ctx.balance(self.aave.token(t), block=block) for t in self.tokens),
                           ctx.balance(self.weth_token, block=block)),
            self.aave.position(list(self.reserves), block=block))
        native_raw = int(native_raw)
        tokens = {t: float(v) for t, v in zip(self.tokens, token_raw[:-1])}
        tokens["ETH"] = float(Decimal(native_raw) / WEI + token_raw[-1])
        key = {"WETH": "WETH"}
        supply_scaled = {key.get(a, a): float(p.scaled_supply) for a, p in position.assets.items()}
        debt_scaled = {key.get(a, a): float(p.scaled_variable_debt) for a, p in position.assets.items()}
        supply = {a: float(p.supply) for a, p in position.assets.items()}
        debt = {a: float(p.variable_debt) for a, p in position.assets.items()}
        hf = position.account.health_factor
        return ChainHoldings(self._chain, block, tokens, supply_scaled, debt_scaled,
                             position.account.emode_category != 0, None if hf is None else float(hf),
                             supply, debt)

    # ------------------------------------------------------------------ safety
    def halt(self, reason: str) -> None:
        self.ex.tm.halt(reason)

    def resume(self) -> None:
        self.ex.tm.resume()

    def pending(self) -> list[PendingChainTx]:
        tm = self.ex.tm
        out = []
        for nonce in tm.pending_nonces():
            rows = [r for r in tm.ledger.by_nonce(tm.chain_id, tm.address, nonce) if r.status in PENDING_STATUSES]
            row = rows[-1] if rows else None
            out.append(PendingChainTx(self._chain, nonce, row.tx_hash if row else "", row.label if row else ""))
        return out

    async def cancel(self, nonce: int) -> ChainCancelResult:
        started = time.monotonic()
        try:
            result = await self.ex.tm.cancel(nonce)
        except MinedBeforeCancel as exc:          # the original took the nonce first (also mid-cancel)
            return ChainCancelResult(self._chain, nonce, "mined first", (time.monotonic() - started) * 1000.0,
                                     exc.result.tx_hash)
        except TransactionError as exc:
            return ChainCancelResult(self._chain, nonce, f"failed: {exc.detail}",
                                     (time.monotonic() - started) * 1000.0, exc.tx_hash)
        return ChainCancelResult(self._chain, nonce, "cancelled", (time.monotonic() - started) * 1000.0,
                                 result.tx_hash)

    async def close(self) -> None:
        try:
            await self.ex.close()
        finally:
            if self._on_close is not None:
                self._on_close()
                self._on_close = None

    # ------------------------------------------------------------------ writes
    async def execute(self, ins: Instruction, *, hf_floor: Decimal, target_ltv: float | None) -> ChainStep:
        first = await self._next_nonce()
        note = ""
        try:
            note = await self._dispatch(ins, hf_floor, target_ltv) or ""
        except TransactionError as exc:
            exc.completed_hashes = await self._hashes(first)  # type: ignore[attr-defined]
            raise
        hashes = await self._hashes(first)
        gas = await self._gas(hashes)
        return ChainStep(float(gas), tuple(hashes), note)

    async def _next_nonce(self) -> int:
        tm = self.ex.tm
        highest = tm.ledger.highest_nonce(tm.chain_id, tm.address)
        return 0 if highest is None else highest + 1

    async def _hashes(self, first: int) -> list[str]:
        """The final transaction of every nonce this step used (the one that was mined)."""
        tm = self.ex.tm
        highest = tm.ledger.highest_nonce(tm.chain_id, tm.address)
        out = []
        for nonce in range(first, (highest if highest is not None else first - 1) + 1):
            rows = tm.ledger.by_nonce(tm.chain_id, tm.address, nonce)
            final = [r for r in rows if r.status.value in ("confirmed", "reverted")]
            if final:
                out.append(final[-1].tx_hash)
        return out

    async def _gas(self, hashes: Sequence[str]) -> Decimal:
        ctx = self.ex.ctx
        total = 0
        for h in hashes:
            receipt: Any = await ctx.read("eth_getTransactionReceipt", lambda h=h: ctx.w3.eth.get_transaction_receipt(h))
            total += int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
        return Decimal(total) / WEI

    async def _dispatch(self, ins: Instruction, hf_floor: Decimal, target_ltv: float | None) -> str | None:
        op = ins.op
        if op is Op.APPROVE:
            return "no transaction: each spend approves exactly its own amount"
        if op is Op.SET_EMODE:
            account = await self.aave.account()
            if account.emode_category == self.emode_category:
                return f"e-mode {self.emode_category} already set"
            await self.aave.set_user_emode(self.emode_category)
            return None
        if op is Op.SUPPLY:
            amount = await self._spendable(ins.asset, _dec(ins.amount))
            await self.aave.approve(ins.asset, amount)
            await self.aave.supply(ins.asset, amount)
            return None
        if op is Op.WITHDRAW:
            have = (await self.aave.position([ins.asset])).assets[ins.asset].supply
            await self.aave.withdraw(ins.asset, MAX if _dec(ins.amount) >= have * ALL else _dec(ins.amount))
            return None
        if op is Op.BORROW:
            await self.aave.borrow(ins.asset, _dec(ins.amount))
            return None
        if op is Op.REPAY:
            return await self._repay(ins.asset, _dec(ins.amount))
        if op is Op.STAKE:
            return await self._stake(ins.to_asset, _dec(ins.amount))
        if op is Op.SWAP:
            return await self._swap(ins.asset, ins.to_asset, _dec(ins.amount))
        if op is Op.BUNDLE:
            return await self._bundle(ins, hf_floor, target_ltv)
        raise TransactionError(self._chain, TxStage.SIMULATION,
                               f"{op.value} is not an on-chain instruction of its own (only inside a bundle)",
                               operation=op.value)

    async def _ensure_weth(self, amount: Decimal) -> None:
        """Wrap native ETH (above the gas reserve) when the wallet's WETH is short of ``amount``."""
        ctx = self.ex.ctx
        have = await ctx.balance(self.weth_token)
        if have >= amount:
            return
        native = Decimal(int(await ctx.read("eth_getBalance", lambda: ctx.w3.eth.get_balance(ctx.address)))) / WEI
        short = (amount - have).quantize(Decimal("1e-18"), rounding="ROUND_UP")
        if native - self.gas_reserve < short:
            raise TransactionError(self._chain, TxStage.SIMULATION,
                                   f"the wallet holds {have} WETH and {native} ETH (gas reserve {self.gas_reserve}): "
                                   f"{amount} WETH is not there", operation="wrap ETH")
        assert self.ex.weth is not None
        await self.ex.weth.wrap(short)

    async def _spendable(self, asset: str, amount: Decimal) -> Decimal:
        """``amount`` of a wallet token, wrapping WETH if needed; a float request a hair above what the
        chain holds (rounding of the book) is taken as all of it."""
        if asset in ("ETH", "WETH"):
            await self._ensure_weth(amount)
            return amount
        have = await self.ex.ctx.balance(self.aave.token(asset))
        if amount > have and amount <= have * Decimal("1.000001"):
            return have
        return amount

    async def _repay(self, asset: str, amount: Decimal) -> str | None:
        owed = (await self.aave.position([asset])).assets[asset].variable_debt
        if amount >= owed * ALL:
            allowance = await self.aave.repay_max_allowance(asset)
            if asset == "WETH":
                await self._ensure_weth(allowance)
            await self.aave.approve(asset, allowance)
            await self.aave.repay(asset, MAX)
            return None
        amount = await self._spendable(asset, amount)
        await self.aave.approve(asset, amount)
        await self.aave.repay(asset, amount)
        return None

    async def _stake(self, lst: str, eth: Decimal) -> str | None:
        adapter = self.ex.lido if lst == "wstETH" else self.ex.etherfi
        if adapter is None:
            raise TransactionError(self._chain, TxStage.SIMULATION, f"no staking venue for {lst} configured",
                                   operation="stake")
        ctx = self.ex.ctx
        native = Decimal(int(await ctx.read("eth_getBalance", lambda: ctx.w3.eth.get_balance(ctx.address)))) / WEI
        if native - self.gas_reserve < eth:
            assert self.ex.weth is not None
            need = (eth - (native - self.gas_reserve)).quantize(Decimal("1e-18"), rounding="ROUND_UP")
            weth = await ctx.balance(self.weth_token)
            await self.ex.weth.unwrap(min(need, weth))
        before = (await adapter.balances()).base
        await adapter.stake(eth)
        minted = (await adapter.balances()).base - before
        if minted > 0:
            await adapter.wrap(minted)
        return None

    async def _swap(self, sold: str, bought: str, amount: Decimal) -> str | None:
        uniswap = self.ex.uniswap
        if uniswap is None:
            raise TransactionError(self._chain, TxStage.SIMULATION, "no Uniswap configured", operation="swap")
        token_in = "WETH" if sold == "ETH" else sold
        token_out = "WETH" if bought == "ETH" else bought
        amount = await self._spendable(token_in, amount)
        decimals = await self.ex.ctx.decimals(uniswap.token(token_in))
        amount = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)
        await uniswap.swap_exact_input(token_in, token_out, amount)
        return None

    async def exit_request(self, ins: Instruction) -> LeverageExitRequest:
        """The executor exit a REPAY + WITHDRAW bundle asks for: fully when it takes (nearly) all the
        collateral or repays all the debt, else to the health factor its amounts leave."""
        ops = {c.op: c for c in ins.children}
        lst = ops[Op.WITHDRAW].asset
        position = await self.aave.position([lst, "WETH"])
        coll, debt = position.assets[lst].supply, position.assets["WETH"].variable_debt
        take, repay = _dec(ops[Op.WITHDRAW].amount), _dec(ops[Op.REPAY].amount)
        if take >= coll * ALL or repay >= debt * ALL:
            target = None
        else:
            hf_now = position.account.health_factor or Decimal(0)
            # The bundle keeps (coll - take) against (debt - repay): its health factor scales so.
            target = (hf_now * (coll - take) / coll * debt / (debt - repay)).quantize(Decimal("1e-6"))
        return LeverageExitRequest(lst, target, hf_tolerance=self.hf_tolerance)

    def plan_simulation(self, *, hf_floor: Decimal, target_ltv: float | None) -> ChainPlanSimulator:
        """A plan (the flatten's on-chain steps) simulated step after step on one block, nothing signed."""
        return ChainPlanSimulator(self, hf_floor=hf_floor, target_ltv=target_ltv)

    async def _bundle(self, ins: Instruction, hf_floor: Decimal, target_ltv: float | None) -> str:
        executor = self.ex.executor
        if executor is None:
            raise TransactionError(self._chain, TxStage.VERIFICATION,
                                   "an atomic bundle needs the wallet's LeverageExecutor (store executor_address "
                                   "in the keyring after `python main.py executor deploy`)", operation="bundle")
        ops = {c.op: c for c in ins.children}
        if Op.BORROW in ops and Op.STAKE in ops:
            if target_ltv is None:
                raise ValueError("an atomic entry needs the strategy's target LTV")
            lst = ops[Op.SUPPLY].asset
            flash = _dec(ops[Op.FLASH_BORROW].amount)
            equity = max(_dec(ops[Op.STAKE].amount) - flash, Decimal(0)).quantize(Decimal("1e-12"), ROUND_DOWN)
            await self._ensure_weth(equity)
            plan = await executor.plan_entry(LeverageEntryRequest(
                lst, _dec(target_ltv), ltv_tolerance=self.ltv_tolerance, min_health_factor=hf_floor,
                route=EntryRoute.STAKE, equity_weth=equity))
        elif Op.REPAY in ops and Op.WITHDRAW in ops:
            plan = await executor.plan_exit(await self.exit_request(ins))
        else:
            raise TransactionError(self._chain, TxStage.SIMULATION,
                                   f"bundle of {', '.join(c.op.value for c in ins.children)} is not a loop entry "
                                   "or exit the executor knows", operation="bundle")
        await executor.execute(plan, hf_floor=hf_floor)
        return (f"{plan.kind} with {plan.lender.value} flash {from_base_units(int(plan.flash_amount * WEI), 18):.6f} WETH"
                + (f"; {plan.fallback_reason}" if plan.fallback_reason else ""))
