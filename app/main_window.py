"""The workstation window: dockable Config, Backtest replay, Venue checks and Live trading panels.

Panels are docks registered by name; `set_panel(name, widget)` replaces a dock's content (how the
venue-checks and live-trading modules plug in their widgets) or adds a new dock. Each panel sits in
a scroll area: a panel wider or taller than a small screen (1366x768) scrolls instead of forcing the
window past the screen's edge. The layout is saved in QSettings on close and restored on start;
View > Restore default layout puts it back. The window also remembers the theme, the text size, the
mode (shared by the Config and Backtest panels), the replay speed and the panel in front.

The window is given its services (`AppServices`, built once by bootstrap) and builds its panels and
controllers on them; it picks no venue implementation itself. `run_app(services)` is what
`python main.py` (no arguments) calls: QApplication on a qasync event loop.
"""
from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

from PySide6.QtCore import QByteArray, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QTabWidget,
    QToolBar,
    QWidget,
)

from app import APP_NAME, APP_TITLE, ORGANIZATION, style
from app import settings as state
from app.bridge import EngineBridge
from app.controllers.live import LiveController
from app.gui_gc import collect_on_ui_thread, freeze_startup_objects
from app.lab_runner import LabRunner
from app.panels.backtest_panel import SOURCE_EDITOR, BacktestPanel
from app.panels.config_panel import ConfigPanel
from app.panels.lab_panel import LabPanel
from app.panels.live_panel import LivePanel
from app.panels.safety import bind_safety_bar
from app.panels.venue_checks_panel import VenueChecksPanel
from app.replay import SPEEDS
from app.services import AppServices
from app.settings import app_settings
from app.style import apply_theme
from app.widgets.estop import SafetyBar, make_estop_action
from app.widgets.shortcuts_sheet import ShortcutsSheet
from engine.config import MODES

#: Dock names in their default tab order, with titles.
PANELS: tuple[tuple[str, str], ...] = (
    ("backtest", "Backtest replay"),
    ("config", "Config"),
    ("venues", "Venue checks"),
    ("live", "Live trading"),
    ("lab", "Lab"),
)
DEFAULT_MODE = "usdt_market_neutral"
LAYOUT_VERSION = 1
DEFAULT_SIZE = (1600, 1000)
#: the window may shrink to this (a 1366x768 laptop screen with room for the taskbar)
MINIMUM_SIZE = (1000, 600)


class PanelScroll(QScrollArea):
    """A dock's content in a scroll area: the panel fills the dock, and scrolls once the dock is
    smaller than the panel's minimum size (the panel no longer dictates the window's minimum)."""

    def __init__(self, panel: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidget(panel)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, 150)


class _NoTitleBar(QWidget):
    """An empty title bar (a tabbed dock's tab already names it)."""

    def sizeHint(self) -> QSize:
        return QSize(0, 0)


