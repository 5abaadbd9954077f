"""On-chain reads and checks against anvil with contracts compiled by solc-js at test time."""
from __future__ import annotations

import socket
import time
from decimal import Decimal

import pytest
from eth_account import Account

from engine.domain.venue_ports import OnchainReadPort, VenueError, VenueErrorKind
from tests.integration.chain.configs import local_venue_configs
from venues.cex.account import RetryPolicy
from venues.checks import CheckResult, CheckSettings, Status, exit_code, plan_for_mode, run_checks
from venues.onchain.factory import address_tables
from venues.onchain.reader import ChainReader


def by(results: list[CheckResult], venue: str, check: str) -> CheckResult:
    return next(r for r in results if r.venue == venue and r.check == check)


def store_chain_keys(store, url: str, wallet: str, env: str = "testnet") -> None:
    store.set(env, "alchemy", "rpc_url", url)
    store.set(env, "alchemy", "wallet_address", wallet)


async def check(mode: str, store, configs, env: str = "testnet", timeout_s: float = 10.0) -> list[CheckResult]:
    plan = plan_for_mode(mode, env, venue_configs=configs)
    return await run_checks(plan, store=store, settings=CheckSettings(timeout_s=timeout_s))


async def test_reader_reads_balances_aave_account_and_lst_rates(chain, local_configs):
    tokens, contracts = address_tables(local_configs, "testnet")
    reader = ChainReader(chain.w3.provider.endpoint_uri, tokens=tokens, contracts=contracts, timeout_s=3)
    assert isinstance(reader, OnchainReadPort)
    try:
        head = await reader.chain_head()
        assert head.chain_id == 11155111 and head.block_number > 0
        eth = await reader.native_balance(chain.wallet)
        assert eth.amount > 1000
        balances = {b.symbol: b for b in await reader.token_balances(chain.wallet, ["weETH", "USDT"])}
        assert balances["weETH"].amount == Decimal(25) and balances["USDT"].decimals == 6
        assert balances["USDT"].amount == Decimal(500)
        account = await reader.aave_account(chain.wallet, contracts["aave_v3.pool"])
        assert account.total_collateral == Decimal(8000) and account.total_debt == Decimal(4000)
        assert account.health_factor == Decimal("1.9") and account.emode_category == 1
        assert await reader.lst_rate("wstETH") == Decimal("1.21")
        assert await reader.lst_rate("weETH") == Decimal("1.065")
        allowance = await reader.allowance("weETH", chain.wallet, contracts["aave_v3.pool"])
        assert allowance.raw == 0
        fresh = Account.create().address
        assert (await reader.aave_account(fresh, contracts["aave_v3.pool"])).health_factor is None
        with pytest.raises(VenueError) as info:          # a token this environment does not have
            await reader.token_balance(chain.wallet, "DOGE")
        assert info.value.kind is VenueErrorKind.CONFIG
    finally:
        await reader.close()


async def test_healthy_chain_venues_are_ok(chain, local_configs, memory_store):
    store_chain_keys(memory_store, chain.w3.provider.endpoint_uri, chain.wallet)
    results = await check("eth_leveraged", memory_store, local_configs)
    bad = [(r.venue, r.check, r.status.value) for r in results if r.status is not Status.OK]
    # These stand-in contracts have no LeverageExecutor for the atomic loop (the write-readiness checks
    # run against the real stack in test_checks_write_readiness.py): everything else is OK.
    assert bad == [("aave_v3", "executor", "FAIL"), ("aave_v3", "allowances", "SKIP")]
    assert "executor deploy" in by(results, "aave_v3", "executor").hint
    assert {r.venue for r in results} == set(plan_for_mode("eth_leveraged", "testnet").venues)
    assert "HF 1.900" in by(results, "aave_v3", "account").message
    assert "1.065000 ETH" in by(results, "etherfi", "rate").message
    assert "25" in by(results, "etherfi", "tokens").message
    assert by(results, "aave_v3", "emode").message == "e-mode 1 (ETH correlated) is set"
    assert exit_code([r for r in results if r.check not in ("executor", "allowances")]) == 0


