"""On-chain execution ports: what the engine needs to act on a chain, as ``typing.Protocol``s.

The venue layer (venues.onchain) implements them on web3; the engine sees only these plain types, so
no web3 or SDK object crosses the boundary. Conventions:

- Token amounts are ``Decimal`` in token units (1.5 WETH, 2500 USDT); adapters convert to integer
  base units with the token's decimals, rounding *down*, so nothing larger than asked is ever sent.
  ``"max"`` means "all of it" where the protocol has such a notion (AAVE withdraw/repay).
- Every write returns a ``TxResult`` once the transaction is final (mined, the configured number of
  confirmations on top, its block still canonical), or raises ``TransactionError`` saying at which
  stage and why (refused before signing, reverted, dropped, stuck, cancelled).
- Reads are safe to retry; writes are not retried by the caller (the transaction manager handles
  resubmission of the *same* signed transaction, which cannot execute twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Literal, Protocol, Sequence, runtime_checkable

from engine.domain.presign import PreSignTicket
from engine.domain.venue_ports import AaveAccountData, VenueError, VenueErrorKind

MAX: Literal["max"] = "max"
RAY = Decimal(10) ** 27
AmountOrMax = Decimal | Literal["max"]
WEI_PER_ETH = Decimal(10) ** 18


class TxStage(str, Enum):
    """Where a transaction's life ended, for a failure."""

    SIMULATION = "simulation"  # eth_call / eth_simulateV1 reverted: nothing was signed
    FEES = "fees"  # the fee it would need is above the configured cap: nothing signed
    SIGNING = "signing"  # no key, wrong key, key does not match the wallet
    SUBMISSION = "submission"  # the node refused the signed transaction
    EXECUTION = "execution"  # mined, but reverted (gas was paid)
    STUCK = "stuck"  # not mined after every allowed replacement
    DROPPED = "dropped"  # vanished from the node and its nonce was used by something else
    CANCELLED = "cancelled"  # replaced by our own 0-value self-transfer at the same nonce
    HALTED = "halted"  # trading is halted (emergency stop): nothing new is signed
    RECOVERY = "recovery"  # a transaction from an earlier session is unresolved: resolve it first
    VERIFICATION = "verification"  # the contract to call is not the one expected (code hash, owner)


@dataclass(frozen=True)
class RevertInfo:
    """A decoded revert: ``name`` is stable (HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD,
    "Too little received", Panic(0x11)); ``message`` is for people."""

    kind: str
    name: str
    message: str
    code: str | None = None


class TransactionError(VenueError):
    """An on-chain write that did not complete. The message never contains key material."""

    def __init__(
        self,
        venue: str,
        stage: TxStage,
        message: str,
        *,
        operation: str = "",
        revert: RevertInfo | None = None,
        tx_hash: str | None = None,
        nonce: int | None = None,
    ) -> None:
        kind = (
            VenueErrorKind.REJECTED
            if stage
            in (
                TxStage.SIMULATION,
                TxStage.EXECUTION,
                TxStage.SUBMISSION,
                TxStage.FEES,
                TxStage.HALTED,
                TxStage.RECOVERY,
            )
            else VenueErrorKind.CONFIG
            if stage in (TxStage.SIGNING, TxStage.VERIFICATION)
            else VenueErrorKind.UNKNOWN
        )
        super().__init__(venue, kind, message, operation=operation)
        self.stage = stage
        self.revert = revert
        self.tx_hash = tx_hash
        self.nonce = nonce


@dataclass(frozen=True)
class TxResult:
    """A final transaction: mined, confirmed, canonical."""

    label: str  # what it was: "aave_v3.supply weETH 10"
    tx_hash: str
    nonce: int
    block_number: int
    block_hash: str
    gas_used: int
    gas_limit: int
    effective_gas_price_wei: int
    confirmations: int
    replacements: int = 0  # fee bumps it took to get mined
    reorgs: int = 0  # times its block was reorganised away before it became final

    @property
    def fee_wei(self) -> int:
        return self.gas_used * self.effective_gas_price_wei

    @property
    def fee_eth(self) -> Decimal:
        return Decimal(self.fee_wei) / WEI_PER_ETH


