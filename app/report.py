"""One self-contained HTML report of a backtest run: interactive Plotly charts, metrics, config,
provenance and an events summary, in a single file that opens offline (plotly.js is inlined, no
CDN, no fonts or images fetched).

    python main.py report RUN_DIR [--out FILE.html]

RUN_DIR is a results folder (summary.json, timeseries.csv, events.csv; balance_sheet.csv when the
run wrote one), or a mode's folder whose `latest` entry (a symlink, or a file naming the run's
folder) points to one. The app builds the same report from the run in memory
(`record_from_result`). Fields newer runs record (run id, effective config, overrides, data file
hashes, code version, exit value, the `lst_peg` component) are shown when present; an older folder
without them still gets a full report that says what it does not record.

Qt-free: the CLI imports this module without a display.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPORT_NAME = "report.html"
#: Series colours of the report (a light page: it is meant to be shared and printed).
COLORS = {
    "value": "#1f6feb", "pnl": "#1d2330", "exit": "#8250df", "onchain": "#1f6feb", "cex": "#d9730d",
    "net": "#1d2330", "hf": "#1a7f37", "peg": "#8250df", "rebalance": "#c48a00", "liquidation": "#d32f2f",
    "danger": "#d32f2f", "warning": "#c77700", "trigger": "#6b7280",
}
COMPONENT_COLORS = {
    "lending": "#2da44e", "borrow": "#cf222e", "staking": "#1b998b", "rewards": "#8250df", "funding": "#1f6feb",
    "perp_mtm": "#d9730d", "spot_price": "#bf8700", "price_net": "#bf8700", "execution_costs": "#bf3989",
    "gas": "#6e7781", "liquidation": "#a40e26", "lst_peg": "#6639ba",
}
COMPONENT_LABELS = {
    "lending": "lending", "borrow": "borrow cost", "staking": "staking", "rewards": "rewards", "funding": "funding",
    "perp_mtm": "perp mark-to-market", "spot_price": "spot price", "price_net": "spot + perp price (net)",
    "execution_costs": "execution costs", "gas": "gas", "liquidation": "liquidations",
    "lst_peg": "LST peg (market vs oracle)",
}
COMPONENT_ORDER = ("lending", "staking", "rewards", "funding", "price_net", "spot_price", "perp_mtm", "lst_peg",
                   "borrow", "execution_costs", "gas", "liquidation")
#: per venue: colour, dash and width; drawn widest first, so venues whose margin ratios coincide
#: show as layers of one line (as in the app), none shifted off its value
VENUE_STYLE = {"binance": ("#b58900", "solid", 6), "bybit": ("#1f6feb", "solid", 3), "okx": ("#1d2330", "solid", 1)}
MARGIN_BAND_TOP_PCT = 30.0
#: what a run with full provenance records (an older folder is told what it lacks)
PROVENANCE_REQUIRED = ("run_id", "code_version", "config", "data_files")
EFFECTIVE_CONFIG_KEYS = ("effective_config", "config")
MAX_LISTED_EVENTS = 300
#: the LST's market / oracle rate in timeseries.csv (the name changed once)
PEG_COLUMNS = ("lst_market_over_oracle", "lst_peg")


class ReportError(ValueError):
    """The run folder cannot be read or the report cannot be written (one clear line)."""


@dataclass
class RunRecord:
    """What a report is made of, read from a results folder or taken from a run in memory."""

    summary: dict[str, Any]
    timeseries: pd.DataFrame            # indexed by UTC timestamp
    events: pd.DataFrame
    balance_sheet: pd.DataFrame | None
    source: str                          # where it came from (a folder, or the app)


# ---------------------------------------------------------------------------------------- input
def resolve_run_dir(path: Path) -> Path:
    """The folder holding summary.json: `path` itself, or where its `latest` entry points."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: no such folder")
    if not path.is_dir():
        raise ReportError(f"{path} is a file; give the run's folder (the one holding summary.json)")
    if (path / "summary.json").is_file():
        return path
    latest = path / "latest"
    if latest.is_dir() and (latest / "summary.json").is_file():
        return latest
    if latest.is_file():
        target = latest.read_text(encoding="utf-8").strip()
        candidate = (path / target) if not Path(target).is_absolute() else Path(target)
        if (candidate / "summary.json").is_file():
            return candidate
        raise ReportError(f"{latest} points to {target!r}, which holds no summary.json")
    raise ReportError(f"{path} holds no summary.json (and no 'latest' run): "
                      "give a folder written by `python main.py backtest` or the app's Export")


