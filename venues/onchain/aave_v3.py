"""AAVE v3 Pool for one wallet: approve, supply, withdraw, borrow, repay, e-mode, and position reads.

Implements engine.domain.onchain_ports.AaveLendingPort. Writes go through the wallet's TxManager
(simulated first: an action the Pool would refuse, such as a borrow that breaks the health factor,
is refused unsigned with AAVE's error by name). Reads are taken at one block so a position's scaled
balances, indices and account data belong together.

Balances are what the engine values: scaled balances (``scaledBalanceOf``) times the reserve's
liquidity index (supply) or variable borrow index (debt), both rays (1e27).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Mapping, Sequence

from engine.domain.onchain_ports import (
    MAX,
    RAY,
    AaveAssetPosition,
    AavePosition,
    AaveReserveState,
    AmountOrMax,
    TxResult,
)
from engine.domain.venue_ports import AaveAccountData, VenueError, VenueErrorKind
from venues.onchain import abi
from venues.onchain.tx.manager import TxCall
from venues.onchain.wallet import MAX_UINT256, WalletContext, from_base_units, require_address

VENUE = "aave_v3"
SECONDS_PER_YEAR = Decimal(365 * 24 * 3600)


def D_BPS(value: int) -> Decimal:  # noqa: N802 - reads as a unit
    return Decimal(int(value)) / Decimal(10_000)


VARIABLE_RATE = 2  # interestRateMode: variable (stable borrowing is disabled on v3 markets)
REPAY_ALLOWANCE_HORIZON_S = 3600  # repay-max allowance covers this much interest beyond today's debt


class AaveV3Adapter:
    """AAVE v3 for the wallet of ``ctx``; ``contracts``/``tokens`` are the venue file's tables."""

    def __init__(
        self, ctx: WalletContext, contracts: Mapping[str, str | None], tokens: Mapping[str, str | None]
    ) -> None:
        self.ctx = ctx
        self.contracts = dict(contracts)
        self.tokens = dict(tokens)
        self.pool_address = require_address(self.contracts, "pool", VENUE, "contract")
        self.pool = ctx.contract(self.pool_address, abi.AAVE_POOL_WRITE)

    # -- addresses -------------------------------------------------------------------------------------
    def token(self, asset: str) -> str:
        if asset not in self.tokens:
            raise VenueError(
                VENUE,
                VenueErrorKind.CONFIG,
                f"no reserve token {asset!r} in configs/venues/aave_v3.yaml; known: "
                f"{', '.join(sorted(self.tokens))}",
            )
        return require_address(self.tokens, asset, VENUE, "token")

    def a_token(self, asset: str) -> str:
        return require_address(self.contracts, f"a_{asset.lower()}", VENUE, "contract")

    def debt_token(self, asset: str) -> str:
        return require_address(self.contracts, f"variable_debt_{asset.lower()}", VENUE, "contract")

    def _label(self, action: str, asset: str, amount: object) -> str:
        return f"{VENUE}.{action} {amount} {asset}"

    # -- writes ----------------------------------------------------------------------------------------
    async def approve(self, asset: str, amount: Decimal) -> TxResult | None:
        token = self.token(asset)
        raw = await self.ctx.raw(token, amount, f"approve {asset}")
        return await self.ctx.ensure_allowance(
            token, self.pool_address, raw, label=self._label("approve", asset, amount)
        )

    async def supply_call(self, asset: str, amount: Decimal) -> TxCall:
        """The supply transaction (not sent): for programs simulated as one."""
        token = self.token(asset)
        raw = await self.ctx.raw(token, amount, f"supply {asset}")
        return self.ctx.call(
            self.pool_address,
            abi.AAVE_POOL_WRITE,
            "supply",
            [token, raw, self.ctx.address, 0],
            label=self._label("supply", asset, amount),
        )

    async def supply(self, asset: str, amount: Decimal) -> TxResult:
        return await self.ctx.tm.send(await self.supply_call(asset, amount))

    async def withdraw(self, asset: str, amount: AmountOrMax) -> TxResult:
        token = self.token(asset)
        raw = MAX_UINT256 if amount == MAX else await self.ctx.raw(token, amount, f"withdraw {asset}")
        return await self.ctx.send(
            self.pool_address,
            abi.AAVE_POOL_WRITE,
            "withdraw",
            [token, raw, self.ctx.address],
            label=self._label("withdraw", asset, amount),
        )

    async def borrow_call(self, asset: str, amount: Decimal) -> TxCall:
        """The variable-rate borrow transaction (not sent): for programs simulated as one."""
        token = self.token(asset)
        raw = await self.ctx.raw(token, amount, f"borrow {asset}")
        return self.ctx.call(
            self.pool_address,
            abi.AAVE_POOL_WRITE,
            "borrow",
            [token, raw, VARIABLE_RATE, 0, self.ctx.address],
            label=self._label("borrow", asset, amount),
        )

    async def borrow(self, asset: str, amount: Decimal) -> TxResult:
        return await self.ctx.tm.send(await self.borrow_call(asset, amount))

    async def approve_calls(self, asset: str, amount: Decimal) -> list[TxCall]:
        """The exact approval of the Pool for ``amount`` (none when the allowance covers it)."""
        token = self.token(asset)
        raw = await self.ctx.raw(token, amount, f"approve {asset}")
        return await self.ctx.approval_calls(token, self.pool_address, raw, self._label("approve", asset, amount))

    async def repay(self, asset: str, amount: AmountOrMax) -> TxResult:
        """Repay ``amount`` of variable debt, or all of it with ``"max"`` (the Pool takes exactly the debt
        at execution, interest included; approve ``repay_max_allowance`` first)."""
        token = self.token(asset)
        raw = MAX_UINT256 if amount == MAX else await self.ctx.raw(token, amount, f"repay {asset}")
        return await self.ctx.send(
            self.pool_address,
            abi.AAVE_POOL_WRITE,
            "repay",
            [token, raw, VARIABLE_RATE, self.ctx.address],
            label=self._label("repay", asset, amount),
        )

    async def repay_max_allowance(self, asset: str) -> Decimal:
        """What a full repayment may pull: today's debt plus an hour of interest at the current rate.

        The debt grows every second, so an exact approval of today's balance would fall short by the
        time the repayment is mined; an hour of interest is the smallest margin that survives a slow
        block and stays a tiny fraction of the debt (about 0.0005 % at 4 % APR).
        """
        token = self.token(asset)
        debt_raw, state, decimals = await asyncio.gather(
            self.ctx.balance_raw(self.debt_token(asset)), self.reserve_state(asset), self.ctx.decimals(token)
        )
        growth = 1 + state.variable_borrow_rate * REPAY_ALLOWANCE_HORIZON_S / SECONDS_PER_YEAR
        needed = int((Decimal(debt_raw) * growth).to_integral_value(rounding="ROUND_UP")) + 1
        return from_base_units(needed, decimals)

    async def set_user_emode(self, category_id: int) -> TxResult:
        if not isinstance(category_id, int) or not 0 <= category_id <= 255:
            raise ValueError(f"e-mode category must be an integer 0-255, got {category_id!r}")
        return await self.ctx.send(
            self.pool_address,
            abi.AAVE_POOL_WRITE,
            "setUserEMode",
            [category_id],
            label=f"{VENUE}.setUserEMode {category_id}",
        )

    # -- reads -----------------------------------------------------------------------------------------
    async def reserve_state(self, asset: str, block: int | str = "latest") -> AaveReserveState:
        token = self.token(asset)
        data, income, debt = await asyncio.gather(
            self.ctx.read(
                f"Pool.getReserveData({asset})",
                lambda: self.pool.functions.getReserveData(token).call(block_identifier=block),
            ),
            self.ctx.read(
                f"Pool.getReserveNormalizedIncome({asset})",
                lambda: self.pool.functions.getReserveNormalizedIncome(token).call(block_identifier=block),
            ),
            self.ctx.read(
                f"Pool.getReserveNormalizedVariableDebt({asset})",
                lambda: self.pool.functions.getReserveNormalizedVariableDebt(token).call(
                    block_identifier=block
                ),
            ),
        )
        liquidity_index, liquidity_rate, borrow_index, borrow_rate = (
            int(data[1]),
            int(data[2]),
            int(data[3]),
            int(data[4]),
        )
        return AaveReserveState(
            asset=asset,
            liquidity_index=Decimal(liquidity_index) / RAY,
            variable_borrow_index=Decimal(borrow_index) / RAY,
            liquidity_rate=Decimal(liquidity_rate) / RAY,
            variable_borrow_rate=Decimal(borrow_rate) / RAY,
            last_update_timestamp=int(data[6]),
            liquidity_index_ray=liquidity_index,
            variable_borrow_index_ray=borrow_index,
            normalized_income_ray=int(income),
            normalized_variable_debt_ray=int(debt),
        )

    async def emode_category(self, category_id: int) -> tuple[Decimal, Decimal, Decimal, str]:
        """(LTV, liquidation threshold, liquidation bonus, label) of an e-mode category, as fractions
        (bonus 0.01 = the liquidator receives 1 % more collateral than it repays)."""
        ltv, threshold, bonus, _, label = await self.ctx.read(
            "Pool.getEModeCategoryData", self.pool.functions.getEModeCategoryData(category_id).call
        )
        return (D_BPS(ltv), D_BPS(threshold), D_BPS(bonus) - 1 if int(bonus) else Decimal(0), str(label))

    async def account(self, block: int | str = "latest") -> AaveAccountData:
        user = self.ctx.address
        data, emode = await asyncio.gather(
            self.ctx.read(
                "Pool.getUserAccountData",
                lambda: self.pool.functions.getUserAccountData(user).call(block_identifier=block),
            ),
            self.ctx.read(
                "Pool.getUserEMode",
                lambda: self.pool.functions.getUserEMode(user).call(block_identifier=block),
            ),
        )
        collateral, debt, available, threshold, ltv, hf = (int(x) for x in data)
        return AaveAccountData(collateral, debt, available, threshold, ltv, hf, int(emode))

    async def _asset_position(self, asset: str, block: int) -> AaveAssetPosition:
        token = self.token(asset)
        a_token = self.ctx.contract(self.a_token(asset), abi.SCALED_TOKEN)
        d_token = self.ctx.contract(self.debt_token(asset), abi.SCALED_TOKEN)
        user = self.ctx.address
        scaled_a, scaled_d, bal_a, bal_d, decimals = await asyncio.gather(
            self.ctx.read(
                "aToken.scaledBalanceOf",
                lambda: a_token.functions.scaledBalanceOf(user).call(block_identifier=block),
            ),
            self.ctx.read(
                "debtToken.scaledBalanceOf",
                lambda: d_token.functions.scaledBalanceOf(user).call(block_identifier=block),
            ),
            self.ctx.read(
                "aToken.balanceOf", lambda: a_token.functions.balanceOf(user).call(block_identifier=block)
            ),
            self.ctx.read(
                "debtToken.balanceOf", lambda: d_token.functions.balanceOf(user).call(block_identifier=block)
            ),
            self.ctx.decimals(token),
        )
        return AaveAssetPosition(
            asset,
            from_base_units(scaled_a, decimals),
            from_base_units(scaled_d, decimals),
            from_base_units(bal_a, decimals),
            from_base_units(bal_d, decimals),
            int(scaled_a),
            int(scaled_d),
        )

    async def position(self, assets: Sequence[str] | None = None, block: int | None = None) -> AavePosition:
        """Scaled balances, indices and account data of the wallet, all read at the same block:
        ``block``, or the head read once here."""
        names = list(assets) if assets is not None else [a for a in self.tokens if self.tokens[a] is not None]
        if block is None:
            block = int(await self.ctx.read("eth_blockNumber", lambda: self.ctx.w3.eth.block_number))
        positions, reserves, account = await asyncio.gather(
            asyncio.gather(*(self._asset_position(a, block) for a in names)),
            asyncio.gather(*(self.reserve_state(a, block) for a in names)),
            self.account(block),
        )
        return AavePosition(block, {p.asset: p for p in positions}, {r.asset: r for r in reserves}, account)

    async def oracle_price(self, asset: str) -> Decimal:
        """The AAVE oracle's price of ``asset`` in its base currency (USD on the Ethereum markets)."""
        oracle = self.ctx.contract(
            require_address(self.contracts, "oracle", VENUE, "contract"), abi.AAVE_ORACLE
        )
        price, unit = await asyncio.gather(
            self.ctx.read(
                f"AaveOracle.getAssetPrice({asset})", oracle.functions.getAssetPrice(self.token(asset)).call
            ),
            self.ctx.read("AaveOracle.BASE_CURRENCY_UNIT", oracle.functions.BASE_CURRENCY_UNIT().call),
        )
        if int(price) <= 0:
            raise VenueError(
                VENUE, VenueErrorKind.UNAVAILABLE, f"the AAVE oracle reports no price for {asset}"
            )
        return Decimal(int(price)) / Decimal(int(unit))
