"""Live on-chain market state for paper and live sessions, as an engine port.

The backtest reads AAVE indices, LST rates and gas from the shipped history; a running session reads
them from the chain each tick instead (venues/onchain/market_reader.py implements the port on web3).
One ``read()`` is one consistent snapshot: every value comes from the same block, so an index and
the gas price of a reading can never belong to two different moments of the chain.

Values are ``Decimal`` exactly as the contracts report them, scaled to the engine's units:

- ``supply_index`` / ``borrow_index``: AAVE ``getReserveNormalizedIncome`` /
  ``getReserveNormalizedVariableDebt`` divided by 1e27 (about 1.0x) — the indices accrued to the
  block, which is what a scaled balance is multiplied by;
- ``lst_oracle``: ETH per LST the way AAVE values it for the health factor (the oracle's LST price
  over its WETH price); without AAVE in the mode, the LST contract's own exchange rate;
- ``lst_protocol_rate``: the LST contract's rate (``wstETH.stEthPerToken``, ``weETH.getRate``);
- ``lst_market``: ETH per LST in its Uniswap v3 pool (slot0), what an exit gets before fees; absent
  for an LST without a configured pool;
- ``eth_usd``: the AAVE oracle's WETH price in USD (None without AAVE);
- gas: the next block's base fee and the median priority fee of recent blocks (``eth_feeHistory``),
  in gwei; their sum is what the backtest's gas series holds (base + p50 tip).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping, Protocol, runtime_checkable


@dataclass(frozen=True)
class ChainMarketReading:
    """Everything read at ``block_number``; ``requested_at``/``read_at`` are wall-clock seconds."""

    block_number: int
    block_timestamp: int
    requested_at: float
    read_at: float
    supply_index: Mapping[str, Decimal] = field(default_factory=dict)
    borrow_index: Mapping[str, Decimal] = field(default_factory=dict)
    lst_oracle: Mapping[str, Decimal] = field(default_factory=dict)
    lst_protocol_rate: Mapping[str, Decimal] = field(default_factory=dict)
    lst_market: Mapping[str, Decimal] = field(default_factory=dict)
    eth_usd: Decimal | None = None
    base_fee_gwei: Decimal = Decimal(0)
    priority_fee_gwei: Decimal = Decimal(0)

    @property
    def gas_gwei(self) -> Decimal:
        return self.base_fee_gwei + self.priority_fee_gwei

    @property
    def latency_s(self) -> float:
        return self.read_at - self.requested_at


@dataclass(frozen=True)
class ChainMarketNeeds:
    """What a session's market view holds of the chain: AAVE reserves (indices) and LSTs (rates)."""

    reserves: tuple[str, ...] = ()
    lsts: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.reserves or self.lsts)


@dataclass(frozen=True)
class ChainFeedUnavailable:
    """Why a session runs without chain reads (its on-chain series then stay at their last
    historical value, and the session says so with this reason)."""

    reason: str


@runtime_checkable
class ChainMarketPort(Protocol):
    """Reads of the chain's market state for one session."""

    @property
    def source(self) -> str:
        """Where the reads come from, for people: "chain 11155111 via alchemy (testnet)"."""
        ...

    @property
    def block_age_limit_s(self) -> float:
        """A head block older than this is reported (the readiness check's block-age limit)."""
        ...

    @property
    def market_pools(self) -> tuple[str, ...]:
        """The LSTs whose market rate comes from a pool (the others take the oracle rate)."""
        ...

    async def read(self) -> ChainMarketReading: ...

    async def close(self) -> None: ...
