"""Paper mode reads the chain: the chain market feed against the real AAVE v3, LST and Uniswap v3
contracts of the local stack while it follows the shipped history.

Each hour the stack's oracle, LST rates, pools and clock move to the hour (HistoryFollower); the feed's
reading must equal what the contracts report at that block (indices, oracle and protocol rates, the
pool price, fee history), its values must move hour by hour, and the market view a session's cycle
consumes (LiveMarketFeed.view) must hold exactly those values. Then a paper session started through
the service reads the chain the same way (its warnings no longer say the series are frozen).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from engine.config import load_config
from engine.data import DataRequirements, HistoricalDataProvider
from engine.domain.chain_market import ChainMarketNeeds
from engine.services.live.market_feed import LiveMarketFeed, chain_needs
from engine.services.run_params import build_run_params, data_requirements
from tests.integration.chain.defi import wallet_store
from tests.integration.live_support import request, wait_until
from venues.onchain import abi
from venues.onchain.devstack.history import HistoryFollower, hours
from venues.onchain.devstack.overrides import venue_overrides
from venues.onchain.market_reader import connect_chain_market
from venues.onchain.reader import ChainReader

DATA = __import__("bootstrap").DATA_DIR
RAY = D(10) ** 27
NEEDS = ChainMarketNeeds(reserves=("WETH", "weETH", "USDT"), lsts=("weETH", "wstETH"))


@pytest.fixture(scope="module")
def six_hours(tmp_path_factory):
    provider = HistoricalDataProvider(DATA, tmp_path_factory.mktemp("aligned"))
    data = provider.load(DataRequirements(spot=("ETH",), lsts=("weETH", "wstETH")), "2024-08-05 00:00",
                         "2024-08-05 05:00")     # the August 2024 sell-off: prices moved every hour
    return list(hours(data))


async def open_borrow(ex) -> None:
    """A weETH-collateral WETH borrow, so the WETH reserve has utilisation and its indices accrue."""
    await ex.etherfi.stake(D(20))
    await ex.etherfi.wrap((await ex.etherfi.balances()).base)
    units = (await ex.etherfi.balances()).wrapped
    await ex.aave.approve("weETH", units)
    await ex.aave.supply("weETH", units)
    await ex.aave.set_user_emode(1)
    await ex.aave.borrow("WETH", D(12))


async def reader_for(defi) -> ChainReader:
    return ChainReader(defi.url, tokens={}, contracts={}, timeout_s=5.0)


async def test_feed_values_equal_the_contracts_and_move_hour_by_hour(defi, execution, six_hours, tmp_path):
    ex, follower = execution, HistoryFollower(defi.admin)
    await open_borrow(ex)
    configs = defi.configs()
    feed_reader = await connect_chain_market(await reader_for(defi), configs, "testnet", NEEDS,
                                             expected_chain_id=11155111, block_age_limit_s=60.0, rpc_venue="alchemy")
    assert set(feed_reader.market_pools) == {"weETH", "wstETH"}
    params = build_run_params(load_config("eth_leveraged"))
    seed = HistoricalDataProvider(DATA, tmp_path).load(data_requirements(params))
    feed = LiveMarketFeed(params, {}, seed, 5.0, chain=feed_reader)
    assert not any("held at their last historical value" in w for w in feed.warnings)
    start = int(defi.chain.block()["timestamp"], 16)
    pool = ex.ctx.contract(configs["aave_v3"].environments.testnet.contracts["pool"], abi.AAVE_POOL_WRITE)
    readings = []
    try:
        for k, hour in enumerate(six_hours, start=1):
            block = follower.apply(dataclasses.replace(hour, timestamp=start + 3600 * k))
            reading = await feed_reader.read()
            assert reading.block_number == block
            for reserve in NEEDS.reserves:
                token = ex.aave.token(reserve)
                income = await pool.functions.getReserveNormalizedIncome(token).call(block_identifier=block)
                debt = await pool.functions.getReserveNormalizedVariableDebt(token).call(block_identifier=block)
                assert reading.supply_index[reserve] == D(income) / RAY
                assert reading.borrow_index[reserve] == D(debt) / RAY
            weth_usd = await ex.aave.oracle_price("WETH")
            assert reading.eth_usd == weth_usd == hour.eth_usd.quantize(D("1e-8"))
            for lst, adapter in (("weETH", ex.etherfi), ("wstETH", ex.lido)):
                assert reading.lst_protocol_rate[lst] == await adapter.rate()
                assert reading.lst_oracle[lst] == await ex.aave.oracle_price(lst) / weth_usd
                assert abs(reading.lst_oracle[lst] / hour.oracle[lst] - 1) < D("1e-9")
                assert abs(reading.lst_market[lst] - defi.admin.pool_price(lst, "WETH")) < D("1e-20")
                assert abs(reading.lst_market[lst] / hour.market[lst] - 1) < D("1e-9")
            history = await ex.ctx.w3.eth.fee_history(10, block, [50])
            assert reading.base_fee_gwei == D(history["baseFeePerGas"][-1]) / D(10) ** 9
            # the market view the session's cycle consumes holds exactly these values
            info = await feed.tick()
            view, t = feed.view, info.t
            assert info.chain_block is not None and info.chain_block >= block
            assert info.data_age_seconds < 2.0 and not info.errors
            tick = feed.chain_reading
            assert tick is not None
            assert view.borrow_index["WETH"][t] == float(tick.borrow_index["WETH"])
            assert view.supply_index["weETH"][t] == float(tick.supply_index["weETH"])
            assert view.lst_oracle["weETH"][t] == float(tick.lst_oracle["weETH"])
            assert view.lst_market["weETH"][t] == float(tick.lst_market["weETH"])
            assert view.gas_gwei[t] == float(tick.gas_gwei)
            assert view.eth[t] == float(tick.eth_usd)
            readings.append(reading)
    finally:
        await feed.close()
    # hour by hour: the WETH indices accrue (borrowed) and the prices follow the history
    debt = [r.borrow_index["WETH"] for r in readings]
    income = [r.supply_index["WETH"] for r in readings]
    assert all(b > a for a, b in zip(debt, debt[1:])) and all(b > a for a, b in zip(income, income[1:]))
    assert len({r.eth_usd for r in readings}) == len(readings)
    assert len({r.lst_market["weETH"] for r in readings}) > 1
    print(f"\nchain feed: {len(readings)} hours, WETH borrow index {debt[0]:.12f} -> {debt[-1]:.12f}, "
          f"read latency {min(r.latency_s for r in readings) * 1000:.1f}-{max(r.latency_s for r in readings) * 1000:.1f} ms")


async def test_a_paper_session_reads_the_chain(defi, tmp_path):
    """eth_leveraged on paper through the service: the chain feed is wired from the keyring's rpc_url."""
    from bootstrap import live_trading_service

    store = wallet_store(defi.url)
    service = live_trading_service(store=store, journal_dir=tmp_path / "journal", data_dir=DATA,
                                   cache_dir=tmp_path / "cache", timeout_s=3.0)
    overrides = {"venue_overrides": venue_overrides(defi.stack)["venue_overrides"]}
    rid = await service.start(request("eth_leveraged", "paper", capital=10.0, config_overrides=overrides))
    try:
        session = service.session(rid)
        await wait_until(lambda: session.ticks >= 2, 20, "two paper ticks")
        snap = service.status(rid)
        assert not any("held at their last historical value" in w for w in snap.warnings), snap.warnings
        view = session.feed.view
        reading = session.feed.chain_reading
        assert reading is not None and view.lst_oracle["weETH"][-1] == float(reading.lst_oracle["weETH"])
        assert snap.data_age_seconds is not None and snap.data_age_seconds < 2.0
    finally:
        await service.close()


