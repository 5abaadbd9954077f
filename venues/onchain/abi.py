"""Minimal ABIs for the reads the workstation makes (only the functions used, so a wrong address
fails loudly instead of decoding garbage).

Signatures are the deployed contracts' public interfaces:
- ERC-20: balanceOf, decimals, symbol, allowance (EIP-20).
- AAVE v3 Pool: getUserAccountData(address) -> (totalCollateralBase, totalDebtBase,
  availableBorrowsBase, currentLiquidationThreshold, ltv, healthFactor) and getUserEMode(address)
  (aave-v3-core contracts/interfaces/IPool.sol). Base currency amounts have 8 decimals (USD oracle).
- Lido wstETH: stEthPerToken() -> stETH per 1 wstETH, 18 decimals (lido-dao contracts/0.6.12/WstETH.sol).
- ether.fi weETH: getRate() -> eETH per 1 weETH, 18 decimals (etherfi-protocol smart-contracts src/WeETH.sol).
"""
from __future__ import annotations


def _view(name: str, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]) -> dict:
    return {
        "type": "function", "name": name, "stateMutability": "view",
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": n, "type": t} for n, t in outputs],
    }


ERC20 = [
    _view("balanceOf", [("account", "address")], [("", "uint256")]),
    _view("decimals", [], [("", "uint8")]),
    _view("symbol", [], [("", "string")]),
    _view("allowance", [("owner", "address"), ("spender", "address")], [("", "uint256")]),
]

AAVE_POOL = [
    _view("getUserAccountData", [("user", "address")], [
        ("totalCollateralBase", "uint256"), ("totalDebtBase", "uint256"), ("availableBorrowsBase", "uint256"),
        ("currentLiquidationThreshold", "uint256"), ("ltv", "uint256"), ("healthFactor", "uint256")]),
    _view("getUserEMode", [("user", "address")], [("", "uint256")]),
]

WSTETH_RATE = [_view("stEthPerToken", [], [("", "uint256")])]
WEETH_RATE = [_view("getRate", [], [("", "uint256")])]

# LST symbol -> (ABI, rate function): ETH-denominated value of one token, 18 decimals.
LST_RATE = {"wstETH": (WSTETH_RATE, "stEthPerToken"), "weETH": (WEETH_RATE, "getRate")}
