"""Leverage-loop planning for LST collateral / WETH debt on AAVE (docs/ARCHITECTURE.md, Accounting)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoopStep:
    iteration: int
    stake_eth: float     # ETH staked into the LST this iteration
    borrow_eth: float    # WETH borrowed at the end of the iteration (0 on the last)


def sequential_loop(equity_eth: float, target_ltv: float, max_iterations: int | None,
                    min_borrow_eth: float) -> list[LoopStep]:
    """Stake -> supply -> borrow repeated. Iteration i stakes what the previous one borrowed.

    max_iterations: None = loop until the next borrow falls below `min_borrow_eth`; 0 = stake and supply
    only (no borrow); N = at most N borrows. The achieved LTV is target x (1 - l^n)/(1 - l^(n+1)) < target.
    """
    steps: list[LoopStep] = []
    stake = equity_eth
    i = 0
    while True:
        borrow = stake * target_ltv
        cap_reached = max_iterations is not None and i >= max_iterations
        if cap_reached or borrow < min_borrow_eth:
            steps.append(LoopStep(i, stake, 0.0))
            return steps
        steps.append(LoopStep(i, stake, borrow))
        stake = borrow
        i += 1


def flash_loan_amount(equity_eth: float, target_ltv: float) -> float:
    """Atomic entry: flash F = l/(1-l) x E so that debt/collateral = F/(E+F) = l exactly."""
    if not 0.0 <= target_ltv < 1.0:
        raise ValueError(f"target_ltv must be in [0, 1), got {target_ltv}")
    return target_ltv / (1.0 - target_ltv) * equity_eth
