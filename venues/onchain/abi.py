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

from collections.abc import Sequence


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


# ------------------------------------------------------------------------------------------------ writes
# The functions the transaction-sending adapters call, with the deployed contracts' signatures:
# - AAVE v3 Pool (aave-v3-core contracts/interfaces/IPool.sol): supply(asset, amount, onBehalfOf,
#   referralCode); withdraw(asset, amount, to) -> withdrawn; borrow(asset, amount, interestRateMode,
#   referralCode, onBehalfOf); repay(asset, amount, interestRateMode, onBehalfOf) -> repaid;
#   setUserEMode(categoryId); getReserveData(asset) -> ReserveData (v3.0 field order, which later
#   versions keep for this getter); getEModeCategoryData(id). AToken / VariableDebtToken:
#   scaledBalanceOf (IScaledBalanceToken). AaveOracle: getAssetPrice(asset) in BASE_CURRENCY_UNIT.
# - Lido stETH.submit(referral) payable -> shares; wstETH wrap/unwrap(amount) -> amount out.
# - ether.fi LiquidityPool.deposit() payable -> shares; weETH wrap/unwrap(amount) -> amount out.
# - WETH9 deposit() payable / withdraw(wad).
# - Uniswap SwapRouter02 (swap-router-contracts IV3SwapRouter): exactInputSingle(ExactInputSingleParams
#   {tokenIn, tokenOut, fee, recipient, amountIn, amountOutMinimum, sqrtPriceLimitX96}) -> amountOut.
def _fn(name: str, inputs: list[tuple[str, str]], outputs: Sequence[tuple[str, str]] = (),
        mutability: str = "nonpayable") -> dict:
    return {
        "type": "function", "name": name, "stateMutability": mutability,
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": n, "type": t} for n, t in outputs],
    }


ERC20_WRITE = [
    *ERC20,
    _fn("approve", [("spender", "address"), ("amount", "uint256")], [("", "bool")]),
    _fn("transfer", [("to", "address"), ("amount", "uint256")], [("", "bool")]),
]

_RESERVE_DATA = {
    "name": "", "type": "tuple", "components": [
        {"name": "configuration", "type": "tuple", "components": [{"name": "data", "type": "uint256"}]},
        {"name": "liquidityIndex", "type": "uint128"},
        {"name": "currentLiquidityRate", "type": "uint128"},
        {"name": "variableBorrowIndex", "type": "uint128"},
        {"name": "currentVariableBorrowRate", "type": "uint128"},
        {"name": "currentStableBorrowRate", "type": "uint128"},
        {"name": "lastUpdateTimestamp", "type": "uint40"},
        {"name": "id", "type": "uint16"},
        {"name": "aTokenAddress", "type": "address"},
        {"name": "stableDebtTokenAddress", "type": "address"},
        {"name": "variableDebtTokenAddress", "type": "address"},
        {"name": "interestRateStrategyAddress", "type": "address"},
        {"name": "accruedToTreasury", "type": "uint128"},
        {"name": "unbacked", "type": "uint128"},
        {"name": "isolationModeTotalDebt", "type": "uint128"},
    ]}

AAVE_POOL_WRITE = [
    *AAVE_POOL,
    _fn("supply", [("asset", "address"), ("amount", "uint256"), ("onBehalfOf", "address"),
                   ("referralCode", "uint16")]),
    _fn("withdraw", [("asset", "address"), ("amount", "uint256"), ("to", "address")], [("", "uint256")]),
    _fn("borrow", [("asset", "address"), ("amount", "uint256"), ("interestRateMode", "uint256"),
                   ("referralCode", "uint16"), ("onBehalfOf", "address")]),
    _fn("repay", [("asset", "address"), ("amount", "uint256"), ("interestRateMode", "uint256"),
                  ("onBehalfOf", "address")], [("", "uint256")]),
    _fn("setUserEMode", [("categoryId", "uint8")]),
    {"type": "function", "name": "getReserveData", "stateMutability": "view",
     "inputs": [{"name": "asset", "type": "address"}], "outputs": [_RESERVE_DATA]},
    {"type": "function", "name": "getEModeCategoryData", "stateMutability": "view",
     "inputs": [{"name": "id", "type": "uint8"}], "outputs": [{"name": "", "type": "tuple", "components": [
         {"name": "ltv", "type": "uint16"}, {"name": "liquidationThreshold", "type": "uint16"},
         {"name": "liquidationBonus", "type": "uint16"}, {"name": "priceSource", "type": "address"},
         {"name": "label", "type": "string"}]}]},
    # The indices accrued to the current block (getReserveData's are as of the last update).
    _view("getReserveNormalizedIncome", [("asset", "address")], [("", "uint256")]),
    _view("getReserveNormalizedVariableDebt", [("asset", "address")], [("", "uint256")]),
]

