"""ChainMarketReader: the engine's ChainMarketPort on web3 (what a paper or live session reads of the
chain each tick: AAVE indices, LST oracle, protocol and market rates, ETH/USD, gas).

Every read pins one block: the head is read first, then every call runs concurrently at that block
number, so a reading is one consistent state of the chain (an index and the gas price of a tick
cannot come from two blocks). Calls go through the ChainReader's discipline (per-call timeout,
retries for transient failures, redacted errors).

Where each value comes from (the contracts' own getters, no off-chain source):

- indices: ``Pool.getReserveNormalizedIncome`` / ``getReserveNormalizedVariableDebt`` (ray), the indices
  accrued to the block, which a scaled balance is multiplied by;
- ETH per LST as AAVE values it: ``AaveOracle.getAssetsPrices([WETH, LST...])``, LST price over WETH
  price; a mode without AAVE takes the LST contract's rate instead;
- the LST contracts' rates: ``wstETH.stEthPerToken()``, ``weETH.getRate()``;
- the market rate: the LST/WETH Uniswap v3 pool's ``slot0().sqrtPriceX96`` (the pool is found once
  through ``UniswapV3Factory.getPool`` with the fee tier of ``uniswap.yaml swap_pools``);
- gas: ``eth_feeHistory`` of the last blocks: the next block's base fee plus the median (p50) tip of the
  blocks that held transactions, which is what the backtest's gas series holds.
"""
from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from engine.domain.chain_market import ChainMarketNeeds, ChainMarketReading
from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.onchain import abi
from venues.onchain.factory import OnchainConfigError
from venues.onchain.reader import ChainReader

RAY = Decimal(10) ** 27
GWEI = Decimal(10) ** 9
Q96 = Decimal(2) ** 96
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: blocks of eth_feeHistory behind a reading's tip median (two minutes of mainnet blocks)
FEE_HISTORY_BLOCKS = 10
#: the LSTs' exchange-rate contracts: (venue file, contract role, ABI, getter)
LST_RATE_CONTRACTS = {"wstETH": ("lido", "wsteth"), "weETH": ("etherfi", "weeth")}


@dataclass(frozen=True)
class _Pool:
    address: str
    lst_is_token0: bool
    scale: Decimal              # 10 ** (decimals of token0 - decimals of token1)


def _env(configs: Mapping[str, Any], venue: str, environment: str) -> Any:
    return getattr(configs[venue].environments, environment)


def _address(configs: Mapping[str, Any], venue: str, environment: str, table: str, name: str, why: str) -> str:
    """An address from ``configs/venues/<venue>.yaml environments.<env>.<table>.<name>``, or a config
    error that names the key and what needs it."""
    env = _env(configs, venue, environment)
    value = getattr(env, table).get(name)
    if value is None:
        state = "null" if name in getattr(env, table) else "missing"
        raise OnchainConfigError(f"configs/venues/{venue}.yaml: environments.{environment}.{table}.{name} is "
                                 f"{state}: {why}")
    return str(value)