class MainWindow(QMainWindow):
    def __init__(self, services: AppServices, bridge: EngineBridge | None = None, persist_layout: bool = True,
                 initial_mode: str | None = None, lab_runner: LabRunner | None = None) -> None:
        super().__init__()
        collect_on_ui_thread()
        self.setWindowTitle(APP_TITLE)
        self.setObjectName("MainWindow")
        self.setDockOptions(QMainWindow.DockOption.AllowTabbedDocks | QMainWindow.DockOption.AnimatedDocks |
                            QMainWindow.DockOption.AllowNestedDocks)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)
        self.services = services
        self.bridge = bridge if bridge is not None else EngineBridge(services.backtest, parent=self)
        self.persist_layout = persist_layout
        self.docks: dict[str, QDockWidget] = {}
        self._title_bar_timer = QTimer(self)
        self._title_bar_timer.setSingleShot(True)
        self._title_bar_timer.setInterval(0)
        self._title_bar_timer.timeout.connect(self._refresh_title_bars)

        # No central widget: every panel is a dock, so any of them can take the whole window.
        central = QWidget(self)
        central.setMaximumSize(0, 0)
        self.setCentralWidget(central)

        if initial_mode is None:
            initial_mode = state.read_str(state.MODE_KEY, MODES, DEFAULT_MODE) if persist_layout else DEFAULT_MODE
        self.config_panel = ConfigPanel(initial_mode if initial_mode in MODES else MODES[0])
        self.backtest_panel = BacktestPanel(self.bridge, draft_provider=self.config_panel.draft_for)
        self.backtest_panel.set_mode(self.config_panel.mode)
        # Venue checks and credentials share one VenueAccess; the dashboard and the e-stop one controller.
        self.live_controller = LiveController(services.live, self)
        self.venue_checks_panel = VenueChecksPanel(services.venues, self.config_panel.mode)
        self.live_panel = LivePanel(self.live_controller, self.config_panel.mode)
        self.lab_panel = LabPanel(lab_runner if lab_runner is not None else
                                  LabRunner(services.lab_worker_factory, parent=self))
        for name, title in PANELS:
            widget = {"config": self.config_panel, "backtest": self.backtest_panel,
                      "venues": self.venue_checks_panel, "live": self.live_panel, "lab": self.lab_panel}[name]
            self._add_dock(name, title, widget)
        self._build_safety_bar()
        self._arrange_default()
        self._default_state = self.saveState(LAYOUT_VERSION)

        self.config_panel.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.backtest_panel.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.config_panel.draft_changed.connect(self._config_draft_changed)
        self.bridge.live_session_changed.connect(self._live_session_changed)
        self.live_controller.active_changed.connect(self.bridge.live_session_changed)
        self.live_controller.estop_pressed.connect(lambda _press: self.show_panel("live"))
        self.venue_checks_panel.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.live_panel.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        # One mode for editing and running: picking it in either panel moves the other.
        self.config_panel.mode_changed.connect(self._config_mode_changed)
        self.backtest_panel.mode_changed.connect(self._backtest_mode_changed)
        self.backtest_panel.controls.speed_combo.currentTextChanged.connect(self._speed_changed)
        self._front_panel = "backtest"
        for name, dock in self.docks.items():
            dock.visibilityChanged.connect(lambda visible, n=name: self._dock_visibility(n, visible))
        self.lab_panel.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.lab_panel.open_in_replay.connect(self.open_lab_run)
        self._closing_live = False
        self._shortcuts_sheet: ShortcutsSheet | None = None
        self._build_menus()
        self.setMinimumSize(*MINIMUM_SIZE)
        self.resize(*_fitting_size(DEFAULT_SIZE))
        front = "backtest"
        if persist_layout:
            self._restore_layout()
            self.backtest_panel.controls.set_speed_label(
                state.read_str(state.SPEED_KEY, [label for label, _ in SPEEDS], ""))
            front = state.read_str(state.PANEL_KEY, list(self.docks), "backtest")
        self.show_panel(front)
        self._refresh_title_bars()
        freeze_startup_objects()

    # ---- docks --------------------------------------------------------------------------------
    def _add_dock(self, name: str, title: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(PanelScroll(widget))
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                         QDockWidget.DockWidgetFeature.DockWidgetFloatable |
                         QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, dock)
        self.docks[name] = dock
        for signal in (dock.topLevelChanged, dock.dockLocationChanged, dock.visibilityChanged):
            signal.connect(lambda *_: self._title_bar_timer.start())
        return dock

    def _refresh_title_bars(self) -> None:
        """A tabbed panel shows its name on its tab: its own title bar would only repeat it and take
        a row of a small screen. Floating or side by side, it keeps the bar (to drag it by)."""
        for dock in self.docks.values():
            tabbed = not dock.isFloating() and bool(self.tabifiedDockWidgets(dock))
            bare = isinstance(dock.titleBarWidget(), _NoTitleBar)
            if tabbed and not bare:
                dock.setTitleBarWidget(_NoTitleBar(dock))
            elif not tabbed and bare:
                old = dock.titleBarWidget()
                dock.setTitleBarWidget(None)
                old.deleteLater()

    def _arrange_default(self) -> None:
        """All panels as tabs of one area filling the window (the backtest replay in front)."""
        docks = [self.docks[name] for name, _ in PANELS if name in self.docks]
        docks += [d for n, d in self.docks.items() if d not in docks]
        for dock in docks:
            dock.setFloating(False)
            dock.show()
            self.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, dock)
        for dock in docks[1:]:
            self.tabifyDockWidget(docks[0], dock)
        docks[0].raise_()

    def set_panel(self, name: str, widget: QWidget, title: str | None = None) -> QDockWidget:
        """Put `widget` in the dock `name` (replacing a placeholder), or add a new tabbed dock."""
        dock = self.docks.get(name)
        if dock is None:
            dock = self._add_dock(name, title or name.replace("_", " ").title(), widget)
            self.tabifyDockWidget(self.docks["backtest"], dock)
            self._panels_menu.addAction(dock.toggleViewAction())
            return dock
        scroll = dock.widget()
        old = scroll.takeWidget()
        scroll.setWidget(widget)
        if title:
            dock.setWindowTitle(title)
        if old is not None and old is not widget:
            old.deleteLater()
        return dock

    def panel(self, name: str) -> QWidget:
        return self.docks[name].widget().widget()

    def show_panel(self, name: str) -> None:
        dock = self.docks[name]
        dock.show()
        dock.raise_()

    # ---- safety -------------------------------------------------------------------------------
    def _build_safety_bar(self) -> None:
        """The EMERGENCY STOP lives in a fixed toolbar, outside every dock: it cannot be closed, floated
        or tabbed away, and its shortcut works from any window of the app."""
        bar = QToolBar("Safety", self)
        bar.setObjectName("safety_toolbar")
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.toggleViewAction().setEnabled(False)
        bar.toggleViewAction().setVisible(False)
        self.safety_bar = SafetyBar(bar)
        bar.addWidget(self.safety_bar)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.safety_toolbar = bar
        self.estop_button = self.safety_bar.button
        self.estop_action = make_estop_action(self)
        self.addAction(self.estop_action)
        bind_safety_bar(self.safety_bar, self.estop_action, self.live_controller)

    # ---- menus --------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        export = QAction("&Export backtest run…", self)
        export.setShortcut(QKeySequence("Ctrl+E"))
        export.setToolTip("Write the run's summary.json, timeseries.csv, events.csv and charts.png to a folder")
        export.triggered.connect(self.backtest_panel.open_export_dialog)
        file_menu.addAction(export)
        report = QAction("Export &HTML report…", self)
        report.setShortcut(QKeySequence("Ctrl+Shift+E"))
        report.setToolTip("One self-contained HTML file: interactive charts, metrics, config and provenance")
        report.triggered.connect(self.backtest_panel.open_report_dialog)
        file_menu.addAction(report)
        self.report_action = report
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        view = self.menuBar().addMenu("&View")
        self._panels_menu = view.addMenu("Panels")
        for dock in self.docks.values():
            self._panels_menu.addAction(dock.toggleViewAction())
        view.addSeparator()
        theme_menu = view.addMenu("&Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for theme in style.THEMES.values():
            action = QAction(theme.title, self, checkable=True)
            action.setChecked(theme.name == style.current().name)
            action.triggered.connect(lambda _checked, name=theme.name: self.set_theme(name))
            group.addAction(action)
            theme_menu.addAction(action)
            self.theme_actions[theme.name] = action
        text_menu = view.addMenu("Text &size")
        for text, keys, steps in (("&Larger", QKeySequence.StandardKey.ZoomIn, 1),
                                  ("&Smaller", QKeySequence.StandardKey.ZoomOut, -1)):
            action = QAction(text, self)
            action.setShortcut(keys)
            action.setToolTip(f"{text.replace('&', '')} text in every panel and chart")
            action.triggered.connect(lambda _checked, s=steps: self.step_text_size(s))
            text_menu.addAction(action)
        reset_text = QAction("&Default size", self)
        reset_text.setShortcut(QKeySequence("Ctrl+0"))
        reset_text.setToolTip("Text at the platform's default size")
        reset_text.triggered.connect(lambda: self.set_text_size(style.DEFAULT_FONT_SCALE))
        text_menu.addAction(reset_text)
        view.addSeparator()
        restore = QAction("&Restore default layout", self)
        restore.triggered.connect(self.restore_default_layout)
        view.addAction(restore)
        self.restore_layout_action = restore

        run_menu = self.menuBar().addMenu("&Backtest")
        run_edited = QAction("Run the Config panel's version", self)
        run_edited.setShortcut(QKeySequence("Ctrl+Shift+R"))
        run_edited.setToolTip("Run the mode open in the Config panel, as edited there")
        run_edited.triggered.connect(self.run_edited_config)
        run_menu.addAction(run_edited)

        trading = self.menuBar().addMenu("&Trading")
        trading.addAction(self.estop_action)
        credentials = QAction("Venue &credentials…", self)
        credentials.triggered.connect(lambda: self.venue_checks_panel.open_credentials())
        trading.addAction(credentials)
        checks = QAction("Run venue &checks", self)
        checks.triggered.connect(lambda: (self.show_panel("venues"), self.venue_checks_panel.run()))
        trading.addAction(checks)

        help_menu = self.menuBar().addMenu("&Help")
        sheet = QAction("&Keyboard shortcuts", self)
        sheet.setShortcut(QKeySequence("F1"))
        sheet.setToolTip("Every shortcut of the workstation")
        sheet.triggered.connect(self.show_shortcuts)
        help_menu.addAction(sheet)
        self.shortcuts_action = sheet
        about = QAction("&About", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def _about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, f"About {APP_TITLE}",
                          "Desktop workstation for crypto basis and yield strategies: edit a mode, replay "
                          "its backtest over real history hour by hour, check venues and trade live or on paper. "
                          "EMERGENCY STOP: the red toolbar button or Ctrl+Shift+X / F12.",
                          QMessageBox.StandardButton.Ok, self)
        box.open()    # non-blocking: exec() would run a nested event loop under the qasync loop

    def show_shortcuts(self) -> ShortcutsSheet:
        """Help > Keyboard shortcuts (non-modal; re-read from the window each time it opens)."""
        if self._shortcuts_sheet is None:
            self._shortcuts_sheet = ShortcutsSheet(self)
        self._shortcuts_sheet.show()
        self._shortcuts_sheet.raise_()
        return self._shortcuts_sheet

    # ---- view settings ------------------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        apply_theme(app, name)
        self.theme_actions[name].setChecked(True)
        if self.persist_layout:
            state.write(state.THEME_KEY, name)
        self.statusBar().showMessage(f"{style.theme_named(name).title} theme", 4000)

    def set_text_size(self, scale: float) -> None:
        apply_theme(QApplication.instance(), scale=scale)
        if self.persist_layout:
            state.write(state.FONT_SCALE_KEY, scale)
        self.statusBar().showMessage(f"Text size {scale:.0%}", 4000)

    def step_text_size(self, steps: int) -> None:
        scales = style.FONT_SCALES
        current = min(range(len(scales)), key=lambda i: abs(scales[i] - style.font_scale()))
        self.set_text_size(scales[max(0, min(len(scales) - 1, current + steps))])

    def run_edited_config(self) -> None:
        """Run the Config panel's current mode and draft in the backtest panel."""
        self.backtest_panel.set_mode(self.config_panel.mode, SOURCE_EDITOR)
        self.show_panel("backtest")
        self.backtest_panel.run()

    # ---- cross-panel wiring -------------------------------------------------------------------
    def _config_mode_changed(self, mode: str) -> None:
        if self.backtest_panel.mode != mode:
            self.backtest_panel.set_mode(mode, self.backtest_panel.source_combo.currentData())
        self._remember(state.MODE_KEY, mode)

    def _backtest_mode_changed(self, mode: str) -> None:
        if self.config_panel.mode != mode and not self.config_panel.locked:
            self.config_panel.set_mode(mode)
        self._remember(state.MODE_KEY, mode)

    def _speed_changed(self, label: str) -> None:
        self._remember(state.SPEED_KEY, label)

    def _dock_visibility(self, name: str, visible: bool) -> None:
        if visible and not self.docks[name].isFloating():
            self._front_panel = name

    def front_panel(self) -> str:
        """The docked panel on screen: QMainWindow parks the other tabs of a dock area outside the
        window (they stay 'visible'), so the one whose geometry is inside it is the selected tab.
        With panels side by side, the one shown last among them."""
        inside = [name for name, dock in self.docks.items()
                  if not dock.isFloating() and dock.isVisible() and dock.geometry().intersects(self.rect())]
        if self._front_panel in inside or not inside:
            return self._front_panel
        return inside[0]

    def _remember(self, key: str, value: str) -> None:
        if self.persist_layout:
            state.write(key, value)
    def open_lab_run(self, run) -> None:
        """A Lab run (a heatmap cell, a twin) in the backtest replay, without running it again."""
        from app.bridge import BacktestSpec
        spec = BacktestSpec(mode=run.spec.mode, capital=run.spec.capital, source_label=f"Lab: {run.label}")
        self.backtest_panel.load_result(run.result, spec, run.prepared[0])
        self.show_panel("backtest")
        self.statusBar().showMessage(f"In the replay: {run.label}", 8000)

    def _config_draft_changed(self, mode: str) -> None:
        self.backtest_panel.config_draft_changed(mode)

    def _live_session_changed(self, active: bool) -> None:
        self.config_panel.set_locked(active)

    def _live_stopped_close(self) -> None:
        self._closing_live = True
        self.close()

    # ---- layout persistence -------------------------------------------------------------------
    def restore_default_layout(self) -> None:
        for dock in self.docks.values():
            dock.setFloating(False)
        self.restoreState(self._default_state, LAYOUT_VERSION)
        self._arrange_default()
        self.statusBar().showMessage("Default layout restored", 4000)

    def _restore_layout(self) -> None:
        settings = app_settings()
        geometry = settings.value("main_window/geometry")
        state = settings.value("main_window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray) and not self.restoreState(state, LAYOUT_VERSION):
            self._arrange_default()
        self.safety_toolbar.show()          # a saved layout never hides the emergency stop

    def save_layout(self) -> None:
        settings = app_settings()
        settings.setValue("main_window/geometry", self.saveGeometry())
        settings.setValue("main_window/state", self.saveState(LAYOUT_VERSION))
        settings.setValue(state.PANEL_KEY, self.front_panel())
        settings.setValue(state.MODE_KEY, self.backtest_panel.mode)
        settings.setValue(state.SPEED_KEY, self.backtest_panel.controls.speed_combo.currentText())
        settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closing_live and not self.live_panel.shutdown(self._live_stopped_close):
            event.ignore()                 # the operator chooses how the sessions stop; then the window closes
            self.show_panel("live")
            return
        if self.persist_layout:
            self.save_layout()
        self.venue_checks_panel.shutdown()
        self.backtest_panel.shutdown()
        self.lab_panel.shutdown()
        self.bridge.shutdown()
        super().closeEvent(event)


def _fitting_size(size: tuple[int, int]) -> tuple[int, int]:
    """`size`, or less on a smaller screen (a window taller than the screen hides its status bar)."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return size
    available = screen.availableGeometry()
    return min(size[0], available.width()), min(size[1], available.height())


def _check_display() -> str | None:
    """A clear message instead of Qt's abort when there is no display to open a window on."""
    if sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM") \
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return ("error: no display found (DISPLAY / WAYLAND_DISPLAY are not set). Run the workstation in a "
                "desktop session, or use the headless commands: python main.py --help")
    return None


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists) with the app's names and theme."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_TITLE)
    apply_theme(app)
    return app


def run_app(services: Callable[[], AppServices], argv: list[str] | None = None,
            on_ready: Callable[[MainWindow], None] | None = None) -> int:
    """Open the workstation on a qasync loop; returns the exit code. ``services`` builds the app's
    services (bootstrap.app_services) once the display is known to work."""
    problem = _check_display()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    import qasync

    from app.crash import CrashReporter
    from app.logging_setup import install_log_file

    install_log_file()

    app = create_application(argv)
    # The theme and text size the operator chose last time.
    apply_theme(app, state.read_str(state.THEME_KEY, list(style.THEMES), style.DEFAULT_THEME),
                state.read_float(state.FONT_SCALE_KEY, style.FONT_SCALES, style.DEFAULT_FONT_SCALE))
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = MainWindow(services())
    reporter = CrashReporter(window)
    reporter.install(loop)
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    window.show()
    if on_ready is not None:
        QTimer.singleShot(0, lambda: on_ready(window))
    try:
        with loop:
            loop.run_until_complete(closed.wait())
    finally:
        reporter.uninstall()
    return 0
