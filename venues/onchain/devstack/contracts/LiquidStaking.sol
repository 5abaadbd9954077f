// SPDX-License-Identifier: MIT
// Liquid staking tokens for the local chain, with the public interfaces of the real ones, so the
// workstation's adapters call exactly what they call on mainnet:
//   Lido:    stETH.submit(referral) payable, share accounting (getPooledEthByShares,
//            getSharesByPooledEth, sharesOf); wstETH.wrap / unwrap / getStETHByWstETH /
//            getWstETHByStETH / stEthPerToken / tokensPerStEth (lido-dao contracts/0.6.12/WstETH.sol).
//   ether.fi: LiquidityPool.deposit() payable, amountForShare / sharesForAmount; eETH (rebasing,
//            share based); weETH.wrap / unwrap / getRate / getWeETHByeETH / getEETHByWeETH
//            (etherfi-protocol smart-contracts src/LiquidityPool.sol, src/EETH.sol, src/WeETH.sol).
// What differs on purpose: the exchange rate is set by the owner (setPooledEthPerShare /
// setAmountPerShare) in place of beacon-chain oracle reports, so a local chain can follow the
// historical rates hour by hour; and there are no withdrawal queues.
// Rounding follows the originals: every conversion rounds down.
pragma solidity ^0.8.20;

