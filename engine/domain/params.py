"""Engine-side parameters: the numbers the simulation needs, extracted once from the validated config.

Keeping these as small frozen dataclasses decouples the hot loop from the pydantic models (attribute
access on plain slots is faster, and the engine does not care how the YAML is laid out).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CexParams:
    spot_taker_bps: float
    perp_taker_bps: float
    initial_margin_ratio: float
    maintenance_margin_ratio: float
    margin_warning_ratio: float
    liquidation_fee_rate: float
    withdrawal_fee_usdt: float
    min_order_usdt: float                  # strategy floor: smaller resizes/transfers are not worth sending
    max_order_usdt: float                  # depth limit: a larger single order is refused
    max_position_usdt: float               # the exchange's limit on one position's notional
    cash_tolerance_usdt: float             # live: venue cash vs book cash beyond this is a breach


@dataclass(frozen=True, slots=True)
class CollateralParams:
    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float


@dataclass(frozen=True, slots=True)
class AaveParams:
    standard: dict[str, CollateralParams]
    emode: CollateralParams            # ETH-correlated category (LST / WETH)
    emode_assets: tuple[str, ...]
    close_factor: float
    full_liquidation_hf: float

    def collateral(self, asset: str, emode: bool) -> CollateralParams:
        if emode and asset in self.emode_assets:
            return self.emode
        return self.standard[asset]


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """Mode-level choices the strategies act on."""

    mode: str
    currency: str                          # share-class currency: USDT | ETH
    capital: float
    lending_asset: str | None              # pure_lending
    lst: str | None                        # weETH | wstETH when staking
    rewards_mode: str                      # base_only | base_eigen | base_eigen_seasonal
    leverage: bool
    emode: bool
    target_ltv: float
    loop_method: str                       # atomic | sequential
    max_iterations: int | None
    min_borrow_eth: float
    flash_venue: str | None
    hedge: bool
    underlying: str | None                 # BTC | ETH
    spot_venue: str | None
    allocation: dict[str, float]
    margin_ratio_target: float
    rebalancing: bool
    margin_ratio_trigger: float
    margin_ratio_ceiling: float
    delta_drift_trigger: float
    hf_floor: float
    hf_target: float
    max_position_usdt: float               # risk.max_position_usdt: largest CEX spot/perp notional


@dataclass(frozen=True, slots=True)
class RiskParams:
    """The mode's `risk:` limits (the live session's, also enforced in backtests)."""

    max_drawdown: float
    max_daily_loss: float
    max_position_usdt: float
    hf_floor: float
    margin_ratio_floor: float
    breach_action: str                     # halt | reduce


@dataclass(frozen=True, slots=True)
class RunParams:
    strategy: StrategyParams
    cex: dict[str, CexParams]
    aave: AaveParams | None
    flash_fee_rate: dict[str, float]
    swap_fee_bps: float                    # DEX pool fee on top of the slippage table
    dex_max_order_usdt: float | None       # DEX depth limit per swap; None: the mode loads no DEX
    gas_units: dict[str, int]              # per on-chain operation (alchemy venue config)
    risk: RiskParams
