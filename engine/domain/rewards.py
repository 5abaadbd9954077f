"""Restaking reward payouts: what a weETH holder is paid, when, and at what token price.

ether.fi pays its rewards in discrete distributions, not as a continuous yield: each record names a
staking period, an amount of reward token per eETH held over that period, and a payout date. The
data layer turns the published records into these plain values (with the hours on the run's grid
and the token's DEX price at the payout); the engine pays them on their dates on the balance the
portfolio actually held.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: The three streams, in the order the rewards modes add them.
EIGEN_WEEKLY = "eigen_weekly"      # KING weekly EIGEN distribution
ETHFI_TOPUP = "ethfi_topup"        # ETHFI ether.fi added to the KING distributions
ETHFI_SEASON = "ethfi_season"      # ETHFI seasonal airdrop (published as a range)
REWARD_KINDS: tuple[str, ...] = (EIGEN_WEEKLY, ETHFI_TOPUP, ETHFI_SEASON)

#: Which streams each `staking.rewards_mode` counts.
REWARDS_MODE_KINDS: dict[str, tuple[str, ...]] = {
    "base_only": (),
    "base_eigen": (EIGEN_WEEKLY, ETHFI_TOPUP),
    "base_eigen_seasonal": (EIGEN_WEEKLY, ETHFI_TOPUP, ETHFI_SEASON),
}

#: Gas operation of turning KING into the reward tokens it carries before they can be sold.
KING_UNWRAP_GAS_OP = "UNWRAP_KING_TOKEN"


@dataclass(frozen=True, slots=True)
class RewardPayout:
    """One distribution, resolved onto a run's hourly grid.

    Hours are indices into the run's grid; `period_start_hour` is negative when the staking period
    began before the window (those hours held nothing, so they dilute the average balance exactly
    as holding nothing would). `price_eth` is None when the pack has no pool price on the payout
    date: such a payout is reported and not paid.
    """

    kind: str                  # one of REWARD_KINDS
    token: str                 # EIGEN | ETHFI
    label: str                 # "EIGEN week 2024-10-06..2024-10-12"
    period_start_hour: int     # first hour of the staking period (grid index, may be < 0)
    period_end_hour: int       # last hour of the staking period (inclusive)
    payout_hour: int           # the hour it is paid (grid index, inside the window)
    per_eeth: float            # reward tokens per eETH held over the whole period
    price_eth: float | None    # pool price at the payout, ETH per token (None: no price that date)
    price_source: str          # which pool close priced it (or why there is none)
    pool_fee_bps: float        # the pool's fee tier, paid on the sale on top of the slippage table
    via_king: bool             # delivered as KING, which is unwrapped before the sale
    note: str = ""             # how the amount was read (e.g. the conservative end of a range)

    @property
    def period_hours(self) -> int:
        return self.period_end_hour - self.period_start_hour + 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "RewardPayout":
        return cls(**doc)
