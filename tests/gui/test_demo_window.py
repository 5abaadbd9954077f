"""The demo's window comes up connected: the venues `python main.py demo` starts (the exchange emulator
and the local DeFi chain), its keys, the Live panel preset by the demo; a newcomer's minute — Start a
live session, press the EMERGENCY STOP, Flatten — works against them."""
from __future__ import annotations

import argparse
import os

import pytest
from PySide6.QtCore import Qt

from app.demo import _preset
from app.main_window import MainWindow
from bootstrap import app_services
from tests.gui.emulator_support import run_on_loop
from venues.credentials import CredentialStore
from venues.demo import DemoBackends, InMemoryDemoKeyring


def _peers_or_skip() -> None:
    from venues.onchain.devstack.peers import PeersMissing, anvil_command, require_package

    try:
        anvil_command()
        require_package("@aave/core-v3")
    except PeersMissing as exc:
        if os.environ.get("BASIS_REQUIRE_PEERS") == "1":
            pytest.fail(f"{exc} (BASIS_REQUIRE_PEERS=1)", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def demo_venues():
    _peers_or_skip()
    backends = DemoBackends(store_factory=lambda: (CredentialStore(InMemoryDemoKeyring()), "IN-MEMORY store (test)"),
                            log=lambda _line: None)
    venues = backends.start()
    yield backends, venues
    backends.stop()


def test_the_demo_window_trades_halts_and_flattens_on_the_demo_venues(qtbot, bridge, demo_venues, tmp_path, cache_dir):
    backends, venues = demo_venues
    services = app_services(store=venues.store, url_overrides=venues.url_overrides, journal_dir=tmp_path / "journal",
                            cache_dir=cache_dir)
    window = MainWindow(services, bridge=bridge, persist_layout=False, initial_mode="eth_basis")
    qtbot.addWidget(window)
    window.resize(1500, 950)
    window.show()
    qtbot.waitExposed(window)
    window.backtest_panel.autoplay_box.setChecked(False)
    _preset(argparse.Namespace(mode="eth_basis", execution="live"), venues.venue_overrides)(window)
    panel = window.live_panel
    assert panel.build_request().environment == "testnet" and panel.build_request().execution == "live"
    panel.request_defaults.update(dead_man_seconds=None)
    try:
        with qtbot.waitSignal(panel.session_started, timeout=30000) as started:
            qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        rid = started.args[0]
        session = services.live.session(rid)
        qtbot.waitUntil(lambda: session.ticks >= 2 and services.live.status(rid).trades > 0, timeout=30000)
        emulator = backends._emulator
        assert any(p.qty != 0 for p in emulator.venues["okx"].positions.values()), "live orders reached the emulator"
        # the e-stop: HALTED at the press, every venue's cancel-all reported
        qtbot.mouseClick(window.estop_button, Qt.MouseButton.LeftButton)
        assert services.live.status(rid).state == "HALTED"
        press = window.live_controller.last_press
        qtbot.waitUntil(lambda: press.finished_ms is not None, timeout=10000)
        # flatten, confirmed: the emulator's perp positions are closed
        qtbot.mouseClick(panel.flatten_button, Qt.MouseButton.LeftButton)
        dialog = panel.flatten_dialog
        assert dialog is not None and dialog.isVisible() and not dialog.confirm_button.isEnabled()
        qtbot.waitUntil(lambda: dialog.confirm_button.isEnabled(), timeout=20000)
        with qtbot.waitSignal(panel.flattened, timeout=20000) as done:
            qtbot.mouseClick(dialog.confirm_button, Qt.MouseButton.LeftButton)
        assert done.args[0].failed == []
        for venue in ("binance", "bybit", "okx"):
            assert all(p.qty == 0 for p in emulator.venues[venue].positions.values()), venue
    finally:
        run_on_loop(qtbot, services.live.close(), timeout_ms=30000)
