"""Write readiness of the wallet for the mode's next on-chain program (a check-venues check).

Reading is not enough to go live: the wallet must also be able to sign what comes next. Each check
here reads the chain only and returns a ``Verdict`` (OK / WARN / FAIL, a message and a hint):

- ``fee_cap``: the next block's base fee plus the tip against ``max_fee_per_gas_gwei`` (above it the
  TxManager signs nothing);
- ``executor``: the wallet's LeverageExecutor (atomic loops): deployed, the shipped code (its runtime
  code hash), owned by the wallet, on the configured Pool, Morpho, WETH and router;
- ``emode``: the AAVE e-mode category the loop needs;
- ``allowances``: what the next program pulls, against what the wallet has allowed: with no debt the
  next program is the entry (credit delegation of the flash amount to the executor, sized by the
  engine's maths from the collateral there is), with debt it is an exit (the executor may pull the
  aTokens: all of them for a full exit).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.domain.venue_ports import VenueError
from engine.math.leverage import flash_loan_for_target_ltv
from venues.onchain import abi
from venues.onchain.executor_code import EXPECTED_RUNTIME_CODE_HASH, identity_problems, read_identity
from venues.onchain.reader import ChainReader
from venues.onchain.tx import fees as fee_math
from venues.onchain.tx.settings import TxSettings, gwei

FEE_HEADROOM = 2  # WARN when a doubling of the base fee (a few full blocks) would reach the cap


@dataclass(frozen=True)
class Verdict:
    level: str  # OK | WARN | FAIL
    message: str
    hint: str = ""


def _deploy_hint(environment: str) -> str:
    return (f"Deploy the shipped executor for this wallet: `python main.py executor deploy --env {environment}` "
            "(it stores executor_address in the keyring).")


async def fee_cap(reader: ChainReader, settings: TxSettings) -> Verdict:
    w3 = reader.w3
    history = await reader.call("eth_feeHistory", lambda: w3.eth.fee_history(1, "latest", []))
    try:
        tip = await reader.call("eth_maxPriorityFeePerGas", lambda: w3.eth.max_priority_fee)
    except VenueError:
        tip = settings.max_priority_fee_wei  # a node without the method: the TxManager offers the ceiling
    next_base = int(history["baseFeePerGas"][-1])
    try:
        quote = fee_math.quote(next_base, int(tip), settings)
    except fee_math.FeeCapExceeded as exc:
        return Verdict("FAIL", str(exc).split(": nothing was signed")[0] + ": nothing would be signed now",
                       "Wait for lower fees or raise max_fee_per_gas_gwei in configs/venues/alchemy.yaml.")
    needed = quote.base_fee_wei + quote.priority_fee_wei
    text = (f"next block needs {gwei(needed)} (base {gwei(quote.base_fee_wei)} + tip "
            f"{gwei(quote.priority_fee_wei)}), cap {gwei(quote.cap_wei)}")
    if FEE_HEADROOM * quote.base_fee_wei + quote.priority_fee_wei > quote.cap_wei:
        return Verdict("WARN", f"{text}: a doubling of the base fee would reach the cap",
                       "Transactions may be refused if fees keep rising; consider a higher cap.")
    return Verdict("OK", text)


@dataclass(frozen=True)
class ExecutorExpectation:
    """The configuration the wallet's executor must carry."""

    wallet: str
    pool: str
    morpho: str | None
    weth: str
    swap_router: str


async def executor(reader: ChainReader, address: str | None, expected: ExecutorExpectation,
                   environment: str) -> Verdict:
    if not address:
        return Verdict("FAIL", "no executor_address stored: atomic leverage needs the wallet's LeverageExecutor",
                       _deploy_hint(environment))
    found = await read_identity(reader.w3, reader.checksum(address), reader.call)
    problems = identity_problems(found, owner=expected.wallet, pool=expected.pool, morpho=expected.morpho,
                                 weth=expected.weth, swap_router=expected.swap_router)
    if problems:
        return Verdict("FAIL", f"executor {address}: " + "; ".join(problems) + ": nothing will be signed for it",
                       _deploy_hint(environment))
    return Verdict("OK", f"LeverageExecutor {found.address}: the shipped code (hash {EXPECTED_RUNTIME_CODE_HASH[:10]}…), "
                         "owned by the wallet, on the configured Pool and flash lender")


