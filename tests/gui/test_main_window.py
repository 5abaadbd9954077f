"""The workstation window: panels, layout persistence, panel registration, crash dialog."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

from app.main_window import PANELS, MainWindow


def test_window_opens_with_the_five_panels(window):
    assert set(window.docks) == {name for name, _ in PANELS}
    assert window.docks["backtest"].isVisible()
    titles = {d.windowTitle() for d in window.docks.values()}
    assert titles == {"Backtest replay", "Config", "Venue checks", "Live trading", "Lab"}
    venues_text = " ".join(label.text() for label in window.panel("venues").findChildren(QLabel))
    assert "check-venues" in venues_text and "keyring" in venues_text
    live_text = " ".join(label.text() for label in window.panel("live").findChildren(QLabel))
    assert "EMERGENCY STOP" in live_text


def test_set_panel_replaces_a_placeholder_and_adds_new_docks(window, qtbot):
    real = QLabel("venue checks widget")
    window.set_panel("venues", real)
    assert window.panel("venues") is real
    extra = QWidget()
    dock = window.set_panel("journal", extra, title="Journal")
    assert window.panel("journal") is extra and dock.windowTitle() == "Journal"
    assert dock.toggleViewAction() in window._panels_menu.actions()


def test_layout_is_saved_and_the_default_can_be_restored(qtbot, bridge, services, state_dir):
    first = MainWindow(services, bridge=bridge, persist_layout=True)
    qtbot.addWidget(first)
    first.show()
    first.docks["config"].setFloating(True)
    first.save_layout()
    assert (state_dir / "workstation.ini").is_file()

    second = MainWindow(services, bridge=bridge, persist_layout=True)
    qtbot.addWidget(second)
    second.show()
    assert second.docks["config"].isFloating(), "the saved layout was not restored"
    second.restore_layout_action.trigger()
    assert not any(d.isFloating() for d in second.docks.values())
    assert second.tabifiedDockWidgets(second.docks["backtest"]), "default layout tabs the panels together"


def test_uncaught_exceptions_show_a_dialog_with_copyable_details(window, qtbot, qasync_loop):
    from PySide6.QtGui import QGuiApplication

    from app.crash import CrashReporter

    reporter = CrashReporter(window)
    reporter.install(qasync_loop)
    try:
        try:
            raise RuntimeError("boom in a slot")
        except RuntimeError as exc:
            import sys
            sys.excepthook(type(exc), exc, exc.__traceback__)
        qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible(), timeout=3000)
        assert "boom in a slot" in reporter.dialog.summary.text()
        assert "Traceback" in reporter.dialog.details.toPlainText()

        async def failing_task():
            raise ValueError("boom in a task")

        task = qasync_loop.create_task(failing_task())
        qtbot.waitUntil(task.done, timeout=3000)
        qasync_loop.call_exception_handler({"message": "Task exception was never retrieved",
                                            "exception": task.exception(), "future": task})
        qtbot.waitUntil(lambda: reporter.dialog.count == 2, timeout=3000)
        assert "boom in a task" in reporter.dialog.details.toPlainText()
        reporter.dialog.copy_details()
        assert "boom in a task" in QGuiApplication.clipboard().text()
        assert window.isVisible(), "the app must survive"
    finally:
        reporter.uninstall()
        if reporter.dialog is not None:
            reporter.dialog.close()


def test_crash_dialog_its_stderr_copy_and_log_are_redacted(window, qtbot, capsys, caplog):
    """The dialog promises "never keys or secrets": an exception carrying a registered secret, a signed
    URL and a key header must show none of them, in the dialog, on stderr or in the log."""
    import sys

    from app.crash import CrashReporter
    from venues.credentials import register_secret

    secret = "crash-test-secret-4b1d9e"
    register_secret(secret)
    signature = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    text = (f"GET https://api.binance.com/api/v3/account?timestamp=1&signature={signature} failed; "
            f"headers {{'X-MBX-APIKEY': 'key-in-a-header-77', 'OK-ACCESS-SIGN': 'c2lnbmF0dXJl'}}; key {secret}")
    reporter = CrashReporter(window)
    reporter.install()
    try:
        try:
            raise RuntimeError(text)
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        qtbot.waitUntil(lambda: reporter.dialog is not None and reporter.dialog.isVisible(), timeout=3000)
        shown = reporter.dialog.summary.text() + reporter.dialog.details.toPlainText()
        printed = capsys.readouterr().err
        for where, haystack in (("dialog", shown), ("stderr", printed), ("log", caplog.text)):
            for leak in (secret, signature, "key-in-a-header-77", "c2lnbmF0dXJl"):
                assert leak not in haystack, f"{leak!r} in the crash {where}"
        assert "signature=***" in shown and "'X-MBX-APIKEY': '***'" in shown and "RuntimeError" in shown
    finally:
        reporter.uninstall()
        if reporter.dialog is not None:
            reporter.dialog.close()


def test_live_session_locks_the_config_editor(window):
    window.bridge.live_session_changed.emit(True)
    panel = window.config_panel
    assert panel.locked and panel.lock_banner.isVisible()
    assert panel.yaml_edit.isReadOnly()
    assert not panel.form.editor("leverage.target_ltv").line.isEnabled()
    window.bridge.live_session_changed.emit(False)
    assert not panel.locked and not panel.yaml_edit.isReadOnly()