class ChainMarketReader:
    """Implements engine.domain.chain_market.ChainMarketPort for one session's needs."""

    def __init__(self, reader: ChainReader, needs: ChainMarketNeeds, *, source: str, block_age_limit_s: float,
                 pool: str | None, oracle: str | None, weth: str | None, reserve_tokens: Mapping[str, str],
                 lst_tokens: Mapping[str, str], lst_rate_contracts: Mapping[str, str],
                 pools: Mapping[str, _Pool]) -> None:
        self.reader = reader
        self.needs = needs
        self._source = source
        self._block_age_limit_s = block_age_limit_s
        w3 = reader.w3
        self._pool = w3.eth.contract(address=reader.checksum(pool), abi=abi.AAVE_POOL_WRITE) if pool else None
        self._oracle = w3.eth.contract(address=reader.checksum(oracle), abi=abi.AAVE_ORACLE_BATCH) if oracle else None
        self._weth = reader.checksum(weth) if weth else None
        self._reserve_tokens = {r: reader.checksum(t) for r, t in reserve_tokens.items()}
        self._lst_tokens = {lst: reader.checksum(t) for lst, t in lst_tokens.items()}
        self._rates = {lst: w3.eth.contract(address=reader.checksum(a), abi=abi.LST_RATE[lst][0])
                       for lst, a in lst_rate_contracts.items()}
        self._pools = {lst: (p, w3.eth.contract(address=reader.checksum(p.address), abi=abi.UNISWAP_POOL_SLOT0))
                       for lst, p in pools.items()}

    # -- ChainMarketPort ---------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return self._source

    @property
    def block_age_limit_s(self) -> float:
        return self._block_age_limit_s

    @property
    def market_pools(self) -> tuple[str, ...]:
        return tuple(self._pools)

    async def close(self) -> None:
        await self.reader.close()

    async def read(self) -> ChainMarketReading:
        requested_at = time.time()
        head = await self.reader.call("eth_getBlockByNumber(latest)", lambda: self.reader.w3.eth.get_block("latest"))
        block = int(head["number"])
        incomes = [self._at(f"Pool.getReserveNormalizedIncome({r})", self._pool_fn("getReserveNormalizedIncome", t), block)
                   for r, t in self._reserve_tokens.items()]
        debts = [self._at(f"Pool.getReserveNormalizedVariableDebt({r})",
                          self._pool_fn("getReserveNormalizedVariableDebt", t), block)
                 for r, t in self._reserve_tokens.items()]
        rates = [self._at(f"{lst}.{abi.LST_RATE[lst][1]}", getattr(c.functions, abi.LST_RATE[lst][1])(), block)
                 for lst, c in self._rates.items()]
        slots = [self._at(f"{lst}/WETH pool.slot0", c.functions.slot0(), block) for lst, (_, c) in self._pools.items()]
        oracle = self._oracle_prices(block) if self._oracle is not None else self._none()
        fees = self.reader.call("eth_feeHistory", lambda: self.reader.w3.eth.fee_history(
            FEE_HISTORY_BLOCKS, block, [50]))
        n_r, n_l, n_p = len(self._reserve_tokens), len(self._rates), len(self._pools)
        out = await asyncio.gather(*incomes, *debts, *rates, *slots, oracle, fees)
        income_raw, debt_raw = out[:n_r], out[n_r:2 * n_r]
        rate_raw, slot_raw = out[2 * n_r:2 * n_r + n_l], out[2 * n_r + n_l:2 * n_r + n_l + n_p]
        prices, history = out[-2], out[-1]
        reserves = list(self._reserve_tokens)
        protocol = {lst: Decimal(int(raw)).scaleb(-18) for lst, raw in zip(self._rates, rate_raw)}
        eth_usd = None
        oracle_rate = dict(protocol)
        if prices is not None:
            unit, weth_price, lst_prices = prices
            if weth_price <= 0:
                raise VenueError(self.reader.venue, VenueErrorKind.UNAVAILABLE, "the AAVE oracle reports no WETH price",
                                 operation="AaveOracle.getAssetsPrices")
            eth_usd = Decimal(weth_price) / Decimal(unit)
            oracle_rate = {lst: Decimal(price) / Decimal(weth_price) for lst, price in lst_prices.items()}
        base_fee, tip = _gas(history)
        return ChainMarketReading(
            block_number=block, block_timestamp=int(head["timestamp"]), requested_at=requested_at, read_at=time.time(),
            supply_index={r: Decimal(int(v)) / RAY for r, v in zip(reserves, income_raw)},
            borrow_index={r: Decimal(int(v)) / RAY for r, v in zip(reserves, debt_raw)},
            lst_oracle={lst: oracle_rate[lst] for lst in self.needs.lsts},
            lst_protocol_rate=protocol,
            lst_market={lst: _pool_price(int(slot[0]), pool) for (lst, (pool, _)), slot in zip(self._pools.items(), slot_raw)},
            eth_usd=eth_usd, base_fee_gwei=base_fee, priority_fee_gwei=tip)

    # -- helpers -----------------------------------------------------------------------------------------
    def _pool_fn(self, name: str, token: str) -> Any:
        assert self._pool is not None
        return getattr(self._pool.functions, name)(token)

    def _at(self, operation: str, fn: Any, block: int):
        return self.reader.call(operation, lambda: fn.call(block_identifier=block))

    async def _none(self) -> None:
        return None

    async def _oracle_prices(self, block: int) -> tuple[int, int, dict[str, int]]:
        assert self._oracle is not None and self._weth is not None
        lsts = list(self._lst_tokens)
        assets = [self._weth, *(self._lst_tokens[lst] for lst in lsts)]
        prices, unit = await asyncio.gather(
            self._at("AaveOracle.getAssetsPrices", self._oracle.functions.getAssetsPrices(assets), block),
            self._at("AaveOracle.BASE_CURRENCY_UNIT", self._oracle.functions.BASE_CURRENCY_UNIT(), block))
        for lst, price in zip(lsts, prices[1:]):
            if int(price) <= 0:
                raise VenueError(self.reader.venue, VenueErrorKind.UNAVAILABLE, f"the AAVE oracle reports no {lst} price",
                                 operation="AaveOracle.getAssetsPrices")
        return int(unit), int(prices[0]), {lst: int(p) for lst, p in zip(lsts, prices[1:])}


def _gas(history: Any) -> tuple[Decimal, Decimal]:
    """(next block's base fee, median tip of the blocks that held transactions), in gwei."""
    base = Decimal(int(history["baseFeePerGas"][-1])) / GWEI
    used = history.get("gasUsedRatio") or []
    rewards = [int(r[0]) for r, ratio in zip(history.get("reward") or [], used) if ratio > 0 and r]
    tip = Decimal(int(statistics.median(rewards))) / GWEI if rewards else Decimal(0)
    return base, tip


