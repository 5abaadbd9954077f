"""Theme: one dark palette for widgets and charts, and the colours every chart series uses.

Colours are chosen to stay distinguishable on the dark chart background and for the common forms of
colour blindness where possible (blue/orange pairs for the two legs, red only for danger lines).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QFontDatabase, QIcon, QPalette
from PySide6.QtWidgets import QApplication

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
STYLESHEET = RESOURCES / "style.qss"
APP_ICON = RESOURCES / "icons" / "app.svg"

BACKGROUND = "#1b1d23"
SURFACE = "#23262e"
SURFACE_ALT = "#2b2f38"
BORDER = "#3a3f4b"
TEXT = "#e6e8ec"
TEXT_DIM = "#9aa1ad"
ACCENT = "#4c9aff"
ERROR = "#ff6b6b"
WARNING = "#ffb454"
OK = "#5fd38d"

CHART_BACKGROUND = "#15171c"
CHART_FOREGROUND = "#c9ced6"
#: Grid lines, opaque (translucent grid lines are slow to repaint).
GRID = "#2a2e37"

#: Series colours (value, legs, venues, P&L components).
SERIES = {
    "value": "#4c9aff",
    "pnl_total": "#f2f4f8",
    "onchain": "#4c9aff",
    "cex": "#ff9f43",
    "net": "#f2f4f8",
    "hf": "#5fd38d",
    "peg": "#c792ea",
    "playhead": "#ffd166",
    "crosshair": "#8a93a3",
    "rebalance": "#ffd166",
    "liquidation": "#ff4d4d",
}
VENUE_COLORS = {"binance": "#f0b90b", "bybit": "#4c9aff", "okx": "#c792ea"}
COMPONENT_COLORS = {
    "lending": "#5fd38d",
    "borrow": "#e8736c",
    "staking": "#2ec4b6",
    "lst_peg": "#f78c6c",
    "rewards": "#c792ea",
    "funding": "#4c9aff",
    "perp_mtm": "#ff9f43",
    "spot_price": "#ffd166",
    "price_net": "#ffd166",
    "execution_costs": "#ff7eb6",
    "gas": "#8a93a3",
    "liquidation": "#ff4d4d",
}
DANGER_LINE = "#ff4d4d"
WARNING_LINE = "#ffb454"
TRIGGER_LINE = "#9aa1ad"


def venue_color(venue: str) -> str:
    return VENUE_COLORS.get(venue, "#9aa1ad")


def dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: SURFACE,
        QPalette.ColorRole.AlternateBase: SURFACE_ALT,
        QPalette.ColorRole.ToolTipBase: SURFACE_ALT,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: TEXT_DIM,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: SURFACE_ALT,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#2f5d9e",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7280"))
    return p


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options: dark chart colours, no antialiasing (cheap redraws)."""
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=False, background=CHART_BACKGROUND, foreground=CHART_FOREGROUND,
                        useOpenGL=False, exitCleanup=False)


def apply_theme(app: QApplication) -> None:
    """Fusion style + dark palette + the stylesheet in resources/; safe to call more than once."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    if STYLESHEET.is_file():
        app.setStyleSheet(STYLESHEET.read_text(encoding="utf-8"))
    if APP_ICON.is_file():
        app.setWindowIcon(QIcon(str(APP_ICON)))
    configure_pyqtgraph()


def has_fonts() -> bool:
    """False on a machine without any font (text would render as nothing in screenshots)."""
    return bool(QFontDatabase.families())
