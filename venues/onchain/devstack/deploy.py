"""Deploy the local DeFi stack on a running anvil: the real AAVE v3, Uniswap v3 and Morpho Blue code.

The AAVE order follows aave-v3-deploy (deploy/00_core .. 02_market): addresses provider -> ACL admin
and ACLManager (the manager's constructor reads the ACL admin, so that comes first) -> data provider
-> logic libraries -> Pool implementation linked to them -> ``setPoolImpl`` (the provider deploys the
proxy and initializes it) -> PoolConfigurator likewise -> oracle -> flash-loan premiums -> token
implementations -> rate strategies -> ``initReserves`` -> risk parameters through ReservesSetupHelper
(temporarily a risk admin) -> e-mode category and its assets. Uniswap v3: factory, position
manager, SwapRouter02, QuoterV2, pools initialized at the oracle prices with liquidity minted through
the position manager. Morpho Blue: compiled from its sources, one WETH market so flash loans have
WETH to lend. The LSTs are the project's own (contracts/LiquidStaking.sol).

Everything is sent from anvil's unlocked account 0 (the deployer, also AAVE's pool and risk admin,
the oracle owner and the liquidity provider); account 1 is the operator's wallet and starts with
ETH only.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from venues.onchain.devstack import artifacts as npm
from venues.onchain.devstack.market import MarketSpec, PoolSpec, market_from_config
from venues.onchain.devstack.rpc import DevChain
from venues.onchain.devstack.solc import Compiled, collect_sources, compile_contracts
from venues.onchain.devstack.uniswap_math import (
    aligned_tick,
    raw_price,
    sqrt_price_x96,
    tick_at,
)

AAVE = "@aave/core-v3"
UNI_CORE = "@uniswap/v3-core"
UNI_PERIPHERY = "@uniswap/v3-periphery"
UNI_ROUTER = "@uniswap/swap-router-contracts"
MORPHO = "@morpho-org/morpho-blue"
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"

RAY = 10**27
WAD = 10**18
ZERO = "0x0000000000000000000000000000000000000000"
ORACLE_DECIMALS = 8  # AaveOracle base currency: USD with 8 decimals
DEPLOYER_ETH = 10**9 * WAD  # liquidity provider's balance (anvil_setBalance)
LIBRARIES = (
    "SupplyLogic",
    "BorrowLogic",
    "LiquidationLogic",
    "EModeLogic",
    "BridgeLogic",
    "PoolLogic",
    "FlashLoanLogic",
)
LST_CONTRACTS = ("LocalStETH", "LocalWstETH", "LocalEtherFiLiquidityPool", "LocalEETH", "LocalWeETH")


@dataclass
class DevStack:
    """Addresses of everything deployed, the ABIs to administer it, and how long it took."""

    url: str
    chain_id: int
    deployer: str
    wallet: str
    tokens: dict[str, str] = field(default_factory=dict)  # WETH USDT stETH wstETH eETH weETH
    aave: dict[str, str] = field(default_factory=dict)  # roles as in configs/venues/aave_v3.yaml (+ admin)
    aggregators: dict[str, str] = field(default_factory=dict)  # reserve symbol -> MockAggregator
    lido: dict[str, str] = field(default_factory=dict)
    etherfi: dict[str, str] = field(default_factory=dict)
    uniswap: dict[str, str] = field(default_factory=dict)
    morpho: dict[str, str] = field(default_factory=dict)
    executor: str = ""  # the wallet's LeverageExecutor (owner: the wallet)
    abis: dict[str, list] = field(default_factory=dict)
    spec: MarketSpec | None = None
    deploy_seconds: float = 0.0
    compile_seconds: float = 0.0
    transactions: int = 0

    def contract(self, chain: DevChain, name: str, address: str):
        return chain.contract(self.abis[name], address)

    def addresses(self) -> dict[str, dict[str, str]]:
        return {
            "tokens": self.tokens,
            "aave_v3": self.aave,
            "aave_oracle_feeds": self.aggregators,
            "lido": self.lido,
            "etherfi": self.etherfi,
            "uniswap": self.uniswap,
            "morpho": self.morpho,
            "leverage_executor": {"address": self.executor, "owner": self.wallet},
        }


# ------------------------------------------------------------------------------------------------ compile
def compile_local_contracts() -> dict[str, Compiled]:
    """The project's LSTs and LeverageExecutor (solc 0.8.37) and Morpho Blue (solc 0.8.19, viaIR, as
    Morpho builds it).

    The compilers run side by side (each is its own node process), so a cold build costs the
    Morpho build alone; a warm one reads them all from the cache.
    """
    from venues.onchain.executor_code import CONTRACT as EXECUTOR
    from venues.onchain.executor_code import compile_executor

    morpho_root = npm.require_package(MORPHO)
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="solc") as pool:
        executor = pool.submit(compile_executor)
        lst = pool.submit(
            compile_contracts,
            collect_sources(CONTRACTS_DIR, "LiquidStaking.sol"),
            {name: "LiquidStaking.sol" for name in LST_CONTRACTS},
            settings={"evmVersion": "cancun", "optimizer": {"enabled": True, "runs": 200}},
        )
        morpho = pool.submit(
            compile_contracts,
            collect_sources(morpho_root, "src/Morpho.sol"),
            {"Morpho": "src/Morpho.sol"},
            compiler="solc-0.8.19",
            # morpho-blue foundry.toml: via_ir, optimizer_runs 999999, bytecode_hash none (0.8.19: paris).
            settings={
                "viaIR": True,
                "optimizer": {"enabled": True, "runs": 999999},
                "evmVersion": "paris",
                "metadata": {"bytecodeHash": "none"},
            },
        )
        return {**lst.result(), **morpho.result(), EXECUTOR: executor.result()}


def _ray(x: Decimal) -> int:
    return int(x * RAY)


def _bps(x: Decimal) -> int:
    return int((x * 10_000).to_integral_value())


def _units(amount: Decimal, decimals: int) -> int:
    return int(amount * Decimal(10) ** decimals)


def _usd8(price: Decimal) -> int:
    return int((price * Decimal(10) ** ORACLE_DECIMALS).to_integral_value())


# ------------------------------------------------------------------------------------------------ deploy
class _Deployer:
    def __init__(
        self, chain: DevChain, stack: DevStack, spec: MarketSpec, compiled: dict[str, Compiled]
    ) -> None:
        self.c = chain
        self.s = stack
        self.spec = spec
        self.compiled = compiled
        self.me = stack.deployer

    # helpers
    def art(self, package: str, name: str, hint: str | None = None) -> npm.Artifact:
        artifact = npm.load(package, name, source_hint=hint)
        self.s.abis.setdefault(name, artifact.abi)
        return artifact

    def new(
        self,
        package: str,
        name: str,
        *args: Any,
        libraries: dict[str, str] | None = None,
        hint: str | None = None,
    ) -> str:
        artifact = self.art(package, name, hint)
        bytecode = artifact.link(libraries or {}) if artifact.libraries else artifact.bytecode
        return self.c.deploy(self.me, artifact.abi, bytecode, *args, what=name)

    def own(self, name: str, *args: Any) -> str:
        compiled = self.compiled[name]
        self.s.abis.setdefault(name, compiled.abi)
        return self.c.deploy(self.me, compiled.abi, compiled.bytecode, *args, what=name)

    def at(self, name: str, address: str):
        return self.c.contract(self.s.abis[name], address)

    def tx(self, name: str, address: str, function: str, *args: Any, value: int = 0) -> dict:
        return self.c.transact(self.me, self.at(name, address), function, *args, value=value)

    # steps
    def tokens(self) -> None:
        self.s.tokens["WETH"] = self.new(AAVE, "WETH9", hint="dependencies/weth/WETH9.sol")
        self.s.tokens["USDT"] = self.new(AAVE, "MintableERC20", "Tether USD", "USDT", 6)
        rates = self.spec.lst_rates
        steth = self.own("LocalStETH", int(rates["wstETH"] * WAD))
        wsteth = self.own("LocalWstETH", steth)
        pool = self.own("LocalEtherFiLiquidityPool", int(rates["weETH"] * WAD))
        eeth = self.own("LocalEETH", pool)
        self.tx("LocalEtherFiLiquidityPool", pool, "setEETH", eeth)
        weeth = self.own("LocalWeETH", eeth, pool)
        self.s.tokens.update({"stETH": steth, "wstETH": wsteth, "eETH": eeth, "weETH": weeth})
        self.s.lido.update({"steth": steth, "wsteth": wsteth})
        self.s.etherfi.update({"liquidity_pool": pool, "weeth": weeth, "eeth": eeth})

    def aave(self) -> None:
        a, me = self.s.aave, self.me
        provider = self.new(AAVE, "PoolAddressesProvider", "Basis Workstation local market", me)
        self.tx("PoolAddressesProvider", provider, "setACLAdmin", me)
        acl = self.new(AAVE, "ACLManager", provider)
        self.tx("PoolAddressesProvider", provider, "setACLManager", acl)
        self.tx("ACLManager", acl, "addPoolAdmin", me)
        self.tx("ACLManager", acl, "addEmergencyAdmin", me)
        data_provider = self.new(AAVE, "AaveProtocolDataProvider", provider)
        self.tx("PoolAddressesProvider", provider, "setPoolDataProvider", data_provider)

        libs = {name: self.new(AAVE, name) for name in LIBRARIES if name != "FlashLoanLogic"}
        libs["FlashLoanLogic"] = self.new(
            AAVE, "FlashLoanLogic", libraries={"BorrowLogic": libs["BorrowLogic"]}
        )
        pool_impl = self.new(AAVE, "Pool", provider, libraries=libs)
        self.tx("PoolAddressesProvider", provider, "setPoolImpl", pool_impl)
        pool = self.c.call(self.at("PoolAddressesProvider", provider), "getPool")
        configurator_logic = self.new(AAVE, "ConfiguratorLogic")
        configurator_impl = self.new(
            AAVE, "PoolConfigurator", libraries={"ConfiguratorLogic": configurator_logic}
        )
        self.tx("PoolAddressesProvider", provider, "setPoolConfiguratorImpl", configurator_impl)
        configurator = self.c.call(self.at("PoolAddressesProvider", provider), "getPoolConfigurator")

        symbols = [r.symbol for r in self.spec.reserves]
        prices = self.usd_prices()
        for symbol in symbols:
            self.s.aggregators[symbol] = self.new(AAVE, "MockAggregator", _usd8(prices[symbol]))
        oracle = self.new(
            AAVE,
            "AaveOracle",
            provider,
            [self.s.tokens[s] for s in symbols],
            [self.s.aggregators[s] for s in symbols],
            ZERO,
            ZERO,
            10**ORACLE_DECIMALS,
        )
        self.tx("PoolAddressesProvider", provider, "setPriceOracle", oracle)
        self.tx(
            "PoolConfigurator", configurator, "updateFlashloanPremiumTotal", self.spec.flash_premium_total_bps
        )
        self.tx(
            "PoolConfigurator",
            configurator,
            "updateFlashloanPremiumToProtocol",
            self.spec.flash_premium_protocol_bps,
        )

        a_token = self.new(AAVE, "AToken", pool)
        self.tx("AToken", a_token, "initialize", pool, ZERO, ZERO, ZERO, 0, "ATOKEN_IMPL", "ATOKEN_IMPL", b"")
        stable = self.new(AAVE, "StableDebtToken", pool)
        self.tx(
            "StableDebtToken",
            stable,
            "initialize",
            pool,
            ZERO,
            ZERO,
            0,
            "STABLE_DEBT_TOKEN_IMPL",
            "STABLE_DEBT_TOKEN_IMPL",
            b"",
        )
        variable = self.new(AAVE, "VariableDebtToken", pool)
        self.tx(
            "VariableDebtToken",
            variable,
            "initialize",
            pool,
            ZERO,
            ZERO,
            0,
            "VARIABLE_DEBT_TOKEN_IMPL",
            "VARIABLE_DEBT_TOKEN_IMPL",
            b"",
        )

        strategies: dict[str, str] = {}
        for reserve in self.spec.reserves:
            curve = reserve.strategy
            if curve.name not in strategies:
                strategies[curve.name] = self.new(
                    AAVE,
                    "DefaultReserveInterestRateStrategy",
                    provider,
                    _ray(curve.optimal_usage),
                    _ray(curve.base),
                    _ray(curve.slope1),
                    _ray(curve.slope2),
                    0,
                    0,
                    0,
                    0,
                    _ray(Decimal("0.2")),
                )
        treasury = me  # the treasury only receives the reserve factor's share
        inputs = [
            (
                a_token,
                stable,
                variable,
                r.decimals,
                strategies[r.strategy.name],
                self.s.tokens[r.symbol],
                treasury,
                ZERO,
                f"Aave Local {r.symbol}",
                f"aLoc{r.symbol}",
                f"Aave Local Variable Debt {r.symbol}",
                f"variableDebtLoc{r.symbol}",
                f"Aave Local Stable Debt {r.symbol}",
                f"stableDebtLoc{r.symbol}",
                b"\x10",
            )
            for r in self.spec.reserves
        ]
        self.tx("PoolConfigurator", configurator, "initReserves", inputs)

        helper = self.new(AAVE, "ReservesSetupHelper")
        self.tx("ACLManager", acl, "addRiskAdmin", helper)
        params = [
            (
                self.s.tokens[r.symbol],
                _bps(r.ltv),
                _bps(r.liquidation_threshold),
                10_000 + _bps(r.liquidation_bonus),
                _bps(r.reserve_factor),
                0,
                0,
                False,
                r.borrowing,
                True,
            )
            for r in self.spec.reserves
        ]
        self.tx("ReservesSetupHelper", helper, "configureReserves", configurator, params)
        self.tx("ACLManager", acl, "removeRiskAdmin", helper)

        em = self.spec.emode
        self.tx(
            "PoolConfigurator",
            configurator,
            "setEModeCategory",
            em.category_id,
            _bps(em.ltv),
            _bps(em.liquidation_threshold),
            10_000 + _bps(em.liquidation_bonus),
            ZERO,
            em.label,
        )
        for reserve in self.spec.reserves:
            if reserve.emode:
                self.tx(
                    "PoolConfigurator",
                    configurator,
                    "setAssetEModeCategory",
                    self.s.tokens[reserve.symbol],
                    em.category_id,
                )

        a.update(
            {
                "pool": pool,
                "pool_addresses_provider": provider,
                "pool_data_provider": data_provider,
                "oracle": oracle,
                "pool_configurator": configurator,
                "acl_manager": acl,
            }
        )
        for symbol in symbols:
            reserve = self.c.call(self.at("Pool", pool), "getReserveData", self.s.tokens[symbol])
            a[f"a_{symbol.lower()}"] = to_checksum_address(reserve[8])
            a[f"stable_debt_{symbol.lower()}"] = to_checksum_address(reserve[9])
            a[f"variable_debt_{symbol.lower()}"] = to_checksum_address(reserve[10])

    def usd_prices(self) -> dict[str, Decimal]:
        eth = self.spec.eth_usd
        return {
            "WETH": eth,
            "USDT": Decimal(1),
            "wstETH": eth * self.spec.lst_rates["wstETH"],
            "weETH": eth * self.spec.lst_rates["weETH"],
        }

    def fund_deployer(self) -> None:
        """ETH, WETH, USDT and LSTs for the deployer's liquidity."""
        self.c.set_balance(self.me, DEPLOYER_ETH)
        t = self.s.tokens
        self.tx("WETH9", t["WETH"], "deposit", value=200_000 * WAD)
        self.tx("MintableERC20", t["USDT"], "mint(uint256)", _units(Decimal(10) ** 9, 6))
        self.tx("LocalStETH", t["stETH"], "submit", ZERO, value=60_000 * WAD)
        steth_balance = self.c.call(self.at("LocalStETH", t["stETH"]), "balanceOf", self.me)
        self.tx("LocalStETH", t["stETH"], "approve", t["wstETH"], steth_balance)
        self.tx("LocalWstETH", t["wstETH"], "wrap", steth_balance)
        self.tx(
            "LocalEtherFiLiquidityPool", self.s.etherfi["liquidity_pool"], "deposit()", value=60_000 * WAD
        )
        eeth_balance = self.c.call(self.at("LocalEETH", t["eETH"]), "balanceOf", self.me)
        self.tx("LocalEETH", t["eETH"], "approve", t["weETH"], eeth_balance)
        self.tx("LocalWeETH", t["weETH"], "wrap", eeth_balance)

    def seed_aave(self) -> None:
        """The deployer supplies what the operator's wallet will borrow."""
        pool = self.s.aave["pool"]
        for symbol, amount in self.spec.aave_seed.items():
            decimals = self.spec.reserve(symbol).decimals
            raw = _units(amount, decimals)
            abi_name = "WETH9" if symbol == "WETH" else "MintableERC20"
            self.tx(abi_name, self.s.tokens[symbol], "approve", pool, raw)
            self.tx("Pool", pool, "supply", self.s.tokens[symbol], raw, self.me, 0)

    def uniswap(self) -> None:
        u, t = self.s.uniswap, self.s.tokens
        factory = self.new(UNI_CORE, "UniswapV3Factory")
        # The 0.01 % tier is not in the factory's constructor; Uniswap governance enabled it on mainnet
        # in Nov 2021 with enableFeeAmount(100, 1). The LST pools use it, as they do on mainnet.
        self.tx("UniswapV3Factory", factory, "enableFeeAmount", 100, 1)
        manager = self.new(UNI_PERIPHERY, "NonfungiblePositionManager", factory, t["WETH"], ZERO)
        router = self.new(UNI_ROUTER, "SwapRouter02", ZERO, factory, manager, t["WETH"])
        quoter = self.new(UNI_ROUTER, "QuoterV2", factory, t["WETH"])
        self.art(UNI_CORE, "UniswapV3Pool")
        u.update(
            {"factory": factory, "position_manager": manager, "swap_router_02": router, "quoter_v2": quoter}
        )
        for symbol in ("WETH", "USDT", "wstETH", "weETH"):
            abi_name = {
                "WETH": "WETH9",
                "USDT": "MintableERC20",
                "wstETH": "LocalWstETH",
                "weETH": "LocalWeETH",
            }[symbol]
            self.tx(abi_name, t[symbol], "approve", manager, 2**256 - 1)
        for pool in self.spec.pools:
            u[pool_role(pool)] = self.add_pool(manager, factory, pool)

    def add_pool(self, manager: str, factory: str, spec: PoolSpec) -> str:
        t = self.s.tokens
        base, quote = t[spec.base], t[spec.quote]
        dec = {s: self.spec.reserve(s).decimals for s in (spec.base, spec.quote)}
        price = self.pool_price(spec)
        # token0 is the lower address; the pool prices token1 in token0.
        base_is_0 = int(base, 16) < int(quote, 16)
        token0, token1 = (base, quote) if base_is_0 else (quote, base)
        d0, d1 = (dec[spec.base], dec[spec.quote]) if base_is_0 else (dec[spec.quote], dec[spec.base])

        def raw(p: Decimal) -> Decimal:
            return raw_price(p if base_is_0 else 1 / p, d0, d1)

        lows = sorted([raw(spec.price_low), raw(spec.price_high)])
        tick_lower = aligned_tick(tick_at(lows[0]), spec.fee, up=False)
        tick_upper = aligned_tick(tick_at(lows[1]), spec.fee, up=True)
        self.tx(
            "NonfungiblePositionManager",
            manager,
            "createAndInitializePoolIfNecessary",
            token0,
            token1,
            spec.fee,
            sqrt_price_x96(raw(price)),
        )
        base_raw = _units(spec.base_amount, dec[spec.base])
        quote_raw = _units(
            spec.base_amount * price * Decimal(2), dec[spec.quote]
        )  # ample; mint takes what fits
        amount0, amount1 = (base_raw, quote_raw) if base_is_0 else (quote_raw, base_raw)
        deadline = 2**32
        self.tx(
            "NonfungiblePositionManager",
            manager,
            "mint",
            (token0, token1, spec.fee, tick_lower, tick_upper, amount0, amount1, 0, 0, self.me, deadline),
        )
        return to_checksum_address(
            self.c.call(self.at("UniswapV3Factory", factory), "getPool", token0, token1, spec.fee)
        )

    def pool_price(self, spec: PoolSpec) -> Decimal:
        if (spec.base, spec.quote) == ("WETH", "USDT"):
            return self.spec.eth_usd
        if spec.quote == "WETH" and spec.base in self.spec.lst_rates:
            return self.spec.lst_rates[spec.base]
        raise ValueError(f"no starting price for the {spec.base}/{spec.quote} pool")

    def morpho(self) -> None:
        t = self.s.tokens
        morpho = self.own("Morpho", self.me)
        lltv = int(self.spec.morpho_lltv * WAD)
        self.tx("Morpho", morpho, "enableIrm", ZERO)
        self.tx("Morpho", morpho, "enableLltv", lltv)
        # A market needs an oracle only to borrow or liquidate; this one exists to hold WETH that flash
        # loans draw from (Morpho lends any token it holds, fee-free), so it names none.
        params = (t["WETH"], t["wstETH"], ZERO, ZERO, lltv)
        self.tx("Morpho", morpho, "createMarket", params)
        raw = _units(self.spec.morpho_weth, 18)
        self.tx("WETH9", t["WETH"], "approve", morpho, raw)
        self.tx("Morpho", morpho, "supply", params, raw, 0, self.me, b"")
        market_id = (
            "0x"
            + keccak(abi_encode(["address", "address", "address", "address", "uint256"], list(params))).hex()
        )
        self.s.morpho.update({"morpho_blue": morpho, "weth_wsteth_market_id": market_id})

    def executor(self) -> None:
        """The wallet's LeverageExecutor, as its operator would deploy it once (owner: the wallet)."""
        s = self.s
        s.executor = self.own(
            "LeverageExecutor", s.wallet, s.aave["pool"], s.morpho["morpho_blue"], s.tokens["WETH"],
            s.uniswap["swap_router_02"],
        )


