"""Metrics panel: the run's headline numbers, up to the playhead and for the whole run.

"To playhead" uses the engine's own metric functions on the value series up to the current hour, so
it ends exactly at the full-run figure when the replay reaches the last hour.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHeaderView, QTableView, QWidget

from app import style
from app.widgets.table_model import ColumnTableModel
from engine.domain.pnl import COMPONENT_INDEX
from engine.math import metrics
from engine.services.backtest import BacktestResult


def _pct(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x * 100:,.2f}%"


def _plain(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:,.{digits}f}"


class MetricsModel(ColumnTableModel):
    COLUMNS = ("Metric", "To playhead", "Full run")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, str, str, str]] = []   # (name, at playhead, full, tooltip)
        self.result: BacktestResult | None = None
        self._series: np.ndarray | None = None
        self._day: np.ndarray | None = None
        self._cum: dict[str, np.ndarray] = {}
        self._hf_min: np.ndarray | None = None
        self._margin_min: np.ndarray | None = None
        self._rebalances: np.ndarray | None = None
        self._liquidations: np.ndarray | None = None

    def set_result(self, result: BacktestResult) -> None:
        out = result.output
        self.result = result
        self._series = np.concatenate([[out.initial_value], out.values])
        self._day = np.asarray(result.timestamps.asi8 // (86_400 * 10**9))
        self._cum = {name: np.cumsum(out.components[:, i]) for name, i in COMPONENT_INDEX.items()}
        hf = np.where(np.isnan(out.health_factor), np.inf, out.health_factor)
        self._hf_min = np.minimum.accumulate(hf)
        margins = [np.where(np.isnan(a), np.inf, a) for a in out.margin_ratio.values()]
        self._margin_min = np.minimum.accumulate(np.min(margins, axis=0)) if margins else None
        self._rebalances = np.array(sorted(out.rebalance_hours), dtype=np.int64)
        self._liquidations = np.array(sorted(e.hour for e in result.events if e.type == "liquidation"), dtype=np.int64)
        self.set_playhead(len(out.values) - 1, reset=True)

    def set_playhead(self, hour: int, reset: bool = False) -> None:
        result = self.result
        if result is None:
            return
        s = result.summary
        cur = s["currency"]
        dp = 2 if cur == "USDT" else 4
        series = self._series[: hour + 2]          # capital + values[0..hour]
        daily = np.concatenate([series[:1], metrics.daily_closes(series[1:], self._day[: hour + 1])])
        initial = float(series[0])
        final = float(series[-1])
        hours = hour + 1
        hf_now = self._hf_min[hour]
        margin_now = self._margin_min[hour] if self._margin_min is not None else math.inf
        funding = self._cum["funding"][hour]
        costs = -(self._cum["execution_costs"][hour] + self._cum["gas"][hour])

        def money(x: float | None) -> str:
            return "–" if x is None else f"{x:,.{dp}f} {cur}"

        rows: list[tuple[str, str, str, str]] = [
            ("Value", money(final), money(s["final_value"]),
             "Portfolio value in the share-class currency, LSTs at their market rate"),
            ("Exit value", "", money(s["exit_value"]),
             "Value after unwinding every leg at the last hour's costs (swaps, slippage, fees, gas)"),
            ("P&L", money(final - initial), money(s["pnl"]), "Value minus the starting capital"),
            ("APR", _pct(metrics.apr(initial, final, hours)), _pct(s["apr"]), "Simple annualised return"),
            ("APY", _pct(metrics.apy(initial, final, hours)), _pct(s["apy"]), "Compounded annualised return"),
            ("Volatility", _pct(metrics.volatility(daily)), _pct(s["volatility"]),
             "Annualised volatility of daily returns (the hourly series interpolates daily data)"),
            ("Sharpe", _plain(metrics.sharpe(daily)), _plain(s["sharpe"]),
             "Annualised mean daily return / volatility (risk-free 0); very high when the value barely moves"),
            ("Max drawdown", _pct(metrics.max_drawdown(series)), _pct(s["max_drawdown"]), "Largest fall from a peak"),
            ("Min health factor", _plain(hf_now if math.isfinite(hf_now) else None, 4),
             _plain(s["min_health_factor"], 4), "Lowest AAVE health factor (– without debt); liquidation below 1"),
            ("Min margin ratio", _pct(margin_now if math.isfinite(margin_now) else None), _pct(s["min_margin_ratio"]),
             "Lowest perp margin ratio over the venues (– without perps)"),
            ("Funding earned", money(funding), money(s["funding_earned"]), "Perp funding received minus paid"),
            ("Costs paid", money(costs), money(s["costs_paid"]), "Execution costs (fees, slippage) plus gas"),
            ("Rebalances", str(int(np.searchsorted(self._rebalances, hour, side="right"))), str(s["rebalances"]),
             "Hours in which the strategy rebalanced"),
            ("Liquidations", str(int(np.searchsorted(self._liquidations, hour, side="right"))), str(s["liquidations"]),
             "Liquidation events (AAVE or CEX)"),
            ("Reconciliation error", "", f"{s['reconciliation_error']:.3g} {cur}",
             "Max |value change − sum of P&L components| over the run (should be ~0)"),
        ]
        if result.params.strategy.lst:
            peg_total = s["pnl_components"]["lst_peg"]
            rows.insert(3, ("LST peg P&L", money(self._cum["lst_peg"][hour]), money(peg_total),
                            "LSTs' market rate vs their oracle rate (AAVE values them at the oracle; an exit "
                            "gets the market rate)"))
        if reset or len(rows) != len(self.rows):
            self.beginResetModel()
            self.rows = rows
            self.endResetModel()
        else:
            self.rows = rows
            self.dataChanged.emit(self.index(0, 1), self.index(len(rows) - 1, 1), [Qt.ItemDataRole.DisplayRole])

    def value(self, name: str, column: int = 1) -> str:
        for row in self.rows:
            if row[0] == name:
                return row[column]
        raise KeyError(f"no metric {name!r} (have: {[r[0] for r in self.rows]})")

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return row[3]
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 0:
            return QBrush(QColor(style.TEXT_DIM))
        return None


class MetricsView(QTableView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metrics = MetricsModel(self)
        self.setModel(self.metrics)
        self.verticalHeader().hide()
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QTableView.SelectionMode.NoSelection)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)   # follows the text size
