"""Pieces of the replay behind the widgets: decimation, the capped event model, config text patching."""
from __future__ import annotations

import numpy as np
import pytest

from app.config_draft import ModeDraft, SaveRefused
from app.decimate import PeakDecimator
from app.widgets.event_model import EventTreeModel
from engine.config import CONFIG_ROOT
from engine.domain.events import Event


def test_decimated_curves_keep_spikes_and_end_exactly_at_the_playhead():
    x = np.arange(12_000, dtype=float) * 3600
    y = np.sin(np.arange(12_000) / 50.0)
    y[7_001] = 40.0           # a one-hour spike must survive downsampling
    dec = PeakDecimator(x, [y])
    dec.configure(0, x.size, 800)
    for hour in (0, 1, 14, 15, 7_001, 11_999):
        xs, (ys,) = dec.upto(hour)
        assert xs[-1] == x[hour] and ys[-1] == y[hour]
        assert xs.size <= 2 * 800 + dec.block
    _, (ys,) = dec.upto(11_999)
    assert ys.max() == 40.0
    dec.configure(6_990, 7_010, 800)          # zoomed in: raw points
    xs, (ys,) = dec.upto(7_005)
    assert np.array_equal(xs, x[6_990:7_006]) and 40.0 in ys


def _events(n: int) -> list[Event]:
    out = []
    order = 0
    for hour in range(n):
        out.append(Event(order, f"2025-01-01T{hour % 24:02d}:00:00Z", hour, "binance", "funding", "ETH"))
        order += 1
        if hour % 10 == 0:
            parent = order
            out.append(Event(order, "t", hour, "morpho", "bundle"))
            out.append(Event(order + 1, "t", hour, "aave_v3", "supply", "weETH", 1.0, parent=parent))
            order += 2
    return out


def test_event_model_caps_rows_and_slides_with_the_playhead(qtbot):
    from PySide6.QtTest import QAbstractItemModelTester

    model = EventTreeModel(cap=50)
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_events(_events(500))
    assert model.rowCount() == 50 and model.total_filtered == 550
    for hour in (10, 11, 40, 300, 299, 499, 0):
        model.set_playhead(hour)
        assert model.rowCount() == 50
        row = model.row_of_last_happened()
        assert model.event_at(model.index(row, 0)).hour == hour
    model.set_filter(venue="aave_v3")
    assert model.total_filtered == 50, "a bundle matches when one of its children does"
    bundle = model.index(0, 0)
    assert model.rowCount(bundle) == 1 and model.event_at(model.index(0, 0, bundle)).type == "supply"
    assert model.parent(model.index(0, 0, bundle)) == bundle


def test_form_edits_keep_comments_and_shipped_files_are_refused(tmp_path):
    draft = ModeDraft("eth_leveraged")
    draft.set_value(("leverage", "target_ltv"), 0.8)
    assert draft.text.startswith("#") and "target_ltv: 0.8" in draft.text
    assert draft.validate().ok
    with pytest.raises(SaveRefused):
        draft.save(CONFIG_ROOT / "modes" / "eth_leveraged.yaml")
    path = draft.save(tmp_path / "x.yaml")
    again = ModeDraft.from_file(path)
    assert again.mode == "eth_leveraged" and again.get(("leverage", "target_ltv")) == 0.8


def test_charts_reuse_their_plots_across_runs_without_leftovers(qtbot, backtest_service):
    """Loading a run reuses the PlotItems built before (their construction is the costly part of a
    load); a run of another shape drops the plots it lacks, and nothing of the previous run stays."""
    from app.chart_data import build_chart_data
    from app.widgets.charts import PLOT_NAMES, ChartStack
    from engine.services.backtest import BacktestRequest

    charts = ChartStack()
    qtbot.addWidget(charts)
    charts.resize(1200, 900)
    charts.show()
    qtbot.waitUntil(lambda: all(name in charts._items for name in PLOT_NAMES), timeout=10_000)  # idle prebuild
    built = dict(charts._items)

    def load(mode: str):
        data = build_chart_data(backtest_service.run(BacktestRequest(mode=mode, start="2025-03-01", end="2025-03-10")))
        charts.set_data(data)
        charts.render(data.hours - 1)
        return data

    def shown_items() -> set:
        return {item for item in charts.graphics.ci.items}

    lev = load("eth_leveraged")                       # AAVE + LST: health factor and peg plots
    assert list(charts.plots) == ["value", "pnl", "delta", "hf", "peg"]
    curves_before = {name: len(p.item.listDataItems()) for name, p in charts.plots.items()}
    load("btc_basis")                                 # CEX basis: margin plot instead
    assert list(charts.plots) == ["value", "pnl", "delta", "margin"]
    assert shown_items() == {charts.plots[n].item for n in charts.plots}, "only this run's plots are laid out"
    lev_again = load("eth_leveraged")
    assert all(charts.plots[n].item is built[n] for n in charts.plots), "no plot was built again"
    assert {name: len(p.item.listDataItems()) for name, p in charts.plots.items()} == curves_before, \
        "each plot holds exactly this run's curves, nothing left from the runs before"
    assert charts.plots["value"].item.getAxis("right").offset == lev_again.initial_value == lev.initial_value
    drawn = charts.drawn_until()
    assert drawn and all(x == lev_again.x[-1] for x in drawn.values()), drawn