def load_run(path: Path) -> RunRecord:
    folder = resolve_run_dir(path)
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{folder / 'summary.json'} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    for key in ("mode", "currency", "start", "end", "hours", "initial_value", "final_value"):
        if key not in summary:
            raise ReportError(f"{folder / 'summary.json'}: missing key {key!r}")
    timeseries = _read_csv(folder / "timeseries.csv", index="timestamp")
    if "value" not in timeseries.columns:
        raise ReportError(f"{folder / 'timeseries.csv'}: missing column 'value'")
    events = _read_csv(folder / "events.csv")
    balance = folder / "balance_sheet.csv"
    balance_sheet = _read_csv(balance) if balance.is_file() else None
    return RunRecord(summary, timeseries, events, balance_sheet, str(folder))


def _read_csv(path: Path, index: str | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise ReportError(f"{path}: no such file (the run folder is incomplete)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read it as CSV ({exc})") from None
    if index is not None:
        if index not in frame.columns:
            raise ReportError(f"{path}: missing column {index!r}")
        frame.index = pd.to_datetime(frame.pop(index), utc=True)
    return frame


def record_parts(result) -> dict[str, Any]:
    """What the report needs from a BacktestResult, as plain, cheaply pickled parts: the events as
    one list per column (a DataFrame of them takes ~80 ms of pandas that holds the GIL, which the
    app leaves to its report process; see app.report_job)."""
    from engine.domain.events import EVENT_COLUMNS
    from engine.services.results_io import timeseries_frame

    events = result.events
    writer = _balance_sheet_writer()
    return {"summary": dict(result.summary), "timeseries": timeseries_frame(result),
            "event_columns": {name: [getattr(e, name) for e in events] for name in EVENT_COLUMNS},
            "balance_sheet": writer(result) if writer is not None else None}


def record_from_parts(parts: dict[str, Any], source: str) -> RunRecord:
    return RunRecord(parts["summary"], parts["timeseries"], pd.DataFrame(parts["event_columns"]),
                     parts["balance_sheet"], source)


def record_from_result(result, source: str = "the workstation (run in memory)") -> RunRecord:
    """The report input from a BacktestResult (the app's Export HTML report)."""
    return record_from_parts(record_parts(result), source)


def _balance_sheet_writer():
    """The engine's balance-sheet frame builder, where this version of the engine has one."""
    try:
        from engine.services import results_io
    except ImportError:
        return None
    return getattr(results_io, "balance_sheet_frame", None)


# ---------------------------------------------------------------------------------------- output
def write_report(record: RunRecord, out: Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"--out {out}: the file name must end in .html")
    text = build_report(record)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def build_report(record: RunRecord) -> str:
    """The whole report as one HTML document."""
    from plotly.offline import get_plotlyjs

    s = record.summary
    figures = [fig for fig in (_value_figure(record), _components_figure(record), _delta_figure(record),
                               _hf_figure(record), _margin_figure(record), _peg_figure(record)) if fig is not None]
    charts = "\n".join(_figure_html(fig, i) for i, fig in enumerate(figures))
    title = f"{s['mode']} backtest · {s['start'][:10]} → {s['end'][:10]}"
    generated = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        ("Metrics", _metrics_html(record)),
        ("Charts", (f"<p class='dim'>Drag to zoom (all charts follow), double-click to reset; click a legend "
                    f"entry to hide a series.</p>{charts}")),
        ("Events", _events_html(record)),
        ("Balance sheet", _balance_html(record)),
        ("Configuration", _config_html(record)),
        ("Provenance", _provenance_html(record, generated)),
    ]
    toc = " · ".join(f"<a href='#{_anchor(name)}'>{name}</a>" for name, _ in sections)
    body = "\n".join(f"<section id='{_anchor(name)}'><h2>{name}</h2>{content}</section>" for name, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<header><h1>{_e(title)}</h1>
<p class="dim">{_e(s.get('share_class', ''))} · values in {_e(s['currency'])} · {s['hours']:,} hours ·
report generated {generated} from {_e(record.source)}</p><nav>{toc}</nav></header>
{body}
<script type="text/javascript">{SYNC_JS}</script>
</body></html>
"""


CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Roboto, sans-serif; color: #1d2330; margin: 0;
       background: #f6f7f9; }
header { background: #ffffff; border-bottom: 1px solid #d0d5dd; padding: 12px 24px; position: sticky; top: 0; z-index: 5; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 0 0 10px 0; }
section { background: #ffffff; margin: 16px 24px; padding: 14px 18px; border: 1px solid #d0d5dd; border-radius: 6px; }
nav a { margin-right: 4px; color: #1f6feb; text-decoration: none; }
.dim { color: #566072; font-size: 13px; margin: 2px 0 8px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0 12px 0; }
th, td { border-bottom: 1px solid #e4e7ec; padding: 3px 10px; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f2f5; font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid #e4e7ec; padding: 8px; font-size: 12px; overflow-x: auto; }
.grid { display: flex; flex-wrap: wrap; gap: 24px; }
.chart { margin-bottom: 6px; }
.warn { color: #8a4b00; }
ul { margin: 4px 0 10px 0; padding-left: 20px; font-size: 13px; }
"""

#: Zooming one chart's time axis zooms them all (they share the hourly grid).
SYNC_JS = """
(function () {
  var plots = Array.prototype.slice.call(document.querySelectorAll('.js-plotly-plot'));
  var busy = false;
  plots.forEach(function (source) {
    source.on('plotly_relayout', function (ev) {
      if (busy) { return; }
      var update = {};
      if (ev['xaxis.range[0]'] !== undefined) {
        update['xaxis.range'] = [ev['xaxis.range[0]'], ev['xaxis.range[1]']];
      } else if (ev['xaxis.autorange']) {
        update['xaxis.autorange'] = true;
      } else { return; }
      busy = true;
      Promise.all(plots.filter(function (p) { return p !== source; })
                       .map(function (p) { return Plotly.relayout(p, update); }))
             .then(function () { busy = false; }, function () { busy = false; });
    });
  });
})();
"""


def _anchor(name: str) -> str:
    return name.lower().replace(" ", "-")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


# ---------------------------------------------------------------------------------------- charts
def _figure_html(fig, index: int) -> str:
    config = {"displaylogo": False, "responsive": True,
              "toImageButtonOptions": {"format": "png", "width": 1800, "height": 600, "scale": 1}}
    return f"<div class='chart'>{fig.to_html(full_html=False, include_plotlyjs=False, config=config, div_id=f'chart-{index}')}</div>"


def _x_args(index: pd.DatetimeIndex) -> dict[str, Any]:
    """x as start + step when the grid is regular (hourly runs: 20x smaller than a list of dates)."""
    if len(index) > 1:
        steps = np.diff(index.as_unit("ms").asi8)           # the file's resolution may be s, us or ns
        if np.all(steps == steps[0]):
            return {"x0": index[0].strftime("%Y-%m-%dT%H:%M:%SZ"), "dx": int(steps[0])}
    return {"x": index.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()}


def _layout(fig, title: str, y_title: str, height: int = 360, **extra) -> None:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        template="plotly_white", height=height, margin={"l": 70, "r": 150, "t": 48, "b": 36},
        hovermode="x unified", legend={"orientation": "v", "x": 1.01, "y": 1, "font": {"size": 11}},
        xaxis={"type": "date", "title": "time (UTC)"}, yaxis={"title": y_title, "separatethousands": True},
        **extra)


