"""Build the engine's RunParams and data requirements from a validated configuration."""
from __future__ import annotations

import math
from typing import Any

from engine.config.capital import check_capital
from engine.data import DataRequirements
from engine.domain.params import AaveParams, CexParams, CollateralParams, RiskParams, RunParams, StrategyParams
from engine.domain.rewards import REWARDS_MODE_KINDS

CEX_VENUES = ("binance", "bybit", "okx")
FLASH_VENUES = ("morpho", "instadapp")


def build_run_params(resolved: Any, capital: float | None = None) -> RunParams:
    """`resolved` is an engine.config.ResolvedConfig; `capital` overrides the share class default
    (checked here, the one place every backtest and live session gets its parameters from)."""
    m = resolved.mode
    sc = resolved.share_class
    if capital is not None:
        capital = check_capital(capital, sc.currency)
    venues = resolved.venues
    staking = m.staking.enabled
    lev = m.leverage
    hedge = m.hedge
    strategy = StrategyParams(
        mode=m.mode,
        currency=sc.currency,
        capital=float(capital if capital is not None else sc.default_capital),
        lending_asset=m.lending.asset if m.lending.enabled else None,
        lst=m.staking.lst_type if staking else None,
        rewards_mode=m.staking.rewards_mode if staking else "base_only",
        leverage=lev.enabled,
        emode=lev.enabled and lev.emode,
        target_ltv=lev.target_ltv,
        loop_method=lev.loop_method,
        max_iterations=lev.max_iterations,
        min_borrow_eth=lev.min_borrow_eth,
        flash_venue=lev.flash_venue if lev.enabled else None,
        hedge=hedge.enabled,
        underlying=hedge.underlying if hedge.enabled else None,
        spot_venue=hedge.spot_venue if hedge.enabled else None,
        allocation={v: float(w) for v, w in hedge.allocation.items()} if hedge.enabled else {},
        margin_ratio_target=hedge.margin_ratio_target,
        rebalancing=m.rebalancing.enabled,
        margin_ratio_trigger=m.rebalancing.margin_ratio_trigger,
        margin_ratio_ceiling=m.rebalancing.margin_ratio_ceiling,
        delta_drift_trigger=m.rebalancing.delta_drift_trigger,
        hf_floor=m.rebalancing.hf_floor,
        hf_target=m.rebalancing.hf_target,
        max_position_usdt=m.risk.max_position_usdt,
    )
    cex = {}
    for name in CEX_VENUES:
        if name in venues:
            v = venues[name]
            cex[name] = CexParams(
                spot_taker_bps=v.fees.spot_taker_bps, perp_taker_bps=v.fees.perp_taker_bps,
                initial_margin_ratio=v.initial_margin_ratio,
                maintenance_margin_ratio=v.maintenance_margin_ratio,
                margin_warning_ratio=v.margin_warning_ratio,
                liquidation_fee_rate=v.liquidation_fee_rate, withdrawal_fee_usdt=v.withdrawal_fee_usdt,
                min_order_usdt=v.min_order_usdt, max_order_usdt=v.max_order_usdt,
                max_position_usdt=v.max_position_usdt,
                cash_tolerance_usdt=v.cash_reconciliation.tolerance_usdt,
            )
    aave = None
    if "aave_v3" in venues:
        a = venues["aave_v3"]
        aave = AaveParams(
            standard={asset: CollateralParams(r.ltv, r.liquidation_threshold, r.liquidation_bonus)
                      for asset, r in a.standard},   # a pydantic model iterates as (field, value)
            emode=CollateralParams(a.emode.ltv, a.emode.liquidation_threshold, a.emode.liquidation_bonus),
            emode_assets=tuple(a.emode.collateral_assets),
            close_factor=a.close_factor,
            full_liquidation_hf=a.full_liquidation_hf,
        )
    flash = {name: venues[name].flash_loan_fee_rate for name in FLASH_VENUES if name in venues}
    # Modes that never swap on-chain (basis, pure lending, plain staking) do not load the DEX venue.
    swap_fee = venues["uniswap"].swap_fee_bps if "uniswap" in venues else math.nan
    dex_depth = venues["uniswap"].max_order_usdt if "uniswap" in venues else None
    # CEX-only modes send no transactions: without the RPC venue there is nothing to price in gas.
    gas_units = venues["alchemy"].gas_units.as_dict() if "alchemy" in venues else {}
    return RunParams(strategy=strategy, cex=cex, aave=aave, flash_fee_rate=flash, swap_fee_bps=swap_fee,
                     dex_max_order_usdt=dex_depth, gas_units=gas_units,
                     risk=RiskParams(m.risk.max_drawdown, m.risk.max_daily_loss, m.risk.max_position_usdt,
                                     m.risk.hf_floor, m.risk.margin_ratio_floor, m.risk.breach_action))


def data_requirements(params: RunParams) -> DataRequirements:
    """Exactly the series this run reads; everything else stays on disk."""
    sp = params.strategy
    perps: tuple[tuple[str, str], ...] = ()
    spot: tuple[str, ...] = ()
    if sp.hedge:
        underlying = sp.underlying or "ETH"
        perps = tuple((v, underlying) for v, w in sp.allocation.items() if w > 0)
        spot = (underlying,)
    reserves: list[str] = []
    if sp.lending_asset:
        reserves.append(sp.lending_asset)
    if sp.leverage and sp.lst:
        reserves += [sp.lst, "WETH"]
    return DataRequirements(
        spot=spot, perps=perps, aave_reserves=tuple(reserves),
        lsts=(sp.lst,) if sp.lst else (),
        etherfi_rewards=REWARDS_MODE_KINDS[sp.rewards_mode] if sp.lst == "weETH" else (),
    )
