"""Backtest replay: run off the UI thread, cancel, play/pause/step/seek, charts and event log
following the playhead, filters, click-to-seek, export, and running the config editor's version."""
from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt

from app.bridge import BacktestSpec
from app.panels.backtest_panel import CHARTS_PNG, SOURCE_EDITOR
from app.widgets.event_model import NOT_FUNDING

START = pd.Timestamp("2025-03-01", tz="UTC")
END = pd.Timestamp("2025-03-21 23:00", tz="UTC")


def run_and_wait(qtbot, panel, spec: BacktestSpec):
    with qtbot.waitSignal(panel.run_loaded, timeout=30000, raising=True):
        assert panel.run(spec) > 0
    return panel.result


@pytest.fixture
def loaded(window, qtbot):
    panel = window.backtest_panel
    run_and_wait(qtbot, panel, BacktestSpec(mode="eth_basis", start=START, end=END))
    return panel


def assert_drawn_to_playhead(panel):
    hour = panel.replay.playhead
    panel.frames.flush()
    expected = float(panel.chart_data.x[hour])
    drawn = panel.charts.drawn_until()
    assert set(drawn) == {"value", "pnl", "delta", "margin"}, "eth_basis has no health factor or LST peg chart"
    assert all(value == expected for value in drawn.values()), (hour, drawn, expected)
    assert panel.charts.rendered_hour == hour
    assert panel.controls.slider.value() == hour


def test_short_backtest_runs_off_the_ui_thread_and_loads(loaded):
    panel = loaded
    s = panel.result.summary
    assert s["mode"] == "eth_basis" and s["hours"] == 21 * 24
    assert panel.progress.value() == panel.progress.maximum()
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.replay.playhead == 0 and panel.chart_data.hours == 21 * 24
    assert panel.metrics.metrics.value("P&L", 2).endswith("USDT")
    assert "eth_basis" in panel.status.text()


def test_play_pause_step_and_seek_move_the_playhead_and_the_charts(loaded, qtbot):
    panel, replay = loaded, loaded.replay
    assert_drawn_to_playhead(panel)
    panel.controls.speed_combo.setCurrentIndex(2)          # 1 day/s
    panel.controls.play_button.click()
    assert replay.playing
    qtbot.waitUntil(lambda: replay.playhead >= 3, timeout=5000)
    panel.controls.play_button.click()
    assert not replay.playing
    paused_at = replay.playhead
    qtbot.wait(150)
    assert replay.playhead == paused_at, "pause stops the playhead"
    assert_drawn_to_playhead(panel)

    panel.controls.forward_button.click()
    assert replay.playhead == paused_at + 1
    panel.controls.back_button.click()
    panel.controls.back_button.click()
    assert replay.playhead == paused_at - 1
    assert_drawn_to_playhead(panel)

    panel.controls.slider.setValue(300)
    assert replay.playhead == 300
    assert_drawn_to_playhead(panel)
    assert panel.tables_hour == 300 and panel.events.model.playhead == 300
    panel.controls.end_button.click()
    assert replay.playhead == panel.chart_data.hours - 1
    assert_drawn_to_playhead(panel)
    # at the last hour the "to playhead" metrics equal the full run
    metrics = panel.metrics.metrics
    for name in ("Value", "APR", "APY", "Sharpe", "Max drawdown", "Funding earned", "Costs paid"):
        assert metrics.value(name, 1) == metrics.value(name, 2), name
    panel.controls.start_button.click()
    assert replay.playhead == 0


def test_max_speed_replay_reaches_the_end(loaded, qtbot):
    panel = loaded
    panel.controls.speed_combo.setCurrentIndex(panel.controls.speed_combo.count() - 1)
    with qtbot.waitSignal(panel.replay.finished, timeout=15000):
        panel.replay.play()
    assert panel.replay.at_end and not panel.replay.playing
    assert_drawn_to_playhead(panel)


