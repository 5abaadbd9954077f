"""On-chain leg programs: staking, the AAVE leverage loop, deleverage and proportional unwind."""
from __future__ import annotations

from engine.components.risk import aave_state
from engine.domain.instructions import Instruction, Op
from engine.math import aave as aave_math
from engine.math.costs import gas_cost_eth, slippage_bps
from engine.math.leverage import flash_loan_for_target_ltv, sequential_loop
from engine.strategies.base import Program, StrategyContext

AAVE = "aave_v3"
DEBT = "WETH"
MAX_UNWIND_ITERATIONS = 50   # sequential walk-down bound; each step frees at least (1 - LTV) of itself


def stake_venue(lst: str) -> str:
    return "etherfi" if lst == "weETH" else "lido"


def stake(ctx: StrategyContext, eth: float, reason: str, iteration: int | None = None) -> Program:
    lst = ctx.params.strategy.lst
    yield Instruction(Op.STAKE, stake_venue(lst), "ETH", eth, to_asset=lst, reason=reason, iteration=iteration)


def estimated_gas_eth(ctx: StrategyContext, *ops: str) -> float:
    units = sum(ctx.params.gas_units[o] for o in ops)
    return gas_cost_eth(units, ctx.market.gas_gwei[ctx.t])


def lever_up(ctx: StrategyContext, equity_eth: float, reason: str, first_time: bool = True) -> Program:
    """Enter (or grow) the LST/WETH loop on AAVE with `equity_eth` of ETH already in the wallet.
    The e-mode switch and the approvals are one-off: `first_time=False` skips them."""
    sp = ctx.params.strategy
    lst = sp.lst
    if first_time:
        yield Instruction(Op.SET_EMODE, AAVE, reason=reason) if sp.emode else Instruction(
            Op.APPROVE, AAVE, DEBT, reason=reason)
        yield Instruction(Op.APPROVE, AAVE, lst, reason=reason)
    if sp.loop_method == "atomic":
        flash_venue = sp.flash_venue
        fee = ctx.params.flash_fee_rate[flash_venue]
        # The flash fee is paid out of the staked amount; sizing for it keeps debt / collateral at the
        # target exactly (the executor contract sizes its entry the same way).
        f = flash_loan_for_target_ltv(0.0, 0.0, sp.target_ltv, equity_eth=equity_eth, fee_rate=fee)
        staked = equity_eth + f - f * fee
        units = staked / ctx.market.lst_oracle[lst][ctx.t]
        yield Instruction(Op.BUNDLE, flash_venue, reason=reason, gas_op="ATOMIC_ENTRY", children=[
            Instruction(Op.FLASH_BORROW, flash_venue, DEBT, f),
            Instruction(Op.STAKE, stake_venue(lst), "ETH", staked, to_asset=lst),
            Instruction(Op.SUPPLY, AAVE, lst, units),
            Instruction(Op.BORROW, AAVE, DEBT, f),
            Instruction(Op.FLASH_REPAY, flash_venue, DEBT, f),
        ])
        return
    wallet = ctx.portfolio.wallet
    for step in sequential_loop(equity_eth, sp.target_ltv, sp.max_iterations, sp.min_borrow_eth):
        # Gas paid between rounds comes out of the borrowed ETH: stake what is really there, and
        # borrow against what was really supplied, so every round sits at the target LTV.
        amount = min(step.stake_eth, max(wallet.tokens.get("ETH", 0.0), 0.0))
        fill = yield Instruction(Op.STAKE, stake_venue(lst), "ETH", amount, to_asset=lst,
                                 reason=reason, iteration=step.iteration)
        yield Instruction(Op.SUPPLY, AAVE, lst, fill.amount_out, reason=reason, iteration=step.iteration)
        if step.borrow_eth > 0.0:
            yield Instruction(Op.BORROW, AAVE, DEBT, amount * sp.target_ltv, reason=reason,
                              iteration=step.iteration)


def _position(ctx: StrategyContext) -> tuple[float, float]:
    """(LST collateral units on AAVE, WETH debt) now."""
    lst = ctx.params.strategy.lst
    w = ctx.portfolio.wallet
    mv = ctx.market
    coll = w.supply_scaled.get(lst, 0.0) * mv.supply_index[lst][ctx.t]
    debt = w.debt_scaled.get(DEBT, 0.0) * mv.borrow_index[DEBT][ctx.t]
    return coll, debt


def _sale_rate(ctx: StrategyContext, units: float) -> float:
    """ETH received per LST unit when sold on the DEX: market peg less slippage and pool fee."""
    lst = ctx.params.strategy.lst
    mv = ctx.market
    market = mv.lst_market[lst][ctx.t]
    notional = units * market * mv.eth[ctx.t]
    bps = slippage_bps(notional, *(c[ctx.t] for c in mv.cost_bps[f"ETH_{lst}"])) + ctx.params.swap_fee_bps
    return market * (1.0 - bps * 1e-4)


