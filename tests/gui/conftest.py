"""GUI test fixtures (pytest-qt, offscreen; docs/ARCHITECTURE.md, Testing).

The qasync loop is created once with already_running=True so qtbot.waitUntil/waitSignal (which spin
Qt's event loop) also drive asyncio callbacks; it is never stopped (stopping it quits the
QApplication and breaks later waits). Every test gets its own state folder, so QSettings and saved
modes never touch the developer's real ones.
"""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def qasync_loop(qapp):
    import qasync

    from app.style import apply_theme

    apply_theme(qapp)
    loop = qasync.QEventLoop(qapp, already_running=True)
    # asyncio.to_thread on a qasync loop runs on qasync's QThread pool unless the loop has another
    # default executor; only closing the loop shuts that pool down, and this loop is never closed, so
    # Qt found running QThreads at exit ("QThread: Destroyed while thread '' is still running"). A
    # plain pool owned here is joined when the session ends.
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="gui-test-io")
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    yield loop
    executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    folder = tmp_path / "state"
    monkeypatch.setenv("BASIS_WORKSTATION_STATE_DIR", str(folder))
    return folder


@pytest.fixture
def services(qasync_loop, backtest_service, tmp_path, cache_dir):
    """The window's services as bootstrap builds them: an in-memory keyring and a temp journal, so a
    test never touches the developer's keyring or journal."""
    from bootstrap import app_services
    from tests.integration.memory_keyring import MemoryKeyring
    from venues.credentials import CredentialStore

    return app_services(store=CredentialStore(MemoryKeyring()), journal_dir=tmp_path / "journal",
                        cache_dir=cache_dir, backtest=backtest_service)


@pytest.fixture
def bridge(qasync_loop, backtest_service):
    from app.bridge import EngineBridge

    engine_bridge = EngineBridge(backtest_service)
    yield engine_bridge
    engine_bridge.shutdown()


@pytest.fixture
def window(qtbot, bridge, services):
    from app.main_window import MainWindow

    main = MainWindow(services, bridge=bridge, persist_layout=False, initial_mode="eth_basis")
    qtbot.addWidget(main)
    main.resize(1400, 900)
    main.show()
    qtbot.waitExposed(main)
    main.backtest_panel.autoplay_box.setChecked(False)
    return main