/// Minimal ERC-20 bookkeeping for the non-rebasing wrappers (wstETH, weETH).
abstract contract SimpleERC20 {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _spendAllowance(from, amount);
        _transfer(from, to, amount);
        return true;
    }

    function _spendAllowance(address owner, uint256 amount) internal {
        uint256 current = allowance[owner][msg.sender];
        if (current != type(uint256).max) {
            require(current >= amount, "ERC20: insufficient allowance");
            allowance[owner][msg.sender] = current - amount;
        }
    }

    function _transfer(address from, address to, uint256 amount) internal {
        require(to != address(0), "ERC20: transfer to the zero address");
        require(balanceOf[from] >= amount, "ERC20: transfer amount exceeds balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }

    function _mint(address to, uint256 amount) internal {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function _burn(address from, uint256 amount) internal {
        require(balanceOf[from] >= amount, "ERC20: burn amount exceeds balance");
        balanceOf[from] -= amount;
        totalSupply -= amount;
        emit Transfer(from, address(0), amount);
    }
}

/// A rebasing token whose balances are shares times a rate (stETH and eETH both work this way).
abstract contract SharesToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    mapping(address => uint256) internal _shares;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 internal _totalShares;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event TransferShares(address indexed from, address indexed to, uint256 sharesValue);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    function _amountForShares(uint256 shares) internal view virtual returns (uint256);
    function _sharesForAmount(uint256 amount) internal view virtual returns (uint256);

    function totalSupply() external view returns (uint256) {
        return _amountForShares(_totalShares);
    }

    function balanceOf(address account) external view returns (uint256) {
        return _amountForShares(_shares[account]);
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _transferAmount(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 current = allowance[from][msg.sender];
        if (current != type(uint256).max) {
            require(current >= amount, "ALLOWANCE_EXCEEDED");
            allowance[from][msg.sender] = current - amount;
        }
        _transferAmount(from, to, amount);
        return true;
    }

    function _transferAmount(address from, address to, uint256 amount) internal {
        uint256 shares = _sharesForAmount(amount);
        _transferShares(from, to, shares);
        emit Transfer(from, to, amount);
    }

    function _transferShares(address from, address to, uint256 shares) internal {
        require(to != address(0), "TRANSFER_TO_ZERO_ADDR");
        require(_shares[from] >= shares, "BALANCE_EXCEEDED");
        _shares[from] -= shares;
        _shares[to] += shares;
        emit TransferShares(from, to, shares);
    }

    function _mintShares(address to, uint256 shares) internal {
        _shares[to] += shares;
        _totalShares += shares;
        emit TransferShares(address(0), to, shares);
        emit Transfer(address(0), to, _amountForShares(shares));
    }
}

/// Lido's stETH: ETH in through submit(), balances are shares x pooled ETH per share.
contract LocalStETH is SharesToken {
    address public owner;
    uint256 public pooledEthPerShare;          // 1e18 = one ETH per share

    event Submitted(address indexed sender, uint256 amount, address referral);
    event PooledEthPerShareSet(uint256 pooledEthPerShare);

    constructor(uint256 initialPooledEthPerShare) SharesToken("Liquid staked Ether 2.0", "stETH") {
        require(initialPooledEthPerShare > 0, "ZERO_RATE");
        owner = msg.sender;
        pooledEthPerShare = initialPooledEthPerShare;
    }

    /// Stand-in for Lido's oracle report: the rate the beacon chain rewards would produce.
    function setPooledEthPerShare(uint256 rate) external {
        require(msg.sender == owner, "NOT_OWNER");
        require(rate > 0, "ZERO_RATE");
        pooledEthPerShare = rate;
        emit PooledEthPerShareSet(rate);
    }

    function submit(address referral) external payable returns (uint256) {
        require(msg.value != 0, "ZERO_DEPOSIT");
        uint256 shares = getSharesByPooledEth(msg.value);
        _mintShares(msg.sender, shares);
        emit Submitted(msg.sender, msg.value, referral);
        return shares;
    }

    receive() external payable {
        require(msg.value != 0, "ZERO_DEPOSIT");
        _mintShares(msg.sender, getSharesByPooledEth(msg.value));
        emit Submitted(msg.sender, msg.value, address(0));
    }

    function getPooledEthByShares(uint256 sharesAmount) public view returns (uint256) {
        return sharesAmount * pooledEthPerShare / 1 ether;
    }

    function getSharesByPooledEth(uint256 ethAmount) public view returns (uint256) {
        return ethAmount * 1 ether / pooledEthPerShare;
    }

    function sharesOf(address account) external view returns (uint256) {
        return _shares[account];
    }

    function getTotalShares() external view returns (uint256) {
        return _totalShares;
    }

    function getTotalPooledEther() external view returns (uint256) {
        return getPooledEthByShares(_totalShares);
    }

    function transferShares(address recipient, uint256 sharesAmount) external returns (uint256) {
        _transferShares(msg.sender, recipient, sharesAmount);
        uint256 amount = getPooledEthByShares(sharesAmount);
        emit Transfer(msg.sender, recipient, amount);
        return amount;
    }

    function _amountForShares(uint256 shares) internal view override returns (uint256) {
        return getPooledEthByShares(shares);
    }

    function _sharesForAmount(uint256 amount) internal view override returns (uint256) {
        return getSharesByPooledEth(amount);
    }
}

/// Lido's wstETH: holds stETH shares; one wstETH is one share.
contract LocalWstETH is SimpleERC20 {
    LocalStETH public stETH;

    constructor(LocalStETH stETH_) SimpleERC20("Wrapped liquid staked Ether 2.0", "wstETH") {
        stETH = stETH_;
    }

    function wrap(uint256 stETHAmount) external returns (uint256) {
        require(stETHAmount > 0, "wstETH: can't wrap zero stETH");
        uint256 wstETHAmount = stETH.getSharesByPooledEth(stETHAmount);
        _mint(msg.sender, wstETHAmount);
        stETH.transferFrom(msg.sender, address(this), stETHAmount);
        return wstETHAmount;
    }

    function unwrap(uint256 wstETHAmount) external returns (uint256) {
        require(wstETHAmount > 0, "wstETH: zero amount unwrap not allowed");
        uint256 stETHAmount = stETH.getPooledEthByShares(wstETHAmount);
        _burn(msg.sender, wstETHAmount);
        stETH.transferShares(msg.sender, wstETHAmount);
        return stETHAmount;
    }

    /// ETH sent here is staked and wrapped in one step, as on mainnet.
    receive() external payable {
        uint256 shares = stETH.submit{value: msg.value}(address(0));
        _mint(msg.sender, shares);
    }

    function getWstETHByStETH(uint256 stETHAmount) external view returns (uint256) {
        return stETH.getSharesByPooledEth(stETHAmount);
    }

    function getStETHByWstETH(uint256 wstETHAmount) external view returns (uint256) {
        return stETH.getPooledEthByShares(wstETHAmount);
    }

    function stEthPerToken() external view returns (uint256) {
        return stETH.getPooledEthByShares(1 ether);
    }

    function tokensPerStEth() external view returns (uint256) {
        return stETH.getSharesByPooledEth(1 ether);
    }
}

/// ether.fi's LiquidityPool: ETH in through deposit(), eETH shares out; the share price lives here.
contract LocalEtherFiLiquidityPool {
    address public owner;
    LocalEETH public eETH;
    uint256 public amountPerShare;             // 1e18 = one ETH per share

    event Deposit(address indexed sender, uint256 amount, uint256 shares, address referral);
    event AmountPerShareSet(uint256 amountPerShare);

    constructor(uint256 initialAmountPerShare) {
        require(initialAmountPerShare > 0, "ZERO_RATE");
        owner = msg.sender;
        amountPerShare = initialAmountPerShare;
    }

    function setEETH(LocalEETH eETH_) external {
        require(msg.sender == owner, "NOT_OWNER");
        require(address(eETH) == address(0), "ALREADY_SET");
        eETH = eETH_;
    }

    /// Stand-in for ether.fi's oracle rebase: the share price the protocol's rewards would produce.
    function setAmountPerShare(uint256 rate) external {
        require(msg.sender == owner, "NOT_OWNER");
        require(rate > 0, "ZERO_RATE");
        amountPerShare = rate;
        emit AmountPerShareSet(rate);
    }

    function deposit() external payable returns (uint256) {
        return _deposit(address(0));
    }

    function deposit(address referral) external payable returns (uint256) {
        return _deposit(referral);
    }

    function _deposit(address referral) internal returns (uint256) {
        require(msg.value != 0, "ZERO_DEPOSIT");
        uint256 shares = sharesForAmount(msg.value);
        eETH.mintShares(msg.sender, shares);
        emit Deposit(msg.sender, msg.value, shares, referral);
        return shares;
    }

    function amountForShare(uint256 share) public view returns (uint256) {
        return share * amountPerShare / 1 ether;
    }

    function sharesForAmount(uint256 amount) public view returns (uint256) {
        return amount * 1 ether / amountPerShare;
    }

    function getTotalPooledEther() external view returns (uint256) {
        return amountForShare(eETH.totalShares());
    }
}

/// ether.fi's eETH: rebasing balances = shares x the LiquidityPool's amount per share.
contract LocalEETH is SharesToken {
    LocalEtherFiLiquidityPool public liquidityPool;

    constructor(LocalEtherFiLiquidityPool pool) SharesToken("ether.fi ETH", "eETH") {
        liquidityPool = pool;
    }

    function mintShares(address user, uint256 share) external {
        require(msg.sender == address(liquidityPool), "Only pool contract function");
        _mintShares(user, share);
    }

    function shares(address user) external view returns (uint256) {
        return _shares[user];
    }

    function totalShares() external view returns (uint256) {
        return _totalShares;
    }

    function _amountForShares(uint256 share) internal view override returns (uint256) {
        return liquidityPool.amountForShare(share);
    }

    function _sharesForAmount(uint256 amount) internal view override returns (uint256) {
        return liquidityPool.sharesForAmount(amount);
    }
}

/// ether.fi's weETH: holds eETH shares; one weETH is one share.
contract LocalWeETH is SimpleERC20 {
    LocalEETH public eETH;
    LocalEtherFiLiquidityPool public liquidityPool;

    constructor(LocalEETH eETH_, LocalEtherFiLiquidityPool pool) SimpleERC20("Wrapped eETH", "weETH") {
        eETH = eETH_;
        liquidityPool = pool;
    }

    function wrap(uint256 eETHAmount) external returns (uint256) {
        require(eETHAmount > 0, "weETH: can't wrap zero eETH");
        uint256 weEthAmount = liquidityPool.sharesForAmount(eETHAmount);
        _mint(msg.sender, weEthAmount);
        eETH.transferFrom(msg.sender, address(this), eETHAmount);
        return weEthAmount;
    }

    function unwrap(uint256 weETHAmount) external returns (uint256) {
        require(weETHAmount > 0, "Cannot unwrap a zero amount");
        uint256 eETHAmount = liquidityPool.amountForShare(weETHAmount);
        _burn(msg.sender, weETHAmount);
        eETH.transfer(msg.sender, eETHAmount);
        return eETHAmount;
    }

    function getWeETHByeETH(uint256 eETHAmount) external view returns (uint256) {
        return liquidityPool.sharesForAmount(eETHAmount);
    }

    function getEETHByWeETH(uint256 weETHAmount) external view returns (uint256) {
        return liquidityPool.amountForShare(weETHAmount);
    }

    function getRate() external view returns (uint256) {
        return liquidityPool.amountForShare(1 ether);
    }
}