def test_event_log_follows_the_playhead_filters_and_seeks_on_click(loaded, qtbot):
    panel = loaded
    log = panel.events
    model = log.model
    events = panel.result.events
    funding = [e for e in events if e.type == "funding"]
    trades = [e for e in events if e.type == "perp_trade"]
    assert funding and trades

    log.set_filter(None, None)
    assert model.total_filtered == len([e for e in events if e.parent is None])
    panel.replay.seek(100)
    panel.frames.flush()
    assert model.happened_count() == sum(1 for e in events if e.parent is None and e.hour <= 100)

    log.set_filter("okx", "funding")
    assert model.total_filtered == sum(1 for e in funding if e.venue == "okx")
    rows = [model.event_at(model.index(r, 0)) for r in range(model.rowCount())]
    assert rows and all(e.venue == "okx" and e.type == "funding" for e in rows)

    log.set_filter(None, NOT_FUNDING)
    assert all(model.event_at(model.index(r, 0)).type != "funding" for r in range(model.rowCount()))

    log.set_filter(None, "funding")
    target_row = model.rowCount() - 1
    target = model.event_at(model.index(target_row, 0))
    rect = log.tree.visualRect(model.index(target_row, 0))
    log.tree.scrollTo(model.index(target_row, 0))
    rect = log.tree.visualRect(model.index(target_row, 0))
    qtbot.mouseClick(log.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.replay.playhead == target.hour


def test_cancel_stops_a_running_backtest(window, qtbot):
    panel = window.backtest_panel
    with qtbot.waitSignal(panel.run_failed, timeout=30000) as blocker:
        assert panel.run(BacktestSpec(mode="usdt_market_neutral")) > 0
        panel.cancel_button.click()
    assert "cancelled" in blocker.args[0]
    assert panel.run_button.isEnabled() and panel.result is None


def test_bad_input_is_reported_not_run(window, qtbot):
    panel = window.backtest_panel
    panel.capital_edit.setText("-5")
    assert panel.run() == 0
    assert "capital -5 must be positive" in panel.error_banner.text()
    panel.capital_edit.clear()
    with qtbot.waitSignal(panel.run_failed, timeout=30000) as blocker:
        panel.run(BacktestSpec(mode="eth_basis", start=pd.Timestamp("2019-01-01", tz="UTC"),
                               end=pd.Timestamp("2019-02-01", tz="UTC")))
    assert "not covered" in blocker.args[0]


@pytest.mark.parametrize("text, needle", [
    ("inf", "capital inf must be a finite number"),
    ("nan", "capital nan must be a finite number"),
    ("-inf", "capital -inf must be a finite number"),
    ("1e30", "is above the largest accepted capital"),
    ("0", "capital 0 must be positive"),
    ("lots", "capital 'lots' is not a number"),
])
def test_the_capital_field_refuses_what_no_run_can_use(window, qtbot, text, needle):
    """Typing inf and pressing Run used to start a run whose charts crashed the whole workstation
    (SIGSEGV inside pyqtgraph, live sessions and e-stop included). Now the field is refused with
    the reason, nothing runs, and the app carries on."""
    panel = window.backtest_panel
    qtbot.keyClicks(panel.capital_edit, text)
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert not panel.bridge.running and panel.result is None
    assert panel.error_banner.isVisible() and needle in panel.error_banner.text()
    assert panel.run_button.isEnabled()
    panel.capital_edit.clear()


def test_a_capital_too_small_for_the_hedge_is_refused_by_the_engine(window, qtbot):
    panel = window.backtest_panel
    qtbot.keyClicks(panel.capital_edit, "1")
    with qtbot.waitSignal(panel.run_failed, timeout=30000) as blocker:
        assert panel.run(BacktestSpec(mode="eth_basis", start=START, end=END, capital=1.0)) > 0
    assert "minimum capital is 580 USDT" in blocker.args[0]
    assert panel.result is None and panel.run_button.isEnabled()


def test_charts_survive_non_finite_values(loaded, qtbot):
    """Whatever a result holds, nothing non-finite reaches Qt's painter: a chart fed NaN and
    infinities (values, P&L bands, margins and the initial value) draws gaps and stays alive."""
    from dataclasses import replace

    panel = loaded
    data = panel.chart_data
    poisoned = replace(data, initial_value=float("nan"), value=np.full(data.hours, np.inf),
                       pnl=np.full(data.hours, np.nan),
                       margin_pct={v: np.where(np.arange(data.hours) % 2, np.inf, a) for v, a in data.margin_pct.items()})
    for band in poisoned.bands:
        band.upper[:] = np.inf
        band.lower[:] = -np.inf
    panel.charts.set_data(poisoned)
    for hour in (0, data.hours // 2, data.hours - 1):
        panel.charts.render(hour)
        qtbot.wait(20)
    assert panel.charts.grab().width() > 0
    panel.charts.set_data(data)                  # and the real data draws again afterwards
    panel.charts.render(data.hours - 1)
    assert panel.charts.rendered_hour == data.hours - 1


def test_export_writes_the_result_files_and_a_chart_png(loaded, tmp_path):
    panel = loaded
    panel.replay.seek(50)
    paths = panel.export_to(tmp_path / "export")
    names = {p.name for p in paths}
    assert names == {"summary.json", "timeseries.csv", "events.csv", "balance_sheet.csv", CHARTS_PNG}
    summary = json.loads((tmp_path / "export" / "summary.json").read_text())
    assert summary["mode"] == "eth_basis" and summary["hours"] == panel.chart_data.hours
    assert summary["run_id"] == panel.result.run_id and panel._export_name().endswith(panel.result.run_id)
    sheet = pd.read_csv(tmp_path / "export" / "balance_sheet.csv")
    assert np.allclose(sheet["total.value"].to_numpy(), panel.result.output.values, rtol=1e-9)
    frame = pd.read_csv(tmp_path / "export" / "timeseries.csv")
    assert len(frame) == panel.chart_data.hours
    assert np.allclose(frame["value"].to_numpy(), panel.result.output.values, rtol=1e-9)
    with (tmp_path / "export" / "events.csv").open() as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == len(panel.result.events)
    from PySide6.QtGui import QImage
    image = QImage(str(tmp_path / "export" / CHARTS_PNG))
    assert image.width() > 600 and image.height() > 400
    assert panel.replay.playhead == 50 and panel.charts.rendered_hour == 50, "export restores the view"
    # exporting into the same folder again never overwrites: it is refused with a message
    before = (tmp_path / "export" / "summary.json").stat().st_mtime_ns
    assert panel.export_to(tmp_path / "export") == []
    assert "already holds files" in panel.error_banner.text()
    assert (tmp_path / "export" / "summary.json").stat().st_mtime_ns == before


def test_runs_the_config_editors_version(window, qtbot):
    config = window.config_panel
    config.set_mode("eth_basis")
    allocation = config.form.editor("hedge.allocation")
    allocation.rows["okx"][0].setChecked(False)            # weights now sum to 0.7: invalid
    panel = window.backtest_panel
    panel.set_mode("eth_basis", SOURCE_EDITOR)
    assert panel.run() == 0
    assert "problem" in panel.error_banner.text()

    config.set_field("hedge.allocation", {"binance": 0.5, "bybit": 0.5})
    panel.set_window_preset(7)
    with qtbot.waitSignal(panel.run_loaded, timeout=30000):
        assert panel.run() != 0
    assert panel.result.params.strategy.allocation == {"binance": 0.5, "bybit": 0.5}
    assert set(panel.chart_data.margin_pct) == {"binance", "bybit"}
    assert panel.result.summary["hours"] <= 7 * 24


def test_a_series_made_of_substitute_data_is_a_warning_banner(window, qtbot):
    panel = window.backtest_panel
    run_and_wait(qtbot, panel, BacktestSpec(mode="btc_basis", start=START, end=END))
    assert panel.error_banner.isVisible() and panel.error_banner.objectName() == "warnBanner"
    assert "okx BTC perp is 100% substitute data" in panel.error_banner.text()
    assert "data fallback: okx BTC perp: " in panel.status.toolTip()
    run_and_wait(qtbot, panel, BacktestSpec(mode="pure_lending", start=START, end=END))
    assert not panel.error_banner.isVisible()               # the next run's data is its own