def pool_role(spec: PoolSpec) -> str:
    """Venue-config role of a pool: weth_usdt_pool_3000, wsteth_weth_pool_100."""
    return f"{spec.base.lower()}_{spec.quote.lower()}_pool_{spec.fee}"


def deploy_stack(
    url: str, *, spec: MarketSpec | None = None, compiled: dict[str, Compiled] | None = None
) -> DevStack:
    """Deploy everything on the (empty, automining) anvil at ``url``; returns the addresses."""
    spec = spec or market_from_config()
    started = time.perf_counter()
    compiled = compiled or compile_local_contracts()
    compiled_at = time.perf_counter()
    chain = DevChain(url)
    try:
        accounts = chain.accounts()
        if len(accounts) < 2:
            raise RuntimeError("anvil needs at least two unlocked accounts (deployer and wallet)")
        stack = DevStack(url, int(chain.rpc("eth_chainId"), 16), accounts[0], accounts[1], spec=spec)
        d = _Deployer(chain, stack, spec, compiled)
        d.tokens()
        d.aave()
        d.fund_deployer()
        d.seed_aave()
        d.uniswap()
        d.morpho()
        d.executor()
        stack.transactions = chain.transactions
    finally:
        chain.close()
    stack.compile_seconds = compiled_at - started
    stack.deploy_seconds = time.perf_counter() - compiled_at
    return stack
