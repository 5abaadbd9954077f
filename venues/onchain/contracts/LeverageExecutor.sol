// SPDX-License-Identifier: MIT
// LeverageExecutor: the Basis Workstation's own contract for entering and leaving the LST / WETH loop
// on AAVE v3 in ONE transaction each.
//
//   enter: flash WETH (Morpho Blue, fee 0; or AAVE flashLoanSimple) -> WETH + the owner's equity turned
//          into the LST (staked at the protocol: ETH sent to wstETH, which stakes and wraps; ether.fi
//          deposit + weETH wrap; or bought on Uniswap v3) -> supplied to AAVE on the owner's behalf -> WETH borrowed
//          on the owner's behalf (credit delegation: VariableDebtToken.approveDelegation) -> the
//          flash loan repaid.
//   exit:  flash WETH -> the owner's WETH debt repaid -> the owner's aTokens pulled (the owner's
//          aToken approval) and withdrawn -> the LST sold on Uniswap v3 -> the flash loan repaid ->
//          what is left repays more debt while there is debt, then goes back to the owner.
//
// Safety: only the owner (the wallet it was deployed for) can start an operation; a flash callback
// is accepted only from the lender the running operation asked, once, while that operation runs (an
// AAVE callback also has to name this contract as its initiator); swaps carry a minimum output and
// staking a minimum collateral; after every operation the owner's AAVE account must sit inside the
// health-factor and LTV bounds the caller asked for, or everything reverts; every token and ETH
// left in the contract goes back to the owner before the transaction ends (but rebasing-token dust
// below one share, which no transfer can move).
//
// No immutables: the configuration lives in storage so the runtime code (and its hash, which the
// workstation verifies before it signs anything for this contract) is the same for every deployment.
pragma solidity ^0.8.20;

interface IERC20Min {
    function balanceOf(address account) external view returns (uint256);
    function approve(address spender, uint256 amount) external returns (bool);
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

interface IWETH9 {
    function deposit() external payable;
    function withdraw(uint256 wad) external;
}

/// AAVE v3 Pool (aave-v3-core contracts/interfaces/IPool.sol); getReserveData in the v3.0 layout,
/// which later versions keep for this getter.
interface IAavePool {
    struct ReserveData {
        uint256 configuration;
        uint128 liquidityIndex;
        uint128 currentLiquidityRate;
        uint128 variableBorrowIndex;
        uint128 currentVariableBorrowRate;
        uint128 currentStableBorrowRate;
        uint40 lastUpdateTimestamp;
        uint16 id;
        address aTokenAddress;
        address stableDebtTokenAddress;
        address variableDebtTokenAddress;
        address interestRateStrategyAddress;
        uint128 accruedToTreasury;
        uint128 unbacked;
        uint128 isolationModeTotalDebt;
    }

    function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode) external;
    function borrow(address asset, uint256 amount, uint256 interestRateMode, uint16 referralCode, address onBehalfOf)
        external;
    function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf)
        external
        returns (uint256);
    function withdraw(address asset, uint256 amount, address to) external returns (uint256);
    function flashLoanSimple(address receiverAddress, address asset, uint256 amount, bytes calldata params, uint16 referralCode)
        external;
    function getUserAccountData(address user)
        external
        view
        returns (uint256, uint256, uint256, uint256, uint256, uint256);
    function getReserveData(address asset) external view returns (ReserveData memory);
}

interface IMorphoFlash {
    function flashLoan(address token, uint256 assets, bytes calldata data) external;
}

/// Uniswap SwapRouter02 (swap-router-contracts IV3SwapRouter): no deadline field.
interface ISwapRouter02 {
    struct ExactInputSingleParams {
        address tokenIn;
        address tokenOut;
        uint24 fee;
        address recipient;
        uint256 amountIn;
        uint256 amountOutMinimum;
        uint160 sqrtPriceLimitX96;
    }

    function exactInputSingle(ExactInputSingleParams calldata params) external payable returns (uint256 amountOut);
}

interface IEtherFiLiquidityPool {
    function deposit() external payable returns (uint256);
}

/// wstETH.wrap(stETH) and weETH.wrap(eETH) share this signature.
interface ILstWrapper {
    function wrap(uint256 amount) external returns (uint256);
}

