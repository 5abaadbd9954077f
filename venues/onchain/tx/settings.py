"""TxSettings: the RPC venue file's ``environments.<env>.transactions`` in the units the manager uses."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

GWEI = 10**9


@dataclass(frozen=True)
class TxSettings:
    gas_limit_margin: float
    max_fee_per_gas_wei: int
    max_priority_fee_wei: int
    confirmations: int
    stuck_after_s: float
    replacement_fee_bump: float
    max_replacements: int
    poll_interval_s: float
    private_rpc_url: str | None

    @classmethod
    def from_config(cls, transactions: Any) -> "TxSettings":
        """From an engine.config TransactionSettings (validated: every key present)."""
        return cls(
            gas_limit_margin=float(transactions.gas_limit_margin),
            max_fee_per_gas_wei=int(round(transactions.max_fee_per_gas_gwei * GWEI)),
            max_priority_fee_wei=int(round(transactions.max_priority_fee_gwei * GWEI)),
            confirmations=int(transactions.confirmations),
            stuck_after_s=float(transactions.stuck_after_s),
            replacement_fee_bump=float(transactions.replacement_fee_bump),
            max_replacements=int(transactions.max_replacements),
            poll_interval_s=float(transactions.poll_interval_s),
            private_rpc_url=transactions.private_rpc_url,
        )

    @classmethod
    def for_environment(cls, rpc_config: Any, environment: str) -> "TxSettings":
        env = getattr(rpc_config.environments, environment)
        return cls.from_config(env.transactions)

    def gas_limit(self, estimate: int) -> int:
        return math.ceil(estimate * self.gas_limit_margin)


def gwei(wei: int) -> str:
    """A fee for messages: 12.3 gwei."""
    value = wei / GWEI
    return f"{value:.4g} gwei" if value < 1000 else f"{value:,.0f} gwei"
