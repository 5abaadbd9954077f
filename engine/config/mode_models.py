"""Pydantic models of a strategy mode file (configs/modes/<mode>.yaml).

Every key is required (no defaults): the engine reads exactly these names, and a key left out of a
file must be an error naming the key and the file, never a silently assumed value. The models check
types and single-value ranges; rules that relate several keys or other files live in `mode_rules`.

The string under each field is its description (pydantic's `use_attribute_docstrings`): what the
value does, for an operator; the config editor shows it as the field's tooltip.
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
    """Supply one asset on AAVE v3 and earn its supply rate (pure_lending)."""
    asset: LendingAsset
    """The asset supplied on AAVE."""


class StakingConfig(StrictModel):
    """Hold a liquid staking token (weETH from ether.fi or wstETH from Lido)."""

    enabled: bool
    """Hold a liquid staking token and earn the staking rate."""
    lst_type: LstType
    """weETH (ether.fi) or wstETH (Lido)."""
    rewards_mode: RewardsMode
    """Rewards counted on top of the staking rate: base_only; base_eigen (KING weekly EIGEN + ETHFI
    top-ups, paid on their dates at pool prices); base_eigen_seasonal (also the ETHFI seasonal
    airdrops, conservative end). wstETH: base_only."""


class LeverageConfig(StrictModel):
    """Loop the LST on AAVE: supply as collateral, borrow WETH, stake, repeat (or one flash loan)."""

    enabled: bool
    """Loop the LST on AAVE: supply as collateral, borrow WETH, stake it, repeat."""
    emode: bool
    """Use AAVE's ETH-correlated e-mode (higher LTV for LST collateral against WETH debt)."""
    target_ltv: Annotated[float, Field(ge=0, lt=1)]
    """Debt / collateral value the loop aims for; must stay below the e-mode maximum LTV."""
    loop_method: LoopMethod
    """atomic: one flash-loan bundle; sequential: stake/supply/borrow per iteration."""
    max_iterations: Annotated[int, Field(ge=0)] | None
    """Sequential loop cap: empty = loop until the next borrow is below min_borrow_eth; 0 = no
    loop; N = at most N iterations."""
    min_borrow_eth: Positive
    """Stop looping when the next borrow would be smaller than this (ETH)."""
    flash_venue: FlashVenueName | None
    """Flash-loan provider for the atomic loop; empty for sequential."""


class HedgeConfig(StrictModel):
    """Short USDT-margined perps against the long leg, split across CEXs."""

    enabled: bool
    """Short USDT-margined perps against the long leg."""
    underlying: Underlying
    """The asset hedged (and held long in the basis modes)."""
    spot_venue: CexName | None
    """CEX holding the spot leg in basis modes; empty when the long leg is on-chain."""
    allocation: dict[CexName, NonNegative]
    """Share of the hedge placed on each exchange; the weights must sum to 1."""
    margin_ratio_target: Fraction
    """Equity / notional placed at each perp venue at entry (above the venues' initial margin)."""


class RebalancingConfig(StrictModel):
    """When to move margin, resize the hedge, or deleverage."""

    enabled: bool
    """Act on the triggers below during the run."""
    margin_ratio_trigger: OpenFraction
    """Move value to a perp venue when its margin ratio falls below this."""
    margin_ratio_ceiling: Annotated[float, Field(gt=0)]
    """Move a venue's surplus margin back to the long leg when its margin ratio rises above this
    (idle margin earns nothing)."""
    delta_drift_trigger: OpenFraction
    """Resize the hedge when |net delta| drifts above this fraction of the position."""
    hf_floor: HealthFactor
    """Deleverage when the AAVE health factor falls below this."""
    hf_target: HealthFactor
    """Health factor to restore when deleveraging."""


class RiskConfig(StrictModel):
    """Live-trading limits checked every tick (also reported by backtests)."""

    max_drawdown: Fraction
    """Live: stop (or reduce) when the value falls this fraction below its peak."""
    max_daily_loss: Fraction
    """Live: stop (or reduce) after losing this fraction in one day."""
    max_position_usdt: Positive
    """Largest CEX spot or perp position, in USDT: legs are sized within it in backtests and live;
    capital beyond it stays idle."""
    hf_floor: HealthFactor
    """Live: health factor below which trading is halted or reduced."""
    margin_ratio_floor: OpenFraction
    """Live: margin ratio below which trading is halted or reduced."""
    max_data_age_seconds: Positive
    """Live: market data older than this stops trading."""
    breach_action: BreachAction
    """What a breached limit does: halt (cancel only) or reduce (risk-reducing orders only)."""


class ModeConfig(StrictModel):
    """One validated strategy mode; the engine and the app read only this."""

    mode: ModeName
    """The strategy this file configures; pick another mode with the selector above."""
    share_class: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    """Currency the results are reported in and whether price exposure is allowed (usdt_stable must
    hedge every ETH/BTC exposure; eth_directional never hedges)."""
    description: Annotated[str, Field(min_length=1)]
    """Free text shown in listings."""
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
