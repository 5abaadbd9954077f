"""Move the local market: oracle prices, LST exchange rates, DEX prices, time; fund wallets.

What each lever stands for on mainnet:
- ``set_prices``: Chainlink rounds. AAVE's MockAggregator has no setter, so its one storage slot
  (``int256 _latestAnswer`` at slot 0) is written with ``anvil_setStorageAt``; the AaveOracle keeps
  reading the same feed address, as it does on mainnet between rounds.
- ``set_lst_rate``: Lido / ether.fi oracle reports (the owner-only rate setters of the project's
  LST contracts). AAVE prices an LST at exchange rate x ETH/USD (the CAPO adapters), so the LST's
  feed moves with it.
- ``set_pool_price``: arbitrage. The deployer swaps through SwapRouter02 with ``sqrtPriceLimitX96``
  at the target, which stops the swap exactly there.
- ``advance``: ``evm_increaseTime`` + ``evm_mine``, so AAVE's indices accrue for the elapsed time.
"""

from __future__ import annotations

from decimal import Decimal

from venues.onchain.devstack.deploy import WAD, DevStack, _usd8, pool_role
from venues.onchain.devstack.market import PoolSpec
from venues.onchain.devstack.rpc import DevChain
from venues.onchain.devstack.uniswap_math import price_from_sqrt_x96, raw_price, sqrt_price_x96

AGGREGATOR_ANSWER_SLOT = "0x0"
TOKEN_ABI = {
    "WETH": "WETH9",
    "USDT": "MintableERC20",
    "wstETH": "LocalWstETH",
    "weETH": "LocalWeETH",
    "stETH": "LocalStETH",
    "eETH": "LocalEETH",
}
MAX_UINT = 2**256 - 1


