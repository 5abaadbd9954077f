"""On-chain benchmark (run by hand, not part of pass/fail):

    python tests/perf/bench_onchain.py [--repeat 3]

Starts anvil, compiles (cached) and deploys the local DeFi stack ``--repeat`` times on fresh chains
and reports compile and deployment time and transaction count; then runs the adapters' operations
once through the TxManager (simulate, estimate, sign with a keyring key, send, confirm) and reports
the gas each used and the wall time from call to final result.

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
        rows = asyncio.run(operations(anvil.url, stack))
    finally:
        anvil.stop()
    print(f"\n{'operation':<62}{'gas used':>10}{'wall ms':>10}")
    for name, gas, seconds in rows:
        print(f"{name:<62}{gas:>10}{seconds * 1000:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