def unwind(ctx: StrategyContext, collateral_units: float, debt_eth: float, reason: str) -> Program:
    """Withdraw `collateral_units` of LST and repay `debt_eth`; surplus ETH stays in the wallet.

    With a flash venue this is one atomic bundle (flash the debt, repay, withdraw, sell, repay the flash).
    Without one (sequential loop method) it walks down in iterations: each withdraws only what keeps
    HF >= 1 (AAVE refuses more), sells it and repays, until the requested amounts are done.
    """
    sp = ctx.params.strategy
    lst = sp.lst
    # One depth-limited swap of the collateral per hour: a larger unwind is scaled down (keeping its
    # debt share), and the next hour's check asks for the rest.
    depth_units = ctx.params.dex_max_order_usdt * (1.0 - 1e-12) / (ctx.market.lst_market[lst][ctx.t] * ctx.eth)
    if collateral_units > depth_units:
        debt_eth *= depth_units / collateral_units
        collateral_units = depth_units
    if sp.flash_venue:
        fee = ctx.params.flash_fee_rate[sp.flash_venue]
        proceeds = collateral_units * _sale_rate(ctx, collateral_units)
        debt_eth = min(debt_eth, proceeds / (1.0 + fee) * (1.0 - 1e-9))
        yield Instruction(Op.BUNDLE, sp.flash_venue, reason=reason, gas_op="ATOMIC_DELEVERAGE_ONE_SWAP",
                          children=[
                              Instruction(Op.FLASH_BORROW, sp.flash_venue, DEBT, debt_eth),
                              Instruction(Op.REPAY, AAVE, DEBT, debt_eth),
                              Instruction(Op.WITHDRAW, AAVE, lst, collateral_units),
                              Instruction(Op.SWAP, "uniswap", lst, collateral_units, to_asset="ETH"),
                              Instruction(Op.FLASH_REPAY, sp.flash_venue, DEBT, debt_eth),
                          ])
        return
    lt = ctx.params.aave.collateral(lst, ctx.portfolio.wallet.emode).liquidation_threshold
    oracle = ctx.market.lst_oracle[lst][ctx.t]
    left_units, left_debt = collateral_units, debt_eth
    for iteration in range(MAX_UNWIND_ITERATIONS):
        if left_units <= 1e-12:
            return
        coll, debt = _position(ctx)
        safe = coll - debt / (oracle * lt) * (1.0 + 1e-9) if debt > 0 else coll
        w = min(left_units, max(safe, 0.0))
        if w <= 1e-12:
            return
        yield Instruction(Op.WITHDRAW, AAVE, lst, w, reason=reason, iteration=iteration)
        fill = yield Instruction(Op.SWAP, "uniswap", lst, w, to_asset="ETH", reason=reason, iteration=iteration)
        repay = min(fill.amount_out, left_debt)
        if repay > 0.0:
            yield Instruction(Op.REPAY, AAVE, DEBT, repay, reason=reason, iteration=iteration)
        left_units -= w
        left_debt -= repay


def deleverage_to_target(ctx: StrategyContext, reason: str) -> Program:
    """Bring HF back to hf_target by selling collateral to repay debt ."""
    sp = ctx.params.strategy
    lst = sp.lst
    coll, debt = _position(ctx)
    aave_params = ctx.params.aave
    lt = aave_params.collateral(lst, ctx.portfolio.wallet.emode).liquidation_threshold
    oracle = ctx.market.lst_oracle[lst][ctx.t]
    w = aave_math.deleverage_withdrawal(coll, oracle, debt, lt, sp.hf_target, _sale_rate(ctx, coll * 0.05))
    if w <= 0.0:
        return
    repay = w * _sale_rate(ctx, w)
    yield from unwind(ctx, w, min(repay, debt), reason)


def unwind_fraction(ctx: StrategyContext, fraction: float, reason: str) -> Program:
    """Scale the whole loop down by `fraction`, keeping its LTV: frees about fraction x loop equity."""
    coll, debt = _position(ctx)
    if fraction <= 0.0 or coll <= 0.0:
        return
    yield from unwind(ctx, coll * fraction, debt * fraction, reason)


def usdt_per_usd_freed(ctx: StrategyContext, usd: float, leveraged: bool) -> float:
    """USDT received per USD of the long leg's equity freed (shrinking it by `usd` at oracle value),
    after selling the LST at its market peg less slippage and pool fee and the ETH for USDT. In the
    loop a unit of equity carries 1 / (1 - LTV) of collateral, so its sale costs are levered too:
    freed = coll x sale rate - debt against coll x oracle - debt."""
    sp = ctx.params.strategy
    mv, t = ctx.market, ctx.t
    oracle = mv.lst_oracle[sp.lst][t]
    if leveraged:
        coll, debt = _position(ctx)
        equity = coll * oracle - debt
        if coll <= 0.0 or equity <= 0.0:
            return 0.0
        units = coll * usd / (equity * ctx.eth)
        ratio = (coll * _sale_rate(ctx, units) - debt) / equity
    else:
        ratio = _sale_rate(ctx, usd / (oracle * ctx.eth)) / oracle
    hop = slippage_bps(usd, *(c[t] for c in mv.cost_bps["ETH_USDT"])) + ctx.params.swap_fee_bps
    return max(ratio, 0.0) * (1.0 - hop * 1e-4)


def loop_health(ctx: StrategyContext) -> float:
    return aave_state(ctx.portfolio, ctx.market, ctx.t, ctx.params.aave).health_factor