SCALED_TOKEN = [
    *ERC20,
    _view("scaledBalanceOf", [("user", "address")], [("", "uint256")]),
    _view("UNDERLYING_ASSET_ADDRESS", [], [("", "address")]),
]

AAVE_ORACLE = [
    _view("getAssetPrice", [("asset", "address")], [("", "uint256")]),
    _view("BASE_CURRENCY_UNIT", [], [("", "uint256")]),
]

LIDO_STETH = [*ERC20_WRITE, _fn("submit", [("referral", "address")], [("", "uint256")], "payable")]
LIDO_WSTETH = [
    *ERC20_WRITE, *WSTETH_RATE,
    _fn("wrap", [("stETHAmount", "uint256")], [("", "uint256")]),
    _fn("unwrap", [("wstETHAmount", "uint256")], [("", "uint256")]),
    _view("getStETHByWstETH", [("wstETHAmount", "uint256")], [("", "uint256")]),
]
ETHERFI_POOL = [_fn("deposit", [], [("", "uint256")], "payable")]
ETHERFI_WEETH = [
    *ERC20_WRITE, *WEETH_RATE,
    _fn("wrap", [("eETHAmount", "uint256")], [("", "uint256")]),
    _fn("unwrap", [("weETHAmount", "uint256")], [("", "uint256")]),
    _view("getEETHByWeETH", [("weETHAmount", "uint256")], [("", "uint256")]),
]
WETH9 = [*ERC20_WRITE, _fn("deposit", [], [], "payable"), _fn("withdraw", [("wad", "uint256")])]

SWAP_ROUTER_02 = [{
    "type": "function", "name": "exactInputSingle", "stateMutability": "payable",
    "inputs": [{"name": "params", "type": "tuple", "components": [
        {"name": "tokenIn", "type": "address"}, {"name": "tokenOut", "type": "address"},
        {"name": "fee", "type": "uint24"}, {"name": "recipient", "type": "address"},
        {"name": "amountIn", "type": "uint256"}, {"name": "amountOutMinimum", "type": "uint256"},
        {"name": "sqrtPriceLimitX96", "type": "uint160"}]}],
    "outputs": [{"name": "amountOut", "type": "uint256"}],
}]

# keccak256("Transfer(address,address,uint256)"): the ERC-20 event an adapter reads amounts from.
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

# - AAVE v3 VariableDebtToken (ICreditDelegationToken): approveDelegation(delegatee, amount) lets the
#   delegatee borrow up to ``amount`` on the caller's behalf; borrowAllowance(fromUser, toUser).
#   Pool.FLASHLOAN_PREMIUM_TOTAL() in bps of the amount (flashLoanSimple).
CREDIT_DELEGATION = [
    *SCALED_TOKEN,
    _fn("approveDelegation", [("delegatee", "address"), ("amount", "uint256")]),
    _view("borrowAllowance", [("fromUser", "address"), ("toUser", "address")], [("", "uint256")]),
]
AAVE_FLASH_PREMIUM = [_view("FLASHLOAN_PREMIUM_TOTAL", [], [("", "uint128")])]

# - Uniswap QuoterV2 (swap-router-contracts IQuoterV2): quoteExactInputSingle simulates the swap and
#   reverts internally to return the result, so it is read with eth_call (never sent).
QUOTER_V2 = [{
    "type": "function", "name": "quoteExactInputSingle", "stateMutability": "nonpayable",
    "inputs": [{"name": "params", "type": "tuple", "components": [
        {"name": "tokenIn", "type": "address"}, {"name": "tokenOut", "type": "address"},
        {"name": "amountIn", "type": "uint256"}, {"name": "fee", "type": "uint24"},
        {"name": "sqrtPriceLimitX96", "type": "uint160"}]}],
    "outputs": [{"name": "amountOut", "type": "uint256"}, {"name": "sqrtPriceX96After", "type": "uint160"},
                {"name": "initializedTicksCrossed", "type": "uint32"}, {"name": "gasEstimate", "type": "uint256"}],
}]
