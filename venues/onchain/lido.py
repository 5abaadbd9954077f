"""Lido for one wallet: stake ETH (stETH.submit), wrap stETH into wstETH and back, the rate.

Implements engine.domain.onchain_ports.LiquidStakingPort. stETH rebases (balances are shares times
the pooled ETH per share, rounded down), so amounts read back can be 1-2 wei below what was staked;
wrapping the whole balance uses the balance read just before.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Mapping

from engine.domain.onchain_ports import LstBalances, TxResult
from venues.onchain import abi
from venues.onchain.wallet import WalletContext, from_base_units, require_address, to_base_units

VENUE = "lido"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class LidoAdapter:
    lst = "wstETH"
    base_token = "stETH"

    def __init__(self, ctx: WalletContext, contracts: Mapping[str, str | None]) -> None:
        self.ctx = ctx
        self.steth = require_address(contracts, "steth", VENUE, "contract")
        self.wsteth = require_address(contracts, "wsteth", VENUE, "contract")

    async def stake(self, eth: Decimal) -> TxResult:
        value = to_base_units(eth, 18, "stake ETH")
        return await self.ctx.send(
            self.steth,
            abi.LIDO_STETH,
            "submit",
            [ZERO_ADDRESS],
            value=value,
            label=f"{VENUE}.submit {eth} ETH",
        )

    async def wrap(self, amount: Decimal) -> TxResult:
        raw = to_base_units(amount, 18, "wrap stETH")
        return await self.ctx.send_with_allowance(
            self.steth,
            self.wsteth,
            raw,
            self.wsteth,
            abi.LIDO_WSTETH,
            "wrap",
            [raw],
            label=f"{VENUE}.wrap {amount} stETH",
        )

    async def unwrap(self, amount: Decimal) -> TxResult:
        raw = to_base_units(amount, 18, "unwrap wstETH")
        return await self.ctx.send(
            self.wsteth, abi.LIDO_WSTETH, "unwrap", [raw], label=f"{VENUE}.unwrap {amount} wstETH"
        )

    async def rate(self) -> Decimal:
        contract = self.ctx.contract(self.wsteth, abi.LIDO_WSTETH)
        return from_base_units(
            await self.ctx.read("wstETH.stEthPerToken", contract.functions.stEthPerToken().call), 18
        )

    async def balances(self) -> LstBalances:
        base, wrapped, rate = await asyncio.gather(
            self.ctx.balance(self.steth), self.ctx.balance(self.wsteth), self.rate()
        )
        return LstBalances(self.lst, self.base_token, base, wrapped, rate)