def _hline(fig, value: float, label: str, kind: str) -> None:
    fig.add_hline(y=value, line={"color": COLORS[kind], "dash": "dash" if kind != "trigger" else "dot", "width": 1},
                  annotation={"text": label, "font": {"color": COLORS[kind], "size": 11}, "xanchor": "left"},
                  annotation_position="right")


def _column(record: RunRecord, name: str) -> np.ndarray | None:
    frame = record.timeseries
    if name not in frame.columns:
        return None
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
    return values if np.any(np.isfinite(values)) else None


def _value_figure(record: RunRecord):
    import plotly.graph_objects as go

    s = record.summary
    cur = s["currency"]
    ts = record.timeseries
    value = _column(record, "value")
    pnl = value - float(s["initial_value"])
    fig = go.Figure()
    fig.add_trace(go.Scatter(name=f"value ({cur})", y=value, customdata=pnl, mode="lines",
                             line={"color": COLORS["value"], "width": 2},
                             hovertemplate=f"%{{y:,.2f}} {cur} (P&L %{{customdata:+,.2f}})<extra>value</extra>",
                             **_x_args(ts.index)))
    protocol = _column(record, "value_protocol")
    if protocol is not None and np.max(np.abs(protocol - value)) > 1e-9 * abs(float(s["initial_value"])):
        fig.add_trace(go.Scatter(name=f"protocol value (LSTs at the oracle rate, {cur})", y=protocol, mode="lines",
                                 line={"color": COLORS["exit"], "width": 1, "dash": "dot"},
                                 hovertemplate=f"%{{y:,.2f}} {cur}<extra>protocol value</extra>", **_x_args(ts.index)))
    if isinstance(s.get("exit_value"), (int, float)):
        fig.add_trace(go.Scatter(name=f"exit value at the end ({cur})", x=[ts.index[-1].strftime("%Y-%m-%dT%H:%M:%SZ")],
                                 y=[s["exit_value"]], mode="markers",
                                 marker={"symbol": "diamond", "size": 11, "color": COLORS["exit"]},
                                 hovertemplate=f"exit value %{{y:,.2f}} {cur}<extra></extra>"))
    _hline(fig, float(s["initial_value"]), "initial capital", "trigger")
    events = record.events
    if not events.empty and "type" in events.columns:
        hour_col = pd.to_numeric(events.get("hour"), errors="coerce")
        for kind, symbol in (("rebalance", "triangle-up"), ("liquidation", "x")):
            hours = np.unique(hour_col[events["type"] == kind].dropna().astype(int).to_numpy())
            hours = hours[(hours >= 0) & (hours < len(ts))]
            if hours.size:
                fig.add_trace(go.Scatter(name=kind, x=ts.index[hours].strftime("%Y-%m-%dT%H:%M:%SZ").tolist(),
                                         y=value[hours], mode="markers",
                                         marker={"symbol": symbol, "size": 10, "color": COLORS[kind]},
                                         hovertemplate=f"{kind}<extra></extra>"))
    _layout(fig, f"Portfolio value ({cur})", cur)
    return fig


