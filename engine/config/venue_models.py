"""Pydantic models of the venue files (configs/venues/<venue>.yaml).

Venue files hold static parameters only: fees, margin thresholds, risk parameters, per-environment
endpoints flags and contract addresses. Secrets (API keys, RPC URLs with keys, private keys) live in
the OS keyring and must never appear here; the models have no field that could hold one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import (
    AaveAsset,
    Address,
    CexName,
    FlashVenueName,
    Fraction,
    LstType,
    NonNegative,
    OpenFraction,
    Positive,
    StakingVenueName,
    StrictModel,
    Underlying,
)

Bps = Annotated[float, Field(ge=0, le=100)]
#: Maker fees may be rebates (negative) on some tiers.
MakerBps = Annotated[float, Field(ge=-100, le=100)]
CcxtId = Annotated[str, Field(pattern=r"^[a-z0-9]+$")]


# ----------------------------------------------------------------------------------------------- CEX
class CexFees(StrictModel):
    """Base-tier trading fees in basis points (the adapter may read the account's actual tier)."""

    spot_maker_bps: MakerBps
    spot_taker_bps: Bps
    perp_maker_bps: MakerBps
    perp_taker_bps: Bps


class CexEnvironment(StrictModel):
    #: ccxt `set_sandbox_mode(True)`: exchange testnet (OKX: demo trading).
    sandbox: bool
    label: Annotated[str, Field(min_length=1)]


class CexEnvironments(StrictModel):
    testnet: CexEnvironment
    production: CexEnvironment


class CexMarkets(StrictModel):
    """ccxt unified symbols per underlying."""

    spot: dict[Underlying, Annotated[str, Field(min_length=1)]]
    perp: dict[Underlying, Annotated[str, Field(min_length=1)]]


class CexEmergencyStop(StrictModel):
    """What the emergency stop may spend on this venue.

    ``cancel_budget_seconds`` covers list -> cancel -> read back (three round trips) plus retries on
    5xx/429/network: with 2 s of latency one pass takes about 6 s. ``dead_man_seconds`` is the short
    countdown the exchange-side cancel-after is left on after a stop while orders may remain (OKX
    clamps it to 10..120 s; venues without one ignore it)."""

    cancel_budget_seconds: Annotated[float, Field(gt=0, le=120)]
    dead_man_seconds: Annotated[float, Field(ge=1, le=600)]


class CexCashReconciliation(StrictModel):
    """How far the venue's cash (excluding unrealised P&L) may drift from the book's before a live
    session halts. The book applies the venue's own fills and funding payments, so what remains is
    rounding: the venue rounds each fee and payment to its precision (1e-8 USDT) while the book
    computes the fee from the rate in float64. The tolerance must stay below the smallest fee an
    order pays, so a doubled fill or a missed payment is always a breach."""

    tolerance_usdt: Annotated[float, Field(gt=0, le=1)]


class HistoricalData(StrictModel):
    """Which hourly series the shipped data has for this venue (what a backtest can use)."""

    spot: list[Underlying]
    perp: list[Underlying]
    funding: list[Underlying]


class CexVenueConfig(StrictModel):
    name: CexName
    kind: Literal["cex"]
    display_name: Annotated[str, Field(min_length=1)]
    ccxt_id: CcxtId
    #: Separate ccxt class for perps (binance: binanceusdm); null when one client does both.
    ccxt_perp_id: CcxtId | None
    fees: CexFees
    initial_margin_ratio: OpenFraction
    maintenance_margin_ratio: OpenFraction
    margin_warning_ratio: OpenFraction
    margin_urgent_ratio: OpenFraction
    #: Fraction of the liquidated notional charged by the exchange on a forced close.
    liquidation_fee_rate: Annotated[float, Field(ge=0, lt=1)]
    funding_interval_hours: Annotated[int, Field(gt=0, le=24)]
    #: Cost of moving USDT off this venue to another (charged on every inter-venue transfer).
    withdrawal_fee_usdt: NonNegative
    min_order_usdt: Positive
    #: Depth limit: the largest single order (USDT notional) the venue's book is taken to absorb in one
    #: hour within the cost model; a larger order is refused (backtest and live pre-trade check).
    max_order_usdt: Positive
    #: The exchange's position limit (notional of one perp/spot position).
    max_position_usdt: Positive
    emergency_stop: CexEmergencyStop
    cash_reconciliation: CexCashReconciliation
    markets: CexMarkets
    historical_data: HistoricalData
    environments: CexEnvironments


# ------------------------------------------------------------------------------------------ on-chain
class OnchainEnvironment(StrictModel):
    chain_id: Annotated[int, Field(gt=0)]
    #: Contract addresses by role; null = not deployed/known on this chain (readiness check fails).
    contracts: dict[str, Address | None]
    #: ERC-20 tokens this venue uses, by symbol.
    tokens: dict[str, Address | None]


class OnchainEnvironments(StrictModel):
    production: OnchainEnvironment
    testnet: OnchainEnvironment


class OnchainVenueConfig(StrictModel):
    """Fields every on-chain venue has; each venue's model adds its own parameters."""

    name: str
    kind: Literal["onchain"]
    display_name: Annotated[str, Field(min_length=1)]
    environments: OnchainEnvironments


class CollateralRisk(StrictModel):
    """AAVE risk parameters of one collateral (as fractions: 0.93, not 9300 bps)."""

    ltv: Annotated[float, Field(ge=0, lt=1)]
    liquidation_threshold: Annotated[float, Field(gt=0, lt=1)]
    liquidation_bonus: Annotated[float, Field(ge=0, lt=1)]


class EModeCategory(CollateralRisk):
    category_id: Annotated[int, Field(ge=1, le=255)]
    label: Annotated[str, Field(min_length=1)]
    collateral_assets: list[AaveAsset]
    borrowable_assets: list[AaveAsset]


class AaveStandardParams(StrictModel):
    """Non-e-mode risk parameters per reserve."""

    USDT: CollateralRisk
    WETH: CollateralRisk
    weETH: CollateralRisk
    wstETH: CollateralRisk


class AaveConfig(OnchainVenueConfig):
    name: Literal["aave_v3"]
    emode: EModeCategory
    standard: AaveStandardParams
    #: Share of the debt a liquidator may repay while full_liquidation_hf <= HF < 1.
    close_factor: Fraction
    #: Below this health factor the whole debt can be liquidated at once.
    full_liquidation_hf: OpenFraction

    def collateral_risk(self, asset: str, emode: bool) -> CollateralRisk:
        """Risk parameters that apply to `asset` as collateral with or without e-mode."""
        if emode and asset in self.emode.collateral_assets:
            return CollateralRisk(
                ltv=self.emode.ltv,
                liquidation_threshold=self.emode.liquidation_threshold,
                liquidation_bonus=self.emode.liquidation_bonus,
            )
        return getattr(self.standard, asset)

    def max_ltv(self, asset: str, emode: bool) -> float:
        return self.collateral_risk(asset, emode).ltv


class FlashLoanVenueConfig(OnchainVenueConfig):
    name: FlashVenueName
    #: Fee as a fraction of the flash amount (Morpho Blue: 0).
    flash_loan_fee_rate: Annotated[float, Field(ge=0, lt=0.01)]


class StakingVenueConfig(OnchainVenueConfig):
    name: StakingVenueName
    lst_symbol: LstType
    #: The rebasing token the LST wraps (eETH, stETH).
    base_token: Annotated[str, Field(min_length=1)]
    #: The tokens paid; a mode's staking.rewards_mode may only count tokens listed here.
    reward_tokens: list[Annotated[str, Field(min_length=1)]]


#: Uniswap v3 fee tiers (hundredths of a bip: 3000 = 0.3 %).
FeeTier = Literal[100, 500, 3000, 10000]
#: A swap pair "BASE/QUOTE" of token symbols (WETH/USDT, wstETH/WETH).
SwapPair = Annotated[str, Field(pattern=r"^[A-Za-z0-9]+/[A-Za-z0-9]+$")]


class DexVenueConfig(OnchainVenueConfig):
    name: Literal["uniswap"]
    #: Pool fee tier used for swaps, on top of the slippage table.
    swap_fee_bps: Bps
    #: Live swaps: the pool (fee tier) each pair trades in, either direction.
    swap_pools: dict[SwapPair, FeeTier]
    #: Live swaps: amountOutMinimum = amount x reference price x (1 - pool fee) x (1 - this).
    max_slippage_bps: Annotated[float, Field(gt=0, le=1000)]
    #: Depth limit: the largest single swap (USD notional) the pools are taken to absorb in one hour
    #: within the cost model; a larger swap is refused.
    max_order_usdt: Positive


# ----------------------------------------------------------------------------------------------- RPC
class TransactionSettings(StrictModel):
    """How the transaction manager (venues/onchain/tx) sends: gas, fees, finality, stuck handling."""

    #: Gas limit = eth_estimateGas x this: headroom for state that moves between estimate and inclusion.
    gas_limit_margin: Annotated[float, Field(ge=1.0, le=3.0)]
    #: The most any transaction may pay per gas (EIP-1559 maxFeePerGas); above it nothing is signed.
    max_fee_per_gas_gwei: Positive
    #: Upper bound on the tip offered to the block builder (the node's suggestion is used below it).
    max_priority_fee_gwei: NonNegative
    #: Blocks from the receipt's block to the head (1 = mined) before a transaction counts as final.
    confirmations: Annotated[int, Field(ge=1, le=64)]
    #: Without a receipt for this long a transaction is stuck and gets a fee-bumped replacement.
    stuck_after_s: Positive
    #: Fee bump of a replacement; nodes refuse replacements below +10 %, 0.125 leaves margin.
    replacement_fee_bump: Annotated[float, Field(ge=0.125, le=2.0)]
    #: Fee-bumped replacements before a stuck transaction is reported (and left to the operator).
    max_replacements: Annotated[int, Field(ge=0, le=10)]
    #: Seconds between receipt polls while waiting.
    poll_interval_s: Annotated[float, Field(gt=0, le=60)]
    #: MEV-protected endpoint used for eth_sendRawTransaction only (null: the keyring's rpc_url).
    #: Only keyless public endpoints belong here (Flashbots Protect: https://rpc.flashbots.net).
    private_rpc_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None


class RpcEnvironment(StrictModel):
    chain_id: Annotated[int, Field(gt=0)]
    #: Provider network slug; the URL itself (it contains the key) comes from the keyring.
    network: Annotated[str, Field(min_length=1)]
    transactions: TransactionSettings


class RpcEnvironments(StrictModel):
    production: RpcEnvironment
    testnet: RpcEnvironment


GasUnits = Annotated[int, Field(gt=0)]


class GasUnitsByOperation(StrictModel):
    """Gas units per on-chain operation (operation_gas_costs_summary in the data pack)."""

    STAKE_DEPOSIT: GasUnits
    STAKE_WITHDRAWAL: GasUnits
    TOKEN_SWAP: GasUnits
    UNWRAP_KING_TOKEN: GasUnits
    COLLATERAL_SUPPLIED: GasUnits
    COLLATERAL_WITHDRAWN: GasUnits
    LOAN_CREATED: GasUnits
    LOAN_REPAID: GasUnits
    TRADE_EXECUTED: GasUnits
    ADD_LIQUIDITY_V3: GasUnits
    VENUE_TRANSFER: GasUnits
    CREATE_LST: GasUnits
    REDEEM_LST: GasUnits
    ATOMIC_ENTRY: GasUnits
    ATOMIC_DELEVERAGE_ONE_SWAP: GasUnits
    ATOMIC_DELEVERAGE_TWO_SWAPS: GasUnits
    APPROVAL_ONCE: GasUnits
    SET_EMODE_ONCE: GasUnits

    def as_dict(self) -> dict[str, int]:
        return self.model_dump()


class RpcVenueConfig(StrictModel):
    name: Literal["alchemy"]
    kind: Literal["rpc"]
    display_name: Annotated[str, Field(min_length=1)]
    environments: RpcEnvironments
    gas_units: GasUnitsByOperation
    #: Readiness check: the latest block must be younger than this.
    max_block_age_seconds: Positive


VenueConfig = (
    CexVenueConfig | AaveConfig | FlashLoanVenueConfig | StakingVenueConfig | DexVenueConfig | RpcVenueConfig
)

#: The model each venue file is validated with.
VENUE_MODELS: dict[str, type[StrictModel]] = {
    "binance": CexVenueConfig,
    "bybit": CexVenueConfig,
    "okx": CexVenueConfig,
    "etherfi": StakingVenueConfig,
    "lido": StakingVenueConfig,
    "aave_v3": AaveConfig,
    "morpho": FlashLoanVenueConfig,
    "instadapp": FlashLoanVenueConfig,
    "uniswap": DexVenueConfig,
    "alchemy": RpcVenueConfig,
}
