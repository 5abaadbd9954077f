// SPDX-License-Identifier: MIT
// Test doubles with the exact read interfaces the workstation uses on mainnet (see venues/onchain/abi.py):
// ERC-20, the AAVE v3 Pool account-data interface, wstETH.stEthPerToken and weETH.getRate.
pragma solidity ^0.8.20;

contract TestToken {
    string public symbol;
    uint8 public decimals;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    constructor(string memory symbol_, uint8 decimals_) {
        symbol = symbol_;
        decimals = decimals_;
    }

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function setAllowance(address owner, address spender, uint256 amount) external {
        allowance[owner][spender] = amount;
    }
}

contract TestAavePool {
    struct AccountData {
        uint256 totalCollateralBase;
        uint256 totalDebtBase;
        uint256 availableBorrowsBase;
        uint256 currentLiquidationThreshold;
        uint256 ltv;
        uint256 healthFactor;
    }

    mapping(address => AccountData) private accounts;
    mapping(address => uint256) private emode;

    function setUserAccountData(address user, uint256 collateral, uint256 debt, uint256 available,
                                uint256 threshold, uint256 ltv, uint256 healthFactor) external {
        accounts[user] = AccountData(collateral, debt, available, threshold, ltv, healthFactor);
    }

    function setUserEMode(address user, uint256 category) external {
        emode[user] = category;
    }

    function getUserAccountData(address user) external view returns (
        uint256 totalCollateralBase, uint256 totalDebtBase, uint256 availableBorrowsBase,
        uint256 currentLiquidationThreshold, uint256 ltv, uint256 healthFactor
    ) {
        AccountData memory a = accounts[user];
        // AAVE reports uint256 max as the health factor of an account without debt.
        uint256 hf = a.totalDebtBase == 0 ? type(uint256).max : a.healthFactor;
        return (a.totalCollateralBase, a.totalDebtBase, a.availableBorrowsBase, a.currentLiquidationThreshold,
                a.ltv, hf);
    }

    function getUserEMode(address user) external view returns (uint256) {
        return emode[user];
    }
}

contract TestWstETH is TestToken {
    uint256 public stEthPerToken;

    constructor(uint256 rate) TestToken("wstETH", 18) {
        stEthPerToken = rate;
    }
}

contract TestWeETH is TestToken {
    uint256 private rate;

    constructor(uint256 rate_) TestToken("weETH", 18) {
        rate = rate_;
    }

    function getRate() external view returns (uint256) {
        return rate;
    }
}

// Stands in for contracts whose presence (code at the address) is all the checks verify.
contract TestCode {
    function ping() external pure returns (uint256) {
        return 1;
    }
}