def _pool_price(sqrt_price_x96: int, pool: _Pool) -> Decimal:
    """ETH (WETH) per LST at the pool's price: slot0 holds sqrt(token1 per token0) in Q64.96 base units."""
    raw = (Decimal(sqrt_price_x96) / Q96) ** 2 * pool.scale        # token1 per token0, in token units
    return raw if pool.lst_is_token0 else 1 / raw


async def connect_chain_market(reader: ChainReader, venue_configs: Mapping[str, Any], environment: str,
                               needs: ChainMarketNeeds, *, expected_chain_id: int, block_age_limit_s: float,
                               rpc_venue: str) -> ChainMarketReader:
    """Check the chain and resolve what a session reads, then return a reader whose connection is closed
    again (the first tick opens it): a start that fails later leaves nothing open.

    Raises OnchainConfigError (a null or missing address, named by file and key) and VenueError (the
    RPC does not answer, or serves another chain)."""
    has_aave = "aave_v3" in venue_configs
    why_index = "the live feed reads the AAVE indices there"
    pool = oracle = weth = None
    reserve_tokens: dict[str, str] = {}
    lst_tokens: dict[str, str] = {}
    if has_aave:
        pool = _address(venue_configs, "aave_v3", environment, "contracts", "pool", why_index)
        reserve_tokens = {r: _address(venue_configs, "aave_v3", environment, "tokens", r,
                                      f"the live feed reads the {r} reserve's indices") for r in needs.reserves}
        if needs.lsts:
            oracle = _address(venue_configs, "aave_v3", environment, "contracts", "oracle",
                              "the live feed reads the LSTs' AAVE oracle rate there")
            weth = _address(venue_configs, "aave_v3", environment, "tokens", "WETH", "the oracle's ETH/USD price")
            lst_tokens = {lst: _address(venue_configs, "aave_v3", environment, "tokens", lst,
                                        f"the AAVE oracle prices {lst} by its token address") for lst in needs.lsts}
    elif needs.reserves:
        raise OnchainConfigError(f"the mode reads AAVE reserves ({', '.join(needs.reserves)}) but has no aave_v3 venue")
    rate_contracts: dict[str, str] = {}
    for lst in needs.lsts:
        venue, role = LST_RATE_CONTRACTS[lst]
        if venue in venue_configs:
            rate_contracts[lst] = _address(venue_configs, venue, environment, "contracts", role,
                                           f"the live feed reads {lst}'s exchange rate there")
        elif not has_aave:
            raise OnchainConfigError(f"the mode holds {lst} but has neither aave_v3 nor {venue} to read its rate from")
    pools: dict[str, _Pool] = {}
    try:
        chain_id = await reader.chain_id()
        if chain_id != expected_chain_id:
            raise VenueError(rpc_venue, VenueErrorKind.CONFIG,
                             f"the RPC serves chain {chain_id}, the {environment} configuration chain {expected_chain_id}",
                             operation="eth_chainId")
        if "uniswap" in venue_configs and needs.lsts:
            pools = await _find_pools(reader, venue_configs["uniswap"], environment, needs.lsts)
    finally:
        await reader.close()
    return ChainMarketReader(reader, needs, source=f"chain {chain_id} via {rpc_venue} ({environment})",
                             block_age_limit_s=block_age_limit_s, pool=pool, oracle=oracle, weth=weth,
                             reserve_tokens=reserve_tokens, lst_tokens=lst_tokens, lst_rate_contracts=rate_contracts,
                             pools=pools)


async def _find_pools(reader: ChainReader, uniswap: Any, environment: str, lsts: tuple[str, ...]) -> dict[str, _Pool]:
    """The LST/WETH pools of the configured fee tiers that exist on this chain (absent ones are left out:
    the feed then says the oracle rate stands in for the market rate)."""
    env = getattr(uniswap.environments, environment)
    factory_address, weth = env.contracts.get("factory"), env.tokens.get("WETH")
    if factory_address is None or weth is None:
        return {}
    factory = reader.w3.eth.contract(address=reader.checksum(factory_address), abi=abi.UNISWAP_FACTORY)
    found: dict[str, _Pool] = {}
    for lst in lsts:
        token, fee = env.tokens.get(lst), uniswap.swap_pools.get(f"{lst}/WETH")
        if token is None or fee is None:
            continue
        address = await reader.call(f"UniswapV3Factory.getPool({lst}/WETH)", factory.functions.getPool(
            reader.checksum(token), reader.checksum(weth), fee).call)
        if str(address).lower() == ZERO_ADDRESS:
            continue
        lst_is_token0 = int(str(token), 16) < int(str(weth), 16)
        d_lst = await reader.call(f"{lst}.decimals", reader.w3.eth.contract(
            address=reader.checksum(token), abi=abi.ERC20).functions.decimals().call)
        d_weth = await reader.call("WETH.decimals", reader.w3.eth.contract(
            address=reader.checksum(weth), abi=abi.ERC20).functions.decimals().call)
        d0, d1 = (int(d_lst), int(d_weth)) if lst_is_token0 else (int(d_weth), int(d_lst))
        found[lst] = _Pool(str(address), lst_is_token0, Decimal(10) ** (d0 - d1))
    return found
