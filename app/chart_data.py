"""Everything the replay charts draw, computed once per backtest result (numpy only, no Qt).

The charts redraw up to 30 times a second while the playhead moves; each redraw only hands views
(`array[:k + 1]`) of these preallocated float64 arrays to pyqtgraph, so a frame costs no allocation
proportional to the window and no pandas.

Margin ratios are kept in percent (27.9, not 0.279): the axis, its reference lines, the legend and
the readout then all speak the same unit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.domain.params import RunParams
from engine.domain.pnl import COMPONENTS
from engine.services.backtest import BacktestResult

#: Names shown in legends and the readout.
COMPONENT_LABELS = {
    "lending": "lending",
    "borrow": "borrow cost",
    "staking": "staking",
    "lst_peg": "LST peg (market vs oracle)",
    "rewards": "rewards",
    "funding": "funding",
    "perp_mtm": "perp mark-to-market",
    "spot_price": "spot price",
    "price_net": "spot + perp price (net)",
    "execution_costs": "execution costs",
    "gas": "gas",
    "liquidation": "liquidations",
}
#: Stacking order of the P&L bands (gains first); a component not listed here goes last.
COMPONENT_ORDER = ("lending", "staking", "rewards", "funding", "price_net", "spot_price", "perp_mtm", "lst_peg",
                   "borrow", "execution_costs", "gas", "liquidation")
#: The margin-ratio chart's band always spans at least 0 % .. this (the target sits near 20-25 %).
MARGIN_BAND_MIN_TOP_PCT = 30.0


def component_label(name: str) -> str:
    return COMPONENT_LABELS.get(name, name.replace("_", " "))


@dataclass(frozen=True)
class Threshold:
    """A horizontal reference line on a chart."""

    value: float
    label: str         # the legend's wording
    kind: str          # "danger" | "warning" | "trigger"
    short: str = ""    # the axis label beside the line (a few characters: it sits outside the data)


@dataclass
class Band:
    """One P&L component's cumulative contribution, as the boundary of a stacked area."""

    name: str
    label: str
    cumulative: np.ndarray   # the component's own cumulative P&L (for the readout)
    upper: np.ndarray        # boundary of the positive stack up to and including this band
    lower: np.ndarray        # boundary of the negative stack down to and including this band
    ever_positive: bool      # False: the band adds nothing above 0 (its upper boundary is not drawn)
    ever_negative: bool


@dataclass
class ChartData:
    """All series of one run, aligned to the hourly grid `x` (epoch seconds, UTC)."""

    mode: str
    currency: str
    underlying: str
    x: np.ndarray
    value: np.ndarray
    pnl: np.ndarray
    initial_value: float
    bands: list[Band]
    combined_price: bool
    delta_onchain: np.ndarray | None
    delta_cex: np.ndarray | None
    delta_net: np.ndarray
    delta_unit: str
    onchain_label: str
    health_factor: np.ndarray | None
    hf_thresholds: list[Threshold]
    #: per venue, equity / notional in percent (NaN while the venue holds no perp)
    margin_pct: dict[str, np.ndarray]
    margin_thresholds: list[Threshold]
    #: the y range the margin chart shows: the band the rules act in, widened to every value
    #: below it (nearer liquidation); values above it (idle surplus margin) are named, not shown
    margin_band: tuple[float, float] | None
    lst: str | None
    lst_peg: np.ndarray | None
    eth_price: np.ndarray
    underlying_price: np.ndarray
    rebalance_hours: np.ndarray
    liquidation_hours: np.ndarray
    #: the share class holds the underlying (ETH share class): a long delta is the strategy, not a gap
    directional: bool = False
    hours: int = field(init=False)

    def __post_init__(self) -> None:
        self.hours = int(self.x.size)


def _f64(values) -> np.ndarray:
    """A contiguous float64 copy owned by the chart (the result's arrays stay untouched), with every
    non-finite value as NaN: the curves draw NaN as a gap, while an infinity reaching pyqtgraph's
    range and painting code can crash the whole app."""
    out = np.array(values, dtype=np.float64, copy=True, order="C")
    out[~np.isfinite(out)] = np.nan
    return out