def _components(record: RunRecord) -> dict[str, np.ndarray]:
    """Cumulative P&L per component; spot and perp price moves merged in hedged runs (where the two
    legs are large and cancel), as the app shows them by default."""
    cum = {}
    for column in record.timeseries.columns:
        if column.startswith("pnl.") and column != "pnl.cumulative":
            values = _column(record, column)
            if values is not None:
                cum[column[4:]] = np.cumsum(np.nan_to_num(values))
    if "spot_price" in cum and "perp_mtm" in cum and np.max(np.abs(cum["perp_mtm"])) > 0:
        cum["price_net"] = cum.pop("spot_price") + cum.pop("perp_mtm")
    tolerance = 1e-9 * max(1.0, abs(float(record.summary["initial_value"])))
    ordered = [n for n in COMPONENT_ORDER if n in cum] + [n for n in cum if n not in COMPONENT_ORDER]
    return {name: cum[name] for name in ordered if np.max(np.abs(cum[name])) > tolerance}


def _components_figure(record: RunRecord):
    import plotly.graph_objects as go

    cur = record.summary["currency"]
    ts = record.timeseries
    fig = go.Figure()
    for name, cum in _components(record).items():
        color = COMPONENT_COLORS.get(name, "#6e7781")
        label = COMPONENT_LABELS.get(name, name.replace("_", " "))
        for group, part in (("gains", np.maximum(cum, 0.0)), ("costs", np.minimum(cum, 0.0))):
            if not np.any(part):
                continue
            fig.add_trace(go.Scatter(name=label, legendgroup=name, showlegend=group == "gains" or not np.any(cum > 0),
                                     y=part, customdata=cum, stackgroup=group, mode="lines",
                                     line={"width": 0.5, "color": color}, fillcolor=color,
                                     hovertemplate=f"%{{customdata:+,.2f}} {cur}<extra>{label}</extra>",
                                     **_x_args(ts.index)))
    pnl = _column(record, "value") - float(record.summary["initial_value"])
    fig.add_trace(go.Scatter(name="net P&L (sum of all)", y=pnl, mode="lines", line={"color": COLORS["pnl"], "width": 2},
                             hovertemplate=f"%{{y:+,.2f}} {cur}<extra>net P&L</extra>", **_x_args(ts.index)))
    _layout(fig, f"Cumulative P&L by component ({cur}; stacked: gains above 0, costs below)", cur, height=420)
    return fig


def _delta_figure(record: RunRecord):
    import plotly.graph_objects as go

    ts = record.timeseries
    onchain, cex, net = (_column(record, c) for c in ("net_delta_onchain_eth", "net_delta_cex", "net_delta"))
    if net is None:
        return None
    config, _ = _mode_document(record)
    underlying = ((config or {}).get("hedge") or {}).get("underlying") or "ETH"
    directional = record.summary["currency"] == underlying
    fig = go.Figure()
    for values, name, color, width in ((onchain, "on-chain (ETH)", COLORS["onchain"], 1.5),
                                       (cex, f"CEX spot + perps ({underlying})", COLORS["cex"], 1.5),
                                       (net, "net", COLORS["net"], 2.5)):
        if values is not None and np.any(np.abs(np.nan_to_num(values)) > 1e-12):
            fig.add_trace(go.Scatter(name=name, y=values, mode="lines", line={"color": color, "width": width},
                                     hovertemplate="%{y:+,.4f}<extra>" + name + "</extra>", **_x_args(ts.index)))
    title = (f"Net {underlying} position (the share class is {record.summary['currency']}: long {underlying} is "
             "its own currency, not price risk)" if directional else
             f"Net delta: price exposure in {underlying} (0 = market neutral)")
    _layout(fig, title, underlying, height=300)
    return fig


def _hf_figure(record: RunRecord):
    import plotly.graph_objects as go

    hf = _column(record, "health_factor")
    if hf is None:
        return None
    fig = go.Figure(go.Scatter(name="health factor", y=hf, mode="lines", line={"color": COLORS["hf"], "width": 2},
                               hovertemplate="%{y:.4f}<extra>HF</extra>", **_x_args(record.timeseries.index)))
    _hline(fig, 1.0, "liquidation (HF 1.0)", "danger")
    config, _ = _mode_document(record)
    floor = ((config or {}).get("rebalancing") or {}).get("hf_floor")
    if isinstance(floor, (int, float)):
        _hline(fig, float(floor), f"deleverage floor {floor:g}", "warning")
    _layout(fig, "AAVE health factor (collateral × liquidation threshold / debt)", "HF", height=280)
    return fig


