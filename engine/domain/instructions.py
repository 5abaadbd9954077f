"""Instructions: what a strategy wants done, expressed without knowing which venue adapter does it.

Strategies never touch venues; they emit these plain records and the execution manager routes them.
Amounts are float64 in the backtest hot path; live adapters convert to Decimal at the order boundary.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Op(str, Enum):
    """Every state-changing operation the engine can ask for."""

    APPROVE = "approve"              # one-off token approval (gas only)
    SET_EMODE = "set_emode"          # AAVE e-mode category (gas only)
    SUPPLY = "supply"                # AAVE supply underlying -> aToken (scaled by liquidity index)
    WITHDRAW = "withdraw"            # AAVE withdraw underlying
    BORROW = "borrow"                # AAVE variable borrow (scaled by borrow index)
    REPAY = "repay"                  # AAVE repay variable debt
    STAKE = "stake"                  # ETH -> LST minted at the protocol (oracle) rate
    SWAP = "swap"                    # DEX swap on-chain (uniswap/curve route), pays bps + gas
    SPOT_TRADE = "spot_trade"        # CEX spot buy (+) / sell (-) of `asset`
    PERP_TRADE = "perp_trade"        # CEX linear perp: + buys (reduces a short), - sells
    TRANSFER = "transfer"            # USDT between the wallet and a CEX account, or between CEXs
    FLASH_BORROW = "flash_borrow"    # flash loan inside an atomic bundle
    FLASH_REPAY = "flash_repay"      # flash loan repayment (+ fee) inside the same bundle
    BUNDLE = "bundle"                # atomic transaction: children execute together, one gas charge


WALLET = "wallet"  # the single on-chain address (docs/ARCHITECTURE.md, Accounting)


@dataclass(slots=True)
class Instruction:
    """One operation. `amount` is in units of `asset` (token units, contracts in base asset for perps).

    For SWAP, `asset` is the token sold and `to_asset` the token bought; for TRANSFER, `venue` is the
    source and `to_venue` the destination. A BUNDLE carries `children` and the `gas_op` paid once.
    """

    op: Op
    venue: str
    asset: str = ""
    amount: float = 0.0
    to_asset: str = ""
    to_venue: str = ""
    reason: str = ""
    gas_op: str | None = None
    children: list["Instruction"] = field(default_factory=list)
    iteration: int | None = None


@dataclass(slots=True)
class Fill:
    """What actually happened when an instruction executed (simulated or live)."""

    instruction: Instruction
    amount_in: float            # units of instruction.asset given / traded
    amount_out: float           # units received (to_asset / aToken underlying / USDT proceeds ...)
    price: float                # execution price (USDT per unit for CEX, rate for swaps), 0 if n/a
    execution_cost: float       # in USD: fees + slippage + peg difference + flash fee
    gas_eth: float              # ETH burned as gas
    children: list["Fill"] = field(default_factory=list)