def build_chart_data(result: BacktestResult, combine_price_legs: bool | None = None) -> ChartData:
    """Series for every chart. `combine_price_legs` merges spot and perp price moves into one band
    (default: when the mode hedges, where the two legs are large and cancel)."""
    out = result.output
    params = result.params
    sp = params.strategy
    x = _f64(result.timestamps.asi8 // 1_000_000_000)
    value = _f64(out.values)
    pnl = value - out.initial_value

    components = {name: np.cumsum(out.components[:, i]) for i, name in enumerate(COMPONENTS)}
    hedged = bool(sp.hedge)
    combine = hedged if combine_price_legs is None else combine_price_legs
    if combine:
        components["price_net"] = components.pop("spot_price") + components.pop("perp_mtm")
    order = [name for name in COMPONENT_ORDER if name in components]
    order += [name for name in components if name not in order]
    # Components that never move stay out of the chart and its legend (gas in a CEX-only mode...).
    tolerance = 1e-9 * max(1.0, abs(out.initial_value))
    active = [name for name in order if np.max(np.abs(components[name])) > tolerance]
    bands: list[Band] = []
    pos = np.zeros_like(value)
    neg = np.zeros_like(value)
    for name in active:
        cum = _f64(components[name])
        pos = pos + np.maximum(cum, 0.0)
        neg = neg + np.minimum(cum, 0.0)
        bands.append(Band(name, component_label(name), cum, pos.copy(), neg.copy(),
                          bool(np.any(cum > 0)), bool(np.any(cum < 0))))

    underlying = sp.underlying or "ETH"
    underlying_price = _f64(result.underlying_price)
    eth_price = _f64(result.eth_price)
    onchain_eth = _f64(out.delta_onchain)
    if underlying == "ETH":
        onchain = onchain_eth
        onchain_label = "on-chain (ETH)"
    else:   # on-chain holdings are ETH (gas); show them in the hedged asset's units so the sum means something
        onchain = onchain_eth * eth_price / underlying_price
        onchain_label = f"on-chain (ETH, in {underlying} equivalent)"
    cex = _f64(out.delta_cex)
    has_onchain = bool(np.any(np.abs(onchain) > 1e-12))
    has_cex = hedged or bool(np.any(np.abs(cex) > 1e-12))

    hf = _f64(out.health_factor)
    has_hf = bool(np.any(np.isfinite(hf)))
    hf_thresholds = []
    if has_hf:
        hf_thresholds = [Threshold(1.0, "liquidation (HF 1.0)", "danger", "liq. 1.0"),
                         Threshold(sp.hf_floor, f"deleverage floor (HF {sp.hf_floor:g})", "warning",
                                   f"floor {sp.hf_floor:g}")]

    margin = {venue: 100.0 * _f64(arr) for venue, arr in out.margin_ratio.items()}
    margin_thresholds: list[Threshold] = []
    band = None
    if margin:
        margin_thresholds = _margin_thresholds(list(margin), params)
        if sp.rebalancing:
            trigger = 100.0 * sp.margin_ratio_trigger
            margin_thresholds.append(Threshold(trigger, f"rebalance trigger {trigger:g} %", "trigger",
                                               f"trigger {trigger:g}%"))
        band = margin_band(margin, [t.value for t in margin_thresholds] + [100.0 * sp.margin_ratio_target])

    events = result.events
    liquidations = np.array(sorted({e.hour for e in events if e.type == "liquidation"}), dtype=np.int64)
    return ChartData(
        mode=sp.mode, currency=sp.currency, underlying=underlying, x=x, value=value, pnl=pnl,
        initial_value=float(out.initial_value), bands=bands, combined_price=combine,
        delta_onchain=onchain if has_onchain else None, delta_cex=cex if has_cex else None,
        delta_net=onchain + cex, delta_unit=underlying, onchain_label=onchain_label,
        health_factor=hf if has_hf else None, hf_thresholds=hf_thresholds,
        margin_pct=margin, margin_thresholds=margin_thresholds, margin_band=band,
        lst=sp.lst, lst_peg=_f64(result.lst_peg) if result.lst_peg is not None else None,
        eth_price=eth_price, underlying_price=underlying_price,
        rebalance_hours=np.array(sorted(set(out.rebalance_hours)), dtype=np.int64),
        liquidation_hours=liquidations,
        directional=sp.currency == underlying,
    )


def _margin_thresholds(venues: list[str], params: RunParams) -> list[Threshold]:
    """Maintenance (liquidation) and warning ratios in percent, from the venue files the run used (its
    RunParams): one line each when the venues agree, else one per venue."""
    cex = params.cex
    maintenance = {v: 100.0 * cex[v].maintenance_margin_ratio for v in venues}
    warning = {v: 100.0 * cex[v].margin_warning_ratio for v in venues}
    lines: list[Threshold] = []
    for values, kind, text, short in ((maintenance, "danger", "liquidation: maintenance {:g} %", "maint. {:g}%"),
                                      (warning, "warning", "warning {:g} %", "warn {:g}%")):
        distinct = sorted(set(values.values()))
        if len(distinct) == 1:
            lines.append(Threshold(distinct[0], text.format(distinct[0]), kind, short.format(distinct[0])))
        else:
            lines += [Threshold(v, f"{text.format(v)} ({venue})", kind, f"{venue[:3]} {short.format(v)}")
                      for venue, v in values.items()]
    return lines


def margin_band(margin_pct: dict[str, np.ndarray], levels: list[float]) -> tuple[float, float]:
    """The margin chart's y range: from 0 (or lower, if a ratio ever went below it) to the highest
    rule level plus a fifth (at least MARGIN_BAND_MIN_TOP_PCT). A ratio far above the target is idle
    surplus margin; drawing it would squeeze the maintenance-to-target band into a few pixels."""
    finite = [a[np.isfinite(a)] for a in margin_pct.values()]
    low = min([0.0] + [float(a.min()) for a in finite if a.size])
    top = max([MARGIN_BAND_MIN_TOP_PCT] + [1.2 * level for level in levels])
    return low, top


def hour_at(x: np.ndarray, seconds: float) -> int:
    """Index of the hour nearest to `seconds` (clamped to the grid)."""
    if x.size == 0:
        return 0
    i = int(np.searchsorted(x, seconds))
    if i <= 0:
        return 0
    if i >= x.size:
        return int(x.size - 1)
    return i if (x[i] - seconds) < (seconds - x[i - 1]) else i - 1
