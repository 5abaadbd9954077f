"""On-chain benchmark (run by hand, not part of pass/fail):

    python tests/perf/bench_onchain.py [--repeat 3]

Starts anvil, compiles (cached) and deploys the local DeFi stack ``--repeat`` times on fresh chains
and reports compile and deployment time and transaction count; then runs the adapters' operations
once through the TxManager (simulate, estimate, sign with a keyring key, send, confirm) and reports
the gas each used and the wall time from call to final result; then the programs of the leveraged
flow (approve -> supply -> e-mode -> the executor's flash-loan entry to LTV 0.90 -> deleverage to
HF 1.03 after a 4 % fall of the LST -> full exit), with Morpho and with AAVE's flashLoanSimple, and
a three-iteration sequential loop: gas per program (every transaction in it) and the wall time of
its pre-sign ticket (one eth_simulateV1) and of the whole program.

Gas is the real bytecode's (AAVE v3 core 1.19.3, SwapRouter02, the project's LSTs) on anvil's
current hardfork; a cold slot costs more than a warm one, so first-time operations (the first
supply of a reserve, the first approval) are the expensive case, as on mainnet.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from decimal import Decimal as D
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.domain.onchain_ports import MAX  # noqa: E402
from engine.services.live.nonce_ledger import NonceLedger  # noqa: E402
from tests.integration.chain.defi import wallet_store  # noqa: E402
from venues.onchain.devstack.admin import StackAdmin  # noqa: E402
from venues.onchain.devstack.anvil import Anvil  # noqa: E402
from venues.onchain.devstack.deploy import compile_local_contracts, deploy_stack  # noqa: E402
from venues.onchain.devstack.overrides import LOCAL_TRANSACTIONS, local_venue_configs  # noqa: E402
from venues.onchain.execution import build_onchain_execution  # noqa: E402

SEPOLIA = 11155111


async def operations(url: str, stack) -> list[tuple[str, int, float]]:
    configs = local_venue_configs(stack, transactions={**LOCAL_TRANSACTIONS, "poll_interval_s": 0.02})
    with tempfile.TemporaryDirectory() as tmp:
        ledger = NonceLedger(Path(tmp) / "journal.sqlite3")
        ex = await build_onchain_execution(configs, "testnet", wallet_store(url), ledger)
        rows: list[tuple[str, int, float]] = []

        async def op(name: str, coro):
            started = time.perf_counter()
            result = await coro
            tx = getattr(result, "tx", result)
            rows.append((name, tx.gas_used, time.perf_counter() - started))
            return result

        try:
            await op("etherfi deposit (ETH -> eETH)", ex.etherfi.stake(D(20)))
            eeth = (await ex.etherfi.balances()).base
            await op("eETH approve + weETH wrap (wrap's gas)", ex.etherfi.wrap(eeth))
            weeth = (await ex.etherfi.balances()).wrapped
            await op("aave approve weETH (exact)", ex.aave.approve("weETH", weeth))
            await op("aave supply weETH", ex.aave.supply("weETH", weeth))
            await op("aave setUserEMode 1", ex.aave.set_user_emode(1))
            await op("aave borrow WETH (variable)", ex.aave.borrow("WETH", D(15)))
            StackAdmin(stack).advance(24 * 3600)
            await op("weth deposit (ETH -> WETH)", ex.weth.wrap(D("0.1")))
            allowance = await ex.aave.repay_max_allowance("WETH")
            await op("aave approve WETH (repay max)", ex.aave.approve("WETH", allowance))
            await op("aave repay max WETH", ex.aave.repay("WETH", MAX))
            await op("aave withdraw max weETH", ex.aave.withdraw("weETH", MAX))
            await op("weETH unwrap", ex.etherfi.unwrap(D(1)))
            await op("lido submit (ETH -> stETH)", ex.lido.stake(D(5)))
            steth = (await ex.lido.balances()).base
            await op("stETH approve + wstETH wrap (wrap's gas)", ex.lido.wrap(steth))
            await op("wstETH unwrap", ex.lido.unwrap(D(1)))
            await op("weth deposit 2", ex.weth.wrap(D(2)))
            await op("uniswap approve + exactInputSingle WETH->USDT (swap's gas)",
                     ex.uniswap.swap_exact_input("WETH", "USDT", D(1)))
            await op("uniswap approve + exactInputSingle wstETH->WETH (swap's gas)",
                     ex.uniswap.swap_exact_input("wstETH", "WETH", D(1)))
        finally:
            await ex.close()
            ledger.close()
        return rows


async def programs(url: str, stack) -> list[tuple[str, int, int, float, float]]:
    """(program, transactions, gas, ticket ms, total ms) for the leveraged flow and a sequential loop."""
    from engine.domain.onchain_ports import FlashLender, LeverageExitRequest
    from tests.integration.chain.leverage import HF_FLOOR, HF_TARGET, entry_request, supply_weeth
    from venues.onchain.devstack.rpc import DevChain
    from venues.onchain.sequential import SequentialLoop

    configs = local_venue_configs(stack, transactions={**LOCAL_TRANSACTIONS, "poll_interval_s": 0.02})
    chain = DevChain(url)
    admin = StackAdmin(stack, chain)
    rows: list[tuple[str, int, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for lender in (FlashLender.MORPHO, FlashLender.AAVE):
            snapshot = chain.snapshot()
            ledger = NonceLedger(Path(tmp) / f"journal-{lender.value}.sqlite3")
            ex = await build_onchain_execution(configs, "testnet", wallet_store(url, executor=stack.executor),
                                               ledger)
            try:
                started = time.perf_counter()
                block = int(chain.rpc("eth_blockNumber"), 16)
                await supply_weeth(ex, D(10))
                receipts = [chain.rpc("eth_getBlockReceipts", hex(b)) for b in range(block + 1,
                                                                                    int(chain.rpc("eth_blockNumber"), 16) + 1)]
                gas = sum(int(r["gasUsed"], 16) for block_receipts in receipts for r in block_receipts)
                rows.append(("stake + wrap + approve + supply weETH + e-mode", sum(map(len, receipts)), gas, 0.0,
                             (time.perf_counter() - started) * 1000))

                async def run(name: str, planner, ex=ex, lender=lender):
                    started = time.perf_counter()
                    plan = await planner
                    ticketed = time.perf_counter()
                    outcome = await ex.executor.execute(plan, hf_floor=HF_FLOOR)
                    rows.append((f"{name} ({lender.value})", len(outcome.results), outcome.gas_used,
                                 (ticketed - started) * 1000, (time.perf_counter() - started) * 1000))

                await run("flash-loan entry to LTV 0.90", ex.executor.plan_entry(entry_request(lender)))
                admin.set_feed("weETH", admin.feed("weETH") * D("0.96"))
                admin.set_pool_price("weETH", "WETH", admin.pool_price("weETH", "WETH") * D("0.96"))
                await run("deleverage to HF 1.03", ex.executor.plan_exit(
                    LeverageExitRequest("weETH", HF_TARGET, D("0.0005"), lender)))
                await run("full exit", ex.executor.plan_exit(LeverageExitRequest("weETH", None, D(0), lender)))
            finally:
                await ex.close()
                ledger.close()
                chain.rpc("evm_setAutomine", True)
                chain.revert(snapshot)
        snapshot = chain.snapshot()
        ledger = NonceLedger(Path(tmp) / "journal-sequential.sqlite3")
        ex = await build_onchain_execution(configs, "testnet", wallet_store(url), ledger)
        try:
            await ex.aave.set_user_emode(1)
            loop = SequentialLoop(ex.aave, ex.etherfi, ex.weth, target_ltv=D("0.8"), max_iterations=3,
                                  min_borrow_eth=D("0.05"))
            started = time.perf_counter()
            report = await loop.run(D(4), hf_floor=HF_FLOOR)
            elapsed = (time.perf_counter() - started) * 1000
            for it in report.iterations:
                rows.append((f"sequential loop iteration {it.iteration} (stake, wrap, supply, borrow)",
                             len(it.results), it.gas_used, 0.0, 0.0))
            rows.append(("sequential loop, 3 borrows, LTV 0.70", sum(len(i.results) for i in report.iterations),
                         report.gas_used, 0.0, elapsed))
        finally:
            await ex.close()
            ledger.close()
            chain.revert(snapshot)
    chain.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    compiled = compile_local_contracts()
    print(f"compile (solc-js, cached by source hash): {time.perf_counter() - started:.2f}s")
    deploys, counts = [], []
    stack = anvil = None
    for i in range(args.repeat):
        anvil = Anvil(SEPOLIA).start()
        stack = deploy_stack(anvil.url, compiled=compiled)
        deploys.append(stack.deploy_seconds)
        counts.append(stack.transactions)
        if i < args.repeat - 1:
            anvil.stop()
    print(f"deploy: {len(deploys)} fresh chains, {counts[0]} transactions each, median "
          f"{statistics.median(deploys):.2f}s (min {min(deploys):.2f}s, max {max(deploys):.2f}s)")
    assert anvil is not None and stack is not None
    try:
        program_rows = asyncio.run(programs(anvil.url, stack))
        rows = asyncio.run(operations(anvil.url, stack))
    finally:
        anvil.stop()
    print(f"\n{'operation':<62}{'gas used':>10}{'wall ms':>10}")
    for name, gas, seconds in rows:
        print(f"{name:<62}{gas:>10}{seconds * 1000:>10.0f}")
    print(f"\n{'program':<62}{'txs':>5}{'gas used':>11}{'ticket ms':>11}{'total ms':>10}")
    for name, txs, gas, ticket_ms, total_ms in program_rows:
        print(f"{name:<62}{txs:>5}{gas:>11,}{ticket_ms:>11.0f}{total_ms:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
