"""Pydantic models of a scenario file (configs/scenarios/<name>.yaml).

A scenario is a list of shocks, each applied to the replay series over a span that starts
`start_hours` after the run's `--at` hour. Every key is required, as in the mode files: a shock
whose duration or recovery was left out must be an error naming the key, never an assumed value.

Shapes of the relative shocks (price, LST rate): the series is multiplied by (1 + change x s(t)),
where s rises to 1 in `ramp_hours` equal hourly steps (0 or 1: at once), stays at 1 for
`hold_hours` hours and returns to 0 in `recovery_hours` equal steps (0: at once). `hold_hours: null`
means no recovery: the shocked level lasts to the end of the run. Multiplying keeps the series' own
hourly moves, so a crash lands on the market as it really was at that time.

Level overrides (funding, AAVE rates, gas, outages) replace the series for `duration_hours` hours.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.config.common import AaveAsset, CexName, LstType, StrictModel, Underlying

#: Every venue a run can lose: the CEXs and the on-chain venues the strategies send instructions to.
OutageVenue = Literal["binance", "bybit", "okx", "aave_v3", "morpho", "instadapp", "uniswap", "lido", "etherfi"]
LstRateKind = Literal["market", "oracle"]
RateSide = Literal["supply", "borrow"]

NonNegativeHours = Annotated[int, Field(ge=0)]
PositiveHours = Annotated[int, Field(ge=1)]
#: A relative change: -0.3 is a 30 % fall; a series cannot fall by 100 % or more.
RelativeChange = Annotated[float, Field(gt=-1)]


class _Span(StrictModel):
    #: Hours after the run's --at hour at which the shock starts (0: at --at).
    start_hours: NonNegativeHours


class _Shaped(_Span):
    change: RelativeChange
    ramp_hours: NonNegativeHours
    hold_hours: PositiveHours | None
    recovery_hours: NonNegativeHours | None

    @model_validator(mode="after")
    def _recovery_needs_a_hold(self) -> _Shaped:
        if self.hold_hours is None and self.recovery_hours is not None:
            raise ValueError("recovery_hours must be null when hold_hours is null (no recovery: the "
                             "shocked level lasts to the end of the run)")
        if self.hold_hours is not None and self.recovery_hours is None:
            raise ValueError("recovery_hours is required when hold_hours is set (0: back at once)")
        return self

    @property
    def ramp_len(self) -> int:
        """Hours until the full change is reached, counting the first shocked hour (a step is 1)."""
        return max(self.ramp_hours, 1)

    @property
    def span_hours(self) -> int | None:
        """Hours from the start until the series is back on its own path; None without recovery."""
        if self.hold_hours is None:
            return None
        return self.ramp_len - 1 + self.hold_hours + (self.recovery_hours or 0)


class PriceShock(_Shaped):
    """The asset's spot price and every venue's perp mark move together."""

    kind: Literal["price"]
    asset: Underlying


class LstRateShock(_Shaped):
    """An LST's DEX market rate, or the AAVE oracle rate that health factors use (a CAPO misprice
    moves the oracle, not the market), or both."""

    kind: Literal["lst_rate"]
    lsts: Annotated[list[LstType], Field(min_length=1)]
    rates: Annotated[list[LstRateKind], Field(min_length=1)]


class _Level(_Span):
    duration_hours: PositiveHours

    @property
    def span_hours(self) -> int:
        return self.duration_hours


class FundingShock(_Level):
    """Funding at every settlement in the span is this APR (per 8 h settlement: apr / 1095)."""

    kind: Literal["funding"]
    apr: float
    venues: Annotated[list[CexName], Field(min_length=1)]
    assets: Annotated[list[Underlying], Field(min_length=1)]


class AaveRateShock(_Level):
    """The reserve's supply or borrow rate is this APR in the span; its index is re-integrated from the
    overridden rate, so balances (scaled x index) accrue at it and keep growing from there after."""

    kind: Literal["aave_rate"]
    reserve: AaveAsset
    side: RateSide
    apr: Annotated[float, Field(ge=0, le=10)]


class GasShock(_Level):
    kind: Literal["gas"]
    gwei: Annotated[float, Field(gt=0)]


class OutageShock(_Level):
    """No trading and no transfers on the venues; their marks and funding still move and the
    exchange's own liquidation engine still runs."""

    kind: Literal["outage"]
    venues: Annotated[list[OutageVenue], Field(min_length=1)]


Shock = PriceShock | LstRateShock | FundingShock | AaveRateShock | GasShock | OutageShock
SHOCK_MODELS: dict[str, type[StrictModel]] = {
    "price": PriceShock, "lst_rate": LstRateShock, "funding": FundingShock,
    "aave_rate": AaveRateShock, "gas": GasShock, "outage": OutageShock,
}


class Scenario(StrictModel):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    description: Annotated[str, Field(min_length=1)]
    shocks: Annotated[list[Annotated[Shock, Field(discriminator="kind")]], Field(min_length=1)]

    def digest_payload(self) -> dict:
        """What identifies the scenario's effect (the description does not change any number)."""
        return {"shocks": [s.model_dump(mode="json") for s in self.shocks]}
