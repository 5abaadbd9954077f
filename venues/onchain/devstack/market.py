"""What the local market looks like: reserves, risk parameters, rate curves, pools, starting prices.

Risk parameters are read from configs/venues/aave_v3.yaml (the non-e-mode LTV / liquidation threshold
/ bonus per reserve and the e-mode category), so the local Pool liquidates by the same numbers the
engine uses; everything else is stated here with where it comes from. Interest-rate curves and
reserve factors approximate the Ethereum Core market's (AAVE governance posts, 2024-2025); they only
shape how the local indices grow, which the engine reads back from the chain rather than assumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class RateStrategy:
    """DefaultReserveInterestRateStrategy parameters, as fractions (the contract takes rays)."""

    name: str
    optimal_usage: Decimal
    base: Decimal
    slope1: Decimal
    slope2: Decimal


@dataclass(frozen=True)
class ReserveSpec:
    symbol: str
    decimals: int
    ltv: Decimal
    liquidation_threshold: Decimal
    liquidation_bonus: Decimal  # 0.05 = the liquidator gets 5 % more collateral than it repays
    reserve_factor: Decimal
    borrowing: bool
    strategy: RateStrategy
    emode: bool  # member of the e-mode category


@dataclass(frozen=True)
class EModeSpec:
    category_id: int
    ltv: Decimal
    liquidation_threshold: Decimal
    liquidation_bonus: Decimal
    label: str


@dataclass(frozen=True)
class PoolSpec:
    """A Uniswap v3 pool and the liquidity the deployer provides in [price_low, price_high].

    Prices are ``base`` in ``quote`` (ETH in USDT, wstETH in WETH); the range spans the prices the
    shipped history visits with room on both sides, so a replay never leaves the liquidity.
    """

    base: str
    quote: str
    fee: int  # hundredths of a bip: 3000 = 0.3 %
    price_low: Decimal
    price_high: Decimal
    base_amount: Decimal  # liquidity: this much base and the matching quote


WETH_CURVE = RateStrategy("weth", Decimal("0.90"), Decimal("0"), Decimal("0.027"), Decimal("0.80"))
STABLE_CURVE = RateStrategy("stable", Decimal("0.92"), Decimal("0"), Decimal("0.055"), Decimal("0.35"))
LST_CURVE = RateStrategy("lst", Decimal("0.45"), Decimal("0"), Decimal("0.045"), Decimal("0.80"))

RESERVE_DECIMALS = {"WETH": 18, "USDT": 6, "wstETH": 18, "weETH": 18}
RESERVE_FACTORS = {
    "WETH": Decimal("0.15"),
    "USDT": Decimal("0.10"),
    "wstETH": Decimal("0.05"),
    "weETH": Decimal("0.45"),
}
CURVES = {"WETH": WETH_CURVE, "USDT": STABLE_CURVE, "wstETH": LST_CURVE, "weETH": LST_CURVE}


@dataclass(frozen=True)
class MarketSpec:
    reserves: tuple[ReserveSpec, ...]
    emode: EModeSpec
    eth_usd: Decimal  # starting ETH price (the oracle's WETH feed)
    lst_rates: dict[str, Decimal]  # starting ETH per LST: wstETH.stEthPerToken, weETH.getRate
    pools: tuple[PoolSpec, ...]
    # AAVE flash-loan premium (bps of the amount): 5 total, 4 of them to the treasury, the
    # aave-v3-deploy market defaults (the Ethereum Core market charges 5 bps as well).
    flash_premium_total_bps: int = 5
    flash_premium_protocol_bps: int = 4
    aave_seed: dict[str, Decimal] = field(
        default_factory=lambda: {"WETH": Decimal(50_000), "USDT": Decimal(50_000_000)}
    )
    morpho_weth: Decimal = Decimal(20_000)  # WETH supplied to Morpho Blue: what flash loans can draw
    morpho_lltv: Decimal = Decimal("0.945")  # the wstETH/WETH market's LLTV on Ethereum

    def reserve(self, symbol: str) -> ReserveSpec:
        for reserve in self.reserves:
            if reserve.symbol == symbol:
                return reserve
        raise KeyError(f"no reserve {symbol!r} in the market spec")


def market_from_config(
    *,
    eth_usd: Decimal = Decimal(3000),
    wsteth_rate: Decimal = Decimal("1.20"),
    weeth_rate: Decimal = Decimal("1.07"),
) -> MarketSpec:
    """The local market with the risk parameters of configs/venues/aave_v3.yaml.

    The default prices are a plausible starting state for demos; ``devchain --follow-history`` and the
    parity tests start from the first hour of the shipped data instead.
    """
    from engine.config import load_venue_config

    aave = load_venue_config("aave_v3")
    reserves = []
    for symbol in ("WETH", "USDT", "wstETH", "weETH"):
        risk = getattr(aave.standard, symbol)
        reserves.append(
            ReserveSpec(
                symbol=symbol,
                decimals=RESERVE_DECIMALS[symbol],
                ltv=_dec(risk.ltv),
                liquidation_threshold=_dec(risk.liquidation_threshold),
                liquidation_bonus=_dec(risk.liquidation_bonus),
                reserve_factor=RESERVE_FACTORS[symbol],
                borrowing=True,
                strategy=CURVES[symbol],
                emode=symbol in aave.emode.collateral_assets or symbol in aave.emode.borrowable_assets,
            )
        )
    emode = EModeSpec(
        aave.emode.category_id,
        _dec(aave.emode.ltv),
        _dec(aave.emode.liquidation_threshold),
        _dec(aave.emode.liquidation_bonus),
        aave.emode.label,
    )
    pools = (
        PoolSpec("WETH", "USDT", 3000, Decimal(500), Decimal(20_000), Decimal(20_000)),
        PoolSpec("wstETH", "WETH", 100, Decimal("1.0"), Decimal("1.6"), Decimal(20_000)),
        PoolSpec("weETH", "WETH", 100, Decimal("0.95"), Decimal("1.3"), Decimal(20_000)),
    )
    return MarketSpec(tuple(reserves), emode, eth_usd, {"wstETH": wsteth_rate, "weETH": weeth_rate}, pools)


def _dec(value: float) -> Decimal:
    # Config values are short decimals written as floats (0.93); repr gives back exactly what was written.
    return Decimal(repr(value))
