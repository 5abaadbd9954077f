"""Uniswap v3 exact-input swaps for one wallet through SwapRouter02, with a price floor.

Implements engine.domain.onchain_ports.DexSwapPort. The floor (``amountOutMinimum``) is never zero:

    amount_out_min = amount_in x reference price x (1 - pool fee) x (1 - max_slippage_bps / 10,000)

with the reference price from the AAVE oracle (token_in's price / token_out's) unless the caller
passes one, and the fee tier and the slippage from configs/venues/uniswap.yaml. A pool that would
fill worse makes the router revert with "Too little received", which the simulation catches before
anything is signed. The router is approved for exactly ``amount_in``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from engine.domain.onchain_ports import SwapResult
from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.onchain import abi
from venues.onchain.tx.manager import TxCall
from venues.onchain.wallet import WalletContext, from_base_units, require_address

VENUE = "uniswap"
FEE_DENOMINATOR = Decimal(1_000_000)

PriceSource = Callable[[str, str], Awaitable[Decimal]]  # (token_in, token_out) -> token_out per token_in


@dataclass(frozen=True)
class SwapCall:
    """One exactInputSingle, built and not sent."""

    call: TxCall
    params: tuple
    token_in: str  # address
    raw_in: int
    raw_min: int
    floor: Decimal  # amountOutMinimum in token_out units
    price: Decimal  # the reference price the floor came from


class UniswapV3Adapter:
    def __init__(
        self,
        ctx: WalletContext,
        contracts: Mapping[str, str | None],
        tokens: Mapping[str, str | None],
        *,
        swap_pools: Mapping[str, int],
        max_slippage_bps: float,
        price_source: PriceSource,
    ) -> None:
        self.ctx = ctx
        self.router = require_address(contracts, "swap_router_02", VENUE, "contract")
        self.tokens = dict(tokens)
        self.swap_pools = dict(swap_pools)
        self.max_slippage = Decimal(repr(max_slippage_bps)) / Decimal(10_000)
        self.price_source = price_source

    def token(self, symbol: str) -> str:
        if symbol not in self.tokens:
            raise VenueError(
                VENUE,
                VenueErrorKind.CONFIG,
                f"no token {symbol!r} in configs/venues/uniswap.yaml; "
                f"known: {', '.join(sorted(self.tokens))}",
            )
        return require_address(self.tokens, symbol, VENUE, "token")

    def fee_tier(self, token_in: str, token_out: str) -> int:
        for pair in (f"{token_in}/{token_out}", f"{token_out}/{token_in}"):
            if pair in self.swap_pools:
                return int(self.swap_pools[pair])
        raise VenueError(
            VENUE,
            VenueErrorKind.CONFIG,
            f"no pool for {token_in}/{token_out} in configs/venues/uniswap.yaml swap_pools; "
            f"known: {', '.join(self.swap_pools)}",
        )

    def minimum_out(self, amount_in: Decimal, price: Decimal, fee: int) -> Decimal:
        return amount_in * price * (1 - Decimal(fee) / FEE_DENOMINATOR) * (1 - self.max_slippage)

    async def swap_call(
        self, token_in: str, token_out: str, amount_in: Decimal, *, reference_price: Decimal | None = None
    ) -> SwapCall:
        """The exactInputSingle transaction (not sent) with its floor. Programs simulated as one (a
        flatten's preview) collect it after its exact approval; ``swap_exact_input`` sends it."""
        address_in, address_out = self.token(token_in), self.token(token_out)
        fee = self.fee_tier(token_in, token_out)
        price = (
            reference_price if reference_price is not None else await self.price_source(token_in, token_out)
        )
        if not isinstance(price, Decimal) or price <= 0:
            raise ValueError(
                f"reference price must be a positive Decimal ({token_out} per {token_in}), got {price!r}"
            )
        decimals_out = await self.ctx.decimals(address_out)
        raw_in = await self.ctx.raw(address_in, amount_in, f"swap {token_in}")
        floor = self.minimum_out(amount_in, price, fee)
        raw_min = int((floor * (Decimal(10) ** decimals_out)).to_integral_value(rounding=ROUND_DOWN))
        if raw_min <= 0:
            raise ValueError(
                f"swap of {amount_in} {token_in} has a zero floor in {token_out}: amount too small"
            )
        label = f"{VENUE}.exactInputSingle {amount_in} {token_in}->{token_out} (fee {fee}, min {floor:.8g})"
        params = (address_in, address_out, fee, self.ctx.address, raw_in, raw_min, 0)
        call = self.ctx.call(self.router, abi.SWAP_ROUTER_02, "exactInputSingle", [params], label=label)
        return SwapCall(call, params, address_in, raw_in, raw_min, from_base_units(raw_min, decimals_out), price)

    async def swap_exact_input(
        self, token_in: str, token_out: str, amount_in: Decimal, *, reference_price: Decimal | None = None
    ) -> SwapResult:
        address_out = self.token(token_out)
        swap = await self.swap_call(token_in, token_out, amount_in, reference_price=reference_price)
        decimals_out = await self.ctx.decimals(address_out)
        result = await self.ctx.send_with_allowance(
            swap.token_in,
            self.router,
            swap.raw_in,
            self.router,
            abi.SWAP_ROUTER_02,
            "exactInputSingle",
            [swap.params],
            label=swap.call.label,
        )
        received = await self.ctx.received(result, address_out)
        return SwapResult(
            tx=result,
            token_in=token_in,
            token_out=token_out,
            amount_in=amount_in,
            amount_out=from_base_units(received, decimals_out),
            amount_out_minimum=swap.floor,
            reference_price=swap.price,
        )