@dataclass(frozen=True)
class FeeQuote:
    """EIP-1559 fees the next transaction would carry, and the cap they were checked against."""

    base_fee_wei: int  # next block's base fee
    priority_fee_wei: int
    max_fee_wei: int
    cap_wei: int


# ------------------------------------------------------------------------------------------- nonce ledger
class LedgerStatus(str, Enum):
    SIGNED = "signed"  # written before broadcast: a crash here leaves a known raw tx
    SENT = "sent"  # the node accepted it
    MINED = "mined"  # receipt seen, not yet final
    CONFIRMED = "confirmed"  # final (confirmations reached, block canonical)
    REVERTED = "reverted"  # final, but the execution reverted
    REPLACED = "replaced"  # another transaction of ours took the nonce (fee bump or cancel)
    DROPPED = "dropped"  # gone, nonce taken by a transaction we did not sign here
    FAILED = "failed"  # the node refused it; the nonce was not consumed


PENDING_STATUSES = (LedgerStatus.SIGNED, LedgerStatus.SENT, LedgerStatus.MINED)


@dataclass(frozen=True)
class LedgerTx:
    """One signed transaction in the nonce ledger. ``raw`` is the signed transaction (public once sent;
    kept so a restart can rebroadcast it). No key material is stored."""

    chain_id: int
    sender: str
    nonce: int
    tx_hash: str
    kind: str  # "send" | "replace" | "cancel"
    label: str
    status: LedgerStatus
    raw: str
    max_fee_wei: int
    priority_fee_wei: int
    gas_limit: int
    created_at: float = 0.0
    block_number: int | None = None
    block_hash: str | None = None
    detail: str = ""


@runtime_checkable
class NonceLedgerPort(Protocol):
    """Durable record of every transaction signed, written before it is broadcast."""

    def record(self, tx: LedgerTx) -> None: ...

    def update(
        self,
        tx_hash: str,
        status: LedgerStatus,
        *,
        block_number: int | None = None,
        block_hash: str | None = None,
        detail: str = "",
    ) -> None: ...

    def pending(self, chain_id: int, sender: str) -> list[LedgerTx]:
        """Transactions not yet final (signed, sent or mined), oldest nonce first."""
        ...

    def note(self, tx_hash: str, detail: str) -> None:
        """Record an event without a status change (a reorg seen, a rebroadcast)."""
        ...

    def by_nonce(self, chain_id: int, sender: str, nonce: int) -> list[LedgerTx]: ...

    def highest_nonce(self, chain_id: int, sender: str) -> int | None:
        """Highest nonce ever signed here (any status but FAILED), or None."""
        ...


# ------------------------------------------------------------------------------------------- positions
@dataclass(frozen=True)
class AaveReserveState:
    """One reserve's indices and rates, as plain numbers.

    ``liquidity_index`` / ``variable_borrow_index`` are getReserveData's (as of the reserve's last
    update); ``normalized_income`` / ``normalized_variable_debt`` are those indices accrued to the
    block read (getReserveNormalizedIncome / ...VariableDebt), which is what balances use:
    underlying = rayMul(scaled balance, normalized index). Ray values divided by 1e27 (about 1.0x).
    """

    asset: str
    liquidity_index: Decimal
    variable_borrow_index: Decimal
    liquidity_rate: Decimal  # current supply APR (ray / 1e27)
    variable_borrow_rate: Decimal  # current variable borrow APR
    last_update_timestamp: int
    liquidity_index_ray: int
    variable_borrow_index_ray: int
    normalized_income_ray: int
    normalized_variable_debt_ray: int

    @property
    def normalized_income(self) -> Decimal:
        return Decimal(self.normalized_income_ray) / RAY

    @property
    def normalized_variable_debt(self) -> Decimal:
        return Decimal(self.normalized_variable_debt_ray) / RAY