def _margin_figure(record: RunRecord):
    import plotly.graph_objects as go

    venues = {c.split(".", 1)[1]: c for c in record.timeseries.columns if c.startswith("margin_ratio.")}
    series = {venue: _column(record, column) for venue, column in venues.items()}
    series = {venue: 100.0 * values for venue, values in series.items() if values is not None}
    if not series:
        return None
    fig = go.Figure()
    for i, (venue, values) in enumerate(series.items()):
        color, dash, width = VENUE_STYLE.get(venue, ("#6e7781", ("dash", "dot")[i % 2], 1))
        fig.add_trace(go.Scatter(name=venue, y=values, mode="lines", line={"color": color, "dash": dash, "width": width},
                                 hovertemplate="%{y:.1f} %<extra>" + venue + "</extra>", **_x_args(record.timeseries.index)))
    levels = []
    for value, label, kind in _margin_lines(record, list(series)):
        _hline(fig, value, label, kind)
        levels.append(value)
    top = max([MARGIN_BAND_TOP_PCT] + [1.2 * v for v in levels])
    low = min([0.0] + [float(np.nanmin(v)) for v in series.values()])
    peak = max(float(np.nanmax(v)) for v in series.values())
    note = (f" · zoomed to {low:g}–{top:g} %; the modebar's autoscale shows all (up to {peak:,.0f} %)"
            if peak > top else "")
    _layout(fig, f"Perp margin ratio per venue, equity / notional (%){note}", "%", height=320)
    fig.update_yaxes(range=[low - 0.04 * (top - low), top + 0.04 * (top - low)])
    return fig


def _margin_lines(record: RunRecord, venues: list[str]) -> list[tuple[float, str, str]]:
    """Maintenance and warning ratios from the venue files, the rebalance trigger from the mode's config."""
    lines: list[tuple[float, str, str]] = []
    recorded = ((record.summary.get("config") or {}).get("venues") or {}) \
        if isinstance(record.summary.get("config"), dict) else {}
    params: dict[str, dict] = {v: recorded[v] for v in venues if isinstance(recorded.get(v), dict)}
    if len(params) < len(venues):        # an older run: the shipped venue files
        from engine.config import ConfigError, load_venue_config

        try:
            params.update({v: load_venue_config(v).model_dump() for v in venues if v not in params})
        except (ConfigError, OSError):   # the report still renders, without those venues' lines
            pass
    for attr, kind, text in (("maintenance_margin_ratio", "danger", "maintenance"), ("margin_warning_ratio", "warning", "warning")):
        values = {v: 100.0 * float(p[attr]) for v, p in params.items() if isinstance(p.get(attr), (int, float))}
        for level in sorted(set(values.values())):
            owners = [v for v, x in values.items() if x == level]
            suffix = "" if len(owners) == len(values) else f" ({', '.join(owners)})"
            lines.append((level, f"{text} {level:g} %{suffix}", kind))
    config, _ = _mode_document(record)
    trigger = ((config or {}).get("rebalancing") or {}).get("margin_ratio_trigger")
    if isinstance(trigger, (int, float)) and ((config or {}).get("rebalancing") or {}).get("enabled", True):
        lines.append((100.0 * trigger, f"rebalance trigger {100 * trigger:g} %", "trigger"))
    return lines


def _peg_figure(record: RunRecord):
    import plotly.graph_objects as go

    peg = next((v for v in (_column(record, c) for c in PEG_COLUMNS) if v is not None), None)
    if peg is None:
        return None
    fig = go.Figure(go.Scatter(name="market / oracle", y=peg, mode="lines", line={"color": COLORS["peg"], "width": 1.5},
                               hovertemplate="%{y:.5f}<extra>LST peg</extra>", **_x_args(record.timeseries.index)))
    _hline(fig, 1.0, "at peg", "trigger")
    _layout(fig, "LST peg: market price / oracle rate (below 1: an exit gets less than AAVE counts)", "ratio", height=280)
    return fig


