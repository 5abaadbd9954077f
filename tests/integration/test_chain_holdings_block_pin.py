"""One holdings reading of the wallet is one block: the head is read once and every balance, AAVE and
account read of that reading is pinned to it (``block_identifier``), so a block mined while the reads
are out cannot mix into it. Real anvil stack; the chain is moved right after the head was read."""
from __future__ import annotations

from decimal import Decimal

from tests.integration.chain.defi import WALLET
from venues.onchain.live_port import ChainInstructionExecutor


def executor(execution) -> ChainInstructionExecutor:
    return ChainInstructionExecutor(execution, chain="ethereum", emode_category=1, gas_reserve_eth=Decimal("0.01"))


async def test_every_read_of_a_holdings_reading_is_pinned_to_the_block_it_records(defi, execution):
    defi.admin.fund(WALLET, eth=Decimal(3), usdt=Decimal(100))
    port = executor(execution)
    provider = execution.ctx.w3.provider
    real = provider.make_request
    seen: list[tuple[str, tuple]] = []
    moved = {"done": False}

    async def spy(method, params):
        answer = await real(method, params)
        seen.append((method, tuple(params)))
        if method == "eth_blockNumber" and not moved["done"]:
            moved["done"] = True
            # A block lands while this reading's other reads are still to go out.
            # (transactions, mined: anvil_setBalance would rewrite the block's state in place)
            defi.admin.fund(WALLET, usdt=Decimal(900), weth=Decimal(2))
        return answer

    provider.make_request = spy
    provider._request_func_cache = (None, None)      # web3 caches the request function it built
    try:
        before = await port.holdings()
    finally:
        provider.make_request = real
        provider._request_func_cache = (None, None)
    assert moved["done"]
    block = before.block_number
    assert int(defi.chain.rpc("eth_blockNumber"), 16) > block, "the chain moved on during the reading"
    pinned = hex(block)
    decimals = "0x313ce567"                          # decimals(): constant, cached per token
    reads = [(m, p) for m, p in seen if m == "eth_getBalance"
             or (m == "eth_call" and not str(p[0].get("data", "")).startswith(decimals))]
    assert reads and all(p[-1] in (pinned, block) for m, p in reads), [(m, p[-1]) for m, p in reads]
    assert before.tokens["USDT"] == 100.0 and before.tokens["ETH"] == 3.0, "the reading is the block it records"
    after = await port.holdings()
    assert after.block_number > block and after.tokens["USDT"] == 1000.0 and after.tokens["ETH"] == 5.0
