"""Themes (dark and light), text size, and the colours every chart series uses.

A `Theme` holds every colour the app paints with. `apply_theme` installs one: Fusion style, a
QPalette, the style sheet in resources/ (a template filled with the theme's colours and the scaled
text size), pyqtgraph's defaults, and this module's upper-case names (`style.TEXT`,
`style.SERIES`...), which always mirror the active theme so code that reads them when it builds a
widget gets the current colours. Widgets that draw with theme colours after they are built (the
charts) listen to `theme_changed()` and rebuild.

Colours are chosen to stay distinguishable on their chart background and for the common forms of
colour blindness where possible (blue/orange pairs for the two legs, red only for danger lines);
series that can coincide (the venues' margin ratios) also differ by line style (app.widgets.charts).
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QIcon, QPalette
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
STYLESHEET = RESOURCES / "style.qss"
ICONS = RESOURCES / "icons"
APP_ICON = ICONS / "app.svg"

#: Text size steps offered in View > Text size (1.0 = the platform's default font size).
FONT_SCALES = (0.85, 1.0, 1.15, 1.3, 1.5, 1.75, 2.0)
DEFAULT_FONT_SCALE = 1.0


@dataclass(frozen=True)
class Theme:
    """Every colour the app paints with."""

    name: str
    title: str
    background: str
    surface: str
    surface_alt: str
    border: str
    text: str
    text_dim: str
    text_disabled: str
    accent: str
    highlight: str
    highlighted_text: str
    error: str
    warning: str
    ok: str
    hover: str
    modified: str
    primary: str
    #: banner backgrounds (error / info / warning) and their text
    banner_error: tuple[str, str]
    banner_info: tuple[str, str]
    banner_warn: tuple[str, str]
    chart_background: str
    chart_foreground: str
    #: grid lines, opaque (translucent grid lines are slow to repaint)
    grid: str
    danger_line: str
    warning_line: str
    trigger_line: str
    #: event log: rows after the playhead, and the row of the playhead's hour
    future_text: str
    current_row: str
    #: YAML editor and diff view
    syntax_key: str
    syntax_scalar: str
    syntax_comment: str
    diff_added: str
    diff_removed: str
    diff_hunk: str
    line_error: str
    line_warning: str
    series: dict[str, str] = field(default_factory=dict)
    venues: dict[str, str] = field(default_factory=dict)
    components: dict[str, str] = field(default_factory=dict)


DARK = Theme(
    name="dark", title="Dark",
    background="#1b1d23", surface="#23262e", surface_alt="#2b2f38", border="#3a3f4b",
    text="#e6e8ec", text_dim="#9aa1ad", text_disabled="#6b7280", accent="#4c9aff",
    highlight="#2f5d9e", highlighted_text="#ffffff",
    error="#ff6b6b", warning="#ffb454", ok="#5fd38d", hover="#343a46", modified="#26314a", primary="#2f5d9e",
    banner_error=("#3a2326", "#ffd7d7"), banner_info=("#23324a", "#dbe7ff"), banner_warn=("#3a3123", "#ffe6c2"),
    chart_background="#15171c", chart_foreground="#c9ced6", grid="#2a2e37",
    danger_line="#ff4d4d", warning_line="#ffb454", trigger_line="#9aa1ad",
    future_text="#6b7280", current_row="#3b3420",
    syntax_key="#8ab4f8", syntax_scalar="#f5b971", syntax_comment="#7f8794",
    diff_added="#5fd38d", diff_removed="#ff6b6b", diff_hunk="#8ab4f8",
    line_error="#4a2327", line_warning="#4a3a20",
    series={
        "value": "#4c9aff", "pnl_total": "#f2f4f8", "onchain": "#4c9aff", "cex": "#ff9f43", "net": "#f2f4f8",
        "hf": "#5fd38d", "peg": "#c792ea", "playhead": "#ffd166", "crosshair": "#8a93a3",
        "rebalance": "#ffd166", "liquidation": "#ff4d4d",
    },
    venues={"binance": "#f0b90b", "bybit": "#4c9aff", "okx": "#e8e8e8"},
    components={
        "lending": "#5fd38d", "borrow": "#e8736c", "staking": "#2ec4b6", "rewards": "#c792ea",
        "funding": "#4c9aff", "perp_mtm": "#ff9f43", "spot_price": "#ffd166", "price_net": "#ffd166",
        "execution_costs": "#ff7eb6", "gas": "#8a93a3", "liquidation": "#ff4d4d", "lst_peg": "#f78c6c",
    },
)

LIGHT = Theme(
    name="light", title="Light",
    background="#f3f4f6", surface="#ffffff", surface_alt="#e9ecf1", border="#c3c9d3",
    text="#1d2330", text_dim="#566072", text_disabled="#9aa1ad", accent="#1f6feb",
    highlight="#2f6fd6", highlighted_text="#ffffff",
    error="#c62828", warning="#a15c00", ok="#1a7f37", hover="#dde3ec", modified="#e3ecff", primary="#2f6fd6",
    banner_error=("#fde8e8", "#7a1414"), banner_info=("#e6effe", "#12336b"), banner_warn=("#fff3dc", "#5c3a00"),
    chart_background="#ffffff", chart_foreground="#2b3240", grid="#e7e9ee",
    danger_line="#d32f2f", warning_line="#c77700", trigger_line="#6b7280",
    future_text="#9aa1ad", current_row="#fff1c2",
    syntax_key="#1f5fbf", syntax_scalar="#a0521c", syntax_comment="#6e7781",
    diff_added="#1a7f37", diff_removed="#c62828", diff_hunk="#1f5fbf",
    line_error="#fbdada", line_warning="#fbeccc",
    series={
        "value": "#1f6feb", "pnl_total": "#1d2330", "onchain": "#1f6feb", "cex": "#d9730d", "net": "#1d2330",
        "hf": "#1a7f37", "peg": "#8250df", "playhead": "#c48a00", "crosshair": "#6b7280",
        "rebalance": "#c48a00", "liquidation": "#d32f2f",
    },
    venues={"binance": "#b58900", "bybit": "#1f6feb", "okx": "#1d2330"},
    components={
        "lending": "#2da44e", "borrow": "#cf222e", "staking": "#1b998b", "rewards": "#8250df",
        "funding": "#1f6feb", "perp_mtm": "#d9730d", "spot_price": "#bf8700", "price_net": "#bf8700",
        "execution_costs": "#bf3989", "gas": "#6e7781", "liquidation": "#a40e26", "lst_peg": "#c4501f",
    },
)

THEMES: dict[str, Theme] = {DARK.name: DARK, LIGHT.name: LIGHT}
DEFAULT_THEME = DARK.name

# ---- the active theme, mirrored in upper-case names (read them when building, not at import) ----
_active: Theme = DARK
_font_scale: float = DEFAULT_FONT_SCALE
_base_point_size: float | None = None

BACKGROUND = SURFACE = SURFACE_ALT = BORDER = TEXT = TEXT_DIM = ACCENT = ERROR = WARNING = OK = ""
CHART_BACKGROUND = CHART_FOREGROUND = GRID = DANGER_LINE = WARNING_LINE = TRIGGER_LINE = ""
SERIES: dict[str, str] = {}
VENUE_COLORS: dict[str, str] = {}
COMPONENT_COLORS: dict[str, str] = {}


def _mirror(theme: Theme) -> None:
    global _active, BACKGROUND, SURFACE, SURFACE_ALT, BORDER, TEXT, TEXT_DIM, ACCENT, ERROR, WARNING, OK
    global CHART_BACKGROUND, CHART_FOREGROUND, GRID, DANGER_LINE, WARNING_LINE, TRIGGER_LINE
    _active = theme
    BACKGROUND, SURFACE, SURFACE_ALT, BORDER = theme.background, theme.surface, theme.surface_alt, theme.border
    TEXT, TEXT_DIM, ACCENT = theme.text, theme.text_dim, theme.accent
    ERROR, WARNING, OK = theme.error, theme.warning, theme.ok
    CHART_BACKGROUND, CHART_FOREGROUND, GRID = theme.chart_background, theme.chart_foreground, theme.grid
    DANGER_LINE, WARNING_LINE, TRIGGER_LINE = theme.danger_line, theme.warning_line, theme.trigger_line
    # The dicts are updated in place: modules that imported them keep a live view.
    for target, source in ((SERIES, theme.series), (VENUE_COLORS, theme.venues), (COMPONENT_COLORS, theme.components)):
        target.clear()
        target.update(source)


_mirror(DARK)


def current() -> Theme:
    """The active theme."""
    return _active


def font_scale() -> float:
    """The active text size factor (1.0 = the platform default)."""
    return _font_scale


def theme_named(name: str) -> Theme:
    try:
        return THEMES[name]
    except KeyError:
        raise ValueError(f"unknown theme {name!r} (available: {', '.join(THEMES)})") from None


def venue_color(venue: str) -> str:
    return _active.venues.get(venue, _active.text_dim)


def component_color(name: str) -> str:
    return _active.components.get(name, _active.text_dim)


def scaled_pt(points: float) -> float:
    """A font size in points scaled by the text size setting (chart titles, axis labels)."""
    return round(points * _font_scale, 1)


def scaled_px(pixels: float) -> int:
    """A length that holds text (axis widths), scaled by the text size setting."""
    return round(pixels * _font_scale)


class _Notifier(QObject):
    changed = Signal()


_notifier: _Notifier | None = None


def theme_changed() -> Signal:
    """Emitted after `apply_theme` installed a theme or text size: widgets that cache colours or
    font metrics (the charts) rebuild on it."""
    global _notifier
    if _notifier is None:
        _notifier = _Notifier()
    return _notifier.changed


def palette(theme: Theme) -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: theme.background,
        QPalette.ColorRole.WindowText: theme.text,
        QPalette.ColorRole.Base: theme.surface,
        QPalette.ColorRole.AlternateBase: theme.surface_alt,
        QPalette.ColorRole.ToolTipBase: theme.surface_alt,
        QPalette.ColorRole.ToolTipText: theme.text,
        QPalette.ColorRole.PlaceholderText: theme.text_dim,
        QPalette.ColorRole.Text: theme.text,
        QPalette.ColorRole.Button: theme.surface_alt,
        QPalette.ColorRole.ButtonText: theme.text,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: theme.highlight,
        QPalette.ColorRole.HighlightedText: theme.highlighted_text,
        QPalette.ColorRole.Link: theme.accent,
        QPalette.ColorRole.Light: theme.surface,
        QPalette.ColorRole.Midlight: theme.surface_alt,
        QPalette.ColorRole.Mid: theme.border,
        QPalette.ColorRole.Dark: theme.border,
        QPalette.ColorRole.Shadow: theme.border,
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(theme.text_disabled))
    return p


def dark_palette() -> QPalette:
    return palette(DARK)


def stylesheet(theme: Theme, scale: float = 1.0) -> str:
    """resources/style.qss with the theme's colours (`${name}` placeholders) filled in."""
    values = {name: getattr(theme, name) for name in
              ("background", "surface", "surface_alt", "border", "text", "text_dim", "text_disabled", "accent",
               "error", "warning", "ok", "hover", "modified", "primary", "chart_background")}
    values["playhead_handle"] = theme.series["playhead"]
    for kind in ("error", "info", "warn"):
        background, text = getattr(theme, f"banner_{kind}")
        values[f"banner_{kind}_bg"], values[f"banner_{kind}_text"] = background, text
    values["title_px"] = str(round(16 * scale))
    return string.Template(STYLESHEET.read_text(encoding="utf-8")).substitute(values)