@dataclass(frozen=True)
class AaveAssetPosition:
    asset: str
    scaled_supply: Decimal  # aToken.scaledBalanceOf, token units
    scaled_variable_debt: Decimal  # variableDebtToken.scaledBalanceOf, token units
    supply: Decimal  # aToken.balanceOf (scaled x current index)
    variable_debt: Decimal  # variableDebtToken.balanceOf
    scaled_supply_raw: int
    scaled_variable_debt_raw: int


@dataclass(frozen=True)
class AavePosition:
    """Everything the engine values of one AAVE account, read at one block."""

    block_number: int
    assets: dict[str, AaveAssetPosition]
    reserves: dict[str, AaveReserveState]
    account: AaveAccountData


@dataclass(frozen=True)
class SwapResult:
    tx: TxResult
    token_in: str
    token_out: str
    amount_in: Decimal
    amount_out: Decimal  # what arrived in the wallet
    amount_out_minimum: Decimal  # the floor the router enforced
    reference_price: Decimal  # token_out per token_in the floor was computed from


@dataclass(frozen=True)
class LstBalances:
    lst: str  # wstETH | weETH
    base_token: str  # stETH | eETH
    base: Decimal  # rebasing token balance
    wrapped: Decimal  # LST balance
    rate: Decimal  # ETH per LST


# ------------------------------------------------------------------------------------------- ports
@runtime_checkable
class AaveLendingPort(Protocol):
    """AAVE v3 Pool for one wallet. Approvals are exact amounts (no unlimited allowance by default)."""

    async def approve(self, asset: str, amount: Decimal) -> TxResult | None:
        """Allow the Pool to pull exactly ``amount``; None when the allowance already covers it."""
        ...

    async def supply(self, asset: str, amount: Decimal) -> TxResult: ...

    async def withdraw(self, asset: str, amount: AmountOrMax) -> TxResult: ...

    async def borrow(self, asset: str, amount: Decimal) -> TxResult: ...

    async def repay(self, asset: str, amount: AmountOrMax) -> TxResult: ...

    async def set_user_emode(self, category_id: int) -> TxResult: ...

    async def reserve_state(self, asset: str) -> AaveReserveState: ...

    async def position(self, assets: Sequence[str] | None = None) -> AavePosition: ...


@runtime_checkable
class LiquidStakingPort(Protocol):
    """Lido (stETH/wstETH) or ether.fi (eETH/weETH) for one wallet."""

    @property
    def lst(self) -> str: ...

    async def stake(self, eth: Decimal) -> TxResult:
        """ETH -> the rebasing token (Lido submit, ether.fi LiquidityPool.deposit)."""
        ...

    async def wrap(self, amount: Decimal) -> TxResult:
        """Rebasing token -> LST (approves the wrapper for exactly ``amount`` first if needed)."""
        ...

    async def unwrap(self, amount: Decimal) -> TxResult: ...

    async def rate(self) -> Decimal:
        """ETH per LST (wstETH.stEthPerToken, weETH.getRate)."""
        ...

    async def balances(self) -> LstBalances: ...


@runtime_checkable
class DexSwapPort(Protocol):
    """Uniswap v3 exact-input swaps with a floor from a reference price and the configured slippage."""

    async def swap_exact_input(
        self, token_in: str, token_out: str, amount_in: Decimal, *, reference_price: Decimal | None = None
    ) -> SwapResult:
        """Sell exactly ``amount_in``. ``reference_price`` (token_out per token_in) defaults to the AAVE
        oracle's; the floor is that price less the pool fee and the configured maximum slippage."""
        ...