# ---------------------------------------------------------------------------------------- tables
def _fmt(value: Any, kind: str, cur: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if kind == "money":
        return f"{value:,.{2 if cur == 'USDT' else 4}f} {cur}"
    if kind == "pct":
        return f"{100 * value:,.2f} %"
    if kind == "ratio":
        return f"{value:,.4f}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "sci":
        return f"{value:.3g}"
    return _e(value)


def _metrics_html(record: RunRecord) -> str:
    s = record.summary
    cur = s["currency"]
    protocol = s.get("final_value_protocol")
    rows = [
        ("Initial value", s.get("initial_value"), "money"),
        ("Final value" + (" (LSTs at market)" if protocol is not None else ""), s.get("final_value"), "money"),
        *([("Final value (protocol: LSTs at oracle)", protocol, "money")] if protocol is not None else []),
        ("Exit value (after unwinding)", s.get("exit_value"), "money"), ("P&L", s.get("pnl"), "money"),
        ("Total return", s.get("total_return"), "pct"), ("APR", s.get("apr"), "pct"), ("APY", s.get("apy"), "pct"),
        ("Volatility (annualised)", s.get("volatility"), "pct"), ("Sharpe", s.get("sharpe"), "ratio"),
        ("Max drawdown", s.get("max_drawdown"), "pct"),
        *([("Max drawdown (protocol value)", s["max_drawdown_protocol"], "pct")] if "max_drawdown_protocol" in s else []),
        ("Min health factor", s.get("min_health_factor"), "ratio"),
        ("Min margin ratio", s.get("min_margin_ratio"), "pct"), ("Funding earned", s.get("funding_earned"), "money"),
        ("Costs paid", s.get("costs_paid"), "money"), ("Rebalances", s.get("rebalances"), "int"),
        ("Liquidations", s.get("liquidations"), "int"), ("Events", s.get("events"), "int"),
        ("Reconciliation error", s.get("reconciliation_error"), "sci"),
    ]
    metrics = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{_fmt(value, kind, cur)}</td></tr>" if value is not None or
        not name.startswith("Exit") else f"<tr><td>{_e(name)}</td><td class='num dim'>not recorded by this run</td></tr>"
        for name, value, kind in rows)
    components = s.get("pnl_components") or {}
    comp_rows = "".join(f"<tr><td>{_e(COMPONENT_LABELS.get(k, k))}</td><td class='num'>{_fmt(v, 'money', cur)}</td></tr>"
                        for k, v in components.items())
    exit_costs = s.get("exit_costs") if isinstance(s.get("exit_costs"), dict) else {}
    exit_rows = "".join(f"<tr><td>{_e(k.replace('_', ' '))}</td><td class='num'>{_fmt(v, 'money', cur)}</td></tr>"
                        for k, v in exit_costs.items())
    exit_table = (f"<div><table><tr><th>Cost to unwind at the end</th><th class='num'>{_e(cur)}</th></tr>{exit_rows}"
                  f"</table>{''.join(f'<p class=dim>{_e(n)}</p>' for n in s.get('exit_notes') or [])}</div>"
                  if exit_rows else "")
    return (f"<div class='grid'><div><table><tr><th>Metric</th><th class='num'>Full run</th></tr>{metrics}</table></div>"
            f"<div><table><tr><th>P&amp;L component</th><th class='num'>Total</th></tr>{comp_rows}</table></div>"
            f"{exit_table}</div>{_rewards_html(s)}{_data_notes_html(s)}")


def _rewards_html(s: dict[str, Any]) -> str:
    """The reward payouts' totals and the reward APY by quarter beside DeFiLlama's (newer runs)."""
    rewards = s.get("rewards")
    if not isinstance(rewards, dict) or "paid" not in rewards:
        return ""
    cur = s["currency"]
    totals = "".join(f"<tr><td>{_e(label)}</td><td class='num'>{_fmt(rewards.get(key), kind, cur)}</td></tr>"
                     for label, key, kind in (("payouts paid", "paid", "int"), ("payouts excluded", "excluded", "int"),
                                              ("gross value", "gross_value", "money"), ("sale cost", "sale_cost", "money"),
                                              ("gas", "gas", "money"), ("net value", "net_value", "money")))
    quarters = rewards.get("by_quarter") or []
    quarter_rows = "".join(
        f"<tr><td>{_e(q.get('quarter'))}</td><td class='num'>{_fmt(q.get('reward_apy_paid'), 'pct')}</td>"
        f"<td class='num'>{_fmt(q.get('defillama_reward_apy'), 'pct')}</td></tr>" for q in quarters)
    reasons = "".join(f"<li>{_e(r)}</li>" for r in (rewards.get("excluded_reasons") or []))
    quarter_table = (f"<div><table><tr><th>quarter</th><th class='num'>reward APY (paid)</th>"
                     f"<th class='num'>DeFiLlama</th></tr>{quarter_rows}</table></div>" if quarter_rows else "")
    return (f"<h3>Rewards ({_e(rewards.get('mode', ''))})</h3><div class='grid'><div><table>{totals}</table></div>"
            f"{quarter_table}</div>" + (f"<p class='dim'>Excluded:</p><ul>{reasons}</ul>" if reasons else ""))


