"""Operator experience: the crosshair readout never goes stale, the margin chart shows every venue,
replay keys work wherever the focus is in the panel, the shortcut sheet lists every shortcut,
every config field explains itself, themes and text size, state kept across restarts, a
1366x768 screen, the event log's units, exported images and the HTML report action."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QAction, QColor, QFontMetrics, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication

from app import style
from app.bridge import BacktestSpec
from app.main_window import MainWindow

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

START = pd.Timestamp("2025-03-01", tz="UTC")
END = pd.Timestamp("2025-03-10 23:00", tz="UTC")


def run_and_wait(qtbot, panel, spec: BacktestSpec):
    with qtbot.waitSignal(panel.run_loaded, timeout=60000, raising=True):
        assert panel.run(spec) > 0
    panel.frames.flush()
    return panel.result


@pytest.fixture
def loaded(window, qtbot):
    panel = window.backtest_panel
    run_and_wait(qtbot, panel, BacktestSpec(mode="eth_basis", start=START, end=END))
    return panel


def _hover(qtbot, charts, plot: str = "value", fraction: float = 0.3) -> int:
    """Move the real mouse over a plot (through the view's viewport) and wait for the readout."""
    rect = charts.plots[plot].item.vb.sceneBoundingRect()
    scene_point = QPointF(rect.left() + fraction * rect.width(), rect.center().y())
    qtbot.mouseMove(charts.graphics.viewport(), charts.graphics.mapFromScene(scene_point))
    qtbot.waitUntil(lambda: charts.hover_hour is not None, timeout=3000)
    return charts.hover_hour


def _leave(charts) -> None:
    QApplication.sendEvent(charts.graphics.viewport(), QEvent(QEvent.Type.Leave))


# ---- the crosshair readout ------------------------------------------------------------------------
def test_the_readout_follows_the_hover_then_the_playhead_again(loaded, qtbot):
    charts = loaded.charts
    loaded.replay.seek(100)
    loaded.frames.flush()
    hour = _hover(qtbot, charts, fraction=0.7)
    assert hour != 100
    when = pd.Timestamp(charts.data.x[hour], unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")
    assert when in charts.readout.text() and "eth_basis" in charts.readout.text()
    loaded.replay.seek(120)                      # the playhead moves under a hovering mouse
    loaded.frames.flush()
    assert when in charts.readout.text(), "hovering shows the hovered hour"

    _leave(charts)
    assert charts.hover_hour is None
    playhead = pd.Timestamp(charts.data.x[120], unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")
    assert playhead in charts.readout.text(), "after the mouse leaves, the readout follows the playhead"
    # The rate-limited mouse signal can deliver a position from before the Leave: it must not
    # bring the stale hour back.
    rect = charts.plots["value"].item.vb.sceneBoundingRect()
    charts._on_mouse_moved((rect.center(),))
    assert charts.hover_hour is None and playhead in charts.readout.text()


def test_a_new_run_never_keeps_the_previous_runs_numbers(loaded, qtbot):
    """Hovering, then pressing Run (the mouse never leaves the charts): the readout used to freeze
    on the old run's hour, and an eth_leveraged run kept the USDT header of the run before."""
    charts = loaded.charts
    _hover(qtbot, charts, fraction=0.5)
    old = charts.readout.text()
    assert "USDT" in old and "eth_basis" in old
    assert loaded.run(BacktestSpec(mode="eth_leveraged", start=START, end=END)) > 0
    assert "Running eth_leveraged" in charts.readout.text() and "eth_basis" in charts.readout.text(), \
        "while the run is under way the readout says the charts still show the previous run"
    with qtbot.waitSignal(loaded.run_loaded, timeout=60000):
        pass
    loaded.frames.flush()
    text = charts.readout.text()
    assert charts.hover_hour is None
    assert "eth_leveraged" in text and "(ETH)" in text and "USDT" not in text and "Running" not in text
    first = pd.Timestamp(charts.data.x[0], unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")
    assert first in text, "the readout shows the new run's playhead hour"
    loaded.replay.seek(50)
    loaded.frames.flush()
    assert pd.Timestamp(charts.data.x[50], unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M") in charts.readout.text()


# ---- the margin chart ---------------------------------------------------------------------------
def test_every_venue_is_visible_on_the_margin_chart_in_percent_with_labelled_lines(window, qtbot):
    panel = window.backtest_panel
    run_and_wait(qtbot, panel, BacktestSpec(mode="btc_basis", start=START, end=END))
    data, plot = panel.chart_data, panel.charts.plots["margin"]
    assert set(data.margin_pct) == {"binance", "bybit", "okx"}
    venues = np.array([data.margin_pct[v] for v in ("binance", "bybit", "okx")])
    assert np.nanmax(venues) > 5, "ratios are in percent (25, not 0.25)"
    curves = [curve for curve, _ in plot.curves]
    widths = [curve.opts["pen"].widthF() for curve in curves]
    colors = {curve.opts["pen"].color().name() for curve in curves}
    assert len(colors) == 3, "a colour per venue"
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3, \
        "drawn widest first: coinciding venues stay visible as layers"
    assert [curve.zValue() for curve in curves] == sorted(curve.zValue() for curve in curves)
    lo, hi = plot.y_range
    assert lo <= 0 and 30 <= hi < 40, f"the chart shows the 0-30 % band, not the surplus up to 300 % ({lo}, {hi})"
    marks = {text: value for value, text, _ in plot.item.getAxis("right").marks}
    trigger = 100 * yaml.safe_load((CONFIG_DIR / "modes" / "btc_basis.yaml").read_text())["rebalancing"][
        "margin_ratio_trigger"]                          # the mode file's own trigger, not a copy of it
    assert marks == {"maint. 5%": 5.0, "warn 20%": 20.0, f"trigger {trigger:g}%": trigger}
    legend = plot.title_html
    for venue in ("binance", "bybit", "okx"):
        value = data.margin_pct[venue][panel.charts.rendered_hour]
        assert f"{venue} <b>{value:.1f} %</b>" in legend, "the legend shows each venue's value"
    readout = panel.charts.readout.text()
    assert re.search(r"binance</span> <b>\d+\.\d %</b>", readout), "the readout speaks percent as well"


def test_threshold_labels_are_pushed_apart_and_stay_inside_the_axis(qapp):
    from app.widgets.charts import ThresholdAxis

    axis = ThresholdAxis()
    axis.range = [0.99, 1.07]
    axis.set_marks([(1.0, "liq. 1.0", "#f00"), (1.015, "floor 1.015", "#fa0"), (1.069, "top", "#0f0")])
    positions = axis.label_positions(height=60.0, line=14.0)
    labels = [label for _y, label, _t, _c in positions]
    assert all(b - a >= 14.0 - 1e-9 for a, b in itertools.pairwise(labels)), labels
    assert all(7.0 - 1e-9 <= y <= 53.0 + 1e-9 for y in labels), labels
    assert [t for _y, _l, t, _c in positions] == ["top", "floor 1.015", "liq. 1.0"]


def test_directional_modes_do_not_call_their_eth_a_neutrality_gap(window, qtbot):
    panel = window.backtest_panel
    run_and_wait(qtbot, panel, BacktestSpec(mode="eth_staking_only", start=START, end=END))
    title = panel.charts.plots["delta"].title
    assert "market neutral" not in title and "not price risk" in title


# ---- keyboard -----------------------------------------------------------------------------------
def test_replay_keys_work_wherever_the_focus_is_in_the_panel(loaded, qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    replay = loaded.replay
    with qtbot.waitSignal(loaded.run_loaded, timeout=60000):
        loaded.run_button.click()                   # the sequence from the report: Run, then Space
    replay.pause()
    box = loaded.autoplay_box
    checked = box.isChecked()
    box.setFocus()
    qtbot.waitUntil(box.hasFocus, timeout=2000)
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert replay.playing and box.isChecked() == checked, "Space plays; it does not toggle the checkbox"
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert not replay.playing

    for target in (loaded.events.tree, loaded.metrics, loaded.controls.slider, loaded.mode_combo):
        target.setFocus()
        qtbot.waitUntil(target.hasFocus, timeout=2000)
        at = replay.playhead
        qtbot.keyClick(target, Qt.Key.Key_Right)
        assert replay.playhead == at + 1, f"→ steps with the focus in {type(target).__name__}"
    at = replay.playhead
    qtbot.keyClick(loaded.events.tree, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert replay.playhead == at + 24, "Shift+→ steps a day"
    qtbot.keyClick(loaded.events.tree, Qt.Key.Key_End)
    assert replay.at_end
    qtbot.keyClick(loaded.events.tree, Qt.Key.Key_Home)
    assert replay.playhead == 0
    speed = loaded.controls.speed_combo.currentIndex()
    qtbot.keyClick(loaded.events.tree, Qt.Key.Key_BracketLeft)
    assert loaded.controls.speed_combo.currentIndex() == speed - 1

    # A text field keeps its editing keys: typing a space in Capital does not start the replay.
    loaded.capital_edit.setFocus()
    qtbot.waitUntil(loaded.capital_edit.hasFocus, timeout=2000)
    qtbot.keyClicks(loaded.capital_edit, "1 000")
    assert loaded.capital_edit.text() == "1 000" and not replay.playing


def test_transport_buttons_have_visible_icons_in_both_themes(loaded, window):
    controls = loaded.controls
    for theme in ("light", "dark"):
        window.set_theme(theme)
        for button in (controls.start_button, controls.back_button, controls.play_button, controls.forward_button,
                       controls.end_button):
            image = button.icon().pixmap(20, 20).toImage()
            assert not button.icon().isNull()
            painted = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())
                       if image.pixelColor(x, y).alpha() > 200]
            assert painted, "the icon paints something"
            want = QColor(style.current().text)
            assert all(abs(c.red() - want.red()) + abs(c.green() - want.green()) + abs(c.blue() - want.blue()) <= 6
                       for c in painted), "in the theme's text colour"


def test_the_shortcut_sheet_lists_every_shortcut_of_the_window(window):
    from app.widgets.shortcuts_sheet import collect_shortcuts

    sheet = window.show_shortcuts()
    try:
        rows = collect_shortcuts(window)
        listed = {row.keys for row in rows}
        def native(seq: QKeySequence) -> str:
            return seq.toString(QKeySequence.SequenceFormat.NativeText)

        for action in window.findChildren(QAction):
            if action.shortcuts():
                assert ", ".join(native(k) for k in action.shortcuts()) in listed, action.text()
        for shortcut in window.findChildren(QShortcut):
            if not shortcut.key().isEmpty():
                assert ", ".join(native(k) for k in shortcut.keys()) in listed
                assert shortcut.whatsThis(), f"the shortcut {native(shortcut.key())} has no description"
        estop = next(row for row in rows if "EMERGENCY STOP" in row.action)
        assert estop.keys == "Ctrl+Shift+X, F12" and estop.scope.startswith("anywhere in the app")
        space = next(row for row in rows if row.keys == "Space")
        assert "Play" in space.action and space.scope == "in the Backtest replay panel"
        copy = next(row for row in rows if row.keys == "Ctrl+C")
        assert copy.scope == "in the Backtest replay panel, when the event log has the focus"
        for keys in ("F1", "Ctrl+R", "Ctrl+Shift+E", "Home", "End"):
            assert keys in listed, keys
        assert sheet.table.rowCount() >= len(rows)
        assert "(no description)" not in {row.action for row in rows}
    finally:
        sheet.close()


def test_every_config_field_in_every_mode_has_a_tooltip_from_its_model():
    from app.panels.config_panel import ConfigPanel
    from engine.config import MODES

    panel = ConfigPanel(MODES[0])
    try:
        for mode in MODES:
            panel.set_mode(mode)
            editors = {**panel.form.editors, "share_class": panel.share_class_editor}
            assert len(editors) > 30
            for key, editor in editors.items():
                described = editor.spec.help
                assert described.strip(), f"{mode}: {key} has no description in engine/config/mode_models.py"
                assert editor.toolTip().startswith(described), key
                if key in panel.form.labels:
                    assert panel.form.labels[key].toolTip().startswith(described), key
    finally:
        panel.deleteLater()


def test_sections_a_mode_switches_off_start_folded_and_an_error_unfolds_them(window):
    config = window.config_panel
    config.set_mode("pure_lending")
    groups = config.form.groups
    folded = {name for name, section in groups.items() if section.collapsed}
    assert folded == {"staking", "leverage", "hedge", "rebalancing"}
    assert "off in this mode" in groups["hedge"].toggle.text()
    assert not groups["lending"].collapsed and not groups["risk"].collapsed
    config.set_field("hedge.margin_ratio_target", 7.0)            # out of range: an error in Hedge
    assert not groups["hedge"].collapsed, "a folded section never hides an error"
    config.set_mode("eth_leveraged")
    assert {n for n, s in groups.items() if s.collapsed} == {"lending", "hedge"}


# ---- screen size, theme, text size, state -------------------------------------------------------
def test_the_window_fits_a_1366x768_screen(window, qtbot):
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: window.width() == 1366 and window.height() == 768, timeout=3000)
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768, hint
    for name in window.docks:
        window.show_panel(name)
        QApplication.processEvents()
        assert window.width() == 1366, f"the {name} panel forces the window wider"


def test_theme_and_text_size_apply_everywhere_and_are_remembered(loaded, window, state_dir):
    from app import settings as state

    window.persist_layout = True
    base = QApplication.font().pointSizeF()
    try:
        window.set_theme("light")
        assert QApplication.palette().window().color().name() == style.LIGHT.background
        assert loaded.charts.graphics.backgroundBrush().color().name() == style.LIGHT.chart_background
        assert set(loaded.charts.plots) == {"value", "pnl", "delta", "margin"}, "the charts were rebuilt"
        assert state.read_str(state.THEME_KEY, list(style.THEMES), "dark") == "light"
        window.step_text_size(+1)
        assert QApplication.font().pointSizeF() == pytest.approx(base * 1.15, rel=0.01)
        axis = loaded.charts.plots["value"].item.getAxis("left")
        assert axis.width() == style.scaled_px(80)
        assert state.read_float(state.FONT_SCALE_KEY, style.FONT_SCALES, 1.0) == pytest.approx(1.15)
    finally:
        window.set_theme("dark")
        window.set_text_size(1.0)
    assert QApplication.font().pointSizeF() == pytest.approx(base)


def test_mode_speed_and_panel_are_kept_and_the_two_panels_share_the_mode(qtbot, bridge, services, state_dir):
    first = MainWindow(services, bridge=bridge, persist_layout=True)
    qtbot.addWidget(first)
    first.show()
    first.backtest_panel.set_mode("btc_basis")
    assert first.config_panel.mode == "btc_basis", "Config follows the Backtest panel's mode"
    first.config_panel.set_mode("eth_leveraged")
    assert first.backtest_panel.mode == "eth_leveraged", "and the other way round"
    first.backtest_panel.controls.speed_combo.setCurrentIndex(1)
    speed = first.backtest_panel.controls.speed_combo.currentText()
    first.show_panel("config")
    QApplication.processEvents()
    first.save_layout()

    second = MainWindow(services, bridge=bridge, persist_layout=True)
    qtbot.addWidget(second)
    second.show()
    QApplication.processEvents()
    assert second.config_panel.mode == second.backtest_panel.mode == "eth_leveraged"
    assert second.backtest_panel.controls.speed_combo.currentText() == speed
    on_screen = [n for n, d in second.docks.items() if d.geometry().intersects(second.rect())]
    assert on_screen == ["config"], "the saved panel is the one in front (Qt parks the other tabs off-window)"
    assert second.front_panel() == "config"


# ---- tables --------------------------------------------------------------------------------------
def test_event_log_keeps_usd_cost_and_eth_gas_apart_and_fits_its_columns(window, qtbot):
    from app.widgets.event_model import COLUMNS

    panel = window.backtest_panel
    run_and_wait(qtbot, panel, BacktestSpec(mode="usdt_market_neutral", start=START, end=END))
    log = panel.events
    log.set_filter(None, None)
    model = log.model
    assert COLUMNS == ("Time (UTC)", "Venue", "Type", "Amount", "Cost (USD)", "Gas (ETH)", "Details")
    col = {name: i for i, name in enumerate(COLUMNS)}
    rows = [(model.index(r, 0), model.event_at(model.index(r, 0))) for r in range(model.rowCount())]
    swap_index, swap = next((i, e) for i, e in rows if e.type == "swap")
    amount = model.index(swap_index.row(), col["Amount"]).data()
    assert amount.endswith(swap.to_asset) and swap.asset in amount, "each amount with its asset"
    assert model.index(swap_index.row(), col["Cost (USD)"]).data() == f"{swap.execution_cost_usd:,.2f}"
    assert float(model.index(swap_index.row(), col["Gas (ETH)"]).data()) == pytest.approx(swap.gas_eth)
    for index, event in rows[:200]:
        tip = model.data(model.index(index.row(), 0), Qt.ItemDataRole.ToolTipRole)
        assert "None" not in tip and "parent:" not in tip and event.type in tip
    header = log.tree.header()
    metrics = QFontMetrics(log.tree.font())
    for name in ("Time (UTC)", "Venue", "Type"):
        longest = max(model.widest[col[name]], key=metrics.horizontalAdvance)
        assert header.sectionSize(col[name]) >= metrics.horizontalAdvance(longest), name
    assert model.headerData(col["Gas (ETH)"], Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)


# ---- exports --------------------------------------------------------------------------------------
def test_exported_charts_are_the_plots_alone_at_print_width(loaded, tmp_path):
    from app.panels.backtest_panel import CHARTS_PNG
    from app.widgets.charts import EXPORT_ROW_HEIGHT

    loaded.replay.seek(40)
    loaded.frames.flush()
    paths = loaded.export_to(tmp_path / "run")
    image = QImage(str(tmp_path / "run" / CHARTS_PNG))
    ratio = image.devicePixelRatio() or 1.0
    assert image.width() / ratio >= 1600
    assert image.height() / ratio >= EXPORT_ROW_HEIGHT * len(loaded.charts.plots)
    assert loaded.charts.rendered_hour == 40, "exporting leaves the on-screen charts where they were"
    assert [p.name for p in paths][-1] == CHARTS_PNG and len(paths) == 5   # + balance_sheet.csv


def test_the_panel_writes_a_self_contained_html_report(loaded, qtbot, tmp_path):
    out = tmp_path / "report.html"
    with qtbot.waitSignal(loaded.report_written, timeout=60000) as signal:
        assert loaded.export_report(out)
    assert signal.args == [str(out)]
    text = out.read_text(encoding="utf-8")
    assert "<script src=" not in text and "Plotly.newPlot" in text and "eth_basis" in text
    assert text.count("class=\"plotly-graph-div\"") == 4      # value, components, delta, margin


def test_live_pnl_axis_reads_clock_times(qtbot):
    from app.widgets.live_chart import LivePnlChart
    from engine.domain.pnl import COMPONENTS

    chart = LivePnlChart()
    qtbot.addWidget(chart)
    chart.resize(600, 300)
    chart.show()
    t0 = pd.Timestamp("2025-06-01 12:00:54", tz="UTC").timestamp()
    for i in range(4):
        chart.append(t0 + i, 1.5 * i, tuple(0.1 * i for _ in COMPONENTS))
    chart.redraw()
    axis = chart.item.getAxis("bottom")
    qtbot.waitUntil(lambda: hasattr(axis, "fontMetrics"), timeout=3000)     # painted once
    (x0, x1), _ = chart.item.vb.viewRange()
    assert x1 - x0 >= 60, "a young session still shows a minute"
    axis.setZoomLevelForDensity((x1 - x0) / 600)
    levels = axis.tickValues(x0, x1, 600)
    strings = [s for spacing, values in levels for s in axis.tickStrings(values, 1, spacing)]
    assert strings and all(re.fullmatch(r"\d\d:\d\d(:\d\d)?|\w{3} \d\d", s) for s in strings), strings
