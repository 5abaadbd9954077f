"""Pydantic models of a strategy mode file (configs/modes/<mode>.yaml).

Every key is required (no defaults): the engine reads exactly these names, and a key left out of a
file must be an error naming the key and the file, never a silently assumed value. The models check
types and single-value ranges; rules that relate several keys or other files live in `mode_rules`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .common import (
    BreachAction,
    CexName,
    FlashVenueName,
    Fraction,
    LendingAsset,
    LoopMethod,
    LstType,
    ModeName,
    NonNegative,
    OpenFraction,
    Positive,
    RewardsMode,
    StrictModel,
    Underlying,
)

HealthFactor = Annotated[float, Field(gt=1)]


class LendingConfig(StrictModel):
    """Supply one asset on AAVE v3 and earn its supply rate (pure_lending)."""

    enabled: bool
    asset: LendingAsset


class StakingConfig(StrictModel):
    """Hold a liquid staking token (weETH from ether.fi or wstETH from Lido)."""

    enabled: bool
    lst_type: LstType
    #: Reward streams counted on top of the staking rate: base_only | base_eigen |
    #: base_eigen_seasonal (only weETH earns any; wstETH allows base_only).
    rewards_mode: RewardsMode


class LeverageConfig(StrictModel):
    """Loop the LST on AAVE: supply as collateral, borrow WETH, stake, repeat (or one flash loan)."""

    enabled: bool
    emode: bool
    target_ltv: Annotated[float, Field(ge=0, lt=1)]
    loop_method: LoopMethod
    #: None = loop until the next borrow is below min_borrow_eth; 0 = no loop; N = at most N.
    max_iterations: Annotated[int, Field(ge=0)] | None
    min_borrow_eth: Positive
    #: Flash-loan provider for loop_method atomic; null for sequential.
    flash_venue: FlashVenueName | None


class HedgeConfig(StrictModel):
    """Short USDT-margined perps against the long leg, split across CEXs."""

    enabled: bool
    underlying: Underlying
    #: Venue holding the spot leg in basis modes; null when the long leg is on-chain.
    spot_venue: CexName | None
    allocation: dict[CexName, NonNegative]
    #: Equity / notional placed at each perp venue at entry.
    margin_ratio_target: Fraction


class RebalancingConfig(StrictModel):
    """When to move margin, resize the hedge, or deleverage."""

    enabled: bool
    margin_ratio_trigger: OpenFraction
    #: Above this margin ratio the surplus equity goes back to the long leg (idle margin earns nothing).
    margin_ratio_ceiling: Annotated[float, Field(gt=0)]
    delta_drift_trigger: OpenFraction
    hf_floor: HealthFactor
    hf_target: HealthFactor


class RiskConfig(StrictModel):
    """Live-trading limits checked every tick (also reported by backtests)."""

    max_drawdown: Fraction
    max_daily_loss: Fraction
    max_position_usdt: Positive
    hf_floor: HealthFactor
    margin_ratio_floor: OpenFraction
    max_data_age_seconds: Positive
    breach_action: BreachAction


class ModeConfig(StrictModel):
    """One validated strategy mode; the engine and the app read only this."""

    mode: ModeName
    share_class: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    description: Annotated[str, Field(min_length=1)]
    lending: LendingConfig
    staking: StakingConfig
    leverage: LeverageConfig
    hedge: HedgeConfig
    rebalancing: RebalancingConfig
    risk: RiskConfig


#: The sections of a mode file, in file order, with their models.
MODE_SECTIONS: dict[str, type[StrictModel]] = {
    "lending": LendingConfig,
    "staking": StakingConfig,
    "leverage": LeverageConfig,
    "hedge": HedgeConfig,
    "rebalancing": RebalancingConfig,
    "risk": RiskConfig,
}
