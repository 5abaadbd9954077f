"""Deploy the test contracts on anvil with web3 (sync; setup only) and seed balances and AAVE state."""
from __future__ import annotations

from dataclasses import dataclass, field

from web3 import Web3

from tests.integration.chain.solidity import Artifact

E18 = 10 ** 18


@dataclass
class Deployment:
    """Addresses on the local chain, by the roles/symbols the venue files use."""

    w3: Web3
    deployer: str
    wallet: str                                       # funded test wallet (anvil account 1)
    tokens: dict[str, str] = field(default_factory=dict)       # USDT, WETH, weETH, wstETH, eETH, stETH
    contracts: dict[str, dict[str, str]] = field(default_factory=dict)   # venue -> role -> address
    abis: dict[str, list] = field(default_factory=dict)

    def contract(self, name: str, address: str):
        return self.w3.eth.contract(address=address, abi=self.abis[name])

    def transact(self, fn) -> None:
        tx = fn.transact({"from": self.deployer})
        self.w3.eth.wait_for_transaction_receipt(tx)

    def set_aave_account(self, user: str, *, collateral: int, debt: int, hf_wad: int, emode: int) -> None:
        pool = self.contract("TestAavePool", self.contracts["aave_v3"]["pool"])
        self.transact(pool.functions.setUserAccountData(user, collateral, debt, max(collateral * 8 // 10 - debt, 0),
                                                        9500, 9300, hf_wad))
        self.transact(pool.functions.setUserEMode(user, emode))

    def mine(self) -> None:
        self.w3.provider.make_request("evm_mine", [])


def _deploy(w3: Web3, deployer: str, art: Artifact, *args) -> str:
    contract = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    tx = contract.constructor(*args).transact({"from": deployer})
    return w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]


def deploy_all(url: str, artifacts: dict[str, Artifact]) -> Deployment:
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
    deployer, wallet = w3.eth.accounts[0], w3.eth.accounts[1]
    d = Deployment(w3, deployer, wallet, abis={name: a.abi for name, a in artifacts.items()})
    token = artifacts["TestToken"]
    for symbol, decimals in (("USDT", 6), ("WETH", 18), ("eETH", 18), ("stETH", 18)):
        d.tokens[symbol] = _deploy(w3, deployer, token, symbol, decimals)
    d.tokens["wstETH"] = _deploy(w3, deployer, artifacts["TestWstETH"], 1_210_000_000_000_000_000)
    d.tokens["weETH"] = _deploy(w3, deployer, artifacts["TestWeETH"], 1_065_000_000_000_000_000)
    pool = _deploy(w3, deployer, artifacts["TestAavePool"])
    aave = {"pool": pool}
    for asset, decimals in (("usdt", 6), ("weth", 18), ("weeth", 18), ("wsteth", 18)):
        aave[f"a_{asset}"] = _deploy(w3, deployer, token, f"aEth{asset}", decimals)
        aave[f"variable_debt_{asset}"] = _deploy(w3, deployer, token, f"variableDebtEth{asset}", decimals)
    code = artifacts["TestCode"]
    for role in ("pool_addresses_provider", "pool_data_provider", "oracle"):
        aave[role] = _deploy(w3, deployer, code)
    d.contracts = {
        "aave_v3": aave,
        "etherfi": {"liquidity_pool": _deploy(w3, deployer, code), "weeth": d.tokens["weETH"]},
        "lido": {"steth": d.tokens["stETH"], "wsteth": d.tokens["wstETH"], "withdrawal_queue": _deploy(w3, deployer, code)},
        "morpho": {"morpho_blue": _deploy(w3, deployer, code)},
        "instadapp": {"flash_aggregator": _deploy(w3, deployer, code)},
        "uniswap": {role: _deploy(w3, deployer, code)
                    for role in ("swap_router_02", "quoter_v2", "factory", "weth_usdt_pool_3000")},
    }
    # The wallet: 25 weETH, 500 USDT, 3 aWETH of supply, 1 WETH of debt, e-mode 1, HF 1.9.
    d.transact(d.contract("TestWeETH", d.tokens["weETH"]).functions.mint(wallet, 25 * E18))
    d.transact(d.contract("TestToken", d.tokens["USDT"]).functions.mint(wallet, 500 * 10 ** 6))
    d.transact(d.contract("TestToken", aave["a_weth"]).functions.mint(wallet, 3 * E18))
    d.transact(d.contract("TestToken", aave["variable_debt_weth"]).functions.mint(wallet, 1 * E18))
    d.set_aave_account(wallet, collateral=8_000_00000000, debt=4_000_00000000, hf_wad=1_900_000_000_000_000_000,
                       emode=1)
    return d
