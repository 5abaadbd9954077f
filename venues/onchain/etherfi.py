"""ether.fi for one wallet: stake ETH (LiquidityPool.deposit -> eETH), wrap eETH into weETH and back.

Implements engine.domain.onchain_ports.LiquidStakingPort. eETH rebases like stETH (shares times the
pool's amount per share, rounded down).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Mapping

from engine.domain.onchain_ports import LstBalances, TxResult
from venues.onchain import abi
from venues.onchain.wallet import WalletContext, from_base_units, require_address, to_base_units

VENUE = "etherfi"


class EtherFiAdapter:
    lst = "weETH"
    base_token = "eETH"

    def __init__(
        self, ctx: WalletContext, contracts: Mapping[str, str | None], tokens: Mapping[str, str | None]
    ) -> None:
        self.ctx = ctx
        self.liquidity_pool = require_address(contracts, "liquidity_pool", VENUE, "contract")
        self.weeth = require_address(contracts, "weeth", VENUE, "contract")
        self.eeth = require_address(tokens, "eETH", VENUE, "token")

    async def stake(self, eth: Decimal) -> TxResult:
        value = to_base_units(eth, 18, "stake ETH")
        return await self.ctx.send(
            self.liquidity_pool,
            abi.ETHERFI_POOL,
            "deposit",
            [],
            value=value,
            label=f"{VENUE}.deposit {eth} ETH",
        )

    async def wrap(self, amount: Decimal) -> TxResult:
        raw = to_base_units(amount, 18, "wrap eETH")
        return await self.ctx.send_with_allowance(
            self.eeth,
            self.weeth,
            raw,
            self.weeth,
            abi.ETHERFI_WEETH,
            "wrap",
            [raw],
            label=f"{VENUE}.wrap {amount} eETH",
        )

    async def unwrap(self, amount: Decimal) -> TxResult:
        raw = to_base_units(amount, 18, "unwrap weETH")
        return await self.ctx.send(
            self.weeth, abi.ETHERFI_WEETH, "unwrap", [raw], label=f"{VENUE}.unwrap {amount} weETH"
        )

    async def rate(self) -> Decimal:
        contract = self.ctx.contract(self.weeth, abi.ETHERFI_WEETH)
        return from_base_units(await self.ctx.read("weETH.getRate", contract.functions.getRate().call), 18)

    async def balances(self) -> LstBalances:
        base, wrapped, rate = await asyncio.gather(
            self.ctx.balance(self.eeth), self.ctx.balance(self.weeth), self.rate()
        )
        return LstBalances(self.lst, self.base_token, base, wrapped, rate)
