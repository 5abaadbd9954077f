"""Reward book: what each ether.fi distribution owes this portfolio, on the balance it really held.

ether.fi pays a distribution as "reward tokens per eETH held over the staking period". The book
records the eligible balance every hour (one float per hour into a preallocated array), and on a
payout's hour returns the tokens owed: the period's average eligible balance times the per-eETH
amount. Hours of the period before the run started held nothing, so a run that starts mid-period is
paid pro rata, exactly as a holder who bought in then would be.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.domain.market import MarketView
from engine.domain.portfolio import Portfolio
from engine.domain.rewards import REWARDS_MODE_KINDS, RewardPayout

HOURS_PER_YEAR = 8760.0


def eligible_eeth(p: Portfolio, mv: MarketView, t: int, lst: str) -> float:
    """eETH-equivalent of the weETH held: free weETH plus weETH supplied on AAVE (the loop's
    collateral is still the holder's weETH), times the weETH/eETH rate (the oracle rate; 1 eETH is
    1 ETH)."""
    w = p.wallet
    units = w.tokens.get(lst, 0.0)
    scaled = w.supply_scaled.get(lst, 0.0)
    if scaled:
        units += scaled * mv.supply_index[lst][t]
    return units * mv.lst_oracle[lst][t] if units > 0.0 else 0.0


@dataclass(slots=True)
class RewardPayment:
    """One distribution as the run settled it (all values in the share-class currency)."""

    payout: RewardPayout
    status: str                 # paid | excluded (no price) | unclaimed (costs more than it is worth)
    eligible_eeth: float        # average eligible balance over the staking period
    tokens: float               # reward tokens owed
    gross_value: float = 0.0    # tokens x pool price, before any cost
    sale_cost: float = 0.0      # slippage table + pool fees of the sale into the share currency
    gas: float = 0.0            # unwrap + swap gas
    net_value: float = 0.0      # what reached the portfolio: gross - sale cost - gas
    gross_eth: float = 0.0      # gross value in ETH (the reward APY is measured in ETH)

    def as_dict(self) -> dict:
        p = self.payout
        return {
            "label": p.label, "kind": p.kind, "token": p.token, "status": self.status,
            "payout_hour": p.payout_hour, "per_eeth": p.per_eeth, "eligible_eeth": self.eligible_eeth,
            "tokens": self.tokens, "price_eth": p.price_eth, "price_source": p.price_source,
            "gross_value": self.gross_value, "sale_cost": self.sale_cost, "gas": self.gas,
            "net_value": self.net_value, "note": p.note,
        }


class RewardBook:
    """The payouts a run counts (by its rewards mode) and the eligible balance it held each hour."""

    def __init__(self, payouts: list[RewardPayout], rewards_mode: str, hours: int) -> None:
        kinds = REWARDS_MODE_KINDS[rewards_mode]
        self.payouts = [p for p in payouts if p.kind in kinds and 0 <= p.payout_hour < hours]
        self.eligible = np.zeros(hours, dtype=np.float64)
        self._due: dict[int, list[RewardPayout]] = {}
        for p in self.payouts:
            self._due.setdefault(p.payout_hour, []).append(p)
        self.payments: list[RewardPayment] = []

    @property
    def active(self) -> bool:
        return bool(self.payouts)

    def due(self, t: int) -> list[RewardPayout]:
        return self._due.get(t, [])

    def due_hours(self) -> list[int]:
        """The hours a payout is due, in order."""
        return sorted(self._due)

    def owed(self, payout: RewardPayout) -> tuple[float, float]:
        """(average eligible eETH over the staking period, tokens owed). Hours recorded so far only:
        a payout never falls before the end of its period, so the period is complete when it pays."""
        lo = max(payout.period_start_hour, 0)
        hi = min(payout.period_end_hour, payout.payout_hour)
        held = float(self.eligible[lo:hi + 1].sum()) if hi >= lo else 0.0
        average = held / payout.period_hours
        return average, average * payout.per_eeth

    def totals(self) -> dict[str, float | int]:
        paid = [x for x in self.payments if x.status == "paid"]
        return {
            "paid": len(paid),
            "excluded": sum(1 for x in self.payments if x.status == "excluded"),
            "unclaimed": sum(1 for x in self.payments if x.status == "unclaimed"),
            "gross_value": sum(x.gross_value for x in paid),
            "sale_cost": sum(x.sale_cost for x in paid),
            "gas": sum(x.gas for x in paid),
            "net_value": sum(x.net_value for x in paid),
        }


def quarterly_reward_apy(book: RewardBook, quarter_of_hour: np.ndarray, quarters: list[str],
                         benchmark_by_quarter: dict[str, tuple[float, int]]) -> list[dict]:
    """Per calendar quarter: the run's reward APY on its eligible balance beside DeFiLlama's.

    Two readings of the same payments, both gross (before sale cost and gas, as a published reward
    APY is), compounded to a year from the quarter's hours, over the quarter's average eligible eETH:
    - accrued: each payment spread over its staking period's hours in proportion to the balance held
      (what the quarter earned; this is the one comparable with DeFiLlama's daily rate);
    - paid: the payments dated in the quarter (cash; lumpy: the first EIGEN record pays 52 days at once).
    DeFiLlama's figure is the mean of its daily reward APY over the quarter's days that have one.
    """
    n_q = len(quarters)
    accrued = np.zeros(n_q)
    paid = np.zeros(n_q)
    for x in book.payments:
        if x.status != "paid":
            continue
        p = x.payout
        paid[quarter_of_hour[p.payout_hour]] += x.gross_eth
        lo, hi = max(p.period_start_hour, 0), min(p.period_end_hour, p.payout_hour)
        weights = book.eligible[lo:hi + 1]
        total = float(weights.sum())
        if total > 0.0:
            accrued += x.gross_eth * np.bincount(quarter_of_hour[lo:hi + 1], weights=weights, minlength=n_q) / total
    rows = []
    for qi, quarter in enumerate(quarters):
        mask = quarter_of_hour == qi
        hours = int(mask.sum())
        balance = float(book.eligible[mask].mean()) if hours else 0.0
        mean, days = benchmark_by_quarter.get(quarter, (math.nan, 0))
        rows.append({
            "quarter": quarter, "hours": hours, "eligible_eeth_avg": balance,
            "accrued_eth": float(accrued[qi]), "paid_eth": float(paid[qi]),
            "reward_apy_accrued": _apy(float(accrued[qi]), balance, hours),
            "reward_apy_paid": _apy(float(paid[qi]), balance, hours),
            "defillama_reward_apy": mean / 100.0 if days else None, "defillama_days": days,
        })
    return rows


def _apy(rewards_eth: float, balance_eeth: float, hours: int) -> float | None:
    """Reward over a stretch of hours on an average balance, compounded to a year."""
    if balance_eeth <= 0.0 or hours <= 0:
        return None
    return (1.0 + rewards_eth / balance_eeth) ** (HOURS_PER_YEAR / hours) - 1.0
