"""Lab panel: a sweep off the UI thread fills the heatmap, a click opens the cell in the replay, a
twin joins the history and the two replay together; cancel stops a sweep. Real engine, real data."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from PySide6.QtCore import Qt


@pytest.fixture
def lab_runner(qasync_loop, cache_dir):
    from app.lab_runner import LabRunner
    from bootstrap import DATA_DIR, backtest_service
    runner = LabRunner(functools.partial(backtest_service, DATA_DIR, cache_dir))
    yield runner
    runner.shutdown()


@pytest.fixture
def lab(qtbot, lab_runner, tmp_path):
    from app.panels.lab_panel import LabPanel
    panel = LabPanel(lab_runner, store_root=tmp_path / "lab")
    qtbot.addWidget(panel)
    panel.resize(1400, 900)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _configure(panel, scenario="oracle_capo_misprice_2_85pct", backend="serial"):
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("eth_leveraged"))
    panel.axis_keys[0].setCurrentText("leverage.target_ltv")
    panel.axis_values[0].setText("0.9,0.925")
    panel.axis_keys[1].setCurrentText("rebalancing.hf_floor")
    panel.axis_values[1].setText("1.012,1.015")
    panel.scenario_combo.setCurrentIndex(panel.scenario_combo.findData(scenario))
    panel.at_edit.setText("2025-01-15T00:00Z")
    panel.start_edit.setText("2024-12-01")
    panel.end_edit.setText("2025-02-28")
    panel.backend_combo.setCurrentIndex(panel.backend_combo.findData(backend))


def test_sweep_fills_the_heatmap_and_a_click_opens_the_cell(qtbot, lab):
    _configure(lab)
    with qtbot.waitSignal(lab.runner.sweep_finished, timeout=120_000):
        assert lab.run() > 0
        assert not lab.run_button.isEnabled() and lab.cancel_button.isEnabled()
    assert lab.run_button.isEnabled()
    assert len(lab.cells) == 4 and all(r["status"] == "ok" for r in lab.cells.values())
    lab.metric_combo.setCurrentIndex(lab.metric_combo.findText("liquidations"))
    values = lab.heatmap.values
    assert values.shape == (2, 2)
    # at LTV 0.9 the 2.85 % oracle drop is survived, at 0.925 it liquidates (see the stress tests)
    assert values[0].tolist() == [0.0, 0.0] and values[1].tolist() == [1.0, 1.0]
    assert lab.heatmap.cell_text(1, 0) == "1"
    assert [t for _, t in lab.heatmap.plot.getAxis("bottom")._tickLevels[0]] == ["0.9", "0.925"]

    opened = []
    lab.open_in_replay.connect(opened.append)
    with qtbot.waitSignal(lab.open_in_replay, timeout=60_000):
        lab.open_cell(1, 0)
    run = opened[0]
    assert run.spec.overrides == {"leverage.target_ltv": 0.925, "rebalancing.hf_floor": 1.012}
    assert run.result.summary["liquidations"] == 1 and len(lab.history) == 1

    # the stressed run's unshocked twin joins the history and both replay on the same axes
    lab.history_table.selectRow(0)
    with qtbot.waitSignal(lab.runner.run_finished, timeout=60_000):
        assert lab.add_twin() > 0
    qtbot.waitUntil(lambda: len(lab.history) == 2)
    twin = lab.history[1]
    assert twin.spec.scenario is None and twin.result.summary["liquidations"] == 0
    drawn = lab.compare.drawn_points()
    hours = run.result.summary["hours"]
    assert drawn["return"] == [hours, hours] and drawn["hf"] == [hours, hours]
    lab.compare.replay.seek(100)
    lab.compare.frames.flush()
    assert lab.compare.drawn_points()["return"] == [101, 101]
    a, b = lab.compare.runs
    assert np.isclose(a.ys["return"][:1000], b.ys["return"][:1000]).all()     # same path before --at
    assert a.ys["return"][-1] < b.ys["return"][-1]                             # the liquidation costs


def test_a_sweep_can_be_cancelled_and_resumes_from_its_store(qtbot, lab):
    _configure(lab, scenario="none")
    lab.start_edit.setText("")
    lab.end_edit.setText("")
    lab.axis_values[0].setText("0.86,0.87,0.88,0.89,0.9,0.91")
    lab.axis_values[1].setText("1.012,1.015,1.02")
    results = []
    lab.runner.sweep_finished.connect(lambda job, rows, cancelled: results.append((rows, cancelled)))

    def cancel_after_the_first_trial(job, progress):
        # runs on the worker thread inside emit: the cancel is set before the next trial starts, so the
        # test does not race the machine's speed (a fast CI box finished all 18 before a timed cancel)
        if progress.done >= 1:
            lab.runner.cancel()
    lab.runner.sweep_progress.connect(cancel_after_the_first_trial, Qt.ConnectionType.DirectConnection)
    assert lab.run() > 0
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)
    lab.runner.sweep_progress.disconnect(cancel_after_the_first_trial)
    rows, cancelled = results[0]
    assert cancelled and 1 <= len(rows) < 18
    assert lab.run_button.isEnabled() and not lab.cancel_button.isEnabled()
    with qtbot.waitSignal(lab.runner.sweep_finished, timeout=120_000):
        lab.run()
    rows, cancelled = results[1]
    assert not cancelled and len(rows) == 18
    assert f"{len(results[0][0])} from the store" in lab.eta_label.text()


def test_bad_axes_are_reported_not_run(qtbot, lab):
    _configure(lab)
    lab.axis_values[0].setText("0.9,,0.92")
    assert lab.run() == 0
    assert "empty value" in lab.status.text()
    lab.axis_values[0].setText("0.9")
    lab.at_edit.setText("tomorrow")
    assert lab.run() == 0 and "is not a time" in lab.status.text()


def test_main_window_opens_a_lab_cell_in_the_backtest_replay(qtbot, bridge, services, lab_runner, tmp_path,
                                                              monkeypatch):
    from app.main_window import MainWindow
    monkeypatch.setenv("BASIS_WORKSTATION_STATE_DIR", str(tmp_path / "state"))
    window = MainWindow(services, bridge=bridge, persist_layout=False, initial_mode="eth_leveraged",
                        lab_runner=lab_runner)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    window.show_panel("lab")
    lab = window.lab_panel
    _configure(lab)
    lab.axis_values[0].setText("0.925")
    lab.axis_keys[1].setCurrentText("")
    lab.axis_values[1].setText("")
    with qtbot.waitSignal(lab.runner.sweep_finished, timeout=120_000):
        lab.run()
    assert lab.heatmap.values.shape == (1, 1)
    with qtbot.waitSignal(window.backtest_panel.run_loaded, timeout=60_000):
        lab.open_cell(0, 0)
    panel = window.backtest_panel
    assert panel.result.summary["liquidations"] == 1
    assert panel.result.summary["scenario"]["name"] == "oracle_capo_misprice_2_85pct"
    assert panel.spec.source_label.startswith("Lab: eth_leveraged")
    assert window.docks["backtest"].isVisible()