class StackAdmin:
    """Administrative levers over a deployed DevStack (sync; the chain is ours)."""

    def __init__(self, stack: DevStack, chain: DevChain | None = None) -> None:
        self.stack = stack
        self.chain = chain or DevChain(stack.url)

    def close(self) -> None:
        self.chain.close()

    def _at(self, name: str, address: str):
        return self.stack.contract(self.chain, name, address)

    def _tx(
        self, name: str, address: str, function: str, *args, value: int = 0, sender: str | None = None
    ) -> dict:
        return self.chain.transact(
            sender or self.stack.deployer, self._at(name, address), function, *args, value=value
        )

    # -- oracle --------------------------------------------------------------------------------------
    def set_feed(self, symbol: str, usd: Decimal) -> None:
        feed = self.stack.aggregators[symbol]
        answer = _usd8(usd)
        if answer <= 0:
            raise ValueError(f"{symbol} price must be positive, got {usd}")
        self.chain.rpc(
            "anvil_setStorageAt", feed, AGGREGATOR_ANSWER_SLOT, "0x" + answer.to_bytes(32, "big").hex()
        )

    def feed(self, symbol: str) -> Decimal:
        answer = self.chain.call(self._at("MockAggregator", self.stack.aggregators[symbol]), "latestAnswer")
        return Decimal(answer).scaleb(-8)

    def set_prices(self, eth_usd: Decimal, lst_rates: dict[str, Decimal]) -> None:
        """ETH/USD and the LSTs (ETH per LST) on the AAVE oracle; USDT stays at 1."""
        self.set_feed("WETH", eth_usd)
        for lst, rate in lst_rates.items():
            self.set_feed(lst, eth_usd * rate)

    # -- LST exchange rates ----------------------------------------------------------------------------
    def set_lst_rate(self, lst: str, rate: Decimal) -> None:
        raw = int(rate * WAD)
        if lst == "wstETH":
            self._tx("LocalStETH", self.stack.lido["steth"], "setPooledEthPerShare", raw)
        elif lst == "weETH":
            self._tx(
                "LocalEtherFiLiquidityPool", self.stack.etherfi["liquidity_pool"], "setAmountPerShare", raw
            )
        else:
            raise ValueError(f"unknown LST {lst!r}; allowed: wstETH, weETH")

    def lst_rate(self, lst: str) -> Decimal:
        if lst == "wstETH":
            raw = self.chain.call(self._at("LocalWstETH", self.stack.tokens["wstETH"]), "stEthPerToken")
        elif lst == "weETH":
            raw = self.chain.call(self._at("LocalWeETH", self.stack.tokens["weETH"]), "getRate")
        else:
            raise ValueError(f"unknown LST {lst!r}; allowed: wstETH, weETH")
        return Decimal(raw).scaleb(-18)

    # -- Uniswap ---------------------------------------------------------------------------------------
    def _pool_spec(self, base: str, quote: str) -> PoolSpec:
        assert self.stack.spec is not None
        for pool in self.stack.spec.pools:
            if (pool.base, pool.quote) == (base, quote):
                return pool
        raise KeyError(f"no {base}/{quote} pool in the stack")

    def pool_price(self, base: str, quote: str) -> Decimal:
        """``base`` in ``quote`` at the pool's current sqrtPrice."""
        spec = self._pool_spec(base, quote)
        slot0 = self.chain.call(self._at("UniswapV3Pool", self.stack.uniswap[pool_role(spec)]), "slot0")
        p = price_from_sqrt_x96(int(slot0[0]))
        t = self.stack.tokens
        assert self.stack.spec is not None
        d_base, d_quote = self.stack.spec.reserve(base).decimals, self.stack.spec.reserve(quote).decimals
        if int(t[base], 16) < int(t[quote], 16):
            return p * Decimal(10) ** d_base / Decimal(10) ** d_quote
        return Decimal(10) ** d_base / (p * Decimal(10) ** d_quote)

    def set_pool_price(self, base: str, quote: str, price: Decimal) -> None:
        """Arbitrage the pool to ``price`` (``base`` in ``quote``) with one bounded swap."""
        spec = self._pool_spec(base, quote)
        t, me = self.stack.tokens, self.stack.deployer
        assert self.stack.spec is not None
        self._approve_router()
        base_is_0 = int(t[base], 16) < int(t[quote], 16)
        d0, d1 = (
            (self.stack.spec.reserve(base).decimals, self.stack.spec.reserve(quote).decimals)
            if base_is_0
            else (self.stack.spec.reserve(quote).decimals, self.stack.spec.reserve(base).decimals)
        )
        target = sqrt_price_x96(raw_price(price if base_is_0 else 1 / price, d0, d1))
        pool = self._at("UniswapV3Pool", self.stack.uniswap[pool_role(spec)])
        current = int(self.chain.call(pool, "slot0")[0])
        if target == current:
            return
        token0, token1 = (t[base], t[quote]) if base_is_0 else (t[quote], t[base])
        # Raising token1-per-token0 means buying token0 with token1 (oneForZero), and the reverse.
        token_in, token_out = (token1, token0) if target > current else (token0, token1)
        symbol_in = next(s for s, a in t.items() if a == token_in)
        balance = self.chain.call(self._at(TOKEN_ABI[symbol_in], token_in), "balanceOf", me)
        params = (token_in, token_out, spec.fee, me, balance, 0, target)
        self._tx("SwapRouter02", self.stack.uniswap["swap_router_02"], "exactInputSingle", params)

    def _approve_router(self) -> None:
        # Read from the chain, not remembered: an evm_revert (the tests' snapshots) undoes the approvals.
        router = self.stack.uniswap["swap_router_02"]
        me = self.stack.deployer
        for symbol in ("WETH", "USDT", "wstETH", "weETH"):
            token = self._at(TOKEN_ABI[symbol], self.stack.tokens[symbol])
            if self.chain.call(token, "allowance", me, router) < MAX_UINT // 2:
                self._tx(TOKEN_ABI[symbol], self.stack.tokens[symbol], "approve", router, MAX_UINT)

    # -- time ------------------------------------------------------------------------------------------
    def advance(self, seconds: int) -> int:
        """Move the chain's clock forward and mine one block; returns the new block's timestamp."""
        self.chain.increase_time(seconds)
        self.chain.mine()
        return int(self.chain.block()["timestamp"], 16)

    # -- wallets ---------------------------------------------------------------------------------------
    def fund(
        self,
        wallet: str,
        *,
        eth: Decimal | None = None,
        usdt: Decimal | None = None,
        weth: Decimal | None = None,
    ) -> None:
        """Give ``wallet`` ETH (balance set), USDT (minted) and WETH (wrapped by the deployer, sent)."""
        if eth is not None:
            self.chain.set_balance(wallet, int(eth * WAD))
        if usdt is not None:
            self._tx(
                "MintableERC20", self.stack.tokens["USDT"], "mint(address,uint256)", wallet, int(usdt * 10**6)
            )
        if weth is not None:
            raw = int(weth * WAD)
            self._tx("WETH9", self.stack.tokens["WETH"], "deposit", value=raw)
            self._tx("WETH9", self.stack.tokens["WETH"], "transfer", wallet, raw)