def emode(account: Any, category_id: int, label: str) -> Verdict:
    if account.emode_category == category_id:
        return Verdict("OK", f"e-mode {category_id} ({label}) is set")
    if account.total_debt_base > 0:
        return Verdict("FAIL", f"the account borrows outside e-mode {category_id} (it is in {account.emode_category}): "
                               "the loop's LTV is above the standard limits",
                       "Deleverage the position before switching (setUserEMode refuses a change the debt cannot meet).")
    return Verdict("WARN", f"e-mode {category_id} ({label}) is not set yet (category {account.emode_category})",
                   f"The entry must call setUserEMode({category_id}) first (the AAVE adapter's set_user_emode).")


@dataclass(frozen=True)
class AllowanceFacts:
    """The position and allowances the next program depends on (token units)."""

    lst: str
    supplied: Decimal  # aToken balance of the LST
    wallet_lst: Decimal  # LST in the wallet, to supply next
    debt: Decimal  # WETH debt
    price: Decimal  # ETH per LST at the AAVE oracle
    lst_allowance_to_pool: Decimal
    delegation_to_executor: Decimal
    atoken_allowance_to_executor: Decimal


async def allowance_facts(reader: ChainReader, wallet: str, executor_address: str, contracts: dict,
                          tokens: dict, oracle: str, lst: str) -> AllowanceFacts:
    c = reader.checksum
    a_token = reader.w3.eth.contract(address=c(contracts[f"a_{lst.lower()}"]), abi=abi.ERC20)
    debt_token = reader.w3.eth.contract(address=c(contracts["variable_debt_weth"]), abi=abi.CREDIT_DELEGATION)
    lst_token = reader.w3.eth.contract(address=c(tokens[lst]), abi=abi.ERC20)
    oracle_contract = reader.w3.eth.contract(address=c(oracle), abi=abi.AAVE_ORACLE)
    user, spender, pool = c(wallet), c(executor_address), c(contracts["pool"])
    calls = {
        "supplied": a_token.functions.balanceOf(user).call,
        "wallet_lst": lst_token.functions.balanceOf(user).call,
        "debt": debt_token.functions.balanceOf(user).call,
        "lst_allowance": lst_token.functions.allowance(user, pool).call,
        "delegation": debt_token.functions.borrowAllowance(user, spender).call,
        "atoken_allowance": a_token.functions.allowance(user, spender).call,
        "p_lst": oracle_contract.functions.getAssetPrice(c(tokens[lst])).call,
        "p_weth": oracle_contract.functions.getAssetPrice(c(tokens["WETH"])).call,
    }
    values = dict(zip(calls, await asyncio.gather(*(reader.call(name, fn) for name, fn in calls.items())),
                      strict=True))
    wei = Decimal(10) ** 18
    return AllowanceFacts(
        lst, Decimal(values["supplied"]) / wei, Decimal(values["wallet_lst"]) / wei, Decimal(values["debt"]) / wei,
        Decimal(values["p_lst"]) / Decimal(values["p_weth"]), Decimal(values["lst_allowance"]) / wei,
        Decimal(values["delegation"]) / wei, Decimal(values["atoken_allowance"]) / wei,
    )


def allowances(facts: AllowanceFacts, target_ltv: float, flash_fee: float) -> Verdict:
    """Whether the next program's pulls are already allowed (WARN: the program approves first)."""
    lst = facts.lst
    if facts.debt > 0:
        need, have = facts.supplied, facts.atoken_allowance_to_executor
        text = (f"next program: an exit; a full exit lets the executor pull {need:.6f} a{lst}, allowed "
                f"{have:.6f}")
        if have >= need:
            return Verdict("OK", text)
        return Verdict("WARN", text, "The exit program approves exactly what it withdraws first (one more "
                                     "transaction, shown on its ticket).")
    collateral = facts.supplied + facts.wallet_lst
    if collateral <= 0:
        return Verdict("WARN", f"next program: an entry, but the wallet has no {lst} supplied or to supply",
                       f"Stake ETH into {lst} (or hold it) before entering the loop.")
    flash = Decimal(repr(flash_loan_for_target_ltv(float(collateral * facts.price), 0.0, target_ltv,
                                                   fee_rate=flash_fee)))
    parts = [f"next program: an entry to LTV {target_ltv:g} borrowing about {flash:.6f} WETH; credit delegation "
             f"to the executor {facts.delegation_to_executor:.6f} WETH"]
    short = facts.delegation_to_executor < flash
    if facts.wallet_lst > 0:
        parts.append(f"{lst} allowance to the Pool {facts.lst_allowance_to_pool:.6f} for {facts.wallet_lst:.6f} to supply")
        short = short or facts.lst_allowance_to_pool < facts.wallet_lst
    if short:
        return Verdict("WARN", "; ".join(parts),
                       "The entry program delegates and approves exactly what it needs first (more "
                       "transactions, shown on its ticket).")
    return Verdict("OK", "; ".join(parts))