@dataclass(frozen=True)
class PendingTx:
    """A transaction found not final at startup, and what the chain says about it now."""

    nonce: int
    tx_hash: str
    label: str
    status: LedgerStatus
    known_to_node: bool
    detail: str = ""


@dataclass(frozen=True)
class RecoveryReport:
    chain_id: int
    sender: str
    resolved: list[LedgerTx] = field(default_factory=list)  # finished while we were away
    pending: list[PendingTx] = field(default_factory=list)  # still open: rebroadcast or cancel


# ------------------------------------------------------------------------------------------- atomic leverage
class FlashLender(str, Enum):
    """Who lends the flash loan of an atomic entry or exit."""

    MORPHO = "morpho"  # Morpho Blue: fee 0
    AAVE = "aave_v3"  # AAVE flashLoanSimple: FLASHLOAN_PREMIUM_TOTAL bps (5 on the Ethereum Core market)


class EntryRoute(str, Enum):
    """How WETH becomes the LST collateral on entry."""

    STAKE = "stake"  # at the protocol: Lido submit + wstETH wrap, ether.fi deposit + weETH wrap
    SWAP = "swap"  # bought on Uniswap v3


@dataclass(frozen=True)
class LeverageEntryRequest:
    """Enter (or grow) the loop to ``target_ltv`` in one transaction.

    The collateral already supplied counts; ``equity_weth`` (pulled from the wallet) and
    ``equity_eth`` (sent with the transaction) are added to it. The transaction reverts unless the
    account ends with debt / collateral within ``ltv_tolerance`` of the target and a health factor of
    at least ``min_health_factor``.
    """

    lst: str  # wstETH | weETH
    target_ltv: Decimal
    ltv_tolerance: Decimal
    min_health_factor: Decimal
    lender: FlashLender = FlashLender.MORPHO
    route: EntryRoute = EntryRoute.STAKE
    equity_weth: Decimal = Decimal(0)
    equity_eth: Decimal = Decimal(0)


@dataclass(frozen=True)
class LeverageExitRequest:
    """Deleverage to ``target_health_factor`` (within ``hf_tolerance``), or fully with None: repay every
    wei of WETH debt, withdraw all the LST collateral, sell it, and return the rest to the wallet."""

    lst: str
    target_health_factor: Decimal | None
    hf_tolerance: Decimal
    lender: FlashLender = FlashLender.MORPHO


@dataclass(frozen=True)
class LeveragePlan:
    """An atomic entry or exit sized by the engine's maths, with its simulated pre-sign ticket.

    ``flash_amount`` is WETH; ``collateral_change`` / ``debt_change`` are what the sizing expects (LST
    units, WETH), the ticket says what the simulation got. ``ticket.digest`` identifies the calls."""

    kind: Literal["entry", "exit"]
    lender: FlashLender
    lst: str
    flash_amount: Decimal
    collateral_change: Decimal
    debt_change: Decimal
    ticket: PreSignTicket


@dataclass(frozen=True)
class LeverageOutcome:
    """A plan that was executed: the fresh ticket it passed, its transactions, and the account after."""

    plan: LeveragePlan
    ticket: PreSignTicket
    results: tuple[TxResult, ...]
    flash_amount: Decimal  # as the executor reported it (its Entered / Exited event)
    flash_premium: Decimal
    account_after: AaveAccountData

    @property
    def gas_used(self) -> int:
        return sum(r.gas_used for r in self.results)


@runtime_checkable
class AtomicLeveragePort(Protocol):
    """The project's executor contract for one wallet: plan (simulated, nothing signed), then execute."""

    async def plan_entry(self, request: LeverageEntryRequest) -> LeveragePlan: ...

    async def plan_exit(self, request: LeverageExitRequest) -> LeveragePlan: ...

    async def execute(self, plan: LeveragePlan, *, hf_floor: Decimal) -> LeverageOutcome:
        """Simulate the plan's calls again on the current state, refuse it below ``hf_floor``, send."""
        ...