def _data_notes_html(s: dict[str, Any]) -> str:
    """Config warnings, substitute-data warnings, and per series how many hours are its own."""
    items = "".join(f"<li class='warn'>config: {_e(w)}</li>" for w in s.get("config_warnings") or [])
    items += "".join(f"<li class='warn'>{_e(w)}</li>" for w in s.get("data_warnings") or [])
    fallbacks = s.get("data_fallbacks") or {}
    table = ""
    if isinstance(fallbacks, dict):
        rows = []
        for column, info in fallbacks.items():
            if not isinstance(info, dict):
                continue
            substitutes = ", ".join(f"{k} {v:,}" for k, v in (info.get("substitutes") or {}).items())
            rows.append(f"<tr><td>{_e(info.get('series', column))}</td><td class='num'>{info.get('own', 0):,} / "
                        f"{info.get('total', 0):,} {_e(info.get('unit', ''))}</td><td class='num'>"
                        f"{100 * float(info.get('substitute_share', 0.0)):.1f} %</td><td>{_e(substitutes)}</td>"
                        f"<td class='num'>{info.get('forward_filled', 0):,}</td></tr>")
            items += "".join(f"<li>{_e(flag)}</li>" for flag in info.get("flags") or [])
        if rows:
            table = ("<details><summary>Data provenance per series</summary><table><tr><th>series</th>"
                     "<th class='num'>own</th><th class='num'>substituted</th><th>substitutes</th>"
                     f"<th class='num'>forward-filled</th></tr>{''.join(rows)}</table></details>")
    else:                                   # older runs: a list of sentences
        items += "".join(f"<li>{_e(f)}</li>" for f in fallbacks)
    cleaning = s.get("data_notes") or []
    if cleaning:
        table += ("<details><summary>Data cleaning notes</summary><ul>" +
                  "".join(f"<li>{_e(n)}</li>" for n in cleaning) + "</ul></details>")
    if not items and not table:
        return ""
    return f"<h3>Data and config notes</h3><ul>{items}</ul>{table}"


def _events_html(record: RunRecord) -> str:
    events = record.events
    if events.empty:
        return "<p class='dim'>No events.</p>"
    cur = record.summary["currency"]
    counts = events.groupby(["type", "venue"]).size().unstack(fill_value=0)
    head = "".join(f"<th class='num'>{_e(v)}</th>" for v in counts.columns)
    body = "".join(f"<tr><td>{_e(t)}</td>" + "".join(f"<td class='num'>{int(n):,}</td>" for n in row) + "</tr>"
                   for t, row in counts.iterrows())
    cost = pd.to_numeric(events.get("execution_cost_usd"), errors="coerce").fillna(0.0)
    gas = pd.to_numeric(events.get("gas_eth"), errors="coerce").fillna(0.0)
    by_venue = pd.DataFrame({"cost": cost, "gas": gas, "venue": events["venue"]}).groupby("venue").sum()
    costs = "".join(f"<tr><td>{_e(v)}</td><td class='num'>{row.cost:,.2f}</td><td class='num'>{row.gas:,.6f}</td></tr>"
                    for v, row in by_venue.iterrows() if row.cost or row.gas)
    notable = events[events["type"].isin(["rebalance", "liquidation"])]
    listed = notable.head(MAX_LISTED_EVENTS)
    rows = "".join(f"<tr><td>{_e(str(r.timestamp)[:16].replace('T', ' '))}</td><td>{_e(r.venue)}</td>"
                   f"<td>{_e(r.type)}</td><td>{_e(r.reason if isinstance(r.reason, str) else '')}</td></tr>"
                   for r in listed.itertuples())
    more = f"<p class='dim'>… and {len(notable) - len(listed):,} more.</p>" if len(notable) > len(listed) else ""
    return (f"<p class='dim'>{len(events):,} events in events.csv (funding settlements included).</p>"
            f"<div class='grid'><div><h3>Events by type and venue</h3><table><tr><th>type</th>{head}</tr>{body}</table></div>"
            f"<div><h3>Costs by venue</h3><table><tr><th>venue</th><th class='num'>execution cost (USD)</th>"
            f"<th class='num'>gas (ETH)</th></tr>{costs}</table><p class='dim'>Execution costs are in USD and gas in "
            f"ETH as the venues charge them; the P&amp;L table counts both in {_e(cur)}.</p></div></div>"
            f"<h3>Rebalances and liquidations</h3>"
            + (f"<table><tr><th>time (UTC)</th><th>venue</th><th>type</th><th>reason</th></tr>{rows}</table>{more}"
               if rows else "<p class='dim'>None.</p>"))


