"""Emergency-stop benchmark with on-chain legs and a pending transaction (run by hand):

    python tests/perf/bench_estop_chain.py [--repeat 10] [--orders 30] [--hung-timeout 1] [--block-ms 200]

A live usdt_market_neutral session (its entry really run: Uniswap swap, AAVE e-mode, the Morpho
flash-loan loop, USDT deposits to the CEXs, perp shorts) on the loopback exchange emulator + the
local DeFi stack (real AAVE v3 / Uniswap v3 / Morpho Blue bytecode on anvil). Each round: anvil stops
auto-mining (blocks every ``--block-ms`` from then on, like a real chain), the wallet broadcasts a
transaction that stays pending, OKX hangs, ``--orders`` resting orders are spread over the venues,
and the emergency stop is pressed (``service.emergency_stop``); then the offered cancel of the pending
transaction is accepted (``service.cancel_pending_transactions``).

Reported (median / p90 / max):
- press -> HALTED (trading state) and press -> wallet signing halted (the TxManager gate);
- press -> healthy venues acknowledged, press -> hung venue reported (its timeout);
- cancel accepted -> replacement final, and the blocks it took (the pending one never mined);
- cancel accepted -> its gas booked in the session (under the session lock, after the running tick).
Budgets: HALTED < 50 ms; healthy cancels < 500 ms; hung venue at its timeout; no transaction signed
after the press; the pending one replaced by a cancel within one block.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.domain.onchain_ports import TransactionError  # noqa: E402
from engine.services.live import CancelStatus  # noqa: E402
from tests.integration.chain.defi import SEPOLIA, LocalStack  # noqa: E402
from tests.integration.chain.live import LoopbackTransfers, align_stack, onchain_service  # noqa: E402
from tests.integration.emulator import ExchangeEmulator, store_test_keys  # noqa: E402
from tests.integration.live_support import open_orders, place_resting, request, wait_until  # noqa: E402
from tests.integration.memory_keyring import MemoryKeyring  # noqa: E402
from venues.credentials import CredentialStore  # noqa: E402
from venues.onchain import abi  # noqa: E402
from venues.onchain.devstack.admin import StackAdmin  # noqa: E402
from venues.onchain.devstack.anvil import Anvil  # noqa: E402
from venues.onchain.devstack.deploy import compile_local_contracts, deploy_stack  # noqa: E402
from venues.onchain.devstack.rpc import DevChain  # noqa: E402


def stats(values: list[float], unit: str = "ms") -> str:
    p90 = sorted(values)[max(0, int(round(0.9 * len(values))) - 1)]
    return f"median {statistics.median(values):8.2f} {unit}   p90 {p90:8.2f} {unit}   max {max(values):8.2f} {unit}"


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--orders", type=int, default=30)
    ap.add_argument("--hung-timeout", type=float, default=1.0)
    ap.add_argument("--block-ms", type=float, default=200.0)
    args = ap.parse_args()
    node = Anvil(SEPOLIA).start()
    chain = DevChain(node.url)
    emulator = ExchangeEmulator()
    await emulator.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-estop-chain-"))
    try:
        stack = deploy_stack(node.url, compiled=compile_local_contracts())
        defi = LocalStack(node, stack, chain, StackAdmin(stack, chain))
        align_stack(defi, "usdt_market_neutral", tmp / "cache")
        defi.admin.fund(stack.wallet, usdt=Decimal(30_000))
        service = onchain_service(emulator, store_test_keys(CredentialStore(MemoryKeyring())), defi,
                                  tmp / "journal", tmp / "cache", LoopbackTransfers(defi, emulator))
        rid = await service.start(request("usdt_market_neutral", capital=20_000.0, tick_seconds=1.0,
                                          cancel_timeout_seconds=args.hung_timeout, data_timeout_seconds=5.0))
        s = service.session(rid)
        await wait_until(lambda: s.ticks >= 2 and s.trades > 0, timeout=120, what="the live entry")
        print(f"live usdt_market_neutral on emulator + local DeFi stack; entry: "
              f"{', '.join(r.op for r in s.router.progress.steps)}")
        ex = s.onchain.ex
        weth = ex.aave.token("WETH")
        emulator.set_faults("okx", hang=True)
        halted, signing, healthy, hung, cancel_ms, cancel_blocks, accepted_ms = [], [], [], [], [], [], []
        for k in range(args.repeat):
            service.reset(rid)
            place_resting(emulator, args.orders)
            chain.rpc("evm_setAutomine", False)
            nonce = await ex.tm.submit(ex.ctx.call(weth, abi.WETH9, "deposit", [], value=10**12 + k,
                                                   label="benchmark pending wrap"))
            original = ex.tm.ledger.by_nonce(ex.tm.chain_id, ex.tm.address, nonce)[0].tx_hash
            t0 = time.perf_counter()
            handle = service.emergency_stop("benchmark press")
            halted.append((s.state.history[-1].monotonic - t0) * 1000.0)
            signing.append(s.chain_estop.halted_ms + (s.state.history[-1].monotonic - t0) * 1000.0)
            try:
                await ex.tm.send(ex.ctx.call(weth, abi.WETH9, "deposit", [], value=1, label="after the press"))
                raise AssertionError("a transaction was signed after the press")
            except TransactionError:
                pass
            stop = False

            def cancel_sent(n: int = nonce) -> bool:
                # recorded in the ledger before it is broadcast: wait until the node has it
                return any(r.kind == "cancel" and chain.rpc("eth_getTransactionByHash", r.tx_hash) is not None
                           for r in ex.tm.ledger.by_nonce(ex.tm.chain_id, ex.tm.address, n))

            async def miner() -> None:
                # The original stays unmined (stuck on its fee, as it were) until its replacement is in
                # the mempool; from then on a block every --block-ms.
                while not stop and not cancel_sent():
                    await asyncio.sleep(0.002)
                while not stop:
                    await asyncio.sleep(args.block_ms / 1000.0)
                    await asyncio.to_thread(chain.mine)
            mining = asyncio.ensure_future(miner())
            head = int(chain.rpc("eth_blockNumber"), 16)
            c0 = time.perf_counter()
            results = await service.cancel_pending_transactions(rid, timeout_s=30)
            accepted_ms.append((time.perf_counter() - c0) * 1000.0)
            report = (await handle.done)[rid]
            stop = True
            await mining
            chain.rpc("evm_setAutomine", True)
            assert [r.outcome for r in results] == ["cancelled"], results
            cancel_ms.append(results[0].elapsed_ms)
            assert chain.rpc("eth_getTransactionReceipt", original) is None
            included = int(chain.rpc("eth_getTransactionReceipt", results[0].tx_hash)["blockNumber"], 16)
            cancel_blocks.append(float(included - head))
            v = report.venues
            assert v["binance"].status is v["bybit"].status is CancelStatus.DONE
            assert open_orders(emulator)["binance"] == 0 and open_orders(emulator)["bybit"] == 0
            healthy.append(max(v["binance"].elapsed_ms, v["bybit"].elapsed_ms))
            hung.append(v["okx"].elapsed_ms)
            emulator.venues["okx"].orders.clear()
        print(f"{args.repeat} presses, {args.orders} resting orders each, OKX hung (timeout {args.hung_timeout:g} s), "
              f"one wallet transaction pending, blocks every {args.block_ms:g} ms once its replacement is sent")
        print(f"  press -> HALTED                          {stats(halted)}")
        print(f"  press -> wallet signing halted            {stats(signing)}")
        print(f"  press -> healthy venues acknowledged     {stats(healthy)}")
        print(f"  press -> hung venue reported             {stats(hung)}")
        print(f"  cancel accepted -> replacement final     {stats(cancel_ms)}")
        print(f"  cancel accepted -> booked in the session {stats(accepted_ms)}  (waits for the tick, which waits "
              "for the hung venue's position read)")
        print(f"  blocks until the replacement was mined   {stats(cancel_blocks, 'blk')}")
        await service.close()
    finally:
        await emulator.stop()
        chain.close()
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
