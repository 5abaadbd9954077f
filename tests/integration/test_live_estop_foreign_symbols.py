"""The emergency stop cancels open orders on symbols the mode does not trade, on every venue.

The product promise is "cancels every open order on every venue": an order another tool (or a
person) left on SOLUSDT must not survive an e-stop of an eth_basis session. Two kinds of foreign
symbol are exercised: one listed before the session loaded its markets (BNB, known to ccxt) and one
listed afterwards (SOL, unknown to the adapter's markets: it can only be cancelled by the venue's id).
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from engine.services.live import CancelStatus
from tests.integration.emulator import binance, bybit, okx
from tests.integration.emulator.core import Instrument, VenueState
from tests.integration.live_support import make_service, open_orders, place_resting, request, wait_until

D = Decimal


@pytest.fixture
async def service(emulator, cex_store, tmp_path, cache_dir):
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    yield svc
    await svc.close()


def rest(state: VenueState, inst: Instrument, qty: Decimal = D("0.01")) -> str:
    """A resting limit buy far below the touch; returns its order id."""
    return state.place(inst.key, "buy", "limit", qty, (inst.price * D("0.8")).quantize(inst.tick), None).order_id


async def entered(service):
    rid = await service.start(request())
    s = service.session(rid)
    await wait_until(lambda: s.status().trades == 4 and s.ticks >= 2, timeout=10, what="the live entry")
    return rid


def assert_all_gone(state: VenueState, ids: list[str]) -> None:
    assert [state.orders[i].status for i in ids] == ["canceled"] * len(ids)
    assert state.open_orders() == []


async def test_binance_spot_and_usdm_orders_on_foreign_symbols_are_cancelled_and_counted(service, emulator):
    st = emulator.venues["binance"]
    known = [st.add_instrument(binance.make_instrument(kind, "BNB", D("600"))) for kind in ("spot", "perp")]
    rid = await entered(service)
    # Listed after the session loaded its markets: ccxt has never heard of SOLUSDT.
    late = [st.add_instrument(binance.make_instrument(kind, "SOL", D("150"))) for kind in ("spot", "perp")]
    foreign = [rest(st, inst) for inst in known + late for _ in range(2)]
    place_resting(emulator, 12)                                  # managed books of all three venues too
    requests_before = len(st.requests)
    report = (await service.emergency_stop().done)[rid]
    v = report.venues["binance"]
    assert v.status is CancelStatus.DONE, v.describe()
    assert v.canceled == len(foreign) + 4                        # 8 foreign + 4 on ETHUSDT spot/perp
    assert_all_gone(st, foreign)
    assert report.all_cancelled and open_orders(emulator) == {"binance": 0, "bybit": 0, "okx": 0}
    sent = st.requests[requests_before:]
    # Discovery is one read per account without a symbol; each foreign symbol got its own cancel.
    assert sent.count(("GET", "api/v3/openOrders")) >= 1 and sent.count(("GET", "fapi/v1/openOrders")) >= 1
    for path in ("api/v3/openOrders", "fapi/v1/allOpenOrders"):
        assert sent.count(("DELETE", path)) == 3                 # ETHUSDT, BNBUSDT, SOLUSDT


async def test_binance_foreign_cancel_failure_is_reported_not_hidden(service, emulator):
    st = emulator.venues["binance"]
    rid = await entered(service)
    inst = st.add_instrument(binance.make_instrument("spot", "SOL", D("150")))
    rest(st, inst)
    st.instruments.pop(inst.key)     # the venue now refuses the symbol (-1121): the order cannot be cancelled
    report = (await service.emergency_stop().done)[rid]
    v = report.venues["binance"]
    assert v.status is CancelStatus.FAILED and "spot SOLUSDT" in v.error, v.describe()
    assert len(st.open_orders()) == 1


async def test_bybit_cancels_foreign_spot_usdt_and_usdc_perp_orders(service, emulator):
    st = emulator.venues["bybit"]
    rid = await entered(service)
    late = [st.add_instrument(bybit.make_instrument(category, "SOL", D("150"), quote))
            for category, quote in (("spot", "USDT"), ("linear", "USDT"), ("linear", "USDC"))]
    foreign = [rest(st, inst) for inst in late]
    place_resting(emulator, 6)
    report = (await service.emergency_stop().done)[rid]
    v = report.venues["bybit"]
    assert v.status is CancelStatus.DONE and v.canceled == 3 + 2, v.describe()
    assert_all_gone(st, foreign)


async def test_okx_cancels_foreign_instruments_unknown_to_the_loaded_markets(service, emulator):
    st = emulator.venues["okx"]
    rid = await entered(service)
    late = [st.add_instrument(inst) for inst in okx.make_instruments("SOL", D("150"), D("1"))]
    foreign = [rest(st, inst, D("1")) for inst in late for _ in range(11)]    # 22: more than one batch of 20
    place_resting(emulator, 6)
    report = (await service.emergency_stop().done)[rid]
    v = report.venues["okx"]
    assert v.status is CancelStatus.DONE and v.canceled == 22 + 2, v.describe()
    assert_all_gone(st, foreign)
