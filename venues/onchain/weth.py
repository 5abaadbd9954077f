"""WETH9 for one wallet: wrap ETH into WETH (deposit) and back (withdraw).

The leverage loop needs both directions: AAVE lends WETH, Lido and ether.fi stake native ETH.
"""

from __future__ import annotations

from decimal import Decimal

from engine.domain.onchain_ports import TxResult
from venues.onchain import abi
from venues.onchain.tx.manager import TxCall
from venues.onchain.wallet import WalletContext, to_base_units


class WethAdapter:
    def __init__(self, ctx: WalletContext, weth: str) -> None:
        self.ctx = ctx
        self.weth = ctx.reader.checksum(weth)

    async def wrap(self, eth: Decimal) -> TxResult:
        value = to_base_units(eth, 18, "wrap ETH")
        return await self.ctx.send(
            self.weth, abi.WETH9, "deposit", [], value=value, label=f"weth.deposit {eth} ETH"
        )

    def unwrap_call(self, amount: Decimal) -> TxCall:
        """WETH -> ETH (not sent): for programs simulated as one."""
        raw = to_base_units(amount, 18, "unwrap WETH")
        return self.ctx.call(self.weth, abi.WETH9, "withdraw", [raw], label=f"weth.withdraw {amount} WETH")

    async def unwrap(self, amount: Decimal) -> TxResult:
        return await self.ctx.tm.send(self.unwrap_call(amount))