contract LeverageExecutor {
    // ------------------------------------------------------------------------------------ types
    enum Lender {
        MORPHO,
        AAVE
    }

    /// How WETH becomes the LST on entry.
    enum Route {
        SWAP, //    Uniswap v3 exactInputSingle WETH -> LST
        LIDO, //    ETH -> wstETH (stakes with Lido and wraps in one step)
        ETHERFI //  ETH -> LiquidityPool.deposit -> weETH.wrap
    }

    /// Where the owner's AAVE account must be when the operation ends (all 18-decimal fixed point).
    /// LTV here is debt / collateral in the Pool's base currency (not the account's maximum LTV).
    struct Bounds {
        uint256 minHealthFactor;
        uint256 maxHealthFactor;
        uint256 minLtv;
        uint256 maxLtv;
    }

    struct Entry {
        Lender lender;
        Route route;
        address lst; //              collateral supplied for the owner (wstETH, weETH)
        address stakingPool; //      ETHERFI: the LiquidityPool; LIDO, SWAP: unused
        address rebasingToken; //    ETHERFI: eETH; LIDO, SWAP: unused
        uint24 poolFee; //           SWAP: Uniswap fee tier of the WETH/LST pool
        uint256 equity; //           WETH pulled from the owner (added to any ETH sent with the call)
        uint256 flashAmount; //      WETH flash-borrowed and then borrowed for the owner
        uint256 minCollateralOut; // floor on the LST obtained for equity + flash - premium
        Bounds bounds;
    }

    struct Exit {
        Lender lender;
        address lst;
        uint24 poolFee; //           Uniswap fee tier of the LST/WETH pool
        uint256 repayAmount; //      owner's WETH debt repaid with the flash loan; max = all of it
        uint256 withdrawAmount; //   owner's LST collateral withdrawn and sold; max = all of it
        uint256 minWethOut; //       floor of the LST -> WETH swap
        Bounds bounds;
    }

    // ----------------------------------------------------------------------------------- errors
    error NotOwner();
    error Busy();
    error UnexpectedCallback();
    error UnexpectedEther();
    error NoFlashLender();
    error NothingToDo();
    error InsufficientCollateralOut(uint256 received, uint256 minimum);
    error CannotRepayFlash(uint256 available, uint256 owed);
    error HealthFactorOutOfBounds(uint256 healthFactor, uint256 minimum, uint256 maximum);
    error LtvOutOfBounds(uint256 ltv, uint256 minimum, uint256 maximum);
    error TokenCallFailed(address token);
    error EtherTransferFailed();

    // ----------------------------------------------------------------------------------- events
    event Entered(
        Lender lender, uint256 flashAmount, uint256 premium, uint256 collateralSupplied, uint256 borrowed
    );
    event Exited(
        Lender lender,
        uint256 flashAmount,
        uint256 premium,
        uint256 debtRepaid,
        uint256 collateralWithdrawn,
        uint256 wethOut,
        uint256 surplus
    );

    // ------------------------------------------------------------------------------------ state
    uint256 private constant VARIABLE_RATE = 2;
    uint8 private constant IDLE = 0;
    uint8 private constant AWAITING_CALLBACK = 1;
    uint8 private constant IN_CALLBACK = 2;
    uint8 private constant ENTRY = 1;
    uint8 private constant EXIT = 2;

    address public owner;
    address public pool;
    address public morpho; //     zero where the chain has no Morpho Blue: AAVE flash loans only
    address public weth;
    address public swapRouter;

    uint8 private _phase;
    Lender private _lender;

    constructor(address owner_, address pool_, address morpho_, address weth_, address swapRouter_) {
        owner = owner_;
        pool = pool_;
        morpho = morpho_;
        weth = weth_;
        swapRouter = swapRouter_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    /// ETH arrives only from WETH.withdraw during an entry (staking routes).
    receive() external payable {
        if (_phase == IDLE || msg.sender != weth) revert UnexpectedEther();
    }

    // --------------------------------------------------------------------------------- entry points
    function enter(Entry calldata p) external payable onlyOwner {
        if (p.flashAmount == 0) revert NothingToDo();
        if (p.equity != 0) _pull(weth, owner, p.equity);
        if (msg.value != 0) IWETH9(weth).deposit{value: msg.value}();
        _flash(p.lender, p.flashAmount, abi.encode(ENTRY, abi.encode(p, p.equity + msg.value)));
        _checkBounds(p.bounds);
        _sweep(p.lst, p.rebasingToken);
    }

    function exit(Exit calldata p) external onlyOwner {
        IAavePool.ReserveData memory wethReserve = IAavePool(pool).getReserveData(weth);
        uint256 flashAmount = p.repayAmount == type(uint256).max
            ? IERC20Min(wethReserve.variableDebtTokenAddress).balanceOf(owner)
            : p.repayAmount;
        if (flashAmount == 0) revert NothingToDo();
        _flash(p.lender, flashAmount, abi.encode(EXIT, abi.encode(p)));
        // What the sale brought beyond the flash loan repays more debt, then goes back to the owner.
        uint256 surplus = IERC20Min(weth).balanceOf(address(this));
        uint256 debt = IERC20Min(wethReserve.variableDebtTokenAddress).balanceOf(owner);
        if (surplus != 0 && debt != 0) _repayFor(surplus < debt ? surplus : debt);
        _checkBounds(p.bounds);
        _sweep(p.lst, address(0));
    }

    /// Anything sent here by mistake goes to the owner (operations already leave nothing behind).
    function sweep(address token) external onlyOwner {
        if (_phase != IDLE) revert Busy();
        _sweep(token, address(0));
    }

    // ----------------------------------------------------------------------------------- callbacks
    function onMorphoFlashLoan(uint256 assets, bytes calldata data) external {
        if (msg.sender != morpho || _phase != AWAITING_CALLBACK || _lender != Lender.MORPHO) {
            revert UnexpectedCallback();
        }
        _phase = IN_CALLBACK;
        _run(assets, 0, data);
        _approve(weth, morpho, assets);
    }

    function executeOperation(address asset, uint256 amount, uint256 premium, address initiator, bytes calldata data)
        external
        returns (bool)
    {
        if (
            msg.sender != pool || initiator != address(this) || asset != weth || _phase != AWAITING_CALLBACK
                || _lender != Lender.AAVE
        ) revert UnexpectedCallback();
        _phase = IN_CALLBACK;
        _run(amount, premium, data);
        _approve(weth, pool, amount + premium);
        return true;
    }

    // ----------------------------------------------------------------------------------- internals
    function _flash(Lender lender, uint256 amount, bytes memory data) internal {
        if (_phase != IDLE) revert Busy();
        _phase = AWAITING_CALLBACK;
        _lender = lender;
        if (lender == Lender.MORPHO) {
            if (morpho == address(0)) revert NoFlashLender();
            IMorphoFlash(morpho).flashLoan(weth, amount, data);
        } else {
            IAavePool(pool).flashLoanSimple(address(this), weth, amount, data, 0);
        }
        if (_phase != IN_CALLBACK) revert UnexpectedCallback(); // the lender never called back
        _phase = IDLE;
    }

    function _run(uint256 amount, uint256 premium, bytes calldata data) internal {
        (uint8 kind, bytes memory body) = abi.decode(data, (uint8, bytes));
        if (kind == ENTRY) {
            (Entry memory p, uint256 equity) = abi.decode(body, (Entry, uint256));
            _enter(p, equity, amount, premium);
        } else {
            _exit(abi.decode(body, (Exit)), amount, premium);
        }
    }

    /// In: equity + flash WETH. Out: the LST for equity + flash - premium supplied for the owner;
    /// flash WETH borrowed for the owner; flash + premium left here for the lender to pull.
    function _enter(Entry memory p, uint256 equity, uint256 flash, uint256 premium) internal {
        uint256 collateral = _acquire(p, equity + flash - premium);
        if (collateral < p.minCollateralOut) revert InsufficientCollateralOut(collateral, p.minCollateralOut);
        _approve(p.lst, pool, collateral);
        IAavePool(pool).supply(p.lst, collateral, owner, 0);
        IAavePool(pool).borrow(weth, flash, VARIABLE_RATE, 0, owner);
        emit Entered(p.lender, flash, premium, collateral, flash);
    }

    function _acquire(Entry memory p, uint256 wethAmount) internal returns (uint256) {
        if (p.route == Route.SWAP) {
            return _swap(weth, p.lst, p.poolFee, wethAmount, p.minCollateralOut);
        }
        IWETH9(weth).withdraw(wethAmount);
        if (p.route == Route.LIDO) {
            // wstETH stakes ETH sent to it and mints the shares as wstETH in one step (Lido's WstETH
            // receive()), so no rebasing stETH passes through here.
            (bool ok,) = p.lst.call{value: wethAmount}("");
            if (!ok) revert EtherTransferFailed();
        } else {
            IEtherFiLiquidityPool(p.stakingPool).deposit{value: wethAmount}();
            // eETH balances are shares x rate rounded down, and so is every transfer: wrapping the whole
            // balance can leave one share behind, worth at most 2 wei, which no transfer can move.
            uint256 base = IERC20Min(p.rebasingToken).balanceOf(address(this));
            _approve(p.rebasingToken, p.lst, base);
            ILstWrapper(p.lst).wrap(base);
        }
        return IERC20Min(p.lst).balanceOf(address(this));
    }

    /// In: flash WETH. Out: the owner's debt repaid, the LST sold, flash + premium left for the lender.
    function _exit(Exit memory p, uint256 flash, uint256 premium) internal {
        uint256 repaid = _repayFor(flash);
        address aToken = IAavePool(pool).getReserveData(p.lst).aTokenAddress;
        uint256 amount = p.withdrawAmount == type(uint256).max ? IERC20Min(aToken).balanceOf(owner) : p.withdrawAmount;
        _pull(aToken, owner, amount);
        uint256 withdrawn = IAavePool(pool).withdraw(p.lst, type(uint256).max, address(this));
        uint256 wethOut = _swap(p.lst, weth, p.poolFee, withdrawn, p.minWethOut);
        uint256 owed = flash + premium;
        uint256 available = IERC20Min(weth).balanceOf(address(this));
        if (available < owed) revert CannotRepayFlash(available, owed);
        emit Exited(p.lender, flash, premium, repaid, withdrawn, wethOut, available - owed);
    }

    function _swap(address tokenIn, address tokenOut, uint24 fee, uint256 amountIn, uint256 minOut)
        internal
        returns (uint256)
    {
        _approve(tokenIn, swapRouter, amountIn);
        return ISwapRouter02(swapRouter).exactInputSingle(
            ISwapRouter02.ExactInputSingleParams(tokenIn, tokenOut, fee, address(this), amountIn, minOut, 0)
        );
    }

    function _repayFor(uint256 amount) internal returns (uint256 repaid) {
        _approve(weth, pool, amount);
        repaid = IAavePool(pool).repay(weth, amount, VARIABLE_RATE, owner);
        if (repaid != amount) _approve(weth, pool, 0);
    }

    function _checkBounds(Bounds memory b) internal view {
        (uint256 collateral, uint256 debt,,,, uint256 hf) = IAavePool(pool).getUserAccountData(owner);
        if (hf < b.minHealthFactor || hf > b.maxHealthFactor) {
            revert HealthFactorOutOfBounds(hf, b.minHealthFactor, b.maxHealthFactor);
        }
        uint256 ltv = collateral == 0 ? 0 : debt * 1e18 / collateral;
        if (ltv < b.minLtv || ltv > b.maxLtv) revert LtvOutOfBounds(ltv, b.minLtv, b.maxLtv);
    }

    /// Everything this contract holds goes back to the owner: WETH, the tokens of the operation, ETH.
    function _sweep(address token, address other) internal {
        _sweepToken(weth);
        if (token != address(0) && token != weth) _sweepToken(token);
        if (other != address(0) && other != weth && other != token) _sweepToken(other);
        uint256 eth = address(this).balance;
        if (eth != 0) {
            (bool ok,) = owner.call{value: eth}("");
            if (!ok) revert EtherTransferFailed();
        }
    }

    function _sweepToken(address token) internal {
        uint256 balance = IERC20Min(token).balanceOf(address(this));
        if (balance != 0) _tokenCall(token, abi.encodeCall(IERC20Min.transfer, (owner, balance)));
    }

    function _pull(address token, address from, uint256 amount) internal {
        _tokenCall(token, abi.encodeCall(IERC20Min.transferFrom, (from, address(this), amount)));
    }

    function _approve(address token, address spender, uint256 amount) internal {
        _tokenCall(token, abi.encodeCall(IERC20Min.approve, (spender, amount)));
    }

    /// A token call that must succeed and return true or nothing (tokens without a bool return).
    function _tokenCall(address token, bytes memory data) internal {
        (bool ok, bytes memory ret) = token.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret)) // the token's own revert reason, unchanged
            }
        }
        if (token.code.length == 0 || (ret.length != 0 && !abi.decode(ret, (bool)))) revert TokenCallFailed(token);
    }
}