async def test_without_an_rpc_url_the_series_stay_historical_and_the_session_says_why(tmp_path):
    from bootstrap import live_trading_service
    from tests.integration.memory_keyring import MemoryKeyring
    from venues.credentials import CredentialStore

    service = live_trading_service(store=CredentialStore(MemoryKeyring()), journal_dir=tmp_path / "j",
                                   data_dir=DATA, cache_dir=tmp_path / "c", timeout_s=2.0)
    rid = await service.start(request("eth_staking_only", "paper", capital=10.0))
    try:
        warnings = service.status(rid).warnings
        assert any("held at their last historical value" in w and "no rpc_url stored for alchemy (testnet)" in w
                   for w in warnings), warnings
    finally:
        await service.close()


async def test_an_rpc_on_another_chain_is_refused(defi, tmp_path):
    from engine.domain.venue_ports import VenueError

    with pytest.raises(VenueError, match="serves chain 11155111, the testnet configuration chain 1"):
        await connect_chain_market(await reader_for(defi), defi.configs(), "testnet", NEEDS,
                                   expected_chain_id=1, block_age_limit_s=60.0, rpc_venue="alchemy")


def test_needs_follow_the_mode():
    assert chain_needs(data_requirements(build_run_params(load_config("eth_basis")))) == ChainMarketNeeds()
    needs = chain_needs(data_requirements(build_run_params(load_config("eth_leveraged"))))
    assert needs == ChainMarketNeeds(reserves=("weETH", "WETH"), lsts=("weETH",))


async def test_a_hung_rpc_is_reported_in_the_tick_and_ages_the_data(defi, tmp_path):
    """The chain read runs under the feed's timeout like an exchange's: a hung node is named in the tick's
    errors, the view keeps the last reading and the data age grows; before any reading there is no data."""
    from engine.services.live.market_feed import CHAIN, LiveDataUnavailable
    from tests.integration.chain.rpc_proxy import RpcProxy

    proxy = await RpcProxy(defi.url).start()
    try:
        reader = ChainReader(proxy.url, tokens={}, contracts={}, timeout_s=0.3)
        needs = ChainMarketNeeds(reserves=("weETH", "WETH"), lsts=("weETH",))
        source = await connect_chain_market(reader, defi.configs(), "testnet", needs, expected_chain_id=11155111,
                                            block_age_limit_s=60.0, rpc_venue="alchemy")
        params = build_run_params(load_config("eth_leveraged"))
        seed = HistoricalDataProvider(DATA, tmp_path).load(data_requirements(params))
        feed = LiveMarketFeed(params, {}, seed, 0.5, chain=source)
        proxy.fault("hang", "eth_getBlockByNumber")
        with pytest.raises(LiveDataUnavailable, match=r"chain 11155111 via alchemy \(testnet\): no reading yet"):
            await feed.tick()
        proxy.heal()
        first = await feed.tick()
        assert not first.errors and first.data_age_seconds < 1.0
        proxy.fault("hang", "eth_call")
        stale = await feed.tick()
        assert stale.errors[CHAIN] == "no answer within 0.5 s"
        assert stale.data_age_seconds >= 0.5
        assert feed.view.borrow_index["WETH"][-1] == feed.view.borrow_index["WETH"][-2]   # the last reading stands
        await feed.close()
    finally:
        await proxy.stop()
