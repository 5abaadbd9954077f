"""The live positions table lists every valued holding of the book, in every mode: wallet tokens, AAVE
supply and debt per reserve (as underlying, at the reserve's index), CEX cash, spot and perps, each with
its amount and USD value, and the rows add up to the book's value (paper sessions on the emulator)."""
from __future__ import annotations

import pytest

from engine.components.valuation import value_usd
from tests.integration.live_support import make_service, request, wait_until

MODES = ("pure_lending", "btc_basis", "eth_basis", "eth_staking_only", "eth_leveraged",
         "usdt_market_neutral_no_leverage", "usdt_market_neutral")


@pytest.fixture
async def service(emulator, cex_store, tmp_path, cache_dir):
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    yield svc
    await svc.close()


def holdings(session) -> set[tuple[str, str, str]]:
    """(venue, kind, asset) of every non-zero holding of the session's book."""
    p = session.portfolio
    w = p.wallet
    out = {("wallet", "token", k) for k, v in w.tokens.items() if v}
    out |= {("aave_v3", "supply", k) for k, v in w.supply_scaled.items() if v}
    out |= {("aave_v3", "debt", k) for k, v in w.debt_scaled.items() if v}
    for venue, acct in p.cex.items():
        out.add((venue, "cash", "USDT"))
        out |= {(venue, "spot", k) for k, v in acct.spot.items() if v}
        out |= {(venue, "perp", k) for k, pos in acct.perps.items() if pos.size}
    return out


@pytest.mark.parametrize("mode", MODES)
async def test_every_holding_has_a_valued_row_and_the_rows_sum_to_the_book(service, mode):
    rid = await service.start(request(mode, execution="paper"))
    s = service.session(rid)
    await wait_until(lambda: s.ticks >= 2 and s.trades > 0, timeout=20, what=f"the {mode} paper entry")
    snap = service.status(rid)
    mv = s.feed.view
    t = len(mv.timestamps) - 1
    rows = {(p.venue, p.kind, p.asset): p for p in snap.positions}
    assert len(rows) == len(snap.positions), "one row per holding"
    assert set(rows) == holdings(s)
    assert all(p.value is not None for p in snap.positions)
    assert sum(p.value for p in snap.positions) == pytest.approx(value_usd(s.portfolio, mv, t), rel=1e-12, abs=1e-6)
    w = s.portfolio.wallet
    for reserve, scaled in w.supply_scaled.items():
        if scaled:
            row = rows[("aave_v3", "supply", reserve)]
            assert row.size == pytest.approx(scaled * mv.supply_index[reserve][t], rel=1e-12)
            assert row.value == pytest.approx(row.size * mv.price_usd(reserve, t), rel=1e-12) and row.value > 0
    for reserve, scaled in w.debt_scaled.items():
        if scaled:
            row = rows[("aave_v3", "debt", reserve)]
            assert row.size == pytest.approx(-scaled * mv.borrow_index[reserve][t], rel=1e-12)
            assert row.value < 0
    if mode in ("eth_leveraged", "usdt_market_neutral"):
        kinds = {k for _, k, _ in rows}
        assert {"supply", "debt"} <= kinds, f"the AAVE loop shows as rows: {sorted(rows)}"
    if mode == "pure_lending":
        assert ("aave_v3", "supply", "USDT") in rows
