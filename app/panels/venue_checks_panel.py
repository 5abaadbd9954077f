"""Venue checks panel: every venue the selected mode needs, checked before going live.

Run resolves the mode (in a thread), then streams the checks (through `VenueAccess`) on the qasync loop:
each result lands in the venue x check grid the moment its check finishes, coloured OK / WARN / FAIL /
SKIP with its latency; the message and hint are in the cell's tooltip and in the details pane of the
selected cell. The checks are async (keyring reads and ccxt setup run in threads inside
venues.checks), so the window stays responsive, and Cancel stops a run at once. The credentials
dialog for the selected venue opens from here.

The same checks run headless: ``python main.py check-venues --mode MODE --env ENV --json``.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime
from html import escape

from PySide6.QtCore import QItemSelection, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.controllers.venues import VenueAccess
from app.panels.credentials_dialog import CredentialsDialog
from app.tasks import spawn
from app.widgets.banner import show_banner
from app.widgets.check_results import (
    STATUS_TEXT,
    CheckGridModel,
    StatusCellDelegate,
    check_title,
    latency_text,
)
from engine.config import MODES, ConfigError
from engine.domain.readiness import CheckResult
from engine.domain.readiness import CheckStatus as Status

HELP_TEXT = ("Checks every venue the mode needs: exchanges (reachable and latency, clock skew, authenticated "
             "account, key permissions, position mode, funding interval, markets) and the chain (RPC, chain id, "
             "block age, gas, contracts, balances, AAVE account). Keys are read from the OS keyring. "
             "Headless: <code>python main.py check-venues --mode MODE --env ENV --json</code>.")


class VenueChecksPanel(QWidget):
    #: (mode, environment) a run started
    run_started = Signal(str, str)
    #: one CheckResult, the moment its check finished
    result_added = Signal(object)
    #: every result of a completed run (list[CheckResult]); not emitted for a cancelled or failed run
    run_finished = Signal(object)
    #: (message) a run could not start or crashed
    run_failed = Signal(str)
    status_message = Signal(str)

    def __init__(self, access: VenueAccess, initial_mode: str = "eth_basis", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.access = access
        self.model = CheckGridModel(self)
        self.task: asyncio.Task | None = None
        self.last_results: list[CheckResult] = []
        self.last_run: tuple[str, str, datetime, float] | None = None    # mode, env, finished at, seconds
        self._dialogs: list[CredentialsDialog] = []
        self._keyring_checked = False
        self._build(initial_mode if initial_mode in MODES else MODES[0])

    # ---- layout -------------------------------------------------------------------------------
    def _build(self, mode: str) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 4)
        outer.setSpacing(4)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Mode"))
        self.mode_combo = QComboBox(self)
        for name in MODES:
            self.mode_combo.addItem(name, name)
        self.mode_combo.setCurrentIndex(MODES.index(mode))
        bar.addWidget(self.mode_combo)
        bar.addWidget(QLabel("Environment"))
        self.env_combo = QComboBox(self)
        for env in self.access.environments:
            self.env_combo.addItem(env, env)
        self.env_combo.setToolTip("testnet: Binance/Bybit testnets, OKX demo trading, Sepolia; production: real money")
        bar.addWidget(self.env_combo)
        self.run_button = QPushButton("Run checks", self)
        self.run_button.setObjectName("primary")
        self.run_button.setToolTip("Check every venue the selected mode needs, concurrently")
        self.run_button.clicked.connect(self.run)
        bar.addWidget(self.run_button)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        bar.addWidget(self.cancel_button)
        self.credentials_button = QPushButton("Credentials…", self)
        self.credentials_button.setToolTip("Set, test or delete the selected venue's keys in the OS keyring")
        self.credentials_button.clicked.connect(lambda: self.open_credentials())
        bar.addWidget(self.credentials_button)
        bar.addStretch(1)
        self.last_run_label = QLabel("Not run yet", self)
        self.last_run_label.setObjectName("dim")
        bar.addWidget(self.last_run_label)
        outer.addLayout(bar)

        self.keyring_banner = QLabel(self)
        self.keyring_banner.setObjectName("warnBanner")
        self.keyring_banner.setWordWrap(True)
        self.keyring_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.keyring_banner.hide()
        outer.addWidget(self.keyring_banner)
        self.verdict = QLabel(self)
        self.verdict.setWordWrap(True)
        self.verdict.hide()
        outer.addWidget(self.verdict)

        split = QSplitter(Qt.Orientation.Vertical, self)
        self.grid = QTableView(split)
        self.grid.setModel(self.model)
        self.grid.setItemDelegate(StatusCellDelegate(self.grid))
        self.grid.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.verticalHeader().hide()
        self.grid.setWordWrap(False)
        header = self.grid.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setDefaultSectionSize(96)
        header.setMinimumSectionSize(60)
        self.grid.verticalHeader().setDefaultSectionSize(26)
        self.grid.selectionModel().selectionChanged.connect(self._selection_changed)
        self.grid.doubleClicked.connect(self._double_clicked)
        self.model.modelReset.connect(self._size_columns)
        self.model.columnsInserted.connect(self._size_columns)
        details_box = QWidget(split)
        details_layout = QVBoxLayout(details_box)
        details_layout.setContentsMargins(0, 0, 0, 0)
        self.details = QTextBrowser(details_box)
        self.details.setOpenLinks(False)
        self.details.setPlaceholderText("Select a cell for its message and hint; double-click a venue to edit its "
                                        "credentials.")
        details_layout.addWidget(self.details)
        help_label = QLabel(HELP_TEXT, details_box)
        help_label.setObjectName("sectionHelp")
        help_label.setWordWrap(True)
        help_label.setTextFormat(Qt.TextFormat.RichText)
        details_layout.addWidget(help_label)
        split.addWidget(self.grid)
        split.addWidget(details_box)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 1)
        outer.addWidget(split, 1)

    def _size_columns(self, *_args) -> None:
        header = self.grid.horizontalHeader()
        header.resizeSection(0, 110)
        header.resizeSection(1, 90)

    # ---- public API ---------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    @property
    def environment(self) -> str:
        return self.env_combo.currentData()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        self.mode_combo.setCurrentIndex(MODES.index(mode))

    def set_environment(self, environment: str) -> None:
        environments = self.access.environments
        if environment not in environments:
            raise ValueError(f"unknown environment {environment!r}; allowed: {', '.join(environments)}")
        self.env_combo.setCurrentIndex(environments.index(environment))

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def run(self) -> asyncio.Task | None:
        """Start a run for the selected mode and environment (ignored while one runs)."""
        if self.running:
            return self.task
        mode, env = self.mode, self.environment
        # the buttons change at the click, not when the task gets its first turn
        self._set_running(True, f"Checking {mode} on {env}…")
        self.verdict.hide()
        self.details.clear()
        task = spawn(self._run(mode, env), name=f"venue-checks:{mode}:{env}")
        self.task = task
        # a finished run is dropped at once: a cancelled task's traceback keeps every frame of the
        # checks (and their futures) alive for as long as anything holds the task
        task.add_done_callback(lambda t: setattr(self, "task", None) if self.task is t else None)
        return task

    def cancel(self) -> None:
        if self.running:
            self.task.cancel()

    def shutdown(self) -> None:
        self.cancel()
        for dialog in list(self._dialogs):
            dialog.close()

    # ---- the run ------------------------------------------------------------------------------
    async def _run(self, mode: str, env: str) -> None:
        self.run_started.emit(mode, env)
        t0 = time.perf_counter()
        results: list[CheckResult] = []
        finished = False
        try:
            await self._check_keyring()
            try:
                run = await self.access.plan(mode, env)
            except (ConfigError, ValueError) as exc:
                self._show_verdict(f"Cannot check {mode}: {exc}", "banner")
                self.run_failed.emit(str(exc))
                return
            self.model.start(run.venues, run.expected)
            async for result in self.access.checks(run):
                results.append(result)
                self.model.add(result)
                self.result_added.emit(result)
            finished = True
        except asyncio.CancelledError:
            self._show_verdict(f"Cancelled after {time.perf_counter() - t0:.1f} s; {len(results)} result(s) shown.",
                               "warnBanner")
            raise
        finally:
            self.model.finish()
            seconds = time.perf_counter() - t0
            if finished:
                self.last_results = results
                self.last_run = (mode, env, datetime.now().astimezone(), seconds)
            self._set_running(False)
            if finished:
                self._show_summary(results, mode, env, seconds)
                self.run_finished.emit(results)
            self._refresh_details()

    def _set_running(self, running: bool, text: str = "") -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if running:
            self.last_run_label.setText(text)
        elif self.last_run is not None:
            mode, env, at, seconds = self.last_run
            self.last_run_label.setText(f"Last run {at:%Y-%m-%d %H:%M:%S %Z} · {mode} on {env} · {seconds:.1f} s")
        else:
            self.last_run_label.setText("Not run yet")

    def _show_summary(self, results: list[CheckResult], mode: str, env: str, seconds: float) -> None:
        counts = {s: sum(1 for r in results if r.status is s) for s in Status}
        tally = " · ".join(f"{n} {s.value}" for s, n in counts.items() if n)
        failed = sorted({r.venue for r in results if r.status is Status.FAIL})
        if self.access.ready(results):
            warn = " (look at the warnings)" if counts[Status.WARN] else ""
            self._show_verdict(f"Ready for {mode} on {env}: no check failed{warn}. {tally}.", "infoBanner")
        else:
            self._show_verdict(f"Not ready for {mode} on {env}: {counts[Status.FAIL]} check(s) failed at "
                               f"{', '.join(failed)}. {tally}. Select a red cell for the hint.", "banner")
        self.status_message.emit(f"Venue checks {mode}/{env}: {tally} in {seconds:.1f} s")

    def _show_verdict(self, text: str, kind: str) -> None:
        show_banner(self.verdict, text, kind)

    # ---- details ------------------------------------------------------------------------------
    def _selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._refresh_details()

    def selected_venue(self) -> str | None:
        index = self.grid.currentIndex()
        if index.isValid() and index.row() < len(self.model.venues):
            return self.model.venues[index.row()]
        return None

    def _refresh_details(self) -> None:
        index = self.grid.currentIndex()
        if not index.isValid() or index.row() >= len(self.model.venues):
            return
        result = self.model.result_at(index)
        if result is not None:
            self.details.setHtml(_result_html(result))
            return
        venue = self.model.venues[index.row()]
        rows = sorted(self.model.venue_results(venue), key=lambda r: self.model._order(r.check))
        if not rows:
            self.details.setHtml(f"<b>{escape(venue)}</b>: no result yet.")
            return
        self.details.setHtml("<hr>".join(_result_html(r) for r in rows))

    def _double_clicked(self, index: QModelIndex) -> None:
        if index.isValid() and index.column() < len(CheckGridModel.FIXED):
            self.open_credentials(self.model.venues[index.row()])

    # ---- credentials --------------------------------------------------------------------------
    def open_credentials(self, venue: str | None = None) -> CredentialsDialog:
        """The credentials dialog (non-modal, open()), for `venue` or the selected one when it has keys."""
        venue = venue or self.selected_venue()
        if venue not in self.access.credential_venues():
            venue = None
        dialog = CredentialsDialog(self.access, environment=self.environment, venue=venue, mode=self.mode,
                                   parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialogs.append(dialog)
        dialog.destroyed.connect(lambda *_: self._dialogs.remove(dialog) if dialog in self._dialogs else None)
        dialog.open()
        return dialog

    # ---- keyring availability -----------------------------------------------------------------
    async def _check_keyring(self) -> None:
        """Say up front when there is no keyring (every credential check would FAIL otherwise); once
        per panel, at the first run (the probe talks to D-Bus, so not while the app starts)."""
        if self._keyring_checked:
            return
        self._keyring_checked = True
        problem = await self.access.keyring_problem()
        if problem is not None:
            self.keyring_banner.setText(f"No OS keyring: {problem.message}. {problem.hint}")
            self.keyring_banner.show()
        else:
            self.keyring_banner.hide()


def _result_html(result: CheckResult) -> str:
    color = STATUS_TEXT[result.status]
    latency = latency_text(result)
    head = (f"<b>{escape(result.venue)} · {escape(check_title(result.check))}</b> — "
            f"<b style='color:{color}'>{result.status.value}</b>" + (f" ({latency})" if latency else ""))
    body = escape(result.message)
    hint = f"<br><i>Hint:</i> {escape(result.hint)}" if result.hint else ""
    return f"{head}<br>{body}{hint}"