def configure_pyqtgraph(theme: Theme | None = None) -> None:
    """Global pyqtgraph options: chart colours, no antialiasing (cheap redraws)."""
    import pyqtgraph as pg

    theme = theme or _active
    pg.setConfigOptions(antialias=False, background=theme.chart_background, foreground=theme.chart_foreground,
                        useOpenGL=False, exitCleanup=False)


def apply_theme(app: QApplication, theme: str | Theme | None = None, scale: float | None = None) -> None:
    """Install a theme and text size (default: keep the current ones); safe to call more than once.

    Fusion style, the theme's palette and style sheet, the app font at `scale` times the platform's
    default size, pyqtgraph's colours; then `theme_changed()` is emitted."""
    global _font_scale, _base_point_size
    chosen = theme_named(theme) if isinstance(theme, str) else (theme or _active)
    if scale is not None:
        if not 0.5 <= scale <= 3.0:
            raise ValueError(f"text size factor {scale} is outside 0.5-3.0")
        _font_scale = float(scale)
    _mirror(chosen)
    app.setStyle("Fusion")
    app.setPalette(palette(chosen))
    font = QFont(app.font())
    if _base_point_size is None:
        _base_point_size = font.pointSizeF() if font.pointSizeF() > 0 else 9.0
    font.setPointSizeF(_base_point_size * _font_scale)
    app.setFont(font)
    if STYLESHEET.is_file():
        app.setStyleSheet(stylesheet(chosen, _font_scale))
    if APP_ICON.is_file():
        app.setWindowIcon(QIcon(str(APP_ICON)))
    configure_pyqtgraph(chosen)
    theme_changed().emit()


def has_fonts() -> bool:
    """False on a machine without any font (text would render as nothing in screenshots)."""
    return bool(QFontDatabase.families())
