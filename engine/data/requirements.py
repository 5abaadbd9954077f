"""DataRequirements: which historical series a run needs.

Each strategy mode declares what it reads; the provider loads exactly that (plus the series every
mode pays for: ETH spot, gas and execution costs), so a BTC-only run does not fail because an LST
file is missing and the cache key only depends on what was actually used.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.domain.rewards import REWARD_KINDS

SPOT_ASSETS: tuple[str, ...] = ("BTC", "ETH")
PERP_VENUES: tuple[str, ...] = ("binance", "bybit", "okx")
PERP_ASSETS: tuple[str, ...] = ("BTC", "ETH")
AAVE_RESERVES: tuple[str, ...] = ("USDT", "WETH", "weETH", "wstETH")
LSTS: tuple[str, ...] = ("weETH", "wstETH")


def _check_allowed(field_name: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    for value in values:
        if value not in allowed:
            raise ValueError(
                f"DataRequirements.{field_name}: unknown value {value!r}; "
                f"allowed values: {', '.join(allowed)}"
            )


@dataclass(frozen=True)
class DataRequirements:
    """The series a run needs.

    spot:            assets "BTC", "ETH" (ETH spot is always loaded anyway: gas is valued in ETH).
    perps:           (venue, asset) pairs; venue in binance|bybit|okx, asset BTC|ETH. A perp implies
                     its funding series.
    aave_reserves:   "USDT", "WETH", "weETH", "wstETH" (liquidity and variable-borrow indices).
    lsts:            "weETH", "wstETH" (AAVE oracle rate and market peg).
    etherfi_rewards: ether.fi reward streams whose payouts the run pays ("eigen_weekly",
                     "ethfi_topup", "ethfi_season"); empty for none.
    """

    spot: tuple[str, ...] = ()
    perps: tuple[tuple[str, str], ...] = ()
    aave_reserves: tuple[str, ...] = ()
    lsts: tuple[str, ...] = ()
    etherfi_rewards: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Accept lists from YAML-derived configs but store tuples so the object stays hashable.
        for name in ("spot", "aave_reserves", "lsts", "etherfi_rewards"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (tuple, list)):
                raise TypeError(
                    f"DataRequirements.{name} must be a sequence of names, not {value!r}"
                )
            object.__setattr__(self, name, tuple(value))
        perps = []
        for item in self.perps:
            if isinstance(item, str) or len(item) != 2:
                raise TypeError(
                    f"DataRequirements.perps: each item must be a (venue, asset) pair, got {item!r}"
                )
            perps.append((item[0], item[1]))
        object.__setattr__(self, "perps", tuple(perps))

        _check_allowed("spot", self.spot, SPOT_ASSETS)
        _check_allowed("perps (venue)", tuple(v for v, _ in self.perps), PERP_VENUES)
        _check_allowed("perps (asset)", tuple(a for _, a in self.perps), PERP_ASSETS)
        _check_allowed("aave_reserves", self.aave_reserves, AAVE_RESERVES)
        _check_allowed("lsts", self.lsts, LSTS)
        _check_allowed("etherfi_rewards", self.etherfi_rewards, REWARD_KINDS)

    def normalized(self) -> DataRequirements:
        """Same requirements with ETH spot added, duplicates removed and a canonical order.

        Two configs that need the same data produce the same normalized object (and cache key).
        """
        return DataRequirements(
            spot=tuple(a for a in SPOT_ASSETS if a in set(self.spot) | {"ETH"}),
            perps=tuple(
                sorted(set(self.perps), key=lambda p: (PERP_VENUES.index(p[0]), PERP_ASSETS.index(p[1])))
            ),
            aave_reserves=tuple(r for r in AAVE_RESERVES if r in self.aave_reserves),
            lsts=tuple(lst for lst in LSTS if lst in self.lsts),
            etherfi_rewards=tuple(k for k in REWARD_KINDS if k in self.etherfi_rewards),
        )

    @property
    def funding(self) -> tuple[tuple[str, str], ...]:
        """(venue, asset) funding series implied by the perps."""
        return self.perps