def _balance_html(record: RunRecord) -> str:
    sheet = record.balance_sheet
    if sheet is None or sheet.empty:
        return "<p class='dim'>This run folder has no balance_sheet.csv.</p>"
    time_col = next((c for c in ("timestamp", "time", "hour") if c in sheet.columns), None)
    wide = [c for c in sheet.columns if c.endswith((".units", ".value"))]
    if wide:                                 # one row per hour, a units and a value column per holding
        last = sheet.iloc[-1]
        cur = record.summary["currency"]
        holdings: dict[str, dict[str, float]] = {}
        for column in wide:
            holding, kind = column.rsplit(".", 1)
            holdings.setdefault(holding, {})[kind] = float(last[column])
        rows = "".join(f"<tr><td>{_e(h)}</td><td class='num'>{_num(v.get('units'))}</td>"
                       f"<td class='num'>{_num(v.get('value'))}</td></tr>"
                       for h, v in holdings.items() if any(abs(x) > 1e-12 for x in v.values()))
        when = _e(last[time_col]) if time_col is not None else "the last hour"
        return (f"<p class='dim'>Every holding at {when} ({len(sheet):,} hourly rows in balance_sheet.csv); "
                f"values in {_e(cur)}.</p><table><tr><th>holding</th><th class='num'>units</th>"
                f"<th class='num'>value ({_e(cur)})</th></tr>{rows}</table>")
    if time_col is not None:
        last = sheet[sheet[time_col] == sheet[time_col].iloc[-1]]
        caption = f"Holdings at the last hour ({_e(last[time_col].iloc[0])}), {len(sheet):,} rows in balance_sheet.csv."
    else:
        last = sheet.tail(1).T.reset_index()
        last.columns = ["holding", "value"]
        caption = "The last row of balance_sheet.csv."
    head = "".join(f"<th>{_e(c)}</th>" for c in last.columns)
    rows = "".join("<tr>" + "".join(f"<td class='num'>{v:,.6g}</td>" if isinstance(v, (int, float, np.floating))
                                    else f"<td>{_e(v)}</td>" for v in row) + "</tr>"
                   for row in last.itertuples(index=False))
    return f"<p class='dim'>{caption}</p><table><tr>{head}</tr>{rows}</table>"


def _num(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:,.6g}"


def _mode_document(record: RunRecord) -> tuple[dict | None, str]:
    """The run's effective mode config when the run recorded it, else the shipped mode file (and
    which one it is)."""
    s = record.summary
    for key in EFFECTIVE_CONFIG_KEYS:
        value = s.get(key)
        if isinstance(value, dict):
            mode = value.get("mode") if isinstance(value.get("mode"), dict) else value
            return mode, f"the run's effective configuration (summary.json '{key}')"
    try:
        import yaml

        from engine.config.paths import CONFIG_ROOT

        path = CONFIG_ROOT / "modes" / f"{s['mode']}.yaml"
        return yaml.safe_load(path.read_text(encoding="utf-8")), f"the shipped {path.name} (this run did not record its effective configuration)"
    except (OSError, ValueError):
        return None, "not available"


def _config_html(record: RunRecord) -> str:
    import yaml

    config, origin = _mode_document(record)
    s = record.summary
    overrides = s.get("overrides")
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False) if config else "(none)"
    extra = ""
    if overrides:
        extra = f"<h3>Overrides</h3><pre>{_e(json.dumps(overrides, indent=2, default=str))}</pre>"
    recorded = s.get("config") if isinstance(s.get("config"), dict) else {}
    for key, title in (("share_class", "Share class"), ("venues", "Venue files")):
        if recorded.get(key):
            dumped = yaml.safe_dump(recorded[key], sort_keys=False, default_flow_style=False)
            extra += f"<details><summary>{title} as the run used them</summary><pre>{_e(dumped)}</pre></details>"
    warn = "" if "effective" in origin else " class='warn'"
    return f"<p{warn}>Mode: {_e(origin)}.</p><pre>{_e(text)}</pre>{extra}"


def _code_text(value: Any) -> str:
    if isinstance(value, dict):
        if value.get("source") == "git":
            return f"git {value.get('describe') or value.get('commit', '')} (commit {value.get('commit', '?')})"
        if value.get("source") == "package":
            return f"package version {value.get('version')}"
        return value.get("note") or json.dumps(value)
    return str(value)


def _provenance_html(record: RunRecord, generated: str) -> str:
    s = record.summary
    rows = [("source", record.source), ("report generated", generated), ("mode", s["mode"]),
            ("window", f"{s['start']} → {s['end']} ({s['hours']:,} hours)")]
    if s.get("run_id") is not None:
        rows.append(("run id", s["run_id"]))
    if s.get("code_version") is not None:
        rows.append(("code version", _code_text(s["code_version"])))
    for key in ("engine_seconds", "data_load_seconds"):
        if isinstance(s.get(key), (int, float)):
            rows.append((key.replace("_", " "), f"{s[key]:.3f}"))
    table = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    files = s.get("data_files") if isinstance(s.get("data_files"), dict) else s.get("data_hashes")
    hash_table = ""
    if isinstance(files, dict) and files:
        hash_table = ("<details open><summary>Data files read (SHA-256)</summary><table><tr><th>file</th><th>sha256</th></tr>"
                      + "".join(f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>" for k, v in files.items())
                      + "</table></details>")
    missing = [key for key in PROVENANCE_REQUIRED if s.get(key) is None and not (key == "data_files" and files)]
    note = (f"<p class='warn'>This run does not record: {', '.join(missing)} (written before runs recorded their "
            "provenance).</p>" if missing else "")
    return f"<table>{table}</table>{hash_table}{note}"