async def test_wrong_chain_id_fails_and_skips_the_protocol_checks(chain, memory_store):
    configs = local_venue_configs(chain, "production")     # production expects chain 1; anvil runs Sepolia's id
    store_chain_keys(memory_store, chain.w3.provider.endpoint_uri, chain.wallet, env="production")
    results = await check("pure_lending", memory_store, configs, env="production")
    chain_check = by(results, "alchemy", "chain_id")
    assert chain_check.status is Status.FAIL
    assert "11155111" in chain_check.message and "expects 1" in chain_check.message
    assert by(results, "aave_v3", "contracts").status is Status.SKIP
    assert exit_code(results) == 1


async def test_zero_gas_balance_warns(chain, local_configs, memory_store):
    store_chain_keys(memory_store, chain.w3.provider.endpoint_uri, Account.create().address)
    results = await check("pure_lending", memory_store, local_configs)
    gas = by(results, "alchemy", "gas")
    assert gas.status is Status.WARN and "0 ETH" in gas.message and "gas" in gas.hint
    assert by(results, "aave_v3", "account").message.startswith("no position yet")
    assert exit_code(results) == 0


async def test_health_factor_below_the_mode_floor_warns(chain, local_configs, memory_store):
    wallet = Account.create().address
    chain.set_aave_account(wallet, collateral=1000_00000000, debt=950_00000000, hf_wad=1_005_000_000_000_000_000,
                           emode=1)
    store_chain_keys(memory_store, chain.w3.provider.endpoint_uri, wallet)
    results = await check("eth_leveraged", memory_store, local_configs)
    account = by(results, "aave_v3", "account")
    assert account.status is Status.WARN and "HF floor" in account.message


async def test_missing_testnet_deployment_fails_for_the_venue_the_mode_needs(chain, memory_store):
    configs = local_venue_configs(chain, "testnet")
    morpho = configs["morpho"]
    env = morpho.environments.testnet.model_copy(update={"contracts": {"morpho_blue": None}})
    configs["morpho"] = morpho.model_copy(update={"environments": morpho.environments.model_copy(update={"testnet": env})})
    store_chain_keys(memory_store, chain.w3.provider.endpoint_uri, chain.wallet)
    results = await check("eth_leveraged", memory_store, configs)
    contracts = by(results, "morpho", "contracts")
    assert contracts.status is Status.FAIL and "morpho_blue" in contracts.message


async def test_no_rpc_credentials_fail_promptly(local_configs, memory_store):
    t0 = time.perf_counter()
    results = await check("eth_staking_only", memory_store, local_configs)
    assert time.perf_counter() - t0 < 2
    creds = by(results, "alchemy", "credentials")
    assert creds.status is Status.FAIL and "rpc_url" in creds.message and "credentials set" in creds.hint
    assert by(results, "etherfi", "rate").status is Status.SKIP


async def test_unreachable_rpc_fails_promptly_without_leaking_the_url_key(local_configs, memory_store):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v2/rpc-provider-key-5e1f"
    store_chain_keys(memory_store, dead, Account.create().address)
    t0 = time.perf_counter()
    results = await check("eth_staking_only", memory_store, local_configs, timeout_s=5)
    assert time.perf_counter() - t0 < 3
    rpc = by(results, "alchemy", "rpc")
    assert rpc.status is Status.FAIL and rpc.message.startswith("network:")
    assert all("rpc-provider-key-5e1f" not in r.message + r.hint for r in results)


async def test_reader_retries_transient_failures_then_reports_them(local_configs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    tokens, contracts = address_tables(local_configs, "testnet")
    # A generous per-attempt timeout: a refused connection must be reported as NETWORK (and retried)
    # however slow a loaded CI machine is, never misread as a timeout.
    reader = ChainReader(dead, tokens=tokens, contracts=contracts, timeout_s=10,
                         retry=RetryPolicy(attempts=3, base_delay_s=0.05))
    t0 = time.perf_counter()
    with pytest.raises(VenueError) as info:
        await reader.chain_head()
    assert info.value.kind is VenueErrorKind.NETWORK
    assert 0.15 <= time.perf_counter() - t0 < 10          # two backoff pauses (0.05 + 0.1 s), no timeout
    await reader.close()
