"""Cross-key and cross-file rules of a mode: fail fast on contradictions, auto-correct
what is derivable with a warning.

Rules run on the sections that passed type validation, so one pass reports every problem it can.
Structure rules need only the mode and its share class; venue rules also need the venue files the
mode uses (AAVE risk parameters, CEX margin thresholds, which LST earns rewards).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .common import ALLOCATION_TOLERANCE, BASIS_MODES, CEX_VENUES, LST_VENUE, REWARDS_MODE_TOKENS, VENUES
from .errors import ConfigIssue, Severity
from .share_class import ShareClassConfig
from .sources import SourceMap
from .venue_models import AaveConfig, CexVenueConfig, StakingVenueConfig, VenueConfig

#: Share-class currency each mode is built for (None: either; pure_lending lends the class currency).
MODE_CURRENCY: dict[str, str | None] = {
    "pure_lending": None,
    "btc_basis": "USDT",
    "eth_basis": "USDT",
    "eth_staking_only": "ETH",
    "eth_leveraged": "ETH",
    "usdt_market_neutral_no_leverage": "USDT",
    "usdt_market_neutral": "USDT",
}

#: Which sections each mode must (True) or must not (False) enable. The hedge of LST modes is left
#: to the share-class rules (ETH class: switched off; USDT class: required).
MODE_SHAPES: dict[str, dict[str, bool]] = {
    "pure_lending": {"lending": True, "staking": False, "leverage": False, "hedge": False},
    "btc_basis": {"lending": False, "staking": False, "leverage": False, "hedge": True},
    "eth_basis": {"lending": False, "staking": False, "leverage": False, "hedge": True},
    "eth_staking_only": {"lending": False, "staking": True, "leverage": False},
    "eth_leveraged": {"lending": False, "staking": True, "leverage": True},
    "usdt_market_neutral_no_leverage": {"lending": False, "staking": True, "leverage": False},
    "usdt_market_neutral": {"lending": False, "staking": True, "leverage": True},
}

_SECTION_WHAT = {
    "lending": "AAVE lending",
    "staking": "liquid staking",
    "leverage": "a leverage loop",
    "hedge": "a perp hedge",
}

#: Asset lent in pure_lending for each share-class currency.
_LENDING_ASSET = {"USDT": "USDT", "ETH": "WETH"}


@dataclass
class ModeContext:
    """Validated parts of one mode document plus everything the rules need to judge it."""

    expected_mode: str
    parts: dict[str, Any]
    sources: SourceMap
    share_class: ShareClassConfig | None = None
    #: Currency of every readable share-class file (for "allowed" lists).
    share_class_currencies: dict[str, str] = field(default_factory=dict)
    venues: dict[str, VenueConfig] = field(default_factory=dict)
    #: Every readable CEX venue file (for "allowed" lists of spot venues).
    cex_catalog: dict[str, CexVenueConfig] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def has(self, *names: str) -> bool:
        return all(name in self.parts for name in names)

    def enabled(self, section: str) -> bool:
        return section in self.parts and bool(self.parts[section].enabled)

    def error(self, key: str, message: str) -> None:
        self._add(key, message, "error")

    def warn(self, key: str, message: str) -> None:
        self._add(key, message, "warning")

    def update(self, section: str, **changes: Any) -> None:
        self.parts[section] = self.parts[section].model_copy(update=changes)

    def _add(self, key: str, message: str, severity: Severity) -> None:
        self.issues.append(self.sources.issue(tuple(key.split(".")), message, severity))


# ------------------------------------------------------------------------------- structure rules
def _mode_name(ctx: ModeContext) -> None:
    if ctx.has("mode") and ctx.parts["mode"] != ctx.expected_mode:
        ctx.error(
            "mode", f"{ctx.parts['mode']!r} does not match the file name (allowed: {ctx.expected_mode})"
        )


def _share_class_fits_mode(ctx: ModeContext) -> None:
    needed = MODE_CURRENCY[ctx.expected_mode]
    share = ctx.share_class
    if share is None or needed is None or share.currency == needed:
        return
    allowed = [name for name, currency in sorted(ctx.share_class_currencies.items()) if currency == needed]
    ctx.error(
        "share_class",
        f"{ctx.expected_mode} reports in {needed} but share class {share.name!r} is "
        f"{share.currency} (allowed: {', '.join(allowed) or f'a {needed} share class'})",
    )


def _share_class_hedging(ctx: ModeContext) -> None:
    share = ctx.share_class
    if share is None or not ctx.has("hedge"):
        return
    hedge = ctx.parts["hedge"]
    # Basis modes are the hedge; a wrong share class there is already an error, not a correction.
    if hedge.enabled and not share.allows_hedging and ctx.expected_mode not in BASIS_MODES:
        ctx.warn(
            "hedge.enabled",
            f"share class {share.name!r} ({share.currency}) never hedges: hedge.enabled switched off",
        )
        ctx.update("hedge", enabled=False)
    if share.market_neutral and ctx.enabled("staking") and not ctx.parts["hedge"].enabled:
        lst = ctx.parts["staking"].lst_type
        ctx.error(
            "hedge.enabled",
            f"share class {share.name!r} is market neutral in {share.currency}: holding "
            f"{lst} needs its ETH exposure hedged with perps (allowed: true)",
        )


def _mode_shape(ctx: ModeContext) -> None:
    for section, required in MODE_SHAPES[ctx.expected_mode].items():
        if not ctx.has(section) or ctx.parts[section].enabled == required:
            continue
        verb = "is built on" if required else "does not use"
        ctx.error(
            f"{section}.enabled",
            f"mode {ctx.expected_mode} {verb} {_SECTION_WHAT[section]} (allowed: {str(required).lower()})",
        )


def _lending(ctx: ModeContext) -> None:
    if not ctx.enabled("lending") or ctx.share_class is None:
        return
    expected = _LENDING_ASSET[ctx.share_class.currency]
    asset = ctx.parts["lending"].asset
    if asset != expected:
        ctx.error(
            "lending.asset",
            f"{asset} is not the currency of share class {ctx.share_class.name!r} "
            f"({ctx.share_class.currency}); lending it would add price exposure "
            f"(allowed: {expected})",
        )


def _hedge_structure(ctx: ModeContext) -> None:
    if not ctx.has("hedge"):
        return
    hedge = ctx.parts["hedge"]
    mode = ctx.expected_mode
    if mode in BASIS_MODES and hedge.spot_venue is None:
        ctx.error(
            "hedge.spot_venue",
            f"{mode} holds its spot leg on a CEX: name the venue (allowed: {', '.join(CEX_VENUES)})",
        )
    if mode not in BASIS_MODES and hedge.spot_venue is not None:
        ctx.error(
            "hedge.spot_venue",
            f"{mode} has no CEX spot leg (only {' and '.join(BASIS_MODES)} do); "
            f"its long leg is on-chain (allowed: null)",
        )
    if not hedge.enabled:
        return
    total = sum(hedge.allocation.values())
    if abs(total - 1.0) > ALLOCATION_TOLERANCE:
        ctx.error(
            "hedge.allocation",
            f"weights sum to {total:.12g}; they must sum to 1 within "
            f"{ALLOCATION_TOLERANCE:g} (allowed: non-negative weights for "
            f"{', '.join(CEX_VENUES)} summing to 1)",
        )
    expected = "BTC" if mode == "btc_basis" else "ETH"
    if hedge.underlying != expected:
        ctx.error(
            "hedge.underlying",
            f"{mode} holds {expected}, so its perps must be {expected} perps (allowed: {expected})",
        )


def _leverage_structure(ctx: ModeContext) -> None:
    if not ctx.enabled("leverage"):
        return
    leverage = ctx.parts["leverage"]
    if ctx.has("staking") and not ctx.parts["staking"].enabled:
        ctx.error(
            "leverage.enabled",
            "the loop supplies the staking token as AAVE collateral, so it needs "
            "staking.enabled: true (allowed: false while staking is disabled)",
        )
    if leverage.loop_method == "atomic":
        if leverage.flash_venue is None:
            ctx.error(
                "leverage.flash_venue",
                "loop_method atomic borrows the whole loop with a flash loan (allowed: morpho, instadapp)",
            )
        if leverage.max_iterations is not None:
            ctx.error(
                "leverage.max_iterations",
                "loop_method atomic reaches target_ltv in one bundle; "
                "iterations apply to sequential loops only (allowed: null)",
            )
    elif leverage.flash_venue is not None:
        ctx.error("leverage.flash_venue", "only loop_method atomic uses a flash loan (allowed: null)")


def _health_factors(ctx: ModeContext) -> None:
    if not ctx.has("rebalancing"):
        return
    rebalancing = ctx.parts["rebalancing"]
    if rebalancing.hf_target <= rebalancing.hf_floor:
        ctx.error(
            "rebalancing.hf_target",
            f"{rebalancing.hf_target} must be above hf_floor "
            f"{rebalancing.hf_floor} (allowed: > {rebalancing.hf_floor})",
        )
    if ctx.enabled("leverage") and ctx.has("risk"):
        risk_floor = ctx.parts["risk"].hf_floor
        if risk_floor >= rebalancing.hf_floor:
            ctx.error(
                "risk.hf_floor",
                f"{risk_floor} must be below rebalancing.hf_floor {rebalancing.hf_floor} "
                f"so the strategy deleverages before the risk limit trips "
                f"(allowed: 1 < hf_floor < {rebalancing.hf_floor})",
            )


STRUCTURE_RULES: tuple[Callable[[ModeContext], None], ...] = (
    _mode_name,
    _share_class_fits_mode,
    _share_class_hedging,
    _mode_shape,
    _lending,
    _hedge_structure,
    _leverage_structure,
    _health_factors,
)


# ----------------------------------------------------------------------------------- venue rules
def _staking_rewards(ctx: ModeContext) -> None:
    """A rewards mode needs a staking venue that pays its reward tokens (Lido pays none, so wstETH
    allows base_only only). An error, not a silent switch-off: the operator asked for income the
    position cannot earn, and a backtest that quietly drops it would answer a different question."""
    if not ctx.enabled("staking"):
        return
    staking = ctx.parts["staking"]
    needed = REWARDS_MODE_TOKENS[staking.rewards_mode]
    venue = ctx.venues.get(LST_VENUE[staking.lst_type])
    if not needed or not isinstance(venue, StakingVenueConfig):
        return
    missing = [token for token in needed if token not in venue.reward_tokens]
    if not missing:
        return
    allowed = [mode for mode, tokens in REWARDS_MODE_TOKENS.items()
               if all(token in venue.reward_tokens for token in tokens)]
    paid = ", ".join(venue.reward_tokens) or "no reward tokens"
    ctx.error(
        "staking.rewards_mode",
        f"{staking.rewards_mode} counts {', '.join(needed)} rewards, but {staking.lst_type} "
        f"({venue.display_name}) pays {paid} (allowed: {', '.join(allowed)})",
    )


def _target_ltv(ctx: ModeContext) -> None:
    if not (ctx.enabled("leverage") and ctx.enabled("staking")):
        return
    aave = ctx.venues.get("aave_v3")
    if not isinstance(aave, AaveConfig):
        return
    leverage, lst = ctx.parts["leverage"], ctx.parts["staking"].lst_type
    if leverage.emode and lst not in aave.emode.collateral_assets:
        ctx.error(
            "leverage.emode",
            f"{lst} is not collateral in AAVE e-mode category {aave.emode.label!r} "
            f"(allowed: false, or lst_type one of {', '.join(aave.emode.collateral_assets)})",
        )
        return
    risk = aave.collateral_risk(lst, leverage.emode)
    kind = f"e-mode ({aave.emode.label})" if leverage.emode else "standard (non-e-mode)"
    if leverage.target_ltv >= risk.ltv:
        ctx.error(
            "leverage.target_ltv",
            f"{leverage.target_ltv} is not below the {kind} max LTV {risk.ltv} of "
            f"{lst} collateral on AAVE v3 (allowed: 0 <= target_ltv < {risk.ltv})",
        )
        return
    if leverage.target_ltv > 0 and ctx.has("rebalancing"):
        entry_hf = risk.liquidation_threshold / leverage.target_ltv
        hf_target = ctx.parts["rebalancing"].hf_target
        if entry_hf < hf_target:
            ctx.warn(
                "leverage.target_ltv",
                f"entry health factor {risk.liquidation_threshold} / "
                f"{leverage.target_ltv} = {entry_hf:.4f} is below rebalancing.hf_target "
                f"{hf_target}: the strategy would deleverage right after entering "
                f"(target_ltv <= {risk.liquidation_threshold / hf_target:.4f} avoids it)",
            )


def _hedge_margins(ctx: ModeContext) -> None:
    if not ctx.enabled("hedge"):
        return
    hedge = ctx.parts["hedge"]
    used = {
        name: ctx.venues[name]
        for name, weight in hedge.allocation.items()
        if weight > 0 and isinstance(ctx.venues.get(name), CexVenueConfig)
    }
    for name, venue in used.items():
        if hedge.underlying not in venue.markets.perp:
            ctx.error(
                f"hedge.allocation.{name}",
                f"{name} has no {hedge.underlying} perp market in its venue file (allowed: 0)",
            )
    if used:
        warning = max(v.margin_warning_ratio for v in used.values())
        if hedge.margin_ratio_target <= warning:
            ctx.error(
                "hedge.margin_ratio_target",
                f"{hedge.margin_ratio_target} must be above the venues' "
                f"margin_warning_ratio {warning}, or the hedge starts in the "
                f"warning zone (allowed: {warning} < margin_ratio_target <= 1)",
            )
        initial = max(v.initial_margin_ratio for v in used.values())
        if hedge.margin_ratio_target <= initial:
            ctx.error(
                "hedge.margin_ratio_target",
                f"{hedge.margin_ratio_target} must be above the venues' initial_margin_ratio {initial}: "
                f"a venue refuses to open a short with less margin "
                f"(allowed: {initial} < margin_ratio_target <= 1)",
            )
    maintenance = max((v.maintenance_margin_ratio for v in used.values()), default=0.0)
    target = hedge.margin_ratio_target
    if ctx.has("rebalancing"):
        trigger = ctx.parts["rebalancing"].margin_ratio_trigger
        if not maintenance < trigger < target:
            ctx.error(
                "rebalancing.margin_ratio_trigger",
                f"{trigger} must lie between the maintenance margin ratio {maintenance} and "
                f"hedge.margin_ratio_target {target} "
                f"(allowed: {maintenance} < margin_ratio_trigger < {target})",
            )
        ceiling = ctx.parts["rebalancing"].margin_ratio_ceiling
        if not ceiling > target:
            ctx.error(
                "rebalancing.margin_ratio_ceiling",
                f"{ceiling} must be above hedge.margin_ratio_target {target}, or every rebalance "
                f"would immediately trigger the next (allowed: margin_ratio_ceiling > {target})",
            )
        if ctx.has("risk"):
            floor = ctx.parts["risk"].margin_ratio_floor
            if not maintenance < floor < trigger:
                ctx.error(
                    "risk.margin_ratio_floor",
                    f"{floor} must lie between the maintenance margin ratio {maintenance} "
                    f"(liquidation) and rebalancing.margin_ratio_trigger {trigger} "
                    f"(allowed: {maintenance} < margin_ratio_floor < {trigger})",
                )


def _spot_venue(ctx: ModeContext) -> None:
    if not ctx.enabled("hedge"):
        return
    hedge = ctx.parts["hedge"]
    venue = ctx.venues.get(hedge.spot_venue) if hedge.spot_venue else None
    if not isinstance(venue, CexVenueConfig):
        return
    if hedge.underlying not in venue.markets.spot:
        ctx.error(
            "hedge.spot_venue",
            f"{venue.name} has no {hedge.underlying} spot market in its venue file "
            f"(allowed: {', '.join(_venues_with(ctx, 'markets', hedge.underlying))})",
        )
    elif hedge.underlying not in venue.historical_data.spot:
        with_data = _venues_with(ctx, "historical_data", hedge.underlying)
        ctx.warn(
            "hedge.spot_venue",
            f"the data pack has no {hedge.underlying} spot series for {venue.name}: "
            f"backtests of this mode cannot run, live trading is unaffected "
            f"(venues with data: {', '.join(with_data) or 'none'})",
        )


def _venues_with(ctx: ModeContext, table: str, underlying: str) -> list[str]:
    return [
        name
        for name in VENUES
        if name in ctx.cex_catalog and underlying in getattr(ctx.cex_catalog[name], table).spot
    ]


VENUE_RULES: tuple[Callable[[ModeContext], None], ...] = (
    _staking_rewards,
    _target_ltv,
    _hedge_margins,
    _spot_venue,
)


def required_venues(parts: dict[str, Any]) -> list[str]:
    """Venues a mode needs, in canonical order, from whichever sections are valid."""
    names: set[str] = set()
    lending, staking = parts.get("lending"), parts.get("staking")
    leverage, hedge = parts.get("leverage"), parts.get("hedge")
    if lending is not None and lending.enabled:
        names |= {"aave_v3", "alchemy"}
    if staking is not None and staking.enabled:
        names |= {LST_VENUE[staking.lst_type], "alchemy"}
    if leverage is not None and leverage.enabled:
        names |= {"aave_v3", "alchemy"}
        if leverage.loop_method == "atomic" and leverage.flash_venue:
            names.add(leverage.flash_venue)
    if hedge is not None and hedge.enabled:
        if hedge.spot_venue:
            names.add(hedge.spot_venue)
        names |= {name for name, weight in hedge.allocation.items() if weight > 0}
    # On-chain swaps: USDT modes buy ETH for the LST leg and sell LST to fund margin; any loop sells
    # LST to deleverage. Both route through the DEX venue.
    staked = staking is not None and staking.enabled
    if staked and ((hedge is not None and hedge.enabled) or (leverage is not None and leverage.enabled)):
        names.add("uniswap")
    return [name for name in VENUES if name in names]
