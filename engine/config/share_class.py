"""Model of a share class file (configs/share_classes/<name>.yaml).

The share class fixes the currency results are reported in and whether the strategy may hold price
exposure; the mode rules use `market_neutral` and `allows_hedging` rather than hard-coding names.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .capital import MAX_CAPITAL
from .common import Currency, Positive, StrictModel


class ShareClassConfig(StrictModel):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    currency: Currency
    #: Starting capital for a backtest, in `currency` units.
    default_capital: Positive
    #: True: the value must not move with the price of ETH/BTC (any such exposure must be hedged).
    market_neutral: bool
    #: False: perp hedges are never placed (a hedge in a mode file is switched off with a warning).
    allows_hedging: bool
    description: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _capital_within_bound(self) -> ShareClassConfig:
        bound = MAX_CAPITAL[self.currency]
        if self.default_capital > bound:
            raise ValueError(f"default_capital {self.default_capital:g} is above the largest accepted capital "
                             f"(allowed: 0 < default_capital <= {bound:g} {self.currency})")
        return self
