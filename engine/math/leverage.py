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


def flash_loan_for_target_ltv(collateral_eth: float, debt_eth: float, target_ltv: float, *,
                              equity_eth: float = 0.0, fee_rate: float = 0.0, conversion: float = 1.0) -> float:
    """Flash amount F that takes a position to debt / collateral = l in one atomic entry.

    The entry turns the new equity E and the flash loan, less the flash fee (paid out of what is
    staked, as ``lever_up`` does), into collateral, and borrows F to repay the loan:

        collateral' = C + k x (E + F x (1 - fee)),   debt' = D + F,   debt' / collateral' = l
        =>  F = (l x (C + k x E) - D) / (1 - l x k x (1 - fee))

    C and D are today's collateral and debt valued in ETH at AAVE's oracle, k the collateral value
    gained per ETH converted (1 when staking at the rate the oracle uses; the pool price less its fee
    over the oracle when buying on a DEX). With C = D = 0, k = 1 and no fee this is the textbook
    F = l / (1 - l) x E of ``flash_loan_amount``.
    """
    if not 0.0 <= target_ltv < 1.0:
        raise ValueError(f"target_ltv must be in [0, 1), got {target_ltv}")
    if not 0.0 <= fee_rate < 1.0 or conversion <= 0.0:
        raise ValueError(f"fee_rate must be in [0, 1) and conversion positive, got {fee_rate}, {conversion}")
    denominator = 1.0 - target_ltv * conversion * (1.0 - fee_rate)
    if denominator <= 0.0:
        raise ValueError(f"target LTV {target_ltv} cannot be reached with conversion {conversion}: "
                         "each ETH borrowed adds at least its own value of debt ratio")
    flash = (target_ltv * (collateral_eth + conversion * equity_eth) - debt_eth) / denominator
    if flash <= 0.0:
        raise ValueError(f"the position is already at or above LTV {target_ltv} "
                         f"(collateral {collateral_eth:.6f} ETH, debt {debt_eth:.6f} ETH): nothing to borrow")
    return flash
